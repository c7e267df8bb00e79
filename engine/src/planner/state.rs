//! What a planner carries from one call to the next and holds during one:
//! the warm start, the action applied last, the current observation's latent
//! and readouts, the fallback action, and the best sequence of the call.

use super::Fallback;
use super::rollout::{Dims, Start, rank};
use crate::Real;
use crate::error::{ModelError, PlanError};
use crate::model::{ModelSpec, WorldModel};
use std::cmp::Ordering;

/// The planning state apart from the workspace and the solvers.
#[derive(Debug)]
pub(crate) struct PlanState {
    /// Actions `A`.
    a: usize,
    /// Warm-start sequence (`H×A`).
    nominal: Vec<Real>,
    has_nominal: bool,
    /// The action applied last (for action-rate terms).
    u_last: Vec<Real>,
    has_last: bool,
    /// The actions sent and not yet acting, oldest first (`delay × A`;
    /// empty without an actuation delay).
    pending: Vec<Real>,
    /// A latent's worth of scratch, to predict through `pending`.
    z_next: Vec<Real>,
    /// The latent of the current observation (`D`) and its readouts (`P`);
    /// with an actuation delay, the latent predicted `delay` steps on.
    z0: Vec<Real>,
    y0: Vec<Real>,
    /// Fallback action for the current observation.
    fallback: Vec<Real>,
    /// The readout each action holds with [`Fallback::Hold`].
    fallback_idx: Vec<usize>,
    /// Best sequence seen in this call and its score.
    best: Vec<Real>,
    best_cost: Real,
    best_violation: Real,
}

impl PlanState {
    /// The state before any call: every action at `mid` (`A`), the middle of
    /// the bounds, clamped; `fallback_idx` from [`fallback_indices`];
    /// `delay` actions sent before the first call (each `mid`), not yet
    /// acting.
    pub fn new(dims: Dims, mid: Vec<Real>, fallback_idx: Vec<usize>, delay: usize) -> Self {
        let (h, a, d, p) = dims.sizes();
        let nominal = mid.repeat(h);
        Self {
            a,
            nominal: nominal.clone(),
            has_nominal: false,
            u_last: mid.clone(),
            has_last: false,
            pending: mid.repeat(delay),
            z_next: vec![0.0; if delay > 0 { d } else { 0 }],
            z0: vec![0.0; d],
            y0: vec![0.0; p],
            fallback: mid,
            fallback_idx,
            best: nominal,
            best_cost: Real::INFINITY,
            best_violation: Real::INFINITY,
        }
    }

    /// Forgets the warm start, the last action and the actions sent: all
    /// become `mid`.
    pub fn reset(&mut self, mid: &[Real]) {
        self.has_nominal = false;
        self.has_last = false;
        for row in self
            .nominal
            .chunks_mut(self.a)
            .chain(self.pending.chunks_mut(self.a))
        {
            row.copy_from_slice(mid);
        }
        self.u_last.copy_from_slice(mid);
    }

    /// Encodes the observation `obs`, predicts it through the actions sent
    /// and not yet acting (with an actuation delay), and reads out the
    /// latent.
    pub fn encode<M: WorldModel>(&mut self, model: &mut M, obs: &[Real]) -> Result<(), ModelError> {
        model.encode(obs, &mut self.z0)?;
        for u in self.pending.chunks(self.a) {
            model.predict(&self.z0, u, &mut self.z_next)?;
            std::mem::swap(&mut self.z0, &mut self.z_next);
        }
        model.readout(&self.z0, &mut self.y0)
    }

    /// An error when the encoded latent or its readouts are not finite.
    pub fn check_encoded(&self) -> Result<(), PlanError> {
        if let Some(i) = self.z0.iter().chain(&self.y0).position(|x| !x.is_finite()) {
            return Err(PlanError::Model(ModelError::NonFinite {
                what: "encoded latent or readout",
                index: i,
            }));
        }
        Ok(())
    }

    /// Computes the fallback action of the current observation, clamped
    /// into the bounds of `spec`.
    pub fn set_fallback(&mut self, fallback: &Fallback, spec: &ModelSpec) {
        match fallback {
            Fallback::Zero => self.fallback.fill(0.0),
            Fallback::Constant { action } => self.fallback.copy_from_slice(action),
            Fallback::Hold { .. } => {
                for (f, i) in self.fallback.iter_mut().zip(&self.fallback_idx) {
                    *f = self.y0[*i];
                }
            }
        }
        spec.clamp_actions(&mut self.fallback);
    }

