//! One action sequence rolled out on its own, its trajectory recorded.

use super::{Dims, Start};
use crate::Real;
use crate::error::ModelError;
use crate::model::WorldModel;
use crate::objective::{Objective, ObjectiveScratch};
use crate::planner::Plan;

/// Rolls out a single sequence into a plan (its readouts, cost per term and
/// smallest margin per guardrail), with buffers allocated once.
#[derive(Debug)]
pub(crate) struct Tracer {
    dims: Dims,
    z: Vec<Real>,
    z_next: Vec<Real>,
    margins: Vec<Real>,
    scratch: ObjectiveScratch,
}

impl Tracer {
    /// Buffers for sequences of size `dims`, scored by `objective`.
    pub fn new(dims: Dims, objective: &Objective) -> Self {
        Self {
            dims,
            z: vec![0.0; dims.d],
            z_next: vec![0.0; dims.d],
            margins: vec![0.0; objective.num_guardrails()],
            scratch: objective.scratch(),
        }
    }

    /// Rolls out `seq` (`H×A`) from `start` and writes its trajectory, costs
    /// and margins into `plan`; returns `(violation, cost)`.
    pub fn trace<M: WorldModel + ?Sized>(
        &mut self,
        model: &mut M,
        objective: &Objective,
        start: Start<'_>,
        seq: &[Real],
        plan: &mut Plan,
    ) -> Result<(Real, Real), ModelError> {
        let Dims { h, a, d, p } = self.dims;
        plan.term_costs.fill(0.0);
        plan.margins.fill(Real::INFINITY);
        let (mut z, mut z_next) = (
            std::mem::take(&mut self.z),
            std::mem::take(&mut self.z_next),
        );
        z.copy_from_slice(start.z0());
        let margins = &mut self.margins;
        let mut cost = 0.0;
        let mut violation = 0.0;
        for t in 0..h {
            let u = &seq[t * a..(t + 1) * a];
            let up = if t == 0 {
                start.u_last()
            } else {
                &seq[(t - 1) * a..t * a]
            };
            let y = &mut plan.readouts[t * p..(t + 1) * p];
            let step = model
                .predict(&z, u, &mut z_next)
                .and_then(|()| model.readout(&z_next, y));
            if let Err(e) = step {
                self.z = z;
                self.z_next = z_next;
                return Err(e);
            }
            cost += objective.stage_cost(
                y,
                &z_next,
                u,
                up,
                t + 1 == h,
                &mut self.scratch,
                Some(&mut plan.term_costs),
            );
            objective.margins_at_step(y, t, margins);
            for (m, o) in margins.iter().zip(plan.margins.iter_mut()) {
                violation += (-m).max(0.0);
                *o = o.min(*m);
            }
            if y.iter().any(|x| !x.is_finite()) {
                violation = Real::INFINITY;
            }
            std::mem::swap(&mut z, &mut z_next);
        }
        debug_assert_eq!(d, z.len());
        self.z = z;
        self.z_next = z_next;
        Ok((violation, cost))
    }
}
