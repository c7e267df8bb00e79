//! The `push` scene: a round pusher pushes a box across a table to a goal
//! pose, staying out of keep-out regions and keeping itself and the box on
//! the table.
//!
//! The world is z-up; the table is a fixed slab centred at the origin whose
//! top is z = 0. The box is a dynamic rapier cuboid that slides on the table
//! with friction (`table_friction`). The pusher is a dynamic vertical cylinder
//! floating 1 cm above the table (its z translation and all rotations are
//! locked) whose planar velocity the actuator sets every physics step, so its
//! contacts with the box (friction `pusher_friction`) are solved by rapier.
//!
//! Actuation matches [`telic::model::Pusher`]: at every control tick the
//! velocity setpoints follow the command `[vx, vy]` through a discrete
//! first-order lag, `s ← s + α(u − s)`, `α = 1 − e^{−Δt/τ}`; within the tick the
//! drive's velocity tracks the setpoints under an acceleration limit. The box
//! itself is only approximated by the model (quasi-static, frictionless
//! contact): that gap is what a learned model is for.
//!
//! Observation (the model's state): `[pusher.x, pusher.y, pusher.vx,
//! pusher.vy, box.x, box.y, box.cos, box.sin]`, with `box.cos`, `box.sin` of
//! the box's yaw (the yaw of its body frame: the box is treated as marked, its
//! 90° symmetry is not used). Ground-truth readouts add `offset.x`, `offset.y`
//! (pusher minus box centre) and `speed` (the pusher's planar speed), as
//! the analytic model's readouts in the same order, then
//! `keepout.clearance`: the signed distance from the pusher's disc to the
//! nearest keep-out region (what the `keep_out` guardrails bound; about
//! the table's diagonal when the episode has none). The robot's own state
//! ([`World::proprio`]) is `[pusher.x, pusher.y, pusher.vx, pusher.vy]`.
//!
//! Every episode draws the box's start pose, its goal pose (at most
//! `max_yaw_change` away in yaw), the pusher's start and the keep-out regions
//! from its seed. [`World::reset`] returns targets for the cost terms
//! `goal_pos` (`[x, y]` on `box.x`, `box.y`) and `goal_yaw` (`[cos, sin]` on
//! `box.cos`, `box.sin`) and one `keep_out` guardrail per region on the body
//! `pusher`, so the scenario must declare those two terms and that body. Keep-out
//! regions are not physical (nothing collides with them): they mark where
//! the pusher must not go, e.g. over a fragile object, and are placed clear of
//! the straight push from start to goal so every episode stays solvable.

use super::{EpisodeSetup, World};
use crate::SimError;
use rapier3d::prelude::{
    CoefficientCombineRule, ColliderBuilder, FrictionModel, PhysicsWorld, RigidBodyBuilder,
    RigidBodyHandle, Vector,
};
use std::f64::consts::FRAC_PI_2;
use telic::model::Pusher;
use telic::objective::geometry::CompiledShape;
use telic::objective::{GuardrailSpec, LimitSpec, Shape};
use telic::rng::Rng;
use telic::{Real, WorldModel};

mod config;
mod layout;

pub use config::{MAX_ATTEMPTS, MAX_KEEPOUTS, PushConfig};
use layout::Layout;

/// Physics scalar (rapier's `f32`); conversions happen only in this file.
type P = f32;

/// Name of the truth readout of the pusher's clearance to the nearest
/// keep-out region (after the analytic model's readouts).
pub const KEEPOUT_CLEARANCE: &str = "keepout.clearance";

/// How many leading entries of the observation are the pusher's own state.
const PROPRIO: usize = 4;

/// The rapier world of one episode.
struct Physics {
    physics: PhysicsWorld,
    pusher: RigidBodyHandle,
    block: RigidBodyHandle,
}

