//! Gradient refinement: an MPPI proposal polished by L-BFGS on an augmented
//! Lagrangian of the guardrails, through `argmin`.
//!
//! Each call first runs MPPI (Williams et al., JGCS 2017) for a proposal `U⁰`,
//! then, with `u = c + h·tanh(v)` so that the action bounds hold by
//! construction, runs `refine_rounds` rounds of the PHR augmented-Lagrangian
//! method (Hestenes 1969, Powell 1969, Rockafellar 1973; Nocedal & Wright,
//! *Numerical Optimization*, 2nd ed., Springer 2006, ch. 17):
//!
//! ```text
//! v_{j+1} ≈ argmin_v  L(v) = J(u(v)) + (1/(2ρ_j)) Σ_{t,k} ( max(0, λ_{t,k} − ρ_j·(m_{t,k} − δ))² − λ_{t,k}² )
//! λ_{t,k} ← max(0, λ_{t,k} − ρ_j·(m_{t,k}(v_{j+1}) − δ)),      ρ_{j+1} = 10·ρ_j
//! ```
//!
//! where `m_{t,k}` is guardrail `k`'s buffered margin after step `t` (positive
//! is safe) and `δ` a small slack that makes the limit of the iterates land
//! strictly inside. Each inner minimisation is at most `refine_iterations`
//! iterations of L-BFGS (Nocedal & Wright, ch. 7, Algorithm 7.5) with a
//! More–Thuente line search; gradients come from the adjoint (backward) pass
//! through `WorldModel::predict_jacobians` and `readout_jacobian`.
//!
//! Refinement can only help: every rollout it makes is a candidate, the best
//! *feasible* one (lowest task cost) replaces the proposal only when it ranks
//! before it (feasible first, then cheaper), and the result still goes through
//! the shield. It is anytime: when the time budget ends, refinement stops at
//! once and the best plan found so far is returned with
//! [`PlanStatus::OutOfTime`](super::PlanStatus::OutOfTime).

mod adjoint;
mod refine;

use super::core::rank;
use super::driver::{Driver, Planned};
use super::mppi::MppiStep;
use super::step::Solver;
use crate::Real;
use crate::error::PlanError;
use crate::model::WorldModel;
use refine::{Refiner, Stop};
use std::cmp::Ordering;

/// Initial penalty `ρ₀`, relative to `max(1, |J(U⁰)|)`.
const RHO_INIT: Real = 10.0;
/// Growth of `ρ` between rounds.
const RHO_GROWTH: Real = 10.0;
/// Slack `δ` on every buffered margin inside the augmented Lagrangian.
const SLACK: Real = 1e-4;
/// Multiplier change below which a converged, feasible round ends refinement.
const MULTIPLIER_TOL: Real = 1e-9;

/// MPPI proposal refined by L-BFGS on an augmented Lagrangian of the
/// guardrails: a [`Planned`] planner (see there for `new` and its
/// [`Planner`](super::Planner) methods).
///
/// Needs a differentiable world model: analytic Jacobians where the model
/// provides them, central finite differences otherwise. `Plan::iterations`
/// counts MPPI iterations plus L-BFGS iterations; the status is
/// [`PlanStatus::Converged`](super::PlanStatus::Converged) when the refined
/// plan was accepted and L-BFGS met its tolerance in the last round.
///
/// ```
/// use telic::model::{PointMass, WorldModel};
/// use telic::objective::{ObjectiveSpec, Residual, TermSpec};
/// use telic::planner::{Gradient, Planner, PlannerConfig, PlannerKind};
///
/// let model = PointMass::new(2, 0.1, 2.0).unwrap();
/// let spec = ObjectiveSpec {
///     terms: vec![TermSpec {
///         name: "goal".into(),
///         residual: Residual::Readout {
///             readouts: vec!["pos.x".into(), "pos.y".into()],
///             target: vec![1.0, 0.0],
///         },
///         norm: Default::default(),
///         weight: 1.0,
///         phase: Default::default(),
///     }],
///     ..Default::default()
/// };
/// let objective = spec.compile(model.spec()).unwrap();
/// let config = PlannerConfig { kind: PlannerKind::Gradient, ..Default::default() };
/// let mut planner = Gradient::new(model, objective, config).unwrap();
/// let plan = planner.plan(&[0.0; 4]).unwrap();
/// assert!(plan.action[0] > 0.0);
/// ```
pub type Gradient<M> = Planned<M, GradientStep>;

