//! The closed loop: observe → plan → act → step physics, with a ground-truth
//! validator checking every guardrail at every physics step.

use crate::SimError;
use crate::batch::{Episodes, run_episodes, run_episodes_observed};
use crate::scenario::Scenario;
use crate::scene::{EpisodeSetup, Scene};
use serde::{Deserialize, Serialize};
use std::ops::ControlFlow;
use std::time::Instant;
use telic::objective::Residual;
use telic::{ModelSpec, Objective, ObjectiveSpec, Plan, PlanStatus, Planner, Real, WorldModel};

/// Checks guardrails against the *true* physics state.
///
/// It compiles the episode's guardrails against the scene's ground-truth
/// readout names and evaluates the limits themselves (the planner's safety
/// buffers are not part of the limit).
#[derive(Debug)]
pub struct Validator {
    objective: Objective,
    /// The objective's readout and action terms, resolved against the true readouts.
    cost: Objective,
    names: Vec<String>,
    margins: Vec<Real>,
    truth: Vec<Real>,
    scratch: telic::objective::ObjectiveScratch,
}

impl Validator {
    /// A validator for the guardrails and bodies of `spec`, over the readouts
    /// named `truth_names`, for a robot with the named `actions`.
    pub fn new(
        spec: &ObjectiveSpec,
        truth_names: &[String],
        actions: &[String],
    ) -> Result<Self, telic::PlanError> {
        let truth_spec = ModelSpec {
            name: "ground truth".into(),
            observations: vec!["-".into()],
            actions: vec!["-".into()],
            latent_dim: 1,
            readouts: truth_names.to_vec(),
            action_lower: vec![0.0],
            action_upper: vec![0.0],
            dt: 1.0,
        };
        let guard_only = ObjectiveSpec {
            terms: Vec::new(),
            guardrails: spec.guardrails.clone(),
            bodies: spec.bodies.clone(),
        };
        let objective = guard_only.compile(&truth_spec)?;
        // Latent terms have no ground truth; readout terms whose readouts the
        // scene does not measure are left out of the executed-cost account.
        let measurable = |t: &&telic::objective::TermSpec| match &t.residual {
            Residual::Latent { .. } => false,
            Residual::Readout { readouts, .. } => readouts.iter().all(|r| truth_names.contains(r)),
            Residual::Action { .. } | Residual::ActionRate => true,
        };
        let mut truth_spec = truth_spec;
        truth_spec.actions = actions.to_vec();
        truth_spec.action_lower = vec![0.0; actions.len()];
        truth_spec.action_upper = vec![0.0; actions.len()];
        let cost = ObjectiveSpec {
            terms: spec.terms.iter().filter(measurable).cloned().collect(),
            guardrails: Vec::new(),
            bodies: Vec::new(),
        }
        .compile(&truth_spec)?;
        let names = objective.guardrail_names().map(str::to_string).collect();
        let g = objective.num_guardrails();
        let scratch = cost.scratch();
        Ok(Self {
            objective,
            cost,
            names,
            margins: vec![0.0; g],
            truth: vec![0.0; truth_names.len()],
            scratch,
        })
    }

    /// Sets the target of a cost term of the executed-cost account (terms it
    /// left out are ignored).
    pub fn set_target(&mut self, term: &str, target: &[Real]) -> Result<(), telic::PlanError> {
        if self.cost.term_names().any(|t| t == term) {
            self.cost.set_target(term, target)?;
        }
        Ok(())
    }

    /// The running task cost of the last checked true state after action `u`
    /// that followed `u_prev`.
    pub fn task_cost(&mut self, u: &[Real], u_prev: &[Real]) -> Real {
        self.cost
            .stage_cost(&self.truth, &[], u, u_prev, false, &mut self.scratch, None)
    }

    /// Names of the guardrails checked, in order.
    #[must_use]
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Reads the scene's true state and evaluates the margin of every
    /// guardrail (negative: violated), see [`Validator::margins`].
    pub fn check(&mut self, scene: &dyn Scene) {
        scene.truth(&mut self.truth);
        self.objective
            .margins(&self.truth, false, &mut self.margins);
    }

    /// The margins computed by the last [`Validator::check`].
    #[must_use]
    pub fn margins(&self) -> &[Real] {
        &self.margins
    }

    /// The last true readouts read by [`Validator::check`].
    #[must_use]
    pub fn truth(&self) -> &[Real] {
        &self.truth
    }
}

