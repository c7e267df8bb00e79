//! Scenario files: scene, episode settings, objective and planner in one TOML.
//!
//! ```toml
//! [scene]
//! kind = "reach"          # scene settings follow, see the scene's config
//!
//! [episode]
//! max_time = 8.0          # seconds
//!
//! [planner]
//! kind = "mppi"
//! samples = 256
//!
//! [[objective.terms]]
//! name = "goal"
//! residual = { kind = "readout", readouts = ["tool.x", "tool.y", "tool.z"] }
//! weight = 10.0
//!
//! [observation]
//! mode = "state"          # "state" (default) | "pixels" | "pixels+proprio"
//! width = 64              # camera image size in pixels (default 64×64)
//! height = 64
//! ```
//!
//! `[observation]` says what the planner and its world model receive: the
//! scene's state vector (`state`), the scene camera's image alone
//! (`pixels`), or the image and the robot's own state
//! ([`World::proprio`](crate::World::proprio), `pixels+proprio`). In the
//! pixel modes object and obstacle state reach neither the planner nor the
//! model; the validator still judges the true physics.
//!
//! Unknown keys anywhere are errors that name the key.

use crate::SimError;
use crate::limits;
use crate::perturb::PerturbConfig;
use crate::scene::SceneConfig;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use telic::limits::num;
use telic::{ObjectiveSpec, PlannerConfig, Real, WorldModel};

/// Episode settings. Every field has a default (shown in its doc).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EpisodeConfig {
    /// Time limit per episode in seconds (default 10; at most
    /// [`MAX_EPISODE_TIME`](crate::limits::MAX_EPISODE_TIME), an hour, and
    /// at most [`MAX_CONTROL_STEPS`](crate::limits::MAX_CONTROL_STEPS)
    /// control periods and
    /// [`MAX_PHYSICS_STEPS`](crate::limits::MAX_PHYSICS_STEPS) physics steps
    /// of the scene).
    pub max_time: Real,
    /// Physics steps per control step; the control period is
    /// `physics_steps_per_control × physics_dt` and must equal the model's time
    /// step (default 0: derived from the model's time step; at most
    /// [`MAX_PHYSICS_STEPS_PER_CONTROL`](crate::limits::MAX_PHYSICS_STEPS_PER_CONTROL)).
    pub physics_steps_per_control: usize,
    /// What the planner is not told, to measure what its guardrails do
    /// (default: nothing left out). The validator judges every guardrail
    /// as always.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ablate: Option<Ablation>,
    /// Where the planner's goals come from (default `targets`).
    #[serde(skip_serializing_if = "GoalSource::is_targets")]
    pub goal: GoalSource,
}

/// Where an episode's goals come from (`[episode] goal`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum GoalSource {
    /// The scene's goal values (e.g. the box's goal pose) are the targets
    /// of the readout terms they name; latent terms encode the scene's goal
    /// observation.
    #[default]
    #[serde(rename = "targets")]
    Targets,
    /// The planner sees the goal as the robot would be shown it: the
    /// scene's goal observation (in the pixel modes, the camera image of the
    /// goal configuration). Latent terms encode it; every readout term the
    /// scene gives a goal value takes, instead, the readouts the world model
    /// decodes from it (`Planner::set_goal_observation`). The validator
    /// still judges success on the scene's true goal.
    #[serde(rename = "observation")]
    Observation,
}

impl std::str::FromStr for GoalSource {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "targets" => Ok(GoalSource::Targets),
            "observation" => Ok(GoalSource::Observation),
            other => Err(format!(
                "unknown goal source {other:?}: expected `targets` (the scene's goal values) or \
                 `observation` (the scene's goal observation, decoded by the model)"
            )),
        }
    }
}

impl GoalSource {
    fn is_targets(&self) -> bool {
        *self == GoalSource::Targets
    }
}

impl Default for EpisodeConfig {
    fn default() -> Self {
        Self {
            max_time: 10.0,
            physics_steps_per_control: 0,
            ablate: None,
            goal: GoalSource::Targets,
        }
    }
}

/// An ablation of the planner's guardrails (`[episode] ablate`, `telic run
/// --ablate`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Ablation {
    /// The guardrails without a learned model's error margins: planned on
    /// the model's readouts as if they were exact.
    #[serde(rename = "margins")]
    Margins,
    /// No guardrails at all: the objective's cost terms alone.
    #[serde(rename = "guardrails")]
    Guardrails,
}

