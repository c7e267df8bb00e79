//! The real-time controller: a planner thread re-plans on the newest
//! observation while the control side reads the newest plan without waiting.
//!
//! ```text
//!   control side                                   planner thread "telic-planner"
//!   observe(o, t) ──── newest observation ───────▶  plan(o)
//!   action(now)   ◀─── newest snapshot ──────────  {t, U (H×A), Y (H×P), status, tail margins}
//!                 ──── used buffers go back ─────▶
//! ```
//!
//! [`Controller::observe`] and [`Controller::action`] never wait: they only
//! try to send and receive on bounded crossbeam channels. Observations the
//! planner had no time for are replaced by newer ones; so are plans the control
//! side had no time to read. Observation and snapshot buffers are sent back
//! through return channels and reused, so after the first few plans neither
//! side allocates.
//!
//! # Which action is returned
//!
//! At `action(now)` the controller takes the newest snapshot, planned from the
//! observation taken at `t`, and ages it by `age = now − t`. It applies
//! step `s = ⌊age / dt⌋` of the plan (zero-order hold, `dt` the model's time
//! step) when everything below holds, and otherwise the fallback, with the
//! first reason that applies ([`FallbackReason`]):
//!
//! 1. the planner thread is alive ([`PlannerDead`](FallbackReason::PlannerDead));
//! 2. a plan has arrived ([`NoPlanYet`](FallbackReason::NoPlanYet));
//! 3. the newest planning call succeeded ([`PlannerFailed`](FallbackReason::PlannerFailed));
//! 4. `age ≤` [`ControllerConfig::max_plan_age_ms`] ([`Stale`](FallbackReason::Stale));
//! 5. the plan is feasible ([`NoFeasiblePlan`](FallbackReason::NoFeasiblePlan));
//! 6. `s < H` ([`ShiftedPastHorizon`](FallbackReason::ShiftedPastHorizon));
//! 7. every guardrail margin of the steps `s..H` that remain is `≥ 0`
//!    ([`GuardrailOnShiftedPlan`](FallbackReason::GuardrailOnShiftedPlan)).
//!    The planner thread computes these margins after each plan with
//!    [`Objective::margins_at_step`](crate::Objective::margins_at_step), the
//!    test the planners' shield applies, so for the built-in planners a
//!    feasible plan always passes; the check guards the control side against
//!    any planner that marks a plan feasible that is not.
//!
//! # Fallbacks
//!
//! The control side cannot run the world model. When the planner found no
//! feasible plan (reason 5), the action is the one the planner returned: its
//! fallback, computed with the model for the observation it planned from.
//! Otherwise it is the controller's fallback, [`ControllerConfig::fallback`]
//! or, by default, the planner's [`PlannerConfig::fallback`](crate::PlannerConfig::fallback):
//!
//! - [`Fallback::Zero`] and [`Fallback::Constant`]: clamped into the action bounds.
//! - [`Fallback::Hold`]: every named readout must also be an *observation*
//!   of the model (true of the analytic models: `pos.x`, `q.<joint>`, …); the
//!   action is taken from the newest observation given to
//!   [`Controller::observe`], clamped. A hold on readouts that only the model
//!   can compute is refused by [`Controller::spawn`]: give the controller a
//!   fallback of its own. Before the first observation there is nothing to
//!   hold and the action is zero, clamped: observe before acting.

mod worker;

use crate::Real;
use crate::error::{ModelError, PlanError};
use crate::model::ModelSpec;
use crate::planner::{Fallback, PlanStatus, Planner};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use worker::{Counters, Link, MessageSizes, Snapshot};

/// Controller settings. Every field has a default (shown in its doc).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ControllerConfig {
    /// Oldest plan the control side acts on, in milliseconds since the
    /// observation it was planned from (default 100).
    pub max_plan_age_ms: Real,
    /// The control side's fallback (default: the planner's own,
    /// [`PlannerConfig::fallback`](crate::PlannerConfig::fallback)). See
    /// [the module docs](self#fallbacks).
    pub fallback: Option<Fallback>,
}

