//! Status codes, the calling thread's last error message, and the guard
//! every exported function runs in, so that no panic crosses into C.

use std::any::Any;
use std::cell::RefCell;
use std::ffi::{CString, c_char};
use std::panic::{AssertUnwindSafe, catch_unwind};
use telic::{ModelError, PlanError};
use telic_sim::SimError;

/// The outcome of a call. Anything but `TELIC_STATUS_OK` is an error whose
/// message [`telic_last_error`] returns. The kinds are those of the Python
/// bindings' exceptions (`InputError`, `ConfigError`, `ModelError`,
/// `SimError`), plus the three only C has.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TelicStatus {
    /// Success.
    Ok = 0,
    /// A pointer the call needs was null.
    NullPointer = 1,
    /// A buffer of the wrong length or alignment, a NaN or infinite value,
    /// a string that is not UTF-8, an observation the model refuses.
    InvalidInput = 2,
    /// TOML, objective, planner or controller settings that cannot be used
    /// (an unknown key or readout, a bad value), an unknown model name or
    /// cost term, a planner already handed to a controller.
    Config = 3,
    /// A world model that cannot be loaded (e.g. a missing bundle) or whose
    /// call failed.
    Model = 4,
    /// A scene named as an analytic model that cannot be built.
    Sim = 5,
    /// A panic was caught inside the call; the handle is now dead.
    Panic = 6,
    /// The handle died in an earlier panic: free it and make another.
    Dead = 7,
}

/// An error on its way to C: a status and its message.
#[derive(Debug)]
pub(crate) struct Error {
    pub(crate) status: TelicStatus,
    pub(crate) message: String,
}

impl Error {
    pub(crate) fn new(status: TelicStatus, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    pub(crate) fn null(what: &str) -> Self {
        Self::new(
            TelicStatus::NullPointer,
            format!("{what} is a null pointer"),
        )
    }

    pub(crate) fn input(message: impl Into<String>) -> Self {
        Self::new(TelicStatus::InvalidInput, message)
    }

    pub(crate) fn config(message: impl Into<String>) -> Self {
        Self::new(TelicStatus::Config, message)
    }
}

impl From<ModelError> for Error {
    fn from(e: ModelError) -> Self {
        let status = match e {
            ModelError::Shape { .. }
            | ModelError::NonFinite { .. }
            | ModelError::OutOfRange { .. } => TelicStatus::InvalidInput,
            ModelError::Invalid(_) | ModelError::Backend(_) => TelicStatus::Model,
        };
        Self::new(status, e.to_string())
    }
}

impl From<PlanError> for Error {
    fn from(e: PlanError) -> Self {
        let status = match &e {
            PlanError::ObservationSize { .. }
            | PlanError::NonFiniteObservation { .. }
            | PlanError::GoalObservation { .. } => TelicStatus::InvalidInput,
            PlanError::Config(_) | PlanError::Limit(_) | PlanError::Objective(_) => {
                TelicStatus::Config
            }
            PlanError::Model(m) => return m.clone().into(),
        };
        Self::new(status, e.to_string())
    }
}

impl From<SimError> for Error {
    fn from(e: SimError) -> Self {
        match e {
            SimError::Plan(p) => p.into(),
            SimError::Model(m) => m.into(),
            SimError::Scenario { .. } | SimError::Limit { .. } => Self::config(e.to_string()),
            SimError::Io { .. } | SimError::Urdf { .. } | SimError::Scene { .. } => {
                Self::new(TelicStatus::Sim, e.to_string())
            }
        }
    }
}

thread_local! {
    /// The message of the latest failed call on this thread.
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

fn set_last_error(message: &str) {
    // A NUL inside a message would end it early in C: write it as a space.
    let text = CString::new(message.replace('\0', " ")).unwrap_or_default();
    LAST_ERROR.with(|last| *last.borrow_mut() = text);
}

/// The message of the latest call that failed on the calling thread, as a
/// NUL-terminated UTF-8 string; empty when none has. Successful calls leave
/// it as it was, so read it right after a call returns an error.
///
/// Ownership: the string belongs to the library; it stays valid until the
/// next failing call on the same thread. Never null, never freed by the
/// caller. Thread-safety: each thread has its own message.
#[unsafe(no_mangle)]
pub extern "C" fn telic_last_error() -> *const c_char {
    // `LAST_ERROR` lives as long as the thread and its `CString` is only
    // replaced by a failing call, which is what the contract above says.
    LAST_ERROR.with(|last| last.borrow().as_ptr())
}

/// Runs `f`, turning its error or its panic into a status and the thread's
/// last error. The one way an exported function calls into Rust.
pub(crate) fn guard(f: impl FnOnce() -> Result<(), Error>) -> TelicStatus {
    let outcome = catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|p| Err(panicked(&*p)));
    match outcome {
        Ok(()) => TelicStatus::Ok,
        Err(e) => {
            set_last_error(&e.message);
            e.status
        }
    }
}

/// The error of a caught panic, with its message when it has one.
pub(crate) fn panicked(payload: &(dyn Any + Send)) -> Error {
    let what = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)");
    Error::new(
        TelicStatus::Panic,
        format!("a panic inside telic was caught (the handle is now dead): {what}"),
    )
}

/// A handle that a panic inside a call leaves dead: its state may be
/// half-updated, so it refuses every later call.
pub(crate) trait Handle {
    /// What the handle is, for messages ("planner").
    const WHAT: &'static str;
    /// True once a panic happened inside a call on it.
    fn is_dead(&self) -> bool;
    /// Marks it dead.
    fn kill(&mut self);
}

/// Runs `f` on the handle behind `ptr` inside [`guard`]: a null pointer and
/// a dead handle are errors, and a panic in `f` kills the handle.
///
/// # Safety
/// `ptr` is null or points to a live handle made by this library that no
/// other thread uses during the call.
pub(crate) unsafe fn with_handle<H: Handle>(
    ptr: *mut H,
    f: impl FnOnce(&mut H) -> Result<(), Error>,
) -> TelicStatus {
    guard(|| {
        // SAFETY: the caller's contract: null or a live, unshared handle.
        let handle = unsafe { ptr.as_mut() }.ok_or_else(|| Error::null(H::WHAT))?;
        if handle.is_dead() {
            return Err(Error::new(
                TelicStatus::Dead,
                format!(
                    "this {} died in an earlier panic: free it and make another",
                    H::WHAT
                ),
            ));
        }
        match catch_unwind(AssertUnwindSafe(|| f(handle))) {
            Ok(result) => result,
            Err(payload) => {
                handle.kill();
                Err(panicked(&*payload))
            }
        }
    })
}