impl std::str::FromStr for Ablation {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "margins" => Ok(Ablation::Margins),
            "guardrails" => Ok(Ablation::Guardrails),
            other => Err(format!(
                "unknown ablation {other:?}: expected `margins` (no model-error margins) or \
                 `guardrails` (no guardrails)"
            )),
        }
    }
}

/// Smallest width or height of a scenario's camera image
/// ([`ObservationConfig`]), in pixels: below it an object is a pixel or two.
pub const MIN_IMAGE_SIZE: u32 = 8;

/// What the planner and its world model observe (`[observation]`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ObservationMode {
    /// The scene's state vector ([`World::observe`](crate::World::observe)), objects included.
    #[default]
    #[serde(rename = "state")]
    State,
    /// The scene camera's image alone.
    #[serde(rename = "pixels")]
    Pixels,
    /// The scene camera's image and the robot's own state
    /// ([`World::proprio`](crate::World::proprio)).
    #[serde(rename = "pixels+proprio")]
    PixelsProprio,
}

impl ObservationMode {
    /// The name in scenario files and on the command line.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            ObservationMode::State => "state",
            ObservationMode::Pixels => "pixels",
            ObservationMode::PixelsProprio => "pixels+proprio",
        }
    }

    /// True for the modes that observe the camera image.
    #[must_use]
    pub fn has_image(self) -> bool {
        !matches!(self, ObservationMode::State)
    }

    /// True when the robot's own state is observed beside the image.
    #[must_use]
    pub fn has_proprio(self) -> bool {
        matches!(self, ObservationMode::PixelsProprio)
    }
}

impl std::fmt::Display for ObservationMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for ObservationMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "state" => Ok(ObservationMode::State),
            "pixels" => Ok(ObservationMode::Pixels),
            "pixels+proprio" => Ok(ObservationMode::PixelsProprio),
            other => Err(format!(
                "unknown observation mode '{other}' (expected state, pixels or pixels+proprio)"
            )),
        }
    }
}

/// What the planner observes and the camera's image size. Every field has a
/// default (shown in its doc).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ObservationConfig {
    /// The observation mode (default `state`).
    pub mode: ObservationMode,
    /// Image width in pixels (default 64; [`MIN_IMAGE_SIZE`] to
    /// [`MAX_CAMERA_SIZE`](crate::limits::MAX_CAMERA_SIZE)).
    pub width: u32,
    /// Image height in pixels (default 64; [`MIN_IMAGE_SIZE`] to
    /// [`MAX_CAMERA_SIZE`](crate::limits::MAX_CAMERA_SIZE)).
    pub height: u32,
}

impl Default for ObservationConfig {
    fn default() -> Self {
        let side = crate::scene::camera::DEFAULT_SIZE as u32;
        Self {
            mode: ObservationMode::State,
            width: side,
            height: side,
        }
    }
}

impl ObservationConfig {
    /// Checks the image size; the error names the key, the value and the
    /// bound ([`SimError::Limit`] above the largest size).
    pub fn validate(&self, origin: &str) -> Result<(), SimError> {
        for (key, side) in [
            ("observation.width", self.width),
            ("observation.height", self.height),
        ] {
            limits::check(origin, key, side as usize, limits::MAX_CAMERA_SIZE)?;
            if side < MIN_IMAGE_SIZE {
                return Err(SimError::Scenario {
                    path: origin.to_string(),
                    message: format!("{key} must be at least {MIN_IMAGE_SIZE} pixels, got {side}"),
                });
            }
        }
        Ok(())
    }

    /// The camera image size.
    #[must_use]
    pub fn image_size(&self) -> crate::scene::camera::ImageSize {
        crate::scene::camera::ImageSize::new(self.width as usize, self.height as usize)
    }

    /// A camera rendering images of the configured size.
    pub fn camera(&self) -> Result<crate::scene::camera::Camera, SimError> {
        crate::scene::camera::Camera::new(self.image_size())
    }
}

/// Which world model plans.
///
/// In a scenario file: `model = "default"` (the shipped bundle in
/// `models/<scene>/`, or `models/<scene>_pixels/` in the pixel observation
/// modes, when there is one, else the analytic model),
/// `model = "analytic"`, or `model = "path/to/bundle"` (relative to the file).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum ModelChoice {
    /// The shipped learned bundle of the scene when there is one, else analytic.
    #[default]
    Default,
    /// The scene's analytic model.
    Analytic,
    /// A world-model bundle folder.
    Bundle(PathBuf),
}

