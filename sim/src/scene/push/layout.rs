//! Random, solvable episode layouts: box start and goal poses, the pusher's
//! start and keep-out regions.

use super::PushConfig;
use crate::SimError;
use std::f64::consts::PI;
use telic::Real;
use telic::objective::Shape;
use telic::objective::geometry::CompiledShape;
use telic::rng::Rng;

/// Keep-out regions span z ∈ [−0.02, 0.1]: they contain the plane z = 0 in
/// which the planar readouts (no `.z`) place the pusher, so distances are planar.
const KEEPOUT_Z: (Real, Real) = (0.04, 0.06);

/// One episode's layout.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Layout {
    /// Box centre at the start.
    pub(super) box_start: [Real; 2],
    /// Box yaw at the start.
    pub(super) box_yaw: Real,
    /// Goal position of the box's centre.
    pub(super) goal: [Real; 2],
    /// Goal yaw of the box, within `max_yaw_change` of `box_yaw` (not wrapped).
    pub(super) goal_yaw: Real,
    /// Pusher centre at the start.
    pub(super) pusher_start: [Real; 2],
    /// Regions the pusher must stay out of.
    pub(super) keepouts: Vec<Shape>,
}

/// Signed planar distance from `p` to a compiled shape.
fn dist(shape: &CompiledShape, p: [Real; 2]) -> Real {
    shape.signed_distance(&[p[0], p[1], 0.0].into())
}

/// The four corners of a keep-out box's footprint.
fn corners(s: &Shape) -> Vec<[Real; 2]> {
    let Shape::Box {
        center,
        half_extents: h,
        rpy,
    } = s
    else {
        return Vec::new();
    };
    let (sn, cs) = rpy[2].sin_cos();
    [[h[0], h[1]], [-h[0], h[1]], [-h[0], -h[1]], [h[0], -h[1]]]
        .iter()
        .map(|[x, y]| [center[0] + cs * x - sn * y, center[1] + sn * x + cs * y])
        .collect()
}

/// Signed planar distance from `p` to the box's footprint at `center`, `yaw`.
pub(super) fn box_distance(c: &PushConfig, center: [Real; 2], yaw: Real, p: [Real; 2]) -> Real {
    let [hx, hy, _] = c.box_half_extents;
    let (sn, cs) = yaw.sin_cos();
    let (dx, dy) = (p[0] - center[0], p[1] - center[1]);
    let (ex, ey) = (
        (cs * dx + sn * dy).abs() - hx,
        (-sn * dx + cs * dy).abs() - hy,
    );
    ex.max(0.0).hypot(ey.max(0.0)) + ex.max(ey).min(0.0)
}

impl Layout {
    /// Draws layouts from `rng` until one satisfies every spacing rule.
    pub(super) fn sample(c: &PushConfig, rng: &mut Rng) -> Result<Self, SimError> {
        for _ in 0..c.max_attempts {
            if let Some(l) = Self::draw(c, rng) {
                return Ok(l);
            }
        }
        Err(SimError::Scene {
            scene: "push".into(),
            message: format!(
                "no layout in {} attempts; use fewer or smaller keep-out regions or a larger table",
                c.max_attempts
            ),
        })
    }

