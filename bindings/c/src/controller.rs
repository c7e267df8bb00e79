//! `TelicController`: the real-time controller, as `telic.Controller` in
//! Python. A planner thread re-plans on the newest observation; `observe`
//! and `action` never wait for it and do not allocate.

use crate::error::{Error, Handle, TelicStatus, with_handle};
use crate::ffi::{buffer, check_out, optional_text, values, write};
use crate::planner::{TelicPlanner, take_from};
use std::ffi::c_char;
use std::time::{Duration, Instant};
use telic::controller::{
    ActionSource, Controller, ControllerConfig, ControllerMetrics, FallbackReason,
};

/// A real-time controller and its planner thread. Opaque.
#[derive(Debug)]
pub struct TelicController {
    inner: Controller,
    /// Action length `A`.
    actions: usize,
    dead: bool,
}

impl Handle for TelicController {
    const WHAT: &'static str = "controller";
    fn is_dead(&self) -> bool {
        self.dead
    }
    fn kill(&mut self) {
        self.dead = true;
    }
}

/// Where an action came from: a step of the newest plan, or the fallback
/// and why (the reasons of `telic.Controller.action` in Python).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TelicActionSource {
    /// A step of the newest plan.
    Plan = 0,
    /// Fallback: no planning call has finished since the (re)start.
    NoPlanYet = 1,
    /// Fallback: the newest plan is older than `max_plan_age_ms`.
    Stale = 2,
    /// Fallback: the newest planning call failed (see
    /// `telic_controller_planner_error`); the planner keeps running.
    PlannerFailed = 3,
    /// Fallback: the planner thread died; `telic_controller_restart`.
    PlannerDead = 4,
    /// Fallback: the planner found no feasible plan (its own fallback).
    NoFeasiblePlan = 5,
    /// Fallback: more time passed since the observation than the plan covers.
    ShiftedPastHorizon = 6,
    /// Fallback: a step of the plan still ahead breaks a guardrail.
    GuardrailOnShiftedPlan = 7,
}

/// Number of `TelicActionSource` values: the length of
/// `TelicControllerMetrics::reads`.
pub const TELIC_ACTION_SOURCE_COUNT: usize = 8;

impl From<ActionSource> for TelicActionSource {
    fn from(s: ActionSource) -> Self {
        match s {
            ActionSource::Plan { .. } => Self::Plan,
            ActionSource::Fallback(r) => match r {
                FallbackReason::NoPlanYet => Self::NoPlanYet,
                FallbackReason::Stale => Self::Stale,
                FallbackReason::PlannerFailed => Self::PlannerFailed,
                FallbackReason::PlannerDead => Self::PlannerDead,
                FallbackReason::NoFeasiblePlan => Self::NoFeasiblePlan,
                FallbackReason::ShiftedPastHorizon => Self::ShiftedPastHorizon,
                FallbackReason::GuardrailOnShiftedPlan => Self::GuardrailOnShiftedPlan,
            },
        }
    }
}

const SOURCE_NAMES: [&std::ffi::CStr; TELIC_ACTION_SOURCE_COUNT] = [
    c"plan",
    c"no_plan_yet",
    c"stale",
    c"planner_failed",
    c"planner_dead",
    c"no_feasible_plan",
    c"shifted_past_horizon",
    c"guardrail_on_shifted_plan",
];

/// The name of action source `source` (a `TelicActionSource` value), as
/// Python names it: `"plan"`, `"no_plan_yet"`, `"stale"`, … and
/// `"unknown"` for any other number. A static string, never freed.
/// Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn telic_action_source_name(source: i32) -> *const c_char {
    usize::try_from(source)
        .ok()
        .and_then(|i| SOURCE_NAMES.get(i))
        .map_or(c"unknown".as_ptr(), |s| s.as_ptr())
}

/// What `telic_controller_action` says besides the action.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TelicActionInfo {
    /// Where the action came from.
    pub source: TelicActionSource,
    /// For a plan step: steps since the observation the plan starts at (0 otherwise).
    pub step: usize,
    /// For a plan step: seconds since that observation (negative otherwise).
    pub age_seconds: f64,
}

/// Deadline and staleness figures since the controller started (across
/// restarts). Durations are in seconds; negative means "none yet".
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TelicControllerMetrics {
    /// Observations accepted by `telic_controller_observe`.
    pub observations: u64,
    /// Observations replaced by a newer one before the planner took them.
    pub observations_skipped: u64,
    /// Planning calls that returned a plan.
    pub plans_published: u64,
    /// Planning calls that returned an error.
    pub plans_failed: u64,
    /// Planning calls longer than one model time step.
    pub plans_late: u64,
    /// Wall-clock time of the latest planning call (negative: none yet).
    pub last_plan_latency_seconds: f64,
    /// Longest planning call.
    pub max_plan_latency_seconds: f64,
    /// Calls to `telic_controller_action`.
    pub control_reads: u64,
    /// Control reads by source, indexed by `TelicActionSource` (`reads[0]`
    /// are the plan steps, the others fallbacks by reason).
    pub reads: [u64; TELIC_ACTION_SOURCE_COUNT],
    /// Age of the newest plan at the latest control read (negative: none).
    pub latest_plan_age_seconds: f64,
    /// Largest plan age seen at a control read.
    pub max_plan_age_seconds: f64,
    /// Calls to `telic_controller_restart`.
    pub planner_restarts: u64,
    /// True while the planner thread runs.
    pub planner_alive: bool,
}

