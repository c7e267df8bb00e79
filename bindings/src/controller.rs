//! `telic.Controller`: planning on a thread of its own, actions on demand.

use crate::convert::{Array, array, from_plain};
use crate::errors::{Kind, error, plan_error};
use crate::planner::PyPlanner;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::sync::Mutex;
use std::time::Instant;
use telic::ModelSpec;
use telic::controller::{
    ActionSource, Controller, ControllerConfig, ControllerMetrics, FallbackReason,
};

/// A planner re-planning continuously on a thread of its own from the newest
/// observation; `action()` never waits for it.
#[pyclass(name = "Controller", module = "telic._native", frozen)]
pub(crate) struct PyController {
    inner: Mutex<Controller>,
    spec: ModelSpec,
}

impl PyController {
    fn lock(&self) -> PyResult<std::sync::MutexGuard<'_, Controller>> {
        self.inner.lock().map_err(|_| {
            error(
                Kind::Config,
                "the controller was poisoned by an earlier failure",
            )
        })
    }
}

fn reason(r: FallbackReason) -> &'static str {
    match r {
        FallbackReason::NoPlanYet => "no_plan_yet",
        FallbackReason::Stale => "stale",
        FallbackReason::PlannerFailed => "planner_failed",
        FallbackReason::PlannerDead => "planner_dead",
        FallbackReason::NoFeasiblePlan => "no_feasible_plan",
        FallbackReason::ShiftedPastHorizon => "shifted_past_horizon",
        FallbackReason::GuardrailOnShiftedPlan => "guardrail_on_shifted_plan",
    }
}

#[pymethods]
impl PyController {
    /// Starts the planner thread with `planner`, which the controller takes
    /// over. `max_plan_age_ms` and `fallback` are the controller's settings.
    #[new]
    #[pyo3(signature = (planner, **config))]
    fn new(planner: &PyPlanner, config: Option<&Bound<'_, PyDict>>) -> PyResult<Self> {
        let config: ControllerConfig = match config {
            Some(c) => from_plain(c.as_any(), "controller config")?,
            None => ControllerConfig::default(),
        };
        config.validate().map_err(|m| error(Kind::Config, m))?;
        let spec = planner.spec.clone();
        let inner = planner.take()?;
        let controller = Controller::spawn(inner, &spec, config).map_err(plan_error)?;
        Ok(Self {
            inner: Mutex::new(controller),
            spec,
        })
    }

    /// Hands the newest observation, (O,) or (1, O), to the planner thread;
    /// never waits.
    fn observe(&self, obs: &Bound<'_, PyAny>) -> PyResult<()> {
        let obs =
            Array::read(obs, "obs")?.single("obs", self.spec.obs_dim(), &self.spec.observations)?;
        self.lock()?
            .observe(&obs, Instant::now())
            .map_err(plan_error)
    }

    /// The action to apply now (A,) and where it came from: `"plan"` or the
    /// fallback's reason (`"no_plan_yet"`, `"stale"`, `"planner_failed"`,
    /// `"planner_dead"`, `"no_feasible_plan"`, `"shifted_past_horizon"`,
    /// `"guardrail_on_shifted_plan"`).
    fn action<'py>(&self, py: Python<'py>) -> PyResult<(Bound<'py, PyAny>, &'static str)> {
        let mut c = self.lock()?;
        let a = c.action(Instant::now());
        let source = match a.source {
            ActionSource::Plan { .. } => "plan",
            ActionSource::Fallback(r) => reason(r),
        };
        let values = a.values.to_vec();
        drop(c);
        let n = values.len();
        Ok((array(py, values, &[n])?, source))
    }

    /// Replaces a dead (or live) planner thread by one running `planner`.
    fn restart(&self, py: Python<'_>, planner: &PyPlanner) -> PyResult<()> {
        let inner = planner.take()?;
        // Joining the old thread waits for its planning call to end.
        py.detach(|| {
            let mut c = self.inner.lock().map_err(|_| {
                telic::PlanError::Config("the controller was poisoned by an earlier failure".into())
            })?;
            c.restart(inner)
        })
        .map_err(plan_error)
    }

    /// Deadline and staleness figures since the controller started.
    fn metrics<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let m: ControllerMetrics = self.lock()?.metrics();
        let d = PyDict::new(py);
        let secs = |x: std::time::Duration| x.as_secs_f64();
        d.set_item("observations", m.observations)?;
        d.set_item("observations_skipped", m.observations_skipped)?;
        d.set_item("plans_published", m.plans_published)?;
        d.set_item("plans_failed", m.plans_failed)?;
        d.set_item("plans_late", m.plans_late)?;
        d.set_item("last_plan_latency", m.last_plan_latency.map(secs))?;
        d.set_item("max_plan_latency", secs(m.max_plan_latency))?;
        d.set_item("control_reads", m.control_reads)?;
        d.set_item("plan_reads", m.plan_reads)?;
        d.set_item(
            "fallback_reads",
            crate::convert::to_plain(py, &m.fallback_reads)?,
        )?;
        d.set_item("latest_plan_age", m.latest_plan_age.map(secs))?;
        d.set_item("max_plan_age", secs(m.max_plan_age))?;
        d.set_item("planner_restarts", m.planner_restarts)?;
        d.set_item("planner_alive", m.planner_alive)?;
        d.set_item("last_error", m.last_error)?;
        Ok(d)
    }

    /// The newest plan's predicted readouts (H, P), if there is one.
    fn predicted_readouts<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let p = self.spec.readout_dim();
        let y = self.lock()?.predicted_readouts().map(<[f64]>::to_vec);
        y.map(|y| {
            let h = y.len().checked_div(p).unwrap_or(0);
            array(py, y, &[h, p])
        })
        .transpose()
    }
}
