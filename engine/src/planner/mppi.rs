//! Model-predictive path integral control.
//!
//! Williams, Aldrich, Theodorou, "Model Predictive Path Integral Control:
//! From Theory to Fast Computation", JGCS 2017. Each iteration samples `N`
//! perturbations of the nominal sequence (colored noise), rolls them out, and
//! moves the nominal to the weighted mean `Σ wᵢUᵢ / Σ wᵢ` with
//! `wᵢ = exp(−(Jᵢ − J_min)/(λ·(J̄ − J_min)))` over the *feasible* samples only,
//! so guardrails are never traded against cost.

use super::core::Core;
use super::{Plan, Planner, PlannerConfig};
use crate::Real;
use crate::error::PlanError;
use crate::model::WorldModel;
use crate::objective::Objective;

/// MPPI planner.
#[derive(Debug)]
pub struct Mppi<M> {
    core: Core<M>,
    proposal: Proposal,
}

impl<M: WorldModel> Mppi<M> {
    /// A planner for `model` and `objective`; checks `config`.
    pub fn new(model: M, objective: Objective, config: PlannerConfig) -> Result<Self, PlanError> {
        let core = Core::new(model, objective, config)?;
        let proposal = Proposal::new(&core);
        Ok(Self { core, proposal })
    }

    /// The world model.
    pub fn model(&self) -> &M {
        &self.core.model
    }

    /// The shared planner state (tests reach the rollout pool through it).
    #[cfg(test)]
    pub(crate) fn core_mut(&mut self) -> &mut Core<M> {
        &mut self.core
    }
}

impl<M: WorldModel> Planner for Mppi<M> {
    fn plan(&mut self, obs: &[Real]) -> Result<&Plan, PlanError> {
        let c = &mut self.core;
        c.begin(obs)?;
        let out = self.proposal.run(c)?;
        c.finish_with_best(out.iterations, out.feasible, out.timed_out, false)?;
        Ok(&c.plan)
    }

    fn set_goal_observation(&mut self, term: &str, obs: &[Real]) -> Result<(), PlanError> {
        self.core.set_goal_observation(term, obs)
    }
    fn reset(&mut self) {
        self.core.reset();
    }
    fn objective_mut(&mut self) -> &mut Objective {
        std::sync::Arc::make_mut(&mut self.core.objective)
    }
    fn objective(&self) -> &Objective {
        &self.core.objective
    }
    fn config(&self) -> &PlannerConfig {
        &self.core.config
    }
    fn reseed(&mut self, seed: u64) {
        self.core.reseed(seed);
    }
}

/// Outcome of the MPPI iterations of one call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Proposed {
    /// Sampling iterations run.
    pub iterations: usize,
    /// Feasible samples in the last iteration.
    pub feasible: usize,
    /// The time budget ended during sampling.
    pub timed_out: bool,
}

/// The MPPI iteration, shared by [`Mppi`] and the gradient planner's proposal.
/// Buffers are allocated once.
#[derive(Debug)]
pub(crate) struct Proposal {
    weights: Vec<Real>,
    mean: Vec<Real>,
    sigma: Vec<Real>,
}

impl Proposal {
    pub fn new<M: WorldModel>(core: &Core<M>) -> Self {
        Self {
            weights: vec![0.0; core.config.samples],
            mean: vec![0.0; core.h * core.a],
            sigma: core.sigma.clone(),
        }
    }

    /// Runs the MPPI iterations after [`Core::begin`], stopping before
    /// [`Core::finish`]; the best sequence is left in `core.best` with its
    /// score in `core.best_violation` / `core.best_cost`.
    pub fn run<M: WorldModel>(&mut self, c: &mut Core<M>) -> Result<Proposed, PlanError> {
        let n = c.config.samples;
        let len = c.h * c.a;
        let mut out = Proposed {
            iterations: 0,
            feasible: 0,
            timed_out: false,
        };
        self.mean.copy_from_slice(&c.nominal);
        for it in 0..c.config.iterations {
            if it > 0 && c.out_of_time() {
                out.timed_out = true;
                break;
            }
            // Slot 0 keeps the nominal, slot 1 the fallback held still.
            c.set_seq(0, &self.mean);
            c.set_fallback_seq(1);
            c.sample_and_evaluate(2, n, &self.mean, &self.sigma)?;
            c.keep_rollouts(n);
            out.iterations += 1;
            let feasible = c.feasible_count(n);
            out.feasible = feasible;
            let roll = &c.roll;
            // Weights over feasible samples; when none is feasible, over the
            // least-violating ones so the mean moves towards feasibility.
            let (score, pool): (&[Real], Real) = if feasible > 0 {
                (&roll.cost[..n], 0.0)
            } else {
                let vmin = roll.violation[..n]
                    .iter()
                    .copied()
                    .fold(Real::INFINITY, Real::min);
                (&roll.violation[..n], vmin)
            };
            let eligible = |i: usize| {
                if feasible > 0 {
                    roll.violation[i] <= 0.0
                } else {
                    roll.violation[i].is_finite() && roll.violation[i] >= pool
                }
            };
            let mut smin = Real::INFINITY;
            let (mut ssum, mut count) = (0.0, 0.0);
            for (_, s) in score
                .iter()
                .enumerate()
                .filter(|(i, s)| eligible(*i) && s.is_finite())
            {
                smin = smin.min(*s);
                ssum += s;
                count += 1.0;
            }
            if count == 0.0 {
                continue;
            }
            let spread = (ssum / count - smin).max(1e-12);
            let lambda = c.config.temperature * spread;
            let mut wsum = 0.0;
            for (i, (w, s)) in self.weights.iter_mut().zip(score).enumerate() {
                *w = if eligible(i) && s.is_finite() {
                    (-(s - smin) / lambda).exp()
                } else {
                    0.0
                };
                wsum += *w;
            }
            if wsum <= 0.0 {
                continue;
            }
            self.mean.fill(0.0);
            for (w, seq) in self.weights[..n].iter().zip(c.seqs.chunks_exact(len)) {
                let w = w / wsum;
                if w == 0.0 {
                    continue;
                }
                for (m, x) in self.mean.iter_mut().zip(seq) {
                    *m += w * x;
                }
            }
        }
        // The weighted mean has not been rolled out since its last update.
        c.set_seq(0, &self.mean);
        c.evaluate(1)?;
        Ok(out)
    }
}