impl Physics {
    fn build(c: &PushConfig, layout: &Layout) -> Self {
        let mut physics = PhysicsWorld::new();
        physics.gravity = Vector::new(0.0, 0.0, -9.81);
        physics.integration_parameters.dt = c.physics_dt as P;
        // One Coulomb friction constraint per contact point: the default
        // simplified model adds a twist constraint that all but stops the box
        // from turning under an off-centre push.
        physics.integration_parameters.friction_model = FrictionModel::Coulomb;
        // Friction coefficients combine by product (the `Multiply` rule wins
        // over the box's default `Average`) and the box's own coefficient is
        // 1, so box–table friction is `table_friction` and pusher–box friction
        // is `pusher_friction`, each exactly.
        let thickness = 0.05;
        physics.insert_collider(
            ColliderBuilder::cuboid(
                (c.table_length / 2.0) as P,
                (c.table_width / 2.0) as P,
                (thickness / 2.0) as P,
            )
            .translation(Vector::new(0.0, 0.0, (-thickness / 2.0) as P))
            .friction(c.table_friction as P)
            .friction_combine_rule(CoefficientCombineRule::Multiply),
            None,
        );
        let [hx, hy, hz] = c.box_half_extents;
        let body = RigidBodyBuilder::dynamic()
            .translation(Vector::new(
                layout.box_start[0] as P,
                layout.box_start[1] as P,
                hz as P,
            ))
            .rotation(Vector::new(0.0, 0.0, layout.box_yaw as P))
            .can_sleep(false);
        let collider = ColliderBuilder::cuboid(hx as P, hy as P, hz as P)
            .mass(c.box_mass as P)
            .friction(1.0);
        let (block, _) = physics.insert(body, collider);
        // The pusher spans 0.2–1.8 box half heights, so it meets the box's
        // faces around their middle and never touches the table.
        let body = RigidBodyBuilder::dynamic()
            .translation(Vector::new(
                layout.pusher_start[0] as P,
                layout.pusher_start[1] as P,
                hz as P,
            ))
            .enabled_translations(true, true, false)
            .enabled_rotations(false, false, false)
            .can_sleep(false);
        let collider = ColliderBuilder::cylinder((0.8 * hz) as P, c.pusher_radius as P)
            .rotation(Vector::new(FRAC_PI_2 as P, 0.0, 0.0))
            .mass(c.pusher_mass as P)
            .friction(c.pusher_friction as P)
            .friction_combine_rule(CoefficientCombineRule::Multiply);
        let (pusher, _) = physics.insert(body, collider);
        Self {
            physics,
            pusher,
            block,
        }
    }

    /// The observation read from rapier (see the module docs).
    fn state(&self) -> Option<[Real; 8]> {
        let p = self.physics.bodies.get(self.pusher)?;
        let b = self.physics.bodies.get(self.block)?;
        let (pt, pv, bt) = (p.translation(), p.linvel(), b.translation());
        let x_axis = b.rotation().mul_vec3(Vector::X);
        let yaw = Real::from(x_axis.y).atan2(Real::from(x_axis.x));
        Some([
            Real::from(pt.x),
            Real::from(pt.y),
            Real::from(pv.x),
            Real::from(pv.y),
            Real::from(bt.x),
            Real::from(bt.y),
            yaw.cos(),
            yaw.sin(),
        ])
    }
}

/// The `push` scene.
pub struct Push {
    config: PushConfig,
    /// Truth readout names: the analytic model's, then `keepout.clearance`.
    names: Vec<String>,
    world: Option<Physics>,
    layout: Option<Layout>,
    /// The keep-out regions, compiled for distances.
    compiled: Vec<CompiledShape>,
    /// Velocity setpoints `[vx, vy]` after the lag, updated at control ticks.
    setpoint: [Real; 2],
    /// Velocity the drive currently imposes.
    drive: [Real; 2],
    time: Real,
}

impl std::fmt::Debug for Push {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Push")
            .field("config", &self.config)
            .field("layout", &self.layout)
            .field("setpoint", &self.setpoint)
            .field("drive", &self.drive)
            .field("time", &self.time)
            .finish_non_exhaustive()
    }
}

impl Push {
    /// Builds the scene (the world is created by [`World::reset`]).
    ///
    /// ```
    /// use telic_sim::World;
    /// use telic_sim::scene::push::{Push, PushConfig};
    ///
    /// let mut scene = Push::new(&PushConfig::default()).unwrap();
    /// let setup = scene.reset(7).unwrap();
    /// assert_eq!(setup.targets[0].0, "goal_pos");
    /// ```
    pub fn new(config: &PushConfig) -> Result<Self, SimError> {
        config.validate()?;
        Ok(Self {
            config: config.clone(),
            names: Pusher::READOUTS
                .iter()
                .chain(&[KEEPOUT_CLEARANCE])
                .map(|s| (*s).to_string())
                .collect(),
            world: None,
            layout: None,
            compiled: Vec::new(),
            setpoint: [0.0; 2],
            drive: [0.0; 2],
            time: 0.0,
        })
    }

    /// The goal of the current episode as `([x, y], yaw)` (`None` before the first reset).
    #[must_use]
    pub fn goal(&self) -> Option<([Real; 2], Real)> {
        self.layout.as_ref().map(|l| (l.goal, l.goal_yaw))
    }