impl Default for ControllerConfig {
    fn default() -> Self {
        Self {
            max_plan_age_ms: 100.0,
            fallback: None,
        }
    }
}

impl ControllerConfig {
    /// Checks every value; the message names the offending field.
    pub fn validate(&self) -> Result<(), String> {
        self.max_age().map(|_| ())
    }

    fn max_age(&self) -> Result<Duration, String> {
        let ms = self.max_plan_age_ms;
        match Duration::try_from_secs_f64(ms / 1e3) {
            Ok(age) if ms > 0.0 => Ok(age),
            _ => Err(format!(
                "controller.max_plan_age_ms must be positive and finite, got {ms}"
            )),
        }
    }
}

/// Why the controller returned its fallback; see [the module docs](self#which-action-is-returned).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FallbackReason {
    /// No planning call has finished since the controller (re)started.
    NoPlanYet,
    /// The newest plan is older than [`ControllerConfig::max_plan_age_ms`].
    Stale,
    /// The newest planning call returned an error (see
    /// [`ControllerMetrics::last_error`]); the planner keeps running.
    PlannerFailed,
    /// The planner thread has died (see [`ControllerMetrics::last_error`]);
    /// [`Controller::restart`] starts a new one.
    PlannerDead,
    /// The planner found no feasible plan; the action is its fallback.
    NoFeasiblePlan,
    /// More time has passed since the observation than the plan covers.
    ShiftedPastHorizon,
    /// A step of the plan still ahead breaks a guardrail.
    GuardrailOnShiftedPlan,
}

/// Where an action came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActionSource {
    /// Step `step` of the newest plan, planned from an observation `age` old.
    Plan {
        /// Steps since the observation the plan starts at.
        step: usize,
        /// Time since that observation.
        age: Duration,
    },
    /// The fallback action.
    Fallback(FallbackReason),
}

/// An action to apply now, borrowed from the controller.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Action<'a> {
    /// The action (`A` values, within the action bounds).
    pub values: &'a [Real],
    /// Where it came from.
    pub source: ActionSource,
}

impl Action<'_> {
    /// True when the action is a fallback.
    #[must_use]
    pub fn is_fallback(&self) -> bool {
        matches!(self.source, ActionSource::Fallback(_))
    }
}

impl std::ops::AddAssign<&FallbackCounts> for FallbackCounts {
    /// Adds the counts of `other` (e.g. to total several episodes).
    fn add_assign(&mut self, other: &FallbackCounts) {
        self.no_plan_yet += other.no_plan_yet;
        self.stale += other.stale;
        self.planner_failed += other.planner_failed;
        self.planner_dead += other.planner_dead;
        self.no_feasible_plan += other.no_feasible_plan;
        self.shifted_past_horizon += other.shifted_past_horizon;
        self.guardrail_on_shifted_plan += other.guardrail_on_shifted_plan;
    }
}

/// Control reads that returned the fallback, by reason.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FallbackCounts {
    /// [`FallbackReason::NoPlanYet`].
    pub no_plan_yet: u64,
    /// [`FallbackReason::Stale`].
    pub stale: u64,
    /// [`FallbackReason::PlannerFailed`].
    pub planner_failed: u64,
    /// [`FallbackReason::PlannerDead`].
    pub planner_dead: u64,
    /// [`FallbackReason::NoFeasiblePlan`].
    pub no_feasible_plan: u64,
    /// [`FallbackReason::ShiftedPastHorizon`].
    pub shifted_past_horizon: u64,
    /// [`FallbackReason::GuardrailOnShiftedPlan`].
    pub guardrail_on_shifted_plan: u64,
}

impl FallbackCounts {
    /// The count for `reason`.
    #[must_use]
    pub fn get(&self, reason: FallbackReason) -> u64 {
        match reason {
            FallbackReason::NoPlanYet => self.no_plan_yet,
            FallbackReason::Stale => self.stale,
            FallbackReason::PlannerFailed => self.planner_failed,
            FallbackReason::PlannerDead => self.planner_dead,
            FallbackReason::NoFeasiblePlan => self.no_feasible_plan,
            FallbackReason::ShiftedPastHorizon => self.shifted_past_horizon,
            FallbackReason::GuardrailOnShiftedPlan => self.guardrail_on_shifted_plan,
        }
    }

