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
//! (for latent goals) is the target configuration at rest, and its goal
//! image ([`World::render_goal`]) the arm drawn in that configuration. The
//! robot's own state ([`World::proprio`]) is the whole observation: joint
//! angles and velocities.

use super::{EpisodeSetup, World};
use crate::SimError;
pub use config::{MAX_KEEP_OUT_BOXES, MAX_PGS_ITERATIONS, ReachConfig};
use placement::Placement;
use rapier3d::glamx::EulerRot;
use rapier3d::na::Vector3;
use rapier3d::prelude::{
    ColliderBuilder, JointAxis, MultibodyJointHandle, PhysicsWorld, Pose, RigidBodyBuilder,
    RigidBodyHandle, Rotation, Vector,
};
use rapier3d_urdf::{UrdfLoaderOptions, UrdfMultibodyOptions, UrdfRobot, urdf_rs};
use std::path::{Path, PathBuf};
use telic::model::SerialArm;
use telic::objective::geometry::CompiledShape;
use telic::objective::{GuardrailSpec, Shape};
use telic::rng::Rng;
use telic::{Real, WorldModel};

type V3 = Vector3<Real>;

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
    /// Link frame positions of the target configuration (chain order),
    /// for the goal image; empty before the first reset.
    goal_links: Vec<[Real; 3]>,
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

