//! Why an objective does not compile, or refuses a target: one kind per
//! thing a caller can fix, each printing the message users have always read.

use thiserror::Error;

/// The term, body or guardrail an [`ObjectiveError`] is about, as its
/// message names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Item {
    /// A cost term of the spec, by name.
    Term(String),
    /// A cost term whose target is being set, by name.
    Target(String),
    /// A robot body, by name.
    Body(String),
    /// A guardrail, by name.
    Guardrail(String),
}

impl std::fmt::Display for Item {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Item::Term(name) => write!(f, "cost term '{name}'"),
            Item::Target(name) => write!(f, "term '{name}'"),
            Item::Body(name) => write!(f, "body '{name}'"),
            Item::Guardrail(name) => write!(f, "guardrail '{name}'"),
        }
    }
}

/// An objective that does not fit its readouts, or a value it refuses.
/// Match [`ObjectiveError::cause`] for the kind; the message names the item
/// at fault.
#[derive(Clone, Debug, PartialEq, Error)]
pub enum ObjectiveError {
    /// `error` concerns the term, body or guardrail `item`.
    #[error("{item}: {error}")]
    In {
        /// What the error is about.
        item: Item,
        /// What is wrong with it.
        error: Box<ObjectiveError>,
    },
    /// A readout name the model (or the scene's ground truth) lacks.
    #[error(
        "readout '{readout}' is not produced by model '{model}' (it has: {})",
        available.join(", ")
    )]
    UnknownReadout {
        /// The name asked for.
        readout: String,
        /// The model (or `ground truth`) whose readouts were searched.
        model: String,
        /// The readouts it has.
        available: Vec<String>,
    },
    /// A list or buffer of the wrong length, or an empty one.
    #[error("{message}")]
    BadShape {
        /// What was expected and what was given.
        message: String,
    },
    /// A value out of range or not finite.
    #[error("{message}")]
    BadValue {
        /// Which value, and what it must be.
        message: String,
    },
    /// Two entries of one list share a name.
    #[error("the name '{name}' appears more than once in {list}; names must be unique")]
    Duplicate {
        /// `terms`, `guardrails` or `bodies`.
        list: &'static str,
        /// The repeated name.
        name: String,
    },
    /// A geometric guardrail in an objective that declares no bodies.
    #[error("guardrail '{guardrail}' needs robot bodies, but the objective declares none")]
    NoBodies {
        /// The guardrail.
        guardrail: String,
    },
    /// A guardrail names a body the objective does not declare.
    #[error("unknown body '{body}'")]
    UnknownBody {
        /// The name asked for.
        body: String,
    },
    /// No cost term has this name.
    #[error("no cost term named '{term}'{}", terms.as_ref().map_or(String::new(), |t| format!(" (terms: {})", t.join(", "))))]
    UnknownTerm {
        /// The name asked for.
        term: String,
        /// The terms there are, when the message lists them.
        terms: Option<Vec<String>>,
    },
    /// A goal observation for a term that is neither latent nor a readout term.
    #[error(
        "cost term '{term}' is {kind} term: only a latent term (residual kind \
         \"latent\") or a readout term takes a goal observation"
    )]
    NotLatent {
        /// The term.
        term: String,
        /// What it is: `an action` or `an action-rate`.
        kind: &'static str,
    },
    /// A target for an action-rate term, which has none.
    #[error("term '{term}' (action rate) has no target")]
    NoTarget {
        /// The term.
        term: String,
    },
    /// Planning before a latent term's goal is set.
    #[error("latent goal is not set (call set_target with {latent_dim} values)")]
    GoalNotSet {
        /// How many values the goal takes.
        latent_dim: usize,
    },
}

impl ObjectiveError {
    /// A [`ObjectiveError::BadShape`] saying `message`.
    pub(crate) fn shape(message: impl Into<String>) -> Self {
        Self::BadShape {
            message: message.into(),
        }
    }

    /// A [`ObjectiveError::BadValue`] saying `message`.
    pub(crate) fn value(message: impl Into<String>) -> Self {
        Self::BadValue {
            message: message.into(),
        }
    }

    /// This error, about `item`.
    #[must_use]
    pub(crate) fn at(self, item: Item) -> Self {
        Self::In {
            item,
            error: Box::new(self),
        }
    }

    /// The kind of error, without the item it is about.
    #[must_use]
    pub fn cause(&self) -> &ObjectiveError {
        match self {
            Self::In { error, .. } => error.cause(),
            other => other,
        }
    }

    /// The term, body or guardrail at fault, if the error is about one.
    #[must_use]
    pub fn item(&self) -> Option<&Item> {
        match self {
            Self::In { item, .. } => Some(item),
            _ => None,
        }
    }
}
