//! The closed loop: observe → plan → act → step physics, with a ground-truth
//! validator checking every guardrail at every physics step.
//!
//! [`Episode`] is the loop's one set of rules: the episode's objective (the
//! scenario's plus the scene's guardrails), its validator, its physics steps
//! per control period, its planner's seed and goals, and the account of
//! every control period. [`run_episode`] (a planner closing the loop on
//! its own), [`Scene`](crate::scene::Scene) (the caller choosing the actions, also
//! in real time) and data collection all drive it.

mod ablation;
mod goals;
mod observe;
mod result;
mod run;
mod validator;

pub use goals::set_goals;
pub use observe::Observer;
pub use result::{EpisodeResult, Summary, fallback_reason, quantile};
pub(crate) use run::run_indexed;
pub use run::{EpisodeObserver, NoObserver, episode_seed, run_batch, run_episode, run_observed};
pub use validator::Validator;

use crate::SimError;
use crate::perturb::{Actuation, Draw};
use crate::scenario::{Ablation, GoalSource, ObservationMode, Scenario};
use crate::scene::{EpisodeSetup, World, steps_per_control};
use telic::{ModelSpec, ObjectiveSpec, Planner, PlannerConfig, Real, WorldModel};

/// One episode of a scenario in a scene: set up by [`Episode::start`],
/// advanced one control period at a time by [`Episode::step`] with
/// whatever actions the caller chose, summed up by [`Episode::result`].
///
/// The world is borrowed at each call rather than owned, so that its owner
/// ([`Scene`](crate::scene::Scene), a batch worker) keeps it between episodes.
#[derive(Debug)]
pub struct Episode {
    seed: u64,
    setup: EpisodeSetup,
    objective: ObjectiveSpec,
    validator: Validator,
    /// Writes the planner's observations in the scenario's observation mode.
    observer: Observer,
    /// What the planner is given in a pixel mode instead of `objective` and
    /// `setup` (`None` in state mode): the scenario's objective with the
    /// scene's pixel guardrails, the targets, and the goal as an image.
    seeing: Option<(ObjectiveSpec, EpisodeSetup)>,
    /// The scene's name, for errors.
    scene: String,
    /// Physics steps per control period.
    substeps: usize,
    physics_dt: Real,
    max_time: Real,
    /// The action of the last control period (the task cost's action rate).
    u_prev: Option<Vec<Real>>,
    tally: Tally,
    task_cost: Real,
    control_steps: usize,
    time_to_goal: Option<Real>,
    /// What the planner is not told (`[episode] ablate`).
    ablate: Option<Ablation>,
    /// Where the planner's goals come from.
    goal: GoalSource,
    /// The perturbed world's actuators (`None`: the nominal world).
    actuation: Option<Actuation>,
    /// What the perturbation drew (`None`: the nominal world).
    perturbation: Option<Draw>,
    /// Why the physics failed, when it did: the episode ended there.
    failure: Option<String>,
}

/// What one control period ([`Episode::step`]) did.
#[derive(Clone, Debug, PartialEq)]
pub struct StepOutcome {
    /// The executed task cost of this control period: the scenario's cost
    /// terms on the true state reached and the action applied. The reward of
    /// a gymnasium environment is its negative.
    pub cost: Real,
    /// The task is achieved (the episode ends).
    pub success: bool,
    /// The time limit ended the episode without success.
    pub truncated: bool,
    /// Some guardrail was violated by the true state at some physics step of
    /// this control period.
    pub violated: bool,
    /// The smallest true guardrail margin over this period's physics steps
    /// (`+∞` without guardrails).
    pub worst_margin: Real,
    /// The guardrail it belongs to (an index into the validator's names).
    pub worst_guardrail: Option<usize>,
    /// Physics steps of this period at which some guardrail was violated.
    pub violation_steps: usize,
    /// The physics diverged in this period (a true state that is not a
    /// number): the episode ended, `truncated` is set, and the result says
    /// why ([`EpisodeResult::failure`]).
    pub diverged: bool,
}

