//! Tests of the reach scene.

use super::*;

fn scene() -> Reach {
    Reach::new(&ReachConfig::default(), Path::new(".")).unwrap()
}

#[test]
fn reset_is_deterministic_per_seed() {
    let mut a = scene();
    let mut b = scene();
    for seed in [1, 2, 3] {
        let sa = a.reset(seed).unwrap();
        let sb = b.reset(seed).unwrap();
        assert_eq!(sa, sb);
        let (mut oa, mut ob) = (vec![0.0; 6], vec![0.0; 6]);
        a.observe(&mut oa);
        b.observe(&mut ob);
        assert_eq!(oa, ob);
        assert!(!sa.guardrails.is_empty() && sa.guardrails.len() <= 2);
    }
    assert_ne!(a.reset(1).unwrap(), a.reset(2).unwrap());
}

#[test]
fn truth_matches_forward_kinematics() {
    let mut s = scene();
    s.reset(7).unwrap();
    let mut arm = s.analytic_model().unwrap();
    assert_eq!(s.truth_readouts(), arm.spec().readouts.as_slice());
    let p = s.truth_readouts().len();
    let (mut truth, mut y, mut obs, mut z) =
        (vec![0.0; p], vec![0.0; p], vec![0.0; 6], vec![0.0; 6]);
    let check = |s: &Reach,
                 arm: &mut Box<dyn WorldModel>,
                 truth: &mut [Real],
                 y: &mut [Real],
                 obs: &mut [Real],
                 z: &mut [Real]| {
        s.truth(truth);
        s.observe(obs);
        arm.encode(obs, z).unwrap();
        arm.readout(z, y).unwrap();
        for (i, (a, b)) in truth.iter().zip(y.iter()).enumerate().skip(6) {
            assert!(
                (a - b).abs() < 1e-3,
                "{}: physics {a} vs model {b}",
                s.names[i]
            );
        }
    };
    check(&s, &mut arm, &mut truth, &mut y, &mut obs, &mut z);
    s.apply(&[0.8, -0.6, 1.0]);
    for _ in 0..100 {
        s.step();
    }
    check(&s, &mut arm, &mut truth, &mut y, &mut obs, &mut z);
}

#[test]
fn joint_velocities_track_the_model() {
    // One second of a constant command: the physics (with gravity) and
    // the analytic model agree to within 3 % of the distance travelled.
    let mut s = scene();
    let mut model = s.analytic_model().unwrap();
    let k = (0.05 / s.physics_dt()).round() as usize;
    for seed in [3, 4] {
        s.reset(seed).unwrap();
        let mut obs = vec![0.0; 6];
        s.observe(&mut obs);
        let (mut z, mut next) = (obs.clone(), vec![0.0; 6]);
        let u = [0.5, 0.3, -0.4];
        for _ in 0..20 {
            s.apply(&u);
            for _ in 0..k {
                s.step();
            }
            model.predict(&z, &u, &mut next).unwrap();
            z.copy_from_slice(&next);
        }
        s.observe(&mut obs);
        for j in 0..3 {
            let err = (obs[j] - z[j]).abs();
            assert!(
                err < 0.03 * u[j].abs(),
                "seed {seed} joint {j}: physics {} vs model {}",
                obs[j],
                z[j]
            );
            let v_err = (obs[3 + j] - u[j]).abs();
            assert!(
                v_err < 0.03 * u[j].abs(),
                "seed {seed} joint {j} speed {}",
                obs[3 + j]
            );
        }
    }
}

#[test]
fn shipped_urdf_starts_clear_and_success_is_measured() {
    let mut s = scene();
    let setup = s.reset(11).unwrap();
    assert_eq!(setup.targets[0].0, "goal");
    assert!(!s.success());
    let tip = s.tip_position();
    let d: Real = tip
        .iter()
        .zip(&s.goal)
        .map(|(a, b)| (a - b).powi(2))
        .sum::<Real>()
        .sqrt();
    assert!(d >= 0.3 - 1e-9, "{d}");
}

