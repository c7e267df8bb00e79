//! Tests of the push scene.

use super::*;
use crate::episode::{NoObserver, Validator, run_episode};
use crate::scenario::Scenario;
use crate::scene::SceneConfig;

fn scene() -> Push {
    Push::new(&PushConfig::default()).unwrap()
}

/// A scene without keep-out regions, with the box at the origin (yaw 0) and
/// the pusher at `pusher`; the goal is the box's start pose.
fn placed(pusher: [Real; 2]) -> Push {
    let c = PushConfig {
        keepouts: 0,
        ..PushConfig::default()
    };
    let mut s = Push::new(&c).unwrap();
    s.reset(1).unwrap();
    let layout = Layout {
        box_start: [0.0, 0.0],
        box_yaw: 0.0,
        goal: [0.0, 0.0],
        goal_yaw: 0.0,
        pusher_start: pusher,
        keepouts: Vec::new(),
    };
    s.world = Some(Physics::build(&c, &layout));
    s.layout = Some(layout);
    s
}

/// Holds `action` for `ticks` control periods.
fn drive(s: &mut Push, action: [Real; 2], ticks: usize) {
    let k = s.config.physics_steps_per_control();
    for _ in 0..ticks {
        s.apply(&action);
        for _ in 0..k {
            s.step();
        }
    }
}

/// Rolls the analytic model from `z` with `action` for `ticks` steps.
fn predict(s: &Push, z: [Real; 8], action: [Real; 2], ticks: usize) -> [Real; 8] {
    let mut m = s.analytic_model().unwrap();
    let mut z = z;
    for _ in 0..ticks {
        let mut next = [0.0; 8];
        m.predict(&z, &action, &mut next).unwrap();
        z = next;
    }
    z
}

fn obs(s: &Push) -> [Real; 8] {
    let mut o = [0.0; 8];
    s.observe(&mut o);
    o
}

#[test]
fn reset_is_deterministic_per_seed() {
    let mut a = scene();
    let mut b = scene();
    let sa = a.reset(11).unwrap();
    let sb = b.reset(11).unwrap();
    assert_eq!(sa, sb);
    assert_eq!(a.layout, b.layout);
    for action in [[0.3, -0.1], [-0.2, 0.3], [0.1, 0.1]] {
        drive(&mut a, action, 3);
        drive(&mut b, action, 3);
    }
    assert_eq!(obs(&a), obs(&b));
    assert_ne!(sa, a.reset(12).unwrap());
}

#[test]
fn layouts_keep_their_spacing() {
    let c = PushConfig::default();
    let mut s = scene();
    let (tx, ty) = (c.table_length / 2.0, c.table_width / 2.0);
    let hd = c.box_half_diagonal();
    for seed in 0..60 {
        let setup = s.reset(seed).unwrap();
        let l = s.layout.clone().unwrap();
        for p in [l.box_start, l.goal] {
            assert!(p[0].abs() <= tx - c.edge_inset && p[1].abs() <= ty - c.edge_inset);
        }
        let d = (l.goal[0] - l.box_start[0]).hypot(l.goal[1] - l.box_start[1]);
        assert!(
            (c.goal_distance[0]..=c.goal_distance[1]).contains(&d),
            "seed {seed}"
        );
        assert!((l.goal_yaw - l.box_yaw).abs() <= c.max_yaw_change);
        let free = layout::box_distance(&c, l.box_start, l.box_yaw, l.pusher_start);
        assert!(free >= c.pusher_radius + c.start_gap, "seed {seed}");
        assert_eq!(l.keepouts.len(), c.keepouts);
        let (sn, cs) = l.goal_yaw.sin_cos();
        assert_eq!(
            setup.targets,
            vec![
                ("goal_pos".to_string(), l.goal.to_vec()),
                ("goal_yaw".to_string(), vec![cs, sn]),
            ]
        );
        let [GuardrailSpec::KeepOut { shape, bodies, .. }] = setup.guardrails.as_slice() else {
            panic!("expected one keep-out guardrail");
        };
        assert_eq!(bodies, &["pusher".to_string()]);
        // Clear of the box's straight way from start to goal, pusher included.
        let k = shape.compile();
        let need = hd + 2.0 * c.pusher_radius + c.keepout_margin;
        for f in 0..=20 {
            let f = f as Real / 20.0;
            let p = [
                l.box_start[0] + f * (l.goal[0] - l.box_start[0]),
                l.box_start[1] + f * (l.goal[1] - l.box_start[1]),
                0.0,
            ];
            assert!(k.signed_distance(&p.into()) >= need, "seed {seed}");
        }
        let p = [l.pusher_start[0], l.pusher_start[1], 0.0];
        assert!(k.signed_distance(&p.into()) >= c.pusher_radius + c.keepout_margin);
    }
}

