//! The `navigate` scene: a differential-drive robot crosses a random but
//! solvable field of obstacles to a goal.
//!
//! The world is z-up. The robot is a dynamic rapier cylinder whose rotations
//! about x and y and translation along z are locked. Each physics step the
//! actuator sets the body's planar velocity along its heading and its yaw rate,
//! so obstacles (fixed vertical cylinders and yawed boxes, plus the arena's
//! walls) still act on it through rapier contacts.
//!
//! Actuation matches [`telic::model::Unicycle`]: at every control tick the
//! actuator's velocity setpoints follow the command through a discrete
//! first-order lag, `s ← s + α(u − s)`, `α = 1 − e^{−Δt/τ}`; within the tick the
//! body's velocities track the setpoints under acceleration limits (a motor
//! drive), which the model ignores. With generous limits the model predicts the
//! pose to within millimetres over a second of driving.
//!
//! Every episode draws start pose, goal and obstacles from its seed and rejects
//! fields where a grid search over the arena, with obstacles inflated by the
//! robot's radius, the clearance, the planner's buffer and some slack, finds no
//! path from start to goal.

use super::{EpisodeSetup, World};
use crate::SimError;
use rapier3d::prelude::{ColliderBuilder, PhysicsWorld, RigidBodyBuilder, RigidBodyHandle, Vector};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::f64::consts::{FRAC_PI_2, PI};
use telic::limits::num;
use telic::model::Unicycle;
use telic::objective::geometry::CompiledShape;
use telic::objective::{GuardrailSpec, LimitSpec, Shape};
use telic::rng::Rng;
use telic::{Real, WorldModel};

/// Physics scalar (rapier's `f32`); conversions happen only in this file.
type P = f32;

/// Name of the truth readout of the robot's clearance to the nearest
/// obstacle (after the analytic model's readouts).
pub const CLEARANCE: &str = "clearance";

/// Most obstacles of the `navigate` scene ([`NavigateConfig::obstacles`]).
pub const MAX_OBSTACLES: usize = 256;
/// Most fields drawn per episode ([`NavigateConfig::max_attempts`]).
pub const MAX_ATTEMPTS: usize = 10_000;
/// Most cells of the solvability grid ([`NavigateConfig::grid_cell`]).
pub const MAX_GRID_CELLS: usize = 4_000_000;

