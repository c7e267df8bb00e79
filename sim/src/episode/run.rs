//! The batch runner's loop: a planner closing the loop of an [`Episode`]
//! on its own, watched by an [`EpisodeObserver`].

use super::result::{count, sort_counts};
use super::{Episode, EpisodeResult, Validator, fallback_reason};
use crate::SimError;
use crate::batch::{Episodes, run_episodes, run_episodes_observed};
use crate::scenario::Scenario;
use crate::scene::World;
use std::ops::ControlFlow;
use std::time::Instant;
use telic::{ModelSpec, Objective, ObjectiveSpec, Plan, PlanStatus, Real, WorldModel};

/// Per-step hook for telemetry and data collection. Every method has a no-op default.
pub trait EpisodeObserver {
    /// Called once after reset with the episode's compiled objective.
    fn on_reset(&mut self, _scene: &dyn World, _objective: &Objective, _seed: u64) {}
    /// Called once before the first plan with the episode's objective as
    /// specified (the scenario's, plus the scene's guardrails of this
    /// episode), the planning model's spec (the layout of
    /// [`Plan::readouts`]) and the validator, which has checked the start
    /// state.
    fn on_start(
        &mut self,
        _scene: &dyn World,
        _spec: &ObjectiveSpec,
        _model: &ModelSpec,
        _validator: &Validator,
    ) {
    }
    /// Called after each plan, before the action is applied.
    fn on_plan(&mut self, _scene: &dyn World, _obs: &[Real], _plan: &Plan, _step: usize) {}
    /// Called after every physics step with the true guardrail margins.
    fn on_physics_step(&mut self, _scene: &dyn World, _truth: &[Real], _margins: &[Real]) {}
    /// Called once when the episode ended, with its result.
    fn on_finish(&mut self, _scene: &dyn World, _result: &EpisodeResult) {}
}

/// An observer that does nothing.
#[derive(Debug, Default)]
pub struct NoObserver;
impl EpisodeObserver for NoObserver {}

/// Runs one episode of `scenario` in `world` with `model`, everything random
/// drawn from `seed`: [`Episode::start`], then observe ([`Episode::observe`],
/// in the scenario's observation mode) → plan → [`Episode::step`] until the
/// task is achieved or the time is up.
pub fn run_episode(
    scenario: &Scenario,
    world: &mut dyn World,
    model: Box<dyn WorldModel>,
    seed: u64,
    observer: &mut dyn EpisodeObserver,
) -> Result<EpisodeResult, SimError> {
    // The control period is the planning model's time step.
    let model_spec = model.spec().clone();
    let mut episode = Episode::start(scenario, world, seed, &model_spec)?;
    let mut planner = episode.planner(model, scenario.planner.clone())?;
    let unsatisfiable = planner.unsatisfiable_guardrails();
    let guardrails: Vec<String> = planner
        .objective()
        .guardrail_names()
        .map(str::to_string)
        .collect();
    observer.on_reset(world, planner.objective(), seed);
    observer.on_start(world, episode.objective(), &model_spec, episode.validator());

    let mut obs = vec![0.0; episode.obs_dim()];
    let mut latency = Vec::new();
    let mut fallback_steps = 0;
    let mut fallback_reasons = Vec::new();
    let mut step = 0;
    let mut delay = None;
    while !episode.time_up(world) {
        episode.observe(world, &mut obs)?;
        let t0 = Instant::now();
        let plan = planner.plan(&obs)?;
        latency.push(t0.elapsed().as_secs_f64() * 1e3);
        delay = Some(plan.delay_steps);
        if plan.status == PlanStatus::NoFeasiblePlan {
            fallback_steps += 1;
            let reason = fallback_reason(plan, &guardrails, &unsatisfiable);
            count(&mut fallback_reasons, reason, 1);
        }
        observer.on_plan(world, &obs, plan, step);
        let mut on_physics = |world: &dyn World, v: &Validator| {
            observer.on_physics_step(world, v.truth(), v.margins());
        };
        let out = episode.step(world, &plan.action, &mut on_physics);
        step += 1;
        if out.success || out.diverged {
            break;
        }
    }
    let mut result = episode.result(world);
    result.planner_warnings = unsatisfiable.iter().map(|u| u.to_string()).collect();
    result.fallback_steps = fallback_steps;
    sort_counts(&mut fallback_reasons);
    result.fallback_reasons = fallback_reasons;
    result.plan_latency_ms = latency;
    if scenario.planner.identify_delay {
        result.delay_identified = delay;
    }
    observer.on_finish(world, &result);
    Ok(result)
}

/// The seed of episode `index` of a run seeded with `seed`.
#[must_use]
pub fn episode_seed(seed: u64, index: usize) -> u64 {
    seed.wrapping_mul(1_000_003).wrapping_add(index as u64)
}

/// Episode `index` of a run seeded with `seed`, with a fresh world model.
pub(crate) fn run_indexed(
    scenario: &Scenario,
    world: &mut dyn World,
    seed: u64,
    index: usize,
    observer: &mut dyn EpisodeObserver,
) -> Result<EpisodeResult, SimError> {
    let model = scenario.build_model(world)?;
    run_episode(scenario, world, model, episode_seed(seed, index), observer)
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
