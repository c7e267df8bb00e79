//! `telic collect`: exploration data for training a world model.

use super::output::Interrupt;
use super::{jobs, progress_bar};
use crate::collect::{CollectConfig, EpisodeData, Policy, collect as collect_data, prepare_output};
use crate::perturb::Level;
use crate::scenario::{ObservationMode, Scenario};
use anyhow::{Result, bail};
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub(crate) struct CollectArgs {
    /// Scene name (`reach`, `navigate`) or path to a scenario .toml file.
    scene: String,
    /// Number of episodes.
    #[arg(long, default_value_t = 100)]
    episodes: usize,
    /// Output folder: one .npy file per field and meta.json (created if needed).
    #[arg(long)]
    out: PathBuf,
    /// Seed of the run; episode i uses a seed derived from it.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Control steps per episode (default: the scenario's max_time / dt).
    #[arg(long)]
    steps_per_episode: Option<usize>,
    /// Share of episodes driven by the scenario's planner with noisy actions;
    /// the others use colored-noise random actions.
    #[arg(long, default_value_t = 0.5)]
    planner_fraction: f64,
    /// Largest std of the planner's action noise, as a fraction of the half range.
    #[arg(long, default_value_t = 0.5)]
    planner_noise: f64,
    /// Range of the random policy's scale (fraction of the half range), `LO,HI`.
    #[arg(long, value_name = "LO,HI", value_delimiter = ',', default_values_t = [0.3, 1.0])]
    random_scale: Vec<f64>,
    /// Exponent of the colored exploration noise (0 white, 2 Brownian-like).
    #[arg(long, default_value_t = 1.0)]
    noise_beta: f64,
    /// Keep running an episode after the task succeeded.
    #[arg(long)]
    no_stop_on_success: bool,
    /// Episodes run in parallel (default: the number of cores; 1 to 256); the data does not depend on it.
    #[arg(long)]
    jobs: Option<usize>,
    /// Observation mode, overriding the scenario's `[observation] mode`:
    /// `state`, `pixels` or `pixels+proprio`. The pixel modes also store the
    /// camera image of every row (`image.npy.gz`, `next_image.npy.gz`).
    #[arg(long, value_name = "MODE")]
    obs: Option<ObservationMode>,
    /// Collect in perturbed worlds: `none`, `mild`, `moderate` or `severe`
    /// (`[perturb] level`; see `telic run --perturb`), e.g. to calibrate
    /// model-error margins on the worlds a model will meet.
    #[arg(long, value_name = "LEVEL")]
    perturb: Option<Level>,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

/// `telic collect`: runs the episodes, then writes the data set.
pub(crate) fn collect(args: CollectArgs) -> Result<()> {
    let mut scenario = Scenario::load(&args.scene)?;
    if let Some(mode) = args.obs {
        scenario.observation.mode = mode;
    }
    if let Some(level) = args.perturb {
        scenario.perturb.level = level;
    }
    let [lo, hi] = args.random_scale[..] else {
        bail!("--random-scale takes two values, LO,HI");
    };
    let config = CollectConfig {
        episodes: args.episodes,
        seed: args.seed,
        steps_per_episode: args.steps_per_episode,
        planner_fraction: args.planner_fraction,
        planner_noise: args.planner_noise,
        random_scale: [lo, hi],
        noise_beta: args.noise_beta,
        stop_on_success: !args.no_stop_on_success,
        jobs: jobs(args.jobs)?,
    };
    config.validate()?;
    let bar = progress_bar(args.quiet, args.episodes, &args.scene);
    // The data set stays in memory until every episode finished: an
    // interrupted collection writes nothing (and while writing, the data
    // set's meta.json is written last, so a cut-short one is not read).
    let writing = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let quit = {
        let (bar, out, writing) = (bar.clone(), args.out.clone(), writing.clone());
        move |signal: i32| {
            bar.finish_and_clear();
            if writing.load(std::sync::atomic::Ordering::SeqCst) {
                eprintln!(
                    "\ninterrupted while writing {}: it has no meta.json, so it is not a data set",
                    out.display()
                );
            } else {
                eprintln!(
                    "\ninterrupted: nothing was written to {} (a collection writes its data set \
                     when every episode has finished)",
                    out.display()
                );
            }
            std::process::exit(128 + signal);
        }
    };
    let _interrupt = Interrupt::install(quit.clone(), quit)?;
    // Fail on an unwritable folder before spending minutes on episodes.
    prepare_output(&args.out)?;
    let rows = std::sync::atomic::AtomicUsize::new(0);
    let progress = |e: &EpisodeData| {
        let n = rows.fetch_add(e.steps, std::sync::atomic::Ordering::Relaxed) + e.steps;
        bar.inc(1);
        bar.set_message(format!("{n} transitions"));
    };
    let t0 = std::time::Instant::now();
    let data = collect_data(&scenario, &config, &progress)?;
    bar.finish_and_clear();
    writing.store(true, std::sync::atomic::Ordering::SeqCst);
    data.write(&args.out)?;
    writing.store(false, std::sync::atomic::Ordering::SeqCst);
    let m = &data.meta;
    let planner_eps = m
        .episode_policies
        .iter()
        .filter(|e| matches!(e.policy, Policy::Planner { .. }))
        .count();
    println!(
        "{} transitions from {} episodes ({planner_eps} noisy-planner, {} random) of {} in {:.1} s",
        m.transitions,
        m.episodes,
        m.episodes - planner_eps,
        m.scene,
        t0.elapsed().as_secs_f64()
    );
    println!(
        "  obs {}, action {}, readouts {}, dt {} s",
        m.observations.len(),
        m.actions.len(),
        m.readouts.len(),
        m.dt
    );
    if let Some(image) = &m.image {
        println!(
            "  images {}x{} RGB (uint8, gzip), proprio [{}]",
            image.width,
            image.height,
            m.proprio.as_deref().unwrap_or_default().join(", ")
        );
    }
    println!("written to {}", args.out.display());
    Ok(())
}
