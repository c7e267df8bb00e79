//! The rollout rule, written once: an action sequence is rolled out through
//! the world model from the current latent, each step scored by the
//! objective (task cost, guardrail violation). The batched kernel
//! ([`roll_out`]) scores many sampled sequences at once; [`Tracer`] rolls out
//! one sequence and records its trajectory. The planner core, the rollout
//! pool and the gradient planner's adjoint all use this module.

mod sample;
mod sequence;

pub(crate) use sample::{ActionSampler, Draw};
pub(crate) use sequence::{Record, Tracer, sequence};

use super::Plan;
use crate::Real;
use crate::error::ModelError;
use crate::math;
use crate::model::WorldModel;
use crate::objective::{Margins, Objective, ObjectiveScratch, Stage};
use std::cmp::Ordering;
use std::sync::Arc;

/// Horizon `H`, action, latent and readout sizes of a rollout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Dims {
    /// Horizon `H`.
    h: usize,
    /// Actions `A`.
    a: usize,
    /// Latent size `D`.
    d: usize,
    /// Readouts `P`.
    p: usize,
}

impl Dims {
    /// Horizon `h`, `a` actions, latent size `d`, `p` readouts.
    pub fn new(h: usize, a: usize, d: usize, p: usize) -> Self {
        Self { h, a, d, p }
    }

    /// `(H, A, D, P)`.
    pub fn sizes(&self) -> (usize, usize, usize, usize) {
        (self.h, self.a, self.d, self.p)
    }

    /// Horizon `H`.
    pub fn horizon(&self) -> usize {
        self.h
    }

    /// Values of one action sequence, `H×A`.
    pub fn sequence_len(&self) -> usize {
        self.h * self.a
    }
}

/// Where every rollout of a planning call starts: the latent `z0` of the
/// observation and the action `u_last` applied before the sequence.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Start<'a> {
    z0: &'a [Real],
    u_last: &'a [Real],
}

impl<'a> Start<'a> {
    pub fn new(z0: &'a [Real], u_last: &'a [Real]) -> Self {
        Self { z0, u_last }
    }

    /// The latent of the observation (`D`).
    pub fn z0(&self) -> &'a [Real] {
        self.z0
    }

    /// The action applied before the sequence (`A`).
    pub fn u_last(&self) -> &'a [Real] {
        self.u_last
    }
}

/// Rollout buffers for `N` sequences, allocated once.
#[derive(Debug)]
pub(crate) struct Rollouts {
    dims: Dims,
    z: Vec<Real>,
    z_next: Vec<Real>,
    /// Readouts of `z` and of `z_next`.
    y: Vec<Real>,
    y_next: Vec<Real>,
    u_t: Vec<Real>,
    u_prev_t: Vec<Real>,
    /// Guardrail margins of a step, per row.
    margins: Margins,
    /// One step's task cost per sequence.
    step: Vec<Real>,
    /// The objective's workspace.
    scratch: ObjectiveScratch,
    /// Task cost per sequence.
    cost: Vec<Real>,
    /// Summed guardrail violation per sequence (0 when feasible).
    violation: Vec<Real>,
    /// Predicted readouts of every sequence (`N×H×P`), kept only when the
    /// planner keeps rollouts for inspection (empty otherwise).
    ys: Vec<Real>,
    /// Sequence indices, for ranking the kept rollouts without allocating.
    order: Vec<usize>,
}

impl Rollouts {
    /// Buffers for `n` sequences of size `dims`, scored by `objective`;
    /// `keep`: also keep their readouts.
    pub fn new(n: usize, dims: Dims, objective: &Objective, keep: bool) -> Self {
        let Dims { h, a, d, p } = dims;
        let g = objective.num_guardrails();
        Self {
            dims,
            z: vec![0.0; n * d],
            z_next: vec![0.0; n * d],
            y: vec![0.0; n * p],
            y_next: vec![0.0; n * p],
            u_t: vec![0.0; n * a],
            u_prev_t: vec![0.0; n * a],
            margins: if g > 0 {
                Margins::new(n)
            } else {
                Margins::default()
            },
            step: vec![0.0; n],
            scratch: objective.scratch(),
            cost: vec![0.0; n],
            violation: vec![0.0; n],
            ys: if keep {
                vec![0.0; n * h * p]
            } else {
                Vec::new()
            },
            order: if keep { (0..n).collect() } else { Vec::new() },
        }
    }

