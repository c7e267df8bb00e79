//! An actuation delay (`planner.delay_steps`): each call plans from where the
//! actions already sent will bring the robot.

use super::*;

#[test]
fn a_delayed_planner_plans_from_where_the_sent_actions_bring_the_robot() {
    let cfg = PlannerConfig {
        delay_steps: 2,
        ..config(PlannerKind::Mppi, 3)
    };
    let mut delayed = planner(REACH, cfg);
    let obs = [0.1, -0.2, 0.3, 0.0];
    let mut model = point_mass();
    let readout = |model: &mut PointMass, z: &[Real]| {
        let mut y = vec![0.0; model.spec().readouts.len()];
        model.readout(z, &mut y).unwrap();
        y
    };
    // Before the first call nothing was sent: the robot coasts for two steps.
    let predict = |model: &mut PointMass, z: &[Real], u: &[Real]| {
        let mut next = vec![0.0; z.len()];
        model.predict(z, u, &mut next).unwrap();
        next
    };
    let once = predict(&mut model, &obs, &[0.0, 0.0]);
    let coasted = predict(&mut model, &once, &[0.0, 0.0]);
    let first = delayed.plan(&obs).unwrap();
    assert_eq!(first.decoded, readout(&mut model, &coasted));
    let a1 = first.action.clone();
    assert_ne!(a1, [0.0, 0.0]);
    // The next call predicts through [nothing, a1].
    let z = predict(&mut model, &once, &a1);
    let second = delayed.plan(&obs).unwrap();
    assert_eq!(second.decoded, readout(&mut model, &z));
    // A reset forgets what was sent.
    delayed.reset();
    assert_eq!(
        delayed.plan(&obs).unwrap().decoded,
        readout(&mut model, &coasted)
    );

    // Without a delay the start is the observation.
    let mut plain = planner(REACH, config(PlannerKind::Mppi, 3));
    assert_eq!(plain.plan(&obs).unwrap().decoded, readout(&mut model, &obs));
}

#[test]
fn a_delay_longer_than_the_limit_is_refused() {
    let cfg = PlannerConfig {
        delay_steps: crate::planner::MAX_HORIZON + 1,
        ..config(PlannerKind::Mppi, 3)
    };
    let e = cfg.check_limits().unwrap_err().to_string();
    assert!(e.contains("planner.delay_steps"), "{e}");
}