    /// The state a push ends in, as an observation: the box at its goal
    /// pose, the pusher at rest touching it from behind, on the line from
    /// the box's start to its goal (where the straight push that brought it
    /// there ends). The goal of a latent goal term (the goal image in the
    /// pixel modes): a goal image must show the pusher somewhere, and a
    /// pusher left at its start would pull the plan away from the box.
    #[must_use]
    fn goal_state(&self, layout: &Layout) -> [Real; 8] {
        let [gx, gy] = layout.goal;
        let (sin, cos) = layout.goal_yaw.sin_cos();
        let (dx, dy) = (gx - layout.box_start[0], gy - layout.box_start[1]);
        let len = dx.hypot(dy);
        let (dx, dy) = if len > 1e-9 {
            (dx / len, dy / len)
        } else {
            (cos, sin)
        };
        // How far back along the line the pusher's disc clears the box's
        // square by 5 mm: the distance to a convex shape grows along a ray
        // from its centre, so bisect (the direction in the box's frame).
        let [hx, hy, _] = self.config.box_half_extents;
        let (bx, by) = ((cos * dx + sin * dy).abs(), (cos * dy - sin * dx).abs());
        let clear = self.config.pusher_radius + 0.005;
        let gap = |t: Real| (t * bx - hx).max(0.0).hypot((t * by - hy).max(0.0)) - clear;
        let (mut lo, mut hi) = (0.0, hx.hypot(hy) + clear);
        for _ in 0..60 {
            let mid = 0.5 * (lo + hi);
            if gap(mid) < 0.0 { lo = mid } else { hi = mid }
        }
        [gx - hi * dx, gy - hi * dy, 0.0, 0.0, gx, gy, cos, sin]
    }

    /// The keep-out regions of the current episode.
    #[must_use]
    pub fn keepouts(&self) -> &[Shape] {
        self.layout.as_ref().map_or(&[], |l| l.keepouts.as_slice())
    }

    /// The observation, or zeros before a reset.
    fn state(&self) -> [Real; 8] {
        self.world
            .as_ref()
            .and_then(Physics::state)
            .unwrap_or([0.0; 8])
    }

    /// Signed distance from the pusher's disc (`pusher_radius` around its
    /// centre, in the plane z = 0 where the `pusher` body's point lies) to
    /// the nearest keep-out region, in metres, negative inside: the
    /// validator's margin of the `keep_out` guardrails. The table's
    /// diagonal less the radius when the episode has no region.
    fn keepout_clearance(&self, s: &[Real; 8]) -> Real {
        let p = [s[0], s[1], 0.0].into();
        let r = self.config.pusher_radius;
        let far = self.config.table_length.hypot(self.config.table_width);
        self.compiled
            .iter()
            .map(|k| k.signed_distance(&p))
            .fold(far, Real::min)
            - r
    }

    /// The pusher and the box drawn at the poses of the observation `s`.
    fn parts(&self, s: &[Real; 8], out: &mut Vec<(String, Shape)>) {
        let c = &self.config;
        let [hx, hy, hz] = c.box_half_extents;
        out.push((
            "pusher".into(),
            Shape::Cylinder {
                center: [s[0], s[1], hz],
                radius: c.pusher_radius,
                half_height: hz,
            },
        ));
        out.push((
            "box".into(),
            Shape::Box {
                center: [s[4], s[5], hz],
                half_extents: [hx, hy, hz],
                rpy: [0.0, 0.0, s[7].atan2(s[6])],
            },
        ));
    }

    /// Distance of the box from its goal position and yaw, or `None` before a reset.
    #[must_use]
    pub fn goal_error(&self) -> Option<(Real, Real)> {
        let ([gx, gy], gyaw) = self.goal()?;
        let s = self.world.as_ref().and_then(Physics::state)?;
        let yaw = s[7].atan2(s[6]);
        Some((
            (s[4] - gx).hypot(s[5] - gy),
            crate::scene::wrap_angle(yaw - gyaw).abs(),
        ))
    }
}

impl Push {
    /// One limit `keepout.clearance ≥ 0` with the planner margin of the
    /// `keep_out` guardrails, when the layout has keep-out regions.
    fn pixel_guardrails(&self, layout: &Layout) -> Vec<GuardrailSpec> {
        if layout.keepouts.is_empty() {
            return Vec::new();
        }
        vec![GuardrailSpec::ReadoutLimit(LimitSpec {
            name: "keep_out".into(),
            margin: self.config.keepout_margin,
            readouts: vec![KEEPOUT_CLEARANCE.into()],
            lower: vec![0.0],
            // No upper limit to speak of: the largest value a scene setting may take.
            upper: vec![crate::limits::MAX_SCENE_VALUE],
        })]
    }
}

impl World for Push {
    fn name(&self) -> &str {
        "push"
    }

