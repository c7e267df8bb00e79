//! Unit tests of the planners: determinism, fallbacks when nothing is feasible,
//! the shield, and clear errors for bad input.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::rollout::rank;
use super::*;
use crate::error::ModelError;
use crate::model::{ModelSpec, PointMass, Unicycle, WorldModel};
use crate::objective::ObjectiveSpec;
use std::cmp::Ordering;

mod bad_input;
mod delay;
mod determinism;
mod goals;
mod kept_rollouts;
mod knot_sampling;
mod model_error;
mod pool;
mod shield_fallback;

/// Reach (1, 0.5) while staying out of a ball at (0.5, 0.25), gently.
const REACH: &str = r#"
    bodies = [{ name = "p", points = ["pos"], radius = 0.1 }]

    [[terms]]
    name = "goal"
    residual = { kind = "readout", readouts = ["pos.x", "pos.y"], target = [1.0, 0.5] }

    [[terms]]
    name = "smooth"
    weight = 0.01
    residual = { kind = "action_rate" }

    [[guardrails]]
    kind = "keep_out"
    name = "ball"
    margin = 0.05
    shape = { type = "sphere", center = [0.5, 0.25, 0.0], radius = 0.15 }
"#;

fn objective(toml: &str, model: &ModelSpec) -> Objective {
    toml::from_str::<ObjectiveSpec>(toml)
        .unwrap()
        .compile(model)
        .unwrap()
}

fn config(kind: PlannerKind, seed: u64) -> PlannerConfig {
    PlannerConfig {
        kind,
        horizon: 15,
        samples: 64,
        iterations: 2,
        seed,
        ..Default::default()
    }
}

fn point_mass() -> PointMass {
    PointMass::new(2, 0.1, 2.0).unwrap()
}

fn planner(toml: &str, cfg: PlannerConfig) -> Box<dyn Planner> {
    let model = point_mass();
    let obj = objective(toml, model.spec());
    build(model, obj, cfg).unwrap()
}

/// Every number of a plan except its wall-clock time, as bits.
fn fingerprint(p: &Plan) -> Vec<u64> {
    let mut out = vec![
        p.status as u64,
        p.feasible_samples as u64,
        p.iterations as u64,
        p.cost.to_bits(),
        p.violation.to_bits(),
    ];
    for xs in [
        &p.action,
        &p.actions,
        &p.readouts,
        &p.term_costs,
        &p.margins,
    ] {
        out.extend(xs.iter().map(|x| x.to_bits()));
    }
    out
}

/// Closed loop on a point-mass plant from `x0` for `steps` ticks.
fn run(planner: &mut dyn Planner, x0: [Real; 4], steps: usize) -> Vec<Vec<u64>> {
    let mut plant = point_mass();
    let mut x = x0.to_vec();
    let mut next = vec![0.0; 4];
    let mut out = Vec::new();
    for _ in 0..steps {
        let plan = planner.plan(&x).unwrap();
        out.push(fingerprint(plan));
        plant.predict(&x, &plan.action, &mut next).unwrap();
        x.copy_from_slice(&next);
    }
    out
}

const KINDS: [PlannerKind; 3] = [PlannerKind::Mppi, PlannerKind::Cem, PlannerKind::Gradient];
