//! `telic.Planner` and `telic.Plan`.

use crate::convert::{Array, array, from_plain};
use crate::errors::{Kind, error, plan_error};
use crate::model::PyWorldModel;
use pyo3::prelude::*;
use std::sync::Mutex;
use telic::{ModelSpec, ObjectiveSpec, Plan, PlanError, Planner, PlannerConfig};

const MOVED: &str = "this planner was handed to a Controller, which now runs it; \
     make another Planner to plan directly";

/// A planner over a world model, an objective and a configuration.
#[pyclass(name = "Planner", module = "telic._native", frozen)]
pub(crate) struct PyPlanner {
    /// `None` once the planner was handed to a `Controller`.
    inner: Mutex<Option<Box<dyn Planner>>>,
    pub(crate) spec: ModelSpec,
    config: PlannerConfig,
    term_names: Vec<String>,
    guardrail_names: Vec<String>,
    /// Guardrails that the safety buffers and model-error margins make
    /// impossible to keep, one message each, found when it was built.
    warnings: Vec<String>,
}

impl PyPlanner {
    /// Wraps a built planner over a model of `spec`.
    pub(crate) fn wrap(planner: Box<dyn Planner>, spec: ModelSpec) -> Self {
        Self {
            warnings: planner
                .unsatisfiable_guardrails()
                .iter()
                .map(ToString::to_string)
                .collect(),
            config: planner.config().clone(),
            term_names: planner
                .objective()
                .term_names()
                .map(str::to_string)
                .collect(),
            guardrail_names: planner
                .objective()
                .guardrail_names()
                .map(str::to_string)
                .collect(),
            inner: Mutex::new(Some(planner)),
            spec,
        }
    }

    /// Runs `f` on the planner without the interpreter lock.
    fn with<R: Send>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&mut dyn Planner) -> Result<R, PlanError> + Send,
    ) -> PyResult<R> {
        py.detach(|| {
            let mut planner = self.inner.lock().map_err(|_| {
                PlanError::Config("the planner was poisoned by an earlier failure".into())
            })?;
            let Some(planner) = planner.as_mut() else {
                return Err(PlanError::Config(MOVED.into()));
            };
            f(planner.as_mut())
        })
        .map_err(plan_error)
    }

    /// Says each of [`Self::warnings`] as a `telic.errors.PlannerWarning`,
    /// once, when the planner is handed to Python.
    pub(crate) fn warn(self, py: Python<'_>) -> PyResult<Self> {
        if self.warnings.is_empty() {
            return Ok(self);
        }
        let category = py.import("telic.errors")?.getattr("PlannerWarning")?;
        for w in &self.warnings {
            let message = std::ffi::CString::new(w.replace('\0', " "))
                .map_err(|e| error(Kind::Config, e.to_string()))?;
            PyErr::warn(py, &category, &message, 1)?;
        }
        Ok(self)
    }

    /// Takes the planner out, for a `Controller`; this object then refuses calls.
    pub(crate) fn take(&self) -> PyResult<Box<dyn Planner>> {
        self.inner
            .lock()
            .ok()
            .and_then(|mut p| p.take())
            .ok_or_else(|| error(Kind::Config, MOVED))
    }
}

#[pymethods]
impl PyPlanner {
    #[new]
    #[pyo3(signature = (model, objective, config = None))]
    fn new(
        py: Python<'_>,
        model: &PyWorldModel,
        objective: &Bound<'_, PyAny>,
        config: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let spec: ObjectiveSpec = from_plain(objective, "objective")?;
        let config: PlannerConfig = match config {
            Some(c) if !c.is_none() => from_plain(c, "config")?,
            _ => PlannerConfig::default(),
        };
        config.validate().map_err(|m| error(Kind::Config, m))?;
        let source = model.source.clone();
        let planner = py.detach(|| -> PyResult<Box<dyn Planner>> {
            let model = crate::model::build(&source)?;
            let objective = spec.compile(model.spec()).map_err(plan_error)?;
            telic::build(model, objective, config).map_err(plan_error)
        })?;
        Self::wrap(planner, model.spec.clone()).warn(py)
    }

    /// Plans from observation `obs`, (O,) or (1, O).
    fn plan(&self, py: Python<'_>, obs: &Bound<'_, PyAny>) -> PyResult<PyPlan> {
        let obs =
            Array::read(obs, "obs")?.single("obs", self.spec.obs_dim(), &self.spec.observations)?;
        let (h, a, p) = (
            self.config.horizon,
            self.spec.action_dim(),
            self.spec.readout_dim(),
        );
        self.with(py, |planner| {
            let plan = planner.plan(&obs)?;
            Ok(PyPlan::of(plan, h, a, p))
        })
    }