/// The gradient planner's solver: the MPPI step for a proposal, then
/// rounds of L-BFGS refinement.
#[derive(Debug)]
pub struct GradientStep {
    proposal: MppiStep,
    refiner: Refiner,
}

impl Solver for GradientStep {
    fn new<M: WorldModel>(core: &Driver<M>) -> Self {
        Self {
            proposal: MppiStep::new(core),
            refiner: Refiner::new(core),
        }
    }

    fn solve<M: WorldModel>(&mut self, core: &mut Driver<M>) -> Result<(), PlanError> {
        let proposed = core.iterate(&mut self.proposal)?;
        let config = core.config();
        let skip = proposed.timed_out()
            || core.out_of_time()
            || config.refine_rounds == 0
            || config.refine_iterations == 0;
        let refined = if skip {
            Refinement {
                timed_out: proposed.timed_out() || core.out_of_time(),
                ..Refinement::default()
            }
        } else {
            refine(&mut self.refiner, core)?
        };
        if !refined.accepted {
            self.refiner.take_proposal(core.best());
        }
        let ended = proposed.ended(refined.iterations, refined.timed_out, refined.converged);
        core.finish(self.refiner.best(), ended)
    }
}

/// Refines `core`'s best sequence (the proposal) with `r`. Returns whether
/// the refined plan was accepted (it is then `r`'s best), L-BFGS iterations
/// run, whether the budget ended, and whether the last round converged.
fn refine<M: WorldModel>(r: &mut Refiner, c: &mut Driver<M>) -> Result<Refinement, PlanError> {
    let mut out = Refinement::default();
    let proposal = r.begin(c, RHO_INIT, SLACK)?;
    // Without guardrails every round would solve the same problem: run
    // them as one, keeping the L-BFGS history.
    let config = c.config();
    let (rounds, iterations) = if c.objective().num_guardrails() == 0 {
        (
            1,
            config
                .refine_rounds
                .saturating_mul(config.refine_iterations),
        )
    } else {
        (config.refine_rounds, config.refine_iterations)
    };
    for j in 0..rounds {
        if c.out_of_time() {
            out.timed_out = true;
            break;
        }
        let round = r.round(c, iterations);
        out.iterations += round.iterations();
        out.converged = round.converged();
        match r.take_stop() {
            Some(Stop::Model(e)) => return Err(e.into()),
            Some(Stop::OutOfTime) => {
                out.timed_out = true;
                out.converged = false;
                break;
            }
            Some(Stop::EvaluationLimit | Stop::NonFinite) => {
                out.converged = false;
                break;
            }
            None => {}
        }
        if j + 1 == rounds {
            break;
        }
        let (roll, change) = r.update_multipliers(c)?;
        if round.converged() && roll.violation() <= 0.0 && change <= MULTIPLIER_TOL {
            break; // a KKT point: further rounds would not move
        }
        r.grow_penalty(RHO_GROWTH);
    }
    out.accepted = r.best_feasible_cost().is_some_and(|best_cost| {
        rank(0.0, best_cost, proposal.violation(), proposal.cost()) == Ordering::Less
    });
    if !out.accepted {
        out.converged = false;
    }
    Ok(out)
}