    /// Starts a call's warm start: the previous plan shifted by one step, or
    /// the fallback held on the first call; no best sequence yet.
    pub fn warm_start(&mut self) {
        if self.has_nominal {
            shift_one_step(&mut self.nominal, self.a);
        } else {
            // First call: start from holding the fallback, a plan that is
            // usually safe and always admissible.
            for row in self.nominal.chunks_mut(self.a) {
                row.copy_from_slice(&self.fallback);
            }
        }
        if !self.has_last {
            self.u_last.copy_from_slice(&self.nominal[..self.a]);
        }
        self.best.copy_from_slice(&self.nominal);
        self.best_cost = Real::INFINITY;
        self.best_violation = Real::INFINITY;
    }

    /// Keeps the best of the scored sequences `seqs` (`N×H×A`, costs `cost`
    /// and violations `violation`, `N` each), feasible first, if it ranks
    /// before the best so far.
    pub fn remember_best(&mut self, cost: &[Real], violation: &[Real], seqs: &[Real]) {
        let len = self.best.len();
        for (i, (&v, &c)) in violation.iter().zip(cost).enumerate() {
            if rank(v, c, self.best_violation, self.best_cost) == Ordering::Less {
                self.best_violation = v;
                self.best_cost = c;
                self.best.copy_from_slice(&seqs[i * len..(i + 1) * len]);
            }
        }
    }

    /// Keeps `chosen` as the next warm start and `action` as the action
    /// applied last.
    pub fn keep(&mut self, chosen: &[Real], action: &[Real]) {
        self.nominal.copy_from_slice(chosen);
        self.has_nominal = true;
        self.u_last.copy_from_slice(action);
        self.has_last = true;
        // The action sent now waits behind the others.
        if !self.pending.is_empty() {
            self.pending.rotate_left(self.a);
            let at = self.pending.len() - self.a;
            self.pending[at..].copy_from_slice(action);
        }
    }

    /// Where every rollout of this call starts.
    pub fn start(&self) -> Start<'_> {
        Start::new(&self.z0, &self.u_last)
    }

    /// The warm start (`H×A`).
    pub fn nominal(&self) -> &[Real] {
        &self.nominal
    }

    /// The readouts of the current observation (`P`).
    pub fn y0(&self) -> &[Real] {
        &self.y0
    }

    /// The fallback action of the current observation (`A`).
    pub fn fallback(&self) -> &[Real] {
        &self.fallback
    }

    /// The best sequence seen in this call (`H×A`).
    pub fn best(&self) -> &[Real] {
        &self.best
    }

    /// The action applied last, to set it in tests.
    #[cfg(test)]
    pub fn u_last_mut(&mut self) -> &mut [Real] {
        &mut self.u_last
    }
}

/// The readout held by each action with [`Fallback::Hold`] (empty for the
/// other fallbacks); checks the fallback against `spec`'s `a` actions.
pub(crate) fn fallback_indices(
    fallback: &Fallback,
    spec: &ModelSpec,
) -> Result<Vec<usize>, PlanError> {
    let a = spec.action_dim();
    Ok(match fallback {
        Fallback::Zero => Vec::new(),
        Fallback::Constant { action } => {
            if action.len() != a || action.iter().any(|x| !x.is_finite()) {
                return Err(PlanError::Config(format!(
                    "fallback action must have {a} finite values, got {action:?}"
                )));
            }
            Vec::new()
        }
        Fallback::Hold { readouts } => {
            if readouts.len() != a {
                return Err(PlanError::Config(format!(
                    "fallback hold names {} readouts, the model has {a} actions",
                    readouts.len()
                )));
            }
            readouts
                .iter()
                .map(|r| {
                    spec.readout_index(r).ok_or_else(|| {
                        PlanError::Config(format!(
                            "fallback hold: model '{}' has no readout '{r}'",
                            spec.name
                        ))
                    })
                })
                .collect::<Result<_, _>>()?
        }
    })
}

/// The warm start's shift by one step: drops the first action of `seq`
/// (`H×A`, actions of `a` values) and repeats the last; a one-step sequence
/// is kept as it is.
pub(crate) fn shift_one_step(seq: &mut [Real], a: usize) {
    if seq.len() <= a {
        return;
    }
    seq.copy_within(a.., 0);
    let last = seq.len() - a;
    let (head, tail) = seq.split_at_mut(last);
    tail.copy_from_slice(&head[last - a..]);
}
