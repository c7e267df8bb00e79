//! `telic bench`: how fast planning runs on this machine, measured against
//! what the machine can do.
//!
//! - [`matmul`]: the machine's f32 matrix-multiply rate for a learned model's
//!   own layer shapes (ONNX Runtime running a lone `MatMul` of each shape on
//!   one thread, [`matmul_timer::matmul_seconds`]), and the model's
//!   FLOP rate inside MPPI as a share of it.
//! - [`latency`]: plan latency against samples × horizon.
//! - [`ticks`]: the real-time controller's control-tick latency while other
//!   processes load every core.
//! - [`render::render_rate`]: frames per second of the scene cameras.

pub mod matmul_timer;
pub mod render;
pub mod shapes;

use crate::SimError;
use crate::pacing::{Pacer, steal_time};
use crate::scenario::{ModelChoice, Scenario};
use crate::scene::Scene;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use telic::controller::{ActionSource, Controller, ControllerConfig};
use telic::{ModelError, ModelSpec, Planner, PlannerConfig, Real, WorldModel};

/// Time spent inside a model's calls and the rows they processed.
#[derive(Debug, Default)]
pub struct CallStats {
    nanos: [AtomicU64; 3],
    rows: [AtomicU64; 3],
}

const ENCODE: usize = 0;
const PREDICT: usize = 1;
const READOUT: usize = 2;

impl CallStats {
    fn add(&self, which: usize, rows: usize, t: Duration) {
        self.nanos[which].fetch_add(t.as_nanos() as u64, Ordering::Relaxed);
        self.rows[which].fetch_add(rows as u64, Ordering::Relaxed);
    }
    fn reset(&self) {
        for x in self.nanos.iter().chain(&self.rows) {
            x.store(0, Ordering::Relaxed);
        }
    }
    fn seconds(&self) -> f64 {
        self.nanos
            .iter()
            .map(|n| n.load(Ordering::Relaxed) as f64 * 1e-9)
            .sum()
    }
    fn rows(&self, which: usize) -> u64 {
        self.rows[which].load(Ordering::Relaxed)
    }
}

/// A world model that times its calls.
pub struct Timed {
    inner: Box<dyn WorldModel>,
    stats: Arc<CallStats>,
}

impl std::fmt::Debug for Timed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Timed")
            .field("model", &self.inner.spec().name)
            .finish_non_exhaustive()
    }
}

impl Timed {
    /// Wraps `inner`; its calls are added to `stats`.
    #[must_use]
    pub fn new(inner: Box<dyn WorldModel>, stats: Arc<CallStats>) -> Self {
        Self { inner, stats }
    }
}

impl WorldModel for Timed {
    fn spec(&self) -> &ModelSpec {
        self.inner.spec()
    }
    fn encode(&mut self, obs: &[Real], z: &mut [Real]) -> Result<(), ModelError> {
        let t = Instant::now();
        let r = self.inner.encode(obs, z);
        let rows = obs.len() / self.inner.spec().obs_dim().max(1);
        self.stats.add(ENCODE, rows, t.elapsed());
        r
    }
    fn predict(&mut self, z: &[Real], u: &[Real], z_next: &mut [Real]) -> Result<(), ModelError> {
        let t = Instant::now();
        let r = self.inner.predict(z, u, z_next);
        let rows = z.len() / self.inner.spec().latent_dim.max(1);
        self.stats.add(PREDICT, rows, t.elapsed());
        r
    }
    fn readout(&mut self, z: &[Real], y: &mut [Real]) -> Result<(), ModelError> {
        let t = Instant::now();
        let r = self.inner.readout(z, y);
        let rows = z.len() / self.inner.spec().latent_dim.max(1);
        self.stats.add(READOUT, rows, t.elapsed());
        r
    }
    fn readout_errors(&self) -> Option<Vec<Vec<Real>>> {
        self.inner.readout_errors()
    }
}