/// What one episode did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpisodeResult {
    /// The episode's seed (reproduces it exactly).
    pub seed: u64,
    /// The task was achieved within the time limit.
    pub success: bool,
    /// Simulated seconds until success.
    pub time_to_goal: Option<Real>,
    /// Simulated seconds run.
    pub duration: Real,
    /// Running task cost of the executed trajectory (the objective's terms on
    /// the true states, summed over control steps).
    pub task_cost: Real,
    /// Physics steps at which some guardrail was violated in the true state.
    pub violation_steps: usize,
    /// Guardrails violated at least once, with their step counts.
    pub violated: Vec<(String, usize)>,
    /// The smallest true margin over all guardrails and physics steps.
    pub worst_margin: Real,
    /// The guardrail with the smallest margin.
    pub worst_guardrail: String,
    /// Control steps run.
    pub control_steps: usize,
    /// Control steps at which no feasible plan was found (fallback applied).
    pub fallback_steps: usize,
    /// Why the fallback was applied ([`fallback_reason`]), with the number
    /// of control steps for each reason, most frequent first.
    #[serde(default)]
    pub fallback_reasons: Vec<(String, usize)>,
    /// What was wrong with the episode's planner when it was built: each
    /// guardrail that its model-error margins make unsatisfiable
    /// ([`Planner::unsatisfiable_guardrails`]).
    #[serde(default)]
    pub planner_warnings: Vec<String>,
    /// Wall-clock planning time of each control step, in milliseconds.
    pub plan_latency_ms: Vec<Real>,
    /// How far the final state was from the goal ([`Scene::goal_error`]).
    pub final_error: Vec<(String, Real)>,
}

impl EpisodeResult {
    /// An episode of `seed` before its first step.
    pub(crate) fn start(seed: u64) -> Self {
        Self {
            seed,
            success: false,
            time_to_goal: None,
            duration: 0.0,
            task_cost: 0.0,
            violation_steps: 0,
            violated: Vec::new(),
            worst_margin: Real::INFINITY,
            worst_guardrail: String::new(),
            control_steps: 0,
            fallback_steps: 0,
            fallback_reasons: Vec::new(),
            planner_warnings: Vec::new(),
            plan_latency_ms: Vec::new(),
            final_error: Vec::new(),
        }
    }

    /// Records where the episode ended in `scene`: its duration, its goal
    /// errors and the guardrails (named `names`) violated `violated` times.
    pub(crate) fn finish(&mut self, scene: &dyn Scene, names: &[String], violated: &[usize]) {
        self.duration = scene.time();
        self.final_error = scene
            .goal_error()
            .into_iter()
            .map(|(name, e)| (name.to_string(), e))
            .collect();
        self.violated = names
            .iter()
            .zip(violated)
            .filter(|(_, n)| **n > 0)
            .map(|(name, n)| (name.clone(), *n))
            .collect();
    }
}

/// Per-step hook for telemetry and data collection. Every method has a no-op default.
pub trait EpisodeObserver {
    /// Called once after reset with the episode's compiled objective.
    fn on_reset(&mut self, _scene: &dyn Scene, _objective: &Objective, _seed: u64) {}
    /// Called once before the first plan with the episode's objective as
    /// specified (the scenario's, plus the scene's guardrails of this
    /// episode), the planning model's spec (the layout of
    /// [`Plan::readouts`]) and the validator, which has checked the start
    /// state.
    fn on_start(
        &mut self,
        _scene: &dyn Scene,
        _spec: &ObjectiveSpec,
        _model: &ModelSpec,
        _validator: &Validator,
    ) {
    }
    /// Called after each plan, before the action is applied.
    fn on_plan(&mut self, _scene: &dyn Scene, _obs: &[Real], _plan: &Plan, _step: usize) {}
    /// Called after every physics step with the true guardrail margins.
    fn on_physics_step(&mut self, _scene: &dyn Scene, _truth: &[Real], _margins: &[Real]) {}
    /// Called once when the episode ended, with its result.
    fn on_finish(&mut self, _scene: &dyn Scene, _result: &EpisodeResult) {}
}

/// An observer that does nothing.
#[derive(Debug, Default)]
pub struct NoObserver;
impl EpisodeObserver for NoObserver {}

