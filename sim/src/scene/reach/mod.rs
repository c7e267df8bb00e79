//! The `reach` scene: a serial arm read from a URDF brings its tool to a random
//! target while keeping every link out of random keep-out boxes placed between
//! the tool and the target.
//!
//! The arm is a rapier3d multibody (reduced coordinates, root fixed) driven by
//! stiff joint-velocity motors; the action is the vector of joint velocity
//! commands, held for one control period. The keep-out boxes are virtual zones:
//! sensor colliders that exert no force, checked by the guardrails alone.
//!
//! Each episode draws, from its seed, a start and a target configuration (the
//! target point is the tool position of the latter, so it is reachable) and
//! 1–2 boxes on the arc the tool would sweep about the base axis from start to
//! target, so the natural motion runs into them. A draw is kept only if both
//! configurations are `clearance` away from every box and a witness path (the
//! straight joint-space path, or one through a configuration near its
//! midpoint) keeps `path_clearance` from the boxes and the floor: every
//! episode is solvable by a modest detour. The episode's goal observation
//! (for latent goals) is the target configuration at rest.

use super::{EpisodeSetup, Scene};
use crate::SimError;
use rapier3d::glamx::EulerRot;
use rapier3d::na::Vector3;
use rapier3d::prelude::{
    ColliderBuilder, JointAxis, MultibodyJointHandle, PhysicsWorld, Pose, RigidBodyBuilder,
    RigidBodyHandle, Rotation, Vector,
};
use rapier3d_urdf::{UrdfLoaderOptions, UrdfMultibodyOptions, UrdfRobot, urdf_rs};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use telic::limits::num;
use telic::model::SerialArm;
use telic::objective::geometry::CompiledShape;
use telic::objective::{GuardrailSpec, Shape};
use telic::rng::Rng;
use telic::{Real, WorldModel};

type V3 = Vector3<Real>;

/// Most keep-out boxes per episode ([`ReachConfig::keep_out_boxes`]).
pub const MAX_KEEP_OUT_BOXES: usize = 32;
/// Most Gauss–Seidel passes per solver iteration ([`ReachConfig::pgs_iterations`]).
pub const MAX_PGS_ITERATIONS: usize = 100;

/// Settings of the `reach` scene. Every field has a default (shown in its doc).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReachConfig {
    /// The arm's URDF, relative to the scenario's folder (default: the shipped
    /// 3-joint arm, `assets/arm3.urdf` of this crate).
    pub urdf: Option<PathBuf>,
    /// The link whose frame must reach the target (default `"tool"`).
    pub tip_link: String,
    /// Control period and time step of the analytic model, in seconds (default 0.05).
    pub control_dt: Real,
    /// Physics time step in seconds; `control_dt` must be a whole multiple of
    /// it (default 0.005).
    pub physics_dt: Real,
    /// Bound on every joint velocity command in rad/s, on top of the URDF
    /// velocity limits (default 1.2).
    pub max_joint_speed: Option<Real>,
    /// Time constant of the analytic model's joint velocity response, in
    /// seconds (default 0: the stiff motors reach a command within a physics step).
    pub model_tau: Real,
    /// Damping gain of the joint velocity motors; larger tracks commands more
    /// stiffly (default 1e6).
    pub motor_gain: Real,
    /// Gauss–Seidel passes per solver iteration (rapier's
    /// `num_internal_pgs_iterations`); the coupled joint motors need a few to
    /// hold their commands against gravity (default 4; at most
    /// [`MAX_PGS_ITERATIONS`]).
    pub pgs_iterations: usize,
    /// Gravity along −z in m/s² (default 9.81).
    pub gravity: Real,
    /// Largest number of keep-out boxes per episode; each episode draws
    /// between 1 and this many (default 2; 0 disables them; at most
    /// [`MAX_KEEP_OUT_BOXES`]).
    pub keep_out_boxes: usize,
    /// Safety buffer of the keep-out guardrails the planner keeps, in metres (default 0.02).
    pub keep_out_margin: Real,
    /// Range of the boxes' half side lengths in metres (default [0.04, 0.09]).
    pub box_half_extent: [Real; 2],
    /// Give boxes a random yaw instead of keeping them axis-aligned (default true).
    pub yawed_boxes: bool,
    /// Radius of a capsule around every link segment of the arm used when placing
    /// boxes, a bound on the arm's own bodies (default 0.05).
    pub arm_radius: Real,
    /// Smallest gap between the arm (capsules of `arm_radius`) and any box at the
    /// start and at the target configuration, in metres (default 0.08).
    pub clearance: Real,
    /// Smallest gap kept from the boxes and the floor along the witness path
    /// that proves an episode solvable, in metres (default 0.04).
    pub path_clearance: Real,
    /// The witness path goes straight in joint space from the start to the
    /// target, or through one configuration within this many radians of their
    /// midpoint on every joint: episodes need at most such a detour (default 0.8).
    pub detour: Real,
    /// Sampled configurations keep this far (radians) inside the joint limits (default 0.3).
    pub limit_inset: Real,
    /// Ranges `[lo, hi]` (radians) the start and target configurations are drawn
    /// from, one per movable joint, intersected with the inset joint limits
    /// (default empty: the inset joint limits). Any other number of ranges
    /// than the arm's movable joints is an error.
    pub sample_ranges: Vec<[Real; 2]>,
    /// Largest change of any joint between the start and the target
    /// configuration, in radians (default 1.6). With a base yaw joint, a larger
    /// turn makes reaching back over the top look shorter to a planner than
    /// turning, a local minimum at the shoulder limit.
    pub max_joint_travel: Real,
    /// Lowest height of every moving link frame in sampled configurations, in
    /// metres (default 0.12).
    pub min_height: Real,
    /// Highest tool position in sampled configurations, in metres (default
    /// 0.6). High targets tempt a planner to reach back over the top of the
    /// arm, a local minimum at the shoulder limit.
    pub max_height: Real,
    /// Smallest horizontal distance of the tool from the base axis in sampled
    /// configurations, in metres (default 0.25).
    pub min_radius: Real,
    /// Smallest distance between the start tool position and the target, in metres (default 0.3).
    pub min_goal_distance: Real,
    /// Success: the tool is within this distance of the target, in metres (default 0.02).
    pub success_radius: Real,
}

