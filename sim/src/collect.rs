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
//!
//! **Images** (layout version 2, [`FORMAT_VERSION_IMAGES`]): when the
//! scenario's observation mode is `pixels` or `pixels+proprio`
//! (`[observation]`, or `telic collect --obs MODE`), the folder also holds
//! `image.npy.gz` and `next_image.npy.gz`, gzip-compressed `.npy` arrays of
//! `uint8` `[N, 3, H, W]` (C×H×W RGB, row 0 the top of the image, the bytes
//! of [`World::render`]): row `t` is the camera image of the state of
//! `obs[t]`, respectively `next_obs[t]`, so `next_image[t] == image[t + 1]`
//! within an episode. `meta.json` then says `"format_version": 2` and gains
//!
//! ```text
//! "image": {"channels": 3, "height": H, "width": W, "dtype": "uint8",
//!           "file": "image.npy.gz", "next_file": "next_image.npy.gz"},
//! "proprio": ["pusher.x", ...]        (World::proprio_names: columns of obs)
//! ```
//!
//! Everything else is as in version 1: `obs`, `next_obs` and the readouts
//! stay the full state and truth (labels for probes and margins; a trainer
//! feeds its encoder the image and the `proprio` columns only), and the
//! exploration planner still plans on the analytic model from the state.
//! Python reads an image array with
//! `numpy.load(gzip.open(path))`. The images are held in memory, one per
//! row plus one per episode ([`EpisodeData::frames`], 12 KiB at 64×64), and
//! streamed into the two gzip files when written. A state-mode collection
//! writes version 1, without `image` and `proprio`.

mod dataset;
mod explore;
pub mod npy;

pub use dataset::{
    Dataset, EpisodeInfo, FORMAT_VERSION, FORMAT_VERSION_IMAGES, FieldInfo, IMAGE_FILE, ImageInfo,
    META_FILE, Meta, NEXT_IMAGE_FILE, ViewInfo,
};

use crate::SimError;
use crate::episode::{Episode, control_substeps, episode_seed};
use crate::limits;
use crate::scenario::{ObservationMode, Scenario};
use crate::scene::World;
use crate::scene::camera::{self, Camera, ImageSize};
use explore::Exploration;
use serde::{Deserialize, Serialize};
use std::path::Path;
use telic::limits::num;
use telic::{ModelSpec, Real};
use thiserror::Error;

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
    /// Camera images (C×H×W RGB) of the state before each action and of
    /// the state after the last one (`steps + 1` images), when the
    /// scenario's observation mode has images; empty otherwise. Row `t`'s
    /// image is image `t`, its next image `t + 1`.
    pub frames: Vec<u8>,
}

/// Everything a worker needs to know about the run.
struct Run<'a> {
    /// The scenario as given (described in `meta.json`).
    scenario: &'a Scenario,
    /// The scenario the episodes run: observing the state, whatever the
    /// given one's mode (the exploration planner plans on the analytic
    /// model, which sees the truth; only the recorded images are for a
    /// model that will not).
    episodes: Scenario,
    config: &'a CollectConfig,
    spec: ModelSpec,
    physics_steps: usize,
    steps: usize,
    /// The camera image size, in an observation mode with images.
    image: Option<ImageSize>,
    /// What the scene's camera sees.
    view: Option<camera::View>,
    /// The robot's own state's names ([`World::proprio_names`]).
    proprio: Vec<String>,
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
    let image = scenario
        .observation
        .mode
        .has_image()
        .then(|| scenario.observation.image_size());
    // Everything is held in memory until written: bound it first. A
    // transition holds two observations, an action and two readout rows in
    // float32, and its episode, step, done and violated fields; with
    // images, one image per step and one more per episode.
    let row = 4 * (2 * spec.obs_dim() + spec.action_dim() + 2 * readouts.len()) + 18;
    let amount = match image {
        None => telic::limits::product(&[config.episodes, steps, row]),
        Some(size) => telic::limits::product(&[config.episodes, steps + 1, row + size.bytes()]),
    };
    limits::check(
        &scene_name,
        "collect episodes × steps per episode × bytes per transition (data set bytes)",
        amount,
        limits::MAX_DATASET_BYTES,
    )?;
    let proprio = probe.proprio_names().to_vec();
    let view = probe.camera_view();
    drop(probe);
    let mut episodes = scenario.clone();
    episodes.observation.mode = ObservationMode::State;
    let run = Run {
        scenario,
        episodes,
        config,
        spec,
        physics_steps,
        steps,
        image,
        view,
        proprio,
    };

    let episodes = run_all(&run, progress, &scene_name)?;
    let meta = dataset::describe(&run, &scene_name, readouts, &episodes)?;
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
        let mut camera = run.image.map(Camera::new).transpose()?;
        let mut out = Vec::new();
        loop {
            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if i >= total {
                return Ok(out);
            }
            let data = record_episode(run, scene.as_mut(), camera.as_mut(), i)?;
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

/// Records episode `index`; with a `camera`, also the image of every state.
fn record_episode(
    run: &Run<'_>,
    scene: &mut dyn World,
    mut camera: Option<&mut Camera>,
    index: usize,
) -> Result<EpisodeData, CollectError> {
    let (cfg, spec, steps) = (run.config, &run.spec, run.steps);
    let seed = episode_seed(cfg.seed, index);
    let mut episode = Episode::start(&run.episodes, scene, seed, spec)?;
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
            Some(episode.planner(model, run.episodes.planner.clone())?)
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
        frames: Vec::new(),
    };
    let (mut obs, mut next_obs) = (vec![0.0; o], vec![0.0; o]);
    let (mut y, mut next_y) = (vec![0.0; p], vec![0.0; p]);
    let mut u = vec![0.0; a];
    scene.observe(&mut obs);
    scene.truth(&mut y);
    let first = snap(scene, camera.as_deref_mut(), &mut data.frames)?;
    episode.sense_row(first, &mut obs);
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
        // The image of next_obs is drawn below, after the checks.
        episode.sense_row(&mut [], &mut next_obs);
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
        let next = snap(scene, camera.as_deref_mut(), &mut data.frames)?;
        episode.sense_row(next, &mut []);
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

/// Appends the camera's image of `scene`'s current state to `frames` and
/// returns it (nothing, and an empty image, without a camera).
fn snap<'a>(
    scene: &dyn World,
    camera: Option<&mut Camera>,
    frames: &'a mut Vec<u8>,
) -> Result<&'a mut [u8], SimError> {
    let Some(camera) = camera else {
        return Ok(&mut []);
    };
    let at = frames.len();
    frames.resize(at + camera.size().bytes(), 0);
    scene.render(camera, &mut frames[at..])?;
    Ok(&mut frames[at..])
}

fn push_f32(out: &mut Vec<f32>, values: &[Real]) {
    out.extend(values.iter().map(|v| *v as f32));
}
