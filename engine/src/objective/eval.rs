//! Evaluating a compiled objective: stage costs (one step, or a batch of
//! rollouts term by term), their gradients, and guardrail margins and
//! violations. Each rule is written once: a term's cost of some rows
//! (`add_term_costs`, a single step being a batch of one), the margin a
//! guardrail requires at a step (`Guardrail::required_at_step`) and how a
//! margin is reported (`margin`, NaN as `−∞`).

use super::guardrail::Margins;
use super::{Guardrail, Norm, Objective, ObjectiveScratch, Res, Term};
use crate::Real;
use crate::math::{Wide, wide};

/// One step of a rollout, as a stage cost reads it: readouts `y` and latent
/// `z` after applying `u`, which followed `u_prev` (one row each for
/// [`Objective::stage_cost`], `n` rows each for [`Objective::stage_costs`]),
/// and whether the step is the horizon's last (which adds terminal terms).
#[derive(Clone, Copy, Debug)]
pub struct Stage<'a> {
    /// Readouts after the step (`n×P`).
    pub y: &'a [Real],
    /// Latent after the step (`n×D`).
    pub z: &'a [Real],
    /// Action of the step (`n×A`).
    pub u: &'a [Real],
    /// Action before it (`n×A`).
    pub u_prev: &'a [Real],
    /// The horizon's last step.
    pub terminal: bool,
}

/// Where [`Objective::add_stage_gradient`] adds the gradient of a stage
/// cost, with respect to each input of its [`Stage`].
#[derive(Debug)]
pub struct StageGradient<'a> {
    /// With respect to `y`.
    pub gy: &'a mut [Real],
    /// With respect to `z`.
    pub gz: &'a mut [Real],
    /// With respect to `u`.
    pub gu: &'a mut [Real],
    /// With respect to `u_prev`.
    pub gu_prev: &'a mut [Real],
}

impl Objective {
    fn residual(
        &self,
        t: &Term,
        y: &[Real],
        z: &[Real],
        u: &[Real],
        u_prev: &[Real],
        r: &mut [Real],
    ) -> usize {
        match &t.res {
            Res::Readout(idx) => {
                for ((o, i), g) in r.iter_mut().zip(idx).zip(&t.target) {
                    *o = y[*i] - g;
                }
                idx.len()
            }
            Res::Latent => {
                for ((o, x), g) in r.iter_mut().zip(z).zip(&t.target) {
                    *o = x - g;
                }
                z.len().min(t.target.len())
            }
            Res::Action => {
                for ((o, x), g) in r.iter_mut().zip(u).zip(&t.target) {
                    *o = x - g;
                }
                u.len()
            }
            Res::ActionRate => {
                for ((o, x), p) in r.iter_mut().zip(u).zip(u_prev) {
                    *o = x - p;
                }
                u.len()
            }
        }
    }

    /// Cost of one step: readouts `y` and latent `z` after applying `u`, which
    /// followed `u_prev`. `terminal` adds the terminal terms. When
    /// `per_term` is given, each term's weighted cost is added to it.
    /// Returns `+∞` for a non-finite cost. Each term is costed by the rule
    /// of [`Self::stage_costs`], on one row.
    pub fn stage_cost(
        &self,
        step: Stage<'_>,
        scratch: &mut ObjectiveScratch,
        mut per_term: Option<&mut [Real]>,
    ) -> Real {
        let Stage {
            y,
            z,
            u,
            u_prev,
            terminal,
        } = step;
        // The row's own widths: callers may pass readouts or a latent of
        // another width than the objective's (the validator passes no latent).
        let row = Rows {
            y,
            z,
            u,
            u_prev,
            widths: (y.len(), z.len(), u.len()),
        };
        let mut total = 0.0;
        for (k, t) in self.terms.iter().enumerate() {
            let times = t.times(terminal);
            if times == 0.0 {
                continue;
            }
            // `−0 + c` is `c` for every `c`: the cell ends holding exactly
            // the term's weighted cost.
            let mut c = [-0.0];
            add_term_costs(self, t, times * t.weight, &row, scratch, &mut c);
            let [c] = c;
            total += c;
            if let Some(pt) = per_term.as_deref_mut()
                && let Some(slot) = pt.get_mut(k)
            {
                *slot += c;
            }
        }
        if total.is_finite() {
            total
        } else {
            Real::INFINITY
        }
    }