impl Default for ReachConfig {
    fn default() -> Self {
        Self {
            urdf: None,
            tip_link: "tool".into(),
            control_dt: 0.05,
            physics_dt: 0.005,
            max_joint_speed: Some(1.2),
            model_tau: 0.0,
            motor_gain: 1.0e6,
            pgs_iterations: 4,
            gravity: 9.81,
            keep_out_boxes: 2,
            keep_out_margin: 0.02,
            box_half_extent: [0.04, 0.09],
            yawed_boxes: true,
            arm_radius: 0.05,
            clearance: 0.08,
            path_clearance: 0.04,
            detour: 0.8,
            limit_inset: 0.3,
            sample_ranges: Vec::new(),
            max_joint_travel: 1.6,
            min_height: 0.12,
            max_height: 0.6,
            min_radius: 0.25,
            min_goal_distance: 0.3,
            success_radius: 0.02,
        }
    }
}

impl ReachConfig {
    /// The URDF path, resolved against `base_dir`.
    #[must_use]
    pub fn urdf_path(&self, base_dir: &Path) -> PathBuf {
        match &self.urdf {
            Some(p) if p.is_absolute() => p.clone(),
            Some(p) => base_dir.join(p),
            None => crate::scenario::sim_dir().join("assets/arm3.urdf"),
        }
    }

    /// Checks the counts against their limits ([`MAX_KEEP_OUT_BOXES`],
    /// [`MAX_PGS_ITERATIONS`]) and the physical settings against
    /// [`MAX_SCENE_VALUE`](crate::limits::MAX_SCENE_VALUE);
    /// [`ReachConfig::validate`] does too.
    pub fn check_limits(&self) -> Result<(), SimError> {
        let origin = "scene 'reach'";
        let [lo, hi] = self.box_half_extent;
        let values = [
            ("control_dt", self.control_dt),
            ("physics_dt", self.physics_dt),
            ("max_joint_speed", self.max_joint_speed.unwrap_or(0.0)),
            ("model_tau", self.model_tau),
            ("motor_gain", self.motor_gain),
            ("gravity", self.gravity),
            ("keep_out_margin", self.keep_out_margin),
            ("box_half_extent[0]", lo),
            ("box_half_extent[1]", hi),
            ("arm_radius", self.arm_radius),
            ("clearance", self.clearance),
            ("path_clearance", self.path_clearance),
            ("detour", self.detour),
            ("limit_inset", self.limit_inset),
            ("max_joint_travel", self.max_joint_travel),
            ("min_height", self.min_height),
            ("max_height", self.max_height),
            ("min_radius", self.min_radius),
            ("min_goal_distance", self.min_goal_distance),
            ("success_radius", self.success_radius),
        ];
        crate::scene::check_magnitudes("reach", &values)?;
        crate::limits::check(
            origin,
            "scene.keep_out_boxes",
            self.keep_out_boxes,
            MAX_KEEP_OUT_BOXES,
        )?;
        crate::limits::check(
            origin,
            "scene.pgs_iterations",
            self.pgs_iterations,
            MAX_PGS_ITERATIONS,
        )
    }