/// Settings of the `navigate` scene. Every field has a default (shown in its doc).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NavigateConfig {
    /// Control period in seconds, the analytic model's time step (default 0.1).
    pub control_dt: Real,
    /// Physics time step in seconds; must divide `control_dt` (default 0.02).
    pub physics_dt: Real,
    /// Arena extent along x, from start side to goal side, in metres (default 8).
    pub arena_length: Real,
    /// Arena extent along y in metres (default 6).
    pub arena_width: Real,
    /// Whether walls enclose the arena (colliders and clearance obstacles; default true).
    pub walls: bool,
    /// Number of obstacles (default 10; at most [`MAX_OBSTACLES`]).
    pub obstacles: usize,
    /// How many of them are placed near the straight start–goal line, so that
    /// the robot must detour (default 2).
    pub on_path: usize,
    /// Probability that an obstacle is a box rather than a cylinder (default 0.4).
    pub box_fraction: Real,
    /// Range of cylinder radii in metres (default [0.2, 0.45]).
    pub cylinder_radius: [Real; 2],
    /// Range of box half lengths in metres (default [0.25, 0.7]).
    pub box_half_length: [Real; 2],
    /// Range of box half widths in metres (default [0.1, 0.3]).
    pub box_half_width: [Real; 2],
    /// Obstacle height in metres (default 0.8).
    pub obstacle_height: Real,
    /// Distance of start and goal from the arena's ends (x) in metres (default 0.8).
    pub end_inset: Real,
    /// Smallest distance of start and goal from the arena's sides (y) in metres (default 1).
    pub side_inset: Real,
    /// Smallest free gap between two obstacles and between an obstacle and the
    /// arena's edge, in metres. Fields then hold convex islands with passages
    /// between them rather than walls and pockets that trap a short-horizon
    /// planner; 0 lets obstacles touch and overlap (default 0.8).
    pub min_gap: Real,
    /// Extra free space kept around start and goal beyond the robot's radius,
    /// the clearance and the buffer, in metres (default 0.3).
    pub keep_clear: Real,
    /// Largest deviation of the start heading from the bearing to the goal, in
    /// radians (default π: any heading).
    pub heading_jitter: Real,
    /// Robot radius in metres (default 0.2).
    pub robot_radius: Real,
    /// Robot height in metres (default 0.3).
    pub robot_height: Real,
    /// Speed bound of the command, forward and backward, in m/s (default 1).
    pub max_speed: Real,
    /// Turn-rate bound of the command in rad/s (default 2).
    pub max_turn_rate: Real,
    /// Time constant of the setpoints' first-order lag in seconds (default 0.2).
    pub tau: Real,
    /// Linear acceleration limit of the drive in m/s², 0 for none (default 20).
    pub max_accel: Real,
    /// Angular acceleration limit of the drive in rad/s², 0 for none (default 60).
    pub max_angular_accel: Real,
    /// The task succeeds when the robot's centre is this close to the goal, in metres (default 0.25).
    pub success_radius: Real,
    /// Required clearance between robot and obstacles in metres (`min_distance`
    /// of the clearance guardrail; default 0.05).
    pub min_clearance: Real,
    /// Safety buffer the planner keeps on top of the clearance (`margin` of
    /// the clearance guardrail; default 0.05).
    pub clearance_margin: Real,
    /// Extra inflation of obstacles in the solvability check, so every
    /// accepted field has passages wider than the robot strictly needs (default 0.1).
    pub passage_slack: Real,
    /// Cell size of the solvability grid in metres (default 0.05; the grid
    /// over the arena has at most [`MAX_GRID_CELLS`] cells).
    pub grid_cell: Real,
    /// Fields drawn per episode before giving up (default 500; at most
    /// [`MAX_ATTEMPTS`]).
    pub max_attempts: usize,
}

impl Default for NavigateConfig {
    fn default() -> Self {
        Self {
            control_dt: 0.1,
            physics_dt: 0.02,
            arena_length: 8.0,
            arena_width: 6.0,
            walls: true,
            obstacles: 10,
            on_path: 2,
            box_fraction: 0.4,
            cylinder_radius: [0.2, 0.45],
            box_half_length: [0.25, 0.7],
            box_half_width: [0.1, 0.3],
            obstacle_height: 0.8,
            end_inset: 0.8,
            side_inset: 1.0,
            min_gap: 0.8,
            keep_clear: 0.3,
            heading_jitter: PI,
            robot_radius: 0.2,
            robot_height: 0.3,
            max_speed: 1.0,
            max_turn_rate: 2.0,
            tau: 0.2,
            max_accel: 20.0,
            max_angular_accel: 60.0,
            success_radius: 0.25,
            min_clearance: 0.05,
            clearance_margin: 0.05,
            passage_slack: 0.1,
            grid_cell: 0.05,
            max_attempts: 500,
        }
    }
}

