//! `telic._native.Scene`: a Telic scene stepped from Python, the core of the
//! gymnasium environments of `telic.envs`.
//!
//! Observations are the flat layout the planner takes in the scenario's
//! observation mode: in `state` mode the state (O,), in the pixel modes the
//! camera image's C·H·W values (0..=255, C×H×W order) and then the vector
//! entries (`vector_names`: proprio in `pixels+proprio`, none in `pixels`).
//! `telic.envs` reshapes them into gymnasium's image and dict spaces.

use crate::convert::{Array, array, to_plain, vector};
use crate::errors::{Kind, error, sim_error};
use crate::model::PyWorldModel;
use crate::planner::PyPlanner;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::sync::Mutex;
use telic::{ModelSpec, PlannerConfig, WorldModel};
use telic_sim::scenario::{ModelChoice, ObservationMode, Scenario};
use telic_sim::scene::camera::Camera;
use telic_sim::{Scene, SimError, StepOutcome};

/// A scene of a scenario, reset and stepped by the caller.
#[pyclass(name = "Scene", module = "telic._native", frozen)]
pub(crate) struct PyScene {
    inner: Mutex<Scene>,
    /// The camera of `render`, of the scenario's image size.
    camera: Mutex<Camera>,
    spec: ModelSpec,
    name: String,
    max_time: f64,
    /// The observation's layout: mode, values, image shape and vector names.
    mode: ObservationMode,
    obs_dim: usize,
    image_shape: Option<(usize, usize, usize)>,
    vector_names: Vec<String>,
}

impl PyScene {
    fn with<R: Send>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&mut Scene) -> Result<R, SimError> + Send,
    ) -> PyResult<R> {
        py.detach(|| {
            let mut env = self.inner.lock().map_err(|_| SimError::Scene {
                scene: self.name.clone(),
                message: "the scene was poisoned by an earlier failure".into(),
            })?;
            f(&mut env)
        })
        .map_err(sim_error)
    }
}

#[pymethods]
impl PyScene {
    /// The scene of a shipped scenario (`"reach"`, `"navigate"`, `"push"`) or
    /// of a scenario file; `obs` ("state", "pixels", "pixels+proprio")
    /// replaces the scenario's observation mode.
    #[new]
    #[pyo3(signature = (scenario, obs = None, perturb = None))]
    fn new(
        py: Python<'_>,
        scenario: String,
        obs: Option<String>,
        perturb: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let mode = obs
            .map(|m| m.parse::<ObservationMode>())
            .transpose()
            .map_err(|e| error(Kind::Config, e))?;
        let mut s = Scenario::load_observing(&scenario, mode).map_err(sim_error)?;
        if let Some(p) = perturb {
            crate::run::set_perturb(&mut s, &p)?;
        }
        let env = py.detach(|| Scene::new(s)).map_err(sim_error)?;
        let camera = env.scenario().observation.camera().map_err(sim_error)?;
        Ok(Self {
            camera: Mutex::new(camera),
            spec: env.spec().clone(),
            name: env.scenario().scene_name().to_string(),
            max_time: env.scenario().episode.max_time,
            mode: env.observation_mode(),
            obs_dim: env.obs_dim(),
            image_shape: env.image_spec().map(|i| (i.channels, i.height, i.width)),
            vector_names: env.vector_names().to_vec(),
            inner: Mutex::new(env),
        })
    }

