//! Headless batches: `telic.run` (episodes → results) and `telic.collect`
//! (episodes → a training data set), as the `telic` program runs them.

use crate::convert::{from_plain, merged, to_plain};
use crate::errors::{Kind, collect_error, error, sim_error};
use crate::watch::{Progress, watch};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::collections::BTreeSet;
use std::ops::ControlFlow;
use std::path::PathBuf;
use telic_sim::batch::{Episodes, run_episodes};
use telic_sim::collect::{CollectConfig, collect_selected, merge, prepare_output};
use telic_sim::episode::Summary;
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
    let mode = obs
        .map(|m| m.parse())
        .transpose()
        .map_err(|e: String| error(Kind::Config, e))?;
    let mut s = Scenario::load_observing(scenario, mode).map_err(sim_error)?;
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
    /// The episodes to run (all of `0..episodes` with `None`).
    indices: Option<Vec<usize>>,
    progress: Option<Progress<'py>>,
}

/// The other options of `run`.
#[derive(Default)]
struct RunOptions<'py> {
    overrides: Overrides<'py>,
    jobs: Option<usize>,
    indices: Option<Vec<usize>>,
    progress: Option<Progress<'py>>,
}

/// Runs `episodes` episodes of `scenario` (or those of them `indices`
/// names) and returns `{"scenario", "model", "episodes": [...],
/// "summary": {...}}`. The keyword options are those of the text signature
/// (read by [`run_options`]).
#[pyfunction]
#[pyo3(
    signature = (scenario, episodes = 20, seed = 1, **options),
    text_signature = "(scenario, episodes=20, seed=1, *, model=None, planner=None, max_time=None, jobs=1, obs=None, perturb=None, indices=None, progress=None)"
)]
pub(crate) fn run(
    scenario: String,
    episodes: usize,
    seed: u64,
    options: Option<&Bound<'_, PyDict>>,
) -> PyResult<Py<PyAny>> {
    let RunOptions {
        overrides,
        jobs,
        indices,
        progress,
    } = run_options(options)?;
    let request = RunRequest {
        scenario,
        episodes,
        seed,
        overrides,
        jobs: jobs.unwrap_or(1),
        indices,
        progress,
    };
    Python::attach(|py| Ok(run_request(py, request)?.unbind()))
}

/// The keyword options of [`run`]: the scenario's overrides, `jobs`
/// (default 1), `indices` and `progress`. An unknown keyword is a
/// `TypeError`, as Python's own.
fn run_options<'py>(options: Option<&Bound<'py, PyDict>>) -> PyResult<RunOptions<'py>> {
    let mut all = RunOptions::default();
    let Some(options) = options else {
        return Ok(all);
    };
    let out = &mut all.overrides;
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
            "jobs" => all.jobs = Some(value.extract().map_err(|e| named(&key, e))?),
            "indices" => all.indices = Some(indices(&value).map_err(|e| named(&key, e))?),
            "progress" => all.progress = Some(Progress::new(value)?),
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
    Ok(all)
}

/// A list of episode indices (any iterable of ints ≥ 0; not a string).
fn indices(value: &Bound<'_, PyAny>) -> PyResult<Vec<usize>> {
    if value.is_instance_of::<pyo3::types::PyString>() {
        return Err(pyo3::exceptions::PyTypeError::new_err(
            "a list of episode indices, not a string",
        ));
    }
    value
        .try_iter()?
        .map(|i| i.and_then(|i| i.extract::<usize>()))
        .collect()
}

/// Checks that `indices` are distinct episodes of a run of `episodes`.
fn check_indices(origin: &str, indices: &[usize], episodes: usize) -> PyResult<()> {
    if indices.is_empty() {
        return Err(error(
            Kind::Config,
            format!("{origin}(): indices: no episode selected"),
        ));
    }
    let mut seen = BTreeSet::new();
    for &i in indices {
        if i >= episodes {
            return Err(error(
                Kind::Config,
                format!(
                    "{origin}(): indices: episode {i} is not one of the run's {episodes} (0..{episodes})"
                ),
            ));
        }
        if !seen.insert(i) {
            return Err(error(
                Kind::Config,
                format!("{origin}(): indices: episode {i} is selected twice"),
            ));
        }
    }
    Ok(())
}

/// The episodes `0..count` to go through and those of them to skip for a
/// run of `episodes` that runs only `indices` (all with `None`): a
/// selection runs as the run of the episodes up to its last, the others
/// done already, so each has the seed and result it has in the whole run.
fn selection(episodes: usize, indices: Option<&[usize]>) -> (usize, BTreeSet<usize>) {
    match indices {
        None => (episodes, BTreeSet::new()),
        Some(list) => {
            let chosen: BTreeSet<usize> = list.iter().copied().collect();
            let count = chosen.last().map_or(0, |last| last + 1);
            (count, (0..count).filter(|i| !chosen.contains(i)).collect())
        }
    }
}

