//! Unit tests of the planners: determinism, fallbacks when nothing is feasible,
//! the shield, and clear errors for bad input.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::rollout::rank;
use super::*;
use crate::error::ModelError;
use crate::model::{ModelSpec, PointMass, Unicycle, WorldModel};
use crate::objective::ObjectiveSpec;
use std::cmp::Ordering;

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

#[test]
fn same_seed_gives_bit_identical_plans() {
    for kind in KINDS {
        let a = run(&mut *planner(REACH, config(kind, 42)), [0.0; 4], 6);
        let b = run(&mut *planner(REACH, config(kind, 42)), [0.0; 4], 6);
        assert_eq!(a, b, "{kind:?}");
    }
}

#[test]
fn different_seeds_give_different_plans() {
    for kind in KINDS {
        let a = run(&mut *planner(REACH, config(kind, 1)), [0.0; 4], 3);
        let b = run(&mut *planner(REACH, config(kind, 2)), [0.0; 4], 3);
        for (t, (pa, pb)) in a.iter().zip(&b).enumerate() {
            assert_ne!(pa, pb, "{kind:?}: step {t} is the same under two seeds");
        }
    }
}

#[test]
fn reseed_restores_the_sequence() {
    for kind in KINDS {
        let fresh = run(&mut *planner(REACH, config(kind, 7)), [0.0; 4], 4);
        let mut p = planner(REACH, config(kind, 7));
        run(&mut *p, [0.3, -0.2, 0.5, 0.1], 5);
        p.reseed(7);
        assert_eq!(run(&mut *p, [0.0; 4], 4), fresh, "{kind:?}: reseed(7)");
        assert_eq!(p.config().seed, 7);
        // Reseeding to another seed equals a planner built with it.
        p.reseed(9);
        assert_eq!(p.config().seed, 9);
        let nine = run(&mut *planner(REACH, config(kind, 9)), [0.0; 4], 4);
        assert_eq!(run(&mut *p, [0.0; 4], 4), nine, "{kind:?}: reseed(9)");
    }
}

#[test]
fn reset_forgets_the_warm_start_and_the_last_action() {
    // The noise stream is not rewound by `reset`, but it is consumed at the same
    // rate whatever the observations: two planners with different histories
    // must agree exactly after a reset.
    for kind in KINDS {
        let o3 = [0.2, 0.1, 0.0, 0.3];
        let mut a = planner(REACH, config(kind, 3));
        let mut b = planner(REACH, config(kind, 3));
        a.plan(&[0.0; 4]).unwrap();
        a.plan(&[0.05, 0.0, 0.5, 0.0]).unwrap();
        b.plan(&[-0.4, 0.6, 0.0, -1.0]).unwrap();
        b.plan(&[-0.5, 0.5, -0.9, -1.0]).unwrap();
        let mut c = planner(REACH, config(kind, 3));
        c.plan(&[-0.4, 0.6, 0.0, -1.0]).unwrap();
        c.plan(&[-0.5, 0.5, -0.9, -1.0]).unwrap();
        let no_reset = fingerprint(c.plan(&o3).unwrap());
        a.reset();
        b.reset();
        let pa = fingerprint(a.plan(&o3).unwrap());
        let pb = fingerprint(b.plan(&o3).unwrap());
        assert_eq!(pa, pb, "{kind:?}: plans after reset depend on history");
        assert_ne!(pb, no_reset, "{kind:?}: reset changed nothing");
    }
}

/// The point starts inside a ball of radius 1 and cannot leave it within the
/// horizon (½·1·1² = 0.5 m at most): nothing is feasible.
const TRAPPED: &str = r#"
    bodies = [{ name = "p", points = ["pos"], radius = 0.1 }]

    [[terms]]
    name = "goal"
    residual = { kind = "readout", readouts = ["pos.x", "pos.y"], target = [3.0, 0.0] }

    [[guardrails]]
    kind = "keep_out"
    name = "ball"
    shape = { type = "sphere", center = [0.0, 0.0, 0.0], radius = 1.0 }
"#;

fn trapped_planner(kind: PlannerKind, fallback: Fallback) -> Box<dyn Planner> {
    let model = PointMass::new(2, 0.1, 1.0).unwrap();
    let obj = objective(TRAPPED, model.spec());
    let cfg = PlannerConfig {
        horizon: 10,
        fallback,
        ..config(kind, 5)
    };
    build(model, obj, cfg).unwrap()
}

fn assert_fallback(p: &mut dyn Planner, obs: &[Real], want: &[Real], what: &str) {
    // Several calls: the warm start of an infeasible plan must not change the answer.
    for call in 0..3 {
        let plan = p.plan(obs).unwrap();
        assert_eq!(
            plan.status,
            PlanStatus::NoFeasiblePlan,
            "{what} call {call}"
        );
        assert!(!plan.status.is_feasible());
        assert_eq!(plan.action, want, "{what} call {call}");
        assert!(plan.violation > 0.0, "{what}: violation {}", plan.violation);
        assert!(plan.worst_margin() < 0.0, "{what}");
        assert_eq!(plan.feasible_samples, 0, "{what}");
    }
}

#[test]
fn no_feasible_plan_returns_the_zero_fallback() {
    for kind in KINDS {
        let mut p = trapped_planner(kind, Fallback::Zero);
        assert_fallback(&mut *p, &[0.1, 0.0, 0.3, 0.0], &[0.0, 0.0], "zero");
    }
}

#[test]
fn no_feasible_plan_returns_the_constant_fallback_clamped() {
    for kind in KINDS {
        let action = vec![0.3, -0.2];
        let mut p = trapped_planner(kind, Fallback::Constant { action });
        assert_fallback(&mut *p, &[0.1, 0.0, 0.3, 0.0], &[0.3, -0.2], "constant");
        // Outside the action bounds (±1): clamped, by construction.
        let action = vec![5.0, -0.5];
        let mut p = trapped_planner(kind, Fallback::Constant { action });
        assert_fallback(&mut *p, &[0.1, 0.0, 0.3, 0.0], &[1.0, -0.5], "constant");
    }
}

#[test]
fn no_feasible_plan_returns_the_hold_fallback() {
    for kind in KINDS {
        let readouts = vec!["vel.y".into(), "pos.x".into()];
        let mut p = trapped_planner(kind, Fallback::Hold { readouts });
        // Each action equals the current readout, clamped into ±1.
        assert_fallback(&mut *p, &[0.1, 0.0, 0.3, -0.25], &[-0.25, 0.1], "hold");
        assert_fallback(&mut *p, &[-0.2, 0.3, 0.0, 4.0], &[1.0, -0.2], "hold");
    }
}

