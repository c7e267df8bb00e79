//! Model-predictive path integral control.
//!
//! Williams, Aldrich, Theodorou, "Model Predictive Path Integral Control:
//! From Theory to Fast Computation", JGCS 2017. Each iteration samples `N`
//! perturbations of the nominal sequence (colored noise), rolls them out, and
//! moves the nominal to the weighted mean `Σ wᵢUᵢ / Σ wᵢ` with
//! `wᵢ = exp(−(Jᵢ − J_min)/(λ·(J̄ − J_min)))` over the *feasible* samples only,
//! so guardrails are never traded against cost.

use super::driver::{Driver, Planned};
use super::step::{SamplingStep, Scored, Solver};
use crate::Real;
use crate::error::PlanError;
use crate::model::WorldModel;

/// MPPI planner: a [`Planned`] planner (see there for `new` and its
/// [`Planner`](super::Planner) methods) with the MPPI update step.
pub type Mppi<M> = Planned<M, MppiStep>;

/// The MPPI update step, shared by [`Mppi`] and the gradient planner's
/// proposal: weights over the scored samples and the weighted mean. Buffers
/// are allocated once.
#[derive(Debug)]
pub struct MppiStep {
    /// `λ` relative to the spread of the scores.
    temperature: Real,
    weights: Vec<Real>,
    mean: Vec<Real>,
    sigma: Vec<Real>,
}

impl Solver for MppiStep {
    fn new<M: WorldModel>(core: &Driver<M>) -> Self {
        Self {
            temperature: core.config().temperature,
            weights: vec![0.0; core.config().samples],
            mean: vec![0.0; core.sequence_len()],
            sigma: core.sigma().to_vec(),
        }
    }

    fn solve<M: WorldModel>(&mut self, core: &mut Driver<M>) -> Result<(), PlanError> {
        core.sample_and_finish(self)
    }
}

impl SamplingStep for MppiStep {
    fn start(&mut self, nominal: &[Real], _sigma: &[Real]) {
        self.mean.copy_from_slice(nominal);
    }

    fn mean(&self) -> &[Real] {
        &self.mean
    }

    fn std(&self) -> &[Real] {
        &self.sigma
    }

    fn update(&mut self, scored: &Scored<'_>) {
        let (cost, violation) = (scored.cost(), scored.violation());
        let n = cost.len();
        let len = self.mean.len();
        let feasible = scored.feasible();
        // Weights over feasible samples; when none is feasible, over the
        // least-violating ones so the mean moves towards feasibility.
        let (score, pool): (&[Real], Real) = if feasible > 0 {
            (cost, 0.0)
        } else {
            let vmin = violation.iter().copied().fold(Real::INFINITY, Real::min);
            (violation, vmin)
        };
        let eligible = |i: usize| {
            if feasible > 0 {
                violation[i] <= 0.0
            } else {
                violation[i].is_finite() && violation[i] >= pool
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
            return;
        }
        let spread = (ssum / count - smin).max(1e-12);
        let lambda = self.temperature * spread;
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
            return;
        }
        self.mean.fill(0.0);
        for (w, seq) in self.weights[..n]
            .iter()
            .zip(scored.seqs().chunks_exact(len))
        {
            let w = w / wsum;
            if w == 0.0 {
                continue;
            }
            for (m, x) in self.mean.iter_mut().zip(seq) {
                *m += w * x;
            }
        }
    }
}
