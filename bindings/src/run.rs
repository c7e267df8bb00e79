//! Headless batches: `telic.run` (episodes → results) and `telic.collect`
//! (episodes → a training data set), as the `telic` program runs them.

use crate::convert::{from_plain, merged, to_plain};
use crate::errors::{Kind, collect_error, error, sim_error};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::path::PathBuf;
use telic_sim::collect::{CollectConfig, collect as collect_data, prepare_output};
use telic_sim::episode::{Summary, run_batch};
use telic_sim::scenario::{Scenario, scenario_dir};

/// Names of the shipped scenes.
pub(crate) fn scene_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(scenario_dir())
        .map(|d| {
            d.filter_map(Result::ok)
                .filter_map(|e| {
                    let p = e.path();
                    (p.extension()? == "toml")
                        .then(|| p.file_stem()?.to_str().map(str::to_string))?
                })
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Loads `scenario` with the optional overrides of `run` and `collect`.
fn load(
    scenario: &str,
    model: Option<String>,
    planner: Option<&Bound<'_, PyDict>>,
    max_time: Option<f64>,
) -> PyResult<Scenario> {
    let mut s = Scenario::load(scenario).map_err(sim_error)?;
    if let Some(m) = model {
        s.model = m.parse().map_err(|e: String| error(Kind::Config, e))?;
    }
    if let Some(p) = planner {
        s.planner = merged(&s.planner, p.as_any(), "planner")?;
    }
    if let Some(t) = max_time {
        s.episode.max_time = t;
    }
    s.validate(scenario).map_err(sim_error)?;
    Ok(s)
}

/// What `telic.run` is asked for: the scenario, how many episodes from
/// which seed, the overrides and the episodes run at once.
struct RunRequest<'a, 'py> {
    scenario: String,
    episodes: usize,
    seed: u64,
    model: Option<String>,
    planner: Option<&'a Bound<'py, PyDict>>,
    max_time: Option<f64>,
    jobs: usize,
}

/// Runs `episodes` episodes of `scenario` and returns
/// `{"scenario", "model", "episodes": [...], "summary": {...}}`.
#[pyfunction]
#[pyo3(signature = (scenario, episodes = 20, seed = 1, *, model = None, planner = None, max_time = None, jobs = 1))]
pub(crate) fn run(
    scenario: String,
    episodes: usize,
    seed: u64,
    model: Option<String>,
    planner: Option<&Bound<'_, PyDict>>,
    max_time: Option<f64>,
    jobs: usize,
) -> PyResult<Py<PyAny>> {
    let request = RunRequest {
        scenario,
        episodes,
        seed,
        model,
        planner,
        max_time,
        jobs,
    };
    Python::attach(|py| Ok(run_request(py, request)?.unbind()))
}

/// [`run`] on its request.
fn run_request<'py>(py: Python<'py>, r: RunRequest<'_, '_>) -> PyResult<Bound<'py, PyAny>> {
    let RunRequest {
        scenario,
        episodes,
        seed,
        model,
        planner,
        max_time,
        jobs,
    } = r;
    if episodes == 0 {
        return Err(error(Kind::Config, "episodes must be at least 1"));
    }
    if jobs == 0 {
        return Err(error(Kind::Config, "jobs must be at least 1"));
    }
    telic_sim::limits::check("run", "episodes", episodes, telic_sim::limits::MAX_EPISODES)
        .and_then(|()| telic_sim::limits::check("run", "jobs", jobs, telic_sim::limits::MAX_JOBS))
        .map_err(sim_error)?;
    let s = load(&scenario, model, planner, max_time)?;
    let results = py
        .detach(|| run_batch(&s, episodes, seed, jobs, &|_| {}))
        .map_err(sim_error)?;
    let summary = Summary::of(&results);
    let out = PyDict::new(py);
    out.set_item("scenario", s.scene_name())?;
    out.set_item(
        "model",
        s.bundle_dir()
            .map_or_else(|| "analytic".to_string(), |d| d.display().to_string()),
    )?;
    out.set_item("seed", seed)?;
    out.set_item("episodes", to_plain(py, &results)?)?;
    out.set_item("summary", to_plain(py, &summary)?)?;
    Ok(out.into_any())
}

/// Records `episodes` exploration episodes of `scenario` into the data-set
/// folder `out` (the format `python -m telic.train` reads); returns its
/// description (`meta.json`). `settings` takes the other collection settings.
#[pyfunction]
#[pyo3(signature = (scenario, out, episodes = 100, seed = 1, **settings))]
pub(crate) fn collect<'py>(
    py: Python<'py>,
    scenario: String,
    out: PathBuf,
    episodes: usize,
    seed: u64,
    settings: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyAny>> {
    let s = load(&scenario, None, None, None)?;
    let mut config: CollectConfig = match settings {
        Some(d) => from_plain(d.as_any(), "collect settings")?,
        None => CollectConfig::default(),
    };
    config.episodes = episodes;
    config.seed = seed;
    config.validate().map_err(collect_error)?;
    let meta = py
        .detach(|| {
            prepare_output(&out)?;
            let data = collect_data(&s, &config, &|_| {})?;
            data.write(&out)?;
            Ok(data.meta)
        })
        .map_err(collect_error)?;
    to_plain(py, &meta)
}

/// The scenario `name` (a shipped scene or a .toml file) as plain data.
#[pyfunction]
pub(crate) fn scenario<'py>(py: Python<'py>, name: String) -> PyResult<Bound<'py, PyAny>> {
    let s = Scenario::load(&name).map_err(sim_error)?;
    to_plain(py, &s)
}

/// Names of the shipped scenes.
#[pyfunction]
pub(crate) fn scenes() -> Vec<String> {
    scene_names()
}

/// The seed of episode `index` of a run seeded with `seed` (as `run` draws them).
#[pyfunction]
pub(crate) fn episode_seed(seed: u64, index: usize) -> u64 {
    telic_sim::episode::episode_seed(seed, index)
}