    /// Task cost of every sequence's last evaluation (`N`).
    pub fn costs(&self) -> &[Real] {
        &self.cost
    }

    /// Summed guardrail violation of every sequence's last evaluation (`N`;
    /// 0 when feasible).
    pub fn violations(&self) -> &[Real] {
        &self.violation
    }

    /// Number of feasible sequences among the first `n` evaluated.
    pub fn feasible(&self, n: usize) -> usize {
        self.violation[..n].iter().filter(|v| **v <= 0.0).count()
    }

    /// Puts the readouts, costs and violations of the best `k` of the first
    /// `n` evaluated sequences ([`rank`]) into `plan`'s kept rollouts; does
    /// nothing when `k` is 0 or readouts are not kept.
    pub fn keep_best(&mut self, k: usize, n: usize, plan: &mut Plan) {
        if k == 0 || self.ys.is_empty() {
            return;
        }
        let (cost, violation) = (&self.cost, &self.violation);
        let order = &mut self.order[..n];
        for (i, o) in order.iter_mut().enumerate() {
            *o = i;
        }
        order.sort_unstable_by(|&i, &j| rank(violation[i], cost[i], violation[j], cost[j]));
        let len = self.dims.h * self.dims.p;
        plan.rollouts.clear();
        plan.rollout_costs.clear();
        plan.rollout_violations.clear();
        for &i in &order[..k] {
            plan.rollouts
                .extend_from_slice(&self.ys[i * len..(i + 1) * len]);
            plan.rollout_costs.push(cost[i]);
            plan.rollout_violations.push(violation[i]);
        }
    }

    /// Copies the scores (and kept readouts) of sequences `lo..hi` from
    /// `share`, which rolled them out as its first `hi − lo`.
    pub fn take_share(&mut self, lo: usize, hi: usize, share: &Rollouts) {
        let (h, p) = (self.dims.h, self.dims.p);
        let m = hi - lo;
        self.cost[lo..hi].copy_from_slice(&share.cost[..m]);
        self.violation[lo..hi].copy_from_slice(&share.violation[..m]);
        if !self.ys.is_empty() {
            self.ys[lo * h * p..hi * h * p].copy_from_slice(&share.ys[..m * h * p]);
        }
    }
}

/// Feasible before infeasible; then by violation, then by cost.
pub(crate) fn rank(violation_a: Real, cost_a: Real, violation_b: Real, cost_b: Real) -> Ordering {
    let fa = violation_a <= 0.0;
    let fb = violation_b <= 0.0;
    match (fa, fb) {
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        (true, true) => cost_a.total_cmp(&cost_b),
        (false, false) => violation_a
            .total_cmp(&violation_b)
            .then(cost_a.total_cmp(&cost_b)),
    }
}

/// The samples an evaluation draws, and the sampler that draws them.
pub(crate) type Drawing<'a> = (Draw<'a>, &'a mut ActionSampler);

/// The first `n` candidate sequences of an evaluation, and the samples to
/// draw into them first (when `draw` says so, with the sampler given).
#[derive(Debug)]
pub(crate) struct Batch<'a> {
    seqs: &'a mut Arc<Vec<Real>>,
    n: usize,
    draw: Option<Drawing<'a>>,
}

impl<'a> Batch<'a> {
    pub fn new(seqs: &'a mut Arc<Vec<Real>>, n: usize, draw: Option<Drawing<'a>>) -> Self {
        Self { seqs, n, draw }
    }

    /// The shared sequences, their number, and the draw.
    pub fn into_parts(self) -> (&'a mut Arc<Vec<Real>>, usize, Option<Drawing<'a>>) {
        (self.seqs, self.n, self.draw)
    }

    /// Draws (when asked) and rolls out the batch on this thread into `r`.
    pub fn roll_out<M: WorldModel + ?Sized>(
        self,
        model: &mut M,
        objective: &Objective,
        start: Start<'_>,
        r: &mut Rollouts,
    ) -> Result<(), ModelError> {
        let len = r.dims.h * r.dims.a;
        let (seqs, n, draw) = self.into_parts();
        if let Some((d, sampler)) = draw {
            sampler.draw(&d, d.from()..n, seqs);
        }
        roll_out(model, objective, &seqs[..n * len], start, r)
    }
}

