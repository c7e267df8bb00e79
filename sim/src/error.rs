//! Errors of the simulation crate.

use thiserror::Error;

/// Why a scene, scenario or episode could not run.
#[derive(Debug, Error)]
pub enum SimError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A scenario file is malformed (unknown key, wrong type, bad value).
    #[error("scenario {path}: {message}")]
    Scenario {
        /// The file (or scene name).
        path: String,
        /// What is wrong, naming the key.
        message: String,
    },
    /// A URDF file is missing or malformed.
    #[error("URDF {path}: {message}")]
    Urdf {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// A scene's configuration is impossible.
    #[error("scene '{scene}': {message}")]
    Scene {
        /// The scene.
        scene: String,
        /// What is wrong.
        message: String,
    },
    /// A size, count or duration is above its documented limit
    /// ([`crate::limits`]).
    #[error("{origin}: {limit}")]
    Limit {
        /// Where it was set: the scenario file, the scene, the command line.
        origin: String,
        /// The key, its value and the limit.
        limit: telic::LimitError,
    },
    /// Planning failed (bad input or a failed model call).
    #[error(transparent)]
    Plan(#[from] telic::PlanError),
    /// A world model could not be built.
    #[error(transparent)]
    Model(#[from] telic::ModelError),
}