    /// Checks every value; the message names the offending field.
    pub fn validate(&self) -> Result<(), String> {
        self.check_limits().map_err(|e| e.to_string())?;
        let positive = |name: &str, v: Real| {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(format!("scene.{name} must be positive, got {}", num(v)))
            }
        };
        let non_negative = |name: &str, v: Real| {
            if v.is_finite() && v >= 0.0 {
                Ok(())
            } else {
                Err(format!("scene.{name} must be >= 0, got {}", num(v)))
            }
        };
        positive("control_dt", self.control_dt)?;
        positive("physics_dt", self.physics_dt)?;
        let ratio = self.control_dt / self.physics_dt;
        if !(ratio.is_finite() && ratio >= 0.5) || (ratio - ratio.round()).abs() > 1e-6 * ratio {
            return Err(format!(
                "scene.control_dt ({}) must be a whole multiple of scene.physics_dt ({})",
                num(self.control_dt),
                num(self.physics_dt)
            ));
        }
        if let Some(s) = self.max_joint_speed {
            positive("max_joint_speed", s)?;
        }
        non_negative("model_tau", self.model_tau)?;
        positive("motor_gain", self.motor_gain)?;
        if self.pgs_iterations == 0 {
            return Err("scene.pgs_iterations must be positive, got 0".into());
        }
        non_negative("gravity", self.gravity)?;
        non_negative("keep_out_margin", self.keep_out_margin)?;
        let [lo, hi] = self.box_half_extent;
        positive("box_half_extent[0]", lo)?;
        if !(hi.is_finite() && hi >= lo) {
            return Err(format!(
                "scene.box_half_extent must be [min, max] with min <= max, got [{}, {}]",
                num(lo),
                num(hi)
            ));
        }
        non_negative("arm_radius", self.arm_radius)?;
        non_negative("clearance", self.clearance)?;
        non_negative("path_clearance", self.path_clearance)?;
        non_negative("detour", self.detour)?;
        non_negative("limit_inset", self.limit_inset)?;
        if let Some([lo, hi]) = self
            .sample_ranges
            .iter()
            .find(|[lo, hi]| !(lo.is_finite() && hi.is_finite() && lo <= hi))
        {
            return Err(format!(
                "scene.sample_ranges: [{}, {}] is not a range with lo <= hi",
                num(*lo),
                num(*hi)
            ));
        }
        positive("max_joint_travel", self.max_joint_travel)?;
        if !self.min_height.is_finite() {
            return Err(format!(
                "scene.min_height must be finite, got {}",
                num(self.min_height)
            ));
        }
        if !(self.max_height.is_finite() && self.max_height > self.min_height) {
            return Err(format!(
                "scene.max_height must exceed scene.min_height, got {}",
                num(self.max_height)
            ));
        }
        non_negative("min_radius", self.min_radius)?;
        non_negative("min_goal_distance", self.min_goal_distance)?;
        positive("success_radius", self.success_radius)?;
        Ok(())
    }
}

/// A link frame on the arm's chain, as the physics knows it.
#[derive(Clone, Copy, Debug)]
struct ChainLink {
    /// The rigid body carrying the frame, unless the loader merged the link away.
    body: Option<RigidBodyHandle>,
    /// The URDF joint origin placing this frame in its parent's (identity for the root).
    origin: Pose,
    /// The movable joint turning this frame: its index and unit axis.
    joint: Option<(usize, Vector)>,
}

/// A keep-out box of the current episode.
#[derive(Clone, Debug)]
struct KeepOutBox {
    center: [Real; 3],
    half: [Real; 3],
    yaw: Real,
}

impl KeepOutBox {
    fn shape(&self) -> Shape {
        Shape::Box {
            center: self.center,
            half_extents: self.half,
            rpy: [0.0, 0.0, self.yaw],
        }
    }
}

/// The `reach` scene.
pub struct Reach {
    config: ReachConfig,
    urdf_path: PathBuf,
    robot: urdf_rs::Robot,
    template: UrdfRobot,
    /// Analytic arm used for names, limits and sampling (forward kinematics).
    arm: SerialArm,
    names: Vec<String>,
    /// For each movable joint (in the arm's order): where to find its chain
    /// link in the loaded robot, and the URDF effort limit.
    joint_links: Vec<(usize, Real)>,
    /// For each chain link: index into the loaded robot's links, or `None` if merged.
    link_bodies: Vec<Option<usize>>,
    world: PhysicsWorld,
    joints: Vec<Option<MultibodyJointHandle>>,
    chain: Vec<ChainLink>,
    boxes: Vec<KeepOutBox>,
    goal: [Real; 3],
    time: Real,
    steps: u64,
}

