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
//! ```
//!
//! Unknown keys anywhere are errors that name the key.

use crate::SimError;
use crate::scene::SceneConfig;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use telic::{ObjectiveSpec, PlannerConfig, Real};

/// Episode settings. Every field has a default (shown in its doc).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EpisodeConfig {
    /// Time limit per episode in seconds (default 10).
    pub max_time: Real,
    /// Physics steps per control step; the control period is
    /// `physics_steps_per_control × physics_dt` and must equal the model's time
    /// step (default 0: derived from the model's time step).
    pub physics_steps_per_control: usize,
}

impl Default for EpisodeConfig {
    fn default() -> Self {
        Self {
            max_time: 10.0,
            physics_steps_per_control: 0,
        }
    }
}

/// A whole scenario.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// The scene and its settings.
    pub scene: SceneConfig,
    /// Episode settings.
    #[serde(default)]
    pub episode: EpisodeConfig,
    /// Cost terms, guardrails and robot bodies (the scene adds per-episode ones).
    #[serde(default)]
    pub objective: ObjectiveSpec,
    /// Planner settings.
    #[serde(default)]
    pub planner: PlannerConfig,
    /// Folder that relative paths in the scenario are resolved against.
    #[serde(skip)]
    pub base_dir: PathBuf,
}

/// The folder holding the shipped scenario files.
#[must_use]
pub fn scenario_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios")
}

impl Scenario {
    /// Parses a scenario from TOML text; `origin` names it in errors.
    pub fn from_toml(text: &str, origin: &str, base_dir: &Path) -> Result<Self, SimError> {
        let mut s: Scenario = toml::from_str(text).map_err(|e| SimError::Scenario {
            path: origin.to_string(),
            message: e.to_string(),
        })?;
        s.base_dir = base_dir.to_path_buf();
        s.validate(origin)?;
        Ok(s)
    }

    /// Reads a scenario file.
    pub fn from_file(path: &Path) -> Result<Self, SimError> {
        let text = std::fs::read_to_string(path).map_err(|source| SimError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::from_toml(&text, &path.display().to_string(), base)
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

    /// Checks values that parsing alone cannot.
    pub fn validate(&self, origin: &str) -> Result<(), SimError> {
        let bad = |message: String| SimError::Scenario {
            path: origin.to_string(),
            message,
        };
        if !(self.episode.max_time.is_finite() && self.episode.max_time > 0.0) {
            return Err(bad(format!(
                "episode.max_time must be positive, got {}",
                self.episode.max_time
            )));
        }
        self.planner.validate().map_err(bad)?;
        Ok(())
    }
}
