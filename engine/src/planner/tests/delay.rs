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

/// Runs a planner that identifies delays up to 2 against a point mass
/// whose actions act `true_delay` periods after they are sent, for `calls`
/// calls; every `stale`-th observation repeats the one before (a stale
/// sensor). Returns the delay each call planned through.
fn identified_delays(true_delay: usize, calls: usize, stale: Option<usize>) -> Vec<usize> {
    let cfg = PlannerConfig {
        delay_steps: 2,
        identify_delay: true,
        ..config(PlannerKind::Mppi, 5)
    };
    let mut planner = planner(REACH, cfg);
    let mut robot = point_mass();
    let mut x = vec![0.0, 0.0, 0.0, 0.0];
    let mut next = x.clone();
    let mut waiting: Vec<Vec<Real>> = vec![vec![0.0, 0.0]; true_delay];
    let mut seen = x.clone();
    let mut delays = Vec::new();
    for call in 0..calls {
        if stale.is_none_or(|k| call % k != k - 1) {
            seen.clone_from(&x);
        }
        let plan = planner.plan(&seen).unwrap();
        delays.push(plan.delay_steps);
        waiting.push(plan.action.clone());
        let acting = waiting.remove(0);
        robot.predict(&x, &acting, &mut next).unwrap();
        std::mem::swap(&mut x, &mut next);
    }
    delays
}

#[test]
fn an_identifying_planner_finds_the_robots_delay_within_a_few_calls() {
    for true_delay in 0..=2 {
        let delays = identified_delays(true_delay, 12, None);
        // The first call has nothing to go on and takes no delay; from the
        // fifth on, the true one.
        assert_eq!(delays[0], 0, "{delays:?}");
        assert!(
            delays[4..].iter().all(|d| *d == true_delay),
            "true delay {true_delay}: {delays:?}"
        );
    }
}

#[test]
fn a_stale_observation_is_no_evidence_of_the_delay() {
    // Every third observation repeats the one before: counted as evidence,
    // it says the robot stood still, which no delay explains.
    for true_delay in 0..=2 {
        let delays = identified_delays(true_delay, 15, Some(2));
        assert!(
            delays[6..].iter().all(|d| *d == true_delay),
            "true delay {true_delay}: {delays:?}"
        );
    }
}

#[test]
fn a_reset_forgets_the_identified_delay() {
    let cfg = PlannerConfig {
        delay_steps: 1,
        identify_delay: true,
        ..config(PlannerKind::Mppi, 5)
    };
    let mut planner = planner(REACH, cfg);
    let mut robot = point_mass();
    let mut x = vec![0.0; 4];
    let mut next = x.clone();
    let mut sent = vec![0.0, 0.0];
    for _ in 0..6 {
        let action = planner.plan(&x).unwrap().action.clone();
        robot.predict(&x, &sent, &mut next).unwrap();
        std::mem::swap(&mut x, &mut next);
        sent = action;
    }
    assert_eq!(planner.plan(&x).unwrap().delay_steps, 1);
    planner.reset();
    assert_eq!(planner.plan(&x).unwrap().delay_steps, 0);
}

#[test]
fn without_identification_the_plan_reports_the_configured_delay() {
    let cfg = PlannerConfig {
        delay_steps: 2,
        ..config(PlannerKind::Mppi, 3)
    };
    let mut delayed = planner(REACH, cfg);
    assert_eq!(delayed.plan(&[0.1, -0.2, 0.3, 0.0]).unwrap().delay_steps, 2);
    let mut plain = planner(REACH, config(PlannerKind::Mppi, 3));
    assert_eq!(plain.plan(&[0.1, -0.2, 0.3, 0.0]).unwrap().delay_steps, 0);
}