impl std::fmt::Debug for Reach {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reach")
            .field("urdf", &self.urdf_path)
            .field("joints", &self.arm.joint_names())
            .field("goal", &self.goal)
            .field("boxes", &self.boxes)
            .field("time", &self.time)
            .finish_non_exhaustive()
    }
}

fn scene_err(message: String) -> SimError {
    SimError::Scene {
        scene: "reach".into(),
        message,
    }
}

fn urdf_pose(o: &urdf_rs::Pose) -> Pose {
    Pose::from_parts(
        Vector::new(o.xyz[0] as f32, o.xyz[1] as f32, o.xyz[2] as f32),
        Rotation::from_euler(
            EulerRot::ZYX,
            o.rpy[2] as f32,
            o.rpy[1] as f32,
            o.rpy[0] as f32,
        ),
    )
}

impl Reach {
    /// Loads the arm from `config.urdf` (resolved against `base_dir`) and
    /// checks the configuration. The world is built by [`Scene::reset`].
    pub fn new(config: &ReachConfig, base_dir: &Path) -> Result<Self, SimError> {
        config.check_limits()?;
        config.validate().map_err(scene_err)?;
        let urdf_path = config.urdf_path(base_dir);
        let urdf_err = |message: String| SimError::Urdf {
            path: urdf_path.display().to_string(),
            message,
        };
        let text = std::fs::read_to_string(&urdf_path).map_err(|e| urdf_err(e.to_string()))?;
        let robot =
            urdf_rs::read_from_string(&text).map_err(|e| urdf_err(format!("malformed: {e}")))?;
        // Building the analytic arm first also checks that the URDF is a tree
        // whose joints name existing links, which the rapier loader assumes.
        let arm = SerialArm::from_robot(
            &robot,
            &config.tip_link,
            config.control_dt,
            config.max_joint_speed,
            config.model_tau,
        )
        .map_err(|e| urdf_err(e.to_string()))?;
        let joints = arm.num_joints();
        if !config.sample_ranges.is_empty() && config.sample_ranges.len() != joints {
            return Err(scene_err(format!(
                "scene.sample_ranges has {} ranges, the arm in {} has {joints} movable joints \
                 (one range per joint, or none)",
                config.sample_ranges.len(),
                urdf_path.display()
            )));
        }
        let mesh_dir = urdf_path.parent().unwrap_or(Path::new("."));
        let options = UrdfLoaderOptions {
            make_roots_fixed: true,
            rigid_body_blueprint: RigidBodyBuilder::dynamic().can_sleep(false),
            ..Default::default()
        };
        let template = UrdfRobot::from_robot(&robot, options, mesh_dir);

        let urdf_link = |name: &str| robot.links.iter().position(|l| l.name == name);
        let link_bodies: Vec<Option<usize>> = arm
            .link_names()
            .iter()
            .map(|name| {
                let li = urdf_link(name)?;
                template.links.iter().position(|l| l.urdf_link_index == li)
            })
            .collect();
        let mut joint_links = Vec::new();
        for name in arm.joint_names() {
            let Some(ji) = robot.joints.iter().position(|j| &j.name == name) else {
                return Err(urdf_err(format!("joint '{name}' vanished")));
            };
            let Some(k) = template
                .joints
                .iter()
                .position(|j| j.source_urdf_joint_index() == ji)
            else {
                return Err(urdf_err(format!(
                    "the physics loader dropped joint '{name}'"
                )));
            };
            let effort = robot.joints[ji].limit.effort;
            joint_links.push((k, if effort > 0.0 { effort } else { Real::MAX }));
        }
        let mut names = arm.spec().readouts.clone();
        names.shrink_to_fit();
        let mut scene = Self {
            config: config.clone(),
            urdf_path,
            robot,
            template,
            arm,
            names,
            joint_links,
            link_bodies,
            world: PhysicsWorld::new(),
            joints: Vec::new(),
            chain: Vec::new(),
            boxes: Vec::new(),
            goal: [0.0; 3],
            time: 0.0,
            steps: 0,
        };
        scene.build_world(&vec![0.0; scene.arm.num_joints()], &[])?;
        Ok(scene)
    }

    /// The keep-out boxes of the current episode as guardrail shapes.
    #[must_use]
    pub fn keep_out_shapes(&self) -> Vec<Shape> {
        self.boxes.iter().map(KeepOutBox::shape).collect()
    }

    /// The target of the current episode.
    #[must_use]
    pub fn goal(&self) -> [Real; 3] {
        self.goal
    }

    /// The analytic arm this scene simulates.
    #[must_use]
    pub fn arm(&self) -> &SerialArm {
        &self.arm
    }

