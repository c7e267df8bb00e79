//! Sampling candidate action sequences around a mean.

use super::Dims;
use crate::Real;
use crate::math::{self, Wide, wide};
use crate::planner::knots::Knots;
use crate::rng::Rng;
use std::ops::Range;
use std::sync::Arc;

/// Draws candidate sequences around a mean. Sample `i` of an iteration takes
/// its noise from its own random stream ([`Rng::stream`] of the iteration's
/// seed and `i`), so that any thread can draw any sample and the plan does
/// not depend on which one did. Each rollout worker has a copy.
#[derive(Clone, Debug)]
pub(crate) struct ActionSampler {
    h: usize,
    a: usize,
    lower: Vec<Real>,
    upper: Vec<Real>,
    /// Where the noise is drawn and how it is spread over the steps.
    knots: Knots,
    noise_t: Vec<Real>,
}

impl ActionSampler {
    /// A sampler of `H×A` sequences within the action bounds `lower` and
    /// `upper`, its noise drawn at `knots`.
    pub fn new(dims: Dims, lower: &[Real], upper: &[Real], knots: Knots) -> Self {
        let (h, a, _, _) = dims.sizes();
        Self {
            h,
            a,
            lower: lower.to_vec(),
            upper: upper.to_vec(),
            knots,
            noise_t: vec![0.0; h],
        }
    }

    /// Fills `seqs` (`m×H×A`: samples `first..first + m`) with
    /// `mean + std ⊙ W·ε` (`ε` colored noise across the knots, `W` their
    /// interpolation to the steps; `W = I` without knots), clamped into the
    /// action bounds. `std` is per `(t, a)` when it has `H×A` values and per
    /// action when it has `A`.
    pub fn fill(
        &mut self,
        seed: u64,
        first: usize,
        seqs: &mut [Real],
        mean: &[Real],
        std: &[Real],
    ) {
        let (h, a) = (self.h, self.a);
        for (i, seq) in (first..).zip(seqs.chunks_exact_mut(h * a)) {
            let mut rng = Rng::stream(seed, i);
            for k in 0..a {
                self.knots.sample(&mut rng, &mut self.noise_t);
                let (lo, hi) = (self.lower[k], self.upper[k]);
                let noise = &self.noise_t;
                if a == 1 {
                    // One action: contiguous slices, a loop in vectors.
                    wide(Perturb {
                        seq,
                        mean,
                        noise,
                        std,
                        bounds: (lo, hi),
                    });
                } else {
                    for (t, e) in noise.iter().enumerate() {
                        let s = if std.len() == a {
                            std[k]
                        } else {
                            std[t * a + k]
                        };
                        seq[t * a + k] = math::clip(mean[t * a + k] + s * e, lo, hi);
                    }
                }
            }
        }
    }

    /// [`ActionSampler::fill`] of slots `slots` of the shared sequences, as
    /// `draw` says. Nobody else may hold `seqs` (then it is not copied).
    pub fn draw(&mut self, draw: &Draw<'_>, slots: Range<usize>, seqs: &mut Arc<Vec<Real>>) {
        let len = self.h * self.a;
        let seqs = &mut Arc::make_mut(seqs)[slots.start * len..slots.end * len];
        self.fill(draw.seed, slots.start, seqs, draw.mean, draw.std);
    }
}

/// `seq = clip(mean + std ⊙ noise)` for one action: `std` has one value,
/// or one per step.
struct Perturb<'a> {
    seq: &'a mut [Real],
    mean: &'a [Real],
    noise: &'a [Real],
    std: &'a [Real],
    bounds: (Real, Real),
}

impl Wide for Perturb<'_> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let (lo, hi) = self.bounds;
        let rows = self.seq.iter_mut().zip(self.mean).zip(self.noise);
        if let [s] = self.std {
            for ((x, m), e) in rows {
                *x = math::clip(m + s * e, lo, hi);
            }
        } else {
            for (((x, m), e), s) in rows.zip(self.std) {
                *x = math::clip(m + s * e, lo, hi);
            }
        }
    }
}

/// The samples an evaluation draws before rolling out: slots `from..n`,
/// from the streams of `seed` (see [`ActionSampler`]).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Draw<'a> {
    seed: u64,
    from: usize,
    mean: &'a [Real],
    std: &'a [Real],
}

impl<'a> Draw<'a> {
    /// Slots from `from` drawn around `mean` with spread `std` (one value per
    /// action, or per step and action), from the streams of `seed`.
    pub fn new(seed: u64, from: usize, mean: &'a [Real], std: &'a [Real]) -> Self {
        Self {
            seed,
            from,
            mean,
            std,
        }
    }

    /// The first slot drawn.
    pub fn from(&self) -> usize {
        self.from
    }

    /// Copies the mean and spread into a rollout worker's own `mean` and
    /// `std`, and returns the seed from which it then draws the same samples.
    pub fn hand_over(&self, mean: &mut Vec<Real>, std: &mut Vec<Real>) -> u64 {
        mean.clear();
        mean.extend_from_slice(self.mean);
        std.clear();
        std.extend_from_slice(self.std);
        self.seed
    }
}