    /// Starts an episode drawn from `seed`; returns the first observation
    /// (`obs_dim` values, the layout in the module docs).
    fn reset<'py>(&self, py: Python<'py>, seed: u64) -> PyResult<Bound<'py, PyAny>> {
        let o = self.obs_dim;
        let obs = self.with(py, |env| {
            let mut obs = vec![0.0; o];
            env.reset(seed, &mut obs)?;
            Ok(obs)
        })?;
        array(py, obs, &[o])
    }

    /// Applies `action`, (A,) or (1, A), for one control period. Returns
    /// `(obs, cost, success, truncated, violated, worst_margin)`.
    fn step<'py>(
        &self,
        py: Python<'py>,
        action: &Bound<'py, PyAny>,
    ) -> PyResult<(Bound<'py, PyAny>, f64, bool, bool, bool, f64)> {
        let a = self.spec.action_dim();
        let o = self.obs_dim;
        let action = Array::read(action, "action")?.single("action", a, &self.spec.actions)?;
        let (obs, out) = self.with(py, |env| {
            let mut obs = vec![0.0; o];
            let out: StepOutcome = env.step(&action, &mut obs)?;
            Ok((obs, out))
        })?;
        Ok((
            array(py, obs, &[o])?,
            out.cost,
            out.success,
            out.truncated,
            out.violated,
            out.worst_margin,
        ))
    }

    /// The camera image of the current state, (3, H, W) uint8 RGB in
    /// C×H×W order, of the scenario's `[observation]` size, whatever the
    /// observation mode.
    fn render<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let (image, size) = self.with(py, |env| {
            let mut camera = self.camera.lock().map_err(|_| SimError::Scene {
                scene: self.name.clone(),
                message: "the camera was poisoned by an earlier failure".into(),
            })?;
            let size = camera.size();
            let mut image = vec![0; size.bytes()];
            env.world().render(&mut camera, &mut image)?;
            Ok((image, size))
        })?;
        use numpy::PyArrayMethods;
        let flat = numpy::PyArray1::from_vec(py, image);
        Ok(flat.reshape([3, size.height(), size.width()])?.into_any())
    }

    /// A planner for the running episode (its objective, guardrails and
    /// goals), planning with `model`: None (the scenario's `model`),
    /// "default" (the scene's shipped bundle, else analytic), "analytic",
    /// a bundle path (relative to the current folder) or a WorldModel;
    /// `config` replaces settings of the scenario's planner.
    #[pyo3(signature = (model = None, config = None))]
    fn planner(
        &self,
        py: Python<'_>,
        model: Option<&Bound<'_, PyAny>>,
        config: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<PyPlanner> {
        enum Pick {
            Scenario,
            Choice(ModelChoice),
            Source(crate::model::Source),
        }
        let pick = match model {
            None => Pick::Scenario,
            Some(m) if m.is_none() => Pick::Scenario,
            Some(m) => {
                if let Ok(wm) = m.cast::<PyWorldModel>() {
                    Pick::Source(wm.get().source.clone())
                } else if let Ok(s) = m.extract::<std::path::PathBuf>() {
                    let text = s.to_string_lossy().to_string();
                    match text.parse().map_err(|e: String| error(Kind::Config, e))? {
                        // A path from Python is the caller's, not the scenario file's.
                        ModelChoice::Bundle(p) if p.is_relative() => {
                            let cwd = std::env::current_dir().map_err(|e| {
                                error(
                                    Kind::Config,
                                    format!("model {text:?}: no current folder: {e}"),
                                )
                            })?;
                            Pick::Choice(ModelChoice::Bundle(cwd.join(p)))
                        }
                        choice => Pick::Choice(choice),
                    }
                } else {
                    return Err(error(
                        Kind::Config,
                        "model must be 'default', 'analytic', a bundle path or a WorldModel",
                    ));
                }
            }
        };
        let base = self.with(py, |env| Ok(env.scenario().planner.clone()))?;
        let config: PlannerConfig = match config {
            Some(c) => crate::convert::merged(&base, c.as_any(), "config")?,
            None => base,
        };
        let planner = py.detach(|| -> PyResult<_> {
            let env = self
                .inner
                .lock()
                .map_err(|_| error(Kind::Sim, "the scene was poisoned by an earlier failure"))?;
            let model: Box<dyn WorldModel> = match pick {
                Pick::Source(s) => crate::model::build(&s)?,
                Pick::Scenario => env.scenario().build_model(env.world()).map_err(sim_error)?,
                Pick::Choice(choice) => {
                    let mut scenario = env.scenario().clone();
                    scenario.model = choice;
                    scenario.build_model(env.world()).map_err(sim_error)?
                }
            };
            let spec = model.spec().clone();
            let planner = env.planner(model, Some(config)).map_err(sim_error)?;
            Ok((planner, spec))
        })?;
        PyPlanner::wrap(planner.0, planner.1).warn(py)
    }

    /// Scene name.
    #[getter]
    fn name(&self) -> String {
        self.name.clone()
    }
    /// Names of the observation's vector entries (after the image in the
    /// pixel modes): the state in "state" mode, the robot's own state in
    /// "pixels+proprio", none in "pixels".
    #[getter]
    fn observations(&self) -> Vec<String> {
        self.vector_names.clone()
    }
    /// The observation mode: "state", "pixels" or "pixels+proprio".
    #[getter]
    fn observation_mode(&self) -> String {
        self.mode.to_string()
    }
    /// The camera image's shape (C, H, W) in the pixel modes, else None.
    #[getter]
    fn image_shape(&self) -> Option<(usize, usize, usize)> {
        self.image_shape
    }
    /// Values of one observation: C·H·W image values and then the vector entries.
    #[getter]
    fn obs_dim(&self) -> usize {
        self.obs_dim
    }
    /// Action names (A).
    #[getter]
    fn actions(&self) -> Vec<String> {
        self.spec.actions.clone()
    }
    /// Lower action bounds (A,).
    #[getter]
    fn action_lower<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        vector(py, &self.spec.action_lower)
    }
    /// Upper action bounds (A,).
    #[getter]
    fn action_upper<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        vector(py, &self.spec.action_upper)
    }
    /// Control period in seconds.
    #[getter]
    fn dt(&self) -> f64 {
        self.spec.dt
    }
    /// Episode time limit in seconds.
    #[getter]
    fn max_time(&self) -> f64 {
        self.max_time
    }
    /// Simulated time since reset, in seconds.
    #[getter]
    fn time(&self, py: Python<'_>) -> PyResult<f64> {
        self.with(py, |env| Ok(env.world().time()))
    }

    /// The current state's ground truth: true readouts, guardrail margins
    /// (negative: violated), goal errors, and this episode's targets, as dicts.
    fn state<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        #[derive(serde::Serialize)]
        struct State {
            truth: Vec<(String, f64)>,
            margins: Vec<(String, f64)>,
            goal_error: Vec<(String, f64)>,
            targets: Vec<(String, Vec<f64>)>,
            success: bool,
        }
        let state = self.with(py, |env| {
            let scene = env.world();
            let mut truth = vec![0.0; scene.truth_readouts().len()];
            scene.truth(&mut truth);
            let (margins, targets) = match (env.validator(), env.setup()) {
                (Some(v), Some(s)) => (
                    v.names()
                        .iter()
                        .cloned()
                        .zip(v.margins().iter().copied())
                        .collect(),
                    s.targets.clone(),
                ),
                _ => (Vec::new(), Vec::new()),
            };
            Ok(State {
                truth: scene.truth_readouts().iter().cloned().zip(truth).collect(),
                margins,
                goal_error: scene
                    .goal_error()
                    .into_iter()
                    .map(|(n, e)| (n.to_string(), e))
                    .collect(),
                targets,
                success: scene.success(),
            })
        })?;
        let out = PyDict::new(py);
        let pairs = |v: Vec<(String, f64)>| -> PyResult<Bound<'py, PyDict>> {
            let d = PyDict::new(py);
            for (k, x) in v {
                d.set_item(k, x)?;
            }
            Ok(d)
        };
        out.set_item("truth", pairs(state.truth)?)?;
        out.set_item("margins", pairs(state.margins)?)?;
        out.set_item("goal_error", pairs(state.goal_error)?)?;
        let targets = PyDict::new(py);
        for (k, t) in state.targets {
            let n = t.len();
            targets.set_item(k, array(py, t, &[n])?)?;
        }
        out.set_item("targets", targets)?;
        out.set_item("success", state.success)?;
        Ok(out)
    }

    /// The running episode's objective (the scenario's plus this episode's
    /// guardrails) as plain data, the schema `Planner` takes.
    fn objective<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let spec = self.with(py, |env| Ok(env.objective().cloned()))?;
        match spec {
            Some(s) => to_plain(py, &s),
            None => Err(error(Kind::Sim, "no episode yet: call reset first")),
        }
    }

    fn __repr__(&self) -> String {
        format!(
            "Scene('{}', obs='{}', observations={}, actions={}, dt={})",
            self.name,
            self.mode,
            self.obs_dim,
            self.spec.action_dim(),
            self.spec.dt
        )
    }
}