#[test]
fn start_states_keep_every_guardrail_with_its_buffer() {
    let scenario = Scenario::load("push").unwrap();
    let SceneConfig::Push(cfg) = &scenario.scene else {
        panic!("push.toml must run the push scene");
    };
    let mut s = Push::new(cfg).unwrap();
    for seed in 0..60 {
        let setup = s.reset(seed).unwrap();
        let mut spec = scenario.objective.clone();
        spec.guardrails.extend(setup.guardrails);
        let actions = s.analytic_model().unwrap().spec().actions.clone();
        let mut v = Validator::new(&spec, s.truth_readouts(), &actions).unwrap();
        v.check(&s);
        for (g, m) in spec.guardrails.iter().zip(v.margins()) {
            assert!(*m > g.margin(), "seed {seed}: {} margin {m}", g.name());
        }
    }
}

#[test]
fn the_box_stays_put_without_contact() {
    let mut s = placed([-0.2, 0.1]);
    let before = obs(&s);
    drive(&mut s, [-0.2, 0.1], 10);
    drive(&mut s, [0.0, -0.3], 10);
    let after = obs(&s);
    assert!(
        after[0] < -0.3 && after[1] < 0.0,
        "the pusher moved: {after:?}"
    );
    for k in 4..8 {
        assert!(
            (after[k] - before[k]).abs() < 1e-4,
            "{before:?} -> {after:?}"
        );
    }
    assert!(s.success());
}

#[test]
fn pushing_straight_moves_the_box_along() {
    let mut s = placed([-0.1, 0.0]);
    let z0 = obs(&s);
    drive(&mut s, [0.2, 0.0], 15);
    let o = obs(&s);
    let z = predict(&s, z0, [0.2, 0.0], 15);
    // About 0.27 m of pusher travel, less the 2 cm gap to the box.
    assert!(o[4] > 0.2, "{o:?}");
    assert!(o[5].abs() < 0.005 && o[7].abs() < 0.02, "{o:?}");
    // Pusher and box stay in contact, the pusher behind the box's centre.
    assert!((o[4] - o[0] - 0.08).abs() < 0.005, "{o:?}");
    assert!((o[4] - z[4]).abs() < 0.01, "sim {o:?}\nmodel {z:?}");
}

#[test]
fn offset_push_turns_the_box_like_the_model() {
    let mut s = placed([-0.1, 0.03]);
    let z0 = obs(&s);
    drive(&mut s, [0.2, 0.0], 10);
    let o = obs(&s);
    let z = predict(&s, z0, [0.2, 0.0], 10);
    let (yaw_sim, yaw_model) = (o[7].atan2(o[6]), z[7].atan2(z[6]));
    // Pushed above its centre along +x, the box turns clockwise.
    assert!(yaw_sim < -0.5, "{o:?}");
    assert!((yaw_sim - yaw_model).abs() < 0.15, "sim {o:?}\nmodel {z:?}");
    assert!(
        (o[4] - z[4]).hypot(o[5] - z[5]) < 0.015,
        "sim {o:?}\nmodel {z:?}"
    );
}

