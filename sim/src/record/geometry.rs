//! What a recording draws: the objective's body points, the guardrails'
//! shapes in the colour of their true margin, the view box and the colours.

use rerun::RecordingStream;
use telic::objective::{Drawing, Point, ReadoutSchema, Shape};
use telic::{ObjectiveSpec, Real};

/// A point of the objective's bodies located by readouts (a missing `z` is
/// drawn at 0).
#[derive(Clone, Debug)]
pub(super) struct BodyPoint {
    name: String,
    point: Point,
}

impl BodyPoint {
    /// The point's name (`<name>.x`, `.y`, `.z` are its readouts).
    pub(super) fn name(&self) -> &str {
        &self.name
    }

    /// Whether a readout gives the point's height.
    pub(super) fn has_z(&self) -> bool {
        self.point.has_z()
    }

    /// The point's position in readouts `y`, as drawn; `None` when `y` is
    /// too short or a coordinate is not finite.
    pub(super) fn at(&self, y: &[Real]) -> Option<[f32; 3]> {
        let p = self.point.position(y)?;
        p.iter().all(|v| v.is_finite()).then(|| p.map(|v| v as f32))
    }
}

/// The points of the objective's bodies that `readouts` locate.
pub(super) fn body_points(spec: &ObjectiveSpec, readouts: &ReadoutSchema) -> Vec<BodyPoint> {
    let mut out: Vec<BodyPoint> = Vec::new();
    for b in &spec.bodies {
        for p in &b.points {
            if out.iter().all(|q| q.name != *p)
                && let Some(point) = readouts.find_point(p)
            {
                out.push(BodyPoint {
                    name: p.clone(),
                    point,
                });
            }
        }
    }
    out
}

/// Geometry of one guardrail, drawn in the colour of its margin.
#[derive(Clone, Debug)]
pub(super) struct GuardGeom {
    name: String,
    /// Index into the validator's margins.
    index: usize,
    /// The planner's safety buffer: inside it the colour turns orange.
    buffer: Real,
    shapes: Vec<Shape>,
}

impl GuardGeom {
    /// Logs the guardrail's shapes in the colour of its true margin in
    /// `margins` (the validator's, in its order).
    pub(super) fn log(
        &self,
        rec: &RecordingStream,
        margins: &[Real],
    ) -> rerun::RecordingStreamResult<()> {
        let m_g = margins.get(self.index).copied().unwrap_or(Real::NAN);
        let colour = margin_colour(m_g, self.buffer);
        if let [shape] = self.shapes.as_slice() {
            log_shape(
                rec,
                &format!("world/guardrails/{}", self.name),
                shape,
                colour,
                false,
            )?;
        } else {
            for (i, shape) in self.shapes.iter().enumerate() {
                log_shape(
                    rec,
                    &format!("world/guardrails/{}/{i}", self.name),
                    shape,
                    colour,
                    false,
                )?;
            }
        }
        Ok(())
    }
}

/// Geometry of the guardrails that have some. Workspace bounds are drawn
/// within `view` (a box around the robot and its scenery, `[lower, upper]`),
/// so that a far-away bound does not shrink the robot to a dot; in a planar
/// scene (no body point has a height) they are drawn flat on the floor.
pub(super) fn guard_geometry(
    spec: &ObjectiveSpec,
    names: &[String],
    planar: bool,
    view: Option<[[Real; 3]; 2]>,
) -> Vec<GuardGeom> {
    spec.guardrails
        .iter()
        .filter_map(|g| {
            let shapes = match g.drawing()? {
                Drawing::Shapes(shapes) => shapes.to_vec(),
                Drawing::Inside { lower, upper } => {
                    vec![workspace_box(lower, upper, planar, view)]
                }
            };
            let name = g.name();
            let index = names.iter().position(|n| n == name)?;
            Some(GuardGeom {
                name: name.to_string(),
                index,
                buffer: g.margin(),
                shapes,
            })
        })
        .collect()
}

/// The box of a workspace `[lower, upper]` as drawn: within `view`, and flat
/// on the floor when `planar`.
fn workspace_box(
    lower: [Real; 3],
    upper: [Real; 3],
    planar: bool,
    view: Option<[[Real; 3]; 2]>,
) -> Shape {
    let (mut lo, mut hi) = (lower, upper);
    if let Some([vl, vh]) = view {
        for i in 0..3 {
            lo[i] = lo[i].max(vl[i]);
            hi[i] = hi[i].min(vh[i]).max(lo[i]);
        }
    }
    let mut center = [0, 1, 2].map(|i| 0.5 * (lo[i] + hi[i]));
    let mut half_extents = [0, 1, 2].map(|i| (0.5 * (hi[i] - lo[i])).max(0.002));
    if planar {
        center[2] = 0.0;
        half_extents[2] = 0.002;
    }
    Shape::Box {
        center,
        half_extents,
        rpy: [0.0; 3],
    }
}

