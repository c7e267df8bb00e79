//! Planner configuration as plain data.

use crate::Real;
use crate::limits::{LimitError, num, product};
use serde::{Deserialize, Serialize};

/// Which solver runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum PlannerKind {
    /// Model-predictive path integral control (Williams et al., 2017).
    #[default]
    Mppi,
    /// Cross-entropy method with the iCEM improvements (Pinneri et al., 2020).
    Cem,
    /// MPPI proposal refined by L-BFGS on an augmented Lagrangian (argmin).
    Gradient,
}

impl std::str::FromStr for PlannerKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "mppi" => Ok(Self::Mppi),
            "cem" | "icem" => Ok(Self::Cem),
            "gradient" | "lbfgs" => Ok(Self::Gradient),
            other => Err(format!(
                "unknown planner '{other}' (expected mppi, cem or gradient)"
            )),
        }
    }
}

/// How the sampled perturbations are interpolated from the knots
/// ([`PlannerConfig::knots`]) to the steps of the horizon.
///
/// Written in snake case in files (`zero`, `linear`, `cubic`); any other value
/// is an error listing these three.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Interpolation {
    /// Zero-order hold (action blocking): the horizon is cut into `K`
    /// consecutive blocks of `⌈H/K⌉` or `⌊H/K⌋` steps (longer blocks first,
    /// so every knot is used) and each block holds its knot's value.
    #[default]
    Zero,
    /// Piecewise linear between knots placed at steps
    /// `s_j = round(j·(H−1)/(K−1))`, the first at step 0 and the last at step
    /// `H−1` (one knot: constant).
    Linear,
    /// Cubic Hermite spline through the same knots as [`Interpolation::Linear`],
    /// with finite-difference slopes (the average of the two adjacent secants,
    /// one-sided at the ends), as MuJoCo MPC's cubic spline. It may overshoot
    /// between knots; the sampled actions are clamped into their bounds after
    /// interpolation.
    Cubic,
}

/// The action returned when no feasible plan exists.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(
    tag = "kind",
    rename_all = "snake_case",
    deny_unknown_fields,
    from = "FallbackData"
)]
pub enum Fallback {
    /// All zeros, clamped into the action bounds (e.g. stop a velocity-controlled base).
    #[default]
    Zero,
    /// A fixed action.
    Constant {
        /// The action.
        action: Vec<Real>,
    },
    /// Each action equals the current value of a readout (e.g. joint targets
    /// equal to the measured joint positions: hold still).
    Hold {
        /// One readout per action.
        readouts: Vec<String>,
    },
}

/// How [`Fallback`] is read: unit variants of internally tagged enums ignore
/// unknown keys in serde (serde-rs/serde#2123), empty struct variants do not.
#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
enum FallbackData {
    Zero {},
    Constant { action: Vec<Real> },
    Hold { readouts: Vec<String> },
}

impl From<FallbackData> for Fallback {
    fn from(d: FallbackData) -> Self {
        match d {
            FallbackData::Zero {} => Fallback::Zero,
            FallbackData::Constant { action } => Fallback::Constant { action },
            FallbackData::Hold { readouts } => Fallback::Hold { readouts },
        }
    }
}

/// Most rollout threads a planner may ask for ([`PlannerConfig::threads`]).
pub const MAX_THREADS: usize = 64;
/// Longest horizon `H` ([`PlannerConfig::horizon`], and the largest
/// [`PlannerConfig::model_error_steps`]).
pub const MAX_HORIZON: usize = 10_000;
/// Most sampled sequences `N` per iteration ([`PlannerConfig::samples`],
/// and the largest [`PlannerConfig::elites`] and
/// [`PlannerConfig::keep_rollouts`]).
pub const MAX_SAMPLES: usize = 1 << 20;
/// Most sampling iterations per plan call ([`PlannerConfig::iterations`]).
pub const MAX_ITERATIONS: usize = 10_000;
/// Most L-BFGS iterations per round ([`PlannerConfig::refine_iterations`]).
pub const MAX_REFINE_ITERATIONS: usize = 100_000;
/// Most augmented-Lagrangian rounds ([`PlannerConfig::refine_rounds`]).
pub const MAX_REFINE_ROUNDS: usize = 1_000;
/// Largest time budget per plan call, in milliseconds: one hour
/// ([`PlannerConfig::time_budget_ms`]).
pub const MAX_TIME_BUDGET_MS: Real = 3_600_000.0;
/// Most model steps one plan call may roll out, `N × H × iterations`
/// (2³⁰, about a minute of rollouts on one core for the analytic models):
/// the work of a call is bounded as well as its memory.
pub const MAX_STEPS_PER_PLAN: u64 = 1 << 30;
/// Largest rollout workspace a planner allocates, in bytes (1 GiB); see
/// [`PlannerConfig::check_workspace`].
pub const MAX_WORKSPACE_BYTES: u64 = 1 << 30;