    /// Rebuilds the physics world with the arm at joint positions `q` and the given boxes.
    fn build_world(&mut self, q: &[Real], boxes: &[KeepOutBox]) -> Result<(), SimError> {
        let mut world = PhysicsWorld::new();
        world.gravity = Vector::new(0.0, 0.0, -self.config.gravity as f32);
        world.integration_parameters.dt = self.config.physics_dt as f32;
        world.integration_parameters.num_internal_pgs_iterations = self.config.pgs_iterations;
        let handles = self.template.clone().insert_using_multibody_joints(
            &mut world.bodies,
            &mut world.colliders,
            &mut world.multibody_joints,
            UrdfMultibodyOptions::DISABLE_SELF_CONTACTS,
        );
        let mut joints = Vec::with_capacity(self.joint_links.len());
        for (j, &(k, effort)) in self.joint_links.iter().enumerate() {
            let handle = handles.joints.get(k).and_then(|h| h.joint);
            let Some((mb, link_id)) = handle.and_then(|h| world.multibody_joints.get_mut(h)) else {
                return Err(scene_err(format!(
                    "joint '{}' is not part of the arm's multibody",
                    self.arm.joint_names().get(j).map_or("?", String::as_str)
                )));
            };
            let Some(link) = mb.link_mut(link_id) else {
                return Err(scene_err("multibody link out of range".into()));
            };
            link.joint
                .data
                .set_motor_velocity(JointAxis::AngX, 0.0, self.config.motor_gain as f32)
                .set_motor_max_force(JointAxis::AngX, effort as f32);
            joints.push(handle);
        }
        // Place the arm at `q`: every joint starts at 0 after insertion.
        let link_ids: Vec<Option<usize>> = joints
            .iter()
            .map(|h| {
                h.and_then(|h| world.multibody_joints.get(h))
                    .map(|(_, l)| l)
            })
            .collect();
        if let Some(Some(h)) = joints.first()
            && let Some((mb, _)) = world.multibody_joints.get_mut(*h)
        {
            let mut disp = vec![0.0f32; mb.ndofs()];
            for (j, link_id) in link_ids.iter().enumerate() {
                if let Some(link) = link_id.and_then(|l| mb.link(l))
                    && let Some(d) = disp.get_mut(link.assembly_id())
                {
                    *d = q.get(j).copied().unwrap_or(0.0) as f32;
                }
            }
            mb.apply_displacements(&disp);
            mb.forward_kinematics(&world.bodies, true);
            mb.update_rigid_bodies(&mut world.bodies, true);
        }
        for b in boxes {
            let pose = Pose::from_parts(
                Vector::new(b.center[0] as f32, b.center[1] as f32, b.center[2] as f32),
                Rotation::from_rotation_z(b.yaw as f32),
            );
            let collider =
                ColliderBuilder::cuboid(b.half[0] as f32, b.half[1] as f32, b.half[2] as f32)
                    .sensor(true)
                    .position(pose);
            world.colliders.insert(collider);
        }
        let mut chain = Vec::with_capacity(self.link_bodies.len());
        let arm_links = self.arm.link_names();
        for (k, lb) in self.link_bodies.iter().enumerate() {
            let body = lb.and_then(|i| handles.links.get(i)).map(|l| l.body);
            let (origin, joint) = match k.checked_sub(1).and_then(|p| arm_links.get(p)) {
                None => (Pose::IDENTITY, None),
                Some(parent) => {
                    let child = arm_links.get(k).map_or("", String::as_str);
                    let uj = self
                        .robot
                        .joints
                        .iter()
                        .find(|j| &j.parent.link == parent && j.child.link == child);
                    match uj {
                        None => (Pose::IDENTITY, None),
                        Some(uj) => {
                            let movable = self.arm.joint_names().iter().position(|n| n == &uj.name);
                            let a = &uj.axis.xyz;
                            let axis = Vector::new(a[0] as f32, a[1] as f32, a[2] as f32)
                                .normalize_or_zero();
                            (urdf_pose(&uj.origin), movable.map(|m| (m, axis)))
                        }
                    }
                }
            };
            chain.push(ChainLink {
                body,
                origin,
                joint,
            });
        }
        self.world = world;
        self.joints = joints;
        self.chain = chain;
        self.time = 0.0;
        self.steps = 0;
        Ok(())
    }

    /// Joint position and velocity of movable joint `j` in the physics state
    /// (NaN when the joint cannot be found, so a validator flags it).
    fn joint_state(&self, j: usize) -> (Real, Real) {
        let found = self
            .joints
            .get(j)
            .copied()
            .flatten()
            .and_then(|h| self.world.multibody_joints.get(h))
            .and_then(|(mb, link_id)| {
                let link = mb.link(link_id)?;
                let q = link.joint().coords()[3];
                let qd = mb.joint_velocity(link).get(0).copied()?;
                Some((Real::from(q), Real::from(qd)))
            });
        found.unwrap_or((Real::NAN, Real::NAN))
    }