/// Runs one episode of `scenario` in `scene` with `model`, everything random
/// drawn from `seed`.
pub fn run_episode(
    scenario: &Scenario,
    scene: &mut dyn Scene,
    model: Box<dyn WorldModel>,
    seed: u64,
    observer: &mut dyn EpisodeObserver,
) -> Result<EpisodeResult, SimError> {
    let scene_err = |message: String| SimError::Scene {
        scene: scene_name(scenario),
        message,
    };
    let setup = scene.reset(seed)?;
    let mut spec = scenario.objective.clone();
    spec.guardrails.extend(setup.guardrails.iter().cloned());
    let model_spec = model.spec().clone();
    let objective = spec.compile(&model_spec)?;
    let mut validator = Validator::new(&spec, scene.truth_readouts(), &model_spec.actions)?;
    for (term, target) in &setup.targets {
        validator.set_target(term, target)?;
    }
    let pdt = scene.physics_dt();
    let k = match scenario.episode.physics_steps_per_control {
        0 => (model_spec.dt / pdt).round() as usize,
        k => k,
    };
    if k == 0 || ((k as Real) * pdt - model_spec.dt).abs() > 1e-6 * model_spec.dt.max(1.0) {
        return Err(scene_err(format!(
            "model time step {} s is not a whole number of physics steps of {} s",
            telic::limits::num(model_spec.dt),
            telic::limits::num(pdt)
        )));
    }
    let mut config = scenario.planner.clone();
    config.seed = seed ^ config.seed.rotate_left(17);
    let mut planner = telic::build(model, objective, config)?;
    let unsatisfiable = planner.unsatisfiable_guardrails();
    let guardrails: Vec<String> = planner
        .objective()
        .guardrail_names()
        .map(str::to_string)
        .collect();
    set_goals(planner.as_mut(), &setup, scene.name())?;
    observer.on_reset(scene, planner.objective(), seed);

    let mut obs = vec![0.0; model_spec.obs_dim()];
    let mut u_prev: Option<Vec<Real>> = None;

    let mut result = EpisodeResult::start(seed);
    result.planner_warnings = unsatisfiable.iter().map(|u| u.to_string()).collect();
    let mut violated = vec![0usize; validator.names().len()];
    // The start state is checked too: a scene must not start in violation.
    validator.check(scene);
    account(&mut result, &mut violated, &validator);
    observer.on_start(scene, &spec, &model_spec, &validator);

    let max_time = scenario.episode.max_time;
    let mut step = 0;
    while scene.time() + 0.5 * pdt < max_time {
        scene.observe(&mut obs);
        let t0 = Instant::now();
        let plan = planner.plan(&obs)?;
        result
            .plan_latency_ms
            .push(t0.elapsed().as_secs_f64() * 1e3);
        if plan.status == PlanStatus::NoFeasiblePlan {
            result.fallback_steps += 1;
            let reason = fallback_reason(plan, &guardrails, &unsatisfiable);
            count(&mut result.fallback_reasons, reason, 1);
        }
        observer.on_plan(scene, &obs, plan, step);
        let action = plan.action.clone();
        scene.apply(&action);
        for _ in 0..k {
            scene.step();
            validator.check(scene);
            observer.on_physics_step(scene, validator.truth(), validator.margins());
            account(&mut result, &mut violated, &validator);
        }
        step += 1;
        let prev = u_prev.as_deref().unwrap_or(&action);
        result.task_cost += validator.task_cost(&action, prev);
        u_prev = Some(action);
        if scene.success() {
            result.success = true;
            result.time_to_goal = Some(scene.time());
            break;
        }
    }
    result.control_steps = step;
    sort_counts(&mut result.fallback_reasons);
    result.finish(scene, validator.names(), &violated);
    observer.on_finish(scene, &result);
    Ok(result)
}

/// Why `plan` fell back on the safe fallback, in a few words: the world
/// model's prediction along the best plan found was not finite (a model
/// returning NaN), a guardrail that plan breaks (the one with the smallest
/// margin, named `guardrails[i]`; marked when it is one of
/// `unsatisfiable`), or a cost that is not finite.
#[must_use]
pub fn fallback_reason(
    plan: &Plan,
    guardrails: &[String],
    unsatisfiable: &[telic::objective::UnsatisfiableGuardrail],
) -> String {
    if plan.readouts.iter().any(|y| !y.is_finite()) {
        return "predicted readouts not finite (the world model returned NaN or inf)".into();
    }
    let worst = plan
        .margins
        .iter()
        .enumerate()
        .filter(|(_, m)| **m < 0.0)
        .min_by(|a, b| a.1.total_cmp(b.1));
    if let Some((i, _)) = worst {
        let name = guardrails.get(i).map_or("?", String::as_str);
        return if unsatisfiable.iter().any(|u| u.guardrail == name) {
            format!("guardrail '{name}' broken (unsatisfiable under the model-error margins)")
        } else {
            format!("guardrail '{name}' broken")
        };
    }
    if plan.cost.is_finite() {
        "no feasible plan".into()
    } else {
        "plan cost not finite".into()
    }
}