/// The calibration of `model_friction` and `model_limit_surface`: ten pushes
/// of 1 s from a box at rest, straight, off-centre and sideways.
#[test]
fn model_tracks_the_sim_on_test_pushes() {
    let cases: [([Real; 2], [Real; 2]); 10] = [
        ([-0.1, 0.0], [0.2, 0.0]),
        ([-0.1, 0.03], [0.2, 0.0]),
        ([-0.1, 0.045], [0.2, 0.0]),
        ([-0.1, 0.02], [0.2, 0.1]),
        ([-0.1, -0.02], [0.25, 0.1]),
        ([-0.09, -0.09], [0.2, 0.2]),
        ([-0.1, 0.01], [0.2, -0.1]),
        ([0.0, -0.1], [0.0, 0.2]),
        ([0.02, -0.1], [0.05, 0.2]),
        ([-0.1, 0.04], [0.25, -0.05]),
    ];
    let (mut pos, mut yaw) = (0.0, 0.0);
    for (p, u) in cases {
        let mut s = placed(p);
        let z0 = obs(&s);
        drive(&mut s, u, 10);
        let o = obs(&s);
        let z = predict(&s, z0, u, 10);
        pos += (o[4] - z[4]).hypot(o[5] - z[5]);
        yaw += crate::scene::wrap_angle(o[7].atan2(o[6]) - z[7].atan2(z[6])).abs();
    }
    let n = cases.len() as Real;
    // Measured: 6.9 mm and 0.088 rad.
    assert!(pos / n < 0.01, "mean position error {}", pos / n);
    assert!(yaw / n < 0.12, "mean yaw error {}", yaw / n);
}

#[test]
fn truth_agrees_with_observation() {
    let mut s = placed([-0.1, 0.02]);
    drive(&mut s, [0.2, 0.05], 8);
    let mut y = [0.0; 12];
    s.truth(&mut y);
    let o = obs(&s);
    let model = s.analytic_model().unwrap();
    // The analytic model's readouts, then the keep-out clearance.
    assert_eq!(&s.truth_readouts()[..11], model.spec().readouts.as_slice());
    assert_eq!(s.truth_readouts()[11], KEEPOUT_CLEARANCE);
    assert_eq!(
        model.spec().observations.as_slice(),
        &s.truth_readouts()[..8]
    );
    assert_eq!(&y[..8], &o);
    assert!((y[8] - (o[0] - o[4])).abs() < 1e-12 && (y[9] - (o[1] - o[5])).abs() < 1e-12);
    assert!((y[10] - o[2].hypot(o[3])).abs() < 1e-12);
    assert!((o[6].hypot(o[7]) - 1.0).abs() < 1e-9);
    assert!(o[2] > 0.15 && o[4] > 0.05, "pushing: {o:?}");
}

#[test]
fn success_needs_position_and_yaw() {
    let mut s = placed([-0.3, 0.0]);
    assert!(s.success());
    let layout = s.layout.clone().unwrap();
    let (d, y) = (s.config.success_distance, s.config.success_yaw);
    for (goal, goal_yaw, expect) in [
        ([0.8 * d, 0.0], 0.0, true),
        ([1.2 * d, 0.0], 0.0, false),
        ([0.0, 0.0], 0.8 * y, true),
        ([0.0, 0.0], -1.2 * y, false),
        ([0.0, 0.0], 2.0 * std::f64::consts::PI + 0.5 * y, true),
    ] {
        s.layout = Some(Layout {
            goal,
            goal_yaw,
            ..layout.clone()
        });
        assert_eq!(s.success(), expect, "goal {goal:?}, yaw {goal_yaw}");
        // The reported goal error is what the success test judged.
        let e = World::goal_error(&s);
        assert_eq!(
            e.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
            ["distance", "yaw"]
        );
        assert_eq!(e[0].1 <= d && e[1].1 <= y, expect, "{e:?}");
    }
    assert!(!scene().success(), "no episode yet");
    assert!(World::goal_error(&scene()).is_empty(), "no episode yet");
}

#[test]
fn bad_config_names_the_field() {
    let cases = [
        (
            PushConfig {
                physics_dt: 0.03,
                ..PushConfig::default()
            },
            "physics_dt",
        ),
        (
            PushConfig {
                goal_distance: [0.3, 0.1],
                ..PushConfig::default()
            },
            "goal_distance",
        ),
        (
            PushConfig {
                box_half_extents: [0.05, -0.05, 0.05],
                ..PushConfig::default()
            },
            "box_half_extents[1]",
        ),
        (
            PushConfig {
                edge_inset: 0.1,
                ..PushConfig::default()
            },
            "edge_inset",
        ),
        (
            PushConfig {
                model_friction: Real::NAN,
                ..PushConfig::default()
            },
            "model_friction",
        ),
    ];
    for (c, field) in cases {
        let e = Push::new(&c).unwrap_err().to_string();
        assert!(e.contains(field), "{field}: {e}");
    }
    let e = toml::from_str::<PushConfig>("box_mas = 1.0").unwrap_err();
    assert!(e.to_string().contains("box_mas"), "{e}");
    let crowded = PushConfig {
        keepouts: 12,
        keepout_half_extents: [0.1, 0.15],
        max_attempts: 3,
        ..PushConfig::default()
    };
    let e = Push::new(&crowded)
        .unwrap()
        .reset(1)
        .unwrap_err()
        .to_string();
    assert!(e.contains("no layout"), "{e}");
}

