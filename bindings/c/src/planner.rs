//! `TelicPlanner`: a planner over a model, configured from the `[objective]`
//! and `[planner]` sections of a scenario file, as `telic.Planner` in Python.

use crate::error::{Error, Handle, TelicStatus, guard, with_handle};
use crate::ffi::{buffer, check_out, text, values, write};
use crate::model::TelicModel;
use std::ffi::c_char;
use std::path::Path;
use telic::{ModelSpec, Plan, PlanStatus, Planner};
use telic_sim::scenario::PlanningSections;

const MOVED: &str = "this planner was handed to a controller, which now runs it; \
     make another planner to plan directly";

/// A planner: its world model, objective, settings and warm start. Opaque.
#[derive(Debug)]
pub struct TelicPlanner {
    /// `None` once handed to a controller.
    inner: Option<PlannerBox>,
    pub(crate) spec: ModelSpec,
    horizon: usize,
    dead: bool,
    /// Test hook: panic inside the next plan call.
    #[cfg(feature = "fault-injection")]
    panic_next_plan: bool,
}

/// `Box<dyn Planner>` with a `Debug` that names the solver.
struct PlannerBox(Box<dyn Planner>);

impl std::fmt::Debug for PlannerBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Planner({:?})", self.0.config().kind)
    }
}

impl Handle for TelicPlanner {
    const WHAT: &'static str = "planner";
    fn is_dead(&self) -> bool {
        self.dead
    }
    fn kill(&mut self) {
        self.dead = true;
    }
}

impl TelicPlanner {
    fn planner(&mut self) -> Result<&mut dyn Planner, Error> {
        match self.inner.as_mut() {
            Some(p) => Ok(p.0.as_mut()),
            None => Err(Error::config(MOVED)),
        }
    }

    /// Takes the planner out, for a controller; the handle then refuses calls.
    pub(crate) fn take(&mut self) -> Result<Box<dyn Planner>, Error> {
        self.inner
            .take()
            .map(|p| p.0)
            .ok_or_else(|| Error::config(MOVED))
    }
}

/// How a successful plan call ended (`PlanStatus` in Rust).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TelicPlanStatus {
    /// The normal outcome: every iteration ran, the plan is feasible.
    Completed = 0,
    /// A gradient planner met its tolerance with a feasible plan.
    Converged = 1,
    /// The time budget ended first; the best feasible plan so far.
    OutOfTime = 2,
    /// No plan kept every guardrail: the action is the safe fallback.
    NoFeasiblePlan = 3,
}

impl From<PlanStatus> for TelicPlanStatus {
    fn from(s: PlanStatus) -> Self {
        match s {
            PlanStatus::Completed => Self::Completed,
            PlanStatus::Converged => Self::Converged,
            PlanStatus::OutOfTime => Self::OutOfTime,
            PlanStatus::NoFeasiblePlan => Self::NoFeasiblePlan,
        }
    }
}

/// The figures of one plan call besides its actions.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TelicPlanResult {
    /// How the call ended.
    pub status: TelicPlanStatus,
    /// Total task cost of the plan.
    pub cost: f64,
    /// Smallest buffered guardrail margin over the horizon (positive is
    /// safe; +infinity without guardrails).
    pub worst_margin: f64,
    /// Sum of guardrail violations along the plan (0 when feasible).
    pub violation: f64,
    /// Samples of the last iteration that kept every guardrail.
    pub feasible_samples: usize,
    /// Iterations run.
    pub iterations: usize,
    /// Actuation delay, in control periods, planned through.
    pub delay_steps: usize,
    /// Wall-clock time of the call inside the engine, in seconds.
    pub elapsed_seconds: f64,
}

impl TelicPlanResult {
    fn of(plan: &Plan) -> Self {
        Self {
            status: plan.status.into(),
            cost: plan.cost,
            worst_margin: plan.worst_margin(),
            violation: plan.violation,
            feasible_samples: plan.feasible_samples,
            iterations: plan.iterations,
            delay_steps: plan.delay_steps,
            elapsed_seconds: plan.elapsed.as_secs_f64(),
        }
    }
}

