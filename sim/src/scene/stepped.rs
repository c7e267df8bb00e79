//! A scene stepped one control period at a time by the caller: the
//! reinforcement-learning view of an episode (`reset` → `step(action)` …),
//! as gymnasium environments and robot-learning code expect it.
//!
//! [`Scene`] drives the [`Episode`] that
//! [`run_episode`](crate::episode::run_episode) drives, with the caller
//! choosing the actions: the same physics steps per control period, the same
//! ground-truth validator and the same executed task cost, so that a planner
//! driven through an [`Scene`] with [`Scene::planner`] reproduces a `telic run`
//! episode of the same seed exactly. What it adds are the checks of a caller's
//! input: buffer and action sizes, finite actions clamped into the bounds, and
//! no step before a reset or after the episode ended.
//!
//! Observations are the scenario's observation mode's
//! ([`crate::episode::Observer`]): one flat buffer of [`Scene::obs_dim`]
//! values, the image first (pixel modes, [`Scene::image_spec`]) and then
//! the vector entries ([`Scene::vector_names`]). The image of the last
//! observation is also at hand as bytes ([`Scene::image`]) and the vector
//! entries as a slice of the buffer ([`Scene::vector`]).

use crate::SimError;
use crate::episode::{Episode, EpisodeResult, Observer, Validator, control_substeps};
use crate::scenario::{ObservationMode, Scenario};
use crate::scene::{EpisodeSetup, World};
use telic::model::ImageSpec;
use telic::{ModelSpec, ObjectiveSpec, PlanError, Planner, PlannerConfig, Real, WorldModel};

pub use crate::episode::StepOutcome;

/// A callback given the observation after each physics step ([`Scene::step_observed`]).
pub type Sensor<'a> = &'a mut dyn FnMut(&[Real]);

/// A scenario's scene, stepped by the caller. Build with [`Scene::new`], then
/// [`Scene::reset`] before the first [`Scene::step`].
pub struct Scene {
    scenario: Scenario,
    world: Box<dyn World>,
    /// The scene's analytic model's spec: observation and action layout,
    /// action bounds and control period.
    spec: ModelSpec,
    /// The layout of the observation mode, known before the first reset
    /// (each episode observes through its own [`Observer`]).
    layout: Observer,
    /// Physics steps per control period.
    substeps: usize,
    episode: Option<Episode>,
    /// The running episode has ended (success or time limit).
    done: bool,
}

impl std::fmt::Debug for Scene {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scene")
            .field("scene", &self.world.name())
            .field("substeps", &self.substeps)
            .field("seed", &self.episode.as_ref().map(Episode::seed))
            .finish_non_exhaustive()
    }
}

impl Scene {
    /// Builds the scene of `scenario`. The control period is the time step of
    /// the scene's analytic model (the one its shipped bundles share).
    pub fn new(scenario: Scenario) -> Result<Self, SimError> {
        let world = scenario.scene.build(&scenario.base_dir)?;
        let spec = world.analytic_model()?.spec().clone();
        let substeps = control_substeps(&scenario, spec.dt, world.physics_dt())?;
        let layout = Observer::new(&scenario.observation, world.as_ref())?;
        Ok(Self {
            scenario,
            world,
            spec,
            layout,
            substeps,
            episode: None,
            done: false,
        })
    }

    /// The scenario the environment runs.
    #[must_use]
    pub fn scenario(&self) -> &Scenario {
        &self.scenario
    }

    /// The simulated world.
    #[must_use]
    pub fn world(&self) -> &dyn World {
        self.world.as_ref()
    }

    /// The scene's analytic model's spec: action names and bounds, the
    /// control period (`dt`), and the names of the state observation (the
    /// observation in state mode; in a pixel mode see [`Scene::obs_dim`]).
    #[must_use]
    pub fn spec(&self) -> &ModelSpec {
        &self.spec
    }

    /// The observation mode of the scenario.
    #[must_use]
    pub fn observation_mode(&self) -> ObservationMode {
        self.layout.mode()
    }

    /// Values of one observation: the image's `C·H·W` numbers (pixel modes)
    /// and then the vector entries.
    #[must_use]
    pub fn obs_dim(&self) -> usize {
        self.layout.obs_dim()
    }

    /// The shape of the observation's image (3 channels, RGB, C×H×W), `None`
    /// in state mode.
    #[must_use]
    pub fn image_spec(&self) -> Option<ImageSpec> {
        self.layout.image_spec()
    }

    /// Names of the observation's vector entries after the image: the state
    /// in state mode, the robot's proprio entries in `pixels+proprio`, none
    /// in `pixels`.
    #[must_use]
    pub fn vector_names(&self) -> &[String] {
        self.layout.vector_names()
    }