impl From<&ControllerMetrics> for TelicControllerMetrics {
    fn from(m: &ControllerMetrics) -> Self {
        let secs = |d: Option<Duration>| d.map_or(-1.0, |d| d.as_secs_f64());
        let f = &m.fallback_reads;
        Self {
            observations: m.observations,
            observations_skipped: m.observations_skipped,
            plans_published: m.plans_published,
            plans_failed: m.plans_failed,
            plans_late: m.plans_late,
            last_plan_latency_seconds: secs(m.last_plan_latency),
            max_plan_latency_seconds: m.max_plan_latency.as_secs_f64(),
            control_reads: m.control_reads,
            reads: [
                m.plan_reads,
                f.no_plan_yet,
                f.stale,
                f.planner_failed,
                f.planner_dead,
                f.no_feasible_plan,
                f.shifted_past_horizon,
                f.guardrail_on_shifted_plan,
            ],
            latest_plan_age_seconds: secs(m.latest_plan_age),
            max_plan_age_seconds: m.max_plan_age.as_secs_f64(),
            planner_restarts: m.planner_restarts,
            planner_alive: m.planner_alive,
        }
    }
}

/// Starts a controller: a planner thread (`telic-planner`) that runs
/// `planner` on the newest observation.
///
/// `config_toml`: the controller's settings as TOML, or NULL for the
/// defaults: `max_plan_age_ms` (oldest plan acted on, default 100) and
/// `fallback` (e.g. `fallback = { kind = "zero" }`; default: the
/// planner's). Settings are read first: a refused one leaves the planner
/// as it was. Then the controller takes the planner over: from then on,
/// whether or not starting succeeds, `planner` no longer plans (calls on it
/// return `CONFIG`) but is still the caller's to free. On success `*out` is
/// a new controller the caller ends with `telic_controller_stop`.
///
/// Errors: `NULL_POINTER`, `INVALID_INPUT`, `CONFIG` (settings, a planner
/// already handed over, a fallback the control side cannot compute),
/// `DEAD`. Not thread-safe with respect to `planner`.
///
/// # Safety
/// `planner` is null or a live planner no other thread uses; `config_toml`
/// is null or a NUL-terminated string; `out` is null or valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn telic_controller_start(
    planner: *mut TelicPlanner,
    config_toml: *const c_char,
    out: *mut *mut TelicController,
) -> TelicStatus {
    crate::error::guard(|| {
        // SAFETY: the caller's contract on `config_toml`.
        let text = unsafe { optional_text(config_toml, "config_toml") }?;
        let config = read_config(text.unwrap_or(""))?;
        check_out(out, "out")?;
        // SAFETY: the caller's contract on `planner`.
        let (inner, spec) = unsafe { take_from(planner) }?;
        let inner = Controller::spawn(inner, &spec, config)?;
        let ptr = Box::into_raw(Box::new(TelicController {
            inner,
            actions: spec.action_dim(),
            dead: false,
        }));
        // SAFETY: the caller's contract on `out`, checked non-null above.
        unsafe { write(out, ptr, "out") }
    })
}

fn read_config(text: &str) -> Result<ControllerConfig, Error> {
    let config: ControllerConfig =
        toml::from_str(text).map_err(|e| Error::config(format!("config_toml: {e}")))?;
    config.validate().map_err(Error::config)?;
    Ok(config)
}

/// Hands the newest observation (`len` = O values) to the planner thread,
/// stamped with the current time; never waits, does not allocate.
///
/// Errors: `NULL_POINTER`, `INVALID_INPUT` (length, NaN, infinity: the
/// controller keeps what it had), `DEAD`. Not thread-safe: one thread at a
/// time per controller (the planner thread is the controller's own).
///
/// # Safety
/// `controller` is null or a live controller; `obs` is null or valid for
/// `len` reads.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn telic_controller_observe(
    controller: *mut TelicController,
    obs: *const f64,
    len: usize,
) -> TelicStatus {
    let call = |c: &mut TelicController| {
        // SAFETY: the caller's contract on `obs`.
        let obs = unsafe { values(obs, len, "obs") }?;
        Ok(c.inner.observe(obs, Instant::now())?)
    };
    // SAFETY: the caller's contract on `controller`.
    unsafe { with_handle(controller, call) }
}

