//! Data collection for world-model training.
//!
//! Runs a scene with a randomised exploration policy and records one row per
//! control step `t` of every episode:
//!
//! ```text
//! obs[t]  action[t]  next_obs[t]  readouts[t]  next_readouts[t]  episode  step  done  violated
//! ```
//!
//! where `next_obs[t]` is observed after `action[t]` was held for one control
//! period, and `readouts` are the scene's ground-truth readouts
//! ([`World::truth_readouts`]) of the same states, and `violated[t]` says
//! whether the true state broke one of the scenario's guardrails at any
//! physics step of the transition (contact with an obstacle, a joint stop, a
//! box off the table: dynamics the planner never plans through, which a
//! trainer may leave out). Each episode draws one policy
//! from its seed:
//!
//! - **planner**: the scenario's planner on the scene's analytic model, its
//!   action perturbed by colored noise `σ·h⊙ε_t` (σ drawn per episode in
//!   `[0, planner_noise]`, `h` the half range of the action bounds);
//! - **random**: `m + h⊙clip(s·ε_t, −1, 1)` around the middle `m` of the
//!   bounds (`s` drawn per episode in `random_scale`),
//!
//! with `ε` colored (1/f^β) noise along the episode, one sequence per action,
//! and every action clamped into the bounds. The data set is written as NumPy
//! files and a `meta.json` ([`Dataset::write`]) that the Python trainer reads
//! with numpy alone. Everything is determined by the seed: the same settings
//! write the same bytes, whatever the number of worker threads.

mod explore;
pub mod npy;

use crate::SimError;
use crate::episode::{Episode, control_substeps, episode_seed};
use crate::limits;
use crate::scenario::Scenario;
use crate::scene::World;
use explore::Exploration;
use npy::Dtype;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use telic::limits::num;
use telic::{ModelSpec, Real};
use thiserror::Error;

/// Version of the data-set layout written by [`Dataset::write`] (`format_version` in `meta.json`).
pub const FORMAT_VERSION: u32 = 1;
/// File name of the data set's description.
pub const META_FILE: &str = "meta.json";

