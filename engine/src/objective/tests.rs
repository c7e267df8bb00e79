//! Unit tests of objectives: hand-computed costs and margins, gradients against
//! finite differences, and clear errors for specs that do not fit a model.
#![allow(clippy::unwrap_used, clippy::expect_used)]

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

#[test]
fn stage_cost_matches_hand_computation_for_norms_weights_and_phases() {
    let obj = five_terms().compile(&pm(2)).unwrap();
    assert_eq!(
        obj.term_names().collect::<Vec<_>>(),
        ["goal", "effort", "rate", "energy", "slow"]
    );
    let z = [0.5, -1.0, 3.0, 4.0];
    let y = [0.5, -1.0, 3.0, 4.0, 5.0];
    let u = [1.0, -2.0];
    let u_prev = [0.2, -2.5];
    // goal: 2·((0.5−1)² + (−1−2)²) = 2·9.25
    let goal = 18.5;
    // effort: 0.5·(|1| + |−2|)
    let effort = 1.5;
    // rate: residual (0.8, 0.5); Huber δ = 0.5: 0.5·(0.8 − 0.25) + ½·0.5², times 3
    let rate = 3.0 * (0.275 + 0.125);
    // energy: ‖z‖ = √26.25
    let energy = 26.25_f64.sqrt();
    // slow: √(5² + 0.1²) − 0.1
    let slow = 25.01_f64.sqrt() - 0.1;

    let mut s = obj.scratch();
    let mut per = vec![0.0; 5];
    let running = obj.stage_cost(&y, &z, &u, &u_prev, false, &mut s, Some(&mut per));
    assert!(close(running, goal + rate + energy, 1e-12), "{running}");
    let want = [goal, 0.0, rate, energy, 0.0];
    for (k, (got, want)) in per.iter().zip(want).enumerate() {
        assert!(
            close(*got, want, 1e-12),
            "running term {k}: {got} vs {want}"
        );
    }

    // The last step adds the terminal terms; `Both` counts twice there.
    per.fill(0.0);
    let last = obj.stage_cost(&y, &z, &u, &u_prev, true, &mut s, Some(&mut per));
    let total = goal + effort + 2.0 * rate + energy + slow;
    assert!(close(last, total, 1e-12), "{last} vs {total}");
    let want = [goal, effort, 2.0 * rate, energy, slow];
    for (k, (got, want)) in per.iter().zip(want).enumerate() {
        assert!(
            close(*got, want, 1e-12),
            "terminal term {k}: {got} vs {want}"
        );
    }

    // Non-finite costs are reported as +∞, never NaN.
    let bad_y = [Real::NAN, 0.0, 0.0, 0.0, 0.0];
    assert_eq!(
        obj.stage_cost(&bad_y, &z, &u, &u_prev, false, &mut s, None),
        Real::INFINITY
    );
}

#[test]
fn set_target_changes_the_cost_and_checks_its_length() {
    let mut obj = five_terms().compile(&pm(2)).unwrap();
    let (z, y, u) = ([0.0; 4], [0.0; 5], [0.0; 2]);
    let mut s = obj.scratch();
    let before = obj.stage_cost(&y, &z, &u, &u, false, &mut s, None);
    assert!(close(before, 2.0 * 5.0, 1e-12), "{before}");
    obj.set_target("goal", &[0.0, 0.0]).unwrap();
    obj.set_target("energy", &[0.0, 0.0, 3.0, 4.0]).unwrap();
    let after = obj.stage_cost(&y, &z, &u, &u, false, &mut s, None);
    assert!(close(after, 5.0, 1e-12), "{after}");

    let err = obj
        .set_target("goal", &[1.0, 2.0, 3.0])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("goal") && err.contains("3 values") && err.contains("expected 2"),
        "{err}"
    );
    let err = obj.set_target("nope", &[1.0]).unwrap_err().to_string();
    assert!(err.contains("nope"), "{err}");
    let err = obj.set_target("rate", &[1.0, 2.0]).unwrap_err().to_string();
    assert!(err.contains("rate") && err.contains("no target"), "{err}");
    let err = obj
        .set_target("goal", &[1.0, Real::NAN])
        .unwrap_err()
        .to_string();
    assert!(err.contains("not finite"), "{err}");
}