impl Episode {
    /// Resets `world` for the episode of `seed` and sets the episode up: the
    /// scenario's objective with the scene's guardrails of this episode, the
    /// ground-truth validator with the scene's targets, the observer of the
    /// scenario's observation mode, and the physics steps per control
    /// period of `control.dt`. The start state is checked and counted too:
    /// a scene must not start in violation.
    ///
    /// In a pixel observation mode the planner sees only what the camera
    /// and the robot's own sensors give: its objective takes the scene's
    /// [`EpisodeSetup::pixel_guardrails`] (bounds on readouts a model
    /// decodes from images) instead of the geometric guardrails, and the
    /// goal observation of a latent term is the image of the goal
    /// ([`World::render_goal`]) followed by the proprio entries of the
    /// scene's goal observation when it gives one, else of the start state
    /// ([`Observer::goal`]). The validator judges the geometric guardrails
    /// on the true state in every mode.
    ///
    /// `control` names the robot's actions and gives the control period: the
    /// planning model's spec for the batch runner, the scene's analytic
    /// model's for an [`Scene`](crate::scene::Scene) and for data collection.
    pub fn start(
        scenario: &Scenario,
        world: &mut dyn World,
        seed: u64,
        control: &ModelSpec,
    ) -> Result<Self, SimError> {
        let setup = world.reset(seed)?;
        // A perturbed world is drawn from the episode's seed after its
        // reset, before anything is observed or checked.
        let ranges = scenario.perturb.ranges();
        let perturbed = (!ranges.is_none()).then(|| {
            crate::perturb::start(ranges, seed, control.action_dim(), world.physics_mut())
        });
        let mut objective = scenario.objective.clone();
        objective
            .guardrails
            .extend(setup.guardrails.iter().cloned());
        let mut validator = Validator::new(&objective, world.truth_readouts(), &control.actions)?;
        for (term, target) in &setup.targets {
            validator.set_target(term, target)?;
        }
        let physics_dt = world.physics_dt();
        let substeps = control_substeps(scenario, control.dt, physics_dt)?;
        let mut observer = Observer::new(&scenario.observation, world)?;
        let (perturbation, actuation) = match perturbed {
            Some((draw, actuation, sensing)) => {
                observer.disturb(sensing);
                (Some(draw), Some(actuation))
            }
            None => (None, None),
        };
        let seeing = if scenario.observation.mode == ObservationMode::State {
            None
        } else {
            let mut objective = scenario.objective.clone();
            objective
                .guardrails
                .extend(setup.pixel_guardrails.iter().cloned());
            // Only a latent term, or goals taken from the observation, read
            // the goal image: a scene that cannot draw its goal runs in the
            // pixel modes without one.
            let latent = scenario
                .objective
                .terms
                .iter()
                .any(|t| matches!(t.residual, telic::objective::Residual::Latent { .. }));
            let goal = if latent || scenario.episode.goal == GoalSource::Observation {
                observer.goal(world, setup.goal_observation.as_deref())?
            } else {
                None
            };
            let setup = EpisodeSetup {
                targets: setup.targets.clone(),
                guardrails: setup.pixel_guardrails.clone(),
                goal_observation: goal,
                pixel_guardrails: Vec::new(),
            };
            Some((objective, setup))
        };
        let mut tally = Tally::new(validator.names().len());
        validator.check(world);
        tally.add(validator.margins());
        Ok(Self {
            seed,
            setup,
            objective,
            validator,
            observer,
            seeing,
            scene: world.name().to_string(),
            substeps,
            physics_dt,
            max_time: scenario.episode.max_time,
            u_prev: None,
            tally,
            task_cost: 0.0,
            control_steps: 0,
            time_to_goal: None,
            ablate: scenario.episode.ablate,
            goal: scenario.episode.goal,
            actuation,
            perturbation,
            failure: None,
        })
    }

