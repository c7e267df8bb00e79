//! Scenes: the three simulated tasks (`reach`, `navigate`, `push`).
//!
//! A [`World`] is a scene's rapier3d world with its robot and objects,
//! randomised per episode: the truth a world model predicts and the
//! validator checks. A [`Scene`] is a world stepped one control period at a
//! time by the caller, under the rules of an [`Episode`](crate::episode::Episode)
//! (Python's `telic.Scene`).

use crate::SimError;
use telic::limits::num;
use telic::objective::{GuardrailSpec, Shape};
use telic::{Real, WorldModel};

/// What a scene randomised for one episode: targets for named cost terms,
/// guardrails (keep-out boxes, obstacles) to add to the scenario's objective,
/// and the goal as an observation when the scene can give one.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EpisodeSetup {
    /// `(term name, target)` pairs set with `Objective::set_target` (readout
    /// and action terms; a latent term of that name takes the goal
    /// observation instead).
    pub targets: Vec<(String, Vec<Real>)>,
    /// Guardrails of this episode, added to those of the scenario.
    pub guardrails: Vec<GuardrailSpec>,
    /// The goal as an observation (`O` values, the layout of
    /// [`World::observe`]): what the robot would observe having achieved the
    /// task. The episode runner encodes it as the goal of every latent term
    /// (`Planner::set_goal_observation`). `None` when the task has no single
    /// goal observation; a latent term is then an error.
    pub goal_observation: Option<Vec<Real>>,
    /// What the planner gets instead of [`EpisodeSetup::guardrails`] in the
    /// pixel observation modes: limits on the truth readouts that measure
    /// the same hazards (e.g. `clearance ≥ min_clearance`), which a learned
    /// model decodes from images, never obstacle or keep-out coordinates.
    /// The validator still judges [`EpisodeSetup::guardrails`].
    pub pixel_guardrails: Vec<GuardrailSpec>,
}

/// A scene's rapier3d world: the robot and its objects.
///
/// Observations have the layout of the scene's analytic model
/// ([`World::analytic_model`]); ground-truth readouts have the names of
/// [`World::truth_readouts`], computed from the physics state alone.
pub trait World: Send {
    /// Scene name, e.g. `"reach"`.
    fn name(&self) -> &str;
    /// Rebuilds the world for an episode; everything random comes from `seed`.
    fn reset(&mut self, seed: u64) -> Result<EpisodeSetup, SimError>;
    /// Writes the current observation into `out` (`O` values).
    fn observe(&self, out: &mut [Real]);
    /// Names of the ground-truth readouts, a superset of what guardrails need.
    fn truth_readouts(&self) -> &[String];
    /// Writes the ground-truth readouts of the current physics state into `out`.
    fn truth(&self, out: &mut [Real]);
    /// Sets the action held until the next call (clamped by the caller).
    fn apply(&mut self, action: &[Real]);
    /// Advances physics by one step of [`World::physics_dt`].
    fn step(&mut self);
    /// Physics time step in seconds.
    fn physics_dt(&self) -> Real;
    /// The rapier world of the current episode, for a perturbation to
    /// scale its masses and frictions after a reset ([`crate::perturb`]);
    /// `None` when the scene has none (the default) or is not reset.
    fn physics_mut(&mut self) -> Option<&mut rapier3d::prelude::PhysicsWorld> {
        None
    }
    /// Simulated time since reset, in seconds.
    fn time(&self) -> Real;
    /// True when the task is achieved in the current state.
    fn success(&self) -> bool;
    /// How far the current state is from the task's goal, as named errors in
    /// the units of the success test (e.g. `[("distance", m), ("yaw", rad)]`);
    /// empty before the first reset.
    fn goal_error(&self) -> Vec<(&'static str, Real)>;
    /// The analytic world model of this scene's robot.
    fn analytic_model(&self) -> Result<Box<dyn WorldModel>, SimError>;
    /// The moving parts in their current poses (robot links, objects), as
    /// named shapes in world coordinates, for drawing. Appends to `out`.
    fn visuals(&self, _out: &mut Vec<(String, Shape)>) {}
    /// Fixed scenery (a table) and the current episode's goal, as named
    /// shapes in world coordinates, for drawing. Appends to `out`.
    fn scenery(&self, _out: &mut Vec<(String, Shape)>) {}
    /// What this scene's fixed camera sees ([`camera`]); `None` when the
    /// scene has no camera or is not reset.
    fn camera_view(&self) -> Option<camera::View> {
        None
    }
    /// The current episode's keep-out zones and obstacles, as shapes in
    /// world coordinates, for the camera. Appends to `out`.
    fn hazards(&self, _out: &mut Vec<Shape>) {}
    /// Renders the current state into `image` (C×H×W RGB of the camera's
    /// size) with `camera`, which holds the reused pixel buffer.
    fn render(&self, camera: &mut camera::Camera, image: &mut [u8]) -> Result<(), SimError> {
        camera.render(self, image)
    }
    /// Renders the current episode's goal configuration into `image` (as
    /// [`World::render`]): what the camera would see with the task
    /// achieved, for a goal image. A scene without one goal configuration
    /// returns an error saying so (the default).
    fn render_goal(&self, _camera: &mut camera::Camera, _image: &mut [u8]) -> Result<(), SimError> {
        Err(SimError::Scene {
            scene: self.name().into(),
            message: "this scene cannot render a goal image".into(),
        })
    }
    /// Names of the robot's own state ([`World::proprio`]): a subset of the
    /// state observation's names, what a real robot measures of itself
    /// (joints, odometry, its end effector), never object or obstacle state.
    fn proprio_names(&self) -> &[String];
    /// Writes the robot's own state into `out` (the values of the state
    /// observation entries named by [`World::proprio_names`]).
    fn proprio(&self, out: &mut [Real]);
}

pub mod camera;
pub mod navigate;
pub mod push;
pub mod reach;
mod stepped;

pub use stepped::{Scene, Sensor, StepOutcome};

/// Fixtures shared by the scenes' tests.
#[cfg(test)]
pub(crate) mod testing {
    use crate::scenario::Scenario;
    use telic::ObjectiveSpec;