    /// [`Self::stage_cost`] of a batch of `out.len()` samples, term by term:
    /// `y`, `z`, `u` and `u_prev` hold one row per sample, `out` receives
    /// each sample's cost, equal to the bit to what [`Self::stage_cost`]
    /// returns for it (both sum the same terms in the same order, each
    /// costed by the same code). The planners' rollouts call this once per step;
    /// evaluating one term over every sample keeps its loop free of
    /// dispatch, and quadratic readout and action terms, the common ones,
    /// run as plain loops the compiler vectorises.
    pub fn stage_costs(&self, rows: Stage<'_>, scratch: &mut ObjectiveScratch, out: &mut [Real]) {
        let Stage {
            y,
            z,
            u,
            u_prev,
            terminal,
        } = rows;
        wide(StageCosts {
            objective: self,
            y,
            z,
            u,
            u_prev,
            terminal,
            scratch,
            out,
        });
    }

    /// Gradient of [`Self::stage_cost`] with respect to `y`, `z`, `u` and `u_prev`,
    /// *added* to the given buffers.
    pub fn add_stage_gradient(
        &self,
        step: Stage<'_>,
        scratch: &mut ObjectiveScratch,
        grad: StageGradient<'_>,
    ) {
        let Stage {
            y,
            z,
            u,
            u_prev,
            terminal,
        } = step;
        let StageGradient {
            gy,
            gz,
            gu,
            gu_prev,
        } = grad;
        let g = &mut scratch.g;
        for t in &self.terms {
            let times = t.times(terminal);
            if times == 0.0 {
                continue;
            }
            let n = self.residual(t, y, z, u, u_prev, &mut scratch.r);
            g[..n].fill(0.0);
            t.norm
                .add_gradient(&scratch.r[..n], times * t.weight, &mut g[..n]);
            match &t.res {
                Res::Readout(idx) => {
                    for (i, gi) in idx.iter().zip(g.iter()) {
                        gy[*i] += gi;
                    }
                }
                Res::Latent => gz.iter_mut().zip(g.iter()).for_each(|(a, b)| *a += b),
                Res::Action => gu.iter_mut().zip(g.iter()).for_each(|(a, b)| *a += b),
                Res::ActionRate => {
                    gu.iter_mut().zip(g.iter()).for_each(|(a, b)| *a += b);
                    gu_prev.iter_mut().zip(g.iter()).for_each(|(a, b)| *a -= b);
                }
            }
        }
    }

    /// Signed margins of every guardrail at readouts `y` into `out` (positive
    /// is safe). With `buffered`, each guardrail's safety buffer is subtracted
    /// (what planners keep); without, the limit itself (what validators check).
    /// A non-finite margin is reported as `−∞`.
    pub fn margins(&self, y: &[Real], buffered: bool, out: &mut [Real]) {
        for (g, o) in self.guards.iter().zip(out.iter_mut()) {
            let required = if buffered {
                g.buffer.min(g.current)
            } else {
                0.0
            };
            *o = margin(g.guard.limit_margin(y), required);
        }
    }

    /// Margins of every guardrail at predicted step `t` (0-based: after the
    /// first action): the limit margin less the safety buffer plus the
    /// model-error tightening of that step — but never demanding more than
    /// the current state has (see [`Objective::relax_buffers`]), so a robot
    /// already inside that band may act as long as it does not get closer.
    pub fn margins_at_step(&self, y: &[Real], t: usize, out: &mut [Real]) {
        for (g, o) in self.guards.iter().zip(out.iter_mut()) {
            *o = margin(g.guard.limit_margin(y), g.required_at_step(t));
        }
    }

