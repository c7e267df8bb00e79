//! Tests of the navigate scene.

use super::*;

fn scene() -> Navigate {
    Navigate::new(&NavigateConfig::default()).unwrap()
}

#[test]
fn reset_is_deterministic_per_seed() {
    let mut a = scene();
    let mut b = scene();
    let sa = a.reset(11).unwrap();
    let sb = b.reset(11).unwrap();
    assert_eq!(sa, sb);
    for _ in 0..3 {
        a.apply(&[0.7, 0.5]);
        b.apply(&[0.7, 0.5]);
        for _ in 0..5 {
            a.step();
            b.step();
        }
    }
    let (mut oa, mut ob) = ([0.0; 5], [0.0; 5]);
    a.observe(&mut oa);
    b.observe(&mut ob);
    assert_eq!(oa, ob);
    assert_ne!(sa, a.reset(12).unwrap());
}

#[test]
fn fields_are_solvable_and_keep_start_and_goal_clear() {
    let c = NavigateConfig::default();
    let mut s = scene();
    for seed in 0..40 {
        let setup = s.reset(seed).unwrap();
        let field = s.field.clone().unwrap();
        assert!(field.solvable(&c), "seed {seed}");
        assert_eq!(
            setup.targets,
            vec![("goal".to_string(), field.goal.to_vec())]
        );
        let mut d = Distance::new(&field.obstacles).unwrap();
        let need = c.robot_radius + c.min_clearance + c.clearance_margin;
        assert!(d.at(field.start) > need, "seed {seed}");
        assert!(d.at(field.goal) > need, "seed {seed}");
        assert!((field.goal[0] - field.start[0]).abs() > 5.0, "seed {seed}");
        let GuardrailSpec::Clearance { obstacles, .. } = &setup.guardrails[0] else {
            panic!("expected a clearance guardrail");
        };
        assert_eq!(obstacles.len(), c.obstacles + 4);
    }
}

#[test]
fn blocked_fields_are_rejected() {
    let c = NavigateConfig::default();
    let (zc, zh) = slab(c.obstacle_height);
    let wall = Shape::Box {
        center: [0.0, 0.0, zc],
        half_extents: [0.2, c.arena_width, zh],
        rpy: [0.0; 3],
    };
    let field = Field {
        start: [-3.0, 0.0],
        heading: 0.0,
        goal: [3.0, 0.0],
        obstacles: vec![wall],
    };
    assert!(!field.solvable(&c));
    let open = Field {
        obstacles: Vec::new(),
        ..field
    };
    assert!(open.solvable(&c));
}

/// An arena without obstacles, the robot starting towards the goal.
fn open_config() -> NavigateConfig {
    NavigateConfig {
        obstacles: 0,
        on_path: 0,
        heading_jitter: 0.0,
        ..NavigateConfig::default()
    }
}

/// An empty arena with the robot facing the goal, metres from any wall.
fn open_scene() -> Navigate {
    let mut s = Navigate::new(&open_config()).unwrap();
    s.reset(3).unwrap();
    s
}

#[test]
fn driving_matches_the_unicycle_model() {
    for action in [[1.0, 0.0], [0.8, 1.2], [-0.5, -2.0]] {
        let mut s = open_scene();
        let mut model = s.analytic_model().unwrap();
        let mut z = [0.0; 5];
        s.observe(&mut z);
        let k = s.config.physics_steps_per_control();
        for _ in 0..10 {
            s.apply(&action);
            for _ in 0..k {
                s.step();
            }
            let mut next = [0.0; 5];
            model.predict(&z, &action, &mut next).unwrap();
            z = next;
        }
        let mut o = [0.0; 5];
        s.observe(&mut o);
        let err = (o[0] - z[0]).hypot(o[1] - z[1]);
        assert!(err < 0.03, "{action:?}: sim {o:?} model {z:?}");
        assert!(
            (o[2] - z[2]).abs() < 0.03,
            "{action:?}: sim {o:?} model {z:?}"
        );
        assert!((o[3] - z[3]).abs() < 1e-3 && (o[4] - z[4]).abs() < 1e-3);
        assert!((s.time() - 1.0).abs() < 1e-9);
    }
}

