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
    weights: Vec<Real>,
    mean: Vec<Real>,
}

impl<M: WorldModel> Mppi<M> {
    /// A planner for `model` and `objective`; checks `config`.
    pub fn new(model: M, objective: Objective, config: PlannerConfig) -> Result<Self, PlanError> {
        let core = Core::new(model, objective, config)?;
        let n = core.config.samples;
        let len = core.h * core.a;
        Ok(Self {
            core,
            weights: vec![0.0; n],
            mean: vec![0.0; len],
        })
    }

    /// The world model.
    pub fn model(&self) -> &M {
        &self.core.model
    }
}

impl<M: WorldModel> Planner for Mppi<M> {
    fn plan(&mut self, obs: &[Real]) -> Result<&Plan, PlanError> {
        let c = &mut self.core;
        c.begin(obs)?;
        let n = c.config.samples;
        let len = c.h * c.a;
        let mut iterations = 0;
        let mut feasible = 0;
        let mut timed_out = false;
        self.mean.copy_from_slice(&c.nominal);
        let sigma = c.sigma.clone();
        for it in 0..c.config.iterations {
            if it > 0 && c.out_of_time() {
                timed_out = true;
                break;
            }
            // Slot 0 keeps the nominal itself, slot 1 the fallback held still;
            // the rest are perturbations.
            c.set_seq(0, &self.mean);
            c.set_fallback_seq(1);
            for i in 2..n {
                c.sample_into(i, &self.mean, &sigma);
            }
            c.evaluate(n)?;
            iterations += 1;
            feasible = c.feasible_count(n);
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
            for i in (0..n).filter(|&i| eligible(i)) {
                if score[i].is_finite() {
                    smin = smin.min(score[i]);
                    ssum += score[i];
                    count += 1.0;
                }
            }
            if count == 0.0 {
                continue;
            }
            let spread = (ssum / count - smin).max(1e-12);
            let lambda = c.config.temperature * spread;
            let mut wsum = 0.0;
            for i in 0..n {
                let w = if eligible(i) && score[i].is_finite() {
                    (-(score[i] - smin) / lambda).exp()
                } else {
                    0.0
                };
                self.weights[i] = w;
                wsum += w;
            }
            if wsum <= 0.0 {
                continue;
            }
            self.mean.fill(0.0);
            for i in 0..n {
                let w = self.weights[i] / wsum;
                if w == 0.0 {
                    continue;
                }
                for (m, x) in self.mean.iter_mut().zip(&c.seqs[i * len..(i + 1) * len]) {
                    *m += w * x;
                }
            }
        }
        // The weighted mean itself has not been rolled out since the last
        // update: compare it with the best sample on its own.
        c.set_seq(0, &self.mean);
        c.evaluate(1)?;
        let chosen = c.best.clone();
        c.finish(&chosen, iterations, feasible, timed_out, false)?;
        Ok(&c.plan)
    }

    fn reset(&mut self) {
        self.core.reset();
    }
    fn objective_mut(&mut self) -> &mut Objective {
        &mut self.core.objective
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