#[test]
fn stage_gradient_matches_finite_differences() {
    let spec = ObjectiveSpec {
        terms: vec![
            term(
                "goal",
                readout(&["pos.x", "pos.y", "speed"], &[1.0, 2.0, 0.5]),
                Norm::Quadratic,
                2.0,
                Phase::Both,
            ),
            term(
                "goal_l2",
                readout(&["pos.y", "vel.x"], &[0.3, -0.1]),
                Norm::L2 { eps: 0.05 },
                0.7,
                Phase::Running,
            ),
            term(
                "effort",
                Residual::Action {
                    target: vec![0.1, -0.2],
                },
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
                    target: vec![0.2, 0.1, -0.3, 0.4],
                },
                Norm::SmoothAbs { eps: 0.2 },
                1.3,
                Phase::Running,
            ),
        ],
        ..Default::default()
    };
    let obj = spec.compile(&pm(2)).unwrap();
    let mut s = obj.scratch();
    let y = [0.4, -0.7, 1.1, 0.6, 1.2];
    let z = [0.9, -0.2, 0.8, 0.35];
    let u = [0.45, -0.6];
    let u_prev = [0.2, 0.3];
    for terminal in [false, true] {
        let (mut gy, mut gz, mut gu, mut gp) = ([0.0; 5], [0.0; 4], [0.0; 2], [0.0; 2]);
        obj.add_stage_gradient(
            &y, &z, &u, &u_prev, terminal, &mut s, &mut gy, &mut gz, &mut gu, &mut gp,
        );
        // Perturb each input in turn: 0 = y, 1 = z, 2 = u, 3 = u_prev.
        let lens = [5, 4, 2, 2];
        let analytic: [&[Real]; 4] = [&gy, &gz, &gu, &gp];
        for (which, len) in lens.into_iter().enumerate() {
            for i in 0..len {
                let h = 1e-6;
                let mut f = |delta: Real| {
                    let (mut y2, mut z2, mut u2, mut p2) = (y, z, u, u_prev);
                    match which {
                        0 => y2[i] += delta,
                        1 => z2[i] += delta,
                        2 => u2[i] += delta,
                        _ => p2[i] += delta,
                    }
                    obj.stage_cost(&y2, &z2, &u2, &p2, terminal, &mut s, None)
                };
                let fd = (f(h) - f(-h)) / (2.0 * h);
                let g = analytic[which][i];
                assert!(
                    (fd - g).abs() < 1e-5 * (1.0 + fd.abs()),
                    "terminal={terminal} input {which} index {i}: analytic {g} vs finite difference {fd}"
                );
            }
        }
    }
}

