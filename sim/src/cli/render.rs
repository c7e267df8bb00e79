//! `telic render`: one camera frame of a scene, as a PNG file to look at.

use crate::scenario::Scenario;
use crate::scene::camera::{Camera, DEFAULT_SIZE, ImageSize};
use anyhow::{Context, Result};
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub(crate) struct RenderArgs {
    /// Scene (a shipped name such as `push`, or a scenario .toml).
    scene: String,
    /// Episode seed of the reset whose state is drawn.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Image width in pixels.
    #[arg(long, default_value_t = DEFAULT_SIZE)]
    width: usize,
    /// Image height in pixels.
    #[arg(long, default_value_t = DEFAULT_SIZE)]
    height: usize,
    /// The PNG file to write.
    #[arg(long, default_value = "frame.png")]
    out: PathBuf,
}

/// Resets the scene with `--seed` and writes its camera frame to `--out`.
pub(crate) fn render(args: &RenderArgs) -> Result<()> {
    let scenario = Scenario::load(&args.scene)?;
    let mut world = scenario.scene.build(&scenario.base_dir)?;
    world.reset(args.seed)?;
    let size = ImageSize::new(args.width, args.height);
    let mut camera = Camera::new(size)?;
    let mut image = vec![0; size.bytes()];
    world.render(&mut camera, &mut image)?;
    camera
        .save_png(&args.out)
        .with_context(|| format!("rendering {}", args.scene))?;
    println!(
        "{}: seed {}, {}x{} frame written to {}",
        world.name(),
        args.seed,
        size.width(),
        size.height(),
        args.out.display()
    );
    Ok(())
}
