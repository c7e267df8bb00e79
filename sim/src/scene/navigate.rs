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

use super::{EpisodeSetup, Scene};
use crate::SimError;
use rapier3d::prelude::{ColliderBuilder, PhysicsWorld, RigidBodyBuilder, RigidBodyHandle, Vector};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::f64::consts::{FRAC_PI_2, PI};
use telic::model::Unicycle;
use telic::objective::{GuardrailSpec, Shape};
use telic::rng::Rng;
use telic::{Real, WorldModel};

/// Physics scalar (rapier's `f32`); conversions happen only in this file.
type P = f32;

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
    /// Number of obstacles (default 10).
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
    /// Cell size of the solvability grid in metres (default 0.05).
    pub grid_cell: Real,
    /// Fields drawn per episode before giving up (default 500).
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
        for (name, v) in positive {
            if !(v.is_finite() && v > 0.0) {
                return bad(format!("{name} must be positive, got {v}"));
            }
        }
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
        for (name, v) in non_negative {
            if !(v.is_finite() && v >= 0.0) {
                return bad(format!("{name} must be >= 0, got {v}"));
            }
        }
        if !(0.0..=1.0).contains(&self.box_fraction) {
            return bad(format!(
                "box_fraction must be in [0, 1], got {}",
                self.box_fraction
            ));
        }
        for (name, [lo, hi]) in [
            ("cylinder_radius", self.cylinder_radius),
            ("box_half_length", self.box_half_length),
            ("box_half_width", self.box_half_width),
        ] {
            if !(lo.is_finite() && hi.is_finite() && 0.0 < lo && lo <= hi) {
                return bad(format!(
                    "{name} must be a range 0 < lo <= hi, got [{lo}, {hi}]"
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
        let k = self.physics_steps_per_control();
        if k == 0 || (k as Real * self.physics_dt - self.control_dt).abs() > 1e-9 {
            return bad(format!(
                "physics_dt ({}) must divide control_dt ({})",
                self.physics_dt, self.control_dt
            ));
        }
        if 2.0 * self.end_inset >= self.arena_length || 2.0 * self.side_inset > self.arena_width {
            return bad("end_inset or side_inset leave no room in the arena".into());
        }
        let cells = (self.arena_length / self.grid_cell) * (self.arena_width / self.grid_cell);
        if cells > 4.0e6 {
            return bad(format!(
                "grid_cell {} makes the grid too large",
                self.grid_cell
            ));
        }
        Ok(())
    }

    /// Physics steps per control period.
    #[must_use]
    pub fn physics_steps_per_control(&self) -> usize {
        let k = (self.control_dt / self.physics_dt).round();
        if k.is_finite() && k >= 1.0 {
            k as usize
        } else {
            0
        }
    }

    /// The lag factor `α = 1 − e^{−Δt/τ}` of the velocity setpoints per control tick.
    fn alpha(&self) -> Real {
        if self.tau == 0.0 {
            1.0
        } else {
            1.0 - (-self.control_dt / self.tau).exp()
        }
    }

    /// Inflation of obstacles in the solvability check.
    fn inflation(&self) -> Real {
        self.robot_radius + self.min_clearance + self.clearance_margin + self.passage_slack
    }
}

/// One episode's layout: start pose, goal and obstacles (walls included).
#[derive(Clone, Debug, PartialEq)]
struct Field {
    start: [Real; 2],
    heading: Real,
    goal: [Real; 2],
    obstacles: Vec<Shape>,
}

/// Signed planar distances to a set of obstacles, computed by the very
/// guardrail code the planner and the validator use.
struct Distance {
    objective: telic::Objective,
    y: [Real; 6],
    m: [Real; 1],
}

impl Distance {
    fn new(obstacles: &[Shape]) -> Option<Self> {
        let model = Unicycle::new(1.0, 1.0, 1.0, 0.0).ok()?;
        let spec = telic::ObjectiveSpec {
            terms: Vec::new(),
            guardrails: vec![GuardrailSpec::Clearance {
                name: "d".into(),
                margin: 0.0,
                min_distance: 0.0,
                obstacles: obstacles.to_vec(),
                bodies: Vec::new(),
            }],
            bodies: vec![telic::objective::BodySpec {
                name: "base".into(),
                points: vec!["base".into()],
                radius: 0.0,
            }],
        };
        let objective = spec.compile(model.spec()).ok()?;
        Some(Self {
            objective,
            y: [0.0; 6],
            m: [0.0],
        })
    }

    /// Signed distance from `p` to the nearest obstacle (`+∞` without any).
    fn at(&mut self, p: [Real; 2]) -> Real {
        self.y[0] = p[0];
        self.y[1] = p[1];
        self.objective.margins(&self.y, false, &mut self.m);
        self.m[0]
    }
}

/// Points along the planar outline of a cylinder or box, at most 5 cm apart.
fn outline(s: &Shape) -> Vec<[Real; 2]> {
    let step = 0.05;
    match s {
        Shape::Cylinder { center, radius, .. } => {
            let n = ((2.0 * PI * radius / step).ceil() as usize).max(8);
            (0..n)
                .map(|k| {
                    let a = 2.0 * PI * k as Real / n as Real;
                    [center[0] + radius * a.cos(), center[1] + radius * a.sin()]
                })
                .collect()
        }
        Shape::Box {
            center,
            half_extents: h,
            rpy,
        } => {
            let (sn, cs) = rpy[2].sin_cos();
            let corners = [[h[0], h[1]], [-h[0], h[1]], [-h[0], -h[1]], [h[0], -h[1]]];
            let mut pts = Vec::new();
            for k in 0..4 {
                let (a, b) = (corners[k], corners[(k + 1) % 4]);
                let len = (b[0] - a[0]).hypot(b[1] - a[1]);
                let n = ((len / step).ceil() as usize).max(1);
                for j in 0..n {
                    let t = j as Real / n as Real;
                    let (x, y) = (a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1]));
                    pts.push([center[0] + cs * x - sn * y, center[1] + sn * x + cs * y]);
                }
            }
            pts
        }
        Shape::Sphere { center, .. } | Shape::Capsule { a: center, .. } => {
            vec![[center[0], center[1]]]
        }
    }
}

