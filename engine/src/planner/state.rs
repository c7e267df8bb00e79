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
    /// The last actions sent, oldest first: `delay × A`, the actions not
    /// yet acting (empty without an actuation delay); with delay
    /// identification, a few more.
    sent: Vec<Real>,
    /// The delay this call predicts through: the configured one, or the
    /// one identified.
    delay: usize,
    /// Delay identification, when on.
    identify: Option<DelayEvidence>,
    /// A latent's worth of scratch, to predict through the actions sent.
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
    /// acting; with `identify`, `delay` is the largest delay and each call
    /// identifies one in `0..=delay`.
    pub fn new(
        dims: Dims,
        mid: Vec<Real>,
        fallback_idx: Vec<usize>,
        delay: usize,
        identify: bool,
    ) -> Self {
        let (h, a, d, p) = dims.sizes();
        let nominal = mid.repeat(h);
        let identify = (identify && delay > 0).then(|| DelayEvidence::new(delay, d));
        let kept = if identify.is_some() {
            DelayEvidence::actions_kept(delay)
        } else {
            delay
        };
        Self {
            a,
            nominal: nominal.clone(),
            has_nominal: false,
            u_last: mid.clone(),
            has_last: false,
            sent: mid.repeat(kept),
            delay: if identify.is_some() { 0 } else { delay },
            identify,
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
            .chain(self.sent.chunks_mut(self.a))
        {
            row.copy_from_slice(mid);
        }
        self.u_last.copy_from_slice(mid);
        if let Some(evidence) = &mut self.identify {
            evidence.reset();
            self.delay = 0;
        }
    }

    /// Encodes the observation `obs`, predicts it through the actions sent
    /// and not yet acting (with an actuation delay; with identification,
    /// first identifies the delay from this observation and the one
    /// before), and reads out the latent.
    pub fn encode<M: WorldModel>(&mut self, model: &mut M, obs: &[Real]) -> Result<(), ModelError> {
        model.encode(obs, &mut self.z0)?;
        if let Some(evidence) = &mut self.identify {
            self.delay = evidence.observe(model, &self.z0, &self.sent, self.a, &mut self.z_next)?;
        }
        let pending = &self.sent[self.sent.len() - self.delay * self.a..];
        for u in pending.chunks(self.a) {
            model.predict(&self.z0, u, &mut self.z_next)?;
            std::mem::swap(&mut self.z0, &mut self.z_next);
        }
        model.readout(&self.z0, &mut self.y0)
    }

    /// The actuation delay the current call predicts through, in control
    /// periods.
    pub fn delay(&self) -> usize {
        self.delay
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
        if !self.sent.is_empty() {
            self.sent.rotate_left(self.a);
            let at = self.sent.len() - self.a;
            self.sent[at..].copy_from_slice(action);
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

/// How much each actuation delay `0..=k` has explained the observations
/// so far: after each new observation, the model predicts it from the one
/// before under each delay (the action that acted in a period is, with a
/// delay of `d`, the one sent `d` calls before that period's) and adds the
/// squared latent distance to that delay's discounted sum. The delay of
/// the smallest sum wins; ties go to the shorter delay.
#[derive(Debug)]
struct DelayEvidence {
    /// The discounted squared prediction error of each delay (`k + 1`).
    error: Vec<Real>,
    /// The latent of the last new observation (`D`).
    z_prev: Vec<Real>,
    /// Where a delay's prediction from `z_prev` has got to (`D`).
    z_pred: Vec<Real>,
    /// Control periods since `z_prev` was observed (0: nothing to predict
    /// from).
    gap: usize,
}

/// The weight of past evidence after each observation: about the last 20
/// periods count.
const DELAY_EVIDENCE_DISCOUNT: Real = 0.95;

/// The most control periods a repeated (stale) observation may last and
/// the next new one still be weighed against the one before it.
const DELAY_EVIDENCE_MAX_GAP: usize = 4;

impl DelayEvidence {
    fn new(k: usize, d: usize) -> Self {
        Self {
            error: vec![0.0; k + 1],
            z_prev: vec![0.0; d],
            z_pred: vec![0.0; d],
            gap: 0,
        }
    }

    /// The actions identification keeps, for a largest delay of `k`.
    fn actions_kept(k: usize) -> usize {
        k + DELAY_EVIDENCE_MAX_GAP
    }

    fn reset(&mut self) {
        self.error.fill(0.0);
        self.gap = 0;
    }

    /// Weighs the latent `z` of a new observation against each delay, with
    /// `sent` the last [`actions_kept`](Self::actions_kept) actions sent
    /// (`a` values each, oldest first) and `scratch` a latent's worth of
    /// space; returns the delay that explains the observations best.
    fn observe<M: WorldModel>(
        &mut self,
        model: &mut M,
        z: &[Real],
        sent: &[Real],
        a: usize,
        scratch: &mut [Real],
    ) -> Result<usize, ModelError> {
        // A repeated observation (a stale sensor) says nothing about the
        // last period: the next new one is weighed against the one before
        // it, across the periods between.
        if self.gap > 0 && self.z_prev.as_slice() == z {
            self.gap += 1;
            if self.gap > DELAY_EVIDENCE_MAX_GAP {
                self.gap = 0;
            }
            return Ok(self.best());
        }
        // With no earlier observation (`gap` 0) there is nothing to weigh.
        if self.gap > 0 {
            let kept = sent.len() / a;
            for (d, error) in self.error.iter_mut().enumerate() {
                // The periods since `z_prev`, oldest first: with a delay of
                // `d`, the `j`-th acted on the action sent `d` calls before it.
                self.z_pred.copy_from_slice(&self.z_prev);
                for j in 0..self.gap {
                    let i = kept - self.gap + j - d;
                    model.predict(&self.z_pred, &sent[i * a..(i + 1) * a], scratch)?;
                    self.z_pred.copy_from_slice(scratch);
                }
                let miss: Real = self
                    .z_pred
                    .iter()
                    .zip(z)
                    .map(|(p, o)| (p - o) * (p - o))
                    .sum();
                *error = DELAY_EVIDENCE_DISCOUNT * *error + miss;
            }
        }
        self.z_prev.copy_from_slice(z);
        self.gap = 1;
        Ok(self.best())
    }

    /// The delay of the smallest discounted error, the shortest on ties (a
    /// non-finite error never wins).
    fn best(&self) -> usize {
        let mut best = 0;
        for (d, e) in self.error.iter().enumerate() {
            if *e < self.error[best] || !self.error[best].is_finite() && e.is_finite() {
                best = d;
            }
        }
        best
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