/// The box around the centres of `shapes`, grown by `pad` on every side
/// (`None` without shapes).
pub(super) fn view_box<'a>(
    shapes: impl Iterator<Item = &'a Shape>,
    pad: Real,
) -> Option<[[Real; 3]; 2]> {
    let mut out: Option<[[Real; 3]; 2]> = None;
    for s in shapes {
        let (c, r) = match s {
            Shape::Box {
                center,
                half_extents,
                ..
            } => (*center, half_extents.iter().copied().fold(0.0, Real::max)),
            Shape::Sphere { center, radius } => (*center, *radius),
            Shape::Capsule { a, b, radius } => ([0, 1, 2].map(|i| 0.5 * (a[i] + b[i])), *radius),
            Shape::Cylinder {
                center,
                radius,
                half_height,
            } => (*center, radius.max(*half_height)),
        };
        let [lo, hi] = out.get_or_insert([c, c]);
        for i in 0..3 {
            lo[i] = lo[i].min(c[i] - r - pad);
            hi[i] = hi[i].max(c[i] + r + pad);
        }
    }
    out
}

pub(super) const GREEN: [u8; 4] = [60, 180, 75, 110];
pub(super) const ORANGE: [u8; 4] = [240, 150, 30, 160];
pub(super) const RED: [u8; 4] = [230, 40, 40, 200];
pub(super) const ROBOT: [u8; 4] = [90, 120, 200, 255];
pub(super) const OBJECT: [u8; 4] = [200, 150, 90, 255];
pub(super) const SCENERY: [u8; 4] = [170, 170, 170, 120];
pub(super) const GOAL: [u8; 4] = [60, 200, 200, 160];
pub(super) const PLAN: [u8; 4] = [250, 230, 40, 255];
pub(super) const EXECUTED: [u8; 4] = [255, 255, 255, 255];
/// What the model decoded from the observation: magenta, half see-through.
pub(super) const BELIEF: [u8; 4] = [220, 60, 220, 170];
/// The true position of a body point.
pub(super) const TRUTH: [u8; 4] = [255, 255, 255, 220];

fn margin_colour(margin: Real, buffer: Real) -> [u8; 4] {
    if !(margin >= 0.0) {
        RED
    } else if margin < buffer {
        ORANGE
    } else {
        GREEN
    }
}

/// Green (best) to red (worst) over `n` ranked rollouts.
pub(super) fn rank_colour(i: usize, n: usize) -> [u8; 4] {
    let t = if n > 1 {
        i as f32 / (n - 1) as f32
    } else {
        0.0
    };
    [(60.0 + 190.0 * t) as u8, (200.0 - 150.0 * t) as u8, 60, 140]
}

fn quat_from_rpy(rpy: [Real; 3]) -> [f32; 4] {
    let (sr, cr) = (0.5 * rpy[0]).sin_cos();
    let (sp, cp) = (0.5 * rpy[1]).sin_cos();
    let (sy, cy) = (0.5 * rpy[2]).sin_cos();
    // R = Rz(yaw) · Ry(pitch) · Rx(roll), as xyzw.
    [
        (sr * cp * cy - cr * sp * sy) as f32,
        (cr * sp * cy + sr * cp * sy) as f32,
        (cr * cp * sy - sr * sp * cy) as f32,
        (cr * cp * cy + sr * sp * sy) as f32,
    ]
}

fn f3(p: [Real; 3]) -> [f32; 3] {
    p.map(|v| v as f32)
}

/// Logs `shape` at `path` in `colour`.
pub(super) fn log_shape(
    rec: &RecordingStream,
    path: &str,
    shape: &Shape,
    colour: [u8; 4],
    static_: bool,
) -> rerun::RecordingStreamResult<()> {
    let c = rerun::Color::from_unmultiplied_rgba(colour[0], colour[1], colour[2], colour[3]);
    match shape {
        Shape::Box {
            center,
            half_extents,
            rpy,
        } => rec.log_with_static(
            path,
            static_,
            &rerun::Boxes3D::from_centers_and_half_sizes([f3(*center)], [f3(*half_extents)])
                .with_quaternions([rerun::Quaternion::from_xyzw(quat_from_rpy(*rpy))])
                .with_colors([c]),
        ),
        Shape::Sphere { center, radius } => rec.log_with_static(
            path,
            static_,
            &rerun::Ellipsoids3D::from_centers_and_radii([f3(*center)], [*radius as f32])
                .with_colors([c]),
        ),
        Shape::Capsule { a, b, radius } => rec.log_with_static(
            path,
            static_,
            &rerun::Capsules3D::from_endpoints_and_radii([f3(*a)], [f3(*b)], [*radius as f32])
                .with_colors([c]),
        ),
        Shape::Cylinder {
            center,
            radius,
            half_height,
        } => rec.log_with_static(
            path,
            static_,
            &rerun::Cylinders3D::from_lengths_and_radii(
                [2.0 * *half_height as f32],
                [*radius as f32],
            )
            .with_centers([f3(*center)])
            .with_colors([c]),
        ),
    }
}