/// Whether `shape` keeps start and goal clear and stays `min_gap` away from
/// the arena's edges and from every obstacle in `placed`.
fn fits(
    c: &NavigateConfig,
    shape: &Shape,
    placed: &[Shape],
    start: [Real; 2],
    goal: [Real; 2],
) -> bool {
    let keep = c.robot_radius + c.min_clearance + c.clearance_margin + c.keep_clear;
    let Some(mut own) = Distance::new(std::slice::from_ref(shape)) else {
        return false;
    };
    if own.at(start) < keep || own.at(goal) < keep {
        return false;
    }
    let (hx, hy) = (c.arena_length / 2.0, c.arena_width / 2.0);
    let pts = outline(shape);
    if pts
        .iter()
        .any(|p| hx - p[0].abs() < c.min_gap || hy - p[1].abs() < c.min_gap)
    {
        return false;
    }
    if c.min_gap <= 0.0 || placed.is_empty() {
        return true;
    }
    let Some(mut others) = Distance::new(placed) else {
        return false;
    };
    // Both ways round, so that neither shape can hide inside the other.
    pts.iter().all(|p| others.at(*p) >= c.min_gap)
        && placed
            .iter()
            .flat_map(outline)
            .all(|p| own.at(p) >= c.min_gap)
}

/// Obstacle slab in z: from 0.1 m below the ground to `height`, so that the
/// robot's reference point (z = 0) lies inside it and distances are planar.
fn slab(height: Real) -> (Real, Real) {
    ((height - 0.1) / 2.0, (height + 0.1) / 2.0)
}

impl Field {
    /// Draws fields from `rng` until one is solvable.
    fn sample(c: &NavigateConfig, rng: &mut Rng) -> Result<Self, SimError> {
        for _ in 0..c.max_attempts {
            if let Some(f) = Self::draw(c, rng)
                && f.solvable(c)
            {
                return Ok(f);
            }
        }
        Err(SimError::Scene {
            scene: "navigate".into(),
            message: format!(
                "no solvable field in {} attempts; use fewer or smaller obstacles",
                c.max_attempts
            ),
        })
    }