/// Settings shared by all planners. Every field has a default (shown in its doc).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PlannerConfig {
    /// Solver (default `mppi`).
    pub kind: PlannerKind,
    /// Steps of lookahead `H` (default 20; at most [`MAX_HORIZON`]).
    pub horizon: usize,
    /// Sampled action sequences per iteration `N` (default 256; at least 2,
    /// at most [`MAX_SAMPLES`]; with `H` and the model's sizes, at most
    /// [`MAX_WORKSPACE_BYTES`] of rollout buffers, and `N × H × iterations`
    /// at most [`MAX_STEPS_PER_PLAN`]).
    pub samples: usize,
    /// Sampling iterations per plan call (default 3; at most [`MAX_ITERATIONS`]).
    pub iterations: usize,
    /// Wall-clock budget per plan call in milliseconds; the best plan so far is
    /// returned when it runs out (default: none; at most
    /// [`MAX_TIME_BUDGET_MS`], an hour).
    pub time_budget_ms: Option<Real>,
    /// Seed of the sampling noise (default 0).
    pub seed: u64,
    /// Standard deviation of the sampling noise as a fraction of each action's
    /// half range (default 0.3).
    pub noise: Real,
    /// Exponent β of the colored (1/f^β) sampling noise across time (across
    /// the knots when [`knots`](Self::knots) is set); 0 is white (default 0:
    /// white noise keeps more whole-horizon rollouts feasible and the effort
    /// of the samples alike, see the README's tuning section; 2 is iCEM's
    /// smooth noise).
    pub colored_noise_beta: Real,
    /// Control points `K` of the sampled perturbations, `1 ≤ K ≤ H` (default:
    /// none, one per step, which is `K = H`).
    ///
    /// Each sample draws its noise on `K` knots per action (colored across
    /// the knots) and [`interpolation`](Self::interpolation) spreads it over
    /// the `H` steps: `U = clamp(μ + σ ⊙ W·ε)` with `W` the `H×K`
    /// interpolation matrix, computed once. The search dimension drops from
    /// `H·A` to `K·A`. MPPI's weighted mean of such samples moves the mean
    /// within the same family (before clamping), and iCEM's per-step mean and
    /// deviation are estimated from them as before. The mean itself stays a
    /// full `H×A` sequence: the warm start shifts it by one step, which moves
    /// it off the knot grid, and only the perturbations around it are
    /// restricted. The gradient planner's L-BFGS refinement still adjusts
    /// every step.
    ///
    /// The interpolation already makes the perturbations smooth; consider
    /// `colored_noise_beta = 0` with knots. Colored noise has zero mean and
    /// unit deviation across the knots of each sample, which leaves few
    /// degrees of freedom when there are few knots (with 1 or 2 it is white
    /// anyway); the shipped `navigate` scenario uses 8 white knots.
    pub knots: Option<usize>,
    /// How the knots are interpolated to the steps (default `zero`, action
    /// blocking); ignored without [`knots`](Self::knots).
    pub interpolation: Interpolation,
    /// MPPI temperature: `λ = temperature × (J̄ − J_min)` over the feasible
    /// samples, so it is relative to the spread of their costs, not to the
    /// cost's scale (default 0.3; smaller follows the best few samples).
    pub temperature: Real,
    /// CEM elite count (default 16; at most `samples`).
    pub elites: usize,
    /// CEM: fraction of elites carried into the next iteration (default 0.3).
    pub elite_reuse: Real,
    /// CEM: weight kept on the old mean and deviation in each update (default 0.1).
    pub momentum: Real,
    /// Gradient: L-BFGS iterations per augmented-Lagrangian round (default
    /// 30; at most [`MAX_REFINE_ITERATIONS`]).
    pub refine_iterations: usize,
    /// Gradient: augmented-Lagrangian rounds (default 4; at most
    /// [`MAX_REFINE_ROUNDS`]).
    pub refine_rounds: usize,
    /// Action when no feasible plan exists (default zeros).
    pub fallback: Fallback,
    /// Steps over which a learned model's error margins grow (default: all
    /// the bundle has; at most [`MAX_HORIZON`]). The margin of step
    /// `model_error_steps` holds for the rest of the horizon.
    ///
    /// Open-loop errors compound, so a bundle's margins far along the
    /// horizon are wide (a box's position after 3 s of imagined pushing is
    /// uncertain by centimetres). A planner that re-plans every step only
    /// commits to the next action, and needs the margins of the steps in
    /// which it could still stop safely; beyond those the tail of the plan
    /// is lookahead that will be re-planned from fresh observations. Set
    /// this to about the number of steps the fallback needs to bring the
    /// robot to rest.
    pub model_error_steps: Option<usize>,
    /// Sampled rollouts each plan keeps for inspection (the `k` best of the
    /// last sampling iteration, [`Plan::rollouts`](crate::Plan::rollouts));
    /// default 0, at most `samples`. Buffers are allocated once, at
    /// construction.
    pub keep_rollouts: usize,
    /// Threads that roll out samples (default 1: the planner's own thread;
    /// at most [`MAX_THREADS`]).
    ///
    /// With more, the planner starts `threads − 1` workers once, each with
    /// its own copy of the world model ([`WorldModel::fork`]), and every
    /// sampling iteration splits its samples between them and the planner's
    /// thread. Sampling stays on the planner's thread, so plans are the same
    /// whatever the number of threads. Models that cannot fork (learned
    /// bundles: one ONNX call already evaluates a whole planning step; give
    /// them intra-op threads instead) roll out on the planner's thread.
    /// Workers run at normal priority and sleep between iterations, so a
    /// control thread at real-time priority is not disturbed.
    ///
    /// [`WorldModel::fork`]: crate::WorldModel::fork
    pub threads: usize,
    /// Control periods between sending an action and its acting on the
    /// robot (default 0; at most [`MAX_HORIZON`]): a robot with an
    /// actuation delay. Each call first predicts, with the model, where the
    /// actions already sent and not yet acting will bring the robot, then
    /// plans from there (a Smith predictor): the first `delay_steps`
    /// actions of the robot's future are fixed to those sent. The
    /// model-error margins start `delay_steps` steps along the bundle's
    /// (the start is itself a prediction), and the decoded readouts of the
    /// plan ([`Plan::decoded`](crate::Plan::decoded)) are those of the
    /// predicted start.
    #[serde(skip_serializing_if = "is_zero")]
    pub delay_steps: usize,
    /// The robot's delay is not known, only its largest value,
    /// `delay_steps` (default false). Each call identifies the delay in
    /// `0..=delay_steps` that best explains the observations so far (the
    /// model's one-step prediction of each observation from the one before,
    /// under each delay: the smallest discounted squared error in the
    /// latent wins) and predicts through that many of the actions sent. A
    /// repeated observation (a stale sensor) is not evidence. The
    /// model-error margins start `delay_steps` steps along, as for the
    /// largest delay. [`Plan::delay_steps`](crate::Plan::delay_steps) says
    /// which delay a call used.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub identify_delay: bool,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl Default for PlannerConfig {
    fn default() -> Self {
        Self {
            kind: PlannerKind::Mppi,
            horizon: 20,
            samples: 256,
            iterations: 3,
            time_budget_ms: None,
            seed: 0,
            noise: 0.3,
            colored_noise_beta: 0.0,
            knots: None,
            interpolation: Interpolation::Zero,
            temperature: 0.3,
            elites: 16,
            elite_reuse: 0.3,
            momentum: 0.1,
            refine_iterations: 30,
            refine_rounds: 4,
            fallback: Fallback::Zero,
            model_error_steps: None,
            keep_rollouts: 0,
            threads: 1,
            delay_steps: 0,
            identify_delay: false,
        }
    }
}

