//! Where a world model comes from, for the bindings: a bundle folder or an
//! analytic model by name with its parameters.
//!
//! The Python (`telic.WorldModel`) and C (`telic_model_*`) bindings both
//! name models this way; the names, the parameters each takes and the
//! message for an unknown name live here once. A [`ModelSource`] is plain
//! data: each planner builds its own instance from it
//! ([`ModelSource::build`]), so one named model can feed several planners.

use crate::SimError;
use crate::scenario::{Scenario, scenario_dir};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use std::path::{Path, PathBuf};
use telic::model::{Pendulum, PendulumParams, PointMass, Unicycle};
use telic::{Real, WorldModel};

/// Where a model comes from; planners build their own instance from it.
#[derive(Clone, Debug)]
pub enum ModelSource {
    /// A bundle folder, and ONNX Runtime's intra-op threads (0: every core).
    Bundle(PathBuf, usize),
    /// `point_mass`: a point mass in `dims` dimensions.
    PointMass(PointMassParams),
    /// `unicycle`: a differential-drive base.
    Unicycle(UnicycleParams),
    /// `pendulum`: gymnasium's `Pendulum-v1` by default.
    Pendulum(PendulumParams),
    /// The analytic model of a shipped scene (or scenario file).
    Scene(String),
}

/// Parameters of the `point_mass` model (serde: missing fields take the
/// default shown, unknown ones are errors).
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PointMassParams {
    /// Dimensions (default 2).
    pub dims: usize,
    /// Time step in seconds (default 0.1).
    pub dt: Real,
    /// Bound of the acceleration (default 2).
    pub max_accel: Real,
}

impl Default for PointMassParams {
    fn default() -> Self {
        Self {
            dims: 2,
            dt: 0.1,
            max_accel: 2.0,
        }
    }
}

/// Parameters of the `unicycle` model (serde: missing fields take the
/// default shown, unknown ones are errors).
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UnicycleParams {
    /// Time step in seconds (default 0.1).
    pub dt: Real,
    /// Bound of the forward speed in m/s (default 1).
    pub max_speed: Real,
    /// Bound of the turn rate in rad/s (default 2).
    pub max_turn_rate: Real,
    /// Time constant of the actuators in seconds (default 0: none).
    pub tau: Real,
}

impl Default for UnicycleParams {
    fn default() -> Self {
        Self {
            dt: 0.1,
            max_speed: 1.0,
            max_turn_rate: 2.0,
            tau: 0.0,
        }
    }
}

/// The parameters of an analytic model as plain data (keys and values, as
/// a Python dict or a TOML table gives them).
pub type Params = serde_json::Map<String, serde_json::Value>;

impl ModelSource {
    /// The analytic model `name` with `params`, plain data read into the
    /// model's parameters (an empty map: every default). `name` is
    /// `point_mass`, `unicycle`, `pendulum`, a shipped scene or a scenario
    /// `.toml` file (which take no parameters: they come from the scenario).
    /// The error is the message of a configuration error.
    pub fn analytic(name: &str, params: Params) -> Result<Self, String> {
        let what = || format!("parameters of analytic model '{name}'");
        let read = |params| serde_json::Value::Object(params);
        match name {
            "point_mass" => parse(read(params), &what()).map(Self::PointMass),
            "unicycle" => parse(read(params), &what()).map(Self::Unicycle),
            "pendulum" => parse(read(params), &what()).map(Self::Pendulum),
            scene if !params.is_empty() => Err(format!(
                "the analytic model of scene '{scene}' takes no parameters (they come from its scenario)"
            )),
            scene if is_scene(scene) => Ok(Self::Scene(scene.to_string())),
            scene => Err(format!(
                "unknown analytic model '{scene}': expected point_mass, unicycle, \
                 pendulum, a shipped scene ({}) or a scenario .toml file",
                scene_names().join(", ")
            )),
        }
    }

    /// A fresh model. Loads ONNX Runtime for a bundle (found as
    /// [`crate::onnx_runtime::locate`] finds it) and reads the scenario of
    /// a scene: not for a real-time path.
    pub fn build(&self) -> Result<Box<dyn WorldModel>, SimError> {
        Ok(match self {
            Self::Bundle(dir, threads) => bundle(dir, *threads)?,
            Self::PointMass(p) => Box::new(PointMass::new(p.dims, p.dt, p.max_accel)?),
            Self::Unicycle(p) => {
                Box::new(Unicycle::new(p.dt, p.max_speed, p.max_turn_rate, p.tau)?)
            }
            Self::Pendulum(p) => Box::new(Pendulum::new(p)?),
            Self::Scene(name) => {
                let scenario = Scenario::load(name)?;
                scenario.scene.build(&scenario.base_dir)?.analytic_model()?
            }
        })
    }
}

fn parse<T: DeserializeOwned>(params: serde_json::Value, what: &str) -> Result<T, String> {
    serde_json::from_value(params).map_err(|e| format!("{what}: {e}"))
}

#[cfg(feature = "onnx")]
fn bundle(dir: &Path, threads: usize) -> Result<Box<dyn WorldModel>, SimError> {
    use telic::model::{OnnxModel, OnnxOptions};
    // ORT_DYLIB_PATH, an earlier call, else the `onnxruntime` wheel's library.
    crate::onnx_runtime::locate()?;
    let options = OnnxOptions {
        intra_threads: threads,
    };
    Ok(Box::new(OnnxModel::load_with(dir, &options)?))
}

#[cfg(not(feature = "onnx"))]
fn bundle(dir: &Path, _threads: usize) -> Result<Box<dyn WorldModel>, SimError> {
    Err(SimError::Model(telic::ModelError::Invalid(format!(
        "bundle {}: telic-sim was built without the `onnx` feature",
        dir.display()
    ))))
}

/// True for a shipped scene's name or a path ending in `.toml`.
fn is_scene(name: &str) -> bool {
    let known = scenario_dir().join(format!("{name}.toml"));
    known.exists() || Path::new(name).extension().is_some_and(|e| e == "toml")
}

/// The names of the shipped scenes, sorted.
#[must_use]
pub fn scene_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(scenario_dir())
        .map(|d| {
            d.filter_map(Result::ok)
                .filter_map(|e| {
                    let p = e.path();
                    (p.extension()? == "toml")
                        .then(|| p.file_stem()?.to_str().map(str::to_string))?
                })
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}
