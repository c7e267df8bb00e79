//! Rust errors as the `telic.errors` exception hierarchy (defined in Python so
//! that an error can be both a `TelicError` and a `ValueError`).

use pyo3::prelude::*;
use telic::{ModelError, PlanError};
use telic_sim::SimError;
use telic_sim::collect::CollectError;

/// Which `telic.errors` class an error is.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Kind {
    /// Arrays of the wrong shape or type, non-finite values.
    Input,
    /// Objectives, planner settings, scenarios that cannot be used.
    Config,
    /// A world model that cannot be loaded or failed.
    Model,
    /// A scene, episode or data collection that cannot run.
    Sim,
}

impl Kind {
    fn class(self) -> &'static str {
        match self {
            Kind::Input => "InputError",
            Kind::Config => "ConfigError",
            Kind::Model => "ModelError",
            Kind::Sim => "SimError",
        }
    }
}

/// An error of `kind` with `message`, as a Python exception.
pub(crate) fn error(kind: Kind, message: impl Into<String>) -> PyErr {
    let message = message.into();
    Python::attach(|py| {
        match py
            .import("telic.errors")
            .and_then(|m| m.getattr(kind.class()))
            .and_then(|cls| cls.call1((message.clone(),)))
        {
            Ok(exc) => PyErr::from_value(exc),
            // The package is broken (the extension imported on its own):
            // still an exception, never a crash.
            Err(_) => pyo3::exceptions::PyRuntimeError::new_err(message),
        }
    })
}

/// The Python exception of a model error.
pub(crate) fn model_error(e: ModelError) -> PyErr {
    let kind = match e {
        ModelError::Shape { .. } | ModelError::NonFinite { .. } | ModelError::OutOfRange { .. } => {
            Kind::Input
        }
        ModelError::Invalid(_) | ModelError::Backend(_) => Kind::Model,
    };
    error(kind, e.to_string())
}

/// The Python exception of a planning error.
pub(crate) fn plan_error(e: PlanError) -> PyErr {
    let kind = match &e {
        PlanError::ObservationSize { .. }
        | PlanError::NonFiniteObservation { .. }
        | PlanError::GoalObservation { .. } => Kind::Input,
        PlanError::Config(_) | PlanError::Limit(_) | PlanError::Objective(_) => Kind::Config,
        PlanError::Model(m) => return model_error(m.clone()),
    };
    error(kind, e.to_string())
}

/// The Python exception of a simulation error.
pub(crate) fn sim_error(e: SimError) -> PyErr {
    match e {
        SimError::Plan(p) => plan_error(p),
        SimError::Model(m) => model_error(m),
        SimError::Scenario { .. } | SimError::Limit { .. } => error(Kind::Config, e.to_string()),
        SimError::Io { .. } | SimError::Urdf { .. } | SimError::Scene { .. } => {
            error(Kind::Sim, e.to_string())
        }
    }
}

/// The Python exception of a data-collection error.
pub(crate) fn collect_error(e: CollectError) -> PyErr {
    match e {
        CollectError::Sim(s) => sim_error(s),
        CollectError::Config(_) => error(Kind::Config, e.to_string()),
        other => error(Kind::Sim, other.to_string()),
    }
}