/// The sizes of a planner's inputs and outputs.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TelicPlannerDims {
    /// Observation length `O`.
    pub observations: usize,
    /// Action length `A`.
    pub actions: usize,
    /// Horizon `H` (the actions buffer of a plan holds `H×A` values).
    pub horizon: usize,
    /// Number of readouts `P`.
    pub readouts: usize,
    /// Number of cost terms.
    pub terms: usize,
    /// Number of guardrails.
    pub guardrails: usize,
}

/// Makes a planner over `model`, configured by TOML text in the scenario
/// file's schema: the `[objective]` (cost terms, guardrails, bodies) and
/// `[planner]` sections alone, or a whole scenario file (with `[scene]`), of
/// which these two sections are used. Unknown keys, unknown readouts and bad
/// values are errors naming them.
///
/// On success `*out` is a new planner that the caller frees with
/// `telic_planner_free`; on error `*out` is untouched. The model may be
/// freed afterwards: the planner builds and owns its own instance.
///
/// Errors: `NULL_POINTER`, `INVALID_INPUT` (not UTF-8), `CONFIG` (TOML,
/// objective or settings), `MODEL`, `SIM`. Thread-safe as long as no other
/// thread frees `model` meanwhile.
///
/// # Safety
/// `model` is null or a live model; `settings_toml` is null or a
/// NUL-terminated string; `out` is null or valid for writing one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn telic_planner_new(
    model: *const TelicModel,
    settings_toml: *const c_char,
    out: *mut *mut TelicPlanner,
) -> TelicStatus {
    guard(|| {
        // SAFETY: the caller's contract: null or a live model.
        let model = unsafe { model.as_ref() }.ok_or_else(|| Error::null("model"))?;
        // SAFETY: the caller's contract on `settings_toml`.
        let toml_text = unsafe { text(settings_toml, "settings_toml") }?;
        check_out(out, "out")?;
        let planner = build(model, toml_text)?;
        let ptr = Box::into_raw(Box::new(planner));
        // SAFETY: the caller's contract on `out`, checked non-null above.
        unsafe { write(out, ptr, "out") }
    })
}

/// The one way a planner is made: sections, model, compiled objective.
fn build(model: &TelicModel, toml_text: &str) -> Result<TelicPlanner, Error> {
    let sections = PlanningSections::from_toml(toml_text, "settings_toml", Path::new("."))?;
    let instance = model.source.build()?;
    let objective = sections.objective.compile(instance.spec())?;
    let horizon = sections.planner.horizon;
    let planner = telic::build(instance, objective, sections.planner)?;
    Ok(TelicPlanner {
        inner: Some(PlannerBox(planner)),
        spec: model.spec.clone(),
        horizon,
        dead: false,
        #[cfg(feature = "fault-injection")]
        panic_next_plan: false,
    })
}