#[test]
fn goal_observation_is_the_target_configuration_at_rest() {
    let mut s = scene();
    for seed in [1, 2, 3] {
        let setup = s.reset(seed).unwrap();
        let obs = setup.goal_observation.unwrap();
        let n = s.arm().num_joints();
        assert_eq!(obs.len(), 2 * n);
        assert!(obs[n..].iter().all(|v| *v == 0.0), "{obs:?}");
        // Its joint angles put the tool on the target point.
        let mut arm = s.arm().clone();
        let mut points = vec![[0.0; 3]; arm.link_names().len()];
        arm.link_positions(&obs[..n], &mut points).unwrap();
        let tip = points.last().unwrap();
        for (p, g) in tip.iter().zip(&setup.targets[0].1) {
            assert!((p - g).abs() < 1e-12, "{tip:?} vs {:?}", setup.targets[0].1);
        }
    }
}

#[test]
fn bad_urdf_is_an_error_naming_the_path() {
    let dir = std::env::temp_dir().join(format!("telic-reach-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = ReachConfig {
        urdf: Some("missing.urdf".into()),
        ..Default::default()
    };
    let e = Reach::new(&cfg, &dir).unwrap_err();
    assert!(
        matches!(&e, SimError::Urdf { path, .. } if path.contains("missing.urdf")),
        "{e}"
    );
    std::fs::write(dir.join("bad.urdf"), "<robot name=\"x\"><link name=").unwrap();
    let cfg = ReachConfig {
        urdf: Some("bad.urdf".into()),
        ..Default::default()
    };
    let e = Reach::new(&cfg, &dir).unwrap_err();
    assert!(
        matches!(&e, SimError::Urdf { path, .. } if path.contains("bad.urdf")),
        "{e}"
    );
    let cfg = ReachConfig {
        tip_link: "gripper".into(),
        ..Default::default()
    };
    let e = Reach::new(&cfg, &dir).unwrap_err();
    assert!(
        matches!(&e, SimError::Urdf { message, .. } if message.contains("gripper")),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// URDF numbers the physics cannot take, each found by
/// `tests/tests/fuzz_inputs.rs` as a panic inside rapier's loader or its
/// contact queries: now errors naming the link or joint.
#[test]
fn urdf_numbers_the_physics_cannot_take_are_errors() {
    let dir = std::env::temp_dir().join(format!("telic-reach-numbers-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let shipped =
        std::fs::read_to_string(crate::scenario::sim_dir().join("assets/arm3.urdf")).unwrap();
    for (from, to, expected) in [
        (r#"radius="0.08""#, r#"radius="-0.08""#, "not positive"),
        (r#"length="0.1""#, r#"length="-1e308""#, "magnitude"),
        (r#"xyz="0.175 0 0""#, r#"xyz="-1e308 0 0""#, "magnitude"),
        (r#"rpy="0 0 0""#, r#"rpy="0 0 1e308""#, "magnitude"),
        (r#"xyz="0 1 0""#, r#"xyz="0 0 0""#, "axis"),
        (r#"value="#, r#"value="nan" x="#, "mass"),
    ] {
        assert!(shipped.contains(from), "{from}");
        std::fs::write(dir.join("arm.urdf"), shipped.replacen(from, to, 1)).unwrap();
        let cfg = ReachConfig {
            urdf: Some("arm.urdf".into()),
            ..Default::default()
        };
        let e = Reach::new(&cfg, &dir).unwrap_err();
        assert!(
            matches!(&e, SimError::Urdf { message, .. } if message.contains(expected)),
            "{to}: {e}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn shipped_scenario_starts_clear_of_every_guardrail() {
    use crate::scenario::Scenario;
    use crate::scene::SceneConfig;
    let scenario = Scenario::load("reach").unwrap();
    let SceneConfig::Reach(cfg) = &scenario.scene else {
        panic!("reach.toml does not describe a reach scene");
    };
    let mut scene = Reach::new(cfg, &scenario.base_dir).unwrap();
    let model = scene.analytic_model().unwrap();
    let mut truth = vec![0.0; scene.truth_readouts().len()];
    for seed in 0..20 {
        let setup = scene.reset(seed).unwrap();
        let mut spec = scenario.objective.clone();
        spec.guardrails.extend(setup.guardrails.iter().cloned());
        let mut objective = spec.compile(model.spec()).unwrap();
        objective.set_target("goal", &setup.targets[0].1).unwrap();
        scene.truth(&mut truth);
        let mut margins = vec![0.0; objective.num_guardrails()];
        objective.margins(&truth, true, &mut margins);
        assert!(margins.iter().all(|m| *m > 0.0), "seed {seed}: {margins:?}");
    }
}