/// Why data could not be collected or written.
#[derive(Debug, Error)]
pub enum CollectError {
    /// The scene, scenario or planner failed.
    #[error(transparent)]
    Sim(#[from] SimError),
    /// A collection setting is invalid.
    #[error("collect: {0}")]
    Config(String),
    /// An episode produced unusable data.
    #[error("episode {episode} (seed {seed}): {message}")]
    Episode {
        /// Episode index.
        episode: usize,
        /// Its seed.
        seed: u64,
        /// What went wrong.
        message: String,
    },
    /// The output folder or a file in it could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The folder or file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

impl From<telic::PlanError> for CollectError {
    fn from(e: telic::PlanError) -> Self {
        CollectError::Sim(e.into())
    }
}

impl From<telic::ModelError> for CollectError {
    fn from(e: telic::ModelError) -> Self {
        CollectError::Sim(e.into())
    }
}

/// Settings of a collection run. Every field has a default (shown in its doc).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CollectConfig {
    /// Episodes to record (default 100; at most
    /// [`MAX_EPISODES`](crate::limits::MAX_EPISODES), and the whole data set
    /// at most [`MAX_DATASET_BYTES`](crate::limits::MAX_DATASET_BYTES)).
    pub episodes: usize,
    /// Seed of the run; episode `i` uses [`episode_seed`]`(seed, i)` (default 1).
    pub seed: u64,
    /// Control steps per episode (default: the scenario's `episode.max_time`
    /// divided by the control period; at most
    /// [`MAX_CONTROL_STEPS`](crate::limits::MAX_CONTROL_STEPS)).
    pub steps_per_episode: Option<usize>,
    /// Probability that an episode is driven by the noisy planner rather than
    /// by random actions (default 0.5).
    pub planner_fraction: Real,
    /// Largest standard deviation of the planner's action perturbation, as a
    /// fraction of the half range of the action bounds (default 0.5).
    pub planner_noise: Real,
    /// Range of the random policy's scale `s`, a fraction of the half range
    /// (default [0.3, 1.0]).
    pub random_scale: [Real; 2],
    /// Exponent β of the colored exploration noise along an episode; 0 is
    /// white (default 1.0).
    pub noise_beta: Real,
    /// End an episode when the scene reports success (default true).
    pub stop_on_success: bool,
    /// Worker threads; they do not change the data (default 1; at most
    /// [`MAX_JOBS`](crate::limits::MAX_JOBS)).
    pub jobs: usize,
}

impl Default for CollectConfig {
    fn default() -> Self {
        Self {
            episodes: 100,
            seed: 1,
            steps_per_episode: None,
            planner_fraction: 0.5,
            planner_noise: 0.5,
            random_scale: [0.3, 1.0],
            noise_beta: 1.0,
            stop_on_success: true,
            jobs: 1,
        }
    }
}

impl CollectConfig {
    /// Checks every value; the message names the offending setting.
    pub fn validate(&self) -> Result<(), CollectError> {
        let bad = |m: String| Err(CollectError::Config(m));
        let origin = "collect";
        limits::check(origin, "episodes", self.episodes, limits::MAX_EPISODES)?;
        limits::check(origin, "jobs", self.jobs, limits::MAX_JOBS)?;
        if let Some(k) = self.steps_per_episode {
            limits::check(origin, "steps_per_episode", k, limits::MAX_CONTROL_STEPS)?;
        }
        if self.episodes == 0 {
            return bad("episodes must be at least 1".into());
        }
        if self.steps_per_episode == Some(0) {
            return bad("steps_per_episode must be at least 1".into());
        }
        if !(0.0..=1.0).contains(&self.planner_fraction) {
            return bad(format!(
                "planner_fraction must be in [0, 1], got {}",
                num(self.planner_fraction)
            ));
        }
        if !(self.planner_noise.is_finite() && self.planner_noise >= 0.0) {
            return bad(format!(
                "planner_noise must be finite and ≥ 0, got {}",
                num(self.planner_noise)
            ));
        }
        let [lo, hi] = self.random_scale;
        if !(lo.is_finite() && hi.is_finite() && 0.0 <= lo && lo <= hi) {
            return bad(format!(
                "random_scale must satisfy 0 ≤ lo ≤ hi, got [{}, {}]",
                num(lo),
                num(hi)
            ));
        }
        if !(0.0..=4.0).contains(&self.noise_beta) {
            return bad(format!(
                "noise_beta must be in [0, 4], got {}",
                num(self.noise_beta)
            ));
        }
        if self.jobs == 0 {
            return bad("jobs must be at least 1".into());
        }
        Ok(())
    }
}

/// The exploration policy of one episode.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Policy {
    /// The scenario's planner, its action perturbed by colored noise of
    /// standard deviation `noise` (fraction of the half range).
    Planner {
        /// Perturbation scale.
        noise: Real,
    },
    /// Colored-noise actions around the middle of the bounds, scale `scale`.
    Random {
        /// Noise scale (fraction of the half range, before clipping).
        scale: Real,
    },
}

/// What one recorded episode holds. Per-step arrays are row-major, one row per
/// control step, in float32 as written.
#[derive(Clone, Debug, PartialEq)]
pub struct EpisodeData {
    /// Episode index in the run.
    pub index: usize,
    /// Episode seed.
    pub seed: u64,
    /// The policy that drove it.
    pub policy: Policy,
    /// Control steps recorded.
    pub steps: usize,
    /// The scene reported success at the last step.
    pub success: bool,
    /// Observations before each action (`steps × O`).
    pub obs: Vec<f32>,
    /// Applied (clamped) actions (`steps × A`).
    pub action: Vec<f32>,
    /// Observations one control period later (`steps × O`).
    pub next_obs: Vec<f32>,
    /// True readouts before each action (`steps × P`).
    pub readouts: Vec<f32>,
    /// True readouts one control period later (`steps × P`).
    pub next_readouts: Vec<f32>,
    /// 1 where the true state broke a guardrail of the scenario at some
    /// physics step of the transition (`steps`).
    pub violated: Vec<u8>,
}