    /// Calls `f(k, position)` for every chain link frame, root first, from the
    /// physics state: the link's rigid-body pose, or for a link the loader
    /// merged away, its parent's pose composed with the URDF joint transform.
    fn for_each_link_position(&self, mut f: impl FnMut(usize, [Real; 3])) {
        let mut pose = Pose::IDENTITY;
        for (k, link) in self.chain.iter().enumerate() {
            pose = match link.body.and_then(|h| self.world.bodies.get(h)) {
                Some(rb) => *rb.position(),
                None => {
                    let turn = match link.joint {
                        Some((j, axis)) => {
                            Rotation::from_axis_angle(axis, self.joint_state(j).0 as f32)
                        }
                        None => Rotation::IDENTITY,
                    };
                    pose * link.origin * Pose::from_rotation(turn)
                }
            };
            let t = pose.translation;
            f(k, [Real::from(t.x), Real::from(t.y), Real::from(t.z)]);
        }
    }

    /// Distance of the tool from the goal (NaN before the first reset).
    fn tip_distance(&self) -> Real {
        let p = self.tip_position();
        let d2: Real = p
            .iter()
            .zip(&self.goal)
            .map(|(a, b)| (a - b) * (a - b))
            .sum();
        d2.sqrt()
    }

    fn tip_position(&self) -> [Real; 3] {
        let mut tip = [Real::NAN; 3];
        let last = self.chain.len().saturating_sub(1);
        self.for_each_link_position(|k, p| {
            if k == last {
                tip = p;
            }
        });
        tip
    }
}

/// The point a fraction `t` of the way from `a` to `b` in cylindrical
/// coordinates about the z axis (radius, shortest bearing, height).
fn arc_point(a: [Real; 3], b: [Real; 3], t: Real) -> [Real; 3] {
    let (ra, rb) = (a[0].hypot(a[1]), b[0].hypot(b[1]));
    let (ta, tb) = (a[1].atan2(a[0]), b[1].atan2(b[0]));
    let tau = std::f64::consts::TAU;
    let turn = (tb - ta + std::f64::consts::PI).rem_euclid(tau) - std::f64::consts::PI;
    let (r, th) = (ra + t * (rb - ra), ta + t * turn);
    [r * th.cos(), r * th.sin(), a[2] + t * (b[2] - a[2])]
}

/// Geometry used to place boxes and prove an episode solvable.
struct Sampler<'a> {
    arm: &'a mut SerialArm,
    config: &'a ReachConfig,
    points: Vec<[Real; 3]>,
    /// Link positions at `q = 0`: frames that stay there whatever `q` (the
    /// base) are exempt from `min_height`.
    rest: Vec<[Real; 3]>,
}