    /// Adds each row's guardrail violation at step `t` to `violation`, for
    /// the rows of `y` (`n×P`, `n = violation.len()`): `+∞` for a row with a
    /// readout that is not finite, plus, over the guardrails, how far each
    /// margin of [`Objective::margins_at_step`] is below zero. The same bits
    /// as summing those margins row by row, computed guardrail by guardrail
    /// over all rows (body distances in vector registers).
    /// `finite` says every value of `y` is finite.
    pub(crate) fn add_violations(
        &self,
        y: &[Real],
        t: usize,
        finite: bool,
        work: &mut Margins,
        violation: &mut [Real],
    ) {
        let n = violation.len();
        let p = self.readout_dim;
        let Margins { cols, m, sum } = work;
        for buffer in [&mut *m, &mut *sum] {
            if buffer.len() < n {
                buffer.resize(n, 0.0);
            }
        }
        let (m, sum) = (&mut m[..n], &mut sum[..n]);
        sum.fill(0.0);
        for g in &self.guards {
            let required = g.required_at_step(t);
            g.guard.limit_margins(y, p, finite, cols, m);
            for (s, m) in sum.iter_mut().zip(m.iter()) {
                *s += (-margin(*m, required)).max(0.0);
            }
        }
        for ((v, s), row) in violation.iter_mut().zip(sum.iter()).zip(y.chunks_exact(p)) {
            let finite = finite || row.iter().all(|x| x.is_finite());
            let add = if finite { 0.0 } else { Real::INFINITY } + s;
            *v += if add.is_nan() { Real::INFINITY } else { add };
        }
    }

    /// Gradient of guardrail `k`'s margin with respect to `y`, by central
    /// differences over the readouts (margins are cheap; readouts are few).
    pub fn margin_gradient(&self, k: usize, y: &[Real], grad: &mut [Real]) {
        let mut scratch = self.scratch();
        self.margin_gradient_with(k, y, &mut scratch, grad);
    }

    /// [`Objective::margin_gradient`] without allocating.
    pub fn margin_gradient_with(
        &self,
        k: usize,
        y: &[Real],
        scratch: &mut ObjectiveScratch,
        grad: &mut [Real],
    ) {
        let Some(g) = self.guards.get(k) else {
            return;
        };
        scratch.y.clear();
        scratch.y.extend_from_slice(y);
        let yy = &mut scratch.y;
        for i in 0..y.len().min(grad.len()) {
            let h = 1e-6 * y[i].abs().max(1.0);
            yy[i] = y[i] + h;
            let p = g.guard.limit_margin(yy);
            yy[i] = y[i] - h;
            let m = g.guard.limit_margin(yy);
            yy[i] = y[i];
            grad[i] = (p - m) / (2.0 * h);
        }
    }
}

impl Guardrail {
    /// The margin this guardrail requires at predicted step `t` (0-based:
    /// after the first action): its safety buffer plus the model-error
    /// tightening of that step (beyond the table, the last step's), but
    /// never more than the current state has.
    fn required_at_step(&self, t: usize) -> Real {
        let extra = self.tightening.get(t).or(self.tightening.last()).copied();
        (self.buffer + extra.unwrap_or(0.0)).min(self.current)
    }
}

/// The margin reported for a limit margin `limit` when `required` must be
/// kept: their difference, `−∞` when that is NaN (a readout that is not
/// finite).
#[inline(always)]
fn margin(limit: Real, required: Real) -> Real {
    let m = limit - required;
    if m.is_nan() { Real::NEG_INFINITY } else { m }
}

/// One step's rows, as [`StageCosts`] reads them; `widths` is `(P, D, A)`.
struct Rows<'a> {
    y: &'a [Real],
    z: &'a [Real],
    u: &'a [Real],
    u_prev: &'a [Real],
    widths: (usize, usize, usize),
}