    fn reset(&mut self, seed: u64) -> Result<EpisodeSetup, SimError> {
        let mut rng = Rng::new(seed);
        let layout = Layout::sample(&self.config, &mut rng)?;
        self.world = Some(Physics::build(&self.config, &layout));
        self.setpoint = [0.0; 2];
        self.drive = [0.0; 2];
        self.time = 0.0;
        let (s, c) = layout.goal_yaw.sin_cos();
        let guardrails = layout
            .keepouts
            .iter()
            .enumerate()
            .map(|(i, shape)| GuardrailSpec::KeepOut {
                name: if layout.keepouts.len() == 1 {
                    "keep_out".into()
                } else {
                    format!("keep_out_{i}")
                },
                margin: self.config.keepout_margin,
                shape: shape.clone(),
                bodies: vec!["pusher".into()],
            })
            .collect();
        let setup = EpisodeSetup {
            targets: vec![
                ("goal_pos".into(), layout.goal.to_vec()),
                ("goal_yaw".into(), vec![c, s]),
            ],
            guardrails,
            goal_observation: Some(self.goal_state(&layout).to_vec()),
            pixel_guardrails: self.pixel_guardrails(&layout),
        };
        self.compiled = layout.keepouts.iter().map(Shape::compile).collect();
        self.layout = Some(layout);
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
        let y = [
            s[0],
            s[1],
            s[2],
            s[3],
            s[4],
            s[5],
            s[6],
            s[7],
            s[0] - s[4],
            s[1] - s[5],
            s[2].hypot(s[3]),
            self.keepout_clearance(&s),
        ];
        super::write_values(out, y);
    }

    fn proprio_names(&self) -> &[String] {
        &self.names[..PROPRIO]
    }

    fn proprio(&self, out: &mut [Real]) {
        super::write_values(out, self.state().into_iter().take(PROPRIO));
    }

    fn apply(&mut self, action: &[Real]) {
        let c = &self.config;
        let alpha = telic::model::lag_factor(c.control_dt, c.tau);
        super::follow_commands(&mut self.setpoint, action, &[c.max_speed; 2], alpha);
    }

    fn step(&mut self) {
        let h = self.config.physics_dt;
        // The drive's velocity moves towards the setpoint by at most max_accel·h.
        let (dx, dy) = (
            self.setpoint[0] - self.drive[0],
            self.setpoint[1] - self.drive[1],
        );
        let gap = dx.hypot(dy);
        let max_step = self.config.max_accel * h;
        let f = if max_step > 0.0 && gap > max_step {
            max_step / gap
        } else {
            1.0
        };
        self.drive[0] += f * dx;
        self.drive[1] += f * dy;
        let Some(world) = self.world.as_mut() else {
            return;
        };
        if let Some(body) = world.physics.bodies.get_mut(world.pusher) {
            body.set_linvel(
                Vector::new(self.drive[0] as P, self.drive[1] as P, 0.0),
                true,
            );
        }
        world.physics.step();
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
        self.goal_error().is_some_and(|(d, yaw)| {
            d <= self.config.success_distance && yaw <= self.config.success_yaw
        })
    }

    fn visuals(&self, out: &mut Vec<(String, Shape)>) {
        if let Some(s) = self.world.as_ref().and_then(Physics::state) {
            self.parts(&s, out);
        }
    }

    /// The goal configuration: the end of a straight push (see `goal_state`).
    fn render_goal(
        &self,
        camera: &mut super::camera::Camera,
        image: &mut [u8],
    ) -> Result<(), SimError> {
        let Some(layout) = self.layout.as_ref() else {
            return Err(SimError::Scene {
                scene: "push".into(),
                message: "no goal to render before the first reset".into(),
            });
        };
        let s = self.goal_state(layout);
        camera.render_posed(self, |out| self.parts(&s, out), image)
    }

    fn scenery(&self, out: &mut Vec<(String, Shape)>) {
        let c = &self.config;
        out.push((
            "table".into(),
            Shape::Box {
                center: [0.0, 0.0, -0.01],
                half_extents: [c.table_length / 2.0, c.table_width / 2.0, 0.01],
                rpy: [0.0; 3],
            },
        ));
        if let Some(([x, y], yaw)) = self.goal() {
            let [hx, hy, _] = c.box_half_extents;
            out.push((
                "goal".into(),
                Shape::Box {
                    center: [x, y, 0.001],
                    half_extents: [hx, hy, 0.001],
                    rpy: [0.0, 0.0, yaw],
                },
            ));
        }
    }

    fn camera_view(&self) -> Option<super::camera::View> {
        let c = &self.config;
        Some(super::camera::View::new(
            [0.0, 0.0],
            [c.table_length / 2.0, c.table_width / 2.0],
        ))
    }

    fn hazards(&self, out: &mut Vec<Shape>) {
        out.extend_from_slice(self.keepouts());
    }

    fn goal_error(&self) -> Vec<(&'static str, Real)> {
        self.goal_error()
            .map(|(d, yaw)| vec![("distance", d), ("yaw", yaw)])
            .unwrap_or_default()
    }

    fn analytic_model(&self) -> Result<Box<dyn WorldModel>, SimError> {
        Ok(Box::new(Pusher::new(&self.config.model_params())?))
    }
}

#[cfg(test)]
mod tests;