    /// The shipped scenario `name` and its objective spec with the
    /// guardrails of the scene's first episode (seed 1) added; panics unless
    /// that spec compiles against the scene's analytic model and takes the
    /// episode's targets.
    pub(crate) fn shipped_objective(name: &str) -> (Scenario, ObjectiveSpec) {
        let scenario = Scenario::load(name).unwrap();
        let mut scene = scenario.scene.build(&scenario.base_dir).unwrap();
        let setup = scene.reset(1).unwrap();
        let model = scene.analytic_model().unwrap();
        let mut spec = scenario.objective.clone();
        spec.guardrails.extend(setup.guardrails);
        let mut objective = spec.compile(model.spec()).unwrap();
        for (term, target) in &setup.targets {
            objective.set_target(term, target).unwrap();
        }
        (scenario, spec)
    }
}

use serde::{Deserialize, Serialize};
use std::path::Path;

/// Checks that each named setting is finite and positive (`positive`) or
/// finite and `>= 0` (`non_negative`), and at most
/// [`MAX_SCENE_VALUE`](crate::limits::MAX_SCENE_VALUE); the error names the
/// scene and field.
pub(crate) fn check_settings(
    scene: &str,
    positive: &[(&str, Real)],
    non_negative: &[(&str, Real)],
) -> Result<(), SimError> {
    let bad = |message: String| SimError::Scene {
        scene: scene.into(),
        message,
    };
    if let Some((name, v)) = positive.iter().find(|(_, v)| !(v.is_finite() && *v > 0.0)) {
        return Err(bad(format!("{name} must be positive, got {}", num(*v))));
    }
    if let Some((name, v)) = non_negative
        .iter()
        .find(|(_, v)| !(v.is_finite() && *v >= 0.0))
    {
        return Err(bad(format!("{name} must be >= 0, got {}", num(*v))));
    }
    check_magnitudes(scene, positive.iter().chain(non_negative))
}

/// Checks that each named setting is at most
/// [`MAX_SCENE_VALUE`](crate::limits::MAX_SCENE_VALUE) (NaN is left to the
/// finiteness checks).
pub(crate) fn check_magnitudes<'a>(
    scene: &str,
    settings: impl IntoIterator<Item = &'a (&'a str, Real)>,
) -> Result<(), SimError> {
    let origin = format!("scene '{scene}'");
    for (name, v) in settings {
        crate::limits::check(
            &origin,
            &format!("scene.{name}"),
            *v,
            crate::limits::MAX_SCENE_VALUE,
        )?;
    }
    Ok(())
}

