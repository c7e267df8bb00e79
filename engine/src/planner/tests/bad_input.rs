//! Bad input gives clear errors: observations, configuration, objectives for
//! another model, unknown keys.

use super::*;

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