/// Plans from observation `obs` (`obs_len` = O values) and writes the
/// action to apply now into `action` (`action_len` must be A) and, unless
/// `actions` is NULL with `actions_len` 0, the whole plan into `actions`
/// (`actions_len` must be H×A, row-major). `result` (may be NULL) receives
/// the status, cost and worst margin. Running out of time or finding no
/// feasible plan is a status of a successful call (the action is then the
/// safe fallback); only bad input or a failed model call is an error.
///
/// Every buffer is checked before planning, so a refused call leaves the
/// planner (its warm start) as it was. Does not allocate after the first
/// call. Caller-owned buffers are only used during the call.
///
/// Errors: `NULL_POINTER`, `INVALID_INPUT` (lengths, NaN or infinity in
/// `obs`), `CONFIG` (planner handed to a controller), `MODEL`, `PANIC`,
/// `DEAD`. Not thread-safe: one thread at a time per planner.
///
/// # Safety
/// `planner` is null or a live planner; `obs` is null or valid for
/// `obs_len` reads; `action` is null or valid for `action_len` writes;
/// `actions` is null or valid for `actions_len` writes; `result` is null or
/// valid for one write; the output buffers do not overlap.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn telic_planner_plan(
    planner: *mut TelicPlanner,
    obs: *const f64,
    obs_len: usize,
    action: *mut f64,
    action_len: usize,
    actions: *mut f64,
    actions_len: usize,
    result: *mut TelicPlanResult,
) -> TelicStatus {
    let call = |p: &mut TelicPlanner| {
        let a = p.spec.action_dim();
        // SAFETY: the caller's contract on each buffer.
        let (obs, action) = unsafe {
            (
                values(obs, obs_len, "obs")?,
                buffer(action, action_len, a, "action")?,
            )
        };
        let actions = if actions.is_null() && actions_len == 0 {
            None
        } else {
            // SAFETY: the caller's contract on `actions`.
            Some(unsafe { buffer(actions, actions_len, p.horizon * a, "actions")? })
        };
        #[cfg(feature = "fault-injection")]
        if std::mem::take(&mut p.panic_next_plan) {
            panic!("injected by fault::panic_in_next_plan");
        }
        let plan = p.planner()?.plan(obs)?;
        action.copy_from_slice(&plan.action);
        if let Some(actions) = actions {
            actions.copy_from_slice(&plan.actions);
        }
        if !result.is_null() {
            // SAFETY: the caller's contract on `result`.
            unsafe { write(result, TelicPlanResult::of(plan), "result") }?;
        }
        Ok(())
    };
    // SAFETY: the caller's contract on `planner`.
    unsafe { with_handle(planner, call) }
}

/// Sets the target of cost term `term` (a readout, action or latent term):
/// `len` values, as many as the term measures.
///
/// Errors: `NULL_POINTER`, `INVALID_INPUT` (NaN, infinity, not UTF-8),
/// `CONFIG` (unknown term, wrong length, an action-rate term). Not
/// thread-safe; allocates nothing on the planning path.
///
/// # Safety
/// `planner` is null or a live planner; `term` is null or a NUL-terminated
/// string; `target` is null or valid for `len` reads.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn telic_planner_set_target(
    planner: *mut TelicPlanner,
    term: *const c_char,
    target: *const f64,
    len: usize,
) -> TelicStatus {
    let call = |p: &mut TelicPlanner| {
        // SAFETY: the caller's contract on `term` and `target`.
        let (term, target) = unsafe { (text(term, "term")?, values(target, len, "target")?) };
        Ok(p.planner()?.objective_mut().set_target(term, target)?)
    };
    // SAFETY: the caller's contract on `planner`.
    unsafe { with_handle(planner, call) }
}

/// Gives the goal of term `term` as a target observation (`len` = O
/// values): a latent term's goal latent, or a readout term's target decoded
/// from it by the model. Allocates: not for the per-step path.
///
/// Errors: `NULL_POINTER`, `INVALID_INPUT` (length, NaN, infinity),
/// `CONFIG` (unknown term, an action term), `MODEL`. Not thread-safe.
///
/// # Safety
/// As `telic_planner_set_target`, with `obs` for `target`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn telic_planner_set_goal_observation(
    planner: *mut TelicPlanner,
    term: *const c_char,
    obs: *const f64,
    len: usize,
) -> TelicStatus {
    let call = |p: &mut TelicPlanner| {
        // SAFETY: the caller's contract on `term` and `obs`.
        let (term, obs) = unsafe { (text(term, "term")?, values(obs, len, "obs")?) };
        Ok(p.planner()?.set_goal_observation(term, obs)?)
    };
    // SAFETY: the caller's contract on `planner`.
    unsafe { with_handle(planner, call) }
}

