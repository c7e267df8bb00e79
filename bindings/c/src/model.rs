//! `TelicModel`: where a world model comes from (a bundle folder or an
//! analytic model by name), as `telic.WorldModel` in Python.

use crate::error::{Error, TelicStatus, guard};
use crate::ffi::{check_out, optional_text, text, write};
use std::ffi::c_char;
use std::path::PathBuf;
use telic::ModelSpec;
use telic_sim::model_source::{ModelSource, Params};

/// A world model's source and its sizes. Planners build their own instance
/// from it, so one model may feed several planners. Opaque.
#[derive(Debug)]
pub struct TelicModel {
    pub(crate) source: ModelSource,
    pub(crate) spec: ModelSpec,
}

/// The sizes of a model's vectors and its time step.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct TelicModelDims {
    /// Length of one observation `O` (pixels first for a model that sees an image).
    pub observations: usize,
    /// Length of one action `A`.
    pub actions: usize,
    /// Number of readouts `P`.
    pub readouts: usize,
    /// Size of the latent state `D`.
    pub latent: usize,
    /// Time step of one prediction, in seconds (the control period).
    pub dt: f64,
}

impl TelicModel {
    /// Builds one instance of `source` to learn its spec, as Python does.
    fn new(source: ModelSource) -> Result<Self, Error> {
        let model = source.build()?;
        Ok(Self {
            spec: model.spec().clone(),
            source,
        })
    }

    pub(crate) fn dims(&self) -> TelicModelDims {
        TelicModelDims {
            observations: self.spec.obs_dim(),
            actions: self.spec.action_dim(),
            readouts: self.spec.readout_dim(),
            latent: self.spec.latent_dim,
            dt: self.spec.dt,
        }
    }
}

/// Hands a new model to C through `out`.
///
/// # Safety
/// `out` is null or valid for writing one pointer.
unsafe fn give(model: TelicModel, out: *mut *mut TelicModel) -> Result<(), Error> {
    let ptr = Box::into_raw(Box::new(model));
    // SAFETY: the caller's contract on `out`; checked non-null before the
    // model was built, so `ptr` is not leaked.
    unsafe { write(out, ptr, "out") }
}

/// Loads a world-model bundle folder (manifest.toml and ONNX graphs).
///
/// `path`: the folder, a NUL-terminated UTF-8 string. `threads`: ONNX
/// Runtime's threads inside one operator (1 is usual; 0 lets it use every
/// core). ONNX Runtime is found through `ORT_DYLIB_PATH`, else in the
/// `onnxruntime` Python wheel. On success `*out` is a new model that the
/// caller frees with `telic_model_free`; on error `*out` is untouched.
///
/// Errors: `NULL_POINTER`, `INVALID_INPUT` (not UTF-8), `MODEL` (a missing
/// or malformed bundle, no ONNX Runtime). Thread-safe (touches no handle).
///
/// # Safety
/// `path` is null or a NUL-terminated string; `out` is null or valid for
/// writing one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn telic_model_load(
    path: *const c_char,
    threads: usize,
    out: *mut *mut TelicModel,
) -> TelicStatus {
    guard(|| {
        // SAFETY: the caller's contract on `path`.
        let path = unsafe { text(path, "path") }?;
        check_out(out, "out")?;
        let model = TelicModel::new(ModelSource::Bundle(PathBuf::from(path), threads))?;
        // SAFETY: the caller's contract on `out`.
        unsafe { give(model, out) }
    })
}

/// An analytic model by name, with its parameters as TOML text.
///
/// `name`: `point_mass`, `unicycle`, `pendulum`, a shipped scene (e.g.
/// `navigate`: that scene's model with its settings) or a scenario `.toml`
/// file. `params_toml`: the model's parameters as TOML `key = value` lines
/// (e.g. `"dt = 0.1\nmax_speed = 1.0\ntau = 0.2"`; see `telic.WorldModel.analytic`
/// in Python for each model's keys and defaults), or NULL for the defaults;
/// scenes take none. On success `*out` is a new model that the caller frees
/// with `telic_model_free`; on error `*out` is untouched.
///
/// Errors: `NULL_POINTER`, `INVALID_INPUT` (not UTF-8), `CONFIG` (unknown
/// name, unknown or bad parameter, TOML syntax), `MODEL` (values the model
/// refuses), `SIM` (a scene that cannot be built). Thread-safe.
///
/// # Safety
/// `name` is null or a NUL-terminated string, `params_toml` is null or a
/// NUL-terminated string, `out` is null or valid for writing one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn telic_model_analytic(
    name: *const c_char,
    params_toml: *const c_char,
    out: *mut *mut TelicModel,
) -> TelicStatus {
    guard(|| {
        // SAFETY: the caller's contract on `name` and `params_toml`.
        let (name, params) = unsafe {
            (
                text(name, "name")?,
                optional_text(params_toml, "params_toml")?,
            )
        };
        check_out(out, "out")?;
        let params = read_params(name, params.unwrap_or(""))?;
        let source = ModelSource::analytic(name, params).map_err(Error::config)?;
        let model = TelicModel::new(source)?;
        // SAFETY: the caller's contract on `out`.
        unsafe { give(model, out) }
    })
}

/// TOML `key = value` lines as the plain data the model source reads.
fn read_params(name: &str, toml_text: &str) -> Result<Params, Error> {
    let what = || format!("parameters of analytic model '{name}'");
    let table: toml::Table =
        toml::from_str(toml_text).map_err(|e| Error::config(format!("{}: {e}", what())))?;
    match serde_json::to_value(table) {
        Ok(serde_json::Value::Object(map)) => Ok(map),
        Ok(_) => Err(Error::config(format!("{} must be a table", what()))),
        Err(e) => Err(Error::config(format!("{}: {e}", what()))),
    }
}

/// Writes the model's sizes and time step into `*out`.
///
/// Errors: `NULL_POINTER`. Thread-safe: the model is never changed after it
/// is made, so any number of threads may read it at once.
///
/// # Safety
/// `model` is null or a live model; `out` is null or valid for writing one
/// `TelicModelDims`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn telic_model_dims(
    model: *const TelicModel,
    out: *mut TelicModelDims,
) -> TelicStatus {
    guard(|| {
        // SAFETY: the caller's contract: null or a live model.
        let model = unsafe { model.as_ref() }.ok_or_else(|| Error::null("model"))?;
        // SAFETY: the caller's contract on `out`.
        unsafe { write(out, model.dims(), "out") }
    })
}

/// Frees a model made by `telic_model_load` or `telic_model_analytic`.
/// NULL is ignored. Planners made from it stay valid (they own their
/// model). Not thread-safe: no other call may use the model meanwhile or
/// after.
///
/// # Safety
/// `model` is null or a live model not freed before.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn telic_model_free(model: *mut TelicModel) {
    if model.is_null() {
        return;
    }
    // Dropping a model source cannot panic, but nothing may unwind into C.
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        // SAFETY: made by `Box::into_raw` in `give` and not freed before
        // (the caller's contract).
        drop(unsafe { Box::from_raw(model) });
    }));
}