impl NavigateConfig {
    /// Checks every value; the message names the offending field.
    pub fn validate(&self) -> Result<(), SimError> {
        super::check_counts(
            "navigate",
            &[
                ("obstacles", self.obstacles, MAX_OBSTACLES),
                ("max_attempts", self.max_attempts, MAX_ATTEMPTS),
            ],
        )?;
        let bad = |message: String| {
            Err(SimError::Scene {
                scene: "navigate".into(),
                message,
            })
        };
        let positive = [
            ("control_dt", self.control_dt),
            ("physics_dt", self.physics_dt),
            ("arena_length", self.arena_length),
            ("arena_width", self.arena_width),
            ("obstacle_height", self.obstacle_height),
            ("robot_radius", self.robot_radius),
            ("robot_height", self.robot_height),
            ("max_speed", self.max_speed),
            ("max_turn_rate", self.max_turn_rate),
            ("success_radius", self.success_radius),
            ("grid_cell", self.grid_cell),
        ];
        let non_negative = [
            ("end_inset", self.end_inset),
            ("side_inset", self.side_inset),
            ("keep_clear", self.keep_clear),
            ("min_gap", self.min_gap),
            ("heading_jitter", self.heading_jitter),
            ("tau", self.tau),
            ("max_accel", self.max_accel),
            ("max_angular_accel", self.max_angular_accel),
            ("min_clearance", self.min_clearance),
            ("clearance_margin", self.clearance_margin),
            ("passage_slack", self.passage_slack),
        ];
        super::check_settings("navigate", &positive, &non_negative)?;
        if !(0.0..=1.0).contains(&self.box_fraction) {
            return bad(format!(
                "box_fraction must be in [0, 1], got {}",
                num(self.box_fraction)
            ));
        }
        for (name, [lo, hi]) in [
            ("cylinder_radius", self.cylinder_radius),
            ("box_half_length", self.box_half_length),
            ("box_half_width", self.box_half_width),
        ] {
            if !(lo.is_finite() && hi.is_finite() && 0.0 < lo && lo <= hi) {
                return bad(format!(
                    "{name} must be a range 0 < lo <= hi, got [{}, {}]",
                    num(lo),
                    num(hi)
                ));
            }
        }
        if self.on_path > self.obstacles {
            return bad(format!(
                "on_path ({}) exceeds obstacles ({})",
                self.on_path, self.obstacles
            ));
        }
        if self.max_attempts == 0 {
            return bad("max_attempts must be positive".into());
        }
        super::check_control_period("navigate", self.control_dt, self.physics_dt)?;
        if 2.0 * self.end_inset >= self.arena_length || 2.0 * self.side_inset > self.arena_width {
            return bad("end_inset or side_inset leave no room in the arena".into());
        }
        let cells = (self.arena_length / self.grid_cell).ceil()
            * (self.arena_width / self.grid_cell).ceil();
        crate::limits::check(
            "scene 'navigate'",
            "scene.arena_length / scene.grid_cell × scene.arena_width / scene.grid_cell (grid cells)",
            cells,
            MAX_GRID_CELLS as Real,
        )?;
        Ok(())
    }

    /// Physics steps per control period.
    #[must_use]
    pub fn physics_steps_per_control(&self) -> usize {
        crate::scene::steps_per_control(self.control_dt, self.physics_dt)
    }

    /// Inflation of obstacles in the solvability check.
    fn inflation(&self) -> Real {
        self.robot_radius + self.min_clearance + self.clearance_margin + self.passage_slack
    }
}

mod field;
use field::*;

/// The rapier world of one episode and the robot's actuator state.
struct Physics {
    physics: PhysicsWorld,
    robot: RigidBodyHandle,
}

impl Physics {
    fn build(c: &NavigateConfig, field: &Field) -> Self {
        let mut physics = PhysicsWorld::new();
        physics.gravity = Vector::new(0.0, 0.0, -9.81);
        physics.integration_parameters.dt = c.physics_dt as P;
        // Ground: a slab whose top is z = 0.
        physics.insert_collider(
            ColliderBuilder::cuboid((c.arena_length + 2.0) as P, (c.arena_width + 2.0) as P, 0.5)
                .translation(Vector::new(0.0, 0.0, -0.5)),
            None,
        );
        for s in &field.obstacles {
            if let Some(b) = collider_of(s) {
                physics.insert_collider(b, None);
            }
        }
        // The robot floats 5 cm above the ground (z is locked), so wheels are
        // not modelled and the drive alone moves it.
        let half_h = 0.5 * c.robot_height;
        let body = RigidBodyBuilder::dynamic()
            .translation(Vector::new(
                field.start[0] as P,
                field.start[1] as P,
                (half_h + 0.05) as P,
            ))
            .rotation(Vector::new(0.0, 0.0, field.heading as P))
            .enabled_translations(true, true, false)
            .enabled_rotations(false, false, true)
            .can_sleep(false);
        let collider = ColliderBuilder::cylinder(half_h as P, c.robot_radius as P)
            .rotation(Vector::new(FRAC_PI_2 as P, 0.0, 0.0))
            .density(500.0)
            .friction(0.3);
        let (robot, _) = physics.insert(body, collider);
        Self { physics, robot }
    }
}