/// Adds `n` to the count of `key` in `counts`.
fn count(counts: &mut Vec<(String, usize)>, key: String, n: usize) {
    match counts.iter_mut().find(|(k, _)| *k == key) {
        Some((_, c)) => *c += n,
        None => counts.push((key, n)),
    }
}

/// Most frequent first, then by name.
fn sort_counts(counts: &mut [(String, usize)]) {
    counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
}

/// Sets an episode's goals on `planner`: each of the scene's targets on the
/// term it names, and on every latent term the scene's goal observation,
/// encoded by the planner's world model. A latent term takes no target: a
/// scene target naming one (a scene's readout goal, in a scenario that made
/// its goal latent) is left to the goal observation. A latent term in a
/// scene that gives no goal observation is an error naming the term and
/// the scene `scene`.
pub fn set_goals(
    planner: &mut dyn Planner,
    setup: &EpisodeSetup,
    scene: &str,
) -> Result<(), SimError> {
    let latent: Vec<String> = planner
        .objective()
        .latent_term_names()
        .map(str::to_string)
        .collect();
    for (term, target) in &setup.targets {
        if !latent.contains(term) {
            planner.objective_mut().set_target(term, target)?;
        }
    }
    for term in &latent {
        let Some(obs) = &setup.goal_observation else {
            return Err(SimError::Scene {
                scene: scene.to_string(),
                message: format!(
                    "cost term '{term}' is a latent goal, but this scene gives no goal \
                     observation to encode; give the goal as readout targets instead"
                ),
            });
        };
        planner.set_goal_observation(term, obs)?;
    }
    Ok(())
}

/// Adds the validator's last check to `result`: worst margin, and a
/// violation of each guardrail below zero.
pub(crate) fn account(result: &mut EpisodeResult, violated: &mut [usize], v: &Validator) {
    let mut any = false;
    for (i, m) in v.margins().iter().enumerate() {
        if *m < result.worst_margin {
            result.worst_margin = *m;
            result.worst_guardrail = v.names().get(i).cloned().unwrap_or_default();
        }
        if *m < 0.0 {
            any = true;
            if let Some(c) = violated.get_mut(i) {
                *c += 1;
            }
        }
    }
    if any {
        result.violation_steps += 1;
    }
}

fn scene_name(s: &Scenario) -> String {
    s.scene_name().to_string()
}

/// Aggregate figures over many episodes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Episodes run.
    pub episodes: usize,
    /// Episodes that achieved the task.
    pub successes: usize,
    /// `successes / episodes`.
    pub success_rate: Real,
    /// Mean simulated time to goal over successful episodes (seconds).
    pub mean_time_to_goal: Option<Real>,
    /// Mean executed task cost.
    pub mean_task_cost: Real,
    /// Physics steps with a true guardrail violation, over all episodes.
    pub violation_steps: usize,
    /// Episodes with at least one true violation.
    pub episodes_with_violations: usize,
    /// Smallest true guardrail margin seen.
    pub worst_margin: Real,
    /// The guardrail it belongs to.
    pub worst_guardrail: String,
    /// Control steps that used the safe fallback.
    pub fallback_steps: usize,
    /// Those steps by reason ([`EpisodeResult::fallback_reasons`]), most
    /// frequent first.
    #[serde(default)]
    pub fallback_reasons: Vec<(String, usize)>,
    /// The episodes' planner warnings ([`EpisodeResult::planner_warnings`]),
    /// each once.
    #[serde(default)]
    pub planner_warnings: Vec<String>,
    /// Median plan latency (ms).
    pub plan_latency_p50_ms: Real,
    /// 99th-percentile plan latency (ms).
    pub plan_latency_p99_ms: Real,
    /// Largest plan latency (ms).
    pub plan_latency_max_ms: Real,
    /// Median and 90th percentile over the failed episodes of each final
    /// goal error ([`EpisodeResult::final_error`]): how far the failures got.
    pub failure_final_error: Vec<(String, Real, Real)>,
}

/// Value at quantile `q` (nearest rank) of `xs`; NaN when empty.
#[must_use]
pub fn quantile(xs: &[Real], q: Real) -> Real {
    if xs.is_empty() {
        return Real::NAN;
    }
    let mut v = xs.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let idx = ((q * v.len() as Real).ceil() as usize).clamp(1, v.len()) - 1;
    v[idx]
}