/// Checks each named count `(field, value, limit)` of a scene's settings
/// against its limit; the error ([`SimError::Limit`]) names the scene, the
/// key `scene.<field>`, the value and the limit.
pub(crate) fn check_counts(scene: &str, counts: &[(&str, usize, usize)]) -> Result<(), SimError> {
    let origin = format!("scene '{scene}'");
    for &(name, value, max) in counts {
        crate::limits::check(&origin, &format!("scene.{name}"), value, max)?;
    }
    Ok(())
}

/// Whole physics steps per control period (0 when they do not fit).
pub(crate) fn steps_per_control(control_dt: Real, physics_dt: Real) -> usize {
    let k = (control_dt / physics_dt).round();
    if k.is_finite() && k >= 1.0 {
        k as usize
    } else {
        0
    }
}

/// Checks that the control period is a whole number of physics steps; the
/// error names the scene.
pub(crate) fn check_control_period(
    scene: &str,
    control_dt: Real,
    physics_dt: Real,
) -> Result<(), SimError> {
    let k = steps_per_control(control_dt, physics_dt);
    if k == 0 || (k as Real * physics_dt - control_dt).abs() > 1e-9 {
        return Err(SimError::Scene {
            scene: scene.into(),
            message: format!(
                "physics_dt ({}) must divide control_dt ({})",
                num(physics_dt),
                num(control_dt)
            ),
        });
    }
    Ok(())
}

/// Moves each velocity setpoint one control tick towards its command, by
/// the lag factor `alpha` (`telic::model::lag_factor`, the analytic models'
/// rule); a command is clamped into `±bound`, a missing or non-finite one
/// counts as 0.
pub(crate) fn follow_commands(
    setpoint: &mut [Real],
    action: &[Real],
    bounds: &[Real],
    alpha: Real,
) {
    for (k, (s, b)) in setpoint.iter_mut().zip(bounds).enumerate() {
        let u = action
            .get(k)
            .copied()
            .filter(|u| u.is_finite())
            .unwrap_or(0.0);
        *s += alpha * (u.clamp(-b, *b) - *s);
    }
}

/// Writes `values` into `out`, as many as both hold: how a scene hands out
/// its observation and ground-truth readouts.
pub(crate) fn write_values(out: &mut [Real], values: impl IntoIterator<Item = Real>) {
    for (o, v) in out.iter_mut().zip(values) {
        *o = v;
    }
}

/// Angle `a` wrapped into `(−π, π]`.
pub(crate) fn wrap_angle(a: Real) -> Real {
    let w = a.rem_euclid(std::f64::consts::TAU);
    if w > std::f64::consts::PI {
        w - std::f64::consts::TAU
    } else {
        w
    }
}

/// Which scene a scenario runs, with its settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SceneConfig {
    /// A serial arm reaching random targets around keep-out boxes.
    Reach(reach::ReachConfig),
    /// A differential-drive robot crossing an obstacle field.
    Navigate(navigate::NavigateConfig),
    /// A pusher pushing a box to a goal pose on a table.
    Push(push::PushConfig),
}

impl SceneConfig {
    /// The scene's name.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            SceneConfig::Reach(_) => "reach",
            SceneConfig::Navigate(_) => "navigate",
            SceneConfig::Push(_) => "push",
        }
    }

    /// The control period and the physics time step of the scene's
    /// settings, in seconds.
    #[must_use]
    pub fn time_steps(&self) -> (Real, Real) {
        match self {
            SceneConfig::Reach(c) => (c.control_dt, c.physics_dt),
            SceneConfig::Navigate(c) => (c.control_dt, c.physics_dt),
            SceneConfig::Push(c) => (c.control_dt, c.physics_dt),
        }
    }

    /// Builds the scene; relative paths are resolved against `base_dir`.
    pub fn build(&self, base_dir: &Path) -> Result<Box<dyn World>, SimError> {
        match self {
            SceneConfig::Reach(c) => Ok(Box::new(reach::Reach::new(c, base_dir)?)),
            SceneConfig::Navigate(c) => Ok(Box::new(navigate::Navigate::new(c)?)),
            SceneConfig::Push(c) => Ok(Box::new(push::Push::new(c)?)),
        }
    }
}

#[cfg(test)]
mod tests;