    /// All fallback reads.
    #[must_use]
    pub fn total(&self) -> u64 {
        self.no_plan_yet
            + self.stale
            + self.planner_failed
            + self.planner_dead
            + self.no_feasible_plan
            + self.shifted_past_horizon
            + self.guardrail_on_shifted_plan
    }

    fn add(&mut self, reason: FallbackReason) {
        let count = match reason {
            FallbackReason::NoPlanYet => &mut self.no_plan_yet,
            FallbackReason::Stale => &mut self.stale,
            FallbackReason::PlannerFailed => &mut self.planner_failed,
            FallbackReason::PlannerDead => &mut self.planner_dead,
            FallbackReason::NoFeasiblePlan => &mut self.no_feasible_plan,
            FallbackReason::ShiftedPastHorizon => &mut self.shifted_past_horizon,
            FallbackReason::GuardrailOnShiftedPlan => &mut self.guardrail_on_shifted_plan,
        };
        *count += 1;
    }
}

/// Deadline and staleness figures of a [`Controller`], since it was spawned
/// (across restarts).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ControllerMetrics {
    /// Observations accepted by [`Controller::observe`].
    pub observations: u64,
    /// Observations replaced by a newer one before the planner started on them.
    pub observations_skipped: u64,
    /// Planning calls that returned a plan.
    pub plans_published: u64,
    /// Planning calls that returned an error.
    pub plans_failed: u64,
    /// Planning calls that took longer than one model time step, the
    /// deadline for re-planning at every step.
    pub plans_late: u64,
    /// Wall-clock time of the latest planning call.
    pub last_plan_latency: Option<Duration>,
    /// Longest planning call.
    pub max_plan_latency: Duration,
    /// Calls to [`Controller::action`].
    pub control_reads: u64,
    /// Control reads that returned a step of a plan.
    pub plan_reads: u64,
    /// Control reads that returned the fallback, by reason.
    pub fallback_reads: FallbackCounts,
    /// Age of the newest planning result at the latest control read.
    pub latest_plan_age: Option<Duration>,
    /// Largest age of a planning result seen at a control read.
    pub max_plan_age: Duration,
    /// Calls to [`Controller::restart`].
    pub planner_restarts: u64,
    /// True while the planner thread runs.
    pub planner_alive: bool,
    /// The latest planning error or planner-thread panic, as text.
    pub last_error: Option<String>,
}

/// What a robot stack embeds: a planner thread that re-plans continuously on
/// the newest observation, and a control side that never waits for it.
///
/// ```
/// use std::time::{Duration, Instant};
/// use telic::controller::{ActionSource, Controller, ControllerConfig};
/// use telic::model::{PointMass, WorldModel};
/// use telic::objective::{ObjectiveSpec, Residual, TermSpec};
/// use telic::planner::{PlannerConfig, build};
///
/// let model = PointMass::new(2, 0.1, 2.0).unwrap();
/// let spec = model.spec().clone();
/// let objective = ObjectiveSpec {
///     terms: vec![TermSpec {
///         name: "goal".into(),
///         residual: Residual::Readout {
///             readouts: vec!["pos.x".into(), "pos.y".into()],
///             target: vec![1.0, 0.0],
///         },
///         norm: Default::default(),
///         weight: 1.0,
///         phase: Default::default(),
///     }],
///     ..Default::default()
/// }
/// .compile(&spec)
/// .unwrap();
/// let planner = build(model, objective, PlannerConfig::default()).unwrap();
/// let mut controller = Controller::spawn(planner, &spec, ControllerConfig::default()).unwrap();
///
/// // The control loop: observe, act, at the robot's own rate.
/// let mut planned = None;
/// for _ in 0..10_000 {
///     controller.observe(&[0.0, 0.0, 0.0, 0.0], Instant::now()).unwrap();
///     let action = controller.action(Instant::now());
///     if let ActionSource::Plan { .. } = action.source {
///         planned = Some(action.values.to_vec());
///         break;
///     }
///     std::thread::sleep(Duration::from_millis(1));
/// }
/// assert!(planned.unwrap()[0] > 0.0); // accelerate towards x = 1
/// assert!(controller.metrics().plans_published >= 1);
/// ```
#[derive(Debug)]
pub struct Controller {
    dims: MessageSizes,
    obs_dim: usize,
    lower: Vec<Real>,
    upper: Vec<Real>,
    /// Observation index of each held action (empty unless the fallback holds).
    hold: Vec<usize>,
    max_age: Duration,
    /// The controller's fallback action (`A`).
    fallback: Vec<Real>,
    /// The newest accepted observation and when it was taken.
    last_obs: Vec<Real>,
    last_obs_at: Option<Instant>,
    link: Option<Link>,
    /// The newest planning result.
    current: Option<Box<Snapshot>>,
    dead: bool,
    counters: Arc<Counters>,
    metrics: ControllerMetrics,
}