/// Checks the numbers of a parsed URDF that the physics takes as they
/// are: poses, axes, masses, inertias and joint limits finite and within
/// [`MAX_SCENE_VALUE`](crate::limits::MAX_SCENE_VALUE) (rapier computes in
/// `f32`: an origin at 1e308 m becomes infinite and its contact queries
/// panic), and shapes of positive size (rapier's URDF loader asserts on a
/// negative cylinder radius). Found by `tests/tests/fuzz_inputs.rs`.
fn check_urdf_numbers(robot: &urdf_rs::Robot) -> Result<(), String> {
    let max = crate::limits::MAX_SCENE_VALUE;
    let finite = |what: &str, name: &str, xs: &[f64]| -> Result<(), String> {
        match xs.iter().find(|x| !(x.is_finite() && x.abs() <= max)) {
            Some(x) => Err(format!(
                "{what} of `{name}` is not a finite number of magnitude at most {max:e} ({})",
                telic::limits::num(*x)
            )),
            None => Ok(()),
        }
    };
    let pose = |what: &str, name: &str, p: &urdf_rs::Pose| {
        finite(
            what,
            name,
            &[p.xyz[0], p.xyz[1], p.xyz[2], p.rpy[0], p.rpy[1], p.rpy[2]],
        )
    };
    for link in &robot.links {
        let n = &link.name;
        let i = &link.inertial;
        pose("the inertial origin", n, &i.origin)?;
        let m = &i.inertia;
        finite(
            "the inertia",
            n,
            &[m.ixx, m.ixy, m.ixz, m.iyy, m.iyz, m.izz],
        )?;
        if !(i.mass.value.is_finite() && i.mass.value >= 0.0) {
            return Err(format!(
                "the mass of `{n}` must be finite and ≥ 0, got {}",
                telic::limits::num(i.mass.value)
            ));
        }
        let shapes = link.visual.iter().map(|v| (&v.origin, &v.geometry));
        let shapes = shapes.chain(link.collision.iter().map(|c| (&c.origin, &c.geometry)));
        for (origin, geometry) in shapes {
            pose("a shape's origin", n, origin)?;
            let sizes: Vec<f64> = match geometry {
                urdf_rs::Geometry::Box { size } => size.to_vec(),
                urdf_rs::Geometry::Cylinder { radius, length }
                | urdf_rs::Geometry::Capsule { radius, length } => vec![*radius, *length],
                urdf_rs::Geometry::Sphere { radius } => vec![*radius],
                urdf_rs::Geometry::Mesh { scale, .. } => scale.map_or(vec![1.0], |s| s.to_vec()),
            };
            finite("a shape's size", n, &sizes)?;
            if let Some(x) = sizes.iter().find(|x| !(**x as f32 > 0.0)) {
                return Err(format!(
                    "a shape of `{n}` has a size that is not positive ({})",
                    telic::limits::num(*x)
                ));
            }
        }
    }
    for joint in &robot.joints {
        let n = &joint.name;
        pose("the origin", n, &joint.origin)?;
        finite("the axis", n, &joint.axis.xyz[..])?;
        let axis = joint.axis.xyz;
        let moves = !matches!(joint.joint_type, urdf_rs::JointType::Fixed);
        if moves && !(axis[0].hypot(axis[1]).hypot(axis[2]) as f32 > 0.0) {
            return Err(format!("the axis of joint `{n}` is zero"));
        }
        let l = &joint.limit;
        finite("the limits", n, &[l.lower, l.upper, l.effort, l.velocity])?;
    }
    Ok(())
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
    /// checks the configuration. The world is built by [`World::reset`].
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
        check_urdf_numbers(&robot).map_err(urdf_err)?;
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
            goal_links: Vec::new(),
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

impl World for Reach {
    fn name(&self) -> &str {
        "reach"
    }

    fn reset(&mut self, seed: u64) -> Result<EpisodeSetup, SimError> {
        let mut rng = Rng::new(seed);
        let cfg = self.config.clone();
        let mut arm = self.arm.clone();
        let mut rest = vec![[0.0; 3]; arm.link_names().len()];
        arm.link_positions(&vec![0.0; arm.num_joints()], &mut rest)?;
        let mut s = Placement::new(&mut arm, &cfg, rest);
        let mut chosen = None;
        for _ in 0..500 {
            let (Some(q0), Some(q1)) = (s.config(&mut rng), s.config(&mut rng)) else {
                continue;
            };
            s.fk(&q0);
            let start = s.tip();
            s.fk(&q1);
            let goal = s.tip();
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
        let mut goal_links = vec![[0.0; 3]; self.arm.link_names().len()];
        self.arm.clone().link_positions(&q1, &mut goal_links)?;
        self.goal_links = goal_links;
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
            // The boxes are fixed for the episode but not part of the arm's
            // own state; no readout measures them yet.
            pixel_guardrails: Vec::new(),
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

    fn proprio_names(&self) -> &[String] {
        let n = (2 * self.arm.num_joints()).min(self.names.len());
        &self.names[..n]
    }

    fn proprio(&self, out: &mut [Real]) {
        self.observe(out);
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

    fn physics_mut(&mut self) -> Option<&mut rapier3d::prelude::PhysicsWorld> {
        Some(&mut self.world)
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

    /// The arm in the episode's target configuration (link frames from the
    /// analytic arm's forward kinematics).
    fn render_goal(
        &self,
        camera: &mut super::camera::Camera,
        image: &mut [u8],
    ) -> Result<(), SimError> {
        if self.goal_links.is_empty() {
            return Err(scene_err("no goal to render before the first reset".into()));
        }
        let r = self.config.arm_radius.max(0.01);
        camera.render_posed(
            self,
            |out| {
                for (k, pair) in self.goal_links.windows(2).enumerate() {
                    if let [a, b] = *pair {
                        out.push((format!("link{}", k + 1), Shape::Capsule { a, b, radius: r }));
                    }
                }
            },
            image,
        )
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

    /// Seen from above, centred on the arm's base, as far as the arm
    /// reaches (its link lengths, rounded up to 0.1 m so that the `f32`
    /// link poses cannot move the view) plus its radius.
    fn camera_view(&self) -> Option<super::camera::View> {
        let mut base: Option<[Real; 3]> = None;
        let mut prev: Option<[Real; 3]> = None;
        let mut length = 0.0;
        self.for_each_link_position(|_, p| {
            if let Some(a) = prev {
                length +=
                    ((p[0] - a[0]).powi(2) + (p[1] - a[1]).powi(2) + (p[2] - a[2]).powi(2)).sqrt();
            }
            base.get_or_insert(p);
            prev = Some(p);
        });
        let [x, y, _] = base?;
        let half = (length * 10.0).ceil() / 10.0 + self.config.arm_radius.max(0.01);
        (half > 0.0).then_some(super::camera::View::new([x, y], [half, half]))
    }

    fn hazards(&self, out: &mut Vec<Shape>) {
        out.extend(self.boxes.iter().map(KeepOutBox::shape));
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

mod config;
mod placement;
#[cfg(test)]
mod tests;