impl Summary {
    /// Aggregates `results`.
    #[must_use]
    pub fn of(results: &[EpisodeResult]) -> Self {
        let n = results.len();
        let successes = results.iter().filter(|r| r.success).count();
        let ttg: Vec<Real> = results.iter().filter_map(|r| r.time_to_goal).collect();
        let worst = results
            .iter()
            .min_by(|a, b| a.worst_margin.total_cmp(&b.worst_margin));
        let lat: Vec<Real> = results
            .iter()
            .flat_map(|r| r.plan_latency_ms.iter().copied())
            .collect();
        Self {
            episodes: n,
            successes,
            success_rate: if n == 0 {
                0.0
            } else {
                successes as Real / n as Real
            },
            mean_time_to_goal: (!ttg.is_empty())
                .then(|| ttg.iter().sum::<Real>() / ttg.len() as Real),
            mean_task_cost: if n == 0 {
                0.0
            } else {
                results.iter().map(|r| r.task_cost).sum::<Real>() / n as Real
            },
            violation_steps: results.iter().map(|r| r.violation_steps).sum(),
            episodes_with_violations: results.iter().filter(|r| r.violation_steps > 0).count(),
            worst_margin: worst.map_or(Real::INFINITY, |r| r.worst_margin),
            worst_guardrail: worst.map(|r| r.worst_guardrail.clone()).unwrap_or_default(),
            fallback_steps: results.iter().map(|r| r.fallback_steps).sum(),
            fallback_reasons: {
                let mut all = Vec::new();
                for (reason, n) in results.iter().flat_map(|r| &r.fallback_reasons) {
                    count(&mut all, reason.clone(), *n);
                }
                sort_counts(&mut all);
                all
            },
            planner_warnings: {
                let mut all: Vec<String> = Vec::new();
                for w in results.iter().flat_map(|r| &r.planner_warnings) {
                    if !all.contains(w) {
                        all.push(w.clone());
                    }
                }
                all
            },
            plan_latency_p50_ms: quantile(&lat, 0.5),
            plan_latency_p99_ms: quantile(&lat, 0.99),
            plan_latency_max_ms: lat.iter().copied().fold(Real::NAN, Real::max),
            failure_final_error: failure_errors(results),
        }
    }
}

/// `(name, p50, p90)` of each final goal error over the failed episodes.
fn failure_errors(results: &[EpisodeResult]) -> Vec<(String, Real, Real)> {
    let failed: Vec<&EpisodeResult> = results.iter().filter(|r| !r.success).collect();
    let Some(first) = failed.first() else {
        return Vec::new();
    };
    first
        .final_error
        .iter()
        .map(|(name, _)| {
            let xs: Vec<Real> = failed
                .iter()
                .filter_map(|r| r.final_error.iter().find(|(n, _)| n == name))
                .map(|(_, e)| *e)
                .collect();
            (name.clone(), quantile(&xs, 0.5), quantile(&xs, 0.9))
        })
        .collect()
}

/// The seed of episode `index` of a run seeded with `seed`.
#[must_use]
pub fn episode_seed(seed: u64, index: usize) -> u64 {
    seed.wrapping_mul(1_000_003).wrapping_add(index as u64)
}

/// Episode `index` of a run seeded with `seed`, with a fresh world model.
pub(crate) fn run_indexed(
    scenario: &Scenario,
    scene: &mut dyn Scene,
    seed: u64,
    index: usize,
    observer: &mut dyn EpisodeObserver,
) -> Result<EpisodeResult, SimError> {
    let model = scenario.build_model(scene)?;
    run_episode(scenario, scene, model, episode_seed(seed, index), observer)
}

/// Runs `episodes` episodes one after another on this thread, each watched
/// by `observer` (a recording, say); the same seeds and results as
/// [`run_batch`]. `progress` is called after each finished episode. See
/// [`crate::batch`] for runs that can be stopped, resumed, and keep their
/// finished episodes when one fails.
pub fn run_observed(
    scenario: &Scenario,
    episodes: usize,
    seed: u64,
    observer: &mut dyn EpisodeObserver,
    progress: &dyn Fn(&EpisodeResult),
) -> Result<Vec<EpisodeResult>, SimError> {
    let episodes = Episodes::all(episodes);
    run_episodes_observed(scenario, seed, episodes, observer, &|_, r| {
        progress(r);
        ControlFlow::Continue(())
    })
    .into_results()
}

/// Runs `episodes` episodes on `jobs` threads (results in episode order);
/// `progress` is called after each finished episode. A failing episode
/// stops the other workers after their current episode and is the error.
pub fn run_batch(
    scenario: &Scenario,
    episodes: usize,
    seed: u64,
    jobs: usize,
    progress: &(dyn Fn(&EpisodeResult) + Sync),
) -> Result<Vec<EpisodeResult>, SimError> {
    let episodes = Episodes::all(episodes);
    run_episodes(scenario, seed, episodes, jobs, &|_, r| {
        progress(r);
        ControlFlow::Continue(())
    })
    .into_results()
}
