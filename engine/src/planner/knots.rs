//! Action parameterisations: sampling noise drawn on `K` knots and spread
//! over the `H` steps of the horizon (zero-order hold, linear or cubic), as
//! MuJoCo MPC's splines (Howell et al., "Predictive Sampling: Real-time
//! Behaviour Synthesis with MuJoCo", 2022).
//!
//! Every interpolation here is linear in the knot values, so it is one `H×K`
//! matrix `W`, computed once: a perturbation of the knots `ε ∈ ℝ^K` becomes
//! `W·ε ∈ ℝ^H`. Sampling costs `K` draws per action instead of `H`.

use super::Interpolation;
use crate::Real;
use crate::rng::{ColoredNoise, Rng};

/// The knot layout and its interpolation matrix, with the buffers of one
/// draw. Allocated once.
#[derive(Clone, Debug)]
pub(crate) struct Knots {
    h: usize,
    k: usize,
    /// `W`, `H×K` row-major.
    weights: Vec<Real>,
    /// `W = I` (`K = H`): noise is drawn on the steps directly.
    identity: bool,
    colored: ColoredNoise,
    values: Vec<Real>,
}

impl Knots {
    /// `k` knots (clamped into `1..=h`) over a horizon of `h ≥ 1` steps,
    /// noise colored with exponent `beta` across the knots.
    pub fn new(h: usize, k: usize, interpolation: Interpolation, beta: Real) -> Self {
        let k = k.clamp(1, h.max(1));
        let steps = knot_steps(h, k, interpolation);
        let mut weights = vec![0.0; h * k];
        let mut unit = vec![0.0; k];
        for c in 0..k {
            unit.fill(0.0);
            unit[c] = 1.0;
            for t in 0..h {
                weights[t * k + c] = value_at(interpolation, &steps, &unit, t);
            }
        }
        let identity = k == h
            && weights.chunks_exact(k).enumerate().all(|(t, row)| {
                row.iter()
                    .enumerate()
                    .all(|(c, w)| *w == Real::from(t == c))
            });
        Self {
            h,
            k,
            weights,
            identity,
            colored: ColoredNoise::new(k, beta),
            values: vec![0.0; k],
        }
    }

    /// Random draws per action sequence: the search dimension per action.
    #[cfg(test)]
    pub fn dim(&self) -> usize {
        self.k
    }

    /// `W`, `H×K` row-major.
    #[cfg(test)]
    pub fn weights(&self) -> &[Real] {
        &self.weights
    }

    /// Fills `out` (`H` values) with one interpolated noise sequence: `K`
    /// colored normal draws on the knots, times `W`. With `K = H` and `W = I`
    /// the draws go to the steps directly, exactly as without knots.
    pub fn sample(&mut self, rng: &mut Rng, out: &mut [Real]) {
        if self.identity {
            self.colored.sample(rng, out);
            return;
        }
        self.colored.sample(rng, &mut self.values);
        for (o, row) in out.iter_mut().zip(self.weights.chunks_exact(self.k)) {
            *o = row.iter().zip(&self.values).map(|(w, v)| w * v).sum();
        }
        debug_assert_eq!(out.len(), self.h);
    }
}

/// The step each of `k ≤ h` knots sits at (zero-order hold: the first step of
/// its block).
pub(crate) fn knot_steps(h: usize, k: usize, interpolation: Interpolation) -> Vec<usize> {
    match interpolation {
        // Blocks of ⌈H/K⌉ or ⌊H/K⌋ steps, longer first: block j starts at ⌈jH/K⌉.
        Interpolation::Zero => (0..k).map(|j| (j * h).div_ceil(k)).collect(),
        // s_j = round(j(H−1)/(K−1)); a spacing ≥ 1 keeps them distinct.
        Interpolation::Linear | Interpolation::Cubic if k > 1 => (0..k)
            .map(|j| (2 * j * (h - 1) + (k - 1)) / (2 * (k - 1)))
            .collect(),
        Interpolation::Linear | Interpolation::Cubic => vec![0],
    }
}

/// The interpolant of knot `values` (at `steps`) at step `t`.
fn value_at(interpolation: Interpolation, steps: &[usize], values: &[Real], t: usize) -> Real {
    // The knot at or before t (the first knot sits at step 0).
    let j = steps.partition_point(|&s| s <= t).saturating_sub(1);
    let (Some(&s0), Some(&v0)) = (steps.get(j), values.get(j)) else {
        return 0.0;
    };
    let (Some(&s1), Some(&v1)) = (steps.get(j + 1), values.get(j + 1)) else {
        // Past the last knot (zero-order hold's last block) or a single knot.
        return v0;
    };
    let dt = (s1 - s0) as Real;
    let tau = (t - s0) as Real / dt;
    match interpolation {
        Interpolation::Zero => v0,
        Interpolation::Linear => (1.0 - tau) * v0 + tau * v1,
        Interpolation::Cubic => {
            let (m0, m1) = (slope(steps, values, j), slope(steps, values, j + 1));
            let (t2, t3) = (tau * tau, tau * tau * tau);
            let h00 = 2.0 * t3 - 3.0 * t2 + 1.0;
            let h10 = t3 - 2.0 * t2 + tau;
            let h01 = -2.0 * t3 + 3.0 * t2;
            let h11 = t3 - t2;
            h00 * v0 + h10 * dt * m0 + h01 * v1 + h11 * dt * m1
        }
    }
}

/// Slope per step at knot `j`: the mean of the two adjacent secants,
/// one-sided at the ends (MuJoCo MPC's finite-difference slopes).
fn slope(steps: &[usize], values: &[Real], j: usize) -> Real {
    let secant =
        |a: usize, b: usize| match (steps.get(a), steps.get(b), values.get(a), values.get(b)) {
            (Some(&sa), Some(&sb), Some(&va), Some(&vb)) if sb > sa => {
                Some((vb - va) / (sb - sa) as Real)
            }
            _ => None,
        };
    let before = j.checked_sub(1).and_then(|i| secant(i, j));
    match (before, secant(j, j + 1)) {
        (Some(a), Some(b)) => 0.5 * (a + b),
        (Some(s), None) | (None, Some(s)) => s,
        (None, None) => 0.0,
    }
}