/// Adds `w ·` term `t`'s cost of every row of `rows` to `out` (one cell a
/// row): the one rule of a term's cost, for the planners' batches
/// ([`Objective::stage_costs`]) and single steps ([`Objective::stage_cost`],
/// one row). The term is dispatched once, never per row; quadratic readout
/// and action terms, the common ones, run as plain loops the compiler
/// vectorises.
#[inline(always)]
fn add_term_costs(
    obj: &Objective,
    t: &Term,
    w: Real,
    rows: &Rows<'_>,
    scratch: &mut ObjectiveScratch,
    out: &mut [Real],
) {
    let Rows { y, u, .. } = *rows;
    let (p, d, a) = rows.widths;
    match (&t.res, t.norm) {
        (Res::Readout(idx), Norm::Quadratic) if idx.len() == 1 => {
            let (j, g) = (idx[0], t.target[0]);
            // A fixed row width lets the compiler load rows as
            // vectors and pick column `j` out of them.
            match p {
                2 => add_quadratic::<2>(out, y, j, g, w),
                3 => add_quadratic::<3>(out, y, j, g, w),
                4 => add_quadratic::<4>(out, y, j, g, w),
                5 => add_quadratic::<5>(out, y, j, g, w),
                6 => add_quadratic::<6>(out, y, j, g, w),
                8 => add_quadratic::<8>(out, y, j, g, w),
                _ => {
                    for (o, y) in out.iter_mut().zip(y.chunks_exact(p)) {
                        let r = y[j] - g;
                        *o += w * (r * r);
                    }
                }
            }
        }
        (Res::Action, Norm::Quadratic) if a == 1 => {
            let g = t.target[0];
            for (o, u) in out.iter_mut().zip(u) {
                let r = u - g;
                *o += w * (r * r);
            }
        }
        (res, _) => {
            // Residuals of up to four values, their width known to
            // the compiler: no call per row.
            let width = match res {
                Res::Readout(idx) => idx.len(),
                Res::Latent => d.min(t.target.len()),
                Res::Action | Res::ActionRate => a,
            };
            match width {
                1 => add_term::<1>(t, w, rows, out),
                2 => add_term::<2>(t, w, rows, out),
                3 => add_term::<3>(t, w, rows, out),
                4 => add_term::<4>(t, w, rows, out),
                _ => add_term_by_rows(obj, t, w, rows, scratch, out),
            }
        }
    }
}

/// Adds `w ·` term `t`'s cost of every row to `out`, for a residual of `K`
/// values: the residual built in registers, the norm chosen once, each row
/// the bits of [`Objective::stage_cost`].
#[inline(always)]
fn add_term<const K: usize>(t: &Term, w: Real, rows: &Rows<'_>, out: &mut [Real]) {
    match t.norm {
        Norm::Quadratic => add_rows::<K>(t, w, rows, out, |r| Norm::Quadratic.eval(r)),
        Norm::L1 => add_rows::<K>(t, w, rows, out, |r| Norm::L1.eval(r)),
        Norm::SmoothAbs { eps } => {
            add_rows::<K>(t, w, rows, out, |r| Norm::SmoothAbs { eps }.eval(r));
        }
        Norm::L2 { eps } => add_rows::<K>(t, w, rows, out, |r| Norm::L2 { eps }.eval(r)),
        Norm::Huber { delta } => {
            add_rows::<K>(t, w, rows, out, |r| Norm::Huber { delta }.eval(r));
        }
    }
}

