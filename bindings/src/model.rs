//! `telic.WorldModel`: a learned bundle or an analytic model, callable batched
//! from Python and handed to planners.

use crate::convert::{Array, array, from_plain, vector};
use crate::errors::{Kind, error, model_error, sim_error};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::path::PathBuf;
use std::sync::Mutex;
use telic::{ModelSpec, WorldModel};

/// Where a model comes from; planners build their own instance from it
/// (the names and parameters are telic-sim's, shared with the C bindings).
pub(crate) use telic_sim::model_source::ModelSource as Source;

/// A fresh model of `source`. Runs without the interpreter lock.
pub(crate) fn build(source: &Source) -> PyResult<Box<dyn WorldModel>> {
    source.build().map_err(sim_error)
}

/// A world model: `encode` observations to latents, `predict` latents one
/// step ahead under actions, `readout` named quantities from latents.
#[pyclass(name = "WorldModel", module = "telic._native", frozen)]
pub(crate) struct PyWorldModel {
    pub(crate) source: Source,
    pub(crate) spec: ModelSpec,
    inner: Mutex<Box<dyn WorldModel>>,
}

impl PyWorldModel {
    fn from_source(py: Python<'_>, source: Source) -> PyResult<Self> {
        let model = py.detach(|| build(&source))?;
        Ok(Self {
            spec: model.spec().clone(),
            source,
            inner: Mutex::new(model),
        })
    }

    /// The names of an observation's entries, for messages: none when
    /// pixels come first (the names would not line up with the values).
    fn named(&self) -> &[String] {
        if self.spec.image.is_some() {
            &[]
        } else {
            &self.spec.observations
        }
    }

    /// Runs `f` on the model without the interpreter lock.
    fn with<R: Send>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&mut dyn WorldModel) -> Result<R, telic::ModelError> + Send,
    ) -> PyResult<R> {
        py.detach(|| {
            let mut model = self.inner.lock().map_err(|_| {
                telic::ModelError::Backend("the model was poisoned by an earlier failure".into())
            })?;
            f(model.as_mut())
        })
        .map_err(model_error)
    }
}

#[pymethods]
impl PyWorldModel {
    /// Loads a world-model bundle folder (manifest.toml + ONNX graphs).
    /// `threads`: ONNX Runtime's threads inside one operator (default 1; 0
    /// lets it use every core).
    #[staticmethod]
    #[pyo3(signature = (path, threads = 1))]
    fn load(py: Python<'_>, path: PathBuf, threads: usize) -> PyResult<Self> {
        Self::from_source(py, Source::Bundle(path, threads))
    }