/// A rapier collider for a telic obstacle (vertical cylinders and boxes).
fn collider_of(s: &Shape) -> Option<ColliderBuilder> {
    let v = |p: [Real; 3]| Vector::new(p[0] as P, p[1] as P, p[2] as P);
    match s {
        Shape::Cylinder {
            center,
            radius,
            half_height,
        } => Some(
            ColliderBuilder::cylinder(*half_height as P, *radius as P)
                .rotation(Vector::new(FRAC_PI_2 as P, 0.0, 0.0))
                .translation(v(*center)),
        ),
        Shape::Box {
            center,
            half_extents,
            rpy,
        } => Some(
            ColliderBuilder::cuboid(
                half_extents[0] as P,
                half_extents[1] as P,
                half_extents[2] as P,
            )
            .rotation(Vector::new(0.0, 0.0, rpy[2] as P))
            .translation(v(*center)),
        ),
        Shape::Sphere { .. } | Shape::Capsule { .. } => None,
    }
}

/// The `navigate` scene.
pub struct Navigate {
    config: NavigateConfig,
    /// Truth readout names: the analytic model's, then `clearance`.
    names: Vec<String>,
    /// Proprioception names: the whole state observation (odometry).
    proprio_names: Vec<String>,
    world: Option<Physics>,
    field: Option<Field>,
    /// The field's obstacles (walls included), compiled for distances.
    compiled: Vec<CompiledShape>,
    /// Heading, continuous across ±π (the yaw's unwrapped history).
    heading: Real,
    /// Velocity setpoints `[v, ω]` after the lag, updated at control ticks.
    setpoint: [Real; 2],
    /// Velocities the drive currently imposes `[v, ω]`.
    drive: [Real; 2],
    time: Real,
}

impl std::fmt::Debug for Navigate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Navigate")
            .field("config", &self.config)
            .field("field", &self.field)
            .field("heading", &self.heading)
            .field("setpoint", &self.setpoint)
            .field("drive", &self.drive)
            .field("time", &self.time)
            .finish_non_exhaustive()
    }
}

/// The robot's planar state read from rapier: `[x, y, yaw (wrapped), v, ω]`.
fn body_state(world: &Physics) -> Option<[Real; 5]> {
    let b = world.physics.bodies.get(world.robot)?;
    let t = b.translation();
    let x_axis = b.rotation().mul_vec3(Vector::X);
    let yaw = Real::from(x_axis.y).atan2(Real::from(x_axis.x));
    let lin = b.linvel();
    let v = Real::from(lin.x) * yaw.cos() + Real::from(lin.y) * yaw.sin();
    let w = Real::from(b.angvel().z);
    Some([Real::from(t.x), Real::from(t.y), yaw, v, w])
}

impl Navigate {
    /// Builds the scene (the world is created by [`World::reset`]).
    ///
    /// ```
    /// use telic_sim::World;
    /// use telic_sim::scene::navigate::{Navigate, NavigateConfig};
    ///
    /// let mut scene = Navigate::new(&NavigateConfig::default()).unwrap();
    /// let setup = scene.reset(7).unwrap();
    /// assert_eq!(setup.targets[0].0, "goal");
    /// ```
    pub fn new(config: &NavigateConfig) -> Result<Self, SimError> {
        config.validate()?;
        let names = Unicycle::READOUTS
            .iter()
            .chain(&[CLEARANCE])
            .map(|s| (*s).to_string())
            .collect();
        let proprio_names = Unicycle::new(
            config.control_dt,
            config.max_speed,
            config.max_turn_rate,
            config.tau,
        )?
        .spec()
        .observations
        .clone();
        Ok(Self {
            config: config.clone(),
            names,
            proprio_names,
            world: None,
            field: None,
            compiled: Vec::new(),
            heading: 0.0,
            setpoint: [0.0; 2],
            drive: [0.0; 2],
            time: 0.0,
        })
    }

    /// The goal of the current episode (`None` before the first reset).
    #[must_use]
    pub fn goal(&self) -> Option<[Real; 2]> {
        self.field.as_ref().map(|f| f.goal)
    }

    /// Distance of the robot from the goal (`None` before the first reset).
    fn goal_distance(&self) -> Option<Real> {
        let goal = self.goal()?;
        let s = self.world.as_ref().and_then(body_state)?;
        Some((s[0] - goal[0]).hypot(s[1] - goal[1]))
    }

