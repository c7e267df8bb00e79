//! Planners: one planning problem, several solvers behind one trait.
//!
//! Every planner solves, at each control tick, the finite-horizon problem
//!
//! ```text
//! minimise_U   J(U) = Σ_t ℓ(y_{t+1}, z_{t+1}, u_t, u_{t−1}) + ℓ_H(y_H, z_H)
//! subject to   z_0 = encode(o),  z_{t+1} = predict(z_t, u_t),  y_t = readout(z_t)
//!              g_k(y_{t+1}) ≤ 0           for every guardrail k and step t  (hard)
//!              u_lo ≤ u_t ≤ u_hi           (by construction)
//! ```
//!
//! and returns the first action of the best *feasible* plan, or the configured
//! safe fallback with [`PlanStatus::NoFeasiblePlan`] when none is found.
//! Sampling planners rank feasible plans before infeasible ones, whatever their
//! cost; the gradient planner treats guardrails as constraints of an augmented
//! Lagrangian. All planners warm-start by shifting the previous plan, respect a
//! time budget, are reproducible from a seed, and allocate their workspace once.

mod cem;
mod config;
mod core;
mod driver;
mod gradient;
mod knots;
mod mppi;
mod pool;
mod rollout;
mod state;
mod step;

pub use cem::Cem;
pub use config::{
    Fallback, Interpolation, MAX_HORIZON, MAX_ITERATIONS, MAX_REFINE_ITERATIONS, MAX_REFINE_ROUNDS,
    MAX_SAMPLES, MAX_STEPS_PER_PLAN, MAX_THREADS, MAX_TIME_BUDGET_MS, MAX_WORKSPACE_BYTES,
    PlannerConfig, PlannerKind,
};
pub use driver::Planned;
pub use gradient::Gradient;
pub use mppi::Mppi;

use crate::Real;
use crate::error::PlanError;
use crate::model::WorldModel;
use crate::objective::Objective;
use std::time::Duration;

/// How a successful planning call ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlanStatus {
    /// The normal outcome: every configured iteration ran and the plan is
    /// feasible (`"completed"` in files and Python).
    Completed,
    /// A gradient planner met its tolerance with a feasible plan.
    Converged,
    /// The time budget ended first; the best feasible plan so far is returned.
    OutOfTime,
    /// No sampled or refined plan satisfied every guardrail: the action is the
    /// safe fallback.
    NoFeasiblePlan,
}

impl PlanStatus {
    /// True when the returned action comes from a feasible plan.
    #[must_use]
    pub fn is_feasible(self) -> bool {
        self != PlanStatus::NoFeasiblePlan
    }
}

/// The outcome of one planning call. Buffers are reused between calls.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// How the call ended.
    pub status: PlanStatus,
    /// The action to apply now (`A`): the plan's first action, or the fallback.
    pub action: Vec<Real>,
    /// The best action sequence found (`H×A`, row-major).
    pub actions: Vec<Real>,
    /// Predicted readouts along it (`H×P`), after each action.
    pub readouts: Vec<Real>,
    /// The readouts of the encoded observation (`P`): what the model
    /// decoded from the observation this plan starts from (every rollout's
    /// step 0), i.e. what the robot believed, to set beside the truth.
    pub decoded: Vec<Real>,
    /// The actuation delay, in control periods, this call planned through:
    /// [`PlannerConfig::delay_steps`], or with
    /// [`PlannerConfig::identify_delay`] the delay identified.
    pub delay_steps: usize,
    /// Its total task cost.
    pub cost: Real,
    /// Its cost per term, in [`Objective::term_names`] order.
    pub term_costs: Vec<Real>,
    /// Its smallest buffered margin per guardrail over the horizon
    /// (positive is safe), in [`Objective::guardrail_names`] order.
    pub margins: Vec<Real>,
    /// Sum of guardrail violations along it (0 when feasible).
    pub violation: Real,
    /// Samples of the last iteration that satisfied every guardrail.
    pub feasible_samples: usize,
    /// Iterations run.
    pub iterations: usize,
    /// Wall-clock time of the call.
    pub elapsed: Duration,
    /// The best sampled rollouts of the last sampling iteration, best first
    /// (`K×H×P` predicted readouts, `K` = [`PlannerConfig::keep_rollouts`]
    /// or fewer); empty unless asked for. What the planner considered
    /// besides the plan it chose.
    pub rollouts: Vec<Real>,
    /// Task cost of each kept rollout.
    pub rollout_costs: Vec<Real>,
    /// Summed guardrail violation of each kept rollout (0: feasible).
    pub rollout_violations: Vec<Real>,
}