#[test]
fn limits_that_cannot_be_met_give_the_fallback() {
    let toml = r#"
        [[terms]]
        name = "goal"
        residual = { kind = "readout", readouts = ["pos.x"], target = [5.5] }

        [[guardrails]]
        kind = "readout_limit"
        name = "far_away"
        readouts = ["pos.x"]
        lower = [5.0]
        upper = [6.0]
    "#;
    for kind in KINDS {
        let action = vec![-0.5, 0.25];
        let mut p = planner(
            toml,
            PlannerConfig {
                fallback: Fallback::Constant {
                    action: action.clone(),
                },
                ..config(kind, 0)
            },
        );
        assert_fallback(&mut *p, &[0.0; 4], &action, "far limits");
    }
}

#[test]
fn feasible_plans_pass_the_shield() {
    for kind in KINDS {
        let mut p = planner(REACH, config(kind, 11));
        let mut model = point_mass();
        let mut x = vec![0.0; 4];
        let mut next = vec![0.0; 4];
        let mut y = vec![0.0; 5];
        let mut m = vec![0.0; 1];
        for step in 0..15 {
            let plan = p.plan(&x).unwrap().clone();
            assert!(plan.status.is_feasible(), "{kind:?} step {step}");
            assert_eq!(plan.violation, 0.0);
            assert!(plan.worst_margin() >= 0.0);
            assert_eq!(plan.action, plan.actions[..2]);
            // Replaying the plan through the model gives its readouts, and
            // every predicted state keeps the buffered margin.
            let mut z = x.clone();
            for t in 0..15 {
                let u = &plan.actions[t * 2..(t + 1) * 2];
                assert!(u.iter().all(|a| a.abs() <= 2.0), "bounds");
                model.predict(&z, u, &mut next).unwrap();
                z.copy_from_slice(&next);
                model.readout(&z, &mut y).unwrap();
                assert_eq!(y, plan.readouts[t * 5..(t + 1) * 5], "step {step} t {t}");
                p.objective().margins(&y, true, &mut m);
                assert!(m[0] >= 0.0, "{kind:?} step {step} t {t}: margin {}", m[0]);
            }
            let terms: Real = plan.term_costs.iter().sum();
            assert!((terms - plan.cost).abs() <= 1e-9 * plan.cost.abs().max(1.0));
            model.predict(&x, &plan.action, &mut next).unwrap();
            x.copy_from_slice(&next);
        }
    }
}

#[test]
fn feasible_plans_rank_before_cheaper_infeasible_ones() {
    assert_eq!(rank(0.0, 100.0, 0.1, 1.0), Ordering::Less);
    assert_eq!(rank(0.1, 1.0, 0.0, 100.0), Ordering::Greater);
    assert_eq!(rank(0.0, 1.0, 0.0, 2.0), Ordering::Less);
    // Among infeasible plans, the smaller violation wins whatever the cost.
    assert_eq!(rank(0.2, 1.0, 0.1, 50.0), Ordering::Greater);
    assert_eq!(rank(0.1, 1.0, 0.1, 2.0), Ordering::Less);
    assert_eq!(rank(Real::INFINITY, 0.0, 1e9, 1e9), Ordering::Greater);
}

#[test]
fn time_budget_returns_the_best_plan_so_far() {
    for kind in KINDS {
        let mut p = planner(
            REACH,
            PlannerConfig {
                iterations: 1000,
                time_budget_ms: Some(1e-3),
                ..config(kind, 0)
            },
        );
        let plan = p.plan(&[0.0; 4]).unwrap();
        assert_eq!(plan.status, PlanStatus::OutOfTime, "{kind:?}");
        assert!(plan.iterations >= 1 && plan.iterations < 1000);
    }
}

/// Regression: with a horizon of one step, shifting the warm start computed
/// `last − a` with `last = 0` and panicked on the second call.
#[test]
fn horizon_of_one_step_plans_repeatedly() {
    for kind in KINDS {
        let mut p = planner(
            REACH,
            PlannerConfig {
                horizon: 1,
                ..config(kind, 0)
            },
        );
        for _ in 0..3 {
            let plan = p.plan(&[0.0; 4]).unwrap();
            assert!(plan.status.is_feasible());
            assert!(plan.action[0] > 0.0, "{:?}", plan.action);
        }
    }
}

/// A point mass whose predictions are NaN when `|u_x| > 0.5`.
#[derive(Debug)]
struct Flaky(PointMass);

impl WorldModel for Flaky {
    fn spec(&self) -> &ModelSpec {
        self.0.spec()
    }
    fn encode(&mut self, obs: &[Real], z: &mut [Real]) -> Result<(), ModelError> {
        self.0.encode(obs, z)
    }
    fn predict(&mut self, z: &[Real], u: &[Real], out: &mut [Real]) -> Result<(), ModelError> {
        self.0.predict(z, u, out)?;
        for (row, a) in out.chunks_mut(4).zip(u.chunks(2)) {
            if a[0].abs() > 0.5 {
                row[0] = Real::NAN;
            }
        }
        Ok(())
    }
    fn readout(&mut self, z: &[Real], y: &mut [Real]) -> Result<(), ModelError> {
        self.0.readout(z, y)
    }
}

#[test]
fn nan_predictions_are_never_chosen() {
    for kind in KINDS {
        let model = Flaky(point_mass());
        let obj = objective(REACH, model.spec());
        let mut p = build(model, obj, config(kind, 0)).unwrap();
        for _ in 0..3 {
            let plan = p.plan(&[0.0; 4]).unwrap();
            assert!(plan.status.is_feasible(), "{kind:?}");
            assert!(plan.cost.is_finite() && plan.readouts.iter().all(|x| x.is_finite()));
            assert!(
                plan.actions.chunks(2).all(|u| u[0].abs() <= 0.5),
                "{kind:?}"
            );
        }
    }
}

#[test]
fn non_finite_observations_are_errors_naming_the_index() {
    for kind in KINDS {
        let mut p = planner(REACH, config(kind, 0));
        for (i, bad) in [(1, Real::NAN), (2, Real::INFINITY), (3, Real::NEG_INFINITY)] {
            let mut obs = [0.0; 4];
            obs[i] = bad;
            let err = p.plan(&obs).unwrap_err();
            match &err {
                PlanError::NonFiniteObservation { index, value } => {
                    assert_eq!(*index, i);
                    assert!(value.is_nan() == bad.is_nan());
                    assert!(bad.is_nan() || *value == bad);
                }
                other => panic!("{kind:?}: expected NonFiniteObservation, got {other:?}"),
            }
            assert!(err.to_string().contains(&format!("index {i}")), "{err}");
        }
        // The planner is still usable afterwards.
        assert!(p.plan(&[0.0; 4]).unwrap().status.is_feasible());
    }
}