    /// A planner for this episode: the planner's objective
    /// ([`Episode::planner_objective`]) compiled against `model`, `config`
    /// seeded from the episode's seed (`telic run`'s seeding), and the
    /// episode's targets and goal observation set. A model that does not
    /// read the observations of the episode's mode is an error
    /// ([`Observer::check_model`]). An ablation (`[episode] ablate`) leaves
    /// the guardrails, or the model's error margins, out of the planner's
    /// objective.
    pub fn planner(
        &self,
        model: Box<dyn WorldModel>,
        mut config: PlannerConfig,
    ) -> Result<Box<dyn Planner>, SimError> {
        self.observer.check_model(model.spec())?;
        let (objective, setup) = match &self.seeing {
            Some((objective, setup)) => (objective, setup),
            None => (&self.objective, &self.setup),
        };
        let mut objective = objective.clone();
        let model = match self.ablate {
            None => model,
            Some(Ablation::Margins) => Box::new(ablation::WithoutErrorMargins(model)),
            Some(Ablation::Guardrails) => {
                objective.guardrails.clear();
                model
            }
        };
        let objective = objective.compile(model.spec())?;
        config.seed = self.seed ^ config.seed.rotate_left(17);
        let mut planner = telic::build(model, objective, config)?;
        set_goals(planner.as_mut(), setup, self.goal, &self.scene)?;
        Ok(planner)
    }

    /// Writes the planner's observation of `world`'s current state into
    /// `obs` ([`Episode::obs_dim`] values), in the episode's observation mode.
    pub fn observe(&mut self, world: &dyn World, obs: &mut [Real]) -> Result<(), SimError> {
        self.observer.observe(world, obs)
    }

    /// Disturbs a data set's row as the episode's sensors would (in a
    /// perturbed world, `[perturb]`; else nothing): the noise on the
    /// `state` observation, the lighting and the noise on the camera's
    /// `image`. Rows are recorded fresh (no stale ones): the collector
    /// records what was measured, whatever the planner was handed.
    pub fn sense_row(&mut self, image: &mut [u8], state: &mut [Real]) {
        self.observer.sense_row(image, state);
    }

    /// Values of the planner's observation in this episode's mode.
    #[must_use]
    pub fn obs_dim(&self) -> usize {
        self.observer.obs_dim()
    }

    /// The observer: the mode, the image shape, the vector entries, and the
    /// image last rendered.
    #[must_use]
    pub fn observer(&self) -> &Observer {
        &self.observer
    }

    /// Applies `action` as given (a caller that bounds actions clamps them
    /// first) for one control period: each physics step is checked by the
    /// validator, shown to `on_physics` and counted; then the period's task
    /// cost is added. Stepping on after the time is up or the task is
    /// achieved is allowed (data collection runs fixed-length episodes).
    pub fn step(
        &mut self,
        world: &mut dyn World,
        action: &[Real],
        on_physics: &mut dyn FnMut(&dyn World, &Validator),
    ) -> StepOutcome {
        self.advance(world, action, &mut |world, validator, _| {
            on_physics(world, validator);
        })
    }

