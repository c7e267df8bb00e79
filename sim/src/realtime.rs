//! Episodes in real time with the controller in the loop: the scene advances
//! one control period per period of wall-clock time, and each control step
//! takes whatever action [`Controller::action`] has ready, while the planner
//! thread re-plans from the newest observation as fast as it can.
//!
//! This is how Telic runs on a robot, and what `telic run --controller`
//! measures: success and true guardrail violations *with* the planning
//! latency the robot would see (a plan computed from an observation that is
//! already old, the fallback when the newest plan is too old), and the
//! re-planning rate reached.

use crate::SimError;
use crate::episode::{EpisodeResult, episode_seed};
use crate::pacing::Pacer;
use crate::scenario::Scenario;
use crate::scene::Scene;
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};
use telic::Real;
use telic::controller::{ActionSource, Controller, ControllerConfig, FallbackCounts};

/// What the controller did in one real-time episode.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RealtimeStats {
    /// Wall-clock seconds the episode ran.
    pub wall_seconds: Real,
    /// Plans the planner thread published.
    pub plans: u64,
    /// Plans per wall-clock second: the re-planning rate.
    pub replan_hz: Real,
    /// Control steps that applied a step of a plan.
    pub plan_steps: usize,
    /// Control steps that applied the fallback, by reason.
    pub fallback_steps: FallbackCounts,
    /// Control steps that started more than one period late (the simulation
    /// and control thread could not keep up).
    pub late_steps: usize,
    /// The oldest plan acted on, in milliseconds since its observation.
    pub max_plan_age_ms: Real,
}

/// Runs `episodes` episodes of `scenario` one after another in real time,
/// each with a fresh world model and a controller configured by `control`;
/// episode `i` is seeded as [`run_batch`](crate::episode::run_batch) seeds
/// it. `progress` is called after each episode.
pub fn run_realtime(
    scenario: &Scenario,
    episodes: usize,
    seed: u64,
    control: &ControllerConfig,
    progress: &dyn Fn(&EpisodeResult, &RealtimeStats),
) -> Result<Vec<(EpisodeResult, RealtimeStats)>, SimError> {
    control.validate().map_err(telic::PlanError::Config)?;
    let mut env = Scene::new(scenario.clone())?;
    let mut out = Vec::with_capacity(episodes);
    for i in 0..episodes {
        let r = episode(&mut env, episode_seed(seed, i), control)?;
        progress(&r.0, &r.1);
        out.push(r);
    }
    Ok(out)
}

/// One real-time episode of `env`'s scenario seeded with `seed` (the
/// episode itself, not a run's seed: see [`episode_seed`]), with a fresh
/// world model and a controller configured by `control` (validated by the
/// caller, as [`run_realtime`] does).
pub fn episode(
    env: &mut Scene,
    seed: u64,
    control: &ControllerConfig,
) -> Result<(EpisodeResult, RealtimeStats), SimError> {
    let mut obs = vec![0.0; env.obs_dim()];
    env.reset(seed, &mut obs)?;
    let model = env.scenario().build_model(env.world())?;
    let spec = model.spec().clone();
    let planner = env.planner(model, None)?;
    let mut controller = Controller::spawn(planner, &spec, control.clone())?;
    let dt = Duration::from_secs_f64(env.spec().dt);
    let pdt = Duration::from_secs_f64(env.world().physics_dt());
    let mut stats = RealtimeStats::default();
    let mut fallback_steps = 0;
    let mut latency = Vec::new();
    let mut action = vec![0.0; env.spec().action_dim()];
    controller.observe(&obs, Instant::now())?;
    // The robot holds still until its first plan (at most a few seconds).
    let ready_by = Instant::now() + Duration::from_secs(10);
    while controller.metrics().plans_published == 0 && Instant::now() < ready_by {
        std::thread::sleep(Duration::from_millis(1));
        controller.observe(&obs, Instant::now())?;
    }
    // Sleeps until each step's absolute time; no busy-wait (this thread is
    // not real-time, and its deadline is a whole period).
    let pacer = Pacer::new(Duration::ZERO);
    let start = Instant::now();
    for k in 0.. {
        let due = start + dt * k;
        if Instant::now() > due + dt {
            stats.late_steps += 1;
        }
        pacer.wait_until(due);
        let a = controller.action(Instant::now());
        action.copy_from_slice(a.values);
        match a.source {
            ActionSource::Plan { age, .. } => {
                stats.plan_steps += 1;
                stats.max_plan_age_ms = stats.max_plan_age_ms.max(age.as_secs_f64() * 1e3);
            }
            ActionSource::Fallback(_) => fallback_steps += 1,
        }
        if let Some(l) = controller.metrics().last_plan_latency {
            latency.push(l.as_secs_f64() * 1e3);
        }
        // Physics advances in real time, and the controller observes at
        // the physics rate: its planner re-plans from the newest state.
        let mut substep = 0u32;
        let mut observe_err = None;
        let mut sensor = |o: &[Real]| {
            substep += 1;
            pacer.wait_until(due + pdt * substep);
            if let Err(e) = controller.observe(o, Instant::now()) {
                observe_err.get_or_insert(e);
            }
        };
        let out = env.step_observed(&action, &mut obs, Some(&mut sensor))?;
        if let Some(e) = observe_err {
            return Err(e.into());
        }
        if out.success || out.truncated {
            break;
        }
    }
    let m = controller.metrics();
    stats.wall_seconds = start.elapsed().as_secs_f64();
    stats.plans = m.plans_published;
    stats.replan_hz = m.plans_published as Real / stats.wall_seconds.max(1e-9);
    stats.fallback_steps = m.fallback_reads;
    // The episode's account, counted as the batch runner counts it.
    let Some(mut result) = env.result() else {
        return Err(SimError::Scene {
            scene: env.world().name().into(),
            message: "no episode after reset".into(),
        });
    };
    result.fallback_steps = fallback_steps;
    result.plan_latency_ms = latency;
    Ok((result, stats))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::ModelChoice;

    #[test]
    fn a_real_time_episode_acts_on_plans_made_meanwhile() {
        let mut scenario = Scenario::load("navigate").unwrap();
        scenario.model = ModelChoice::Analytic;
        scenario.planner.samples = 64;
        scenario.planner.iterations = 1;
        scenario.episode.max_time = 1.0;
        let runs = run_realtime(&scenario, 1, 3, &ControllerConfig::default(), &|_, _| {}).unwrap();
        let (r, s) = &runs[0];
        assert_eq!(r.control_steps, 10, "1 s of 0.1 s periods");
        assert!(s.wall_seconds >= 0.99, "paced by the wall clock: {s:?}");
        assert!(
            s.plans > r.control_steps as u64,
            "re-plans between control steps: {s:?}"
        );
        assert_eq!(s.plan_steps + r.fallback_steps, r.control_steps);
        assert!(s.plan_steps >= 8, "{s:?}");
        assert!(r.task_cost > 0.0 && r.worst_margin.is_finite());
        let bad = ControllerConfig {
            max_plan_age_ms: -1.0,
            ..Default::default()
        };
        assert!(run_realtime(&scenario, 1, 3, &bad, &|_, _| {}).is_err());
    }
}