/// [`run`] on its request.
fn run_request<'py>(py: Python<'py>, r: RunRequest<'_>) -> PyResult<Bound<'py, PyAny>> {
    let RunRequest {
        scenario,
        episodes,
        seed,
        overrides,
        jobs,
        indices,
        progress,
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
    if let Some(list) = &indices {
        check_indices("run", list, episodes)?;
    }
    let s = load(&scenario, overrides)?;
    let (count, skipped) = selection(episodes, indices.as_deref());
    let total = count - skipped.len();
    let batch = watch(py, total, progress.as_ref(), |stop, finished| {
        let selection = Episodes {
            count,
            done: &skipped,
            stop,
        };
        run_episodes(&s, seed, selection, jobs, &|_, _| {
            finished();
            ControlFlow::Continue(())
        })
    })?;
    let ran: Vec<usize> = batch.finished.iter().map(|(i, _)| *i).collect();
    let results = batch.into_results().map_err(sim_error)?;
    let summary = Summary::of(&results);
    let out = PyDict::new(py);
    out.set_item("scenario", s.scene_name())?;
    out.set_item(
        "model",
        s.bundle_dir()
            .map_or_else(|| "analytic".to_string(), |d| d.display().to_string()),
    )?;
    out.set_item("seed", seed)?;
    if indices.is_some() {
        out.set_item("indices", ran)?;
    }
    out.set_item("episodes", to_plain(py, &results)?)?;
    out.set_item("summary", to_plain(py, &summary)?)?;
    Ok(out.into_any())
}

/// What `telic.collect` and `telic.merge_shards` are told about a
/// collection: the scenario, its overrides and the collection settings.
struct CollectRequest<'a, 'py> {
    scenario: String,
    episodes: usize,
    seed: u64,
    obs: Option<String>,
    perturb: Option<Bound<'py, PyAny>>,
    settings: Option<&'a Bound<'py, PyDict>>,
}

impl CollectRequest<'_, '_> {
    /// The scenario and the settings of the collection, checked.
    fn load(self) -> PyResult<(Scenario, CollectConfig)> {
        let overrides = Overrides {
            obs: self.obs,
            perturb: self.perturb,
            ..Overrides::default()
        };
        let s = load(&self.scenario, overrides)?;
        let mut config: CollectConfig = match self.settings {
            Some(d) => from_plain(d.as_any(), "collect settings")?,
            None => CollectConfig::default(),
        };
        config.episodes = self.episodes;
        config.seed = self.seed;
        config.validate().map_err(collect_error)?;
        Ok((s, config))
    }
}

/// Records `episodes` exploration episodes of `scenario` into the data-set
/// folder `out` (the format `python -m telic.train` reads); returns its
/// description (`meta.json`). `obs` replaces the scenario's observation
/// mode (a pixel mode also stores the camera images); `perturb` its
/// `[perturb]` section (a level's name or a dict); `indices` records those
/// episodes only (a shard, for [`merge_shards`]); `progress(done, total)`
/// is called after each episode; `settings` takes the other collection
/// settings.
#[pyfunction]
#[pyo3(signature = (scenario, out, episodes = 100, seed = 1, *, obs = None, perturb = None, indices = None, progress = None, **settings))]
#[allow(clippy::too_many_arguments)] // Python's keyword arguments
pub(crate) fn collect<'py>(
    py: Python<'py>,
    scenario: String,
    out: PathBuf,
    episodes: usize,
    seed: u64,
    obs: Option<String>,
    perturb: Option<Bound<'py, PyAny>>,
    indices: Option<Bound<'py, PyAny>>,
    progress: Option<Bound<'py, PyAny>>,
    settings: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyAny>> {
    let indices = match indices.filter(|i| !i.is_none()) {
        Some(list) => Some(
            self::indices(&list)
                .map_err(|e| error(Kind::Config, format!("collect(): indices: {}", e.value(py))))?,
        ),
        None => None,
    };
    let progress = progress
        .filter(|p| !p.is_none())
        .map(Progress::new)
        .transpose()?;
    let request = CollectRequest {
        scenario,
        episodes,
        seed,
        obs,
        perturb,
        settings,
    };
    let (s, config) = request.load()?;
    if let Some(list) = &indices {
        check_indices("collect", list, episodes)?;
    }
    py.detach(|| prepare_output(&out)).map_err(collect_error)?;
    let total = indices.as_ref().map_or(episodes, Vec::len);
    let data = watch(py, total, progress.as_ref(), |stop, finished| {
        collect_selected(&s, &config, indices.as_deref(), stop, &|_| finished())
    })?;
    let data = data.map_err(collect_error)?;
    py.detach(|| data.write(&out)).map_err(collect_error)?;
    to_plain(py, &data.meta)
}

/// Joins the shard folders `shards` (written by `collect(scenario, ...,
/// indices=...)` with the same other arguments, together every episode
/// once) into the data-set folder `out`: byte for byte what one `collect`
/// of every episode writes. Returns its description (`meta.json`).
#[pyfunction]
#[pyo3(signature = (shards, scenario, out, episodes = 100, seed = 1, *, obs = None, perturb = None, **settings))]
#[allow(clippy::too_many_arguments)] // Python's keyword arguments
pub(crate) fn merge_shards<'py>(
    py: Python<'py>,
    shards: Vec<PathBuf>,
    scenario: String,
    out: PathBuf,
    episodes: usize,
    seed: u64,
    obs: Option<String>,
    perturb: Option<Bound<'py, PyAny>>,
    settings: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyAny>> {
    let request = CollectRequest {
        scenario,
        episodes,
        seed,
        obs,
        perturb,
        settings,
    };
    let (s, config) = request.load()?;
    let meta = py
        .detach(|| merge(&s, &config, &shards, &out))
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

/// The summary of a run's episode results (as `run` returns them, in any
/// number of parts joined): what `run` would have summarised.
#[pyfunction]
pub(crate) fn summarize<'py>(
    py: Python<'py>,
    episodes: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let results: Vec<telic_sim::episode::EpisodeResult> = from_plain(episodes, "episodes")?;
    if results.is_empty() {
        return Err(error(Kind::Config, "summarize(): no episode"));
    }
    to_plain(py, &Summary::of(&results))
}