    /// Forgets the warm start and the last action (e.g. at an episode start).
    fn reset(&self, py: Python<'_>) -> PyResult<()> {
        self.with(py, |planner| {
            planner.reset();
            Ok(())
        })
    }

    /// Replaces the seed of the sampling noise (and resets the warm start).
    fn reseed(&self, py: Python<'_>, seed: u64) -> PyResult<()> {
        self.with(py, |planner| {
            planner.reseed(seed);
            Ok(())
        })
    }

    /// Sets the target of cost term `term` (readout, action or latent term).
    fn set_target(&self, py: Python<'_>, term: String, target: &Bound<'_, PyAny>) -> PyResult<()> {
        let target = Array::read(target, "target")?;
        if target.shape.len() != 1 {
            return Err(error(
                Kind::Input,
                format!(
                    "target must be one-dimensional, got shape {:?}",
                    target.shape
                ),
            ));
        }
        self.with(py, |planner| {
            planner.objective_mut().set_target(&term, &target.values)
        })
    }

    /// The current target of cost term `term` (None for an action-rate term).
    fn target<'py>(&self, py: Python<'py>, term: String) -> PyResult<Option<Bound<'py, PyAny>>> {
        let t = self.with(py, |planner| {
            if !planner.objective().term_names().any(|n| n == term) {
                return Err(PlanError::Objective(
                    telic::objective::ObjectiveError::BadValue {
                        message: format!("no cost term '{term}'"),
                    },
                ));
            }
            Ok(planner.objective().target(&term).map(<[f64]>::to_vec))
        })?;
        t.map(|t| {
            let n = t.len();
            array(py, t, &[n])
        })
        .transpose()
    }

    /// Gives the goal of term `term` as a target observation, (O,) or (1, O):
    /// a latent term's goal latent, or a readout term's target decoded from it.
    fn set_goal_observation(
        &self,
        py: Python<'_>,
        term: String,
        obs: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let obs =
            Array::read(obs, "obs")?.single("obs", self.spec.obs_dim(), &self.spec.observations)?;
        self.with(py, |planner| planner.set_goal_observation(&term, &obs))
    }

    /// Guardrails that this planner's safety buffers and model-error margins
    /// make impossible to keep from some step of the horizon on, one message
    /// each (empty when planning can work); also warned as
    /// `telic.errors.PlannerWarning` when the planner is made.
    #[getter]
    fn warnings(&self) -> Vec<String> {
        self.warnings.clone()
    }
    /// Names of the cost terms, the order of Plan.term_costs.
    #[getter]
    fn term_names(&self) -> Vec<String> {
        self.term_names.clone()
    }
    /// Names of the guardrails, the order of Plan.margins.
    #[getter]
    fn guardrail_names(&self) -> Vec<String> {
        self.guardrail_names.clone()
    }
    /// Readout names, the columns of Plan.readouts.
    #[getter]
    fn readout_names(&self) -> Vec<String> {
        self.spec.readouts.clone()
    }
    /// Action names, the columns of Plan.actions.
    #[getter]
    fn action_names(&self) -> Vec<String> {
        self.spec.actions.clone()
    }
    /// The configuration, as a dict of every setting.
    #[getter]
    fn config<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        crate::convert::to_plain(py, &self.config)
    }

    fn __repr__(&self) -> String {
        format!(
            "Planner({:?}, model='{}', horizon={}, samples={}, terms={:?}, guardrails={:?})",
            self.config.kind,
            self.spec.name,
            self.config.horizon,
            self.config.samples,
            self.term_names,
            self.guardrail_names
        )
    }
}

/// The outcome of one planning call, as numpy arrays.
#[pyclass(name = "Plan", module = "telic._native", frozen)]
pub(crate) struct PyPlan {
    status: telic::PlanStatus,
    action: Vec<f64>,
    actions: Vec<f64>,
    readouts: Vec<f64>,
    decoded: Vec<f64>,
    delay_steps: usize,
    cost: f64,
    term_costs: Vec<f64>,
    margins: Vec<f64>,
    violation: f64,
    feasible_samples: usize,
    iterations: usize,
    elapsed: f64,
    rollouts: Vec<f64>,
    rollout_costs: Vec<f64>,
    rollout_violations: Vec<f64>,
    h: usize,
    a: usize,
    p: usize,
}