#[test]
fn heading_is_continuous_across_pi() {
    let mut s = open_scene();
    let mut o = [0.0; 5];
    s.observe(&mut o);
    let start = o[2];
    // Two seconds at 2 rad/s: more than a half turn from any start.
    for _ in 0..20 {
        s.apply(&[0.0, 2.0]);
        for _ in 0..5 {
            s.step();
        }
    }
    s.observe(&mut o);
    assert!(o[2] - start > 3.3, "turned {}", o[2] - start);
}

#[test]
fn truth_agrees_with_observation() {
    let mut s = scene();
    s.reset(5).unwrap();
    for _ in 0..4 {
        s.apply(&[-0.6, 0.8]);
        for _ in 0..5 {
            s.step();
        }
    }
    let mut o = [0.0; 5];
    let mut y = [0.0; 7];
    s.observe(&mut o);
    s.truth(&mut y);
    assert_eq!(s.truth_readouts().len(), 7);
    let model = s.analytic_model().unwrap();
    // The analytic model's readouts, then the clearance.
    assert_eq!(&s.truth_readouts()[..6], model.spec().readouts.as_slice());
    assert_eq!(s.truth_readouts()[6], CLEARANCE);
    assert_eq!(&y[..5], &o);
    assert!((y[5] - o[3].abs()).abs() < 1e-12);
    assert!(o[3] < -0.3, "reversing: {o:?}");
}

#[test]
fn obstacles_stop_the_robot() {
    let c = open_config();
    let mut s = Navigate::new(&c).unwrap();
    s.reset(1).unwrap();
    // Drive straight for long enough to reach the far wall.
    for _ in 0..150 {
        s.apply(&[1.0, 0.0]);
        for _ in 0..5 {
            s.step();
        }
    }
    let mut o = [0.0; 5];
    s.observe(&mut o);
    let hx = c.arena_length / 2.0;
    assert!(
        o[0].abs() < hx - c.robot_radius + 0.02,
        "went through the wall: {o:?}"
    );
    assert!(s.success() || o[0].abs() > hx - 0.5, "{o:?}");
}

#[test]
fn bad_config_names_the_field() {
    let c = NavigateConfig {
        physics_dt: 0.03,
        ..NavigateConfig::default()
    };
    let e = Navigate::new(&c).unwrap_err().to_string();
    assert!(e.contains("physics_dt"), "{e}");
    let c = NavigateConfig {
        cylinder_radius: [0.5, 0.2],
        ..NavigateConfig::default()
    };
    let e = Navigate::new(&c).unwrap_err().to_string();
    assert!(e.contains("cylinder_radius"), "{e}");
}

#[test]
fn shipped_scenario_compiles_against_the_scene() {
    let (scenario, spec) = crate::scene::testing::shipped_objective("navigate");
    let crate::scene::SceneConfig::Navigate(cfg) = &scenario.scene else {
        panic!("navigate.toml must run the navigate scene");
    };
    let body = spec.bodies.iter().find(|b| b.name == "base").unwrap();
    assert_eq!(body.radius, cfg.robot_radius);
    // The speed guardrail sits strictly above the action bound.
    let speed = spec
        .guardrails
        .iter()
        .find_map(|g| match g {
            GuardrailSpec::Speed { max, .. } => Some(*max),
            _ => None,
        })
        .unwrap();
    assert!(speed > cfg.max_speed);
}

#[test]
fn one_episode_reaches_the_goal_safely() {
    let scenario = crate::scenario::Scenario::load("navigate").unwrap();
    let mut scene = scenario.scene.build(&scenario.base_dir).unwrap();
    let model = scene.analytic_model().unwrap();
    let r = crate::episode::run_episode(
        &scenario,
        scene.as_mut(),
        model,
        4,
        &mut crate::episode::NoObserver,
    )
    .unwrap();
    assert!(r.success, "{r:?}");
    assert_eq!(r.violation_steps, 0, "{r:?}");
}
