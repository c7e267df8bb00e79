//! How fast the scene cameras render ([`crate::scene::camera`]).

use crate::SimError;
use crate::scenario::Scenario;
use crate::scene::camera::{Camera, ImageSize};
use std::time::Instant;

/// Frames per second one core renders of the shipped scene `scene` (reset
/// with seed 1) at `size`: `frames` frames timed after 20 warm-up frames,
/// each written into one reused image buffer.
pub fn render_rate(scene: &str, size: ImageSize, frames: usize) -> Result<f64, SimError> {
    let scenario = Scenario::load(scene)?;
    let mut world = scenario.scene.build(&scenario.base_dir)?;
    world.reset(1)?;
    let mut camera = Camera::new(size)?;
    let mut image = vec![0; size.bytes()];
    for _ in 0..20 {
        world.render(&mut camera, &mut image)?;
    }
    let start = Instant::now();
    for _ in 0..frames {
        world.render(&mut camera, &mut image)?;
        std::hint::black_box(&image);
    }
    Ok(frames.max(1) as f64 / start.elapsed().as_secs_f64().max(1e-9))
}
