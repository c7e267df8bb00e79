//! What the installed package needs of the native core: where its data
//! folder is (the shipped scenes, assets and models travel in the wheel)
//! and the `telic` command, which is the program of `telic-sim`.

use pyo3::prelude::*;
use std::ffi::OsString;
use std::path::PathBuf;
use telic_sim::scenario;

/// Names the installed package's data folder (`telic/data`, laid out as a
/// checkout: `sim/scenarios`, `sim/assets`, `models`), or forgets it with
/// `None`. Called by `telic/__init__.py` on import; `TELIC_HOME` and a
/// checkout at or above the current folder still come first
/// ([`scenario::data_root`]).
#[pyfunction]
#[pyo3(signature = (root))]
pub(crate) fn set_package_data(root: Option<PathBuf>) {
    scenario::set_package_data(root);
}

/// The folder whose scenarios, assets and shipped models this process
/// uses now (it depends on `TELIC_HOME` and the current folder).
#[pyfunction]
pub(crate) fn data_dir() -> PathBuf {
    scenario::data_root()
}

/// Runs the `telic` program on `argv` (the program's name first) with the
/// interpreter lock released and returns its exit status; an interrupted
/// `run` or `collect` ends the process, as the program does.
#[pyfunction]
pub(crate) fn cli_main(py: Python<'_>, argv: Vec<OsString>) -> i32 {
    py.detach(|| telic_sim::cli::main(argv))
}