/// The `[k × n]` products of a graph's weight matrices in evaluation order:
/// each stored matrix oriented so that its input size follows on from the
/// previous layer's output, starting at the graph's input width `width`
/// (`Gemm` nodes with `transB` store `[out, in]`); a matrix that fits
/// neither way is taken as stored.
#[must_use]
pub fn oriented(matrices: &[shapes::Matrix], mut width: usize) -> Vec<(usize, usize)> {
    matrices
        .iter()
        .map(|m| {
            let (k, n) = if m.rows == width {
                (m.rows, m.cols)
            } else if m.cols == width {
                (m.cols, m.rows)
            } else {
                (m.rows, m.cols)
            };
            width = n;
            (k, n)
        })
        .collect()
}

/// The weight matrices of the three graphs of the bundle in `dir`.
pub fn bundle_matrices(dir: &Path) -> Result<[Vec<shapes::Matrix>; 3], SimError> {
    let read = |name: &str| -> Result<Vec<shapes::Matrix>, SimError> {
        let path = dir.join(format!("{name}.onnx"));
        let bytes = std::fs::read(&path).map_err(|source| SimError::Io {
            path: path.display().to_string(),
            source,
        })?;
        shapes::matrices(&bytes).map_err(|message| SimError::Scene {
            scene: "bench".into(),
            message: format!("{}: {message}", path.display()),
        })
    };
    Ok([read("encode")?, read("predict")?, read("readout")?])
}

/// The learned model's FLOP rate inside MPPI beside the machine's GEMM rate
/// on the same layer shapes.
#[derive(Clone, Debug)]
pub struct Matmul {
    /// Samples × horizon planned.
    pub samples: usize,
    /// See `samples`.
    pub horizon: usize,
    /// Dense-layer FLOPs of one planning call.
    pub flops_per_plan: f64,
    /// Median wall time of a planning call (seconds).
    pub plan_seconds: f64,
    /// Median time inside the model's calls per planning call (seconds).
    pub model_seconds: f64,
    /// Median of what the same GEMMs take alone, per planning call
    /// (seconds).
    pub gemm_seconds: f64,
    /// Layer shapes `(rows, k, n)` measured, with their GEMM GFLOP/s.
    pub layers: Vec<(usize, usize, usize, f64)>,
    /// What the same GEMMs take alone in the fastest round (seconds).
    pub fastest_gemm_seconds: f64,
    /// Round by round, the products' time alone over the model's time in
    /// the plan just before them, in increasing order.
    pub shares: Vec<f64>,
}

impl Matmul {
    /// The model's FLOP rate inside MPPI (GFLOP/s).
    #[must_use]
    pub fn model_gflops(&self) -> f64 {
        self.flops_per_plan / self.model_seconds * 1e-9
    }
    /// The machine's rate on the same layer shapes (GFLOP/s).
    #[must_use]
    pub fn machine_gflops(&self) -> f64 {
        self.flops_per_plan / self.gemm_seconds * 1e-9
    }
    /// The model's rate as a share of the machine's: the median of the
    /// rounds' shares.
    #[must_use]
    pub fn efficiency(&self) -> f64 {
        self.shares
            .get(self.shares.len() / 2)
            .copied()
            .unwrap_or(f64::NAN)
    }
}

/// An episode of `scenario` (seed 1) and the settings to plan it with.
fn episode(scenario: &str, model: ModelChoice) -> Result<(Scene, Vec<Real>), SimError> {
    let mut s = Scenario::load(scenario)?;
    s.model = model;
    episode_of(s)
}

/// An episode (seed 1) of the scenario `s` and its first observation.
fn episode_of(s: Scenario) -> Result<(Scene, Vec<Real>), SimError> {
    let mut env = Scene::new(s)?;
    let mut obs = vec![0.0; env.spec().obs_dim()];
    env.reset(1, &mut obs)?;
    Ok((env, obs))
}