impl std::str::FromStr for ModelChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "" => return Err("model must be 'default', 'analytic' or a bundle path".into()),
            "default" => ModelChoice::Default,
            "analytic" => ModelChoice::Analytic,
            path => ModelChoice::Bundle(PathBuf::from(path)),
        })
    }
}

impl std::fmt::Display for ModelChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ModelChoice::Default => f.write_str("default"),
            ModelChoice::Analytic => f.write_str("analytic"),
            ModelChoice::Bundle(p) => write!(f, "{}", p.display()),
        }
    }
}

impl Serialize for ModelChoice {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for ModelChoice {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The folder of the installed Python package's data (scenarios, assets
/// and models, laid out as in a checkout), when a program has named it
/// ([`set_package_data`]).
static PACKAGE_DATA: std::sync::RwLock<Option<PathBuf>> = std::sync::RwLock::new(None);

/// Names the folder that holds an installed package's copy of the shipped
/// scenarios, assets and models, laid out as in a checkout
/// (`sim/scenarios/`, `sim/assets/`, `models/`): the third place
/// [`data_root`] looks. The Python package `telic` names its `telic/data`
/// folder when it is imported, so a wheel installed anywhere has its
/// scenes; `None` forgets it. Process-wide.
pub fn set_package_data(root: Option<PathBuf>) {
    let mut data = PACKAGE_DATA
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    *data = root;
}

/// True when `root` holds scenarios and models as a checkout does.
fn has_data(root: &Path) -> bool {
    root.join("sim/scenarios").is_dir() && root.join("models").is_dir()
}

/// The folder whose scenarios (`sim/scenarios/`), assets (`sim/assets/`)
/// and shipped models (`models/`) the program uses, found at run time:
///
/// 1. `$TELIC_HOME` when it names a checkout;
/// 2. else the nearest checkout at or above the current folder (a folder
///    with `sim/scenarios/` and `models/`), so that `telic` run inside a
///    checkout uses that checkout's files;
/// 3. else the installed package's data folder, when a program named one
///    ([`set_package_data`]; the Python package does);
/// 4. else the checkout the program was built from.
///
/// Not only the last: two checkouts sharing one `CARGO_TARGET_DIR` share
/// one binary (cargo does not rebuild a package that only moved), and a
/// folder baked in at build time would point at the other checkout, or at
/// nothing on a machine the package was installed on.
///
/// Paths a scenario file names (a model bundle, a URDF) are resolved
/// against the file's own folder ([`Scenario::base_dir`]), not this one.
#[must_use]
pub fn data_root() -> PathBuf {
    if let Some(home) = std::env::var_os("TELIC_HOME").map(PathBuf::from)
        && has_data(&home)
    {
        return home;
    }
    if let Ok(cwd) = std::env::current_dir()
        && let Some(root) = cwd.ancestors().find(|a| has_data(a))
    {
        return root.to_path_buf();
    }
    let package = PACKAGE_DATA
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    if let Some(root) = package
        && has_data(&root)
    {
        return root;
    }
    let built = Path::new(env!("CARGO_MANIFEST_DIR"));
    built.parent().unwrap_or(built).to_path_buf()
}

/// The `sim/` folder of [`data_root`]: `scenarios/` and `assets/`.
#[must_use]
pub fn sim_dir() -> PathBuf {
    data_root().join("sim")
}

/// The folder holding the shipped world-model bundles (`models/<scene>/`)
/// of [`data_root`].
#[must_use]
pub fn models_dir() -> PathBuf {
    data_root().join("models")
}

/// A whole scenario.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// The scene and its settings.
    pub scene: SceneConfig,
    /// Episode settings.
    #[serde(default, deserialize_with = "table")]
    pub episode: EpisodeConfig,
    /// Cost terms, guardrails and robot bodies (the scene adds per-episode ones).
    #[serde(default, deserialize_with = "table")]
    pub objective: ObjectiveSpec,
    /// Planner settings.
    #[serde(default, deserialize_with = "table")]
    pub planner: PlannerConfig,
    /// The world model that plans (default: the scene's shipped bundle, else analytic).
    #[serde(default)]
    pub model: ModelChoice,
    /// Threads ONNX Runtime may use inside one operator of a learned model
    /// (default 1: one core plans, the others simulate and control; 0: every
    /// core; at most [`MAX_MODEL_THREADS`](crate::limits::MAX_MODEL_THREADS)).
    #[serde(default = "one")]
    pub model_threads: usize,
    /// What the planner observes and the camera's image size (default:
    /// the state, 64×64 images).
    #[serde(default, deserialize_with = "table")]
    pub observation: ObservationConfig,
    /// How each episode's world differs from the nominal one: masses,
    /// frictions, actuators, delay, sensor noise (default: not at all;
    /// [`crate::perturb`]).
    #[serde(
        default,
        deserialize_with = "table",
        skip_serializing_if = "PerturbConfig::is_nominal"
    )]
    pub perturb: PerturbConfig,
    /// Folder that relative paths in the scenario are resolved against.
    #[serde(skip)]
    pub base_dir: PathBuf,
}