/// Writes the action to apply now into `action` (`len` must be A): a step
/// of the newest plan, or the fallback; `info` (may be NULL) says which.
/// Never waits, does not allocate, always has an action for a live
/// controller.
///
/// Errors: `NULL_POINTER`, `INVALID_INPUT` (length), `DEAD`. Not
/// thread-safe.
///
/// # Safety
/// `controller` is null or a live controller; `action` is null or valid for
/// `len` writes; `info` is null or valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn telic_controller_action(
    controller: *mut TelicController,
    action: *mut f64,
    len: usize,
    info: *mut TelicActionInfo,
) -> TelicStatus {
    let call = |c: &mut TelicController| {
        let a = c.actions;
        // SAFETY: the caller's contract on `action`.
        let out = unsafe { buffer(action, len, a, "action") }?;
        let act = c.inner.action(Instant::now());
        out.copy_from_slice(act.values);
        let (step, age_seconds) = match act.source {
            ActionSource::Plan { step, age } => (step, age.as_secs_f64()),
            ActionSource::Fallback(_) => (0, -1.0),
        };
        if !info.is_null() {
            let i = TelicActionInfo {
                source: act.source.into(),
                step,
                age_seconds,
            };
            // SAFETY: the caller's contract on `info`.
            unsafe { write(info, i, "info") }?;
        }
        Ok(())
    };
    // SAFETY: the caller's contract on `controller`.
    unsafe { with_handle(controller, call) }
}

/// Writes the controller's deadline and staleness figures into `*out`.
///
/// Errors: `NULL_POINTER`, `DEAD`. Not thread-safe.
///
/// # Safety
/// `controller` is null or a live controller; `out` is null or valid for
/// one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn telic_controller_metrics(
    controller: *mut TelicController,
    out: *mut TelicControllerMetrics,
) -> TelicStatus {
    let call = |c: &mut TelicController| {
        let m = TelicControllerMetrics::from(&c.inner.metrics());
        // SAFETY: the caller's contract on `out`.
        unsafe { write(out, m, "out") }
    };
    // SAFETY: the caller's contract on `controller`.
    unsafe { with_handle(controller, call) }
}

/// Copies the latest planning error or planner-thread panic, as text, into
/// `buf` (`cap` bytes, NUL-terminated, cut short if needed; an empty string
/// when there is none) and its full size with the NUL into `*needed` (may
/// be NULL). `buf` may be NULL with `cap` 0 to ask for the size.
///
/// Errors: `NULL_POINTER`, `DEAD`. Not thread-safe.
///
/// # Safety
/// `controller` is null or a live controller; `buf` is null or valid for
/// `cap` byte writes; `needed` is null or valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn telic_controller_planner_error(
    controller: *mut TelicController,
    buf: *mut c_char,
    cap: usize,
    needed: *mut usize,
) -> TelicStatus {
    let call = |c: &mut TelicController| {
        let text = c
            .inner
            .metrics()
            .last_error
            .unwrap_or_default()
            .replace('\0', " ");
        if !needed.is_null() {
            // SAFETY: the caller's contract on `needed`.
            unsafe { write(needed, text.len() + 1, "needed") }?;
        }
        if cap == 0 {
            return Ok(());
        }
        if buf.is_null() {
            return Err(Error::null("buf"));
        }
        let n = text.len().min(cap - 1);
        // SAFETY: `buf` is valid for `cap` writes (the caller's
        // contract) and `n + 1 <= cap`; `text` is a separate allocation.
        unsafe {
            std::ptr::copy_nonoverlapping(text.as_ptr().cast::<c_char>(), buf, n);
            buf.add(n).write(0);
        }
        Ok(())
    };
    // SAFETY: the caller's contract on `controller`.
    unsafe { with_handle(controller, call) }
}

/// Replaces the planner thread (e.g. after it died) by one running
/// `planner`, which the controller takes over as `telic_controller_start`
/// does; the new thread plans from the newest observation right away. The
/// old thread is stopped first: this waits for its current planning call.
/// A planner that does not fit the model is refused and the old one kept
/// (the refused planner is then used up: free its handle).
///
/// Errors: `NULL_POINTER`, `CONFIG`, `DEAD`. Not thread-safe.
///
/// # Safety
/// `controller` is null or a live controller; `planner` is null or a live
/// planner; no other thread uses either.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn telic_controller_restart(
    controller: *mut TelicController,
    planner: *mut TelicPlanner,
) -> TelicStatus {
    let call = |c: &mut TelicController| {
        // SAFETY: the caller's contract on `planner`.
        let (inner, _) = unsafe { take_from(planner) }?;
        Ok(c.inner.restart(inner)?)
    };
    // SAFETY: the caller's contract on `controller`.
    unsafe { with_handle(controller, call) }
}

/// Stops the planner thread (waiting for its current planning call to end)
/// and frees the controller, dead or alive. NULL is ignored. Not
/// thread-safe: no other call may use it meanwhile or after.
///
/// # Safety
/// `controller` is null or a live controller not stopped before.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn telic_controller_stop(controller: *mut TelicController) {
    if controller.is_null() {
        return;
    }
    // Joining the thread cannot panic here (its panics are caught inside
    // it), but nothing may unwind into C.
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        // SAFETY: made by `Box::into_raw` in `telic_controller_start` and
        // not stopped before (the caller's contract).
        drop(unsafe { Box::from_raw(controller) });
    }));
}