impl Plan {
    /// The worst (smallest) guardrail margin of the plan, `+∞` without guardrails.
    #[must_use]
    pub fn worst_margin(&self) -> Real {
        self.margins.iter().copied().fold(Real::INFINITY, Real::min)
    }
}

/// A planner: call [`Planner::plan`] once per model time step with the latest observation.
pub trait Planner: Send {
    /// Plans from observation `obs` and returns the result (valid until the next call).
    fn plan(&mut self, obs: &[Real]) -> Result<&Plan, PlanError>;
    /// Gives the goal of the term `term` as a target observation (`O`
    /// values, the layout `plan` takes, e.g. a goal image): the world model
    /// encodes it, and a latent term then measures the latent energy
    /// `norm(z_t − encode(obs))` (see [the objective
    /// docs](crate::objective#latent-goals)), a readout term the distance of
    /// its readouts to those decoded from that latent,
    /// `y(z_t) − readout(encode(obs))`.
    ///
    /// The observation is checked as [`Planner::plan`] checks one; a bad one,
    /// an encoding failure, a goal that decodes to a value that is not
    /// finite, an unknown term or an action or action-rate term is an error
    /// naming the term, and the previous goal is kept. Not meant for the
    /// per-step path: it allocates.
    fn set_goal_observation(&mut self, term: &str, obs: &[Real]) -> Result<(), PlanError>;
    /// Forgets the warm start and the last action (e.g. at an episode start).
    fn reset(&mut self);
    /// The objective, e.g. to change targets between calls.
    fn objective_mut(&mut self) -> &mut Objective;
    /// The objective.
    fn objective(&self) -> &Objective;
    /// The configuration.
    fn config(&self) -> &PlannerConfig;
    /// Replaces the seed of the sampling noise (and resets the warm start).
    fn reseed(&mut self, seed: u64);
    /// The guardrails that this planner's safety buffers and model-error
    /// margins make impossible to satisfy within its horizon
    /// ([`Objective::unsatisfiable_guardrails`]): empty when planning can
    /// work. Check it once the planner is built; with such a guardrail a
    /// robot can at best hold still or back away from its limit.
    fn unsatisfiable_guardrails(&self) -> Vec<crate::objective::UnsatisfiableGuardrail> {
        self.objective()
            .unsatisfiable_guardrails(self.config().horizon)
    }
}

/// Builds the planner named by `config.kind`.
///
/// ```
/// use telic::model::PointMass;
/// use telic::objective::{ObjectiveSpec, Residual, TermSpec};
/// use telic::planner::{build, PlannerConfig};
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
/// let objective = spec.compile(telic::model::WorldModel::spec(&model)).unwrap();
/// let mut planner = build(model, objective, PlannerConfig::default()).unwrap();
/// let plan = planner.plan(&[0.0, 0.0, 0.0, 0.0]).unwrap();
/// assert!(plan.action[0] > 0.0); // accelerate towards x = 1
/// ```
pub fn build<M: WorldModel + 'static>(
    model: M,
    objective: Objective,
    config: PlannerConfig,
) -> Result<Box<dyn Planner>, PlanError> {
    Ok(match config.kind {
        PlannerKind::Mppi => Box::new(Mppi::new(model, objective, config)?),
        PlannerKind::Cem => Box::new(Cem::new(model, objective, config)?),
        PlannerKind::Gradient => Box::new(Gradient::new(model, objective, config)?),
    })
}

#[cfg(test)]
mod tests;