fn one() -> usize {
    1
}

/// `message` with serde's ``floating point `…` `` values, which it writes
/// out in full (`1e308` as 309 digits, `5e-324` as 324), in the form of
/// [`num`].
fn short_floats(message: &str) -> String {
    const TAG: &str = "floating point `";
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(at) = rest.find(TAG) {
        let (head, tail) = rest.split_at(at + TAG.len());
        out.push_str(head);
        let end = tail.find('`').unwrap_or(tail.len());
        let (value, after) = tail.split_at(end);
        match value.parse::<Real>() {
            Ok(x) => out.push_str(&num(x).to_string()),
            Err(_) => out.push_str(value),
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

/// Reads a section of settings from a table only. Serde's derived structs
/// also accept a sequence of values in field order, which would read
/// `episode = [1.0]` as `max_time = 1.0`: a section written as an array is
/// an error instead.
fn table<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct Table<T>(std::marker::PhantomData<T>);
    impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for Table<T> {
        type Value = T;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a table of settings (`[section]` or `{ key = value }`)")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
            T::deserialize(serde::de::value::MapAccessDeserializer::new(map))
        }
    }
    d.deserialize_map(Table(std::marker::PhantomData))
}

/// The folder holding the shipped scenario files.
#[must_use]
pub fn scenario_dir() -> PathBuf {
    sim_dir().join("scenarios")
}

impl Scenario {
    /// Parses a scenario from TOML text; `origin` names it in errors.
    pub fn from_toml(text: &str, origin: &str, base_dir: &Path) -> Result<Self, SimError> {
        let mut s: Scenario = toml::from_str(text).map_err(|e| SimError::Scenario {
            path: origin.to_string(),
            message: short_floats(&e.to_string()),
        })?;
        s.base_dir = base_dir.to_path_buf();
        s.validate(origin)?;
        Ok(s)
    }

    /// Reads a scenario file. Its folder, made absolute now, is the
    /// [`base_dir`](Scenario::base_dir) of the paths it names, so they
    /// stay the file's own when the current folder changes later.
    pub fn from_file(path: &Path) -> Result<Self, SimError> {
        let text = std::fs::read_to_string(path).map_err(|source| SimError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let folder = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let base = std::path::absolute(folder).unwrap_or_else(|_| folder.to_path_buf());
        Self::from_toml(&text, &path.display().to_string(), &base)
    }

    /// A shipped scene by name (`reach`, `navigate`) or a path to a `.toml` file.
    pub fn load(name_or_path: &str) -> Result<Self, SimError> {
        let p = Path::new(name_or_path);
        if p.extension().is_some_and(|e| e == "toml") || p.exists() {
            return Self::from_file(p);
        }
        let shipped = scenario_dir().join(format!("{name_or_path}.toml"));
        if shipped.exists() {
            return Self::from_file(&shipped);
        }
        let known: Vec<String> = std::fs::read_dir(scenario_dir())
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .filter_map(|e| {
                        let p = e.path();
                        (p.extension()? == "toml")
                            .then(|| p.file_stem()?.to_str().map(str::to_string))?
                    })
                    .collect()
            })
            .unwrap_or_default();
        Err(SimError::Scenario {
            path: name_or_path.to_string(),
            message: format!(
                "no such scene or file (shipped scenes: {})",
                known.join(", ")
            ),
        })
    }

    /// The scenario `telic run NAME --obs MODE` plans: `load`, observed in
    /// `mode` when one is given. A shipped scene observed through its camera
    /// is its shipped pixel scenario when there is one (`push` →
    /// `push_pixels.toml`): the pixel bundle with the settings measured
    /// with it, not the state scenario's settings with another model.
    pub fn load_observing(
        name_or_path: &str,
        mode: Option<ObservationMode>,
    ) -> Result<Self, SimError> {
        let pixels = scenario_dir().join(format!("{name_or_path}_pixels.toml"));
        let shipped_name = !name_or_path.ends_with(".toml") && !Path::new(name_or_path).exists();
        let mut scenario = match mode {
            Some(m) if m.has_image() && shipped_name && pixels.exists() => {
                Self::from_file(&pixels)?
            }
            _ => Self::load(name_or_path)?,
        };
        if let Some(m) = mode {
            scenario.observation.mode = m;
        }
        Ok(scenario)
    }

    /// The scene's name (`reach`, `navigate`, …).
    #[must_use]
    pub fn scene_name(&self) -> &'static str {
        self.scene.name()
    }

    /// The bundle folder the model choice resolves to, or `None` for the analytic model.
    #[must_use]
    pub fn bundle_dir(&self) -> Option<PathBuf> {
        match &self.model {
            ModelChoice::Analytic => None,
            ModelChoice::Bundle(p) if p.is_absolute() => Some(p.clone()),
            ModelChoice::Bundle(p) => Some(self.base_dir.join(p)),
            ModelChoice::Default => {
                // Observed through the camera, the scene's model is its pixel bundle.
                let name = if self.observation.mode.has_image() {
                    format!("{}_pixels", self.scene_name())
                } else {
                    self.scene_name().to_string()
                };
                let dir = models_dir().join(name);
                dir.join("manifest.toml").exists().then_some(dir)
            }
        }
    }

    /// Builds the world model that plans in `scene`, checking that a bundle's
    /// observations and actions are the scene's.
    pub fn build_model(&self, scene: &dyn crate::World) -> Result<Box<dyn WorldModel>, SimError> {
        let analytic = scene.analytic_model()?;
        let Some(dir) = self.bundle_dir() else {
            return Ok(analytic);
        };
        #[cfg(feature = "onnx")]
        {
            let options = telic::model::OnnxOptions {
                intra_threads: self.model_threads,
            };
            crate::onnx_runtime::locate()?;
            let bundle = telic::model::OnnxModel::load_with(&dir, &options)?;
            let (a, b) = (analytic.spec(), bundle.spec());
            // A bundle that reads images observes the scenario's observation
            // mode, not the state: `Episode::planner` checks it against the mode.
            let state_differs = b.image.is_none() && a.observations != b.observations;
            if state_differs || a.actions != b.actions {
                return Err(SimError::Scene {
                    scene: self.scene_name().into(),
                    message: format!(
                        "bundle {} does not fit the scene: it observes [{}] and acts on [{}], the scene gives [{}] and takes [{}]",
                        dir.display(),
                        b.observations.join(", "),
                        b.actions.join(", "),
                        a.observations.join(", "),
                        a.actions.join(", ")
                    ),
                });
            }
            check_action_bounds(&dir, a, b).map_err(|message| SimError::Scene {
                scene: self.scene_name().into(),
                message,
            })?;
            Ok(Box::new(bundle))
        }
        #[cfg(not(feature = "onnx"))]
        {
            Err(SimError::Scene {
                scene: self.scene_name().into(),
                message: format!(
                    "bundle {} needs telic-sim built with the `onnx` feature",
                    dir.display()
                ),
            })
        }
    }

    /// Checks values that parsing alone cannot.
    pub fn validate(&self, origin: &str) -> Result<(), SimError> {
        let bad = |message: String| SimError::Scenario {
            path: origin.to_string(),
            message,
        };
        if !(self.episode.max_time.is_finite() && self.episode.max_time > 0.0) {
            return Err(bad(format!(
                "episode.max_time must be positive, got {}",
                num(self.episode.max_time)
            )));
        }
        let (control_dt, physics_dt) = self.scene.time_steps();
        limits::check_episode(origin, self.episode.max_time, control_dt, physics_dt)?;
        limits::check(
            origin,
            "episode.physics_steps_per_control",
            self.episode.physics_steps_per_control,
            limits::MAX_PHYSICS_STEPS_PER_CONTROL,
        )?;
        limits::check(
            origin,
            "model_threads",
            self.model_threads,
            limits::MAX_MODEL_THREADS,
        )?;
        check_planner(&self.planner, origin)?;
        self.observation.validate(origin)?;
        self.perturb.validate(origin)?;
        Ok(())
    }
}

