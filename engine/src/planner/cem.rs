//! Cross-entropy method with the iCEM improvements.
//!
//! Pinneri et al., "Sample-efficient Cross-Entropy Method for Real-time
//! Planning", CoRL 2020: colored (1/f^β) noise across time, a fraction of the
//! previous iteration's elites carried over, the mean kept as a candidate, and
//! momentum on the mean and deviation. Elites are chosen feasible-first.

use super::core::rank;
use super::driver::{Driver, Planned};
use super::state::shift_one_step;
use super::step::{SamplingStep, Scored, Slots, Solver};
use crate::Real;
use crate::error::PlanError;
use crate::model::WorldModel;

/// iCEM planner: a [`Planned`] planner (see there for `new` and its
/// [`Planner`](super::Planner) methods) with the iCEM update step.
pub type Cem<M> = Planned<M, CemStep>;

/// The iCEM update step: elites chosen feasible-first, the mean and
/// deviation moved towards theirs with momentum, and a fraction of the
/// elites carried into the next iteration and the next call.
#[derive(Debug)]
pub struct CemStep {
    /// `K`, elites per iteration.
    k: usize,
    /// Fraction of the previous elites sampled again.
    elite_reuse: Real,
    /// Momentum on the mean and deviation.
    alpha: Real,
    mean: Vec<Real>,
    std: Vec<Real>,
    order: Vec<usize>,
    elites: Vec<Real>,
    /// Elites kept from the previous call.
    kept: usize,
    /// Elites that the next iteration may sample again.
    carried: usize,
}

impl Solver for CemStep {
    fn new<M: WorldModel>(core: &Driver<M>) -> Self {
        let config = core.config();
        let (n, len) = (config.samples, core.sequence_len());
        let k = config.elites;
        Self {
            k,
            elite_reuse: config.elite_reuse,
            alpha: config.momentum,
            mean: vec![0.0; len],
            std: vec![0.0; len],
            order: (0..n).collect(),
            elites: vec![0.0; k * len],
            kept: 0,
            carried: 0,
        }
    }

    fn solve<M: WorldModel>(&mut self, core: &mut Driver<M>) -> Result<(), PlanError> {
        core.sample_and_finish(self)
    }

    fn reset(&mut self) {
        self.kept = 0;
    }
}

impl SamplingStep for CemStep {
    fn start(&mut self, nominal: &[Real], sigma: &[Real]) {
        let (len, k) = (self.mean.len(), self.k);
        let a = sigma.len();
        self.mean.copy_from_slice(nominal);
        for row in self.std.chunks_mut(a) {
            row.copy_from_slice(sigma);
        }
        // Elites of the previous call, shifted by one step like the nominal.
        let shifted = self.kept.min(k);
        for e in 0..shifted {
            shift_one_step(&mut self.elites[e * len..(e + 1) * len], a);
        }
        self.carried = shifted;
    }

    fn fill(&mut self, slots: &mut Slots<'_>) {
        let len = self.mean.len();
        let reuse = ((self.elite_reuse * self.k as Real).round() as usize).min(self.carried);
        for e in 0..reuse {
            slots.push(&self.elites[e * len..(e + 1) * len]);
        }
    }

    fn mean(&self) -> &[Real] {
        &self.mean
    }

    fn std(&self) -> &[Real] {
        &self.std
    }

    fn update(&mut self, scored: &Scored<'_>) {
        let (cost, violation, seqs) = (scored.cost(), scored.violation(), scored.seqs());
        let (n, len, k, alpha) = (cost.len(), self.mean.len(), self.k, self.alpha);
        self.order.clear();
        self.order.extend(0..n);
        self.order
            .sort_by(|&i, &j| rank(violation[i], cost[i], violation[j], cost[j]));
        for (e, &i) in self.order.iter().take(k).enumerate() {
            self.elites[e * len..(e + 1) * len].copy_from_slice(&seqs[i * len..(i + 1) * len]);
        }
        self.carried = k;
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

    fn end(&mut self) {
        self.kept = self.carried;
    }
}
