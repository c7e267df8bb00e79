//! `telic soak`: the controller in the loop, in real time, episode after
//! episode for a given time, with the world perturbed as asked. It reports
//! at intervals what a long deployment needs to know: resident memory (it
//! must not grow), the re-planning rate, fallbacks by reason, true
//! guardrail violations and simulation failures.

use crate::episode::episode_seed;
use crate::perturb::Level;
use crate::realtime::episode;
use crate::scenario::Scenario;
use crate::scene::Scene;
use anyhow::{Result, bail};
use serde::Serialize;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use telic::controller::{ControllerConfig, FallbackCounts};

#[derive(clap::Args, Debug)]
pub(crate) struct SoakArgs {
    /// Scene name or scenario file (default `reach_realtime`).
    #[arg(default_value = "reach_realtime")]
    scene: String,
    /// Minutes to run; episodes follow one another until then.
    #[arg(long, default_value_t = 60.0)]
    minutes: f64,
    /// Perturb every episode's world (`none`, `mild`, `moderate`,
    /// `severe`; default: the scenario's `[perturb]`).
    #[arg(long, value_name = "LEVEL")]
    perturb: Option<Level>,
    /// Seed of the run; episode i uses a seed derived from it, as `telic run`.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Seconds between report lines.
    #[arg(long, default_value_t = 60.0)]
    every: f64,
    /// Fraction of the run that is warm-up: memory growth is measured
    /// from its end.
    #[arg(long, default_value_t = 0.1)]
    warmup: f64,
    /// The controller falls back when its newest plan is older than this.
    #[arg(long, default_value_t = 100.0)]
    max_plan_age_ms: f64,
    /// Write the report (every sample and the totals) as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
}

/// One report line.
#[derive(Clone, Debug, Serialize)]
struct Sample {
    seconds: f64,
    episodes: usize,
    resident_bytes: Option<u64>,
    replan_hz: f64,
    violating_episodes: usize,
}

/// The whole run.
#[derive(Debug, Default, Serialize)]
struct Totals {
    episodes: usize,
    successes: usize,
    violating_episodes: usize,
    violation_steps: usize,
    failures: usize,
    plans: u64,
    wall_seconds: f64,
    control_steps: usize,
    plan_steps: usize,
    late_steps: usize,
    fallback_steps: FallbackCounts,
    /// Resident memory at the end of the warm-up and at the end, and the
    /// growth between them (fraction).
    resident_after_warmup: Option<u64>,
    resident_at_end: Option<u64>,
    resident_growth: Option<f64>,
}

/// Resident memory of this process in bytes (Linux: `VmRSS` of
/// `/proc/self/status`; `None` elsewhere).
fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn mib(b: Option<u64>) -> String {
    b.map_or("n/a".into(), |b| {
        format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0))
    })
}