/// What refinement did in one call.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Refinement {
    accepted: bool,
    iterations: usize,
    timed_out: bool,
    converged: bool,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::model::{PointMass, Unicycle};
    use crate::objective::{
        BodySpec, GuardrailSpec, Norm, ObjectiveSpec, Phase, Residual, Shape, TermSpec,
    };
    use crate::planner::{Mppi, PlanStatus, Planner, PlannerConfig, PlannerKind};

    fn term(name: &str, residual: Residual, weight: Real) -> TermSpec {
        TermSpec {
            name: name.into(),
            residual,
            norm: Norm::Quadratic,
            weight,
            phase: Phase::Running,
        }
    }

    /// Reach `goal` with a quadratic cost and a small action regulariser.
    fn reach(goal: [Real; 2], effort: Real) -> ObjectiveSpec {
        ObjectiveSpec {
            terms: vec![
                term(
                    "goal",
                    Residual::Readout {
                        readouts: vec!["pos.x".into(), "pos.y".into()],
                        target: goal.to_vec(),
                    },
                    1.0,
                ),
                term("effort", Residual::Action { target: vec![] }, effort),
            ],
            ..ObjectiveSpec::default()
        }
    }

    /// `reach` with a ball of radius 0.3 between the start and the goal,
    /// kept away from a body of radius 0.1 around `pos`.
    fn reach_around_ball() -> ObjectiveSpec {
        let mut spec = reach([2.0, 0.0], 0.01);
        spec.guardrails.push(GuardrailSpec::KeepOut {
            name: "ball".into(),
            margin: 0.02,
            shape: Shape::Sphere {
                center: [1.0, 0.02, 0.0],
                radius: 0.3,
            },
            bodies: vec![],
        });
        spec.bodies.push(BodySpec {
            name: "p".into(),
            points: vec!["pos".into()],
            radius: 0.1,
        });
        spec
    }

    fn config(samples: usize, iterations: usize) -> PlannerConfig {
        PlannerConfig {
            kind: PlannerKind::Gradient,
            horizon: 20,
            samples,
            iterations,
            ..PlannerConfig::default()
        }
    }

    fn planners<M: WorldModel + Clone>(
        model: &M,
        spec: &ObjectiveSpec,
        config: &PlannerConfig,
    ) -> (Mppi<M>, Gradient<M>) {
        let objective = spec.compile(model.spec()).unwrap();
        let mppi = Mppi::new(model.clone(), objective.clone(), config.clone()).unwrap();
        let grad = Gradient::new(model.clone(), objective, config.clone()).unwrap();
        (mppi, grad)
    }

    #[test]
    fn refinement_lowers_mppi_cost() {
        let model = PointMass::new(2, 0.1, 2.0).unwrap();
        let (mut mppi, mut grad) = planners(&model, &reach([1.0, 0.5], 0.01), &config(64, 1));
        let obs = [0.0, 0.0, 0.0, 0.0];
        let mppi = mppi.plan(&obs).unwrap().cost;
        let plan = grad.plan(&obs).unwrap();
        let refined = plan.cost;
        eprintln!("MPPI {mppi} vs MPPI+L-BFGS {refined} ({:?})", plan.status);
        assert!(refined < mppi, "MPPI {mppi} vs MPPI+L-BFGS {refined}");
        assert!(plan.status.is_feasible(), "{:?}", plan.status);
        assert!(plan.iterations > 1, "no L-BFGS iteration ran");
    }

    #[test]
    fn refined_plan_keeps_out_of_ball() {
        let model = PointMass::new(2, 0.1, 3.0).unwrap();
        let spec = reach_around_ball();
        let (mut mppi, mut grad) = planners(&model, &spec, &config(64, 2));
        let mut obs = vec![0.0, 0.0, 0.0, 0.0];
        let mppi_cost = mppi.plan(&obs).unwrap().cost;
        let plan = grad.plan(&obs).unwrap();
        eprintln!(
            "keep-out: MPPI {mppi_cost} vs MPPI+L-BFGS {} ({:?}, worst margin {})",
            plan.cost,
            plan.status,
            plan.worst_margin()
        );
        assert!(plan.status.is_feasible(), "{:?}", plan.status);
        assert!(plan.worst_margin() >= 0.0, "margins {:?}", plan.margins);
        assert!(
            plan.cost <= mppi_cost,
            "MPPI {mppi_cost} vs MPPI+L-BFGS {}",
            plan.cost
        );
        // Closed loop on the model itself: every executed state keeps its margin.
        let objective = spec.compile(model.spec()).unwrap();
        let mut sim = model.clone();
        let (mut next, mut y, mut m) = (vec![0.0; 4], vec![0.0; 5], vec![0.0; 1]);
        for tick in 0..25 {
            let plan = grad.plan(&obs).unwrap();
            assert!(plan.status.is_feasible(), "tick {tick}: {:?}", plan.status);
            assert!(
                plan.worst_margin() >= 0.0,
                "tick {tick}: {:?}",
                plan.margins
            );
            let action = plan.action.clone();
            sim.predict(&obs, &action, &mut next).unwrap();
            sim.readout(&next, &mut y).unwrap();
            objective.margins(&y, true, &mut m);
            assert!(
                m[0] >= 0.0,
                "tick {tick}: executed margin {} at {:?}",
                m[0],
                &y[..2]
            );
            obs.copy_from_slice(&next);
        }
        assert!(obs[0] > 1.0, "never got past the ball: {obs:?}");
    }

    #[test]
    fn refinement_is_never_worse_than_mppi() {
        let spec = ObjectiveSpec {
            terms: vec![
                term(
                    "goal",
                    Residual::Readout {
                        readouts: vec!["base.x".into(), "base.y".into()],
                        target: vec![1.0, 0.6],
                    },
                    1.0,
                ),
                term("smooth", Residual::ActionRate, 0.1),
            ],
            guardrails: vec![GuardrailSpec::KeepOut {
                name: "post".into(),
                margin: 0.0,
                shape: Shape::Sphere {
                    center: [0.5, 0.3, 0.0],
                    radius: 0.15,
                },
                bodies: vec![],
            }],
            bodies: vec![BodySpec {
                name: "base".into(),
                points: vec!["base".into()],
                radius: 0.1,
            }],
        };
        let model = Unicycle::new(0.1, 1.0, 2.0, 0.2).unwrap();
        for seed in 0..4 {
            let cfg = PlannerConfig {
                seed,
                ..config(32, 1)
            };
            let (mut mppi, mut grad) = planners(&model, &spec, &cfg);
            let obs = [0.0, 0.0, 0.3 * seed as Real, 0.0, 0.0];
            let m = mppi.plan(&obs).unwrap().clone();
            let g = grad.plan(&obs).unwrap();
            assert!(
                rank(g.violation, g.cost, m.violation, m.cost) != Ordering::Greater,
                "seed {seed}: MPPI ({}, {}) vs MPPI+L-BFGS ({}, {})",
                m.violation,
                m.cost,
                g.violation,
                g.cost
            );
            assert!(g.status.is_feasible() || !m.status.is_feasible());
        }
    }

    #[test]
    fn without_rounds_it_is_mppi() {
        let model = PointMass::new(2, 0.1, 2.0).unwrap();
        let cfg = PlannerConfig {
            refine_rounds: 0,
            ..config(32, 2)
        };
        let (mut mppi, mut grad) = planners(&model, &reach_around_ball(), &cfg);
        let mut obs = [0.0, 0.0, 0.0, 0.0];
        for _ in 0..3 {
            let m = mppi.plan(&obs).unwrap().clone();
            let g = grad.plan(&obs).unwrap();
            assert_eq!(m.actions, g.actions);
            assert_eq!(m.status, g.status);
            obs = [g.readouts[0], g.readouts[1], g.readouts[2], g.readouts[3]];
        }
    }

    #[test]
    fn spent_budget_returns_the_proposal() {
        let model = PointMass::new(2, 0.1, 2.0).unwrap();
        let cfg = PlannerConfig {
            time_budget_ms: Some(1e-9),
            ..config(32, 3)
        };
        let (mut mppi, mut grad) = planners(&model, &reach([1.0, 0.0], 0.01), &cfg);
        let obs = [0.0; 4];
        let m = mppi.plan(&obs).unwrap().clone();
        let g = grad.plan(&obs).unwrap();
        assert_eq!(g.status, PlanStatus::OutOfTime);
        assert_eq!(m.actions, g.actions);
    }

    #[test]
    fn budget_ends_refinement_with_a_safe_plan() {
        let model = PointMass::new(2, 0.1, 3.0).unwrap();
        let cfg = PlannerConfig {
            time_budget_ms: Some(3.0),
            refine_rounds: 50,
            refine_iterations: 100_000,
            ..config(64, 2)
        };
        let (mut mppi, mut grad) = planners(&model, &reach_around_ball(), &cfg);
        let obs = [0.0; 4];
        let m = mppi.plan(&obs).unwrap().clone();
        let g = grad.plan(&obs).unwrap();
        assert!(
            matches!(g.status, PlanStatus::OutOfTime | PlanStatus::Converged),
            "{:?}",
            g.status
        );
        assert!(g.worst_margin() >= 0.0, "margins {:?}", g.margins);
        assert!(
            g.cost <= m.cost,
            "MPPI {} vs MPPI+L-BFGS {}",
            m.cost,
            g.cost
        );
    }

    #[test]
    fn same_seed_same_plan() {
        let model = PointMass::new(2, 0.1, 3.0).unwrap();
        let spec = reach_around_ball();
        let (_, mut a) = planners(&model, &spec, &config(32, 1));
        let (_, mut b) = planners(&model, &spec, &config(32, 1));
        let obs = [0.1, -0.1, 0.2, 0.0];
        for _ in 0..2 {
            let pa = a.plan(&obs).unwrap().clone();
            let pb = b.plan(&obs).unwrap();
            assert_eq!(pa.actions, pb.actions);
            assert_eq!(pa.status, pb.status);
        }
    }
}