    /// The obstacles of the current episode, walls included.
    #[must_use]
    pub fn obstacles(&self) -> &[Shape] {
        self.field.as_ref().map_or(&[], |f| f.obstacles.as_slice())
    }

    /// Signed distance from the robot's boundary (a disc of `robot_radius`
    /// at its centre, in the plane z = 0 where the `base` body's point
    /// lies) to the nearest obstacle or wall, in metres, negative inside:
    /// the validator's margin of the `clearance` guardrail plus its
    /// `min_clearance`. The arena's diagonal less the radius when the field
    /// is empty (and before a reset).
    fn clearance(&self) -> Real {
        let [x, y, ..] = self.state();
        let p = [x, y, 0.0].into();
        let far = self.config.arena_length.hypot(self.config.arena_width);
        let nearest = self
            .compiled
            .iter()
            .map(|s| s.signed_distance(&p))
            .fold(far, Real::min);
        nearest - self.config.robot_radius
    }

    /// The robot's drawing (its disc and heading marker) at `x, y, yaw`.
    fn robot_visuals(&self, [x, y, yaw]: [Real; 3], out: &mut Vec<(String, Shape)>) {
        let r = self.config.robot_radius;
        out.push((
            "robot".into(),
            Shape::Cylinder {
                center: [x, y, 0.1],
                radius: r,
                half_height: 0.1,
            },
        ));
        out.push((
            "heading".into(),
            Shape::Capsule {
                a: [x, y, 0.2],
                b: [x + 1.5 * r * yaw.cos(), y + 1.5 * r * yaw.sin(), 0.2],
                radius: 0.2 * r,
            },
        ));
    }

    /// `[x, y, θ, v, ω]` with the continuous heading, or zeros before a reset.
    fn state(&self) -> [Real; 5] {
        match self.world.as_ref().and_then(body_state) {
            Some([x, y, _, v, w]) => [x, y, self.heading, v, w],
            None => [0.0; 5],
        }
    }
}

/// Moves `x` towards `target` by at most `step` (any amount when `step` is 0).
fn approach(x: Real, target: Real, step: Real) -> Real {
    if step <= 0.0 {
        target
    } else {
        x + (target - x).clamp(-step, step)
    }
}

impl World for Navigate {
    fn name(&self) -> &str {
        "navigate"
    }

    fn reset(&mut self, seed: u64) -> Result<EpisodeSetup, SimError> {
        let mut rng = Rng::new(seed);
        let field = Field::sample(&self.config, &mut rng)?;
        self.world = Some(Physics::build(&self.config, &field));
        self.heading = field.heading;
        self.setpoint = [0.0; 2];
        self.drive = [0.0; 2];
        self.time = 0.0;
        let c = &self.config;
        let setup = EpisodeSetup {
            targets: vec![("goal".into(), field.goal.to_vec())],
            guardrails: vec![GuardrailSpec::Clearance {
                name: "clearance".into(),
                margin: c.clearance_margin,
                min_distance: c.min_clearance,
                obstacles: field.obstacles.clone(),
                bodies: Vec::new(),
            }],
            // The heading and speed on arrival are free: no one goal observation.
            goal_observation: None,
            // The same bound on the readout that measures it; no upper limit
            // to speak of (the largest value a scene setting may take).
            pixel_guardrails: vec![GuardrailSpec::ReadoutLimit(LimitSpec {
                name: "clearance".into(),
                margin: c.clearance_margin,
                readouts: vec![CLEARANCE.into()],
                lower: vec![c.min_clearance],
                upper: vec![crate::limits::MAX_SCENE_VALUE],
            })],
        };
        self.compiled = field.obstacles.iter().map(Shape::compile).collect();
        self.field = Some(field);
        Ok(setup)
    }

    fn observe(&self, out: &mut [Real]) {
        super::write_values(out, self.state());
    }

    fn truth_readouts(&self) -> &[String] {
        &self.names
    }