/// Checks planner settings read from `origin`: its limits, then its values.
fn check_planner(planner: &PlannerConfig, origin: &str) -> Result<(), SimError> {
    planner.check_limits().map_err(|limit| SimError::Limit {
        origin: origin.to_string(),
        limit,
    })?;
    planner.validate().map_err(|message| SimError::Scenario {
        path: origin.to_string(),
        message,
    })
}

/// The planning sections of a scenario file, `[objective]` and
/// `[planner]`: how a program that embeds the engine (the C bindings) is
/// configured exactly as a scenario file configures an episode. Unknown keys
/// are errors that name the key.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanningSections {
    /// Cost terms, guardrails and robot bodies.
    #[serde(default, deserialize_with = "table")]
    pub objective: ObjectiveSpec,
    /// Planner settings.
    #[serde(default, deserialize_with = "table")]
    pub planner: PlannerConfig,
}

impl PlanningSections {
    /// Reads the two sections from TOML text: the sections alone, or a
    /// whole scenario (text with a `[scene]`), which is then checked whole
    /// as [`Scenario::from_toml`] checks it, relative paths against
    /// `base_dir`. `origin` names the text in errors. The objective is not
    /// yet compiled: names of readouts are checked against a model then.
    pub fn from_toml(text: &str, origin: &str, base_dir: &Path) -> Result<Self, SimError> {
        let bad = |e: toml::de::Error| SimError::Scenario {
            path: origin.to_string(),
            message: short_floats(&e.to_string()),
        };
        let whole: toml::Table = toml::from_str(text).map_err(bad)?;
        if whole.contains_key("scene") {
            let s = Scenario::from_toml(text, origin, base_dir)?;
            return Ok(Self {
                objective: s.objective,
                planner: s.planner,
            });
        }
        let sections: Self = toml::from_str(text).map_err(bad)?;
        check_planner(&sections.planner, origin)?;
        Ok(sections)
    }
}

