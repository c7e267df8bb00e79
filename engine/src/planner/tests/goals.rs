//! Goal observations of latent terms: reached, checked, refused.

use super::*;

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
                if m.to_string().contains("'smooth' is an action-rate term")),
            "{kind:?}: {err}"
        );
        // The goal set first is still in force: the same plans as without the errors.
        assert_eq!(run(&mut *p, [0.0; 4], 3), expected, "{kind:?}");
    }
}

#[test]
fn goal_observation_on_a_readout_term_sets_its_decoded_target() {
    // The point mass's readouts of the goal observation at rest at (1, 0.5)
    // are the target REACH writes by hand: the same plans either way.
    for kind in KINDS {
        let mut reference = planner(REACH, config(kind, 5));
        let expected = run(&mut *reference, [0.0; 4], 3);
        let mut p = planner(REACH, config(kind, 5));
        p.objective_mut().set_target("goal", &[0.0, 0.0]).unwrap();
        p.set_goal_observation("goal", &GOAL_OBS).unwrap();
        // A goal that does not encode keeps the decoded target.
        let err = p
            .set_goal_observation("goal", &[1.0, Real::NAN, 0.0, 0.0])
            .unwrap_err();
        assert!(
            matches!(&err, PlanError::GoalObservation { term, .. } if term == "goal"),
            "{err}"
        );
        assert_eq!(run(&mut *p, [0.0; 4], 3), expected, "{kind:?}");
    }
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
