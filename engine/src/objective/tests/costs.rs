//! Stage costs: hand-computed values per norm, weight and phase, targets,
//! gradients against finite differences, and the batched costs bit for bit.

use super::*;

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
    let running = obj.stage_cost(
        Stage {
            y: &y,
            z: &z,
            u: &u,
            u_prev: &u_prev,
            terminal: false,
        },
        &mut s,
        Some(&mut per),
    );
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
    let last = obj.stage_cost(
        Stage {
            y: &y,
            z: &z,
            u: &u,
            u_prev: &u_prev,
            terminal: true,
        },
        &mut s,
        Some(&mut per),
    );
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
        obj.stage_cost(
            Stage {
                y: &bad_y,
                z: &z,
                u: &u,
                u_prev: &u_prev,
                terminal: false
            },
            &mut s,
            None
        ),
        Real::INFINITY
    );
}

#[test]
fn set_target_changes_the_cost_and_checks_its_length() {
    let mut obj = five_terms().compile(&pm(2)).unwrap();
    let (z, y, u) = ([0.0; 4], [0.0; 5], [0.0; 2]);
    let mut s = obj.scratch();
    let before = obj.stage_cost(
        Stage {
            y: &y,
            z: &z,
            u: &u,
            u_prev: &u,
            terminal: false,
        },
        &mut s,
        None,
    );
    assert!(close(before, 2.0 * 5.0, 1e-12), "{before}");
    obj.set_target("goal", &[0.0, 0.0]).unwrap();
    obj.set_target("energy", &[0.0, 0.0, 3.0, 4.0]).unwrap();
    let after = obj.stage_cost(
        Stage {
            y: &y,
            z: &z,
            u: &u,
            u_prev: &u,
            terminal: false,
        },
        &mut s,
        None,
    );
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
            Stage {
                y: &y,
                z: &z,
                u: &u,
                u_prev: &u_prev,
                terminal,
            },
            &mut s,
            StageGradient {
                gy: &mut gy,
                gz: &mut gz,
                gu: &mut gu,
                gu_prev: &mut gp,
            },
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
                    obj.stage_cost(
                        Stage {
                            y: &y2,
                            z: &z2,
                            u: &u2,
                            u_prev: &p2,
                            terminal,
                        },
                        &mut s,
                        None,
                    )
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
        Stage {
            y: &y,
            z: &z,
            u: &u,
            u_prev: &u,
            terminal: false,
        },
        &mut s,
        StageGradient {
            gy: &mut gy,
            gz: &mut gz,
            gu: &mut gu,
            gu_prev: &mut gp,
        },
    );
    let (mut hy, mut hz, mut hu, mut hp) = ([1.0; 5], [1.0; 4], [1.0; 2], [1.0; 2]);
    obj.add_stage_gradient(
        Stage {
            y: &y,
            z: &z,
            u: &u,
            u_prev: &u,
            terminal: false,
        },
        &mut s,
        StageGradient {
            gy: &mut hy,
            gz: &mut hz,
            gu: &mut hu,
            gu_prev: &mut hp,
        },
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
            obj.stage_costs(
                Stage {
                    y: &y,
                    z: &z,
                    u: &u,
                    u_prev: &up,
                    terminal,
                },
                &mut scratch,
                &mut out,
            );
            for i in 0..n {
                let one = obj.stage_cost(
                    Stage {
                        y: &y[i * p..(i + 1) * p],
                        z: &z[i * d..(i + 1) * d],
                        u: &u[i * a..(i + 1) * a],
                        u_prev: &up[i * a..(i + 1) * a],
                        terminal,
                    },
                    &mut scratch,
                    None,
                );
                assert_eq!(out[i].to_bits(), one.to_bits(), "{} sample {i}", model.name);
            }
            assert_eq!((out[5], out[9]), (Real::INFINITY, Real::INFINITY));
        }
    }
}

/// The validator costs true readouts with no latent (`z` empty) against an
/// objective compiled for a model with one: a single step reads the widths
/// of the rows it is given, never the objective's.
#[test]
fn stage_cost_reads_the_widths_of_the_rows_it_is_given() {
    let spec = ObjectiveSpec {
        terms: vec![
            term(
                "all",
                readout(&["pos.x", "pos.y", "vel.x", "vel.y", "speed"], &[0.0; 5]),
                Norm::L1,
                2.0,
                Phase::Running,
            ),
            term(
                "energy",
                Residual::Latent {
                    target: vec![0.0; 4],
                },
                Norm::Quadratic,
                1.0,
                Phase::Running,
            ),
        ],
        ..Default::default()
    };
    let obj = spec.compile(&pm(2)).unwrap();
    let mut per = vec![0.0; 2];
    let cost = obj.stage_cost(
        Stage {
            y: &[1.0, -2.0, 0.5, 0.0, 3.0],
            z: &[],
            u: &[0.0, 0.0],
            u_prev: &[0.0, 0.0],
            terminal: false,
        },
        &mut obj.scratch(),
        Some(&mut per),
    );
    assert_eq!(cost, 13.0);
    assert_eq!(per, [13.0, 0.0]);
}