impl PyPlan {
    fn of(plan: &Plan, h: usize, a: usize, p: usize) -> Self {
        Self {
            status: plan.status,
            action: plan.action.clone(),
            actions: plan.actions.clone(),
            readouts: plan.readouts.clone(),
            decoded: plan.decoded.clone(),
            delay_steps: plan.delay_steps,
            cost: plan.cost,
            term_costs: plan.term_costs.clone(),
            margins: plan.margins.clone(),
            violation: plan.violation,
            feasible_samples: plan.feasible_samples,
            iterations: plan.iterations,
            elapsed: plan.elapsed.as_secs_f64(),
            rollouts: plan.rollouts.clone(),
            rollout_costs: plan.rollout_costs.clone(),
            rollout_violations: plan.rollout_violations.clone(),
            h,
            a,
            p,
        }
    }
}

#[pymethods]
impl PyPlan {
    /// How the call ended: "completed" (the normal outcome), "converged",
    /// "out_of_time" (both feasible too) or "no_feasible_plan" (the action is
    /// the safe fallback).
    #[getter]
    fn status(&self) -> &'static str {
        match self.status {
            telic::PlanStatus::Completed => "completed",
            telic::PlanStatus::Converged => "converged",
            telic::PlanStatus::OutOfTime => "out_of_time",
            telic::PlanStatus::NoFeasiblePlan => "no_feasible_plan",
        }
    }
    /// True when the action comes from a plan that keeps every guardrail.
    #[getter]
    fn feasible(&self) -> bool {
        self.status.is_feasible()
    }
    /// The action to apply now (A,): the plan's first, or the safe fallback.
    #[getter]
    fn action<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        array(py, self.action.clone(), &[self.a])
    }
    /// The best action sequence (H, A).
    #[getter]
    fn actions<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        array(py, self.actions.clone(), &[self.h, self.a])
    }
    /// Predicted readouts after each action (H, P).
    #[getter]
    fn readouts<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        array(py, self.readouts.clone(), &[self.h, self.p])
    }
    /// The readouts the model decoded from the observation planned from
    /// (P,): what the robot believed, e.g. the box pose it saw in an image.
    #[getter]
    fn decoded<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        array(py, self.decoded.clone(), &[self.decoded.len()])
    }
    /// The actuation delay, in control periods, this call planned through:
    /// the planner's delay_steps, or with identify_delay the one identified
    /// from how the robot moved.
    #[getter]
    fn delay_steps(&self) -> usize {
        self.delay_steps
    }
    /// Total task cost of the plan.
    #[getter]
    fn cost(&self) -> f64 {
        self.cost
    }
    /// Cost per term (T,), in Planner.term_names order.
    #[getter]
    fn term_costs<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        array(py, self.term_costs.clone(), &[self.term_costs.len()])
    }
    /// Smallest buffered margin per guardrail over the horizon (G,); positive is safe.
    #[getter]
    fn margins<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        array(py, self.margins.clone(), &[self.margins.len()])
    }
    /// Sum of guardrail violations along the plan (0 when feasible).
    #[getter]
    fn violation(&self) -> f64 {
        self.violation
    }
    /// Samples of the last iteration that kept every guardrail.
    #[getter]
    fn feasible_samples(&self) -> usize {
        self.feasible_samples
    }
    /// Iterations run.
    #[getter]
    fn iterations(&self) -> usize {
        self.iterations
    }
    /// Wall-clock time of the planning call inside Rust, in seconds.
    #[getter]
    fn elapsed(&self) -> f64 {
        self.elapsed
    }
    /// The best sampled rollouts (K, H, P) when the config's keep_rollouts > 0.
    #[getter]
    fn rollouts<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let k = self.rollout_costs.len();
        array(py, self.rollouts.clone(), &[k, self.h, self.p])
    }
    /// Task cost of each kept rollout (K,).
    #[getter]
    fn rollout_costs<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        array(py, self.rollout_costs.clone(), &[self.rollout_costs.len()])
    }
    /// Summed guardrail violation of each kept rollout (K,).
    #[getter]
    fn rollout_violations<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        array(
            py,
            self.rollout_violations.clone(),
            &[self.rollout_violations.len()],
        )
    }

    fn __repr__(&self) -> String {
        format!(
            "Plan(status='{}', action={:?}, cost={:.6}, feasible_samples={}, elapsed={:.3} ms)",
            self.status(),
            self.action,
            self.cost,
            self.feasible_samples,
            self.elapsed * 1e3
        )
    }
}