impl Controller {
    /// Starts a planner thread (`telic-planner`) that owns `planner`.
    ///
    /// `model` must be the spec of the planner's world model (the controller
    /// checks observations, clamps its fallback and steps through plans
    /// with it). Errors: an invalid `config` or spec, a spec the planner's
    /// objective does not fit, a fallback the control side cannot compute
    /// (see [the module docs](self#fallbacks)).
    pub fn spawn(
        planner: Box<dyn Planner>,
        model: &ModelSpec,
        config: ControllerConfig,
    ) -> Result<Self, PlanError> {
        let max_age = config.max_age().map_err(PlanError::Config)?;
        model.validate()?;
        check_planner(planner.as_ref(), model.action_dim(), model.readout_dim())?;
        let fallback = config
            .fallback
            .unwrap_or_else(|| planner.config().fallback.clone());
        let (a, o) = (model.action_dim(), model.obs_dim());
        let (values, hold) = resolve_fallback(&fallback, model)?;
        let dims = MessageSizes {
            observations: o,
            actions: a,
            readouts: model.readout_dim(),
            horizon: planner.config().horizon,
            dt: Duration::try_from_secs_f64(model.dt).map_err(|e| {
                PlanError::Model(ModelError::Invalid(format!("time step {}: {e}", model.dt)))
            })?,
        };
        let counters = Arc::new(Counters::new());
        let link = Link::start(planner, dims, Arc::clone(&counters))?;
        let mut controller = Self {
            dims,
            obs_dim: o,
            lower: model.action_lower.clone(),
            upper: model.action_upper.clone(),
            hold,
            max_age,
            fallback: values,
            last_obs: vec![0.0; o],
            last_obs_at: None,
            link: Some(link),
            current: None,
            dead: false,
            counters,
            metrics: ControllerMetrics::default(),
        };
        controller.clamp_fallback();
        Ok(controller)
    }

    /// Hands observation `obs`, taken at `now`, to the planner thread without
    /// waiting; an observation the planner has not started on is replaced.
    ///
    /// Refused, with the error [`Planner::plan`] gives, when it has the wrong
    /// size or a non-finite value; the controller then keeps what it had.
    pub fn observe(&mut self, obs: &[Real], now: Instant) -> Result<(), PlanError> {
        if obs.len() != self.obs_dim {
            return Err(PlanError::ObservationSize {
                got: obs.len(),
                expected: self.obs_dim,
            });
        }
        if let Some((index, value)) = obs.iter().enumerate().find(|(_, x)| !x.is_finite()) {
            return Err(PlanError::NonFiniteObservation {
                index,
                value: *value,
            });
        }
        self.last_obs.copy_from_slice(obs);
        self.last_obs_at = Some(now);
        if !self.hold.is_empty() {
            for (f, i) in self.fallback.iter_mut().zip(&self.hold) {
                *f = obs[*i];
            }
            self.clamp_fallback();
        }
        self.metrics.observations += 1;
        if let Some(link) = &self.link
            && !self.dead
            && link.send_observation(obs, now)
        {
            self.metrics.observations_skipped += 1;
        }
        Ok(())
    }