/// The median wall time (seconds) of `calls` planning calls from `obs`,
/// after two warm-up calls.
fn median_plan_seconds(
    planner: &mut dyn Planner,
    obs: &[Real],
    calls: usize,
) -> Result<f64, SimError> {
    for _ in 0..2 {
        planner.plan(obs)?;
    }
    let mut s: Vec<f64> = (0..calls.max(1))
        .map(|_| {
            let t = Instant::now();
            planner.plan(obs).map(|_| t.elapsed().as_secs_f64())
        })
        .collect::<Result<_, _>>()?;
    Ok(median(&mut s))
}

fn median(xs: &mut [f64]) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs.get(xs.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Plans `calls` times (after two warm-up calls) with the learned bundle of
/// `scenario` under MPPI with `samples × horizon` and one iteration, timing
/// the model, and measures the same layer GEMMs alone.
pub fn matmul(
    scenario: &str,
    samples: usize,
    horizon: usize,
    calls: usize,
) -> Result<Matmul, SimError> {
    let (env, obs) = episode(scenario, ModelChoice::Default)?;
    let Some(dir) = env.scenario().bundle_dir() else {
        return Err(SimError::Scene {
            scene: scenario.into(),
            message: "the scene ships no learned bundle".into(),
        });
    };
    let stats = Arc::new(CallStats::default());
    let model = env.scenario().build_model(env.world())?;
    let spec = model.spec().clone();
    let timed = Timed::new(model, Arc::clone(&stats));
    let config = plain_mppi(&env.scenario().planner, samples, horizon);
    let mut planner = env.planner(Box::new(timed), Some(config))?;
    for _ in 0..2 {
        planner.plan(&obs)?;
    }
    // One more call counts the rows each graph sees in a plan.
    stats.reset();
    planner.plan(&obs)?;
    let rows = [stats.rows(ENCODE), stats.rows(PREDICT), stats.rows(READOUT)];
    let graphs = bundle_matrices(&dir)?;
    let widths = [
        spec.obs_dim(),
        spec.latent_dim + spec.action_dim(),
        spec.latent_dim,
    ];
    // Every layer's product, at the batch it sees: `samples` rows (predict
    // and readout) or one row (encode), and how many per plan.
    let mut products = Vec::new();
    let mut flops = 0.0;
    for (which, matrices) in graphs.iter().enumerate() {
        let calls_rows = rows[which] as usize;
        if calls_rows == 0 {
            continue;
        }
        let batch = if which == ENCODE { 1 } else { samples };
        for (k, n) in oriented(matrices, widths[which]) {
            flops += 2.0 * (k * n) as f64 * calls_rows as f64;
            let timer = matmul_timer::MatmulTimer::new(batch, k, n)?;
            products.push((batch, k, n, calls_rows / batch, timer));
        }
    }
    // Rounds of a plan and then the same products alone, so that both see
    // the machine's load of the moment; the share is taken round by round.
    let (mut plan_s, mut model_s, mut gemm_s, mut shares) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut product_s = vec![Vec::new(); products.len()];
    for _ in 0..calls.max(1) {
        stats.reset();
        let t = Instant::now();
        planner.plan(&obs)?;
        plan_s.push(t.elapsed().as_secs_f64());
        let model = stats.seconds();
        let mut gemm = 0.0;
        for ((.., calls, timer), times) in products.iter_mut().zip(&mut product_s) {
            let s = timer.seconds()?;
            times.push(s);
            gemm += s * *calls as f64;
        }
        model_s.push(model);
        gemm_s.push(gemm);
        shares.push(gemm / model);
    }
    let layers = products
        .iter()
        .zip(&mut product_s)
        .map(|((batch, k, n, ..), times)| {
            let s = median(times);
            (*batch, *k, *n, 2.0 * (batch * k * n) as f64 / s * 1e-9)
        })
        .collect();
    shares.sort_by(f64::total_cmp);
    let fastest_gemm_seconds = gemm_s.iter().copied().fold(f64::INFINITY, f64::min);
    Ok(Matmul {
        fastest_gemm_seconds,
        samples,
        horizon,
        flops_per_plan: flops,
        plan_seconds: median(&mut plan_s),
        model_seconds: median(&mut model_s),
        gemm_seconds: median(&mut gemm_s),
        layers,
        shares,
    })
}

/// `base` as plain MPPI at `samples × horizon`: one iteration, noise on
/// every step (no knots), the scenario's objective settings otherwise.
fn plain_mppi(base: &PlannerConfig, samples: usize, horizon: usize) -> PlannerConfig {
    PlannerConfig {
        kind: telic::PlannerKind::Mppi,
        samples,
        horizon,
        iterations: 1,
        knots: None,
        ..base.clone()
    }
}

/// Median plan latency (seconds) of `scenario` with `model` for each
/// `(samples, horizon)`, MPPI with one iteration, `calls` calls each after
/// two warm-up calls.
pub fn latency(
    scenario: &str,
    model: ModelChoice,
    grid: &[(usize, usize)],
    calls: usize,
) -> Result<Vec<(usize, usize, f64)>, SimError> {
    let (env, obs) = episode(scenario, model)?;
    let mut out = Vec::new();
    for &(samples, horizon) in grid {
        let config = PlannerConfig {
            model_error_steps: None,
            ..plain_mppi(&env.scenario().planner, samples, horizon)
        };
        let mut planner = env.planner(env.scenario().build_model(env.world())?, Some(config))?;
        let seconds = median_plan_seconds(planner.as_mut(), &obs, calls)?;
        out.push((samples, horizon, seconds));
    }
    Ok(out)
}

/// The MPPI-Generic / Nav2 benchmark problem in the navigate scene: a
/// differential-drive robot (the analytic unicycle), dt 0.02 s, MPPI with
/// 1024 samples × 100 steps and one iteration, with the navigate scenario's
/// objective (goal, effort and smoothness costs; clearance to the obstacles
/// and speed as guardrails), rolled out on `threads` threads. Returns the
/// median plan latency (seconds) of `calls` calls after two warm-up calls.
pub fn nav2(calls: usize, threads: usize) -> Result<f64, SimError> {
    let mut s = Scenario::load("navigate")?;
    if let crate::scene::SceneConfig::Navigate(c) = &mut s.scene {
        c.control_dt = 0.02;
        c.physics_dt = 0.02;
    }
    s.model = ModelChoice::Analytic;
    let (env, obs) = episode_of(s)?;
    let config = PlannerConfig {
        threads,
        ..plain_mppi(&env.scenario().planner, 1024, 100)
    };
    let mut planner = env.planner(env.scenario().build_model(env.world())?, Some(config))?;
    median_plan_seconds(planner.as_mut(), &obs, calls)
}

/// Raises the calling thread to real-time priority (`SCHED_FIFO`, priority
/// `priority`), as robot control loops run; the error is the operating
/// system's reason (e.g. missing `CAP_SYS_NICE`).
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
pub fn realtime_priority(priority: i32) -> Result<(), String> {
    let param = libc::sched_param {
        sched_priority: priority,
    };
    // SAFETY: `pthread_self` is always valid for the calling thread, and
    // `pthread_setschedparam` only reads `param`, which outlives the call.
    let r = unsafe { libc::pthread_setschedparam(libc::pthread_self(), libc::SCHED_FIFO, &param) };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::from_raw_os_error(r).to_string())
    }
}