/// Per-episode entry of `meta.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpisodeInfo {
    /// Episode index.
    pub episode: usize,
    /// Episode seed.
    pub seed: u64,
    /// The policy that drove it.
    pub policy: Policy,
    /// Control steps recorded.
    pub steps: usize,
    /// The scene reported success at the last step.
    pub success: bool,
}

/// Type and shape of one field file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FieldInfo {
    /// File name, e.g. `"obs.npy"`.
    pub file: String,
    /// NumPy `descr`, e.g. `"<f4"`.
    pub dtype: String,
    /// Array shape.
    pub shape: Vec<usize>,
    /// What it holds.
    pub description: String,
}

/// `meta.json`: everything about a data set except the arrays.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Meta {
    /// Always `"telic.transitions"`.
    pub format: String,
    /// Layout version, [`FORMAT_VERSION`].
    pub format_version: u32,
    /// Version of the `telic-sim` crate that wrote the data.
    pub telic_version: String,
    /// Scene name, e.g. `"reach"`.
    pub scene: String,
    /// The whole scenario (scene settings, episode, objective, planner) as JSON.
    pub scenario: serde_json::Value,
    /// Seed of the run.
    pub seed: u64,
    /// Episodes recorded.
    pub episodes: usize,
    /// Rows (transitions) recorded.
    pub transitions: usize,
    /// Step limit per episode.
    pub steps_per_episode: usize,
    /// Control period in seconds (one row).
    pub dt: Real,
    /// Physics time step in seconds.
    pub physics_dt: Real,
    /// Physics steps per control period.
    pub physics_steps_per_control: usize,
    /// Observation names (columns of `obs`, `next_obs`).
    pub observations: Vec<String>,
    /// Action names (columns of `action`).
    pub actions: Vec<String>,
    /// Lower action bounds.
    pub action_lower: Vec<Real>,
    /// Upper action bounds.
    pub action_upper: Vec<Real>,
    /// Ground-truth readout names (columns of `readouts`, `next_readouts`).
    pub readouts: Vec<String>,
    /// The exploration settings (the policy mix).
    pub policy: CollectConfig,
    /// The policy of every episode.
    pub episode_policies: Vec<EpisodeInfo>,
    /// The field files.
    pub fields: BTreeMap<String, FieldInfo>,
}

/// A collected data set: all episodes, concatenated in episode order.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    /// Description (written as `meta.json`).
    pub meta: Meta,
    /// Episodes in order.
    pub episodes: Vec<EpisodeData>,
}

/// Everything a worker needs to know about the run.
struct Run<'a> {
    scenario: &'a Scenario,
    config: &'a CollectConfig,
    spec: ModelSpec,
    physics_steps: usize,
    steps: usize,
}