/// Checks that the action bounds of the bundle in `dir` (spec `bundle`) lie
/// within the scene's (`scene`, its analytic model's): the planner samples
/// and clamps actions to the bundle's bounds, and the scene clamps what it
/// is given to its own, so wider bounds would make the planner reason about
/// actions the robot cannot take (a bundle with ±100 on a 1.2 rad/s arm
/// plans with speeds the arm never reaches). Narrower bounds are kept: the
/// model was trained within them. Bounds within `1e-6` (relative) of the
/// scene's count as equal.
#[cfg(feature = "onnx")]
fn check_action_bounds(
    dir: &std::path::Path,
    scene: &telic::ModelSpec,
    bundle: &telic::ModelSpec,
) -> Result<(), String> {
    let tol = |x: Real| 1e-6 * x.abs().max(1.0);
    let rows = bundle
        .actions
        .iter()
        .zip(bundle.action_lower.iter().zip(&bundle.action_upper))
        .zip(scene.action_lower.iter().zip(&scene.action_upper));
    for ((name, (lo, hi)), (slo, shi)) in rows {
        if *lo < slo - tol(*slo) || *hi > shi + tol(*shi) {
            return Err(format!(
                "bundle {}: action `{name}` has bounds [{}, {}], wider than the scene's \
                 [{}, {}]: the planner would plan with actions the robot cannot take; write \
                 bounds within the scene's in the bundle's manifest.toml",
                dir.display(),
                num(*lo),
                num(*hi),
                num(*slo),
                num(*shi)
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shipped `push` scenario with `extra` appended to its text.
    fn push_with(extra: &str) -> Result<Scenario, SimError> {
        let path = scenario_dir().join("push.toml");
        let text = std::fs::read_to_string(&path).unwrap() + extra;
        Scenario::from_toml(&text, "push+", &scenario_dir())
    }

    #[test]
    fn a_file_read_by_a_relative_path_resolves_against_its_folder_as_it_was() {
        // Unit tests run in the crate's folder, sim/.
        let cwd = std::env::current_dir().unwrap();
        let s = Scenario::from_file(Path::new("scenarios/push_pixels.toml")).unwrap();
        assert_eq!(s.base_dir, cwd.join("scenarios"));
        let bundle = s.bundle_dir().unwrap();
        assert!(bundle.is_absolute(), "{}", bundle.display());
        assert!(
            bundle.join("manifest.toml").is_file(),
            "{}",
            bundle.display()
        );
        let beside = Scenario::from_toml("[scene]\nkind = \"push\"\n", "t", Path::new("."));
        assert_eq!(
            beside.unwrap().base_dir,
            Path::new("."),
            "from_toml keeps what it is given"
        );
    }

    #[test]
    fn a_shipped_scene_observed_through_its_camera_is_its_pixel_scenario() {
        let pixels =
            Scenario::load_observing("push", Some(ObservationMode::PixelsProprio)).unwrap();
        let shipped = Scenario::load("push_pixels").unwrap();
        assert_eq!(pixels, shipped, "the pixel scenario, as shipped");
        let state = Scenario::load_observing("push", Some(ObservationMode::State)).unwrap();
        assert_eq!(state, Scenario::load("push").unwrap());
        // Without a pixel scenario: the scene's own, in the mode asked for.
        let reach = Scenario::load_observing("reach", Some(ObservationMode::Pixels)).unwrap();
        assert_eq!(reach.observation.mode, ObservationMode::Pixels);
        assert_eq!(reach.scene_name(), "reach");
        // A file is read as it is, whatever the mode.
        let file =
            Scenario::load_observing("scenarios/push.toml", Some(ObservationMode::Pixels)).unwrap();
        assert_eq!(file.observation.mode, ObservationMode::Pixels);
        assert_eq!(file.model, ModelChoice::Default);
    }

    #[test]
    fn the_default_model_of_a_pixel_mode_is_the_scenes_pixel_bundle() {
        let mut s = Scenario::load("push").unwrap();
        assert_eq!(s.bundle_dir(), Some(models_dir().join("push")));
        s.observation.mode = ObservationMode::PixelsProprio;
        assert_eq!(s.bundle_dir(), Some(models_dir().join("push_pixels")));
        let mut reach = Scenario::load("reach").unwrap();
        reach.observation.mode = ObservationMode::Pixels;
        assert_eq!(reach.bundle_dir(), None, "no reach_pixels bundle ships");
    }

    #[test]
    fn observation_defaults_to_the_state_at_64_pixels() {
        let s = push_with("").unwrap();
        assert_eq!(s.observation, ObservationConfig::default());
        assert_eq!(s.observation.mode, ObservationMode::State);
        assert_eq!((s.observation.width, s.observation.height), (64, 64));
        assert!(!s.observation.mode.has_image());
    }

    #[test]
    fn observation_modes_parse_by_name() {
        for (name, mode) in [
            ("state", ObservationMode::State),
            ("pixels", ObservationMode::Pixels),
            ("pixels+proprio", ObservationMode::PixelsProprio),
        ] {
            let s = push_with(&format!(
                "\n[observation]\nmode = \"{name}\"\nwidth = 32\nheight = 48\n"
            ))
            .unwrap();
            assert_eq!(s.observation.mode, mode);
            assert_eq!(name.parse::<ObservationMode>().unwrap(), mode);
            assert_eq!(mode.to_string(), name);
            let camera = s.observation.camera().unwrap();
            assert_eq!((camera.size().width(), camera.size().height()), (32, 48));
        }
        assert!(ObservationMode::PixelsProprio.has_proprio());
        assert!(!ObservationMode::Pixels.has_proprio());
        let e = "pixel".parse::<ObservationMode>().unwrap_err();
        assert!(e.contains("unknown observation mode 'pixel'"), "{e}");
    }

    #[test]
    fn bad_observation_settings_are_named() {
        for (extra, expected) in [
            ("mode = \"depth\"", "unknown variant `depth`"),
            ("colour = true", "unknown field `colour`"),
            (
                "width = 4",
                "observation.width must be at least 8 pixels, got 4",
            ),
            (
                "height = 2000",
                "observation.height = 2000 is above its limit of 1024",
            ),
        ] {
            let e = push_with(&format!("\n[observation]\n{extra}\n"))
                .unwrap_err()
                .to_string();
            assert!(e.contains(expected), "{extra}: {e}");
        }
        let path = scenario_dir().join("push.toml");
        let text = "observation = [1]\n".to_string() + &std::fs::read_to_string(path).unwrap();
        let e = Scenario::from_toml(&text, "push+", &scenario_dir()).unwrap_err();
        assert!(e.to_string().contains("a table of settings"), "{e}");
    }
}