    /// The action to apply at `now`, without waiting: a step of the newest
    /// plan or the fallback, and why (see [the module docs](self#which-action-is-returned)).
    pub fn action(&mut self, now: Instant) -> Action<'_> {
        self.poll();
        let source = self.decide(now);
        self.metrics.control_reads += 1;
        let a = self.dims.actions;
        let values: &[Real] = match (source, &self.current) {
            (ActionSource::Plan { step, .. }, Some(snap)) => {
                self.metrics.plan_reads += 1;
                &snap.actions[step * a..(step + 1) * a]
            }
            (ActionSource::Fallback(reason), current) => {
                self.metrics.fallback_reads.add(reason);
                match current {
                    Some(snap) if reason == FallbackReason::NoFeasiblePlan => &snap.action,
                    _ => &self.fallback,
                }
            }
            // `decide` returns a plan step only with a current snapshot.
            (ActionSource::Plan { .. }, None) => &self.fallback,
        };
        Action { values, source }
    }

    /// Replaces the planner (e.g. after its thread died) and starts a new
    /// planner thread, which plans from the newest observation right away.
    /// The previous thread is stopped first; if it is still running, this
    /// waits for its current planning call to end. Plans of the previous
    /// planner are dropped. Errors as [`Controller::spawn`] for a planner
    /// that does not fit the model; the previous planner is then kept.
    pub fn restart(&mut self, planner: Box<dyn Planner>) -> Result<(), PlanError> {
        check_planner(planner.as_ref(), self.dims.actions, self.dims.readouts)?;
        let dims = MessageSizes {
            horizon: planner.config().horizon,
            ..self.dims
        };
        if let Some(link) = self.link.take() {
            link.shutdown();
        }
        self.current = None;
        self.dead = true;
        self.dims = dims;
        let link = Link::start(planner, dims, Arc::clone(&self.counters))?;
        if let Some(at) = self.last_obs_at {
            link.send_observation(&self.last_obs, at);
        }
        self.link = Some(link);
        self.dead = false;
        self.metrics.planner_restarts += 1;
        Ok(())
    }

    /// Predicted readouts along the newest plan (`H×P`, row `t` after action
    /// `t`), e.g. to draw it; `None` without a plan or after a failed call.
    #[must_use]
    pub fn predicted_readouts(&self) -> Option<&[Real]> {
        match &self.current {
            Some(snap) if snap.outcome.is_ok() => Some(&snap.readouts),
            _ => None,
        }
    }

    /// Deadline and staleness figures. Reads a few atomics and copies the
    /// control side's counters (and the last error's text).
    #[must_use]
    pub fn metrics(&self) -> ControllerMetrics {
        let c = &self.counters;
        let last_ns = c.last_latency_ns.load(Ordering::Relaxed);
        ControllerMetrics {
            plans_published: c.published.load(Ordering::Relaxed),
            plans_failed: c.failed.load(Ordering::Relaxed),
            plans_late: c.late.load(Ordering::Relaxed),
            last_plan_latency: (last_ns != u64::MAX).then(|| Duration::from_nanos(last_ns)),
            max_plan_latency: Duration::from_nanos(c.max_latency_ns.load(Ordering::Relaxed)),
            planner_alive: !self.dead && self.link.as_ref().is_some_and(Link::is_running),
            ..self.metrics.clone()
        }
    }

    /// Takes the newest snapshot and notices a dead planner thread.
    fn poll(&mut self) {
        let Some(link) = &self.link else { return };
        if link.take_newest(&mut self.current)
            && let Some(Snapshot {
                outcome: Err(e), ..
            }) = self.current.as_deref()
        {
            self.metrics.last_error = Some(e.to_string());
        }
        if !self.dead
            && let Some(reason) = link.exit_reason()
        {
            self.dead = true;
            self.metrics.last_error = Some(reason);
        }
    }

    fn decide(&mut self, now: Instant) -> ActionSource {
        use FallbackReason::*;
        let fallback = ActionSource::Fallback;
        let Some(snap) = &self.current else {
            return fallback(if self.dead { PlannerDead } else { NoPlanYet });
        };
        let age = now.saturating_duration_since(snap.observed_at);
        self.metrics.latest_plan_age = Some(age);
        self.metrics.max_plan_age = self.metrics.max_plan_age.max(age);
        let status = match &snap.outcome {
            _ if self.dead => return fallback(PlannerDead),
            Err(_) => return fallback(PlannerFailed),
            Ok(status) => *status,
        };
        if age > self.max_age {
            return fallback(Stale);
        }
        if status == PlanStatus::NoFeasiblePlan {
            return fallback(NoFeasiblePlan);
        }
        let dt_ns = self.dims.dt.as_nanos().max(1);
        let step = usize::try_from(age.as_nanos() / dt_ns).unwrap_or(usize::MAX);
        match snap.tail_margin.get(step) {
            None => fallback(ShiftedPastHorizon),
            Some(m) if !(*m >= 0.0) => fallback(GuardrailOnShiftedPlan),
            Some(_) => ActionSource::Plan { step, age },
        }
    }

    fn clamp_fallback(&mut self) {
        for ((x, lo), hi) in self.fallback.iter_mut().zip(&self.lower).zip(&self.upper) {
            *x = x.clamp(*lo, *hi);
        }
    }
}

