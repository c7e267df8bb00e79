//! Starting ONNX Runtime once per process, from the library the application
//! names.
//!
//! `ort` is built with `load-dynamic`: nothing is linked or downloaded at build
//! time, and the shared library is opened on first use. The library does not
//! look for it: `ORT_DYLIB_PATH` names it, else the path the application
//! handed in with [`use_onnx_runtime`]. The `telic` program and `telic-sim`
//! find it in the `onnxruntime` wheel (`telic_sim::onnx_runtime`); the Python
//! package sets `ORT_DYLIB_PATH` when it is imported.

use crate::error::ModelError;
use ort::environment::Environment;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock, PoisonError};

/// The ONNX Runtime release Telic is built and tested against.
pub const ONNXRUNTIME_VERSION: &str = "1.31.1";

/// Environment variable naming the ONNX Runtime shared library to load.
pub const ORT_DYLIB_PATH: &str = "ORT_DYLIB_PATH";

static ENVIRONMENT: OnceLock<Environment> = OnceLock::new();
/// Serialises first-time initialisation; a failed attempt is not cached, so a
/// caller may fix the installation and try again in the same process.
static INIT: Mutex<()> = Mutex::new(());
/// The library the application handed in ([`use_onnx_runtime`]).
static HANDED_IN: OnceLock<PathBuf> = OnceLock::new();

/// How to install ONNX Runtime or point Telic at it, for error messages.
#[must_use]
pub fn install_hint() -> String {
    format!(
        "install ONNX Runtime with `python3 -m pip install onnxruntime=={ONNXRUNTIME_VERSION}` \
         (Telic finds the library inside the wheel), or set {ORT_DYLIB_PATH} to the path \
         of the ONNX Runtime shared library ({}onnxruntime{}, version {ONNXRUNTIME_VERSION} \
         or newer)",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    )
}

/// Names the ONNX Runtime shared library to load when `ORT_DYLIB_PATH` is not
/// set. An application calls it once, before the first bundle is loaded; the
/// first path handed in is kept. Returns whether `path` is the one kept.
pub fn use_onnx_runtime(path: impl Into<PathBuf>) -> bool {
    let path = path.into();
    HANDED_IN.get_or_init(|| path.clone()) == &path
}

/// The ONNX Runtime shared library this process loads: the one named by
/// `ORT_DYLIB_PATH` when set (it must be a file), else the one handed in with
/// [`use_onnx_runtime`].
///
/// The error says how to install it.
pub fn onnx_runtime_path() -> Result<PathBuf, ModelError> {
    if let Some(path) = std::env::var_os(ORT_DYLIB_PATH).filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(ModelError::Backend(format!(
                "{ORT_DYLIB_PATH}={} is not a file; {}",
                path.display(),
                install_hint()
            )))
        };
    }
    HANDED_IN.get().cloned().ok_or_else(|| {
        ModelError::Backend(format!(
            "ONNX Runtime was not found ({ORT_DYLIB_PATH} is not set and the program named no \
             library with telic::model::use_onnx_runtime); {}",
            install_hint()
        ))
    })
}

/// The process-wide ONNX Runtime environment, created on first call. Public
/// (hidden) for tools that run graphs of their own beside a bundle's, such as
/// `telic bench`'s matrix-multiply reference.
pub fn environment() -> Result<&'static Environment, ModelError> {
    if let Some(env) = ENVIRONMENT.get() {
        return Ok(env);
    }
    let _guard = INIT.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(env) = ENVIRONMENT.get() {
        return Ok(env);
    }
    let path = onnx_runtime_path()?;
    let builder = ort::init_from(&path).map_err(|e| {
        ModelError::Backend(format!(
            "ONNX Runtime at {} could not be loaded: {e}; {}",
            path.display(),
            install_hint()
        ))
    })?;
    let env = builder
        .with_name("telic")
        .with_telemetry(false)
        .build()
        .map_err(|e| ModelError::Backend(format!("ONNX Runtime environment: {e}")))?;
    Ok(ENVIRONMENT.get_or_init(|| env))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fix_it_names_both_remedies() {
        let m = install_hint();
        assert!(m.contains("pip install onnxruntime==1.31.1") && m.contains(ORT_DYLIB_PATH));
    }
}
