//! Errors. Not converging, running out of time or finding no feasible plan are
//! *statuses* of a successful call ([`crate::PlanStatus`]); errors are for bad
//! input and failed calls.

use thiserror::Error;

/// A world model could not answer.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum ModelError {
    /// An input buffer does not hold a whole number of rows of the expected width,
    /// or two inputs disagree on the batch size.
    #[error("{what}: got {got} values, expected {expected}")]
    Shape {
        /// Which buffer.
        what: &'static str,
        /// Length received.
        got: usize,
        /// Length required.
        expected: usize,
    },
    /// An input holds NaN or infinity.
    #[error("{what} contains a non-finite value at index {index}")]
    NonFinite {
        /// Which buffer.
        what: &'static str,
        /// First offending index.
        index: usize,
    },
    /// An input value is outside the range the model accepts (a pixel of an
    /// image observation outside `0..=255`).
    #[error("{what} at index {index} is {value}, outside [{lower}, {upper}]")]
    OutOfRange {
        /// Which values.
        what: &'static str,
        /// First offending index in the buffer.
        index: usize,
        /// The value found there.
        value: f64,
        /// Smallest value allowed.
        lower: f64,
        /// Largest value allowed.
        upper: f64,
    },
    /// The model's description is inconsistent or unusable.
    #[error("invalid model: {0}")]
    Invalid(String),
    /// A backend (e.g. an inference runtime) failed.
    #[error("model backend failed: {0}")]
    Backend(String),
}

/// A planning call failed. See [`crate::PlanStatus`] for outcomes that are not errors.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum PlanError {
    /// The observation has the wrong size.
    #[error("observation has {got} values, the model expects {expected}")]
    ObservationSize {
        /// Length received.
        got: usize,
        /// Length required.
        expected: usize,
    },
    /// The observation holds NaN or infinity.
    #[error("observation contains a non-finite value ({value}) at index {index}")]
    NonFiniteObservation {
        /// First offending index.
        index: usize,
        /// The value found there.
        value: f64,
    },
    /// A configuration value is out of range.
    #[error("invalid config: {0}")]
    Config(String),
    /// A size or duration is above its documented limit
    /// ([`crate::limits`]); checked before anything is allocated.
    #[error("invalid config: {0}")]
    Limit(#[from] crate::LimitError),
    /// The objective does not fit the model.
    #[error("invalid objective: {0}")]
    Objective(crate::objective::ObjectiveError),
    /// The world model failed.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// A goal observation was refused by
    /// [`Planner::set_goal_observation`](crate::Planner::set_goal_observation):
    /// `cause` is the error `plan` would give for the same observation
    /// ([`PlanError::ObservationSize`], [`PlanError::NonFiniteObservation`]),
    /// or the world model's failure to encode it.
    #[error("goal observation for cost term '{term}': {cause}")]
    GoalObservation {
        /// The latent term whose goal was being set.
        term: String,
        /// Why it was refused.
        cause: Box<PlanError>,
    },
}

/// Checks that every value of `xs` is finite.
pub(crate) fn check_finite(what: &'static str, xs: &[f64]) -> Result<(), ModelError> {
    match xs.iter().position(|x| !x.is_finite()) {
        Some(index) => Err(ModelError::NonFinite { what, index }),
        None => Ok(()),
    }
}
