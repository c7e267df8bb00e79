//! Unit tests of objectives: hand-computed costs and margins, gradients against
//! finite differences, and clear errors for specs that do not fit a model.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod buffers;
mod compile;
mod costs;
mod guardrails;

use super::*;
use crate::model::{ModelSpec, PointMass, WorldModel};

fn pm(dims: usize) -> ModelSpec {
    PointMass::new(dims, 0.1, 1.0).unwrap().spec().clone()
}

fn readout(names: &[&str], target: &[Real]) -> Residual {
    Residual::Readout {
        readouts: names.iter().map(|s| (*s).to_string()).collect(),
        target: target.to_vec(),
    }
}

fn term(name: &str, residual: Residual, norm: Norm, weight: Real, phase: Phase) -> TermSpec {
    TermSpec {
        name: name.into(),
        residual,
        norm,
        weight,
        phase,
    }
}

fn close(a: Real, b: Real, tol: Real) -> bool {
    (a - b).abs() <= tol * (1.0 + b.abs())
}

/// Five terms, one per residual kind, with different norms, weights and phases.
fn five_terms() -> ObjectiveSpec {
    ObjectiveSpec {
        terms: vec![
            term(
                "goal",
                readout(&["pos.x", "pos.y"], &[1.0, 2.0]),
                Norm::Quadratic,
                2.0,
                Phase::Running,
            ),
            term(
                "effort",
                Residual::Action { target: vec![] },
                Norm::L1,
                0.5,
                Phase::Terminal,
            ),
            term(
                "rate",
                Residual::ActionRate,
                Norm::Huber { delta: 0.5 },
                3.0,
                Phase::Both,
            ),
            term(
                "energy",
                Residual::Latent {
                    target: vec![0.0; 4],
                },
                Norm::L2 { eps: 0.0 },
                1.0,
                Phase::Running,
            ),
            term(
                "slow",
                readout(&["speed"], &[]),
                Norm::SmoothAbs { eps: 0.1 },
                1.0,
                Phase::Terminal,
            ),
        ],
        ..Default::default()
    }
}

/// The 3-D point mass's readouts: pos.x, pos.y, pos.z, vel.x, vel.y, vel.z, speed.
fn y3(pos: [Real; 3], vel: [Real; 3]) -> Vec<Real> {
    let speed = vel.iter().map(|v| v * v).sum::<Real>().sqrt();
    pos.iter().chain(&vel).copied().chain([speed]).collect()
}

/// One guardrail of each kind, with a buffer of 0.1 each; body "p" is a ball of
/// radius 0.1 at `pos` and body "arm" a capsule of radius 0.05 from `pos` to `vel`
/// (read as a point: any readout triple `q.x, q.y, q.z` is a point `q`).
fn all_guardrails() -> ObjectiveSpec {
    let toml = r#"
        bodies = [
            { name = "p", points = ["pos"], radius = 0.1 },
            { name = "arm", points = ["pos", "vel"], radius = 0.05 },
        ]

        [[guardrails]]
        kind = "keep_out"
        name = "aabb"
        margin = 0.1
        bodies = ["p"]
        shape = { type = "box", center = [2.0, 0.0, 0.0], half_extents = [0.5, 0.5, 0.5] }

        [[guardrails]]
        kind = "keep_out"
        name = "yawed_box"
        margin = 0.1
        bodies = ["p"]
        shape = { type = "box", center = [1.0, 1.0, 0.0], half_extents = [1.0, 0.2, 0.2], rpy = [0.0, 0.0, 0.7853981633974483] }

        [[guardrails]]
        kind = "keep_out"
        name = "rolled_box"
        margin = 0.1
        bodies = ["p"]
        shape = { type = "box", center = [0.0, 0.0, 1.0], half_extents = [0.1, 0.5, 0.2], rpy = [1.5707963267948966, 0.0, 0.0] }

        [[guardrails]]
        kind = "keep_out"
        name = "sphere"
        margin = 0.1
        bodies = ["p"]
        shape = { type = "sphere", center = [0.0, 0.0, 1.0], radius = 0.3 }

        [[guardrails]]
        kind = "keep_out"
        name = "capsule"
        margin = 0.1
        bodies = ["p"]
        shape = { type = "capsule", a = [-1.0, 1.0, 0.0], b = [1.0, 1.0, 0.0], radius = 0.2 }

        [[guardrails]]
        kind = "keep_out"
        name = "cylinder"
        margin = 0.1
        bodies = ["p"]
        shape = { type = "cylinder", center = [0.0, 0.0, 0.5], radius = 0.5, half_height = 0.3 }

        [[guardrails]]
        kind = "keep_out"
        name = "arm_vs_sphere"
        margin = 0.1
        bodies = ["arm"]
        shape = { type = "sphere", center = [1.0, 0.0, 0.0], radius = 0.2 }

        [[guardrails]]
        kind = "keep_out"
        name = "arm_vs_box"
        margin = 0.1
        bodies = ["arm"]
        shape = { type = "box", center = [0.3, 1.0, 0.0], half_extents = [0.5, 0.1, 0.5] }

        [[guardrails]]
        kind = "clearance"
        name = "clearance"
        margin = 0.1
        min_distance = 0.25
        bodies = ["p"]
        obstacles = [
            { type = "sphere", center = [3.0, 0.0, 0.0], radius = 1.0 },
            { type = "box", center = [0.0, -1.0, 0.0], half_extents = [0.2, 0.2, 0.2] },
            { type = "cylinder", center = [-2.0, 0.0, 0.0], radius = 0.5, half_height = 1.0 },
        ]

        [[guardrails]]
        kind = "workspace"
        name = "workspace"
        margin = 0.1
        bodies = ["p"]
        lower = [-1.0, -2.0, -0.5]
        upper = [2.0, 2.0, 3.0]

        [[guardrails]]
        kind = "workspace"
        name = "arm_workspace"
        margin = 0.1
        bodies = ["arm"]
        lower = [-1.0, -2.0, -0.5]
        upper = [0.7, 2.0, 3.0]

        [[guardrails]]
        kind = "joint_position"
        name = "joints"
        margin = 0.1
        readouts = ["pos.x", "pos.y"]
        lower = [-0.5, -0.2]
        upper = [0.3, 1.0]

        [[guardrails]]
        kind = "joint_velocity"
        name = "joint_speeds"
        margin = 0.1
        readouts = ["vel.x"]
        lower = [-2.0]
        upper = [1.5]

        [[guardrails]]
        kind = "readout_limit"
        name = "speed_limit_as_readout"
        margin = 0.1
        readouts = ["speed"]
        lower = [0.0]
        upper = [0.8]

        [[guardrails]]
        kind = "speed"
        name = "speed"
        margin = 0.1
        readouts = ["vel.x", "vel.y", "vel.z"]
        max = 2.0
    "#;
    toml::from_str(toml).unwrap()
}