/// Creates `dir` if needed and checks that files can be written in it, so
/// that a bad path fails before any episode runs.
pub fn prepare_output(dir: &Path) -> Result<(), CollectError> {
    let write_err = |path: &Path, source| CollectError::Write {
        path: path.display().to_string(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(|e| write_err(dir, e))?;
    let probe = dir.join(".telic-collect-probe");
    std::fs::write(&probe, b"").map_err(|e| write_err(dir, e))?;
    std::fs::remove_file(&probe).map_err(|e| write_err(&probe, e))
}

/// Records `config.episodes` episodes of `scenario`; `progress` is called
/// after each finished episode (from the worker threads).
pub fn collect(
    scenario: &Scenario,
    config: &CollectConfig,
    progress: &(dyn Fn(&EpisodeData) + Sync),
) -> Result<Dataset, CollectError> {
    config.validate()?;
    let probe = scenario.scene.build(&scenario.base_dir)?;
    let model = probe.analytic_model()?;
    let spec = model.spec().clone();
    let scene_name = probe.name().to_string();
    // Checked before any episode runs; each episode applies the same rule.
    let physics_steps = control_substeps(scenario, spec.dt, probe.physics_dt())?;
    let steps = match config.steps_per_episode {
        Some(k) => k,
        None => {
            let steps = (scenario.episode.max_time / spec.dt).round().max(1.0);
            limits::check(
                &scene_name,
                "episode.max_time / model dt (control steps per episode)",
                steps,
                limits::MAX_CONTROL_STEPS as Real,
            )?;
            steps as usize
        }
    };
    let readouts = probe.truth_readouts().to_vec();
    // Everything is held in memory until written: bound it first. A
    // transition holds two observations, an action and two readout rows in
    // float32, and its episode, step, done and violated fields.
    let row = 4 * (2 * spec.obs_dim() + spec.action_dim() + 2 * readouts.len()) + 18;
    limits::check(
        &scene_name,
        "collect episodes × steps per episode × bytes per transition (data set bytes)",
        telic::limits::product(&[config.episodes, steps, row]),
        limits::MAX_DATASET_BYTES,
    )?;
    drop(probe);
    let run = Run {
        scenario,
        config,
        spec,
        physics_steps,
        steps,
    };

    let episodes = run_all(&run, progress, &scene_name)?;
    let meta = describe(&run, &scene_name, readouts, &episodes)?;
    Ok(Dataset { meta, episodes })
}

fn run_all(
    run: &Run<'_>,
    progress: &(dyn Fn(&EpisodeData) + Sync),
    scene_name: &str,
) -> Result<Vec<EpisodeData>, CollectError> {
    let total = run.config.episodes;
    let jobs = run.config.jobs.clamp(1, total.max(1));
    let next = std::sync::atomic::AtomicUsize::new(0);
    let worker = || -> Result<Vec<EpisodeData>, CollectError> {
        let mut scene = run.scenario.scene.build(&run.scenario.base_dir)?;
        let mut out = Vec::new();
        loop {
            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if i >= total {
                return Ok(out);
            }
            let data = record_episode(run, scene.as_mut(), i)?;
            progress(&data);
            out.push(data);
        }
    };
    let parts: Vec<Result<Vec<EpisodeData>, CollectError>> = std::thread::scope(|s| {
        // A worker that cannot be started is an error once the started ones
        // are done (they stop early: `next` is pushed past the end).
        let mut handles = Vec::with_capacity(jobs);
        let mut failed = None;
        for k in 0..jobs {
            match std::thread::Builder::new()
                .name(format!("collect-{k}"))
                .spawn_scoped(s, worker)
            {
                Ok(h) => handles.push(h),
                Err(e) => {
                    next.store(total, std::sync::atomic::Ordering::Relaxed);
                    failed = Some(e);
                    break;
                }
            }
        }
        let mut parts: Vec<_> = handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(CollectError::Sim(SimError::Scene {
                        scene: scene_name.to_string(),
                        message: "a collection worker panicked".into(),
                    }))
                })
            })
            .collect();
        if let Some(e) = failed {
            parts.push(Err(CollectError::Sim(SimError::Scene {
                scene: scene_name.to_string(),
                message: format!("cannot start a collection worker thread ({jobs} asked for): {e}"),
            })));
        }
        parts
    });
    let mut all = Vec::with_capacity(total);
    for p in parts {
        all.extend(p?);
    }
    all.sort_by_key(|e| e.index);
    Ok(all)
}