    /// Draws one field, or `None` when the obstacles could not all be placed.
    fn draw(c: &NavigateConfig, rng: &mut Rng) -> Option<Self> {
        let (hx, hy) = (c.arena_length / 2.0, c.arena_width / 2.0);
        let side = |rng: &mut Rng| rng.range(-hy + c.side_inset, hy - c.side_inset);
        let mut start = [-hx + c.end_inset, side(rng)];
        let mut goal = [hx - c.end_inset, side(rng)];
        if rng.uniform() < 0.5 {
            start[0] = -start[0];
            goal[0] = -goal[0];
        }
        let bearing = (goal[1] - start[1]).atan2(goal[0] - start[0]);
        let heading = bearing + rng.range(-c.heading_jitter, c.heading_jitter);
        let (zc, zh) = slab(c.obstacle_height);
        let mut obstacles = Vec::with_capacity(c.obstacles + 4);
        let band = hx - c.end_inset;
        for i in 0..c.obstacles {
            let mut placed = false;
            for _ in 0..50 {
                let center = if i < c.on_path {
                    let f = (i as Real + 1.0) / (c.on_path as Real + 1.0) + rng.range(-0.08, 0.08);
                    [
                        start[0] + f * (goal[0] - start[0]),
                        start[1] + f * (goal[1] - start[1]) + rng.range(-0.3, 0.3),
                    ]
                } else {
                    [rng.range(-band, band), rng.range(-hy, hy)]
                };
                let shape = if rng.uniform() < c.box_fraction {
                    Shape::Box {
                        center: [center[0], center[1], zc],
                        half_extents: [
                            rng.range(c.box_half_length[0], c.box_half_length[1]),
                            rng.range(c.box_half_width[0], c.box_half_width[1]),
                            zh,
                        ],
                        rpy: [0.0, 0.0, rng.range(0.0, PI)],
                    }
                } else {
                    Shape::Cylinder {
                        center: [center[0], center[1], zc],
                        radius: rng.range(c.cylinder_radius[0], c.cylinder_radius[1]),
                        half_height: zh,
                    }
                };
                if fits(c, &shape, &obstacles, start, goal) {
                    obstacles.push(shape);
                    placed = true;
                    break;
                }
            }
            if !placed {
                return None;
            }
        }
        if c.walls {
            // Walls sit just outside the arena, overlapping at the corners.
            let t = 0.1;
            for (center, half) in [
                ([0.0, hy + t], [hx + 2.0 * t, t]),
                ([0.0, -hy - t], [hx + 2.0 * t, t]),
                ([hx + t, 0.0], [t, hy + 2.0 * t]),
                ([-hx - t, 0.0], [t, hy + 2.0 * t]),
            ] {
                obstacles.push(Shape::Box {
                    center: [center[0], center[1], zc],
                    half_extents: [half[0], half[1], zh],
                    rpy: [0.0; 3],
                });
            }
        }
        Some(Self {
            start,
            heading,
            goal,
            obstacles,
        })
    }

    /// True when a 4-connected grid path joins start and goal through cells
    /// whose clearance is at least [`NavigateConfig::inflation`].
    fn solvable(&self, c: &NavigateConfig) -> bool {
        let Some(mut dist) = Distance::new(&self.obstacles) else {
            return false;
        };
        let infl = c.inflation();
        let (hx, hy) = (c.arena_length / 2.0, c.arena_width / 2.0);
        let nx = (c.arena_length / c.grid_cell).ceil() as usize;
        let ny = (c.arena_width / c.grid_cell).ceil() as usize;
        let center = |i: usize, j: usize| {
            [
                -hx + (i as Real + 0.5) * c.grid_cell,
                -hy + (j as Real + 0.5) * c.grid_cell,
            ]
        };
        let cell_of = |p: [Real; 2]| {
            let i = ((p[0] + hx) / c.grid_cell).floor();
            let j = ((p[1] + hy) / c.grid_cell).floor();
            (i >= 0.0 && j >= 0.0 && (i as usize) < nx && (j as usize) < ny)
                .then_some((i as usize, j as usize))
        };
        let (Some(s), Some(g)) = (cell_of(self.start), cell_of(self.goal)) else {
            return false;
        };
        let mut free = vec![false; nx * ny];
        for j in 0..ny {
            for i in 0..nx {
                free[j * nx + i] = dist.at(center(i, j)) >= infl;
            }
        }
        let mut seen = vec![false; nx * ny];
        let mut queue = VecDeque::new();
        // The start and goal cells themselves count as free: the robot is
        // there already, and their surroundings were kept clear when drawing.
        seen[s.1 * nx + s.0] = true;
        queue.push_back(s);
        while let Some((i, j)) = queue.pop_front() {
            if (i, j) == g {
                return true;
            }
            let next = [
                (i.wrapping_sub(1), j),
                (i + 1, j),
                (i, j.wrapping_sub(1)),
                (i, j + 1),
            ];
            for (a, b) in next {
                if a >= nx || b >= ny {
                    continue;
                }
                let k = b * nx + a;
                if !seen[k] && (free[k] || (a, b) == g) {
                    seen[k] = true;
                    queue.push_back((a, b));
                }
            }
        }
        false
    }
}