/// Rolls out the sequences `seqs` (`n×H×A`) from `start`: the task cost and
/// summed guardrail violation of each go to `r.cost[..n]` and
/// `r.violation[..n]`, its readouts to `r.ys` when rollouts are kept. One
/// batched [`WorldModel::step`] per step, the objective term by term over
/// the batch.
pub(crate) fn roll_out<M: WorldModel + ?Sized>(
    model: &mut M,
    objective: &Objective,
    seqs: &[Real],
    start: Start<'_>,
    r: &mut Rollouts,
) -> Result<(), ModelError> {
    let dims = r.dims;
    let Dims { h, a, d, p } = dims;
    let n = seqs.len() / (h * a).max(1);
    for z in r.z[..n * d].chunks_exact_mut(d) {
        for (z, z0) in z.iter_mut().zip(start.z0) {
            *z = *z0;
        }
    }
    for u in r.u_prev_t[..n * a].chunks_exact_mut(a) {
        for (u, u0) in u.iter_mut().zip(start.u_last) {
            *u = *u0;
        }
    }
    model.readout(&r.z[..n * d], &mut r.y[..n * p])?;
    r.cost[..n].fill(0.0);
    r.violation[..n].fill(0.0);
    let guarded = objective.num_guardrails() > 0;
    for t in 0..h {
        gather_step(seqs, t, dims, &mut r.u_t[..n * a]);
        model.step(
            &r.z[..n * d],
            &r.y[..n * p],
            &r.u_t[..n * a],
            &mut r.z_next[..n * d],
            &mut r.y_next[..n * p],
        )?;
        objective.stage_costs(
            Stage {
                y: &r.y_next[..n * p],
                z: &r.z_next[..n * d],
                u: &r.u_t[..n * a],
                u_prev: &r.u_prev_t[..n * a],
                terminal: t + 1 == h,
            },
            &mut r.scratch,
            &mut r.step[..n],
        );
        for (c, s) in r.cost[..n].iter_mut().zip(&r.step[..n]) {
            *c += s;
        }
        let y_next = &r.y_next[..n * p];
        let finite = math::all_finite(y_next);
        if guarded {
            objective.add_violations(y_next, t, finite, &mut r.margins, &mut r.violation[..n]);
        } else if !finite {
            for (y, v) in y_next.chunks_exact(p).zip(&mut r.violation[..n]) {
                if !y.iter().all(|x| x.is_finite()) {
                    *v += Real::INFINITY;
                }
            }
        }
        if !r.ys.is_empty() {
            for i in 0..n {
                let at = (i * h + t) * p;
                r.ys[at..at + p].copy_from_slice(&r.y_next[i * p..(i + 1) * p]);
            }
        }
        std::mem::swap(&mut r.z, &mut r.z_next);
        std::mem::swap(&mut r.y, &mut r.y_next);
        std::mem::swap(&mut r.u_prev_t, &mut r.u_t);
    }
    Ok(())
}

/// Step `t`'s actions of every sequence (`n×H×A`) into `u_t` (`n×A`).
fn gather_step(seqs: &[Real], t: usize, dims: Dims, u_t: &mut [Real]) {
    let Dims { h, a, .. } = dims;
    match a {
        1 => {
            for (u, x) in u_t.iter_mut().zip(seqs[t..].iter().step_by(h)) {
                *u = *x;
            }
        }
        2 => gather_rows::<2>(seqs, t, h, u_t),
        3 => gather_rows::<3>(seqs, t, h, u_t),
        _ => {
            for (u, seq) in u_t.chunks_exact_mut(a).zip(seqs.chunks_exact(h * a)) {
                for (u, x) in u.iter_mut().zip(&seq[t * a..(t + 1) * a]) {
                    *u = *x;
                }
            }
        }
    }
}

/// [`gather_step`] for `A` actions, a width known to the compiler (plain
/// loads and stores, not a call to copy each row).
fn gather_rows<const A: usize>(seqs: &[Real], t: usize, h: usize, u_t: &mut [Real]) {
    let rows = u_t.as_chunks_mut::<A>().0;
    for (u, seq) in rows.iter_mut().zip(seqs.chunks_exact(h * A)) {
        for (k, u) in u.iter_mut().enumerate() {
            *u = seq[t * A + k];
        }
    }
}