/// Real-time priority is only set on Linux.
#[cfg(not(target_os = "linux"))]
pub fn realtime_priority(_priority: i32) -> Result<(), String> {
    Err("real-time priority is only set on Linux".into())
}

/// Control-tick figures of [`ticks`].
#[derive(Clone, Debug)]
pub struct Ticks {
    /// Ticks run.
    pub ticks: usize,
    /// Tick period.
    pub period: Duration,
    /// Latency of `observe` + `action` per tick: p50, p99, p99.9, max.
    pub latency: [Duration; 4],
    /// How late each tick started after its scheduled time (the operating
    /// system's wake-up, and the host's when virtualised): p50, p99, p99.9,
    /// max.
    pub wake: [Duration; 4],
    /// Ticks whose action was ready after the end of their period.
    pub missed: usize,
    /// The control thread slept until this long before each tick and
    /// busy-waited from there ([`Pacer`]).
    pub spin: Duration,
    /// Steal time (all CPUs) accumulated while the ticks ran: time the host
    /// of a virtual machine ran other work instead of this machine's CPUs,
    /// when none of this machine's threads can run ([`steal_time`]); `None`
    /// when unknown.
    pub steal: Option<Duration>,
    /// Ticks that returned a plan step, and those that returned a fallback.
    pub from_plan: usize,
    /// See `from_plan`.
    pub fallback: usize,
    /// Plans the planner thread published meanwhile.
    pub plans: u64,
    /// The control thread ran at real-time priority (else: why not).
    pub realtime: Result<(), String>,
}

