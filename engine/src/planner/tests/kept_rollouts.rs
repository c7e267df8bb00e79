//! The best sampled rollouts a plan keeps when asked.

use super::*;

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

#[test]
fn plans_carry_the_readouts_decoded_from_their_observation() {
    for kind in [PlannerKind::Mppi, PlannerKind::Cem, PlannerKind::Gradient] {
        let mut model = point_mass();
        let (d, p) = (model.spec().latent_dim, model.spec().readout_dim());
        let mut planner = build(
            model.clone(),
            objective(REACH, model.spec()),
            config(kind, 3),
        )
        .unwrap();
        for obs in [[0.3, -0.2, 0.1, 0.0], [-0.5, 0.4, 0.0, 0.2]] {
            let (mut z, mut want) = (vec![0.0; d], vec![0.0; p]);
            model.encode(&obs, &mut z).unwrap();
            model.readout(&z, &mut want).unwrap();
            let plan = planner.plan(&obs).unwrap();
            assert_eq!(plan.decoded, want, "{kind:?} at {obs:?}");
        }
    }
}
