//! # Telic — objective-driven planning for robots
//!
//! Every control tick Telic *imagines* the consequences of candidate action
//! sequences with a world model, scores them against an objective, and returns
//! the first action of the best plan that keeps every guardrail:
//!
//! ```text
//! minimise_U   Σ_{t<H} Σ_i wᵢ·normᵢ(rᵢ(y_{t+1}, z_{t+1}, u_t, u_{t−1}))  +  terminal terms
//! subject to   z_0 = encode(o_t),  z_{t+1} = predict(z_t, u_t),  y_t = readout(z_t)
//!              g_k(y_{t+1}) ≤ 0  for every guardrail k, step t        (hard, never weighed)
//!              u_lo ≤ u_t ≤ u_hi                                        (by construction)
//! ```
//!
//! - [`model`]: the [`WorldModel`] trait (batched `encode` / `predict` /
//!   `readout`), analytic backends, and learned models loaded from a
//!   world-model bundle ([`model::OnnxModel`], feature `onnx`).
//! - [`objective`]: cost terms and guardrails as plain data ([`ObjectiveSpec`]),
//!   compiled against a model's readout names.
//! - [`planner`]: MPPI, iCEM and gradient refinement behind [`Planner`], with
//!   feasible-first ranking, a shield and a safe fallback.
//! - [`controller`]: the real-time [`Controller`] a robot stack embeds: a
//!   planner thread re-plans on the newest observation while `observe` and
//!   `action` never wait; plans are advanced by elapsed time (zero-order hold)
//!   and the safe fallback is returned, with its reason, when the plan is
//!   stale, the planner failed or died, or a step ahead breaks a guardrail.
#![deny(missing_docs)]

pub mod controller;
pub mod error;
pub mod limits;
pub mod math;
pub mod model;
pub mod objective;
pub mod planner;
pub mod rng;

/// The scalar type of the engine.
pub type Real = f64;

pub use controller::{
    Action, ActionSource, Controller, ControllerConfig, ControllerMetrics, FallbackReason,
};
pub use error::{ModelError, PlanError};
pub use limits::LimitError;
pub use model::{ModelSpec, WorldModel};
pub use objective::{Objective, ObjectiveSpec};
pub use planner::{Plan, PlanStatus, Planner, PlannerConfig, PlannerKind, build};