impl Sampler<'_> {
    /// Link frame positions at `q`.
    fn fk(&mut self, q: &[Real]) -> bool {
        self.arm.link_positions(q, &mut self.points).is_ok()
    }

    /// A random configuration inside the inset limits whose links are high
    /// enough and whose tool is away from the base axis.
    fn config(&mut self, rng: &mut Rng) -> Option<Vec<Real>> {
        let inset = self.config.limit_inset;
        let ranges: Vec<(Real, Real)> = self
            .arm
            .joint_limits()
            .iter()
            .enumerate()
            .map(|(j, l)| {
                let pi = std::f64::consts::PI;
                let (mut lo, mut hi) = (
                    if l.lower.is_finite() {
                        l.lower + inset
                    } else {
                        -pi
                    },
                    if l.upper.is_finite() {
                        l.upper - inset
                    } else {
                        pi
                    },
                );
                if let Some([a, b]) = self.config.sample_ranges.get(j) {
                    (lo, hi) = (lo.max(*a), hi.min(*b));
                }
                if hi >= lo {
                    (lo, hi)
                } else {
                    (0.5 * (lo + hi), 0.5 * (lo + hi))
                }
            })
            .collect();
        for _ in 0..200 {
            let q: Vec<Real> = ranges.iter().map(|&(lo, hi)| rng.range(lo, hi)).collect();
            if !self.fk(&q) {
                return None;
            }
            let high = self
                .points
                .iter()
                .zip(&self.rest)
                .all(|(p, r)| p[2] >= self.config.min_height || p == r);
            let tip = self.points.last().copied().unwrap_or([0.0; 3]);
            let radius = (tip[0] * tip[0] + tip[1] * tip[1]).sqrt();
            if high && radius >= self.config.min_radius && tip[2] <= self.config.max_height {
                return Some(q);
            }
        }
        None
    }

    /// Smallest gap between the arm's link capsules at `q` and the shapes.
    fn gap(&mut self, q: &[Real], shapes: &[CompiledShape]) -> Real {
        if !self.fk(q) {
            return Real::NEG_INFINITY;
        }
        let mut gap = Real::INFINITY;
        for w in self.points.windows(2) {
            let (a, b) = (V3::from(w[0]), V3::from(w[1]));
            for s in shapes {
                gap = gap.min(s.segment_distance(&a, &b) - self.config.arm_radius);
            }
        }
        // The floor (z = 0), for the frames that move.
        for (p, r) in self.points.iter().zip(&self.rest) {
            if p != r {
                gap = gap.min(p[2] - self.config.arm_radius);
            }
        }
        gap
    }

    /// A random configuration within `detour` of the midpoint of `a` and `b`
    /// on every joint, inside the inset joint limits.
    fn near_midpoint(&self, a: &[Real], b: &[Real], rng: &mut Rng) -> Vec<Real> {
        let (d, inset) = (self.config.detour, self.config.limit_inset);
        a.iter()
            .zip(b)
            .zip(self.arm.joint_limits())
            .map(|((x, y), l)| {
                let m = 0.5 * (x + y) + rng.range(-d, d);
                let (lo, hi) = (l.lower + inset, l.upper - inset);
                if lo <= hi { m.clamp(lo, hi) } else { m }
            })
            .collect()
    }

    /// Smallest gap along the straight joint-space path from `a` to `b`.
    fn path_gap(&mut self, a: &[Real], b: &[Real], shapes: &[CompiledShape]) -> Real {
        let span = a
            .iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, Real::max);
        let steps = ((span / 0.02).ceil() as usize).max(1);
        let mut q = a.to_vec();
        let mut gap = Real::INFINITY;
        for i in 0..=steps {
            let t = i as Real / steps as Real;
            for ((x, p), r) in q.iter_mut().zip(a).zip(b) {
                *x = p + t * (r - p);
            }
            gap = gap.min(self.gap(&q, shapes));
        }
        gap
    }
}

impl Scene for Reach {
    fn name(&self) -> &str {
        "reach"
    }