fn record_episode(
    run: &Run<'_>,
    scene: &mut dyn World,
    index: usize,
) -> Result<EpisodeData, CollectError> {
    let (cfg, spec, steps) = (run.config, &run.spec, run.steps);
    let seed = episode_seed(cfg.seed, index);
    let mut episode = Episode::start(run.scenario, scene, seed, spec)?;
    let exploration = Exploration::draw(cfg, spec, seed, steps);
    let policy = exploration.policy();
    let (o, a, p) = (
        spec.obs_dim(),
        spec.action_dim(),
        scene.truth_readouts().len(),
    );
    let mut planner = match policy {
        Policy::Random { .. } => None,
        Policy::Planner { .. } => {
            let model = scene.analytic_model()?;
            Some(episode.planner(model, run.scenario.planner.clone())?)
        }
    };

    let mut data = EpisodeData {
        index,
        seed,
        policy,
        steps: 0,
        success: false,
        obs: Vec::with_capacity(steps * o),
        action: Vec::with_capacity(steps * a),
        next_obs: Vec::with_capacity(steps * o),
        readouts: Vec::with_capacity(steps * p),
        next_readouts: Vec::with_capacity(steps * p),
        violated: Vec::with_capacity(steps),
    };
    let (mut obs, mut next_obs) = (vec![0.0; o], vec![0.0; o]);
    let (mut y, mut next_y) = (vec![0.0; p], vec![0.0; p]);
    let mut u = vec![0.0; a];
    scene.observe(&mut obs);
    scene.truth(&mut y);
    for t in 0..steps {
        let base = match planner.as_mut() {
            Some(pl) => Some(pl.plan(&obs)?.action.as_slice()),
            None => None,
        };
        exploration.action(t, base, &mut u);
        spec.clamp_actions(&mut u);
        let out = episode.step(scene, &u, &mut |_, _| {});
        scene.observe(&mut next_obs);
        scene.truth(&mut next_y);
        if let Some(bad) = next_obs.iter().chain(&next_y).find(|v| !v.is_finite()) {
            return Err(CollectError::Episode {
                episode: index,
                seed,
                message: format!("the scene produced a non-finite value ({bad}) at step {t}"),
            });
        }
        push_f32(&mut data.obs, &obs);
        push_f32(&mut data.action, &u);
        push_f32(&mut data.next_obs, &next_obs);
        push_f32(&mut data.readouts, &y);
        push_f32(&mut data.next_readouts, &next_y);
        data.violated.push(u8::from(out.violated));
        data.steps += 1;
        std::mem::swap(&mut obs, &mut next_obs);
        std::mem::swap(&mut y, &mut next_y);
        data.success = out.success;
        if cfg.stop_on_success && data.success {
            break;
        }
    }
    Ok(data)
}

fn push_f32(out: &mut Vec<f32>, values: &[Real]) {
    out.extend(values.iter().map(|v| *v as f32));
}

fn describe(
    run: &Run<'_>,
    scene_name: &str,
    readouts: Vec<String>,
    episodes: &[EpisodeData],
) -> Result<Meta, CollectError> {
    let n: usize = episodes.iter().map(|e| e.steps).sum();
    let spec = &run.spec;
    let (o, a, p) = (spec.obs_dim(), spec.action_dim(), readouts.len());
    let field = |name: &str, dtype: Dtype, shape: Vec<usize>, description: &str| {
        (
            name.to_string(),
            FieldInfo {
                file: format!("{name}.npy"),
                dtype: dtype.descr().to_string(),
                shape,
                description: description.to_string(),
            },
        )
    };
    let fields = BTreeMap::from([
        field(
            "obs",
            Dtype::F32,
            vec![n, o],
            "observation before the action",
        ),
        field(
            "action",
            Dtype::F32,
            vec![n, a],
            "applied (clamped) action, held for dt",
        ),
        field("next_obs", Dtype::F32, vec![n, o], "observation dt later"),
        field(
            "readouts",
            Dtype::F32,
            vec![n, p],
            "true readouts before the action",
        ),
        field(
            "next_readouts",
            Dtype::F32,
            vec![n, p],
            "true readouts dt later",
        ),
        field("episode", Dtype::I32, vec![n], "episode index"),
        field(
            "step",
            Dtype::I32,
            vec![n],
            "control step within the episode",
        ),
        field(
            "done",
            Dtype::U8,
            vec![n],
            "1 on the last row of an episode",
        ),
        field(
            "violated",
            Dtype::U8,
            vec![n],
            "1 where the true state broke a guardrail of the scenario during the transition",
        ),
    ]);
    let scenario = serde_json::to_value(run.scenario)
        .map_err(|e| CollectError::Config(format!("cannot describe the scenario: {e}")))?;
    let mut policy = run.config.clone();
    policy.jobs = 1; // not part of the data: any number of jobs writes the same bytes
    policy.steps_per_episode = Some(run.steps);
    Ok(Meta {
        format: "telic.transitions".into(),
        format_version: FORMAT_VERSION,
        telic_version: env!("CARGO_PKG_VERSION").into(),
        scene: scene_name.to_string(),
        scenario,
        seed: run.config.seed,
        episodes: episodes.len(),
        transitions: n,
        steps_per_episode: run.steps,
        dt: spec.dt,
        physics_dt: spec.dt / run.physics_steps as Real,
        physics_steps_per_control: run.physics_steps,
        observations: spec.observations.clone(),
        actions: spec.actions.clone(),
        action_lower: spec.action_lower.clone(),
        action_upper: spec.action_upper.clone(),
        readouts,
        policy,
        episode_policies: episodes
            .iter()
            .map(|e| EpisodeInfo {
                episode: e.index,
                seed: e.seed,
                policy: e.policy,
                steps: e.steps,
                success: e.success,
            })
            .collect(),
        fields,
    })
}