#[test]
fn shipped_scenario_compiles_against_the_scene() {
    let (scenario, spec) = crate::scene::testing::shipped_objective("push");
    let SceneConfig::Push(cfg) = &scenario.scene else {
        panic!("push.toml must run the push scene");
    };
    let radius = |name: &str| spec.bodies.iter().find(|b| b.name == name).unwrap().radius;
    assert_eq!(radius("pusher"), cfg.pusher_radius);
    assert!(radius("box") >= cfg.box_half_diagonal() - 1e-12);
    let mut on_table = Vec::new();
    let mut speed = None;
    for g in &spec.guardrails {
        match g {
            GuardrailSpec::Workspace {
                lower,
                upper,
                bodies,
                ..
            } => {
                // The workspace is the table's top.
                let (tx, ty) = (cfg.table_length / 2.0, cfg.table_width / 2.0);
                assert_eq!([lower[0], lower[1], upper[0], upper[1]], [-tx, -ty, tx, ty]);
                on_table.extend(bodies.iter().cloned());
            }
            GuardrailSpec::Speed { max, .. } => speed = Some(*max),
            _ => {}
        }
    }
    on_table.sort();
    assert_eq!(on_table, ["box", "pusher"]);
    // The speed limit sits strictly above the fastest (diagonal) command.
    assert!(speed.unwrap() > cfg.max_speed * std::f64::consts::SQRT_2);
}

#[test]
fn one_episode_runs_safely() {
    let mut scenario = Scenario::load("push").unwrap();
    scenario.episode.max_time = 6.0;
    let mut scene = scenario.scene.build(&scenario.base_dir).unwrap();
    let model = scene.analytic_model().unwrap();
    let r = run_episode(&scenario, scene.as_mut(), model, 5, &mut NoObserver).unwrap();
    assert_eq!(r.violation_steps, 0, "{r:?}");
    assert!(r.control_steps > 0 && r.duration <= 6.0 + 1e-9, "{r:?}");
    // The episode reports where the box ended relative to its goal.
    let names: Vec<&str> = r.final_error.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["distance", "yaw"], "{r:?}");
    assert!(
        r.final_error
            .iter()
            .all(|(_, e)| e.is_finite() && *e >= 0.0)
    );
}

#[test]
fn goal_state_is_the_end_of_a_straight_push() {
    let mut s = scene();
    for seed in 0..40 {
        let setup = s.reset(seed).unwrap();
        let goal = setup.goal_observation.unwrap();
        let l = s.layout.clone().unwrap();
        let (sin, cos) = l.goal_yaw.sin_cos();
        assert_eq!(&goal[2..], &[0.0, 0.0, l.goal[0], l.goal[1], cos, sin]);
        // The pusher is behind the box, on the line from its start through
        // its goal...
        let (dx, dy) = (l.goal[0] - l.box_start[0], l.goal[1] - l.box_start[1]);
        let (px, py) = (goal[0] - l.goal[0], goal[1] - l.goal[1]);
        assert!(
            px * dx + py * dy < 0.0,
            "seed {seed}: pusher ahead of the box"
        );
        assert!(
            (px * dy - py * dx).abs() < 1e-9,
            "seed {seed}: off the line"
        );
        // ... and its disc ends 5 mm short of the box's square.
        let [hx, hy, _] = s.config.box_half_extents;
        let (bx, by) = (cos * px + sin * py, cos * py - sin * px);
        let outside = ((bx.abs() - hx).max(0.0)).hypot((by.abs() - hy).max(0.0));
        let gap = outside - s.config.pusher_radius;
        assert!((gap - 0.005).abs() < 1e-9, "seed {seed}: gap {gap}");
    }
}
