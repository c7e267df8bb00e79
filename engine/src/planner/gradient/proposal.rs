//! The MPPI proposal that gradient refinement starts from.
//!
//! The same iteration as [`super::super::Mppi`] (Williams et al., JGCS 2017),
//! run on the shared [`Core`] but stopping *before* [`Core::finish`], so the
//! refinement still sees the last applied action `u_{−1}` and the encoded
//! latent of this call. Given the same configuration and seed it proposes
//! exactly the sequence `Mppi` would return (a test checks this).

use crate::Real;
use crate::error::PlanError;
use crate::model::WorldModel;
use crate::planner::core::Core;

/// Outcome of the proposal phase.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Proposed {
    /// Sampling iterations run.
    pub iterations: usize,
    /// Feasible samples in the last iteration.
    pub feasible: usize,
    /// The time budget ended during sampling.
    pub timed_out: bool,
}

/// MPPI buffers, allocated once.
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

    /// Runs the MPPI iterations after [`Core::begin`]; the proposal is left in
    /// `core.best` with its score in `core.best_violation` / `core.best_cost`.
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
            for i in 2..n {
                c.sample_into(i, &self.mean, &self.sigma);
            }
            c.evaluate(n)?;
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