    /// Draws one layout, or `None` when some part could not be placed.
    pub(super) fn draw(c: &PushConfig, rng: &mut Rng) -> Option<Self> {
        let (tx, ty) = (c.table_length / 2.0, c.table_width / 2.0);
        let (ix, iy) = (tx - c.edge_inset, ty - c.edge_inset);
        let box_start = [rng.range(-ix, ix), rng.range(-iy, iy)];
        let box_yaw = rng.range(-PI, PI);
        let mut goal = None;
        for _ in 0..50 {
            let d = rng.range(c.goal_distance[0], c.goal_distance[1]);
            let a = rng.range(-PI, PI);
            let g = [box_start[0] + d * a.cos(), box_start[1] + d * a.sin()];
            if g[0].abs() <= ix && g[1].abs() <= iy {
                goal = Some(g);
                break;
            }
        }
        let goal = goal?;
        let goal_yaw = box_yaw + rng.range(-c.max_yaw_change, c.max_yaw_change);

        // The straight push: the pusher starts behind the box and the box
        // ends at the goal; the pusher's body stays within `reach` of the
        // box's centre on the way, and may circle the box at either end.
        let r = c.pusher_radius;
        let hd = c.box_half_diagonal();
        let (dx, dy) = (goal[0] - box_start[0], goal[1] - box_start[1]);
        let len = dx.hypot(dy).max(1e-9);
        let dir = [dx / len, dy / len];
        let back = hd + r;
        let pre = [box_start[0] - back * dir[0], box_start[1] - back * dir[1]];
        let reach = hd + 2.0 * r + c.keepout_margin + c.keepout_slack;
        let passage = 2.0 * (r + c.keepout_margin) + c.keepout_slack;

        let mut keepouts: Vec<Shape> = Vec::with_capacity(c.keepouts);
        for _ in 0..c.keepouts {
            let mut placed = false;
            for _ in 0..50 {
                let he = [
                    rng.range(c.keepout_half_extents[0], c.keepout_half_extents[1]),
                    rng.range(c.keepout_half_extents[0], c.keepout_half_extents[1]),
                ];
                let f = rng.uniform();
                let side = if rng.uniform() < 0.5 { 1.0 } else { -1.0 };
                let off = side
                    * (reach
                        + he[0].hypot(he[1])
                        + rng.range(c.keepout_offset[0], c.keepout_offset[1]));
                let center = [
                    pre[0] + f * (goal[0] - pre[0]) - off * dir[1],
                    pre[1] + f * (goal[1] - pre[1]) + off * dir[0],
                ];
                let shape = Shape::Box {
                    center: [center[0], center[1], KEEPOUT_Z.0],
                    half_extents: [he[0], he[1], KEEPOUT_Z.1],
                    rpy: [0.0, 0.0, rng.range(0.0, PI)],
                };
                if keepout_fits(c, &shape, &keepouts, pre, goal, reach, passage) {
                    keepouts.push(shape);
                    placed = true;
                    break;
                }
            }
            if !placed {
                return None;
            }
        }

        let compiled: Vec<CompiledShape> = keepouts.iter().map(Shape::compile).collect();
        let clear = r + c.keepout_margin + c.keepout_slack;
        let (px, py) = (tx - clear, ty - clear);
        for _ in 0..50 {
            let p = [rng.range(-px, px), rng.range(-py, py)];
            if box_distance(c, box_start, box_yaw, p) >= r + c.start_gap
                && compiled.iter().all(|k| dist(k, p) >= clear)
            {
                return Some(Self {
                    box_start,
                    box_yaw,
                    goal,
                    goal_yaw,
                    pusher_start: p,
                    keepouts,
                });
            }
        }
        None
    }
}

/// Whether a keep-out region stays `reach` away from the straight push
/// `pre`–`goal` and leaves a `passage` to the table's edges and to the
/// regions already `placed`.
fn keepout_fits(
    c: &PushConfig,
    shape: &Shape,
    placed: &[Shape],
    pre: [Real; 2],
    goal: [Real; 2],
    reach: Real,
    passage: Real,
) -> bool {
    let own = shape.compile();
    let z = 0.0;
    if own.segment_distance(&[pre[0], pre[1], z].into(), &[goal[0], goal[1], z].into()) < reach {
        return false;
    }
    let (tx, ty) = (c.table_length / 2.0, c.table_width / 2.0);
    let pts = corners(shape);
    if pts
        .iter()
        .any(|p| tx - p[0].abs() < passage || ty - p[1].abs() < passage)
    {
        return false;
    }
    // Between convex polygons the distance is attained at a corner of one of them.
    placed.iter().all(|other| {
        let o = other.compile();
        pts.iter().all(|p| dist(&o, *p) >= passage)
            && corners(other).iter().all(|p| dist(&own, *p) >= passage)
    })
}