    /// An analytic model by name, with its parameters as keywords.
    #[staticmethod]
    #[pyo3(signature = (name, **params))]
    fn analytic(
        py: Python<'_>,
        name: String,
        params: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Self> {
        let empty = PyDict::new(py);
        let params = params.unwrap_or(&empty);
        let params: telic_sim::model_source::Params = from_plain(
            params.as_any(),
            &format!("parameters of analytic model '{name}'"),
        )?;
        let source = Source::analytic(&name, params).map_err(|m| error(Kind::Config, m))?;
        Self::from_source(py, source)
    }

    /// A short name, e.g. "point_mass" or the bundle's name.
    #[getter]
    fn name(&self) -> String {
        self.spec.name.clone()
    }
    /// Observation names (O): the vector entries, after the image's pixels
    /// when the model sees an image.
    #[getter]
    fn observations(&self) -> Vec<String> {
        self.spec.observations.clone()
    }
    /// The camera image at the head of each observation, as (C, H, W), or
    /// None when the model sees no image.
    #[getter]
    fn image(&self) -> Option<(usize, usize, usize)> {
        self.spec.image.map(|i| (i.channels, i.height, i.width))
    }
    /// Length of one flat observation: C·H·W pixels (0..255), then O entries.
    #[getter]
    fn obs_dim(&self) -> usize {
        self.spec.obs_dim()
    }
    /// Action names (A).
    #[getter]
    fn actions(&self) -> Vec<String> {
        self.spec.actions.clone()
    }
    /// Readout names (P).
    #[getter]
    fn readouts(&self) -> Vec<String> {
        self.spec.readouts.clone()
    }
    /// Latent size D.
    #[getter]
    fn latent_dim(&self) -> usize {
        self.spec.latent_dim
    }
    /// Time step of one predict, in seconds.
    #[getter]
    fn dt(&self) -> f64 {
        self.spec.dt
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

    /// Observations (obs_dim,) or (B, obs_dim) → latents (D,) or (B, D).
    fn encode<'py>(&self, py: Python<'py>, obs: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let obs = Array::read(obs, "obs")?;
        let (b, batched) = obs.rows("obs", self.spec.obs_dim(), self.named())?;
        let d = self.spec.latent_dim;
        let z = self.with(py, |m| {
            let mut z = vec![0.0; b * d];
            m.encode(&obs.values, &mut z)?;
            Ok(z)
        })?;
        array(py, z, &shape(b, d, batched))
    }

    /// Latents (D,) or (B, D) and actions (A,) or (B, A) → next latents.
    fn predict<'py>(
        &self,
        py: Python<'py>,
        z: &Bound<'py, PyAny>,
        u: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let d = self.spec.latent_dim;
        let z = Array::read(z, "z")?;
        let u = Array::read(u, "u")?;
        let (b, batched) = z.rows("z", d, &[])?;
        let (bu, _) = u.rows("u", self.spec.action_dim(), &self.spec.actions)?;
        if bu != b || z.shape.len() != u.shape.len() {
            return Err(error(
                Kind::Input,
                format!(
                    "z has shape {:?} but u has shape {:?}: one action per latent",
                    z.shape, u.shape
                ),
            ));
        }
        let next = self.with(py, |m| {
            let mut next = vec![0.0; b * d];
            m.predict(&z.values, &u.values, &mut next)?;
            Ok(next)
        })?;
        array(py, next, &shape(b, d, batched))
    }

    /// Latents (D,) or (B, D) → readouts (P,) or (B, P).
    fn readout<'py>(&self, py: Python<'py>, z: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let z = Array::read(z, "z")?;
        let (b, batched) = z.rows("z", self.spec.latent_dim, &[])?;
        let p = self.spec.readout_dim();
        let y = self.with(py, |m| {
            let mut y = vec![0.0; b * p];
            m.readout(&z.values, &mut y)?;
            Ok(y)
        })?;
        array(py, y, &shape(b, p, batched))
    }

    /// Imagines an action sequence (H, A) from observation (O,) or (1, O): the
    /// readouts (H, P) after each action.
    fn rollout<'py>(
        &self,
        py: Python<'py>,
        obs: &Bound<'py, PyAny>,
        actions: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (o, a, d, p) = (
            self.spec.obs_dim(),
            self.spec.action_dim(),
            self.spec.latent_dim,
            self.spec.readout_dim(),
        );
        let obs = Array::read(obs, "obs")?.single("obs", o, self.named())?;
        let actions = Array::read(actions, "actions")?;
        let h = match actions.shape.as_slice() {
            [h, m] if *m == a => *h,
            shape => {
                return Err(error(
                    Kind::Input,
                    format!("actions must have shape (horizon, {a}), got {shape:?}"),
                ));
            }
        };
        let y = self.with(py, |m| {
            let mut z = vec![0.0; d];
            let mut next = vec![0.0; d];
            let mut y = vec![0.0; h * p];
            m.encode(&obs, &mut z)?;
            for t in 0..h {
                m.predict(&z, &actions.values[t * a..(t + 1) * a], &mut next)?;
                std::mem::swap(&mut z, &mut next);
                m.readout(&z, &mut y[t * p..(t + 1) * p])?;
            }
            Ok(y)
        })?;
        array(py, y, &[h, p])
    }

    fn __repr__(&self) -> String {
        let image = self.spec.image.map_or(String::new(), |i| {
            format!("image={}x{}x{}, ", i.channels, i.height, i.width)
        });
        format!(
            "WorldModel('{}', {image}observations={}, actions={}, readouts={}, latent_dim={}, dt={})",
            self.spec.name,
            self.spec.vector_dim(),
            self.spec.action_dim(),
            self.spec.readout_dim(),
            self.spec.latent_dim,
            self.spec.dt
        )
    }
}

fn shape(b: usize, n: usize, batched: bool) -> Vec<usize> {
    if batched { vec![b, n] } else { vec![n] }
}