/// `telic soak`.
pub(crate) fn soak(args: &SoakArgs) -> Result<()> {
    if !(args.minutes.is_finite() && args.minutes > 0.0 && args.minutes <= 7.0 * 24.0 * 60.0) {
        bail!(
            "--minutes must be positive and at most a week (10080), got {}",
            args.minutes
        );
    }
    if !(args.every.is_finite() && args.every > 0.0) {
        bail!(
            "--every must be a positive number of seconds, got {}",
            args.every
        );
    }
    if !(0.0..1.0).contains(&args.warmup) {
        bail!(
            "--warmup is a fraction of the run in [0, 1), got {}",
            args.warmup
        );
    }
    let mut scenario = Scenario::load(&args.scene)?;
    if let Some(level) = args.perturb {
        scenario.perturb.level = level;
    }
    scenario.validate(&args.scene)?;
    let control = ControllerConfig {
        max_plan_age_ms: args.max_plan_age_ms,
        ..Default::default()
    };
    control.validate().map_err(telic::PlanError::Config)?;
    let mut env = Scene::new(scenario.clone())?;
    let length = Duration::from_secs_f64(args.minutes * 60.0);
    let warmup = length.mul_f64(args.warmup);
    let every = Duration::from_secs_f64(args.every);
    // A signal ends the soak after the episode under way, with its report.
    let interrupt = super::output::Interrupt::install(
        |_| eprintln!("stopping after the episode under way (interrupt again to quit at once)"),
        |sig| std::process::exit(128 + sig),
    )?;
    println!(
        "soak {} for {} min, perturbation {}: every {} s the elapsed time, episodes, resident memory, \
         re-planning rate and violating episodes",
        args.scene, args.minutes, scenario.perturb.level, args.every
    );
    let start = Instant::now();
    let mut next_report = every;
    let mut totals = Totals::default();
    let mut samples = Vec::new();
    let mut plans_since = (0u64, 0.0f64);
    while start.elapsed() < length && interrupt.signal().is_none() {
        let seed = episode_seed(args.seed, totals.episodes);
        let (r, s) = episode(&mut env, seed, &control)?;
        totals.episodes += 1;
        totals.successes += usize::from(r.success);
        totals.violating_episodes += usize::from(r.violation_steps > 0);
        totals.violation_steps += r.violation_steps;
        totals.failures += usize::from(r.failure.is_some());
        totals.control_steps += r.control_steps;
        totals.plans += s.plans;
        totals.wall_seconds += s.wall_seconds;
        totals.plan_steps += s.plan_steps;
        totals.late_steps += s.late_steps;
        totals.fallback_steps += &s.fallback_steps;
        plans_since.0 += s.plans;
        plans_since.1 += s.wall_seconds;
        if totals.resident_after_warmup.is_none() && start.elapsed() >= warmup {
            totals.resident_after_warmup = resident_bytes();
        }
        if start.elapsed() >= next_report {
            let sample = Sample {
                seconds: start.elapsed().as_secs_f64(),
                episodes: totals.episodes,
                resident_bytes: resident_bytes(),
                replan_hz: plans_since.0 as f64 / plans_since.1.max(1e-9),
                violating_episodes: totals.violating_episodes,
            };
            println!(
                "  {:7.0} s  {:5} episodes  {:>10}  {:6.1} plans/s  {} violating",
                sample.seconds,
                sample.episodes,
                mib(sample.resident_bytes),
                sample.replan_hz,
                sample.violating_episodes
            );
            samples.push(sample);
            plans_since = (0, 0.0);
            next_report += every;
        }
    }
    totals.resident_at_end = resident_bytes();
    if let (Some(a), Some(b)) = (totals.resident_after_warmup, totals.resident_at_end) {
        totals.resident_growth = Some(b as f64 / a as f64 - 1.0);
    }
    let f = &totals.fallback_steps;
    println!(
        "{} episodes in {:.0} s: {} successes, {} with true violations ({} physics steps), {} \
         simulation failures",
        totals.episodes,
        start.elapsed().as_secs_f64(),
        totals.successes,
        totals.violating_episodes,
        totals.violation_steps,
        totals.failures
    );
    println!(
        "re-planning {:.1} plans/s; {} of {} control steps acted on a plan, {} late; fallbacks: \
         no plan yet {}, stale {}, planner failed {}, planner dead {}, no feasible plan {}, \
         past the horizon {}, guardrail on the shifted plan {}",
        totals.plans as f64 / totals.wall_seconds.max(1e-9),
        totals.plan_steps,
        totals.control_steps,
        totals.late_steps,
        f.no_plan_yet,
        f.stale,
        f.planner_failed,
        f.planner_dead,
        f.no_feasible_plan,
        f.shifted_past_horizon,
        f.guardrail_on_shifted_plan
    );
    println!(
        "resident memory: {} after the warm-up, {} at the end ({})",
        mib(totals.resident_after_warmup),
        mib(totals.resident_at_end),
        totals
            .resident_growth
            .map_or("growth n/a".into(), |g| format!("{:+.2}%", 100.0 * g))
    );
    if let Some(path) = &args.json {
        let doc = serde_json::json!({
            "scene": args.scene,
            "minutes": args.minutes,
            "perturb": scenario.perturb,
            "seed": args.seed,
            "samples": samples,
            "totals": totals,
        });
        crate::results::write_atomic(path, &serde_json::to_vec_pretty(&doc)?)?;
    }
    Ok(())
}