/// The rapier world of one episode and the robot's actuator state.
struct World {
    physics: PhysicsWorld,
    robot: RigidBodyHandle,
}

impl World {
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
    names: Vec<String>,
    world: Option<World>,
    field: Option<Field>,
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
fn body_state(world: &World) -> Option<[Real; 5]> {
    let b = world.physics.bodies.get(world.robot)?;
    let t = b.translation();
    let x_axis = b.rotation().mul_vec3(Vector::X);
    let yaw = Real::from(x_axis.y).atan2(Real::from(x_axis.x));
    let lin = b.linvel();
    let v = Real::from(lin.x) * yaw.cos() + Real::from(lin.y) * yaw.sin();
    let w = Real::from(b.angvel().z);
    Some([Real::from(t.x), Real::from(t.y), yaw, v, w])
}

/// `a` wrapped into `(−π, π]`.
fn wrap(a: Real) -> Real {
    let w = a.rem_euclid(2.0 * PI);
    if w > PI { w - 2.0 * PI } else { w }
}

impl Navigate {
    /// Builds the scene (the world is created by [`Scene::reset`]).
    ///
    /// ```
    /// use telic_sim::Scene;
    /// use telic_sim::scene::navigate::{Navigate, NavigateConfig};
    ///
    /// let mut scene = Navigate::new(&NavigateConfig::default()).unwrap();
    /// let setup = scene.reset(7).unwrap();
    /// assert_eq!(setup.targets[0].0, "goal");
    /// ```
    pub fn new(config: &NavigateConfig) -> Result<Self, SimError> {
        config.validate()?;
        let names = ["base.x", "base.y", "heading", "v", "omega", "speed"]
            .iter()
            .map(|s| (*s).to_string())
            .collect();
        Ok(Self {
            config: config.clone(),
            names,
            world: None,
            field: None,
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

    /// The obstacles of the current episode, walls included.
    #[must_use]
    pub fn obstacles(&self) -> &[Shape] {
        self.field.as_ref().map_or(&[], |f| f.obstacles.as_slice())
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

impl Scene for Navigate {
    fn name(&self) -> &str {
        "navigate"
    }

    fn reset(&mut self, seed: u64) -> Result<EpisodeSetup, SimError> {
        let mut rng = Rng::new(seed);
        let field = Field::sample(&self.config, &mut rng)?;
        self.world = Some(World::build(&self.config, &field));
        self.heading = field.heading;
        self.setpoint = [0.0; 2];
        self.drive = [0.0; 2];
        self.time = 0.0;
        let setup = EpisodeSetup {
            targets: vec![("goal".into(), field.goal.to_vec())],
            guardrails: vec![GuardrailSpec::Clearance {
                name: "clearance".into(),
                margin: self.config.clearance_margin,
                min_distance: self.config.min_clearance,
                obstacles: field.obstacles.clone(),
                bodies: Vec::new(),
            }],
        };
        self.field = Some(field);
        Ok(setup)
    }

    fn observe(&self, out: &mut [Real]) {
        for (o, s) in out.iter_mut().zip(self.state()) {
            *o = s;
        }
    }

    fn truth_readouts(&self) -> &[String] {
        &self.names
    }

    fn truth(&self, out: &mut [Real]) {
        let s = self.state();
        let y = [s[0], s[1], s[2], s[3], s[4], s[3].abs()];
        for (o, v) in out.iter_mut().zip(y) {
            *o = v;
        }
    }

    fn apply(&mut self, action: &[Real]) {
        let c = &self.config;
        let bounds = [c.max_speed, c.max_turn_rate];
        let alpha = c.alpha();
        for (k, (s, b)) in self.setpoint.iter_mut().zip(bounds).enumerate() {
            let u = action
                .get(k)
                .copied()
                .filter(|u| u.is_finite())
                .unwrap_or(0.0);
            *s += alpha * (u.clamp(-b, b) - *s);
        }
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
            self.heading += wrap(after[2] - before[2]);
        }
        self.time += h;
    }

    fn physics_dt(&self) -> Real {
        self.config.physics_dt
    }

    fn time(&self) -> Real {
        self.time
    }

    fn success(&self) -> bool {
        let (Some(goal), Some(s)) = (self.goal(), self.world.as_ref().and_then(body_state)) else {
            return false;
        };
        (s[0] - goal[0]).hypot(s[1] - goal[1]) <= self.config.success_radius
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
mod tests {
    use super::*;

    fn scene() -> Navigate {
        Navigate::new(&NavigateConfig::default()).unwrap()
    }

    #[test]
    fn reset_is_deterministic_per_seed() {
        let mut a = scene();
        let mut b = scene();
        let sa = a.reset(11).unwrap();
        let sb = b.reset(11).unwrap();
        assert_eq!(sa, sb);
        for _ in 0..3 {
            a.apply(&[0.7, 0.5]);
            b.apply(&[0.7, 0.5]);
            for _ in 0..5 {
                a.step();
                b.step();
            }
        }
        let (mut oa, mut ob) = ([0.0; 5], [0.0; 5]);
        a.observe(&mut oa);
        b.observe(&mut ob);
        assert_eq!(oa, ob);
        assert_ne!(sa, a.reset(12).unwrap());
    }

    #[test]
    fn fields_are_solvable_and_keep_start_and_goal_clear() {
        let c = NavigateConfig::default();
        let mut s = scene();
        for seed in 0..40 {
            let setup = s.reset(seed).unwrap();
            let field = s.field.clone().unwrap();
            assert!(field.solvable(&c), "seed {seed}");
            assert_eq!(
                setup.targets,
                vec![("goal".to_string(), field.goal.to_vec())]
            );
            let mut d = Distance::new(&field.obstacles).unwrap();
            let need = c.robot_radius + c.min_clearance + c.clearance_margin;
            assert!(d.at(field.start) > need, "seed {seed}");
            assert!(d.at(field.goal) > need, "seed {seed}");
            assert!((field.goal[0] - field.start[0]).abs() > 5.0, "seed {seed}");
            let GuardrailSpec::Clearance { obstacles, .. } = &setup.guardrails[0] else {
                panic!("expected a clearance guardrail");
            };
            assert_eq!(obstacles.len(), c.obstacles + 4);
        }
    }

    #[test]
    fn blocked_fields_are_rejected() {
        let c = NavigateConfig::default();
        let (zc, zh) = slab(c.obstacle_height);
        let wall = Shape::Box {
            center: [0.0, 0.0, zc],
            half_extents: [0.2, c.arena_width, zh],
            rpy: [0.0; 3],
        };
        let field = Field {
            start: [-3.0, 0.0],
            heading: 0.0,
            goal: [3.0, 0.0],
            obstacles: vec![wall],
        };
        assert!(!field.solvable(&c));
        let open = Field {
            obstacles: Vec::new(),
            ..field
        };
        assert!(open.solvable(&c));
    }

    /// An empty arena with the robot facing the goal, metres from any wall.
    fn open_scene() -> Navigate {
        let c = NavigateConfig {
            obstacles: 0,
            on_path: 0,
            heading_jitter: 0.0,
            ..NavigateConfig::default()
        };
        let mut s = Navigate::new(&c).unwrap();
        s.reset(3).unwrap();
        s
    }

    #[test]
    fn driving_matches_the_unicycle_model() {
        for action in [[1.0, 0.0], [0.8, 1.2], [-0.5, -2.0]] {
            let mut s = open_scene();
            let mut model = s.analytic_model().unwrap();
            let mut z = [0.0; 5];
            s.observe(&mut z);
            let k = s.config.physics_steps_per_control();
            for _ in 0..10 {
                s.apply(&action);
                for _ in 0..k {
                    s.step();
                }
                let mut next = [0.0; 5];
                model.predict(&z, &action, &mut next).unwrap();
                z = next;
            }
            let mut o = [0.0; 5];
            s.observe(&mut o);
            let err = (o[0] - z[0]).hypot(o[1] - z[1]);
            assert!(err < 0.03, "{action:?}: sim {o:?} model {z:?}");
            assert!(
                (o[2] - z[2]).abs() < 0.03,
                "{action:?}: sim {o:?} model {z:?}"
            );
            assert!((o[3] - z[3]).abs() < 1e-3 && (o[4] - z[4]).abs() < 1e-3);
            assert!((s.time() - 1.0).abs() < 1e-9);
        }
    }

    #[test]
    fn heading_is_continuous_across_pi() {
        let mut s = open_scene();
        let mut o = [0.0; 5];
        s.observe(&mut o);
        let start = o[2];
        // Two seconds at 2 rad/s: more than a half turn from any start.
        for _ in 0..20 {
            s.apply(&[0.0, 2.0]);
            for _ in 0..5 {
                s.step();
            }
        }
        s.observe(&mut o);
        assert!(o[2] - start > 3.3, "turned {}", o[2] - start);
    }

    #[test]
    fn truth_agrees_with_observation() {
        let mut s = scene();
        s.reset(5).unwrap();
        for _ in 0..4 {
            s.apply(&[-0.6, 0.8]);
            for _ in 0..5 {
                s.step();
            }
        }
        let mut o = [0.0; 5];
        let mut y = [0.0; 6];
        s.observe(&mut o);
        s.truth(&mut y);
        assert_eq!(s.truth_readouts().len(), 6);
        let model = s.analytic_model().unwrap();
        assert_eq!(s.truth_readouts(), model.spec().readouts.as_slice());
        assert_eq!(&y[..5], &o);
        assert!((y[5] - o[3].abs()).abs() < 1e-12);
        assert!(o[3] < -0.3, "reversing: {o:?}");
    }

    #[test]
    fn obstacles_stop_the_robot() {
        let c = NavigateConfig {
            obstacles: 0,
            on_path: 0,
            heading_jitter: 0.0,
            ..NavigateConfig::default()
        };
        let mut s = Navigate::new(&c).unwrap();
        s.reset(1).unwrap();
        // Drive straight for long enough to reach the far wall.
        for _ in 0..150 {
            s.apply(&[1.0, 0.0]);
            for _ in 0..5 {
                s.step();
            }
        }
        let mut o = [0.0; 5];
        s.observe(&mut o);
        let hx = c.arena_length / 2.0;
        assert!(
            o[0].abs() < hx - c.robot_radius + 0.02,
            "went through the wall: {o:?}"
        );
        assert!(s.success() || o[0].abs() > hx - 0.5, "{o:?}");
    }

    #[test]
    fn bad_config_names_the_field() {
        let c = NavigateConfig {
            physics_dt: 0.03,
            ..NavigateConfig::default()
        };
        let e = Navigate::new(&c).unwrap_err().to_string();
        assert!(e.contains("physics_dt"), "{e}");
        let c = NavigateConfig {
            cylinder_radius: [0.5, 0.2],
            ..NavigateConfig::default()
        };
        let e = Navigate::new(&c).unwrap_err().to_string();
        assert!(e.contains("cylinder_radius"), "{e}");
    }

    #[test]
    fn shipped_scenario_compiles_against_the_scene() {
        let scenario = crate::scenario::Scenario::load("navigate").unwrap();
        let crate::scene::SceneConfig::Navigate(cfg) = &scenario.scene else {
            panic!("navigate.toml must run the navigate scene");
        };
        let mut scene = Navigate::new(cfg).unwrap();
        let setup = scene.reset(1).unwrap();
        let model = scene.analytic_model().unwrap();
        let mut spec = scenario.objective.clone();
        spec.guardrails.extend(setup.guardrails);
        let mut objective = spec.compile(model.spec()).unwrap();
        for (term, target) in &setup.targets {
            objective.set_target(term, target).unwrap();
        }
        let body = spec.bodies.iter().find(|b| b.name == "base").unwrap();
        assert_eq!(body.radius, cfg.robot_radius);
        // The speed guardrail sits strictly above the action bound.
        let speed = spec
            .guardrails
            .iter()
            .find_map(|g| match g {
                GuardrailSpec::Speed { max, .. } => Some(*max),
                _ => None,
            })
            .unwrap();
        assert!(speed > cfg.max_speed);
    }

    #[test]
    fn one_episode_reaches_the_goal_safely() {
        let scenario = crate::scenario::Scenario::load("navigate").unwrap();
        let mut scene = scenario.scene.build(&scenario.base_dir).unwrap();
        let model = scene.analytic_model().unwrap();
        let r = crate::episode::run_episode(
            &scenario,
            scene.as_mut(),
            model,
            4,
            &mut crate::episode::NoObserver,
        )
        .unwrap();
        assert!(r.success, "{r:?}");
        assert_eq!(r.violation_steps, 0, "{r:?}");
    }
}
