//! One action sequence rolled out on its own, its trajectory recorded: the
//! rule the shield's trace and the gradient planner's adjoint share.

use super::{Dims, Start};
use crate::Real;
use crate::error::ModelError;
use crate::model::WorldModel;
use crate::objective::{Objective, ObjectiveScratch, Stage};
use crate::planner::Plan;

/// Task cost and summed guardrail violation of one rolled-out sequence.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Score {
    /// Task cost `J`.
    cost: Real,
    /// Summed violation of the buffered margins, step by step and guardrail
    /// by guardrail; `+∞` once a readout is not finite.
    violation: Real,
}

impl Score {
    /// Task cost `J`.
    pub fn cost(&self) -> Real {
        self.cost
    }

    /// Summed guardrail violation (0 when feasible, `+∞` once a readout is
    /// not finite).
    pub fn violation(&self) -> Real {
        self.violation
    }
}

/// Where [`sequence`] records a trajectory: buffers the caller owns.
#[derive(Debug)]
pub(crate) struct Record<'a> {
    /// Latents `z_0 … z_H` (`(H+1)×D`).
    z: &'a mut [Real],
    /// Readouts `y_1 … y_H` (`H×P`).
    y: &'a mut [Real],
    /// Buffered margins `m_{t,k}` of `y_{t+1}` (`H×G`).
    margins: &'a mut [Real],
    /// Cost per term, added to (when asked for).
    term_costs: Option<&'a mut [Real]>,
    /// The objective's workspace.
    scratch: &'a mut ObjectiveScratch,
}

impl<'a> Record<'a> {
    /// A record into `z` (`(H+1)×D`), `y` (`H×P`) and `margins` (`H×G`),
    /// scored with `scratch`.
    pub fn new(
        z: &'a mut [Real],
        y: &'a mut [Real],
        margins: &'a mut [Real],
        scratch: &'a mut ObjectiveScratch,
    ) -> Self {
        Self {
            z,
            y,
            margins,
            term_costs: None,
            scratch,
        }
    }

    /// Also adds each stage's cost per term into `term_costs`.
    #[must_use]
    pub fn with_term_costs(mut self, term_costs: &'a mut [Real]) -> Self {
        self.term_costs = Some(term_costs);
        self
    }
}

/// Rolls `seq` (`H×A`) out from `start` through `model`, one step at a time,
/// scoring each step with `objective`: stage `t` scores `y_{t+1}, z_{t+1}`
/// reached by `u_t`, together with `u_t` and `u_{t−1}` (`u_{−1}` is the
/// action applied last), and the terminal terms are added at `t = H−1`. The
/// trajectory and margins go to `rec`; on a model error, the steps before it
/// are recorded.
pub(crate) fn sequence<M: WorldModel + ?Sized>(
    model: &mut M,
    objective: &Objective,
    start: Start<'_>,
    seq: &[Real],
    dims: Dims,
    rec: Record<'_>,
) -> Result<Score, ModelError> {
    let (h, a, d, p) = dims.sizes();
    let g = objective.num_guardrails();
    let Record {
        z,
        y,
        margins,
        mut term_costs,
        scratch,
    } = rec;
    z[..d].copy_from_slice(start.z0());
    let mut out = Score {
        cost: 0.0,
        violation: 0.0,
    };
    for t in 0..h {
        let (past, future) = z.split_at_mut((t + 1) * d);
        let (z_t, z_next) = (&past[t * d..], &mut future[..d]);
        let u_t = &seq[t * a..(t + 1) * a];
        let u_prev = if t == 0 {
            start.u_last()
        } else {
            &seq[(t - 1) * a..t * a]
        };
        model.predict(z_t, u_t, z_next)?;
        let y = &mut y[t * p..(t + 1) * p];
        model.readout(z_next, y)?;
        out.cost += objective.stage_cost(
            Stage {
                y,
                z: z_next,
                u: u_t,
                u_prev,
                terminal: t + 1 == h,
            },
            scratch,
            term_costs.as_deref_mut(),
        );
        let m = &mut margins[t * g..(t + 1) * g];
        objective.margins_at_step(y, t, m);
        for mk in m.iter() {
            out.violation += (-mk).max(0.0);
        }
        if y.iter().any(|x| !x.is_finite()) {
            out.violation = Real::INFINITY;
        }
    }
    Ok(out)
}

/// Rolls out a single sequence into a plan (its readouts, cost per term and
/// smallest margin per guardrail) with [`sequence`], with buffers allocated
/// once.
#[derive(Debug)]
pub(crate) struct Tracer {
    dims: Dims,
    z: Vec<Real>,
    margins: Vec<Real>,
    scratch: ObjectiveScratch,
}

impl Tracer {
    /// Buffers for sequences of size `dims`, scored by `objective`.
    pub fn new(dims: Dims, objective: &Objective) -> Self {
        let (h, _, d, _) = dims.sizes();
        Self {
            dims,
            z: vec![0.0; (h + 1) * d],
            margins: vec![0.0; h * objective.num_guardrails()],
            scratch: objective.scratch(),
        }
    }

    /// Rolls out `seq` (`H×A`) from `start` and writes its trajectory, costs
    /// and margins into `plan`; returns `(violation, cost)`. On a model
    /// error, the plan holds the steps before it.
    pub fn trace<M: WorldModel + ?Sized>(
        &mut self,
        model: &mut M,
        objective: &Objective,
        start: Start<'_>,
        seq: &[Real],
        plan: &mut Plan,
    ) -> Result<(Real, Real), ModelError> {
        plan.term_costs.fill(0.0);
        plan.margins.fill(Real::INFINITY);
        // Steps a model error leaves out stay at +∞: no effect on the minimum.
        self.margins.fill(Real::INFINITY);
        let rec = Record::new(
            &mut self.z,
            &mut plan.readouts,
            &mut self.margins,
            &mut self.scratch,
        )
        .with_term_costs(&mut plan.term_costs);
        let scored = sequence(model, objective, start, seq, self.dims, rec);
        let g = plan.margins.len();
        if g > 0 {
            for m in self.margins.chunks_exact(g) {
                for (m, o) in m.iter().zip(plan.margins.iter_mut()) {
                    *o = o.min(*m);
                }
            }
        }
        let Score { cost, violation } = scored?;
        Ok((violation, cost))
    }
}