#[test]
fn wrong_observation_length_is_an_error() {
    for kind in KINDS {
        let mut p = planner(REACH, config(kind, 0));
        for len in [0, 3, 5] {
            let err = p.plan(&vec![0.0; len]).unwrap_err();
            assert_eq!(
                err,
                PlanError::ObservationSize {
                    got: len,
                    expected: 4
                }
            );
            let text = err.to_string();
            assert!(
                text.contains(&format!("{len} values")) && text.contains('4'),
                "{text}"
            );
        }
    }
}

#[test]
fn validate_names_the_offending_field() {
    let cases: Vec<(PlannerConfig, &str)> = vec![
        (
            PlannerConfig {
                horizon: 0,
                ..Default::default()
            },
            "planner.horizon",
        ),
        (
            PlannerConfig {
                samples: 0,
                ..Default::default()
            },
            "planner.samples",
        ),
        (
            PlannerConfig {
                samples: 1,
                ..Default::default()
            },
            "planner.samples",
        ),
        (
            PlannerConfig {
                iterations: 0,
                ..Default::default()
            },
            "planner.iterations",
        ),
        (
            PlannerConfig {
                kind: PlannerKind::Cem,
                samples: 8,
                elites: 9,
                ..Default::default()
            },
            "planner.elites",
        ),
        (
            PlannerConfig {
                kind: PlannerKind::Cem,
                elites: 0,
                ..Default::default()
            },
            "planner.elites",
        ),
        (
            PlannerConfig {
                temperature: -0.1,
                ..Default::default()
            },
            "planner.temperature",
        ),
        (
            PlannerConfig {
                temperature: 0.0,
                ..Default::default()
            },
            "planner.temperature",
        ),
        (
            PlannerConfig {
                temperature: Real::NAN,
                ..Default::default()
            },
            "planner.temperature",
        ),
        (
            PlannerConfig {
                noise: -0.1,
                ..Default::default()
            },
            "planner.noise",
        ),
        (
            PlannerConfig {
                noise: Real::INFINITY,
                ..Default::default()
            },
            "planner.noise",
        ),
        (
            PlannerConfig {
                colored_noise_beta: 5.0,
                ..Default::default()
            },
            "planner.colored_noise_beta",
        ),
        (
            PlannerConfig {
                elite_reuse: 1.5,
                ..Default::default()
            },
            "planner.elite_reuse",
        ),
        (
            PlannerConfig {
                momentum: 1.0,
                ..Default::default()
            },
            "planner.momentum",
        ),
        (
            PlannerConfig {
                time_budget_ms: Some(0.0),
                ..Default::default()
            },
            "planner.time_budget_ms",
        ),
        (
            PlannerConfig {
                time_budget_ms: Some(Real::NAN),
                ..Default::default()
            },
            "planner.time_budget_ms",
        ),
    ];
    PlannerConfig::default().validate().unwrap();
    for (cfg, field) in cases {
        let err = cfg.validate().unwrap_err();
        assert!(err.contains(field), "{field}: {err}");
        // Building with it is the same error, never a panic.
        let model = point_mass();
        let obj = objective(REACH, model.spec());
        match build(model, obj, cfg) {
            Err(PlanError::Config(msg)) => assert!(msg.contains(field), "{msg}"),
            Err(other) => panic!("{field}: expected a config error, got {other}"),
            Ok(_) => panic!("{field}: built a planner from an invalid config"),
        }
    }
}

#[test]
fn config_from_toml_names_unknown_keys() {
    let parse = |s: &str| toml::from_str::<PlannerConfig>(s);
    let cfg = parse(
        r#"
        kind = "cem"
        horizon = 12
        elites = 8
        fallback = { kind = "hold", readouts = ["vel.x", "vel.y"] }
    "#,
    )
    .unwrap();
    assert_eq!(cfg.kind, PlannerKind::Cem);
    assert_eq!((cfg.horizon, cfg.elites, cfg.samples), (12, 8, 256));
    assert_eq!(
        cfg.fallback,
        Fallback::Hold {
            readouts: vec!["vel.x".into(), "vel.y".into()]
        }
    );
    let back: PlannerConfig = toml::from_str(&toml::to_string(&cfg).unwrap()).unwrap();
    assert_eq!(back, cfg);
    for (text, key) in [
        ("horizn = 10", "horizon"),
        ("temprature = 0.5", "temprature"),
        (
            r#"fallback = { kind = "constant", actoin = [0.0] }"#,
            "actoin",
        ),
        (r#"kind = "mpc""#, "mpc"),
        (r#"fallback = { kind = "brake" }"#, "brake"),
    ] {
        let err = parse(text).unwrap_err().to_string();
        assert!(err.contains(key), "{text}: {err}");
    }
    let err = parse("horizn = 10").unwrap_err().to_string();
    assert!(err.contains("horizn"), "{err}");
}

#[test]
fn fallback_that_does_not_fit_the_model_is_an_error() {
    let cases = [
        (
            Fallback::Constant {
                action: vec![0.0; 3],
            },
            "fallback",
        ),
        (
            Fallback::Constant {
                action: vec![0.0, Real::NAN],
            },
            "fallback",
        ),
        (
            Fallback::Hold {
                readouts: vec!["vel.x".into()],
            },
            "fallback hold",
        ),
        (
            Fallback::Hold {
                readouts: vec!["vel.x".into(), "joint3".into()],
            },
            "'joint3'",
        ),
    ];
    for (fallback, needle) in cases {
        let model = point_mass();
        let obj = objective(REACH, model.spec());
        let cfg = PlannerConfig {
            fallback: fallback.clone(),
            ..Default::default()
        };
        match build(model, obj, cfg) {
            Err(e @ PlanError::Config(_)) => {
                assert!(e.to_string().contains(needle), "{fallback:?}: {e}")
            }
            Err(other) => panic!("{fallback:?}: expected a config error, got {other}"),
            Ok(_) => panic!("{fallback:?}: accepted"),
        }
    }
}

#[test]
fn objective_for_another_model_is_refused() {
    let unicycle = Unicycle::new(0.1, 1.0, 1.0, 0.0).unwrap();
    let toml = r#"
        [[terms]]
        name = "effort"
        residual = { kind = "action" }
    "#;
    let obj = objective(toml, unicycle.spec());
    let err = build(point_mass(), obj, PlannerConfig::default())
        .err()
        .unwrap();
    assert!(
        matches!(&err, PlanError::Objective(m) if m.to_string().contains("6 readouts") && m.to_string().contains("has 5")),
        "{err}"
    );
}

#[test]
fn latent_goal_not_set_is_an_error_until_set() {
    let toml = r#"
        [[terms]]
        name = "energy"
        phase = "terminal"
        residual = { kind = "latent" }
    "#;
    for kind in KINDS {
        let mut p = planner(toml, config(kind, 0));
        let err = p.plan(&[0.0; 4]).unwrap_err();
        assert!(
            matches!(&err, PlanError::Objective(m) if m.to_string().contains("energy") && m.to_string().contains("latent goal is not set")),
            "{err}"
        );
        // A goal of the wrong size is refused, naming the sizes.
        let err = p
            .objective_mut()
            .set_target("energy", &[1.0, 0.0])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("energy") && err.contains("expected 4"),
            "{err}"
        );
        p.objective_mut()
            .set_target("energy", &[0.5, 0.0, 0.0, 0.0])
            .unwrap();
        let plan = p.plan(&[0.0; 4]).unwrap();
        assert!(plan.action[0] > 0.0, "{:?}", plan.action);
    }
}

#[test]
fn readout_target_mismatch_is_an_error() {
    let mut p = planner(REACH, config(PlannerKind::Mppi, 0));
    let err = p
        .objective_mut()
        .set_target("goal", &[1.0])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("goal") && err.contains("1 values") && err.contains("expected 2"),
        "{err}"
    );
    // The old target is kept and planning still works.
    assert!(p.plan(&[0.0; 4]).unwrap().status.is_feasible());
}