fn quantiles(xs: &mut [Duration]) -> [Duration; 4] {
    xs.sort();
    let at = |q: f64| {
        let i = ((xs.len() as f64 - 1.0) * q).round() as usize;
        xs.get(i).copied().unwrap_or_default()
    };
    [at(0.5), at(0.99), at(0.999), at(1.0)]
}

/// Runs the controller of `scenario`'s planner (its model choice `model`)
/// for `ticks` control ticks at `hz`, observing and reading an action each
/// tick, while its planner thread re-plans. With `realtime`, the control
/// thread (a thread of its own) runs at `SCHED_FIFO` priority, the planner
/// thread at normal priority. The control thread wakes for each tick with a
/// [`Pacer`] busy-waiting over the last `spin`.
pub fn ticks(
    scenario: &str,
    model: ModelChoice,
    ticks: usize,
    hz: f64,
    realtime: bool,
    spin: Duration,
) -> Result<Ticks, SimError> {
    std::thread::scope(|s| {
        s.spawn(|| control_loop(scenario, model, ticks, hz, realtime, spin))
            .join()
            .unwrap_or_else(|_| {
                Err(SimError::Scene {
                    scene: scenario.into(),
                    message: "the control thread panicked".into(),
                })
            })
    })
}

fn control_loop(
    scenario: &str,
    model: ModelChoice,
    ticks: usize,
    hz: f64,
    realtime: bool,
    spin: Duration,
) -> Result<Ticks, SimError> {
    let (env, obs) = episode(scenario, model)?;
    let m = env.scenario().build_model(env.world())?;
    let spec = m.spec().clone();
    let planner = env.planner(m, None)?;
    let mut controller = Controller::spawn(planner, &spec, ControllerConfig::default())?;
    let period = Duration::from_secs_f64(1.0 / hz);
    // After the planner thread started, so that it keeps normal priority.
    let realtime = if realtime {
        realtime_priority(80)
    } else {
        Err("not asked for".into())
    };
    let mut latency = Vec::with_capacity(ticks);
    let mut wake = Vec::with_capacity(ticks);
    let (mut missed, mut from_plan, mut fallback) = (0, 0, 0);
    let pacer = Pacer::new(spin);
    let steal_before = steal_time();
    let start = Instant::now() + period;
    for k in 0..ticks {
        // A tick that is already late runs at once: late ticks are counted,
        // none is skipped.
        let due = start + period * k as u32;
        pacer.wait_until(due);
        let woke = Instant::now();
        controller.observe(&obs, woke)?;
        let source = controller.action(woke).source;
        let done = Instant::now();
        latency.push(done - woke);
        wake.push(woke.saturating_duration_since(due));
        if done > due + period {
            missed += 1;
        }
        match source {
            ActionSource::Plan { .. } => from_plan += 1,
            ActionSource::Fallback(_) => fallback += 1,
        }
    }
    let steal = steal_before
        .zip(steal_time())
        .map(|(before, after)| after.saturating_sub(before));
    let plans = controller.metrics().plans_published;
    Ok(Ticks {
        ticks,
        period,
        latency: quantiles(&mut latency),
        wake: quantiles(&mut wake),
        missed,
        spin,
        steal,
        from_plan,
        fallback,
        plans,
        realtime,
    })
}
