//! What recording costs the planner: plan latency of `reach` episodes with
//! and without a rerun recording (default level: 10 rollouts per step),
//! measured in one run, interleaved so that machine load affects both alike.
//!
//! ```sh
//! cargo run --example record_overhead
//! ```
//! Prints the median and mean plan latency of each and their ratio.

use std::time::Instant;
use telic_sim::episode::{EpisodeResult, NoObserver, quantile, run_observed};
use telic_sim::record::{RecordOptions, Recorder, Sink};
use telic_sim::scenario::{ModelChoice, Scenario};

fn latencies(results: &[EpisodeResult]) -> Vec<f64> {
    results
        .iter()
        .flat_map(|r| r.plan_latency_ms.iter().copied())
        .collect()
}

fn main() -> anyhow::Result<()> {
    let rounds = 4;
    let episodes = 3;
    let mut plain = Scenario::load("reach")?;
    plain.model = ModelChoice::Analytic;
    let options = RecordOptions::default();
    let mut recorded = plain.clone();
    recorded.planner.keep_rollouts = options.rollouts;
    let dir = std::env::temp_dir().join(format!("telic-record-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let (mut without, mut with) = (Vec::new(), Vec::new());
    let started = Instant::now();
    let mut bytes = 0;
    // Wall time of whole runs: planning, physics, and the recorder's work on
    // the control thread (copying each plan into a message).
    let (mut wall_without, mut wall_with) = (0.0, 0.0);
    for round in 0..rounds {
        let seed = 100 + round as u64;
        let t = Instant::now();
        without.extend(latencies(&run_observed(
            &plain,
            episodes,
            seed,
            &mut NoObserver,
            &|_| {},
        )?));
        wall_without += t.elapsed().as_secs_f64();
        let path = dir.join(format!("round{round}.rrd"));
        let t = Instant::now();
        let mut recorder = Recorder::open(&Sink::File(path.clone()), options.clone())?;
        with.extend(latencies(&run_observed(
            &recorded,
            episodes,
            seed,
            &mut recorder,
            &|_| {},
        )?));
        recorder.finish()?;
        wall_with += t.elapsed().as_secs_f64();
        bytes += std::fs::metadata(&path)?.len();
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let (p50a, p50b) = (quantile(&without, 0.5), quantile(&with, 0.5));
    let (ma, mb) = (mean(&without), mean(&with));
    println!(
        "reach, analytic model, {} plans each, {rounds} interleaved rounds of {episodes} episodes ({:.0} s)",
        without.len().min(with.len()),
        started.elapsed().as_secs_f64()
    );
    println!("  without recording   p50 {p50a:.2} ms   mean {ma:.2} ms");
    println!(
        "  with recording      p50 {p50b:.2} ms   mean {mb:.2} ms   ({} rollouts per step, {:.1} MiB of .rrd)",
        options.rollouts,
        bytes as f64 / (1024.0 * 1024.0)
    );
    println!(
        "  overhead            p50 x{:.3}   mean x{:.3}   (target: <= x1.10)",
        p50b / p50a,
        mb / ma
    );
    println!(
        "  run wall time       x{:.3}   ({wall_without:.1} s without, {wall_with:.1} s with, flushing included)",
        wall_with / wall_without
    );
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