/// serde's `deny_unknown_fields` is not applied to *unit* variants of
/// internally tagged enums (serde-rs/serde#2123): `Fallback`, `Norm` and
/// `Residual` must reject these typos themselves.
#[test]
fn unknown_keys_next_to_unit_variants_are_named() {
    let err = toml::from_str::<PlannerConfig>(r#"fallback = { kind = "zero", action = [1.0] }"#)
        .unwrap_err()
        .to_string();
    assert!(err.contains("action"), "{err}");
    let err = toml::from_str::<ObjectiveSpec>(
        r#"[[terms]]
           name = "g"
           norm = { kind = "quadratic", eps = 0.1 }
           residual = { kind = "action_rate" }"#,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("eps"), "{err}");
    let err = toml::from_str::<ObjectiveSpec>(
        r#"[[terms]]
           name = "g"
           residual = { kind = "action_rate", target = [1.0] }"#,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("target"), "{err}");
}

/// Regression: a state that model error pushed into a guardrail's safety
/// buffer (limit itself intact) froze the robot on its fallback for the rest
/// of an episode, because every plan started infeasible.
#[test]
fn state_inside_the_buffer_can_back_out() {
    for kind in [PlannerKind::Mppi, PlannerKind::Cem, PlannerKind::Gradient] {
        let mut p = planner(REACH, config(kind, 3));
        // The body (radius 0.1) is 0.02 from the ball (radius 0.15): inside
        // the 0.05 buffer, outside the limit. At rest, moving away from the ball.
        let start = [0.5 - 0.27, 0.25, 0.0, 0.0];
        let mut state = start;
        let mut model = point_mass();
        for step in 0..20 {
            let plan = p.plan(&state).unwrap();
            assert!(
                plan.status.is_feasible(),
                "{kind:?} step {step}: {:?} from inside the buffer",
                plan.status
            );
            let mut next = [0.0; 4];
            model.predict(&state, &plan.action, &mut next).unwrap();
            state = next;
            let gap = ((state[0] - 0.5).powi(2) + (state[1] - 0.25).powi(2)).sqrt() - 0.25;
            assert!(gap >= 0.0, "{kind:?} step {step}: hit the ball ({gap})");
        }
        let end_gap = ((state[0] - 0.5).powi(2) + (state[1] - 0.25).powi(2)).sqrt() - 0.25;
        assert!(
            end_gap > 0.02,
            "{kind:?}: never left the buffer ({end_gap})"
        );
    }
}

/// A point mass whose predictions are trusted only up to a growing error:
/// the planner must keep that much farther from a guardrail.
#[derive(Clone, Debug)]
struct Uncertain(PointMass, Real);

impl WorldModel for Uncertain {
    fn spec(&self) -> &ModelSpec {
        self.0.spec()
    }
    fn encode(&mut self, o: &[Real], z: &mut [Real]) -> Result<(), ModelError> {
        self.0.encode(o, z)
    }
    fn predict(&mut self, z: &[Real], u: &[Real], n: &mut [Real]) -> Result<(), ModelError> {
        self.0.predict(z, u, n)
    }
    fn readout(&mut self, z: &[Real], y: &mut [Real]) -> Result<(), ModelError> {
        self.0.readout(z, y)
    }
    fn readout_errors(&self) -> Option<Vec<Vec<Real>>> {
        // pos.x and pos.y may be off by `self.1 · (t + 1)` after t + 1 steps.
        let grow: Vec<Real> = (1..=10).map(|t| self.1 * t as Real).collect();
        let mut rows = vec![Vec::new(); self.0.spec().readout_dim()];
        rows[0] = grow.clone();
        rows[1] = grow;
        Some(rows)
    }
}

/// A wall at x = 0.5 (keep x ≤ 0.5 via a readout limit) and a goal beyond it.
const WALL: &str = r#"
    [[terms]]
    name = "goal"
    residual = { kind = "readout", readouts = ["pos.x", "pos.y"], target = [2.0, 0.0] }
    [[guardrails]]
    kind = "readout_limit"
    name = "wall"
    readouts = ["pos.x"]
    lower = [-10.0]
    upper = [0.5]
"#;

#[test]
fn model_error_margins_tighten_guardrails() {
    let closest = |err: Real| {
        let model = Uncertain(point_mass(), err);
        let obj = objective(WALL, model.spec());
        let mut p = build(model.clone(), obj, config(PlannerKind::Mppi, 1)).unwrap();
        let mut plant = point_mass();
        let mut state = [0.0; 4];
        let mut max_x: Real = 0.0;
        for _ in 0..60 {
            let plan = p.plan(&state).unwrap();
            let mut next = [0.0; 4];
            plant.predict(&state, &plan.action, &mut next).unwrap();
            state = next;
            max_x = max_x.max(state[0]);
        }
        max_x
    };
    let exact = closest(0.0);
    let uncertain = closest(0.02);
    eprintln!("closest approach: exact model {exact}, uncertain model {uncertain}");
    assert!(exact <= 0.5 && exact > 0.49, "without model error: {exact}");
    // One step ahead the error bound is 0.02: the robot stops at least that short.
    assert!(
        uncertain <= 0.48 + 1e-9,
        "with model error: {uncertain} (exact {exact})"
    );
}

#[test]
fn model_error_steps_stop_the_margins_growing() {
    // The model's error bound grows 2 cm per step for 10 steps.
    let margins = |steps: Option<usize>| {
        let model = Uncertain(point_mass(), 0.02);
        let obj = objective(WALL, model.spec());
        let cfg = PlannerConfig {
            model_error_steps: steps,
            ..config(PlannerKind::Mppi, 1)
        };
        let mut p = build(model.clone(), obj, cfg).unwrap();
        p.plan(&[0.0; 4]).unwrap();
        let y = [0.0; 4];
        let mut out = [0.0];
        (0..12)
            .map(|t| {
                p.objective().margins_at_step(&y, t, &mut out);
                out[0]
            })
            .collect::<Vec<Real>>()
    };
    let all = margins(None);
    let capped = margins(Some(3));
    // Uncapped: 0.5 less 0.02·(t + 1), held after the table's 10 steps.
    for (t, m) in all.iter().enumerate() {
        let expect = 0.5 - 0.02 * (t.min(9) + 1) as Real;
        assert!((m - expect).abs() < 1e-9, "step {t}: {m} vs {expect}");
    }
    // Capped at 3 steps: the same for the first 3, then the third's holds.
    assert_eq!(capped[..3], all[..3]);
    for m in &capped[3..] {
        assert!((m - all[2]).abs() < 1e-12, "{capped:?}");
    }
    let zero = PlannerConfig {
        model_error_steps: Some(0),
        ..config(PlannerKind::Mppi, 1)
    };
    let err = zero.validate().unwrap_err();
    assert!(err.contains("model_error_steps"), "{err}");
}

#[test]
fn readout_errors_of_the_wrong_size_are_refused() {
    let model = point_mass();
    let mut obj = objective(REACH, model.spec());
    let err = obj
        .set_readout_errors(&[vec![0.1]])
        .unwrap_err()
        .to_string();
    assert!(err.contains("readout errors"), "{err}");
    let mut rows = vec![Vec::new(); model.spec().readout_dim()];
    rows[0] = vec![-1.0];
    assert!(obj.set_readout_errors(&rows).is_err());
}

/// A latent goal at rest at (1, 0.5), L2 energy, gently smoothed.
const LATENT_GOAL: &str = r#"
    [[terms]]
    name = "goal"
    residual = { kind = "latent" }
    norm = { kind = "l2", eps = 0.01 }

    [[terms]]
    name = "smooth"
    weight = 0.01
    residual = { kind = "action_rate" }
"#;

const GOAL_OBS: [Real; 4] = [1.0, 0.5, 0.0, 0.0];

#[test]
fn goal_observation_on_a_latent_term_is_reached() {
    for kind in KINDS {
        // Smooth noise and a sharp temperature (the defaults before issue
        // 15): with 64 white samples the first action's direction is noisy.
        let cfg = PlannerConfig {
            colored_noise_beta: 2.0,
            temperature: 0.1,
            ..config(kind, 3)
        };
        let mut p = planner(LATENT_GOAL, cfg);
        p.set_goal_observation("goal", &GOAL_OBS).unwrap();
        let mut plant = point_mass();
        let mut x = [0.0; 4];
        let first = p.plan(&x).unwrap().action.clone();
        assert!(first[0] > 0.0 && first[1] > 0.0, "{kind:?}: {first:?}");
        for _ in 0..40 {
            let plan = p.plan(&x).unwrap();
            let mut next = [0.0; 4];
            plant.predict(&x, &plan.action, &mut next).unwrap();
            x = next;
        }
        let dist = (x[0] - 1.0).hypot(x[1] - 0.5);
        assert!(dist < 0.1, "{kind:?}: ended at {x:?}, {dist} from the goal");
    }
}

#[test]
fn bad_goal_observations_are_clear_errors_and_keep_the_goal() {
    for kind in KINDS {
        let mut reference = planner(LATENT_GOAL, config(kind, 5));
        reference.set_goal_observation("goal", &GOAL_OBS).unwrap();
        let expected = run(&mut *reference, [0.0; 4], 3);

        let mut p = planner(LATENT_GOAL, config(kind, 5));
        p.set_goal_observation("goal", &GOAL_OBS).unwrap();
        let err = p
            .set_goal_observation("goal", &[1.0, 0.5, 0.0])
            .unwrap_err();
        assert_eq!(
            err,
            PlanError::GoalObservation {
                term: "goal".into(),
                cause: Box::new(PlanError::ObservationSize {
                    got: 3,
                    expected: 4
                }),
            },
            "{kind:?}"
        );
        assert!(
            err.to_string().contains("'goal'") && err.to_string().contains("3 values"),
            "{err}"
        );
        let err = p
            .set_goal_observation("goal", &[1.0, 0.5, Real::NAN, 0.0])
            .unwrap_err();
        assert!(
            matches!(&err, PlanError::GoalObservation { term, cause }
                if term == "goal" && matches!(**cause, PlanError::NonFiniteObservation { index: 2, .. })),
            "{kind:?}: {err}"
        );
        assert!(err.to_string().contains("index 2"), "{err}");
        let err = p
            .set_goal_observation("goal", &[Real::INFINITY; 4])
            .unwrap_err();
        assert!(err.to_string().contains("index 0"), "{err}");
        let err = p.set_goal_observation("gaol", &GOAL_OBS).unwrap_err();
        assert!(
            matches!(&err, PlanError::Objective(m)
                if m.to_string().contains("no cost term named 'gaol'") && m.to_string().contains("goal, smooth")),
            "{kind:?}: {err}"
        );
        let err = p.set_goal_observation("smooth", &GOAL_OBS).unwrap_err();
        assert!(
            matches!(&err, PlanError::Objective(m)
                if m.to_string().contains("'smooth'") && m.to_string().contains("not a latent term")),
            "{kind:?}: {err}"
        );
        // The goal set first is still in force: the same plans as without the errors.
        assert_eq!(run(&mut *p, [0.0; 4], 3), expected, "{kind:?}");
    }
}

#[test]
fn goal_observation_on_a_readout_term_is_refused() {
    let mut p = planner(REACH, config(PlannerKind::Mppi, 0));
    let err = p.set_goal_observation("goal", &GOAL_OBS).unwrap_err();
    assert!(
        matches!(&err, PlanError::Objective(m)
            if m.to_string().contains("'goal' is a readout term, not a latent term")),
        "{err}"
    );
    assert!(p.plan(&[0.0; 4]).unwrap().status.is_feasible());
}

/// A point mass whose encoder breaks on observations far from the origin.
#[derive(Debug)]
struct BrokenEncoder(PointMass);

impl WorldModel for BrokenEncoder {
    fn spec(&self) -> &ModelSpec {
        self.0.spec()
    }
    fn encode(&mut self, o: &[Real], z: &mut [Real]) -> Result<(), ModelError> {
        self.0.encode(o, z)?;
        if o.iter().any(|x| x.abs() > 10.0) {
            z[0] = Real::NAN;
        }
        Ok(())
    }
    fn predict(&mut self, z: &[Real], u: &[Real], n: &mut [Real]) -> Result<(), ModelError> {
        self.0.predict(z, u, n)
    }
    fn readout(&mut self, z: &[Real], y: &mut [Real]) -> Result<(), ModelError> {
        self.0.readout(z, y)
    }
}

#[test]
fn non_finite_encoded_goal_is_refused() {
    let model = BrokenEncoder(point_mass());
    let obj = objective(LATENT_GOAL, model.spec());
    let mut p = build(model, obj, config(PlannerKind::Cem, 0)).unwrap();
    let err = p
        .set_goal_observation("goal", &[20.0, 0.0, 0.0, 0.0])
        .unwrap_err();
    assert!(
        matches!(&err, PlanError::GoalObservation { term, cause }
            if term == "goal" && matches!(**cause, PlanError::Model(ModelError::NonFinite { .. }))),
        "{err}"
    );
    // No goal was ever set: planning still says so.
    let err = p.plan(&[0.0; 4]).unwrap_err();
    assert!(err.to_string().contains("latent goal is not set"), "{err}");
}

#[test]
fn plans_keep_their_best_sampled_rollouts_when_asked() {
    for kind in [PlannerKind::Mppi, PlannerKind::Cem, PlannerKind::Gradient] {
        let model = point_mass();
        let p = model.spec().readout_dim();
        let cfg = PlannerConfig {
            keep_rollouts: 5,
            ..config(kind, 3)
        };
        let h = cfg.horizon;
        let mut planner = build(model.clone(), objective(REACH, model.spec()), cfg).unwrap();
        let plan = planner.plan(&[0.0; 4]).unwrap();
        assert_eq!(plan.rollouts.len(), 5 * h * p, "{kind:?}");
        assert_eq!(plan.rollout_costs.len(), 5);
        assert_eq!(plan.rollout_violations.len(), 5);
        assert!(plan.rollouts.iter().all(|x| x.is_finite()));
        // Best first: feasible before infeasible, then by cost.
        let (c, v) = (&plan.rollout_costs, &plan.rollout_violations);
        for i in 1..5 {
            assert!(
                rank(v[i - 1], c[i - 1], v[i], c[i]) != Ordering::Greater,
                "{kind:?}: {c:?} {v:?}"
            );
        }
        // Without asking, nothing is kept.
        let mut plain = build(
            model.clone(),
            objective(REACH, model.spec()),
            config(kind, 3),
        )
        .unwrap();
        let plan = plain.plan(&[0.0; 4]).unwrap();
        assert!(plan.rollouts.is_empty() && plan.rollout_costs.is_empty());
    }
    let too_many = PlannerConfig {
        keep_rollouts: 65,
        ..config(PlannerKind::Mppi, 1)
    };
    let err = too_many.validate().unwrap_err();
    assert!(err.contains("keep_rollouts"), "{err}");
}

// Knots: perturbations drawn on K control points and interpolated.

const INTERPOLATIONS: [Interpolation; 3] = [
    Interpolation::Zero,
    Interpolation::Linear,
    Interpolation::Cubic,
];

/// A planner core for the point mass (bounds ±2) with `knots` control points.
fn knot_core(
    knots: Option<usize>,
    interpolation: Interpolation,
    noise: Real,
    beta: Real,
) -> super::core::Core<PointMass> {
    let model = point_mass();
    let obj = objective(REACH, model.spec());
    let cfg = PlannerConfig {
        horizon: 20,
        knots,
        interpolation,
        noise,
        colored_noise_beta: beta,
        ..config(PlannerKind::Mppi, 11)
    };
    super::core::Core::new(model, obj, cfg).unwrap()
}

/// Samples slot 2 around a zero mean and returns each action's sequence
/// (small noise: nothing is clamped).
fn knot_samples(core: &mut super::core::Core<PointMass>) -> Vec<Vec<Real>> {
    let (h, a, _, _) = core.sizes();
    let mean = vec![0.0; h * a];
    let std = core.sigma().to_vec();
    core.sample_range(2, 3, &mean, &std);
    let seq = &core.seqs()[2 * h * a..3 * h * a];
    assert!(seq.iter().all(|x| x.abs() < 1.0), "clamped: {seq:?}");
    (0..a)
        .map(|k| (0..h).map(|t| seq[t * a + k]).collect())
        .collect()
}

#[test]
fn knot_layouts_cover_the_horizon() {
    use super::knots::knot_steps;
    assert_eq!(knot_steps(20, 4, Interpolation::Zero), [0, 5, 10, 15]);
    // Blocks of ⌈10/4⌉ = 3 or 2 steps, longer first; every knot is used.
    assert_eq!(knot_steps(10, 4, Interpolation::Zero), [0, 3, 5, 8]);
    assert_eq!(knot_steps(10, 6, Interpolation::Zero), [0, 2, 4, 5, 7, 9]);
    assert_eq!(knot_steps(20, 4, Interpolation::Linear), [0, 6, 13, 19]);
    assert_eq!(knot_steps(20, 4, Interpolation::Cubic), [0, 6, 13, 19]);
    assert_eq!(knot_steps(7, 1, Interpolation::Cubic), [0]);
    for interpolation in INTERPOLATIONS {
        for (h, k) in [(20, 4), (10, 6), (7, 1), (7, 2), (15, 14), (12, 12)] {
            let knots = super::knots::Knots::new(h, k, interpolation, 2.0);
            let w = knots.weights();
            assert_eq!((knots.dim(), w.len()), (k, h * k));
            // Constants are kept: every row sums to one.
            for (t, row) in w.chunks_exact(k).enumerate() {
                let sum: Real = row.iter().sum();
                assert!(
                    (sum - 1.0).abs() < 1e-12,
                    "{interpolation:?} {h}/{k} t={t}: {row:?}"
                );
            }
            // Each knot is reproduced at its step.
            for (j, &s) in knot_steps(h, k, interpolation).iter().enumerate() {
                for c in 0..k {
                    assert_eq!(
                        w[s * k + c],
                        Real::from(c == j),
                        "{interpolation:?} {h}/{k}"
                    );
                }
            }
        }
    }
}

#[test]
fn zero_order_hold_samples_are_constant_in_blocks() {
    let mut core = knot_core(Some(4), Interpolation::Zero, 0.02, 2.0);
    for _ in 0..5 {
        for u in knot_samples(&mut core) {
            for block in u.chunks(5) {
                assert!(block.iter().all(|x| *x == block[0]), "{u:?}");
            }
            for pair in u.chunks(5).collect::<Vec<_>>().windows(2) {
                assert_ne!(pair[0][0], pair[1][0], "{u:?}");
            }
        }
    }
}

#[test]
fn linear_samples_are_straight_between_knots() {
    let mut core = knot_core(Some(4), Interpolation::Linear, 0.02, 2.0);
    let knots = [0, 6, 13, 19];
    for _ in 0..5 {
        for u in knot_samples(&mut core) {
            let bend = |t: usize| u[t - 1] - 2.0 * u[t] + u[t + 1];
            for t in 1..19 {
                if knots.contains(&t) {
                    // A kink at an inner knot (almost surely).
                    assert!(bend(t).abs() > 1e-9, "t={t}: {u:?}");
                } else {
                    assert!(bend(t).abs() < 1e-12, "t={t}: {u:?}");
                }
            }
        }
    }
}

#[test]
fn cubic_samples_pass_through_the_knots() {
    // The same seed draws the same knot values whatever the interpolation.
    let mut linear = knot_core(Some(4), Interpolation::Linear, 0.02, 2.0);
    let mut cubic = knot_core(Some(4), Interpolation::Cubic, 0.02, 2.0);
    let knots = [0, 6, 13, 19];
    for _ in 0..5 {
        for (l, c) in knot_samples(&mut linear)
            .into_iter()
            .zip(knot_samples(&mut cubic))
        {
            for &s in &knots {
                assert!((l[s] - c[s]).abs() < 1e-15, "step {s}: {l:?} {c:?}");
            }
            assert!(l.iter().zip(&c).any(|(a, b)| (a - b).abs() > 1e-9));
        }
    }
}

#[test]
fn cubic_knots_reproduce_lines_and_inner_parabolas() {
    // Knots at 0, 10, 20, 30. Lines are kept exactly everywhere; the slopes at
    // inner knots (mean of the two secants) are exact for a parabola, so the
    // segment between the two inner knots is that parabola.
    let (h, k) = (31, 4);
    let knots = super::knots::Knots::new(h, k, Interpolation::Cubic, 2.0);
    let steps = super::knots::knot_steps(h, k, Interpolation::Cubic);
    assert_eq!(steps, [0, 10, 20, 30]);
    let at = |f: &dyn Fn(Real) -> Real, t: usize| -> Real {
        let row = &knots.weights()[t * k..(t + 1) * k];
        row.iter().zip(&steps).map(|(w, &s)| w * f(s as Real)).sum()
    };
    let line = |t: Real| 0.3 - 0.07 * t;
    let parabola = |t: Real| (t - 12.0).powi(2) / 50.0;
    for t in 0..h {
        assert!((at(&line, t) - line(t as Real)).abs() < 1e-12, "t={t}");
    }
    for t in 10..=20 {
        let (got, want) = (at(&parabola, t), parabola(t as Real));
        assert!((got - want).abs() < 1e-12, "t={t}: {got} vs {want}");
    }
    // The end segments use one-sided slopes: not exact there.
    assert!((at(&parabola, 5) - parabola(5.0)).abs() > 1e-3);
}

#[test]
fn knots_set_the_number_of_random_draws() {
    // White noise: one normal draw per knot (and action, for each of which
    // the sampler calls `Knots::sample` once).
    for (knots, draws) in [(None, 20), (Some(20), 20), (Some(4), 4), (Some(1), 1)] {
        for interpolation in INTERPOLATIONS {
            let mut k = super::knots::Knots::new(20, knots.unwrap_or(20), interpolation, 0.0);
            let mut rng = crate::rng::Rng::new(11);
            k.sample(&mut rng, &mut [0.0; 20]);
            let mut reference = crate::rng::Rng::new(11);
            for _ in 0..draws {
                reference.normal();
            }
            assert_eq!(
                (rng.normal(), rng.next_u64()),
                (reference.normal(), reference.next_u64()),
                "{knots:?} {interpolation:?}"
            );
        }
    }
}

#[test]
fn one_knot_per_step_is_the_per_step_planner() {
    // K = H: W = I, the same search dimension and the same plans bit for bit.
    for interpolation in INTERPOLATIONS {
        let knots = super::knots::Knots::new(15, 15, interpolation, 2.0);
        assert_eq!(knots.dim(), 15);
        for kind in KINDS {
            let per_step = run(&mut *planner(REACH, config(kind, 4)), [0.0; 4], 3);
            let cfg = PlannerConfig {
                knots: Some(15),
                interpolation,
                ..config(kind, 4)
            };
            assert_eq!(run(&mut *planner(REACH, cfg), [0.0; 4], 3), per_step);
        }
    }
}

#[test]
fn planners_with_four_knots_reach_the_goal() {
    for interpolation in INTERPOLATIONS {
        for kind in KINDS {
            let cfg = PlannerConfig {
                knots: Some(4),
                interpolation,
                ..config(kind, 3)
            };
            let what = format!("{kind:?} {interpolation:?}");
            let mut p = planner(REACH, cfg.clone());
            let first = p.plan(&[0.0; 4]).unwrap();
            assert!(first.status.is_feasible(), "{what}");
            assert!(first.action[0] > 0.0, "{what}: {:?}", first.action);
            let mut plant = point_mass();
            let mut x = [0.0; 4];
            for _ in 0..60 {
                let plan = p.plan(&x).unwrap();
                assert!(plan.status.is_feasible(), "{what}");
                let mut next = [0.0; 4];
                plant.predict(&x, &plan.action, &mut next).unwrap();
                x = next;
            }
            let dist = (x[0] - 1.0).hypot(x[1] - 0.5);
            assert!(dist < 0.1, "{what}: ended at {x:?}, {dist} from the goal");
            // Deterministic for a seed.
            let a = run(&mut *planner(REACH, cfg.clone()), [0.0; 4], 4);
            assert_eq!(a, run(&mut *planner(REACH, cfg), [0.0; 4], 4), "{what}");
        }
    }
}

#[test]
fn bad_knots_are_errors_naming_the_field() {
    for knots in [0, 21] {
        let cfg = PlannerConfig {
            knots: Some(knots),
            ..Default::default()
        };
        let err = cfg.validate().unwrap_err();
        assert!(
            err.contains("planner.knots") && err.contains("1..=20"),
            "{err}"
        );
        let model = point_mass();
        let obj = objective(REACH, model.spec());
        match build(model, obj, cfg) {
            Err(PlanError::Config(msg)) => assert!(msg.contains("planner.knots"), "{msg}"),
            other => panic!("knots = {knots}: {:?}", other.map(|_| ())),
        }
    }
    let parse = |s: &str| toml::from_str::<PlannerConfig>(s);
    let cfg = parse("horizon = 30\nknots = 6\ninterpolation = \"cubic\"").unwrap();
    assert_eq!(
        (cfg.knots, cfg.interpolation),
        (Some(6), Interpolation::Cubic)
    );
    cfg.validate().unwrap();
    let back: PlannerConfig = toml::from_str(&toml::to_string(&cfg).unwrap()).unwrap();
    assert_eq!(back, cfg);
    let default = parse("").unwrap();
    assert_eq!(
        (default.knots, default.interpolation),
        (None, Interpolation::Zero)
    );
    let err = parse("knots = 4\ninterpolation = \"quadratic\"")
        .unwrap_err()
        .to_string();
    for word in ["interpolation", "quadratic", "zero", "linear", "cubic"] {
        assert!(err.contains(word), "{word}: {err}");
    }
    let err = parse("knots = -1").unwrap_err().to_string();
    assert!(err.contains("knots"), "{err}");
}

#[test]
fn rollout_threads_do_not_change_plans() {
    // Samples split unevenly between 1, 2 and 3 threads; kept rollouts too.
    for kind in KINDS {
        let cfg = |threads| PlannerConfig {
            samples: 203,
            keep_rollouts: 7,
            threads,
            ..config(kind, 5)
        };
        let mut one = planner(REACH, cfg(1));
        let reference = run(&mut *one, [0.0; 4], 5);
        let kept = one.plan(&[0.1, 0.0, 0.0, 0.0]).unwrap().rollouts.clone();
        for threads in [2, 3] {
            let mut p = planner(REACH, cfg(threads));
            assert_eq!(
                run(&mut *p, [0.0; 4], 5),
                reference,
                "{kind:?} on {threads} threads"
            );
            let again = p.plan(&[0.1, 0.0, 0.0, 0.0]).unwrap();
            assert_eq!(again.rollouts, kept, "{kind:?} on {threads} threads");
        }
    }
}

#[test]
fn jobs_of_workers_that_do_not_start_are_rolled_out_by_the_planner() {
    let core = |threads| {
        let model = point_mass();
        let obj = objective(REACH, model.spec());
        let cfg = PlannerConfig {
            samples: 203,
            threads,
            ..config(PlannerKind::Mppi, 3)
        };
        super::core::Core::new(model, obj, cfg).unwrap()
    };
    let mut one = core(1);
    let mut stalled = core(3);
    assert!(stalled.stall_rollout_workers());
    let bits = |v: &[Real]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    let mean = vec![0.1; one.sizes().0 * one.sizes().1];
    let std = one.sigma().to_vec();
    // Drawn by the workers' shares, then read from the shared sequences;
    // every time, each job is sent, not started, and taken back.
    for draw in [true, false, true] {
        if draw {
            one.sample_and_evaluate(1, 203, &mean, &std).unwrap();
            stalled.sample_and_evaluate(1, 203, &mean, &std).unwrap();
        } else {
            one.evaluate(203).unwrap();
            stalled.evaluate(203).unwrap();
        }
        assert_eq!(bits(stalled.seqs()), bits(one.seqs()));
        assert_eq!(bits(stalled.costs()), bits(one.costs()));
        assert_eq!(bits(stalled.violations()), bits(one.violations()));
    }
}

/// A point mass whose copies for rollout workers panic once `doom` is set.
#[derive(Debug)]
struct Mortal {
    inner: PointMass,
    fork: bool,
    doom: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl WorldModel for Mortal {
    fn spec(&self) -> &ModelSpec {
        self.inner.spec()
    }
    fn fork(&self) -> Option<Box<dyn WorldModel>> {
        Some(Box::new(Mortal {
            inner: self.inner.clone(),
            fork: true,
            doom: self.doom.clone(),
        }))
    }
    fn encode(&mut self, o: &[Real], z: &mut [Real]) -> Result<(), ModelError> {
        self.inner.encode(o, z)
    }
    fn predict(&mut self, z: &[Real], u: &[Real], n: &mut [Real]) -> Result<(), ModelError> {
        assert!(
            !(self.fork && self.doom.load(std::sync::atomic::Ordering::SeqCst)),
            "the rollout worker's model fails (on purpose)"
        );
        self.inner.predict(z, u, n)
    }
    fn readout(&mut self, z: &[Real], y: &mut [Real]) -> Result<(), ModelError> {
        self.inner.readout(z, y)
    }
}

#[test]
fn a_rollout_worker_that_dies_is_reported_and_planning_goes_on() {
    let doom = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let model = Mortal {
        inner: point_mass(),
        fork: false,
        doom: doom.clone(),
    };
    let obj = objective(REACH, model.spec());
    let cfg = PlannerConfig {
        samples: 256,
        threads: 2,
        ..config(PlannerKind::Mppi, 0)
    };
    let mut p = Mppi::new(model, obj, cfg).unwrap();
    // The planner's thread waits for the worker's job instead of taking it
    // back when the worker has not started it (as on a loaded machine), so
    // the worker's model is called on every plan.
    assert!(p.core_mut().never_take_back_jobs());
    assert!(p.plan(&[0.0; 4]).unwrap().status.is_feasible());
    doom.store(true, std::sync::atomic::Ordering::SeqCst);
    match p.plan(&[0.0; 4]) {
        Err(PlanError::Model(ModelError::Backend(msg))) => {
            assert!(msg.contains("rollout worker"), "{msg}");
        }
        other => panic!("expected the worker's failure, got {other:?}"),
    }
    // The planner's own thread rolls out from now on.
    for _ in 0..3 {
        let plan = p.plan(&[0.0; 4]).unwrap();
        assert!(plan.status.is_feasible() && plan.action[0] > 0.0);
    }
}

#[test]
fn threads_out_of_range_are_refused() {
    for threads in [0, 65] {
        let cfg = PlannerConfig {
            threads,
            ..Default::default()
        };
        let err = cfg.validate().unwrap_err();
        assert!(
            err.contains("planner.threads") && err.contains("1..=64"),
            "{err}"
        );
    }
}
