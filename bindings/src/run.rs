//! Headless batches: `telic.run` (episodes → results) and `telic.collect`
//! (episodes → a training data set), as the `telic` program runs them.

use crate::convert::{from_plain, merged, to_plain};
use crate::errors::{Kind, collect_error, error, sim_error};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::path::PathBuf;
use telic_sim::collect::{CollectConfig, collect as collect_data, prepare_output};
use telic_sim::episode::{Summary, run_batch};
use telic_sim::scenario::Scenario;

/// Names of the shipped scenes.
pub(crate) fn scene_names() -> Vec<String> {
    telic_sim::model_source::scene_names()
}

/// The optional overrides of `run` and `collect`.
#[derive(Default)]
struct Overrides<'py> {
    model: Option<String>,
    planner: Option<Bound<'py, PyDict>>,
    max_time: Option<f64>,
    /// The observation mode ("state", "pixels", "pixels+proprio").
    obs: Option<String>,
    /// The perturbation: a level's name, or a dict of `[perturb]` settings.
    perturb: Option<Bound<'py, PyAny>>,
}

/// Sets the scenario's `[perturb]` from Python: a level's name, or a dict of
/// its settings (merged into the scenario's).
pub(crate) fn set_perturb(s: &mut Scenario, p: &Bound<'_, PyAny>) -> PyResult<()> {
    match p.extract::<String>() {
        Ok(level) => {
            s.perturb.level = level.parse().map_err(|e: String| error(Kind::Config, e))?;
        }
        Err(_) => s.perturb = merged(&s.perturb, p, "perturb")?,
    }
    s.validate(s.scene_name()).map_err(sim_error)
}

/// Loads `scenario` with the overrides of `run` and `collect`.
fn load(scenario: &str, overrides: Overrides<'_>) -> PyResult<Scenario> {
    let Overrides {
        model,
        planner,
        max_time,
        obs,
        perturb,
    } = overrides;
    let mut s = Scenario::load(scenario).map_err(sim_error)?;
    if let Some(mode) = obs {
        s.observation.mode = mode.parse().map_err(|e: String| error(Kind::Config, e))?;
    }
    if let Some(m) = model {
        s.model = m.parse().map_err(|e: String| error(Kind::Config, e))?;
    }
    if let Some(p) = planner {
        s.planner = merged(&s.planner, p.as_any(), "planner")?;
    }
    if let Some(t) = max_time {
        s.episode.max_time = t;
    }
    if let Some(p) = perturb {
        set_perturb(&mut s, &p)?;
    }
    s.validate(scenario).map_err(sim_error)?;
    Ok(s)
}

/// What `telic.run` is asked for: the scenario, how many episodes from
/// which seed, the overrides and the episodes run at once.
struct RunRequest<'py> {
    scenario: String,
    episodes: usize,
    seed: u64,
    overrides: Overrides<'py>,
    jobs: usize,
}

/// Runs `episodes` episodes of `scenario` and returns
/// `{"scenario", "model", "episodes": [...], "summary": {...}}`. The
/// keyword options are those of the text signature (read by
/// [`run_options`]).
#[pyfunction]
#[pyo3(
    signature = (scenario, episodes = 20, seed = 1, **options),
    text_signature = "(scenario, episodes=20, seed=1, *, model=None, planner=None, max_time=None, jobs=1, obs=None, perturb=None)"
)]
pub(crate) fn run(
    scenario: String,
    episodes: usize,
    seed: u64,
    options: Option<&Bound<'_, PyDict>>,
) -> PyResult<Py<PyAny>> {
    let (overrides, jobs) = run_options(options)?;
    let request = RunRequest {
        scenario,
        episodes,
        seed,
        overrides,
        jobs,
    };
    Python::attach(|py| Ok(run_request(py, request)?.unbind()))
}

/// The keyword options of [`run`]: the scenario's overrides and `jobs`
/// (default 1). An unknown keyword is a `TypeError`, as Python's own.
fn run_options<'py>(options: Option<&Bound<'py, PyDict>>) -> PyResult<(Overrides<'py>, usize)> {
    let mut out = Overrides::default();
    let mut jobs = 1;
    let Some(options) = options else {
        return Ok((out, jobs));
    };
    let named = |key: &str, e: PyErr| {
        error(
            Kind::Config,
            format!("run(): {key}: {}", e.value(options.py())),
        )
    };
    for (key, value) in options.iter() {
        let key: String = key.extract()?;
        if value.is_none() && key != "jobs" {
            continue;
        }
        match key.as_str() {
            "model" => out.model = Some(value.extract().map_err(|e| named(&key, e))?),
            "max_time" => out.max_time = Some(value.extract().map_err(|e| named(&key, e))?),
            "jobs" => jobs = value.extract().map_err(|e| named(&key, e))?,
            "obs" => out.obs = Some(value.extract().map_err(|e| named(&key, e))?),
            "perturb" => out.perturb = Some(value),
            "planner" => {
                let p = value
                    .cast_into::<PyDict>()
                    .map_err(|_| error(Kind::Config, "run(): planner must be a dict"))?;
                out.planner = Some(p);
            }
            other => {
                return Err(pyo3::exceptions::PyTypeError::new_err(format!(
                    "run() got an unexpected keyword argument '{other}'"
                )));
            }
        }
    }
    Ok((out, jobs))
}

/// [`run`] on its request.
fn run_request<'py>(py: Python<'py>, r: RunRequest<'_>) -> PyResult<Bound<'py, PyAny>> {
    let RunRequest {
        scenario,
        episodes,
        seed,
        overrides,
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
    let s = load(&scenario, overrides)?;
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
/// description (`meta.json`). `obs` replaces the scenario's observation
/// mode (a pixel mode also stores the camera images); `perturb` its
/// `[perturb]` section (a level's name or a dict); `settings` takes the
/// other collection settings.
#[pyfunction]
#[pyo3(signature = (scenario, out, episodes = 100, seed = 1, *, obs = None, perturb = None, **settings))]
#[allow(clippy::too_many_arguments)] // Python's keyword arguments
pub(crate) fn collect<'py>(
    py: Python<'py>,
    scenario: String,
    out: PathBuf,
    episodes: usize,
    seed: u64,
    obs: Option<String>,
    perturb: Option<Bound<'py, PyAny>>,
    settings: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyAny>> {
    let overrides = Overrides {
        obs,
        perturb,
        ..Overrides::default()
    };
    let s = load(&scenario, overrides)?;
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