#[test]
fn stage_gradient_adds_to_the_buffers() {
    let obj = five_terms().compile(&pm(2)).unwrap();
    let mut s = obj.scratch();
    let (y, z, u) = (
        [0.5, -1.0, 3.0, 4.0, 5.0],
        [0.5, -1.0, 3.0, 4.0],
        [1.0, -2.0],
    );
    let (mut gy, mut gz, mut gu, mut gp) = ([0.0; 5], [0.0; 4], [0.0; 2], [0.0; 2]);
    obj.add_stage_gradient(
        &y, &z, &u, &u, false, &mut s, &mut gy, &mut gz, &mut gu, &mut gp,
    );
    let (mut hy, mut hz, mut hu, mut hp) = ([1.0; 5], [1.0; 4], [1.0; 2], [1.0; 2]);
    obj.add_stage_gradient(
        &y, &z, &u, &u, false, &mut s, &mut hy, &mut hz, &mut hu, &mut hp,
    );
    for (a, b) in gy
        .iter()
        .chain(&gz)
        .chain(&gu)
        .chain(&gp)
        .zip(hy.iter().chain(&hz).chain(&hu).chain(&hp))
    {
        assert!(close(a + 1.0, *b, 1e-12), "{a} + 1 vs {b}");
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

#[test]
fn margins_of_every_guardrail_kind_match_hand_computation() {
    let obj = all_guardrails().compile(&pm(3)).unwrap();
    let y = y3([0.0; 3], [0.6, 0.8, 0.0]);
    let sqrt2 = 2.0_f64.sqrt();
    let want = [
        ("aabb", 1.5 - 0.1),
        // Box frame: the origin lies on the box's long axis, √2 from its centre.
        ("yawed_box", sqrt2 - 1.0 - 0.1),
        // Rolled by 90° about x, the box's y half extent (0.5) points along world z.
        ("rolled_box", 1.0 - 0.5 - 0.1),
        ("sphere", 1.0 - 0.3 - 0.1),
        ("capsule", 1.0 - 0.2 - 0.1),
        // Below the cylinder's bottom face (z = 0.2), inside its radius.
        ("cylinder", 0.2 - 0.1),
        // The segment (0,0,0)–(0.6,0.8,0) passes (0.36,0.48,0), 0.8 from the centre.
        ("arm_vs_sphere", 0.8 - 0.2 - 0.05),
        // The segment's top end (y = 0.8) lies under the box's lower face (y = 0.9).
        ("arm_vs_box", 0.1 - 0.05),
        // Nearest obstacle: the box, 0.8 away.
        ("clearance", 0.8 - 0.1 - 0.25),
        // Tightest face: z ≥ −0.5.
        ("workspace", 0.5 - 0.1),
        // Tightest: the capsule's far end, x = 0.6 ≤ 0.7.
        ("arm_workspace", 0.7 - 0.6 - 0.05),
        // Tightest: pos.y ≥ −0.2.
        ("joints", 0.2),
        ("joint_speeds", 1.5 - 0.6),
        // speed 1 > 0.8: violated.
        ("speed_limit_as_readout", 0.8 - 1.0),
        ("speed", 2.0 - 1.0),
    ];
    assert_eq!(
        obj.guardrail_names().collect::<Vec<_>>(),
        want.iter().map(|(n, _)| *n).collect::<Vec<_>>()
    );
    let mut raw = vec![0.0; obj.num_guardrails()];
    let mut buffered = raw.clone();
    obj.margins(&y, false, &mut raw);
    obj.margins(&y, true, &mut buffered);
    for (k, (name, m)) in want.iter().enumerate() {
        // Box-versus-capsule distances are lower bounds within a few millimetres.
        let tol = if *name == "arm_vs_box" { 5e-3 } else { 1e-9 };
        assert!(raw[k] <= m + 1e-9, "{name}: {} above the exact {m}", raw[k]);
        assert!(raw[k] >= m - tol, "{name}: {} vs {m}", raw[k]);
        assert!(close(buffered[k], raw[k] - 0.1, 1e-12), "{name} buffered");
    }
}

#[test]
fn margins_are_negative_inside() {
    let obj = all_guardrails().compile(&pm(3)).unwrap();
    let names: Vec<&str> = obj.guardrail_names().collect();
    let at = |n: &str| names.iter().position(|x| *x == n).unwrap();
    let mut m = vec![0.0; obj.num_guardrails()];
    // Inside the cylinder: 0.3 below its top face, 0.5 from its side.
    obj.margins(&y3([0.0, 0.0, 0.5], [0.0; 3]), false, &mut m);
    assert!(
        close(m[at("cylinder")], -0.3 - 0.1, 1e-12),
        "{}",
        m[at("cylinder")]
    );
    // At the centre of the yawed box: 0.2 from its long faces.
    obj.margins(&y3([1.0, 1.0, 0.0], [0.0; 3]), false, &mut m);
    assert!(
        close(m[at("yawed_box")], -0.2 - 0.1, 1e-12),
        "{}",
        m[at("yawed_box")]
    );
    // Outside the workspace in x by 0.5.
    obj.margins(&y3([2.5, 0.0, 0.0], [0.0; 3]), false, &mut m);
    assert!(
        close(m[at("workspace")], -0.5 - 0.1, 1e-12),
        "{}",
        m[at("workspace")]
    );
}

/// Regression: `Real::min` and the box distance dropped NaN, so a NaN position
/// gave keep-out margins of `+∞` and workspace or limit margins that looked safe.
#[test]
fn nan_readouts_never_look_safe() {
    let obj = all_guardrails().compile(&pm(3)).unwrap();
    let names: Vec<&str> = obj.guardrail_names().collect();
    let mut m = vec![0.0; obj.num_guardrails()];
    let speed_only = ["joint_speeds", "speed_limit_as_readout", "speed"];
    for bad in [Real::NAN, Real::INFINITY, Real::NEG_INFINITY] {
        let mut y = y3([0.0; 3], [0.1, 0.0, 0.0]);
        y[0] = bad;
        obj.margins(&y, false, &mut m);
        for (k, name) in names.iter().enumerate() {
            if !speed_only.contains(name) {
                assert_eq!(m[k], Real::NEG_INFINITY, "{name} with pos.x = {bad}");
            } else {
                assert!(m[k].is_finite() && m[k] > 0.0, "{name} does not read pos.x");
            }
        }
        let mut y = y3([0.0; 3], [0.1, 0.0, 0.0]);
        y[3] = bad;
        y[6] = bad;
        obj.margins(&y, true, &mut m);
        for name in speed_only {
            let k = names.iter().position(|n| *n == name).unwrap();
            assert_eq!(m[k], Real::NEG_INFINITY, "{name} with vel.x = {bad}");
        }
    }
}

#[test]
fn margin_gradient_matches_finite_differences() {
    let obj = all_guardrails().compile(&pm(3)).unwrap();
    let names: Vec<&str> = obj.guardrail_names().collect();
    // Generic points, away from kinks of any margin.
    let points = [
        y3([0.13, -0.07, 0.21], [0.55, 0.83, 0.12]),
        y3([-0.31, 0.42, 0.05], [0.2, -0.35, 0.6]),
    ];
    let mut m = vec![0.0; obj.num_guardrails()];
    for y in &points {
        for (k, name) in names.iter().enumerate() {
            let mut g = vec![0.0; y.len()];
            obj.margin_gradient(k, y, &mut g);
            for i in 0..y.len() {
                let h = 1e-5;
                let mut f = |d: Real| {
                    let mut yy = y.clone();
                    yy[i] += d;
                    obj.margins(&yy, true, &mut m);
                    m[k]
                };
                let fd = (f(h) - f(-h)) / (2.0 * h);
                // Box-versus-capsule margins come from a search: looser.
                let tol = if *name == "arm_vs_box" { 5e-2 } else { 1e-5 };
                assert!(
                    (fd - g[i]).abs() < tol,
                    "{name} d/dy[{i}]: {} vs {fd}",
                    g[i]
                );
            }
        }
    }
    // And against closed forms at the first point.
    let y = &points[0];
    let mut g = vec![0.0; y.len()];
    let unit = |v: [Real; 3]| {
        let n = v.iter().map(|x| x * x).sum::<Real>().sqrt();
        v.map(|x| x / n)
    };
    // Sphere at (0,0,1): the margin grows along (p − c)/|p − c|.
    obj.margin_gradient(
        names.iter().position(|n| *n == "sphere").unwrap(),
        y,
        &mut g,
    );
    let dir = unit([0.13, -0.07, 0.21 - 1.0]);
    for i in 0..3 {
        assert!(
            (g[i] - dir[i]).abs() < 1e-6,
            "sphere {i}: {} vs {}",
            g[i],
            dir[i]
        );
    }
    assert!(g[3..].iter().all(|x| x.abs() < 1e-9));
    // Speed: −v/|v| over the velocity readouts.
    obj.margin_gradient(names.iter().position(|n| *n == "speed").unwrap(), y, &mut g);
    let dir = unit([0.55, 0.83, 0.12]);
    for i in 0..3 {
        assert!((g[3 + i] + dir[i]).abs() < 1e-6, "speed {i}");
    }
    // Joint limits: the active one is pos.y ≥ −0.2 (0.13 away): gradient +1 on pos.y.
    obj.margin_gradient(
        names.iter().position(|n| *n == "joints").unwrap(),
        y,
        &mut g,
    );
    let want = [0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0];
    for i in 0..7 {
        assert!((g[i] - want[i]).abs() < 1e-6, "joints {i}: {}", g[i]);
    }
    // An out-of-range guardrail index leaves the buffer alone.
    g.fill(7.0);
    obj.margin_gradient(99, y, &mut g);
    assert!(g.iter().all(|x| *x == 7.0));
}

#[test]
fn planar_models_see_the_plane_z_equals_zero() {
    // A 2-D point mass has no pos.z: points sit at z = 0.
    let toml = r#"
        bodies = [{ name = "p", points = ["pos"], radius = 0.1 }]
        [[guardrails]]
        kind = "keep_out"
        name = "sphere"
        shape = { type = "sphere", center = [1.0, 0.0, 0.3], radius = 0.5 }
    "#;
    let spec: ObjectiveSpec = toml::from_str(toml).unwrap();
    let obj = spec.compile(&pm(2)).unwrap();
    let mut m = [0.0];
    obj.margins(&[1.0, 0.0, 0.0, 0.0, 0.0], false, &mut m);
    assert!(close(m[0], 0.3 - 0.5 - 0.1, 1e-12), "{}", m[0]);
}

#[test]
fn compile_errors_name_the_problem() {
    let model = pm(2);
    let compile = |toml: &str| {
        let spec: ObjectiveSpec = toml::from_str(toml).unwrap();
        spec.compile(&model).unwrap_err().to_string()
    };
    let err = compile(
        r#"[[terms]]
           name = "goal"
           residual = { kind = "readout", readouts = ["pos.x", "gripper.x"] }"#,
    );
    assert!(
        err.contains("goal") && err.contains("'gripper.x'") && err.contains("point_mass"),
        "{err}"
    );
    let err = compile(
        r#"[[terms]]
           name = "goal"
           residual = { kind = "readout", readouts = ["pos.x"], target = [1.0, 2.0] }"#,
    );
    assert!(
        err.contains("goal") && err.contains("target has 2 values"),
        "{err}"
    );
    let err = compile(
        r#"[[terms]]
           name = "effort"
           residual = { kind = "action", target = [1.0] }"#,
    );
    assert!(
        err.contains("effort") && err.contains("target has 1 values"),
        "{err}"
    );
    let err = compile(
        r#"[[terms]]
           name = "goal"
           weight = -1.0
           residual = { kind = "action" }"#,
    );
    assert!(err.contains("goal") && err.contains("weight"), "{err}");
    let err = compile(
        r#"[[terms]]
           name = "goal"
           norm = { kind = "huber", delta = 0.0 }
           residual = { kind = "action" }"#,
    );
    assert!(err.contains("goal") && err.contains("delta"), "{err}");
    let err = compile(
        r#"[[guardrails]]
           kind = "keep_out"
           name = "table"
           shape = { type = "sphere", center = [0.0, 0.0, 0.0], radius = 1.0 }"#,
    );
    assert!(err.contains("table") && err.contains("bodies"), "{err}");
    let err = compile(
        r#"bodies = [{ name = "p", points = ["pos"], radius = 0.1 }]
           [[guardrails]]
           kind = "keep_out"
           name = "table"
           bodies = ["hand"]
           shape = { type = "sphere", center = [0.0, 0.0, 0.0], radius = 1.0 }"#,
    );
    assert!(err.contains("table") && err.contains("'hand'"), "{err}");
    let err = compile(r#"bodies = [{ name = "hand", points = ["wrist"], radius = 0.1 }]"#);
    assert!(err.contains("hand") && err.contains("'wrist.x'"), "{err}");
    let err = compile(
        r#"bodies = [{ name = "p", points = ["pos"], radius = 0.1 }]
           [[guardrails]]
           kind = "keep_out"
           name = "table"
           shape = { type = "sphere", center = [0.0, 0.0, 0.0], radius = -1.0 }"#,
    );
    assert!(err.contains("table") && err.contains("radius"), "{err}");
    let err = compile(
        r#"[[guardrails]]
           kind = "joint_position"
           name = "limits"
           readouts = ["elbow"]
           lower = [0.0]
           upper = [1.0]"#,
    );
    assert!(err.contains("limits") && err.contains("'elbow'"), "{err}");
    let err = compile(
        r#"[[guardrails]]
           kind = "joint_velocity"
           name = "limits"
           readouts = ["vel.x", "vel.y"]
           lower = [0.0]
           upper = [1.0, 1.0]"#,
    );
    assert!(
        err.contains("limits") && err.contains("2 readouts but 1 lower"),
        "{err}"
    );
    let err = compile(
        r#"[[guardrails]]
           kind = "readout_limit"
           name = "limits"
           readouts = ["vel.x"]
           lower = [1.0]
           upper = [0.0]"#,
    );
    assert!(
        err.contains("limits") && err.contains("lower limit exceeds"),
        "{err}"
    );
    let err = compile(
        r#"[[guardrails]]
           kind = "speed"
           name = "fast"
           readouts = ["vel.w"]
           max = 1.0"#,
    );
    assert!(err.contains("fast") && err.contains("'vel.w'"), "{err}");
    let err = compile(
        r#"[[guardrails]]
           kind = "speed"
           name = "fast"
           margin = -0.1
           readouts = ["speed"]
           max = 1.0"#,
    );
    assert!(err.contains("fast") && err.contains("margin"), "{err}");
    let err = compile(
        r#"bodies = [{ name = "p", points = ["pos"], radius = 0.1 }]
           [[guardrails]]
           kind = "workspace"
           name = "cell"
           lower = [0.0, 0.0, 0.0]
           upper = [1.0, 1.0, 0.0]"#,
    );
    assert!(
        err.contains("cell") && err.contains("lower must be < upper"),
        "{err}"
    );
}

#[test]
fn latent_goal_must_be_set_before_use() {
    let spec = ObjectiveSpec {
        terms: vec![term(
            "energy",
            Residual::Latent { target: vec![] },
            Norm::Quadratic,
            1.0,
            Phase::Terminal,
        )],
        ..Default::default()
    };
    let mut obj = spec.compile(&pm(2)).unwrap();
    let err = obj.check_ready().unwrap_err().to_string();
    assert!(
        err.contains("energy")
            && err.contains("latent goal is not set")
            && err.contains("4 values"),
        "{err}"
    );
    let err = obj.set_target("energy", &[0.0; 3]).unwrap_err().to_string();
    assert!(err.contains("expected 4"), "{err}");
    obj.set_target("energy", &[0.0; 4]).unwrap();
    obj.check_ready().unwrap();
    // A latent target of the wrong length is refused at compile time.
    let mut bad = spec.clone();
    bad.terms[0].residual = Residual::Latent {
        target: vec![1.0; 3],
    };
    let err = bad.compile(&pm(2)).unwrap_err().to_string();
    assert!(
        err.contains("energy") && err.contains("target has 3 values"),
        "{err}"
    );
}

#[test]
fn unknown_toml_keys_are_named() {
    let parse = |s: &str| toml::from_str::<ObjectiveSpec>(s).unwrap_err().to_string();
    let err = parse("gaurdrails = []");
    assert!(err.contains("gaurdrails"), "{err}");
    let err = parse(
        r#"[[terms]]
           name = "goal"
           wieght = 2.0
           residual = { kind = "action" }"#,
    );
    assert!(err.contains("wieght"), "{err}");
    let err = parse(
        r#"[[terms]]
           name = "goal"
           residual = { kind = "readout", readouts = ["pos.x"], targte = [1.0] }"#,
    );
    assert!(err.contains("targte"), "{err}");
    let err = parse(
        r#"[[terms]]
           name = "goal"
           norm = { kind = "huber", delta = 1.0, epsilon = 2.0 }
           residual = { kind = "action" }"#,
    );
    assert!(err.contains("epsilon"), "{err}");
    let err = parse(
        r#"[[guardrails]]
           kind = "keep_out"
           name = "table"
           buffer = 0.1
           shape = { type = "sphere", center = [0.0, 0.0, 0.0], radius = 1.0 }"#,
    );
    assert!(err.contains("buffer"), "{err}");
    let err = parse(
        r#"[[guardrails]]
           kind = "keep_out"
           name = "table"
           shape = { type = "sphere", center = [0.0, 0.0, 0.0], radius = 1.0, height = 2.0 }"#,
    );
    assert!(err.contains("height"), "{err}");
    let err = parse(
        r#"[[guardrails]]
           kind = "joint_position"
           name = "limits"
           readouts = ["pos.x"]
           lower = [0.0]
           upper = [1.0]
           hard = true"#,
    );
    assert!(err.contains("hard"), "{err}");
    let err = parse(r#"bodies = [{ name = "p", points = ["pos"], radius = 0.1, mass = 1.0 }]"#);
    assert!(err.contains("mass"), "{err}");
    let err = parse(
        r#"[[guardrails]]
           kind = "keep_away"
           name = "table""#,
    );
    assert!(err.contains("keep_away"), "{err}");
}

#[test]
fn specs_round_trip_through_toml() {
    let spec = all_guardrails();
    let text = toml::to_string(&spec).unwrap();
    let back: ObjectiveSpec = toml::from_str(&text).unwrap();
    assert_eq!(spec, back);
    let mut with_terms = five_terms();
    with_terms.guardrails = spec.guardrails;
    with_terms.bodies = spec.bodies;
    let text = toml::to_string(&with_terms).unwrap();
    let back: ObjectiveSpec = toml::from_str(&text).unwrap();
    assert_eq!(with_terms, back);
    // Defaults: quadratic, weight 1, running.
    let t: ObjectiveSpec = toml::from_str(
        r#"[[terms]]
           name = "goal"
           residual = { kind = "action" }"#,
    )
    .unwrap();
    assert_eq!(t.terms[0].norm, Norm::Quadratic);
    assert_eq!(t.terms[0].weight, 1.0);
    assert_eq!(t.terms[0].phase, Phase::Running);
}

#[test]
fn batched_stage_costs_equal_stage_cost_bit_for_bit() {
    use crate::model::{Pendulum, PendulumParams};
    let mut spec = five_terms();
    spec.terms.push(term(
        "x",
        readout(&["pos.x"], &[0.25]),
        Norm::Quadratic,
        0.7,
        Phase::Both,
    ));
    let pendulum = Pendulum::new(&PendulumParams::default()).unwrap();
    let swing = ObjectiveSpec {
        terms: vec![
            term(
                "angle",
                readout(&["angle"], &[0.0]),
                Norm::Quadratic,
                1.0,
                Phase::Running,
            ),
            term(
                "spin",
                readout(&["thetadot"], &[0.0]),
                Norm::Quadratic,
                0.1,
                Phase::Both,
            ),
            term(
                "effort",
                Residual::Action { target: vec![0.5] },
                Norm::Quadratic,
                0.001,
                Phase::Running,
            ),
        ],
        ..Default::default()
    };
    let cases = [
        (spec.compile(&pm(2)).unwrap(), pm(2)),
        (
            swing.compile(pendulum.spec()).unwrap(),
            pendulum.spec().clone(),
        ),
    ];
    let mut rng = crate::rng::Rng::new(9);
    for (obj, model) in cases {
        let (p, d, a) = (model.readout_dim(), model.latent_dim, model.action_dim());
        let n = 37;
        let mut draw = |len: usize| (0..len).map(|_| rng.range(-3.0, 3.0)).collect::<Vec<_>>();
        let (mut y, z, u, up) = (draw(n * p), draw(n * d), draw(n * a), draw(n * a));
        // Non-finite values in a readout every step's cost reads.
        let j = ["pos.x", "angle"]
            .iter()
            .find_map(|r| model.readout_index(r))
            .unwrap();
        y[5 * p + j] = Real::NAN;
        y[9 * p + j] = Real::INFINITY;
        let mut scratch = obj.scratch();
        let mut out = vec![0.0; n];
        for terminal in [false, true] {
            obj.stage_costs(&y, &z, &u, &up, terminal, &mut scratch, &mut out);
            for i in 0..n {
                let one = obj.stage_cost(
                    &y[i * p..(i + 1) * p],
                    &z[i * d..(i + 1) * d],
                    &u[i * a..(i + 1) * a],
                    &up[i * a..(i + 1) * a],
                    terminal,
                    &mut scratch,
                    None,
                );
                assert_eq!(out[i].to_bits(), one.to_bits(), "{} sample {i}", model.name);
            }
            assert_eq!((out[5], out[9]), (Real::INFINITY, Real::INFINITY));
        }
    }
}

#[test]
fn batched_violations_equal_margins_row_by_row_bit_for_bit() {
    // Every guardrail kind, plus the capsule body against every shape.
    let mut spec = all_guardrails();
    let extra: ObjectiveSpec = toml::from_str(
        r#"
        [[guardrails]]
        kind = "clearance"
        name = "arm_clearance"
        min_distance = 0.05
        bodies = ["arm"]
        obstacles = [
            { type = "box", center = [1.0, 1.0, 0.0], half_extents = [1.0, 0.2, 0.2], rpy = [0.1, 0.2, 0.7] },
            { type = "cylinder", center = [0.0, 0.0, 0.5], radius = 0.5, half_height = 0.3 },
            { type = "capsule", a = [-1.0, 1.0, 0.0], b = [1.0, 1.0, 0.0], radius = 0.2 },
        ]
        "#,
    )
    .unwrap();
    spec.guardrails.extend(extra.guardrails);
    let mut obj = spec.compile(&pm(3)).unwrap();
    let p = obj.readout_dim();
    // Buffers tightened step by step for model error, and relaxed by a
    // current state that sits inside some of them.
    let errors: Vec<Vec<Real>> = (0..p).map(|i| vec![0.01 * i as Real, 0.03]).collect();
    obj.set_readout_errors(&errors).unwrap();
    obj.relax_buffers(&y3([0.35, 1.0, 0.1], [0.2, 0.0, 0.0]));
    let mut rng = crate::rng::Rng::new(5);
    let n = 53;
    let mut y: Vec<Real> = (0..n)
        .flat_map(|_| {
            let mut r = |s: Real| rng.range(-s, s);
            y3([r(3.0), r(3.0), r(1.5)], [r(2.0), r(2.0), r(1.0)])
        })
        .collect();
    let clean = y.clone();
    y[3 * p] = Real::NAN;
    y[7 * p + 4] = Real::INFINITY;
    y[11 * p + 6] = Real::NEG_INFINITY;
    y[12 * p + 2] = Real::NAN;
    let row_by_row = |y: &[Real], t: usize, i: usize| {
        let row = &y[i * p..(i + 1) * p];
        let mut add = if row.iter().all(|x| x.is_finite()) {
            0.0
        } else {
            Real::INFINITY
        };
        let mut m = vec![0.0; obj.num_guardrails()];
        obj.margins_at_step(row, t, &mut m);
        add += m.iter().map(|m| (-m).max(0.0)).sum::<Real>();
        0.25 + if add.is_nan() { Real::INFINITY } else { add }
    };
    // Workspace sized for the rows, and one that grows on first use.
    for mut work in [Margins::new(n), Margins::default()] {
        for (ys, finite) in [(&y, false), (&clean, true), (&clean, false)] {
            for t in 0..3 {
                let mut v = vec![0.25; n];
                obj.add_violations(ys, t, finite, &mut work, &mut v);
                for (i, v) in v.iter().enumerate() {
                    let want = row_by_row(ys, t, i);
                    assert_eq!(
                        v.to_bits(),
                        want.to_bits(),
                        "row {i} step {t}: {v} vs {want}"
                    );
                }
            }
        }
        let mut v = vec![0.0; n];
        obj.add_violations(&y, 0, false, &mut work, &mut v);
        for i in [3, 7, 11, 12] {
            assert_eq!(v[i], Real::INFINITY, "row {i}");
        }
        assert!(v.iter().filter(|v| v.is_finite()).count() > n / 2);
    }
}

#[test]
fn duplicate_names_are_refused_naming_the_name_and_the_list() {
    let model = pm(2);
    let compile = |toml: &str| {
        let spec: ObjectiveSpec = toml::from_str(toml).unwrap();
        spec.compile(&model).map(|_| ()).map_err(|e| e.to_string())
    };
    // Two `goal` terms: `set_target("goal")` would only ever reach the first.
    let err = compile(
        r#"[[terms]]
           name = "goal"
           residual = { kind = "readout", readouts = ["pos.x"] }
           [[terms]]
           name = "effort"
           residual = { kind = "action" }
           [[terms]]
           name = "goal"
           residual = { kind = "readout", readouts = ["pos.y"] }"#,
    )
    .unwrap_err();
    assert!(
        err.contains("'goal'") && err.contains("terms") && err.contains("unique"),
        "{err}"
    );
    let err = compile(
        r#"[[guardrails]]
           kind = "speed"
           name = "slow"
           readouts = ["vel.x"]
           max = 1.0
           [[guardrails]]
           kind = "readout_limit"
           name = "slow"
           readouts = ["pos.x"]
           lower = [-1.0]
           upper = [1.0]"#,
    )
    .unwrap_err();
    assert!(
        err.contains("'slow'") && err.contains("guardrails"),
        "{err}"
    );
    let err = compile(
        r#"bodies = [
               { name = "p", points = ["pos"], radius = 0.1 },
               { name = "p", points = ["vel"], radius = 0.2 },
           ]"#,
    )
    .unwrap_err();
    assert!(err.contains("'p'") && err.contains("bodies"), "{err}");
    // The same name in two lists is fine.
    compile(
        r#"bodies = [{ name = "p", points = ["pos"], radius = 0.1 }]
           [[terms]]
           name = "p"
           residual = { kind = "action" }
           [[guardrails]]
           kind = "speed"
           name = "p"
           readouts = ["vel.x", "vel.y"]
           max = 1.0"#,
    )
    .unwrap();
}

#[test]
fn guardrails_over_no_readouts_are_refused() {
    let model = pm(2);
    let compile = |toml: &str| {
        let spec: ObjectiveSpec = toml::from_str(toml).unwrap();
        spec.compile(&model).map(|_| ()).map_err(|e| e.to_string())
    };
    let err = compile(
        r#"[[guardrails]]
           kind = "speed"
           name = "slow"
           readouts = []
           max = 1.0"#,
    )
    .unwrap_err();
    assert!(
        err.contains("'slow'") && err.contains("readouts is empty"),
        "{err}"
    );
    for kind in ["readout_limit", "joint_position", "joint_velocity"] {
        let err = compile(&format!(
            r#"[[guardrails]]
               kind = "{kind}"
               name = "box"
               readouts = []
               lower = []
               upper = []"#
        ))
        .unwrap_err();
        assert!(
            err.contains("'box'") && err.contains("readouts is empty"),
            "{kind}: {err}"
        );
    }
}

#[test]
fn a_norm_can_be_named_alone() {
    let spec: ObjectiveSpec = toml::from_str(
        r#"[[terms]]
           name = "goal"
           norm = "l2"
           residual = { kind = "readout", readouts = ["pos.x", "pos.y"], target = [3.0, 4.0] }"#,
    )
    .unwrap();
    assert_eq!(spec.terms[0].norm, Norm::L2 { eps: 0.0 });
    let obj = spec.compile(&pm(2)).unwrap();
    let mut s = obj.scratch();
    let y = [0.0, 0.0, 0.0, 0.0];
    let c = obj.stage_cost(&y, &[], &[0.0, 0.0], &[0.0, 0.0], false, &mut s, None);
    assert!(close(c, 5.0, 1e-12), "{c}");
}

/// A speed guardrail (max 1), a band of half-width 0.5 and a workspace of
/// half-width 2 around a body of radius 0.1, for the 2D point mass.
fn bands() -> Objective {
    let spec: ObjectiveSpec = toml::from_str(
        r#"bodies = [{ name = "p", points = ["pos"], radius = 0.1 }]
           [[guardrails]]
           kind = "speed"
           name = "slow"
           margin = 0.2
           readouts = ["vel.x", "vel.y"]
           max = 1.0
           [[guardrails]]
           kind = "readout_limit"
           name = "lane"
           readouts = ["pos.y", "pos.x"]
           lower = [-0.5, -10.0]
           upper = [0.5, 10.0]
           [[guardrails]]
           kind = "workspace"
           name = "room"
           lower = [-2.0, -2.0, -1.0]
           upper = [2.0, 2.0, 1.0]
           [[guardrails]]
           kind = "keep_out"
           name = "pillar"
           margin = 5.0
           shape = { type = "sphere", center = [0.0, 0.0, 0.0], radius = 0.3 }"#,
    )
    .unwrap();
    spec.compile(&pm(2)).unwrap()
}

#[test]
fn guardrails_that_model_error_makes_unsatisfiable_are_named_with_their_step() {
    let mut obj = bands();
    // Buffers alone leave every guardrail satisfiable.
    assert_eq!(obj.unsatisfiable_guardrails(10), []);
    // Readouts pos.x, pos.y, vel.x, vel.y, speed: errors growing by step.
    let errors = vec![
        vec![0.1, 0.2, 0.4, 1.0],
        vec![0.1, 0.3, 0.5, 0.6],
        vec![0.3, 0.4, 0.5, 0.6],
        vec![0.4, 0.4, 0.4, 0.4],
        vec![],
    ];
    obj.set_readout_errors(&errors).unwrap();
    let found = obj.unsatisfiable_guardrails(10);
    let names: Vec<(&str, usize)> = found
        .iter()
        .map(|u| (u.guardrail.as_str(), u.step))
        .collect();
    // slow requires 0.2 + |(e_vel.x, e_vel.y)|: 0.7, 0.77, 0.84, 0.92 < 1,
    // never. lane requires max(e_pos.y, e_pos.x): 0.5 at step 3 (0-based
    // 2) ≥ its half-band 0.5. room: the point sits at z = 0, 0.9 from its
    // floor and ceiling less the radius, and |(e_pos.x, e_pos.y)| reaches
    // |(1.0, 0.6)| ≈ 1.17 at step 4. A keep-out is never bounded.
    assert_eq!(names, [("lane", 2), ("room", 3)], "{found:?}");
    let lane = &found[0];
    assert!(close(lane.required, 0.5, 1e-12) && close(lane.capacity, 0.5, 1e-12));
    let text = lane.to_string();
    assert!(text.contains("'lane'") && text.contains("step 3"), "{text}");
    // Beyond the table the last step's error holds; a horizon that ends
    // before step 3 never meets it.
    assert_eq!(obj.unsatisfiable_guardrails(2), []);
    // Larger velocity errors switch the speed guardrail off from step 1.
    let mut errors = errors;
    errors[2] = vec![0.9, 0.9, 0.9, 0.9];
    obj.set_readout_errors(&errors).unwrap();
    let found = obj.unsatisfiable_guardrails(10);
    let slow = found.iter().find(|u| u.guardrail == "slow").unwrap();
    assert_eq!(slow.step, 0);
    assert!(close(slow.capacity, 1.0, 1e-12), "{slow:?}");
}