/// Forgets the warm start and the last action (e.g. at an episode start).
///
/// Errors: `NULL_POINTER`, `CONFIG` (handed to a controller), `DEAD`. Not
/// thread-safe.
///
/// # Safety
/// `planner` is null or a live planner.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn telic_planner_reset(planner: *mut TelicPlanner) -> TelicStatus {
    // SAFETY: the caller's contract on `planner`.
    unsafe {
        with_handle(planner, |p| {
            p.planner()?.reset();
            Ok(())
        })
    }
}

/// Replaces the seed of the sampling noise (and resets the warm start):
/// the same seed, settings and observations give bit-identical plans.
///
/// Errors: as `telic_planner_reset`. Not thread-safe.
///
/// # Safety
/// `planner` is null or a live planner.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn telic_planner_reseed(
    planner: *mut TelicPlanner,
    seed: u64,
) -> TelicStatus {
    // SAFETY: the caller's contract on `planner`.
    unsafe {
        with_handle(planner, |p| {
            p.planner()?.reseed(seed);
            Ok(())
        })
    }
}

/// Writes the planner's sizes into `*out` (the lengths `telic_planner_plan`
/// expects). Works on a planner handed to a controller too.
///
/// Errors: `NULL_POINTER`, `DEAD`. Not thread-safe.
///
/// # Safety
/// `planner` is null or a live planner; `out` is null or valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn telic_planner_dims(
    planner: *mut TelicPlanner,
    out: *mut TelicPlannerDims,
) -> TelicStatus {
    let call = |p: &mut TelicPlanner| {
        let (terms, guardrails) = match &p.inner {
            Some(inner) => (
                inner.0.objective().term_names().count(),
                inner.0.objective().guardrail_names().count(),
            ),
            None => (0, 0),
        };
        let dims = TelicPlannerDims {
            observations: p.spec.obs_dim(),
            actions: p.spec.action_dim(),
            horizon: p.horizon,
            readouts: p.spec.readout_dim(),
            terms,
            guardrails,
        };
        // SAFETY: the caller's contract on `out`.
        unsafe { write(out, dims, "out") }
    };
    // SAFETY: the caller's contract on `planner`.
    unsafe { with_handle(planner, call) }
}

/// Frees a planner (dead, handed to a controller or not). NULL is
/// ignored. Not thread-safe: no other call may use it meanwhile or after.
///
/// # Safety
/// `planner` is null or a live planner not freed before.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn telic_planner_free(planner: *mut TelicPlanner) {
    if planner.is_null() {
        return;
    }
    // A planner's drop joins its rollout threads; nothing may unwind into C.
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        // SAFETY: made by `Box::into_raw` in `telic_planner_new` and not
        // freed before (the caller's contract).
        drop(unsafe { Box::from_raw(planner) });
    }));
}

/// Test hook: the next `telic_planner_plan` on `planner` panics inside the
/// call, after its buffers are checked.
///
/// # Safety
/// `planner` is null or a live planner that no other thread uses.
#[cfg(feature = "fault-injection")]
pub unsafe fn panic_in_next_plan(planner: *mut TelicPlanner) {
    // SAFETY: the caller's contract.
    if let Some(p) = unsafe { planner.as_mut() } {
        p.panic_next_plan = true;
    }
}

/// The planner behind `ptr`, taken out for a controller: the handle stays
/// the caller's to free but no longer plans.
///
/// # Safety
/// `ptr` is null or a live planner that no other thread uses.
pub(crate) unsafe fn take_from(
    ptr: *mut TelicPlanner,
) -> Result<(Box<dyn Planner>, ModelSpec), Error> {
    // SAFETY: the caller's contract.
    let p = unsafe { ptr.as_mut() }.ok_or_else(|| Error::null("planner"))?;
    if p.dead {
        return Err(Error::new(
            TelicStatus::Dead,
            "this planner died in an earlier panic: free it and make another",
        ));
    }
    Ok((p.take()?, p.spec.clone()))
}