impl Drop for Controller {
    /// Stops the planner thread and waits for its current planning call.
    fn drop(&mut self) {
        if let Some(link) = self.link.take() {
            link.shutdown();
        }
    }
}

/// What can be checked of a planner against the model (`A` actions, `P`
/// readouts): its objective's readouts and a constant fallback's length.
/// Plans are checked as they come.
fn check_planner(planner: &dyn Planner, actions: usize, readouts: usize) -> Result<(), PlanError> {
    let got = planner.objective().readout_dim();
    if got != readouts {
        return Err(PlanError::Objective(
            crate::objective::ObjectiveError::shape(format!(
                "the planner's objective was compiled for {got} readouts, the controller's model has {readouts}"
            )),
        ));
    }
    if let Fallback::Constant { action } = &planner.config().fallback
        && action.len() != actions
    {
        return Err(PlanError::Config(format!(
            "the planner's fallback has {} actions, the controller's model has {actions}",
            action.len()
        )));
    }
    Ok(())
}

/// The control side's fallback action before any observation, and the
/// observation index of each held action.
fn resolve_fallback(
    fallback: &Fallback,
    model: &ModelSpec,
) -> Result<(Vec<Real>, Vec<usize>), PlanError> {
    let a = model.action_dim();
    match fallback {
        Fallback::Zero => Ok((vec![0.0; a], Vec::new())),
        Fallback::Constant { action } => {
            if action.len() != a || action.iter().any(|x| !x.is_finite()) {
                return Err(PlanError::Config(format!(
                    "controller fallback action must have {a} finite values, got {action:?}"
                )));
            }
            Ok((action.clone(), Vec::new()))
        }
        Fallback::Hold { readouts } => {
            if readouts.len() != a {
                return Err(PlanError::Config(format!(
                    "controller fallback hold names {} readouts, the model has {a} actions",
                    readouts.len()
                )));
            }
            let hold = readouts
                .iter()
                .map(|r| {
                    model.observations.iter().position(|o| o == r).ok_or_else(|| {
                        PlanError::Config(format!(
                            "controller fallback hold: '{r}' is not an observation of model '{}', \
                             so the control side cannot read it without the model; \
                             set ControllerConfig::fallback",
                            model.name
                        ))
                    })
                })
                .collect::<Result<_, _>>()?;
            Ok((vec![0.0; a], hold))
        }
    }
}

#[cfg(test)]
mod tests;
