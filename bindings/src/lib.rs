//! `telic._native`: the compiled core of the Python package `telic`.
//!
//! Thin and coarse, as the bindings of tokenizers are: Python hands over
//! plain data (dicts of the scenario-file schema, numpy arrays), Rust compiles
//! it once and exposes a few calls that do real work with the interpreter
//! lock released ([`Python::detach`]). Errors are the `telic.errors`
//! hierarchy, never a crash. The Python-facing documentation is the stub
//! `python/telic/_native.pyi`.

use pyo3::prelude::*;

mod controller;
mod convert;
mod errors;
mod model;
mod package;
mod planner;
mod run;
mod scene;

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<model::PyWorldModel>()?;
    m.add_class::<planner::PyPlanner>()?;
    m.add_class::<planner::PyPlan>()?;
    m.add_class::<scene::PyScene>()?;
    m.add_class::<controller::PyController>()?;
    m.add_function(wrap_pyfunction!(run::run, m)?)?;
    m.add_function(wrap_pyfunction!(run::collect, m)?)?;
    m.add_function(wrap_pyfunction!(run::scenario, m)?)?;
    m.add_function(wrap_pyfunction!(run::scenes, m)?)?;
    m.add_function(wrap_pyfunction!(run::episode_seed, m)?)?;
    m.add_function(wrap_pyfunction!(package::set_package_data, m)?)?;
    m.add_function(wrap_pyfunction!(package::data_dir, m)?)?;
    m.add_function(wrap_pyfunction!(package::cli_main, m)?)?;
    Ok(())
}
