//! Random, solvable obstacle fields.

use super::*;

/// One episode's layout: start pose, goal and obstacles (walls included).
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Field {
    pub(super) start: [Real; 2],
    pub(super) heading: Real,
    pub(super) goal: [Real; 2],
    pub(super) obstacles: Vec<Shape>,
}

/// Signed planar distances to a set of obstacles, computed by the very
/// guardrail code the planner and the validator use.
pub(super) struct Distance {
    pub(super) objective: telic::Objective,
    pub(super) y: [Real; 6],
    pub(super) m: [Real; 1],
}

impl Distance {
    pub(super) fn new(obstacles: &[Shape]) -> Option<Self> {
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
    pub(super) fn at(&mut self, p: [Real; 2]) -> Real {
        self.y[0] = p[0];
        self.y[1] = p[1];
        self.objective.margins(&self.y, false, &mut self.m);
        self.m[0]
    }
}

/// Points along the planar outline of a cylinder or box, at most 5 cm apart.
pub(super) fn outline(s: &Shape) -> Vec<[Real; 2]> {
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
pub(super) fn fits(
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
pub(super) fn slab(height: Real) -> (Real, Real) {
    ((height - 0.1) / 2.0, (height + 0.1) / 2.0)
}

impl Field {
    /// Draws fields from `rng` until one is solvable.
    pub(super) fn sample(c: &NavigateConfig, rng: &mut Rng) -> Result<Self, SimError> {
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
    pub(super) fn draw(c: &NavigateConfig, rng: &mut Rng) -> Option<Self> {
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
    pub(super) fn solvable(&self, c: &NavigateConfig) -> bool {
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
