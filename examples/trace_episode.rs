//! Runs one episode of a scenario and prints, per control step, what the
//! planner observed, the action it chose, and what it imagined the first
//! action would do beside what the simulation then observed — one line of
//! CSV per step. A quick way to see where a world model and reality part.
//!
//! ```sh
//! cargo run --example trace_episode -- push 1000006 [--model analytic|BUNDLE]
//! ```
//! The second argument is the episode's seed, as `telic run --json` reports it.

use anyhow::{Context, Result, bail};
use telic::{Plan, Real};
use telic_sim::World;
use telic_sim::episode::{EpisodeObserver, run_episode};
use telic_sim::scenario::{ModelChoice, Scenario};

/// Prints a CSV row per plan: observation, action, predicted readouts after
/// the first action (matched to observation names where a readout has one).
struct Trace {
    obs_names: Vec<String>,
    /// Readout index of each observation name, when the model reads it out.
    matched: Vec<Option<usize>>,
    readout_dim: usize,
    /// The previous step's prediction of the matched observations.
    predicted: Option<Vec<Real>>,
}

impl EpisodeObserver for Trace {
    fn on_reset(&mut self, _scene: &dyn World, objective: &telic::Objective, seed: u64) {
        let targets: Vec<String> = objective
            .term_names()
            .filter_map(|t| {
                let v = objective.target(t)?;
                (!v.is_empty()).then(|| format!("{t} {v:.3?}"))
            })
            .collect();
        eprintln!("episode {seed}: targets {}", targets.join(", "));
    }

    fn on_plan(&mut self, scene: &dyn World, obs: &[Real], plan: &Plan, step: usize) {
        if step == 0 {
            let names: Vec<String> = self.obs_names.clone();
            let pred: Vec<String> = names.iter().map(|n| format!("err.{n}")).collect();
            println!(
                "step,time,{},{},action,cost,status,worst_margin",
                names.join(","),
                pred.join(",")
            );
        }
        let errors: Vec<String> = match &self.predicted {
            Some(p) => obs
                .iter()
                .zip(p)
                .map(|(o, p)| {
                    if p.is_nan() {
                        String::new()
                    } else {
                        format!("{:.4}", p - o)
                    }
                })
                .collect(),
            None => vec![String::new(); obs.len()],
        };
        let first = plan.readouts.get(..self.readout_dim).unwrap_or(&[]);
        self.predicted = Some(
            self.matched
                .iter()
                .map(|m| m.and_then(|i| first.get(i).copied()).unwrap_or(Real::NAN))
                .collect(),
        );
        let fmt = |xs: &[Real]| {
            xs.iter()
                .map(|x| format!("{x:.4}"))
                .collect::<Vec<_>>()
                .join(",")
        };
        println!(
            "{step},{:.2},{},{},{},{:.3},{:?},{:.4}",
            scene.time(),
            fmt(obs),
            errors.join(","),
            fmt(&plan.action).replace(',', " "),
            plan.cost,
            plan.status,
            plan.worst_margin()
        );
    }
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(name), Some(seed)) = (args.first(), args.get(1)) else {
        bail!("usage: trace_episode SCENARIO SEED [--model analytic|BUNDLE]");
    };
    let seed: u64 = seed.parse().context("SEED must be an integer")?;
    let mut scenario = Scenario::load(name)?;
    if let Some(i) = args.iter().position(|a| a == "--model") {
        let m = args.get(i + 1).context("--model needs a value")?;
        scenario.model = match m.as_str() {
            "analytic" => ModelChoice::Analytic,
            "default" => ModelChoice::Default,
            path => ModelChoice::Bundle(std::fs::canonicalize(path)?),
        };
    }
    let mut scene = scenario.scene.build(&scenario.base_dir)?;
    let model = scenario.build_model(scene.as_ref())?;
    let spec = model.spec().clone();
    let mut trace = Trace {
        matched: spec
            .observations
            .iter()
            .map(|o| spec.readouts.iter().position(|r| r == o))
            .collect(),
        obs_names: spec.observations.clone(),
        readout_dim: spec.readout_dim(),
        predicted: None,
    };
    let r = run_episode(&scenario, scene.as_mut(), model, seed, &mut trace)?;
    eprintln!(
        "success {}, {} steps, final error {:?}, fallback steps {}, worst true margin {:.4} ({})",
        r.success,
        r.control_steps,
        r.final_error,
        r.fallback_steps,
        r.worst_margin,
        r.worst_guardrail
    );
    Ok(())
}