impl Dataset {
    /// Transitions (rows) in the data set.
    #[must_use]
    pub fn len(&self) -> usize {
        self.meta.transitions
    }

    /// True when no transition was recorded.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Writes `dir/<field>.npy` for every field of [`Meta::fields`] and then
    /// `dir/meta.json`; returns the paths written. An earlier data set's
    /// `meta.json` is removed first and the new one is written last
    /// (atomically), so a write cut short leaves a folder without
    /// `meta.json`, which the trainer refuses, never a mix of two data sets.
    pub fn write(&self, dir: &Path) -> Result<Vec<PathBuf>, CollectError> {
        prepare_output(dir)?;
        let meta_path = dir.join(META_FILE);
        match std::fs::remove_file(&meta_path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(CollectError::Write {
                    path: meta_path.display().to_string(),
                    source: e,
                });
            }
            _ => {}
        }
        let cat = |f: fn(&EpisodeData) -> &Vec<f32>| -> Vec<u8> {
            let all: Vec<f32> = self
                .episodes
                .iter()
                .flat_map(|e| f(e).iter().copied())
                .collect();
            npy::f32_bytes(&all)
        };
        let index = |f: fn(&EpisodeData, usize) -> i32| -> Vec<u8> {
            let all: Vec<i32> = self
                .episodes
                .iter()
                .flat_map(|e| (0..e.steps).map(move |t| f(e, t)))
                .collect();
            npy::i32_bytes(&all)
        };
        let done: Vec<u8> = self
            .episodes
            .iter()
            .flat_map(|e| (0..e.steps).map(move |t| u8::from(t + 1 == e.steps)))
            .collect();
        let mut files: Vec<(&str, Vec<u8>)> = vec![
            ("obs", cat(|e| &e.obs)),
            ("action", cat(|e| &e.action)),
            ("next_obs", cat(|e| &e.next_obs)),
            ("readouts", cat(|e| &e.readouts)),
            ("next_readouts", cat(|e| &e.next_readouts)),
            (
                "episode",
                index(|e, _| i32::try_from(e.index).unwrap_or(i32::MAX)),
            ),
            ("step", index(|_, t| i32::try_from(t).unwrap_or(i32::MAX))),
        ];
        files.push(("done", done));
        let violated: Vec<u8> = self
            .episodes
            .iter()
            .flat_map(|e| e.violated.iter().copied())
            .collect();
        files.push(("violated", violated));
        let mut written = Vec::with_capacity(files.len() + 1);
        for (name, bytes) in files {
            let Some(info) = self.meta.fields.get(name) else {
                return Err(CollectError::Config(format!(
                    "no description of field {name}"
                )));
            };
            let dtype = match info.dtype.as_str() {
                "<i4" => Dtype::I32,
                "|u1" => Dtype::U8,
                _ => Dtype::F32,
            };
            let path = dir.join(&info.file);
            npy::write(&path, dtype, &info.shape, &bytes).map_err(|source| {
                CollectError::Write {
                    path: path.display().to_string(),
                    source,
                }
            })?;
            written.push(path);
        }
        let path = dir.join(META_FILE);
        let text = serde_json::to_string_pretty(&self.meta)
            .map_err(|e| CollectError::Config(format!("cannot write {META_FILE}: {e}")))?;
        crate::results::write_atomic(&path, (text + "\n").as_bytes()).map_err(|e| {
            CollectError::Write {
                path: path.display().to_string(),
                source: std::io::Error::other(e),
            }
        })?;
        written.push(path);
        Ok(written)
    }
}