    /// [`Episode::step`], writing the planner's observation into `obs`
    /// after every physics step and handing it to `sensor` (a sensor at the
    /// physics rate, feeding a controller in real time, say). Ends with
    /// `obs` the observation of the state reached.
    pub fn step_sensing(
        &mut self,
        world: &mut dyn World,
        action: &[Real],
        obs: &mut [Real],
        sensor: &mut dyn FnMut(&[Real]),
    ) -> Result<StepOutcome, SimError> {
        let mut failed = None;
        let out = self.advance(world, action, &mut |world, _, observer| {
            if failed.is_none() {
                match observer.observe(world, obs) {
                    Ok(()) => sensor(obs),
                    Err(e) => failed = Some(e),
                }
            }
        });
        match failed {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }

    /// One control period of [`Episode::step`], calling `on_physics` after
    /// each physics step with the validator and the observer.
    fn advance(
        &mut self,
        world: &mut dyn World,
        action: &[Real],
        on_physics: &mut dyn FnMut(&dyn World, &Validator, &mut Observer),
    ) -> StepOutcome {
        match self.actuation.as_mut() {
            Some(actuation) => world.apply(actuation.act(action)),
            None => world.apply(action),
        }
        let mut period = Tally::period();
        for _ in 0..self.substeps {
            world.step();
            self.validator.check(world);
            if self.failure.is_none()
                && let Some(why) = diverged(world, &self.validator)
            {
                // Nothing after this is physics: the episode ends here.
                self.failure = Some(why);
                break;
            }
            on_physics(world, &self.validator, &mut self.observer);
            self.tally.add(self.validator.margins());
            period.add(self.validator.margins());
        }
        self.control_steps += 1;
        let prev = self.u_prev.as_deref().unwrap_or(action);
        let cost = self.validator.task_cost(action, prev);
        self.task_cost += cost;
        match self.u_prev.as_mut() {
            Some(u) => {
                u.clear();
                u.extend_from_slice(action);
            }
            None => self.u_prev = Some(action.to_vec()),
        }
        let success = world.success();
        if success && self.time_to_goal.is_none() {
            self.time_to_goal = Some(world.time());
        }
        let diverged = self.failure.is_some();
        StepOutcome {
            cost,
            success: success && !diverged,
            truncated: diverged || (!success && self.time_up(world)),
            violated: period.violation_steps > 0,
            worst_margin: period.worst_margin,
            worst_guardrail: period.worst_guardrail,
            violation_steps: period.violation_steps,
            diverged,
        }
    }

    /// The episode's time is up in `world`: less than half a physics step
    /// is left before the scenario's time limit.
    #[must_use]
    pub fn time_up(&self, world: &dyn World) -> bool {
        !(world.time() + 0.5 * self.physics_dt < self.max_time)
    }

    /// What the episode did so far, ending where `world` is now: the
    /// control steps, task cost, success and true guardrail account. The
    /// planner's part (latencies, fallbacks, warnings) is its driver's to add.
    #[must_use]
    pub fn result(&self, world: &dyn World) -> EpisodeResult {
        let mut result = EpisodeResult::start(self.seed);
        result.success = self.time_to_goal.is_some();
        result.time_to_goal = self.time_to_goal;
        result.task_cost = self.task_cost;
        result.control_steps = self.control_steps;
        result.violation_steps = self.tally.violation_steps;
        result.worst_margin = self.tally.worst_margin;
        let names = self.validator.names();
        if let Some(name) = self.tally.worst_guardrail.and_then(|i| names.get(i)) {
            result.worst_guardrail = name.clone();
        }
        result.finish(world, names, &self.tally.per_guardrail);
        result.perturbation.clone_from(&self.perturbation);
        result.failure.clone_from(&self.failure);
        if result.failure.is_some() {
            result.success = false;
        }
        result
    }

    /// The episode's seed.
    #[must_use]
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The episode's objective as specified: the scenario's, plus this
    /// episode's guardrails. The validator judges these in every mode.
    #[must_use]
    pub fn objective(&self) -> &ObjectiveSpec {
        &self.objective
    }

    /// The objective the planner is given: [`Episode::objective`] in state
    /// mode; in a pixel mode the scenario's plus this episode's
    /// [`EpisodeSetup::pixel_guardrails`].
    #[must_use]
    pub fn planner_objective(&self) -> &ObjectiveSpec {
        self.seeing.as_ref().map_or(&self.objective, |(o, _)| o)
    }

    /// The episode's targets and guardrails as the scene drew them.
    #[must_use]
    pub fn setup(&self) -> &EpisodeSetup {
        &self.setup
    }

    /// The validator: guardrail names, true margins and true readouts of the
    /// state last checked.
    #[must_use]
    pub fn validator(&self) -> &Validator {
        &self.validator
    }
}

/// Why the physics of `world` has diverged, if it has: a true readout that
/// is not a number (a solver blow-up, a body flung to infinity).
fn diverged(world: &dyn World, validator: &Validator) -> Option<String> {
    let truth = validator.truth();
    let i = truth.iter().position(|y| !y.is_finite())?;
    let name = world.truth_readouts().get(i).map_or("?", String::as_str);
    Some(format!(
        "the physics diverged at {:.3} s: the true `{name}` is {}",
        world.time(),
        truth[i]
    ))
}

/// Physics steps per control period of `control_dt`: the scenario's
/// `physics_steps_per_control`, or the nearest whole number of physics steps
/// of `physics_dt`; an error unless that many steps make the period.
pub fn control_substeps(
    scenario: &Scenario,
    control_dt: Real,
    physics_dt: Real,
) -> Result<usize, SimError> {
    let k = match scenario.episode.physics_steps_per_control {
        0 => steps_per_control(control_dt, physics_dt),
        k => k,
    };
    if k == 0 || ((k as Real) * physics_dt - control_dt).abs() > 1e-6 * control_dt.max(1.0) {
        return Err(SimError::Scene {
            scene: scenario.scene_name().to_string(),
            message: format!(
                "model time step {} s is not a whole number of physics steps of {} s",
                telic::limits::num(control_dt),
                telic::limits::num(physics_dt)
            ),
        });
    }
    Ok(k)
}

/// True guardrail margins of physics steps, tallied: the smallest and its
/// guardrail, the steps with some violation, and each guardrail's.
#[derive(Clone, Debug)]
struct Tally {
    worst_margin: Real,
    worst_guardrail: Option<usize>,
    violation_steps: usize,
    /// Violated steps per guardrail (empty: not counted).
    per_guardrail: Vec<usize>,
}

impl Tally {
    /// A tally of `guardrails` guardrails, each one's violations counted.
    fn new(guardrails: usize) -> Self {
        Self {
            per_guardrail: vec![0; guardrails],
            ..Self::period()
        }
    }

