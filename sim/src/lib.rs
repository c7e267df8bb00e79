//! # telic-sim — rapier3d scenes, closed-loop episodes and ground-truth validation
//!
//! A [`World`] is a rapier3d world with a robot, randomised per episode from a
//! seed; a [`Scene`] is a world stepped by the caller under an episode's rules. The [`episode`] runner closes the loop (observe → plan → act → step
//! physics) and the validator checks every guardrail against the *true*
//! physics state at every physics step, so a model error that would break a
//! guardrail is counted, never hidden. [`collect`] records exploration data
//! for training learned world models.
#![deny(missing_docs)]

pub mod batch;
pub mod bench;
#[cfg(feature = "cli")]
pub mod cli;
pub mod collect;
pub mod episode;
pub mod error;
pub mod limits;
pub mod model_source;
#[cfg(feature = "onnx")]
pub mod onnx_runtime;
pub mod pacing;
pub mod perturb;
pub mod realtime;
#[cfg(feature = "rerun")]
pub mod record;
pub mod results;
pub mod scenario;
pub mod scene;

pub use error::SimError;
pub use scene::{EpisodeSetup, World};
pub use scene::{Scene, StepOutcome};
