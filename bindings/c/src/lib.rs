//! # telic-c — the C ABI of the Telic planning engine
//!
//! What a C or C++ control stack (a ROS 2 controller plugin, a vendor SDK)
//! links to embed Telic: opaque handles, plain C types, status codes and
//! caller-owned buffers, over the same engine and the same configuration
//! schema as the Python bindings. The header is `include/telic.h`,
//! generated from this crate by cbindgen (a test keeps it in step).
//!
//! ```text
//! telic_model_analytic / telic_model_load      → TelicModel       (where the model comes from)
//! telic_planner_new(model, scenario TOML)      → TelicPlanner     (plan, set_target, set_goal_observation)
//! telic_controller_start(planner, config TOML) → TelicController  (observe, action, metrics, restart, stop)
//! ```
//!
//! Rules every exported function keeps:
//!
//! - It returns a [`TelicStatus`]; on an error, [`telic_last_error`] gives
//!   the message on the calling thread. Null pointers, buffers of the wrong
//!   length, misaligned buffers, NaN and infinite inputs and strings that
//!   are not UTF-8 are errors, never undefined behaviour on our side.
//! - No panic crosses the boundary: each call runs inside `catch_unwind`; a
//!   panic becomes [`TelicStatus::Panic`] and the handle it happened in is
//!   marked dead (every later call on it returns [`TelicStatus::Dead`]; it
//!   can still be freed).
//! - The caller owns what it passes in and frees what it gets out with the
//!   matching `*_free`/`*_stop` function. Handles are not thread-safe: one
//!   thread at a time per handle; different handles may be used from
//!   different threads at once.
//! - `telic_planner_plan` (after its first call), `telic_controller_observe`
//!   and `telic_controller_action` do not allocate, as in Rust.
#![deny(missing_docs)]
// The C ABI is unsafe by nature: raw pointers come in from C. Every unsafe
// block is commented with why it is sound (clippy: undocumented_unsafe_blocks).
#![allow(unsafe_code)]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

mod controller;
mod error;
mod ffi;
mod model;
mod planner;

pub use controller::{
    TELIC_ACTION_SOURCE_COUNT, TelicActionInfo, TelicActionSource, TelicController,
    TelicControllerMetrics, telic_action_source_name, telic_controller_action,
    telic_controller_metrics, telic_controller_observe, telic_controller_planner_error,
    telic_controller_restart, telic_controller_start, telic_controller_stop,
};
pub use error::{TelicStatus, telic_last_error};
pub use model::{
    TelicModel, TelicModelDims, telic_model_analytic, telic_model_dims, telic_model_free,
    telic_model_load,
};
pub use planner::{
    TelicPlanResult, TelicPlanStatus, TelicPlanner, TelicPlannerDims, telic_planner_dims,
    telic_planner_free, telic_planner_new, telic_planner_plan, telic_planner_reseed,
    telic_planner_reset, telic_planner_set_goal_observation, telic_planner_set_target,
};

/// The library's version, e.g. `"0.1.0"`: a static string, never freed.
/// Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn telic_version() -> *const std::ffi::c_char {
    const VERSION: &std::ffi::CStr = match std::ffi::CStr::from_bytes_with_nul(
        concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes(),
    ) {
        Ok(v) => v,
        Err(_) => c"unknown",
    };
    VERSION.as_ptr()
}

/// Test hooks, compiled only with the `fault-injection` feature (the
/// crate's own tests): not part of the C API.
#[cfg(feature = "fault-injection")]
#[doc(hidden)]
pub mod fault {
    pub use crate::planner::panic_in_next_plan;
}

// The C ABI speaks `double`: the engine's scalar must stay `f64`.
const _: () = assert!(size_of::<telic::Real>() == size_of::<f64>());