    fn reset(&mut self, seed: u64) -> Result<EpisodeSetup, SimError> {
        let mut rng = Rng::new(seed);
        let cfg = self.config.clone();
        let mut arm = self.arm.clone();
        let mut rest = vec![[0.0; 3]; arm.link_names().len()];
        arm.link_positions(&vec![0.0; arm.num_joints()], &mut rest)?;
        let mut s = Sampler {
            points: rest.clone(),
            rest,
            arm: &mut arm,
            config: &cfg,
        };
        let mut chosen = None;
        for _ in 0..500 {
            let (Some(q0), Some(q1)) = (s.config(&mut rng), s.config(&mut rng)) else {
                continue;
            };
            s.fk(&q0);
            let start = s.points.last().copied().unwrap_or([0.0; 3]);
            s.fk(&q1);
            let goal = s.points.last().copied().unwrap_or([0.0; 3]);
            let (vs, vg) = (V3::from(start), V3::from(goal));
            let travel = q0
                .iter()
                .zip(&q1)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, Real::max);
            if (vg - vs).norm() < cfg.min_goal_distance || travel > cfg.max_joint_travel {
                continue;
            }
            let count = if cfg.keep_out_boxes == 0 {
                0
            } else {
                1 + rng.below(cfg.keep_out_boxes)
            };
            let mut boxes = Vec::with_capacity(count);
            for _ in 0..count {
                // On the arc the tool sweeps about the base's vertical axis from
                // the start to the target (cylindrical interpolation), jittered:
                // in the way of the natural motion, away from both ends.
                let t = rng.range(0.3, 0.7);
                let c = arc_point(start, goal, t);
                let [lo, hi] = cfg.box_half_extent;
                let b = KeepOutBox {
                    center: [
                        c[0] + rng.range(-0.03, 0.03),
                        c[1] + rng.range(-0.03, 0.03),
                        c[2] + rng.range(-0.03, 0.03),
                    ],
                    half: [rng.range(lo, hi), rng.range(lo, hi), rng.range(lo, hi)],
                    yaw: if cfg.yawed_boxes {
                        rng.range(-std::f64::consts::PI, std::f64::consts::PI)
                    } else {
                        0.0
                    },
                };
                boxes.push(b);
            }
            let shapes: Vec<CompiledShape> = boxes.iter().map(|b| b.shape().compile()).collect();
            if s.gap(&q0, &shapes) < cfg.clearance || s.gap(&q1, &shapes) < cfg.clearance {
                continue;
            }
            // A witness that the episode is solvable by a small detour: the
            // straight joint-space path, or one through a configuration near
            // its midpoint, keeps `path_clearance` from every box and the floor.
            if s.path_gap(&q0, &q1, &shapes) < cfg.path_clearance {
                let mut found = false;
                for _ in 0..40 {
                    let via = s.near_midpoint(&q0, &q1, &mut rng);
                    if s.path_gap(&q0, &via, &shapes) >= cfg.path_clearance
                        && s.path_gap(&via, &q1, &shapes) >= cfg.path_clearance
                    {
                        found = true;
                        break;
                    }
                }
                if !found {
                    continue;
                }
            }
            chosen = Some((q0, q1, goal, boxes));
            break;
        }
        let Some((q0, q1, goal, boxes)) = chosen else {
            return Err(scene_err(format!(
                "seed {seed}: found no start, target and boxes satisfying the clearances"
            )));
        };
        self.build_world(&q0, &boxes)?;
        self.goal = goal;
        let guardrails = boxes
            .iter()
            .enumerate()
            .map(|(i, b)| GuardrailSpec::KeepOut {
                name: format!("keep_out_{i}"),
                margin: cfg.keep_out_margin,
                shape: b.shape(),
                bodies: Vec::new(),
            })
            .collect();
        self.boxes = boxes;
        // At rest at the target configuration, in the layout of `observe`.
        let mut goal_observation = q1;
        goal_observation.resize(2 * self.arm.num_joints(), 0.0);
        Ok(EpisodeSetup {
            targets: vec![("goal".into(), goal.to_vec())],
            guardrails,
            goal_observation: Some(goal_observation),
        })
    }

    fn observe(&self, out: &mut [Real]) {
        let n = self.arm.num_joints();
        for j in 0..n {
            let (q, qd) = self.joint_state(j);
            if let Some(o) = out.get_mut(j) {
                *o = q;
            }
            if let Some(o) = out.get_mut(n + j) {
                *o = qd;
            }
        }
    }

    fn truth_readouts(&self) -> &[String] {
        &self.names
    }

    fn truth(&self, out: &mut [Real]) {
        let n = self.arm.num_joints();
        let head = (2 * n).min(out.len());
        self.observe(&mut out[..head]);
        let base = 2 * n;
        self.for_each_link_position(|k, p| {
            for (i, v) in p.iter().enumerate() {
                if let Some(o) = out.get_mut(base + 3 * k + i) {
                    *o = *v;
                }
            }
        });
    }

    fn apply(&mut self, action: &[Real]) {
        let gain = self.config.motor_gain as f32;
        for (j, handle) in self.joints.iter().enumerate() {
            let v = action.get(j).copied().unwrap_or(0.0);
            let v = if v.is_finite() { v as f32 } else { 0.0 };
            if let Some((mb, link_id)) = handle.and_then(|h| self.world.multibody_joints.get_mut(h))
                && let Some(link) = mb.link_mut(link_id)
            {
                link.joint.data.set_motor_velocity(JointAxis::AngX, v, gain);
            }
        }
    }

    fn step(&mut self) {
        self.world.step();
        self.steps += 1;
        self.time = self.steps as Real * self.config.physics_dt;
    }

    fn physics_dt(&self) -> Real {
        self.config.physics_dt
    }

    fn time(&self) -> Real {
        self.time
    }

    fn success(&self) -> bool {
        self.tip_distance() <= self.config.success_radius
    }

    fn visuals(&self, out: &mut Vec<(String, Shape)>) {
        let mut prev: Option<[Real; 3]> = None;
        let r = self.config.arm_radius.max(0.01);
        self.for_each_link_position(|k, p| {
            if let Some(a) = prev {
                out.push((format!("link{k}"), Shape::Capsule { a, b: p, radius: r }));
            }
            prev = Some(p);
        });
    }

    fn scenery(&self, out: &mut Vec<(String, Shape)>) {
        out.push((
            "goal".into(),
            Shape::Sphere {
                center: self.goal,
                radius: self.config.success_radius,
            },
        ));
    }

    fn goal_error(&self) -> Vec<(&'static str, Real)> {
        let d = self.tip_distance();
        if d.is_finite() {
            vec![("distance", d)]
        } else {
            Vec::new()
        }
    }

    fn analytic_model(&self) -> Result<Box<dyn WorldModel>, SimError> {
        let arm = SerialArm::from_robot(
            &self.robot,
            &self.config.tip_link,
            self.config.control_dt,
            self.config.max_joint_speed,
            self.config.model_tau,
        )?;
        Ok(Box::new(arm))
    }
}

#[cfg(test)]
mod tests;