    /// The image of the last observation written, C×H×W RGB bytes (what
    /// the observation's first `C·H·W` values hold as numbers); empty in
    /// state mode and before the first reset.
    #[must_use]
    pub fn image(&self) -> &[u8] {
        self.episode.as_ref().map_or(&[], |e| e.observer().image())
    }

    /// The vector entries of `obs`, an observation of this scene: the
    /// values after the image ([`Scene::vector_names`]).
    #[must_use]
    pub fn vector<'a>(&self, obs: &'a [Real]) -> &'a [Real] {
        let image = obs.len().saturating_sub(self.layout.vector_names().len());
        obs.get(image..).unwrap_or_default()
    }

    /// Starts an episode ([`Episode::start`]); everything random comes from
    /// `seed`. Writes the first observation into `obs` ([`Scene::obs_dim`]
    /// values).
    pub fn reset(&mut self, seed: u64, obs: &mut [Real]) -> Result<(), SimError> {
        self.check_obs_len(obs)?;
        self.episode = None;
        let mut episode = Episode::start(&self.scenario, self.world.as_mut(), seed, &self.spec)?;
        episode.observe(self.world.as_ref(), obs)?;
        self.episode = Some(episode);
        self.done = false;
        Ok(())
    }

    /// Applies `action` (clamped into the bounds) for one control period and
    /// writes the observation reached into `obs`.
    ///
    /// An action of the wrong size or with a non-finite value is an error and
    /// changes nothing; so is stepping before [`Scene::reset`] or after the
    /// episode ended.
    pub fn step(&mut self, action: &[Real], obs: &mut [Real]) -> Result<StepOutcome, SimError> {
        self.step_observed(action, obs, None)
    }

    /// [`Scene::step`], calling `each_physics_step` after every physics step
    /// of the period with the observation of that moment (a sensor running
    /// at the physics rate, e.g. to feed a controller in real time).
    pub fn step_observed(
        &mut self,
        action: &[Real],
        obs: &mut [Real],
        each_physics_step: Option<Sensor<'_>>,
    ) -> Result<StepOutcome, SimError> {
        self.check_obs_len(obs)?;
        let scene_err = |message: String| SimError::Scene {
            scene: self.scenario.scene_name().into(),
            message,
        };
        let a = self.spec.action_dim();
        if action.len() != a {
            return Err(scene_err(format!(
                "action has {} values, the scene takes {a} ({})",
                action.len(),
                self.spec.actions.join(", ")
            )));
        }
        if let Some(i) = action.iter().position(|x| !x.is_finite()) {
            return Err(scene_err(format!(
                "action contains a non-finite value ({}) at index {i}",
                action[i]
            )));
        }
        let Some(ep) = self.episode.as_mut() else {
            return Err(scene_err("step before reset".into()));
        };
        if self.done {
            return Err(scene_err(
                "the episode has ended; call reset to start another".into(),
            ));
        }
        let mut u = action.to_vec();
        self.spec.clamp_actions(&mut u);
        let world = self.world.as_mut();
        let out = match each_physics_step {
            Some(sensor) => ep.step_sensing(world, &u, obs, sensor),
            None => {
                let out = ep.step(world, &u, &mut |_, _| {});
                ep.observe(world, obs).map(|()| out)
            }
        };
        // A failed observation ends the episode: its state moved on.
        self.done = out.as_ref().is_ok_and(|o| o.success || o.truncated) || out.is_err();
        out
    }

    /// A planner for the running episode ([`Episode::planner`]): the
    /// scenario's objective with this episode's guardrails, targets and goal
    /// observation, over `model`, with `config` (default: the scenario's
    /// planner) seeded as `telic run` seeds it. Valid for this episode only:
    /// the next reset draws new targets and guardrails.
    pub fn planner(
        &self,
        model: Box<dyn WorldModel>,
        config: Option<PlannerConfig>,
    ) -> Result<Box<dyn Planner>, SimError> {
        let Some(ep) = self.episode.as_ref() else {
            return Err(SimError::Scene {
                scene: self.scenario.scene_name().into(),
                message: "a planner is made for an episode: call reset first".into(),
            });
        };
        let config = config.unwrap_or_else(|| self.scenario.planner.clone());
        config.validate().map_err(PlanError::Config)?;
        ep.planner(model, config)
    }

    /// The running episode's objective as specified: the scenario's, plus
    /// this episode's guardrails.
    #[must_use]
    pub fn objective(&self) -> Option<&ObjectiveSpec> {
        self.episode.as_ref().map(Episode::objective)
    }

    /// The objective the running episode's planner is given
    /// ([`Episode::planner_objective`]): [`Scene::objective`] in state mode,
    /// with the scene's pixel guardrails instead of its geometric ones in a
    /// pixel mode.
    #[must_use]
    pub fn planner_objective(&self) -> Option<&ObjectiveSpec> {
        self.episode.as_ref().map(Episode::planner_objective)
    }

    /// The running episode's targets and guardrails as the scene drew them.
    #[must_use]
    pub fn setup(&self) -> Option<&EpisodeSetup> {
        self.episode.as_ref().map(Episode::setup)
    }

    /// The validator of the running episode: guardrail names, true margins
    /// and true readouts of the current state.
    #[must_use]
    pub fn validator(&self) -> Option<&Validator> {
        self.episode.as_ref().map(Episode::validator)
    }

    /// What the running episode did so far ([`Episode::result`]): control
    /// steps, task cost, success and the true guardrail account, counted
    /// as the batch runner counts them.
    #[must_use]
    pub fn result(&self) -> Option<EpisodeResult> {
        let ep = self.episode.as_ref()?;
        Some(ep.result(self.world.as_ref()))
    }

    fn check_obs_len(&self, obs: &[Real]) -> Result<(), SimError> {
        let o = self.obs_dim();
        if obs.len() == o {
            return Ok(());
        }
        Err(SimError::Scene {
            scene: self.scenario.scene_name().into(),
            message: format!("observation buffer has {} values, expected {o}", obs.len()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::episode::{NoObserver, run_episode};

    /// Drives `scenario` through an [`Scene`] with its analytic model.
    fn env_episode(scenario: &Scenario, seed: u64) -> (Real, usize, bool) {
        let mut env = Scene::new(scenario.clone()).unwrap();
        let mut obs = vec![0.0; env.obs_dim()];
        env.reset(seed, &mut obs).unwrap();
        let model = env.world().analytic_model().unwrap();
        let mut planner = env.planner(model, None).unwrap();
        let (mut cost, mut steps) = (0.0, 0);
        loop {
            let action = planner.plan(&obs).unwrap().action.clone();
            let out = env.step(&action, &mut obs).unwrap();
            cost += out.cost;
            steps += 1;
            if out.success || out.truncated {
                return (cost, steps, out.success);
            }
        }
    }

    #[test]
    fn an_env_episode_is_the_runner_episode() {
        let mut scenario = Scenario::load("navigate").unwrap();
        scenario.model = crate::scenario::ModelChoice::Analytic;
        scenario.planner.samples = 64;
        scenario.episode.max_time = 3.0;
        let seed = 17;
        let mut scene = scenario.scene.build(&scenario.base_dir).unwrap();
        let model = scene.analytic_model().unwrap();
        let r = run_episode(&scenario, scene.as_mut(), model, seed, &mut NoObserver).unwrap();
        let (cost, steps, success) = env_episode(&scenario, seed);
        assert_eq!(steps, r.control_steps);
        assert_eq!(success, r.success);
        assert_eq!(
            cost.to_bits(),
            r.task_cost.to_bits(),
            "{cost} vs {}",
            r.task_cost
        );
    }

    #[test]
    fn bad_actions_and_out_of_order_calls_are_errors() {
        let mut scenario = Scenario::load("navigate").unwrap();
        scenario.episode.max_time = 0.2;
        let mut env = Scene::new(scenario).unwrap();
        let mut obs = vec![0.0; env.obs_dim()];
        let a = env.spec().action_dim();
        let err = env.step(&vec![0.0; a], &mut obs).unwrap_err();
        assert!(err.to_string().contains("before reset"), "{err}");
        env.reset(3, &mut obs).unwrap();
        let before = obs.clone();
        let err = env.step(&vec![0.0; a + 1], &mut obs).unwrap_err();
        assert!(err.to_string().contains("action has"), "{err}");
        let err = env.step(&vec![Real::NAN; a], &mut obs).unwrap_err();
        assert!(err.to_string().contains("non-finite"), "{err}");
        assert_eq!(obs, before, "a refused action must not move the scene");
        let mut short = vec![0.0; 1];
        assert!(env.reset(3, &mut short).is_err());
        loop {
            let out = env.step(&vec![0.0; a], &mut obs).unwrap();
            if out.truncated || out.success {
                break;
            }
        }
        let err = env.step(&vec![0.0; a], &mut obs).unwrap_err();
        assert!(err.to_string().contains("ended"), "{err}");
    }
}
