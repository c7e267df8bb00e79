//! Cross-entropy method with the iCEM improvements.
//!
//! Pinneri et al., "Sample-efficient Cross-Entropy Method for Real-time
//! Planning", CoRL 2020: colored (1/f^β) noise across time, a fraction of the
//! previous iteration's elites carried over, the mean kept as a candidate, and
//! momentum on the mean and deviation. Elites are chosen feasible-first.

use super::core::{Core, rank};
use super::{Plan, Planner, PlannerConfig};
use crate::Real;
use crate::error::PlanError;
use crate::model::WorldModel;
use crate::objective::Objective;

/// iCEM planner.
#[derive(Debug)]
pub struct Cem<M> {
    core: Core<M>,
    mean: Vec<Real>,
    std: Vec<Real>,
    order: Vec<usize>,
    elites: Vec<Real>,
    kept: usize,
}

impl<M: WorldModel> Cem<M> {
    /// A planner for `model` and `objective`; checks `config`.
    pub fn new(model: M, objective: Objective, config: PlannerConfig) -> Result<Self, PlanError> {
        let core = Core::new(model, objective, config)?;
        let (n, len) = (core.config.samples, core.h * core.a);
        let k = core.config.elites;
        Ok(Self {
            core,
            mean: vec![0.0; len],
            std: vec![0.0; len],
            order: (0..n).collect(),
            elites: vec![0.0; k * len],
            kept: 0,
        })
    }

    /// The world model.
    pub fn model(&self) -> &M {
        &self.core.model
    }
}

impl<M: WorldModel> Planner for Cem<M> {
    fn plan(&mut self, obs: &[Real]) -> Result<&Plan, PlanError> {
        let c = &mut self.core;
        c.begin(obs)?;
        let (n, h, a) = (c.config.samples, c.h, c.a);
        let len = h * a;
        let k = c.config.elites;
        let alpha = c.config.momentum;
        self.mean.copy_from_slice(&c.nominal);
        for row in self.std.chunks_mut(a) {
            row.copy_from_slice(&c.sigma);
        }
        // Elites of the previous call, shifted by one step like the nominal
        // (one-step elites are kept as they are).
        let shifted = self.kept.min(k);
        for e in (0..shifted).take_while(|_| len > a) {
            let s = &mut self.elites[e * len..(e + 1) * len];
            s.copy_within(a.., 0);
            let last = len - a;
            let (head, tail) = s.split_at_mut(last);
            tail.copy_from_slice(&head[last - a..]);
        }
        let mut carried = shifted;
        let mut iterations = 0;
        let mut feasible = 0;
        let mut timed_out = false;
        for it in 0..c.config.iterations {
            if it > 0 && c.out_of_time() {
                timed_out = true;
                break;
            }
            let reuse = ((c.config.elite_reuse * k as Real).round() as usize).min(carried);
            c.set_seq(0, &self.mean);
            c.set_fallback_seq(1);
            let mut slot = 2;
            for e in 0..reuse {
                if slot < n {
                    c.set_seq(slot, &self.elites[e * len..(e + 1) * len]);
                    slot += 1;
                }
            }
            c.sample_and_evaluate(slot.min(n), n, &self.mean, &self.std)?;
            c.keep_rollouts(n);
            iterations += 1;
            feasible = c.feasible_count(n);
            let roll = &c.roll;
            self.order.clear();
            self.order.extend(0..n);
            self.order.sort_by(|&i, &j| {
                rank(
                    roll.violation[i],
                    roll.cost[i],
                    roll.violation[j],
                    roll.cost[j],
                )
            });
            for (e, &i) in self.order.iter().take(k).enumerate() {
                self.elites[e * len..(e + 1) * len]
                    .copy_from_slice(&c.seqs[i * len..(i + 1) * len]);
            }
            carried = k;
            for j in 0..len {
                let (mut m, mut s2) = (0.0, 0.0);
                for e in 0..k {
                    m += self.elites[e * len + j];
                }
                m /= k as Real;
                for e in 0..k {
                    s2 += (self.elites[e * len + j] - m).powi(2);
                }
                let s = (s2 / k as Real).sqrt();
                self.mean[j] = alpha * self.mean[j] + (1.0 - alpha) * m;
                self.std[j] = alpha * self.std[j] + (1.0 - alpha) * s;
            }
        }
        self.kept = carried;
        c.set_seq(0, &self.mean);
        c.evaluate(1)?;
        c.finish_with_best(iterations, feasible, timed_out, false)?;
        Ok(&c.plan)
    }

    fn set_goal_observation(&mut self, term: &str, obs: &[Real]) -> Result<(), PlanError> {
        self.core.set_goal_observation(term, obs)
    }
    fn reset(&mut self) {
        self.core.reset();
        self.kept = 0;
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
        self.kept = 0;
    }
}