    fn truth(&self, out: &mut [Real]) {
        let s = self.state();
        let y = [s[0], s[1], s[2], s[3], s[4], s[3].abs(), self.clearance()];
        super::write_values(out, y);
    }

    fn proprio_names(&self) -> &[String] {
        &self.proprio_names
    }

    fn proprio(&self, out: &mut [Real]) {
        super::write_values(out, self.state());
    }

    fn apply(&mut self, action: &[Real]) {
        let c = &self.config;
        let bounds = [c.max_speed, c.max_turn_rate];
        let alpha = telic::model::lag_factor(c.control_dt, c.tau);
        super::follow_commands(&mut self.setpoint, action, &bounds, alpha);
    }

    fn step(&mut self) {
        let h = self.config.physics_dt;
        self.drive[0] = approach(self.drive[0], self.setpoint[0], self.config.max_accel * h);
        self.drive[1] = approach(
            self.drive[1],
            self.setpoint[1],
            self.config.max_angular_accel * h,
        );
        let [v, w] = self.drive;
        let Some(world) = self.world.as_mut() else {
            return;
        };
        let Some(before) = body_state(world) else {
            return;
        };
        if let Some(body) = world.physics.bodies.get_mut(world.robot) {
            // Drive along the heading at the middle of the step, as the model does.
            let mid = before[2] + 0.5 * w * h;
            body.set_linvel(
                Vector::new((v * mid.cos()) as P, (v * mid.sin()) as P, 0.0),
                true,
            );
            body.set_angvel(Vector::new(0.0, 0.0, w as P), true);
        }
        world.physics.step();
        if let Some(after) = body_state(world) {
            self.heading += super::wrap_angle(after[2] - before[2]);
        }
        self.time += h;
    }

    fn physics_mut(&mut self) -> Option<&mut rapier3d::prelude::PhysicsWorld> {
        self.world.as_mut().map(|w| &mut w.physics)
    }

    fn physics_dt(&self) -> Real {
        self.config.physics_dt
    }

    fn time(&self) -> Real {
        self.time
    }

    fn success(&self) -> bool {
        self.goal_distance()
            .is_some_and(|d| d <= self.config.success_radius)
    }

    fn visuals(&self, out: &mut Vec<(String, Shape)>) {
        if let Some([x, y, yaw, ..]) = self.world.as_ref().and_then(body_state) {
            self.robot_visuals([x, y, yaw], out);
        }
    }

    /// The robot at the goal, heading as it is now (the heading on
    /// arrival is free).
    fn render_goal(
        &self,
        camera: &mut super::camera::Camera,
        image: &mut [u8],
    ) -> Result<(), SimError> {
        let (Some([gx, gy]), Some([.., yaw, _, _])) =
            (self.goal(), self.world.as_ref().and_then(body_state))
        else {
            return Err(SimError::Scene {
                scene: "navigate".into(),
                message: "no goal to render before the first reset".into(),
            });
        };
        camera.render_posed(self, |out| self.robot_visuals([gx, gy, yaw], out), image)
    }

    fn scenery(&self, out: &mut Vec<(String, Shape)>) {
        if let Some([x, y]) = self.goal() {
            out.push((
                "goal".into(),
                Shape::Cylinder {
                    center: [x, y, 0.005],
                    radius: self.config.success_radius,
                    half_height: 0.005,
                },
            ));
        }
    }

    fn camera_view(&self) -> Option<super::camera::View> {
        let c = &self.config;
        Some(super::camera::View::new(
            [0.0, 0.0],
            [c.arena_length / 2.0, c.arena_width / 2.0],
        ))
    }

    fn hazards(&self, out: &mut Vec<Shape>) {
        if let Some(field) = &self.field {
            out.extend_from_slice(&field.obstacles);
        }
    }

    fn goal_error(&self) -> Vec<(&'static str, Real)> {
        self.goal_distance()
            .map(|d| vec![("distance", d)])
            .unwrap_or_default()
    }

    fn analytic_model(&self) -> Result<Box<dyn WorldModel>, SimError> {
        let c = &self.config;
        Ok(Box::new(Unicycle::new(
            c.control_dt,
            c.max_speed,
            c.max_turn_rate,
            c.tau,
        )?))
    }
}

#[cfg(test)]
mod tests;
