//! The shield and the fallback: nothing infeasible acts, the configured
//! fallback when nothing is feasible, feasible-first ranking, time budget.

use super::*;

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