    /// A control period's tally: no per-guardrail counts (allocates nothing).
    fn period() -> Self {
        Self {
            worst_margin: Real::INFINITY,
            worst_guardrail: None,
            violation_steps: 0,
            per_guardrail: Vec::new(),
        }
    }

    /// Counts one physics step's `margins` (negative: violated).
    fn add(&mut self, margins: &[Real]) {
        let mut any = false;
        for (i, m) in margins.iter().enumerate() {
            if *m < self.worst_margin {
                self.worst_margin = *m;
                self.worst_guardrail = Some(i);
            }
            if *m < 0.0 {
                any = true;
                if let Some(c) = self.per_guardrail.get_mut(i) {
                    *c += 1;
                }
            }
        }
        if any {
            self.violation_steps += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guardrails_ablation_plans_without_guardrails() {
        let mut scenario = Scenario::load("navigate").unwrap();
        let mut world = scenario.scene.build(&scenario.base_dir).unwrap();
        let control = world.analytic_model().unwrap().spec().clone();
        let mut guardrails = |scenario: &Scenario| {
            let episode = Episode::start(scenario, world.as_mut(), 5, &control).unwrap();
            let model = world.analytic_model().unwrap();
            let planner = episode.planner(model, scenario.planner.clone()).unwrap();
            // The validator judges them all whatever the planner is told.
            assert!(episode.validator().names().len() >= 2);
            planner.objective().guardrail_names().count()
        };
        let all = guardrails(&scenario);
        assert!(all >= 2, "{all}");
        scenario.episode.ablate = Some(Ablation::Margins);
        assert_eq!(guardrails(&scenario), all);
        scenario.episode.ablate = Some(Ablation::Guardrails);
        assert_eq!(guardrails(&scenario), 0);
    }

    #[test]
    fn ablate_is_a_scenario_setting() {
        let text = "[scene]\nkind = \"navigate\"\n[episode]\nablate = \"margins\"\n";
        let dir = std::path::Path::new(".");
        let s = Scenario::from_toml(text, "test", dir).unwrap();
        assert_eq!(s.episode.ablate, Some(Ablation::Margins));
        let e = Scenario::from_toml(&text.replace("margins", "everything"), "test", dir)
            .unwrap_err()
            .to_string();
        assert!(e.contains("everything"), "{e}");
        assert_eq!("guardrails".parse(), Ok(Ablation::Guardrails));
        assert!("all".parse::<Ablation>().unwrap_err().contains("margins"));
    }

    #[test]
    fn goals_from_the_observation_are_decoded_by_the_model() {
        // The analytic push model reads the box's pose off its state, and
        // the scene's goal observation has the box at its goal: the decoded
        // targets are the scene's.
        let mut scenario = Scenario::load("push").unwrap();
        let mut world = scenario.scene.build(&scenario.base_dir).unwrap();
        let control = world.analytic_model().unwrap().spec().clone();
        let mut targets = |scenario: &Scenario| {
            let episode = Episode::start(scenario, world.as_mut(), 3, &control).unwrap();
            let model = world.analytic_model().unwrap();
            let planner = episode.planner(model, scenario.planner.clone()).unwrap();
            let o = planner.objective();
            [
                o.target("goal_pos").unwrap().to_vec(),
                o.target("goal_yaw").unwrap().to_vec(),
            ]
        };
        let truth = targets(&scenario);
        scenario.episode.goal = GoalSource::Observation;
        let decoded = targets(&scenario);
        for (t, d) in truth.iter().flatten().zip(decoded.iter().flatten()) {
            assert!((t - d).abs() < 1e-12, "{truth:?} vs {decoded:?}");
        }
        assert_ne!(truth[0], [0.0, 0.0]);

        // navigate gives no goal observation: a clear error.
        let mut scenario = Scenario::load("navigate").unwrap();
        scenario.episode.goal = GoalSource::Observation;
        let mut world = scenario.scene.build(&scenario.base_dir).unwrap();
        let control = world.analytic_model().unwrap().spec().clone();
        let episode = Episode::start(&scenario, world.as_mut(), 3, &control).unwrap();
        let model = world.analytic_model().unwrap();
        let e = episode
            .planner(model, scenario.planner.clone())
            .err()
            .expect("no goal observation")
            .to_string();
        assert!(
            e.contains("navigate") && e.contains("goal observation"),
            "{e}"
        );
    }

    #[test]
    fn goal_is_a_scenario_setting() {
        let text = "[scene]\nkind = \"push\"\n[episode]\ngoal = \"observation\"\n";
        let dir = std::path::Path::new(".");
        let s = Scenario::from_toml(text, "test", dir).unwrap();
        assert_eq!(s.episode.goal, GoalSource::Observation);
        let e = Scenario::from_toml(&text.replace("observation", "image"), "test", dir)
            .unwrap_err()
            .to_string();
        assert!(e.contains("image"), "{e}");
        assert_eq!("targets".parse(), Ok(GoalSource::Targets));
        assert!(
            "x".parse::<GoalSource>()
                .unwrap_err()
                .contains("observation")
        );
    }

    #[test]
    fn an_episode_steps_on_past_its_time_limit() {
        let mut scenario = Scenario::load("navigate").unwrap();
        scenario.episode.max_time = 0.2;
        let mut world = scenario.scene.build(&scenario.base_dir).unwrap();
        let control = world.analytic_model().unwrap().spec().clone();
        let mut episode = Episode::start(&scenario, world.as_mut(), 5, &control).unwrap();
        let still = vec![0.0; control.action_dim()];
        let mut physics_steps = 0;
        let mut steps = Vec::new();
        for _ in 0..4 {
            let out = episode.step(world.as_mut(), &still, &mut |_, _| physics_steps += 1);
            steps.push(out.truncated);
        }
        assert_eq!(
            steps,
            [false, true, true, true],
            "0.1 s periods, 0.2 s limit"
        );
        assert!(episode.time_up(world.as_ref()));
        let k = control_substeps(&scenario, control.dt, world.physics_dt()).unwrap();
        assert_eq!(physics_steps, 4 * k);
        let r = episode.result(world.as_ref());
        assert_eq!(r.control_steps, 4);
        assert_eq!(r.seed, 5);
        assert!(r.worst_margin.is_finite(), "{r:?}");
    }

    #[test]
    fn diverging_physics_ends_the_episode_and_says_why() {
        let scenario = Scenario::load("push").unwrap();
        let mut world = scenario.scene.build(&scenario.base_dir).unwrap();
        let control = world.analytic_model().unwrap().spec().clone();
        let mut episode = Episode::start(&scenario, world.as_mut(), 3, &control).unwrap();
        let still = vec![0.0; control.action_dim()];
        let out = episode.step(world.as_mut(), &still, &mut |_, _| {});
        assert!(!out.diverged && !out.truncated);
        // A solver blow-up: every dynamic body at a place that is not a number.
        let physics = world.physics_mut().unwrap();
        for (_, body) in physics.bodies.iter_mut() {
            if body.is_dynamic() {
                body.set_translation(rapier3d::prelude::Vector::splat(f32::NAN), true);
            }
        }
        let mut seen = 0;
        let out = episode.step(world.as_mut(), &still, &mut |_, _| seen += 1);
        assert!(out.diverged && out.truncated && !out.success, "{out:?}");
        assert_eq!(seen, 0, "no physics step is shown after the divergence");
        let r = episode.result(world.as_ref());
        let why = r.failure.expect("the result says why");
        assert!(why.contains("diverged") && why.contains("NaN"), "{why}");
        assert!(!r.success);
    }

    #[test]
    fn a_control_period_of_no_whole_number_of_physics_steps_is_an_error() {
        let scenario = Scenario::load("navigate").unwrap();
        let err = control_substeps(&scenario, 0.105, 0.01).unwrap_err();
        assert!(err.to_string().contains("not a whole number"), "{err}");
        assert_eq!(control_substeps(&scenario, 0.1, 0.01).unwrap(), 10);
        assert!(control_substeps(&scenario, 0.1, Real::NAN).is_err());
    }

    #[test]
    fn in_a_pixel_mode_the_planner_gets_the_pixel_guardrails_and_the_validator_the_true_ones() {
        let mut scenario = Scenario::load("push").unwrap();
        scenario.observation.mode = ObservationMode::PixelsProprio;
        let mut world = scenario.scene.build(&scenario.base_dir).unwrap();
        let control = world.analytic_model().unwrap().spec().clone();
        let episode = Episode::start(&scenario, world.as_mut(), 4, &control).unwrap();
        let setup = episode.setup().clone();
        let names = |g: &[telic::objective::GuardrailSpec]| -> Vec<String> {
            g.iter().map(|g| g.name().to_string()).collect()
        };
        let mut planner = scenario.objective.guardrails.clone();
        planner.extend(setup.pixel_guardrails.iter().cloned());
        assert_eq!(
            names(&episode.planner_objective().guardrails),
            names(&planner)
        );
        let mut truth = scenario.objective.guardrails.clone();
        truth.extend(setup.guardrails.iter().cloned());
        assert_eq!(names(&episode.objective().guardrails), names(&truth));
        assert!(
            episode.validator().names().iter().any(|n| n == "keep_out"),
            "{:?}",
            episode.validator().names()
        );
        assert_eq!(episode.obs_dim(), 3 * 64 * 64 + world.proprio_names().len());
        let model = world.analytic_model().unwrap();
        let Err(err) = episode.planner(model, scenario.planner.clone()) else {
            panic!("an analytic model plans in a pixel mode");
        };
        assert!(
            err.to_string()
                .contains("need a world model that reads images"),
            "{err}"
        );
    }
}