impl PlannerConfig {
    /// Checks every size and duration against its upper limit (the
    /// `MAX_*` constants of this module), before anything is allocated.
    /// [`validate`](Self::validate) checks them too; this is the typed
    /// error, which [`Planner`](crate::Planner) construction returns as
    /// [`PlanError::Limit`](crate::PlanError::Limit).
    pub fn check_limits(&self) -> Result<(), LimitError> {
        let counts = [
            ("planner.horizon", self.horizon, MAX_HORIZON),
            ("planner.samples", self.samples, MAX_SAMPLES),
            ("planner.iterations", self.iterations, MAX_ITERATIONS),
            ("planner.elites", self.elites, MAX_SAMPLES),
            ("planner.keep_rollouts", self.keep_rollouts, MAX_SAMPLES),
            (
                "planner.refine_iterations",
                self.refine_iterations,
                MAX_REFINE_ITERATIONS,
            ),
            (
                "planner.refine_rounds",
                self.refine_rounds,
                MAX_REFINE_ROUNDS,
            ),
        ];
        for (key, value, limit) in counts {
            LimitError::check(key, value, limit)?;
        }
        if let Some(k) = self.knots {
            LimitError::check("planner.knots", k, MAX_HORIZON)?;
        }
        if let Some(k) = self.model_error_steps {
            LimitError::check("planner.model_error_steps", k, MAX_HORIZON)?;
        }
        LimitError::check("planner.delay_steps", self.delay_steps, MAX_HORIZON)?;
        if let Some(ms) = self.time_budget_ms
            && ms.is_finite()
        {
            LimitError::check("planner.time_budget_ms", ms, MAX_TIME_BUDGET_MS)?;
        }
        LimitError::check(
            "planner.samples × planner.horizon × planner.iterations (model steps per plan)",
            product(&[self.samples, self.horizon, self.iterations]),
            MAX_STEPS_PER_PLAN,
        )
    }