/// [`add_term`] with the norm `eval`.
#[inline(always)]
fn add_rows<const K: usize>(
    t: &Term,
    w: Real,
    rows: &Rows<'_>,
    out: &mut [Real],
    eval: impl Fn(&[Real]) -> Real,
) {
    let (p, d, a) = rows.widths;
    let g: [Real; K] = std::array::from_fn(|k| t.target.get(k).copied().unwrap_or(0.0));
    match &t.res {
        Res::Readout(idx) => {
            let idx: [usize; K] = std::array::from_fn(|k| idx[k]);
            for (o, y) in out.iter_mut().zip(rows.y.chunks_exact(p)) {
                let r: [Real; K] = std::array::from_fn(|k| y[idx[k]] - g[k]);
                *o += w * eval(&r);
            }
        }
        Res::Latent => {
            for (o, z) in out.iter_mut().zip(rows.z.chunks_exact(d)) {
                let r: [Real; K] = std::array::from_fn(|k| z[k] - g[k]);
                *o += w * eval(&r);
            }
        }
        Res::Action => {
            for (o, u) in out.iter_mut().zip(rows.u.chunks_exact(a)) {
                let r: [Real; K] = std::array::from_fn(|k| u[k] - g[k]);
                *o += w * eval(&r);
            }
        }
        Res::ActionRate => {
            let pairs = rows.u.chunks_exact(a).zip(rows.u_prev.chunks_exact(a));
            for (o, (u, up)) in out.iter_mut().zip(pairs) {
                let r: [Real; K] = std::array::from_fn(|k| u[k] - up[k]);
                *o += w * eval(&r);
            }
        }
    }
}

/// Adds `w ·` term `t`'s cost of every row to `out`, row by row through
/// [`Objective::residual`]: residuals wider than [`add_term`] takes.
fn add_term_by_rows(
    obj: &Objective,
    t: &Term,
    w: Real,
    rows: &Rows<'_>,
    scratch: &mut ObjectiveScratch,
    out: &mut [Real],
) {
    let (p, d, a) = rows.widths;
    for (i, o) in out.iter_mut().enumerate() {
        let k = obj.residual(
            t,
            &rows.y[i * p..(i + 1) * p],
            &rows.z[i * d..(i + 1) * d],
            &rows.u[i * a..(i + 1) * a],
            &rows.u_prev[i * a..(i + 1) * a],
            &mut scratch.r,
        );
        *o += w * t.norm.eval(&scratch.r[..k]);
    }
}

/// `out[i] += w·(y[i][j] − g)²` over rows of `P` readouts.
#[inline(always)]
fn add_quadratic<const P: usize>(out: &mut [Real], y: &[Real], j: usize, g: Real, w: Real) {
    for (o, y) in out.iter_mut().zip(y.as_chunks::<P>().0) {
        let r = y[j] - g;
        *o += w * (r * r);
    }
}

/// [`Objective::stage_costs`]' loops, compiled for the widest vectors.
struct StageCosts<'a> {
    objective: &'a Objective,
    y: &'a [Real],
    z: &'a [Real],
    u: &'a [Real],
    u_prev: &'a [Real],
    terminal: bool,
    scratch: &'a mut ObjectiveScratch,
    out: &'a mut [Real],
}

impl Wide for StageCosts<'_> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let Self {
            objective: obj,
            y,
            z,
            u,
            u_prev,
            terminal,
            scratch,
            out,
        } = self;
        let n = out.len();
        let (p, d, a) = (obj.readout_dim, obj.latent_dim, obj.action_dim);
        debug_assert!(y.len() == n * p && z.len() == n * d && u.len() == n * a);
        let rows = Rows {
            y,
            z,
            u,
            u_prev,
            widths: (p, d, a),
        };
        out.fill(0.0);
        for t in &obj.terms {
            let times = t.times(terminal);
            if times == 0.0 {
                continue;
            }
            add_term_costs(obj, t, times * t.weight, &rows, scratch, out);
        }
        // `o + 0` is `o` here (a sum that starts at +0 is never −0), but
        // unlike `o` it makes the compiler store every row: it would
        // otherwise store only the non-finite ones, with masked stores that
        // cost more than the whole loop.
        for o in out.iter_mut() {
            *o = if o.is_finite() {
                *o + 0.0
            } else {
                Real::INFINITY
            };
        }
    }
}
