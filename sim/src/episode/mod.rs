//! The closed loop: observe → plan → act → step physics, with a ground-truth
//! validator checking every guardrail at every physics step.

mod goals;
mod result;
mod validator;

pub use goals::set_goals;
pub use result::{EpisodeResult, Summary, fallback_reason, quantile};
pub use validator::Validator;

use crate::SimError;
use crate::batch::{Episodes, run_episodes, run_episodes_observed};
use crate::scenario::Scenario;
use crate::scene::Scene;
use result::{count, sort_counts};
use std::ops::ControlFlow;
use std::time::Instant;
use telic::{ModelSpec, Objective, ObjectiveSpec, Plan, PlanStatus, Real, WorldModel};

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