    /// Checks the rollout workspace a planner of this configuration
    /// allocates for a model with `actions`, `latent` and `readouts` values
    /// per row against [`MAX_WORKSPACE_BYTES`]: per sample, the sequence
    /// (`H·A`), two latents and two readout rows, two action rows, its
    /// costs and guardrail margins, and its predicted readouts (`H·P`) when
    /// rollouts are kept, eight bytes each. Planner construction calls it
    /// before allocating.
    pub fn check_workspace(
        &self,
        actions: usize,
        latent: usize,
        readouts: usize,
    ) -> Result<(), LimitError> {
        let kept = if self.keep_rollouts > 0 {
            product(&[self.horizon, readouts])
        } else {
            0
        };
        let per_sample = product(&[self.horizon, actions])
            .saturating_add(product(&[2, latent]))
            .saturating_add(product(&[2, readouts]))
            .saturating_add(product(&[2, actions]))
            // Costs, guardrail margin columns and the ranking index.
            .saturating_add(12)
            .saturating_add(kept);
        LimitError::check(
            "planner rollout workspace in bytes (planner.samples × (planner.horizon × actions + …) × 8)",
            per_sample.saturating_mul(product(&[self.samples, 8])),
            MAX_WORKSPACE_BYTES,
        )
    }

    /// Checks every value; the message names the offending field (and for
    /// a size above its limit, the limit: [`check_limits`](Self::check_limits)).
    pub fn validate(&self) -> Result<(), String> {
        self.check_limits().map_err(|e| e.to_string())?;
        let positive = |name: &str, v: usize| {
            if v == 0 {
                Err(format!("planner.{name} must be positive, got 0"))
            } else {
                Ok(())
            }
        };
        positive("horizon", self.horizon)?;
        positive("samples", self.samples)?;
        positive("iterations", self.iterations)?;
        if !(1..=MAX_THREADS).contains(&self.threads) {
            return Err(format!(
                "planner.threads must be in 1..={MAX_THREADS}, got {}",
                self.threads
            ));
        }
        if self.keep_rollouts > self.samples {
            return Err(format!(
                "planner.keep_rollouts must be at most samples ({}), got {}",
                self.samples, self.keep_rollouts
            ));
        }
        if let Some(k) = self.knots
            && !(1..=self.horizon).contains(&k)
        {
            return Err(format!(
                "planner.knots must be in 1..={} (horizon), got {k}",
                self.horizon
            ));
        }
        if let Some(k) = self.model_error_steps {
            positive("model_error_steps", k)?;
        }
        if self.samples < 2 {
            return Err("planner.samples must be at least 2".into());
        }
        if self.kind == PlannerKind::Cem && !(1..=self.samples).contains(&self.elites) {
            return Err(format!(
                "planner.elites must be in 1..={} (samples), got {}",
                self.samples, self.elites
            ));
        }
        let in_range = |name: &str, v: Real, lo: Real, hi: Real| {
            if v.is_finite() && (lo..=hi).contains(&v) {
                Ok(())
            } else {
                Err(format!(
                    "planner.{name} must be in [{}, {}], got {}",
                    num(lo),
                    num(hi),
                    num(v)
                ))
            }
        };
        in_range("noise", self.noise, 0.0, 10.0)?;
        in_range("colored_noise_beta", self.colored_noise_beta, 0.0, 4.0)?;
        in_range("elite_reuse", self.elite_reuse, 0.0, 1.0)?;
        in_range("momentum", self.momentum, 0.0, 0.999)?;
        if !(self.temperature.is_finite() && self.temperature > 0.0) {
            return Err(format!(
                "planner.temperature must be positive, got {}",
                num(self.temperature)
            ));
        }
        if let Some(ms) = self.time_budget_ms
            && !(ms.is_finite() && ms > 0.0)
        {
            return Err(format!(
                "planner.time_budget_ms must be positive, got {}",
                num(ms)
            ));
        }
        Ok(())
    }
}
