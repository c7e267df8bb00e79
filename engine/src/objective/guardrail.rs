//! Guardrails: hard constraints `g(y, u) ≤ 0` that are never traded against cost.
//!
//! Each guardrail reports a signed *margin* `m = −g`: positive is safe, zero is
//! the boundary, negative is a violation. The `margin` field of a spec is a
//! safety buffer the planner keeps on top of the limit; validators check the
//! limit itself.

use super::geometry::{
    BoxAt, CapsuleAt, CompiledShape, CylinderAt, Distance, Shape, SphereAt, with_distance,
};
use super::schema::Point;
use crate::Real;
use crate::math::{Wide, wide};
use nalgebra::Vector3;
use serde::{Deserialize, Serialize};

/// A robot body for geometric guardrails: a sphere around one readout point or a
/// capsule between two, e.g. `{ name = "forearm", points = ["elbow", "wrist"], radius = 0.04 }`.
/// Point `p` is read from readouts `p.x`, `p.y` and `p.z` (taken as 0 when absent).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BodySpec {
    /// Name guardrails refer to.
    pub name: String,
    /// One point (sphere) or two (capsule).
    pub points: Vec<String>,
    /// Radius `≥ 0`.
    pub radius: Real,
}

/// A guardrail as plain data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum GuardrailSpec {
    /// Bodies stay out of a shape: `dist(body, shape) ≥ margin`.
    KeepOut {
        /// Name in reports.
        name: String,
        /// Safety buffer kept by the planner (metres, default 0).
        #[serde(default)]
        margin: Real,
        /// The region to avoid.
        shape: Shape,
        /// Bodies it applies to (empty: all bodies).
        #[serde(default)]
        bodies: Vec<String>,
    },
    /// Bodies keep at least `min_distance` from every obstacle.
    Clearance {
        /// Name in reports.
        name: String,
        /// Safety buffer kept by the planner (default 0).
        #[serde(default)]
        margin: Real,
        /// Required clearance (metres).
        min_distance: Real,
        /// Obstacles.
        obstacles: Vec<Shape>,
        /// Bodies it applies to (empty: all bodies).
        #[serde(default)]
        bodies: Vec<String>,
    },
    /// Bodies stay inside the axis-aligned box `[lower, upper]`.
    Workspace {
        /// Name in reports.
        name: String,
        /// Safety buffer kept by the planner (default 0).
        #[serde(default)]
        margin: Real,
        /// Lower corner.
        lower: [Real; 3],
        /// Upper corner.
        upper: [Real; 3],
        /// Bodies it applies to (empty: all bodies).
        #[serde(default)]
        bodies: Vec<String>,
    },
    /// Joint positions stay within `[lower, upper]`.
    JointPosition(LimitSpec),
    /// Joint velocities stay within `[lower, upper]`.
    JointVelocity(LimitSpec),
    /// Any readouts stay within `[lower, upper]`.
    ReadoutLimit(LimitSpec),
    /// The Euclidean norm of the named readouts (e.g. `["vel.x", "vel.y"]` or
    /// `["speed"]`) stays at or below `max`.
    Speed {
        /// Name in reports.
        name: String,
        /// Safety buffer kept by the planner (default 0).
        #[serde(default)]
        margin: Real,
        /// Readouts forming the velocity vector.
        readouts: Vec<String>,
        /// Largest allowed speed.
        max: Real,
    },
}

/// Per-readout box limits.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitSpec {
    /// Name in reports.
    pub name: String,
    /// Safety buffer kept by the planner (default 0).
    #[serde(default)]
    pub margin: Real,
    /// Readouts limited.
    pub readouts: Vec<String>,
    /// Lower limits, one per readout.
    pub lower: Vec<Real>,
    /// Upper limits, one per readout.
    pub upper: Vec<Real>,
}

impl GuardrailSpec {
    /// The guardrail's name.
    #[must_use]
    pub fn name(&self) -> &str {
        match self {
            GuardrailSpec::KeepOut { name, .. }
            | GuardrailSpec::Clearance { name, .. }
            | GuardrailSpec::Workspace { name, .. }
            | GuardrailSpec::Speed { name, .. } => name,
            GuardrailSpec::JointPosition(l)
            | GuardrailSpec::JointVelocity(l)
            | GuardrailSpec::ReadoutLimit(l) => &l.name,
        }
    }

    /// The planner's safety buffer.
    #[must_use]
    pub fn margin(&self) -> Real {
        match self {
            GuardrailSpec::KeepOut { margin, .. }
            | GuardrailSpec::Clearance { margin, .. }
            | GuardrailSpec::Workspace { margin, .. }
            | GuardrailSpec::Speed { margin, .. } => *margin,
            GuardrailSpec::JointPosition(l)
            | GuardrailSpec::JointVelocity(l)
            | GuardrailSpec::ReadoutLimit(l) => l.margin,
        }
    }

    /// Its geometry, for drawing (`None`: a limit on readouts, which has none).
    #[must_use]
    pub fn drawing(&self) -> Option<Drawing<'_>> {
        match self {
            GuardrailSpec::KeepOut { shape, .. } => {
                Some(Drawing::Shapes(std::slice::from_ref(shape)))
            }
            GuardrailSpec::Clearance { obstacles, .. } => Some(Drawing::Shapes(obstacles)),
            GuardrailSpec::Workspace { lower, upper, .. } => Some(Drawing::Inside {
                lower: *lower,
                upper: *upper,
            }),
            GuardrailSpec::JointPosition(_)
            | GuardrailSpec::JointVelocity(_)
            | GuardrailSpec::ReadoutLimit(_)
            | GuardrailSpec::Speed { .. } => None,
        }
    }
}

/// What a guardrail looks like, for drawing it: the regions a keep-out or
/// clearance guardrail keeps bodies out of, or a workspace's box. Limits on
/// readouts and speeds have no shape.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Drawing<'a> {
    /// Keep out of these shapes.
    Shapes(&'a [Shape]),
    /// Stay inside the axis-aligned box `[lower, upper]`.
    Inside {
        /// Lower corner.
        lower: [Real; 3],
        /// Upper corner.
        upper: [Real; 3],
    },
}

/// A body with its readout indices resolved.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Body {
    pub a: Point,
    pub b: Option<Point>,
    pub radius: Real,
}

/// A guardrail resolved against a model's readouts.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Guard {
    Distance {
        bodies: Vec<Body>,
        shapes: Vec<CompiledShape>,
        min_distance: Real,
    },
    Workspace {
        bodies: Vec<Body>,
        lower: Vector3<Real>,
        upper: Vector3<Real>,
    },
    Limits {
        idx: Vec<usize>,
        lower: Vec<Real>,
        upper: Vec<Real>,
    },
    Speed {
        idx: Vec<usize>,
        max: Real,
    },
}

impl Guard {
    /// How much the margin can change when each readout `i` is off by at
    /// most `e[i]`: every margin here is 1-Lipschitz in the positions of its
    /// points and in each limited readout, and the speed is a Euclidean norm.
    pub(crate) fn error_bound(&self, e: &[Real]) -> Real {
        let bodies_bound = |bodies: &[Body]| {
            bodies
                .iter()
                .flat_map(|b| std::iter::once(&b.a).chain(b.b.as_ref()))
                .map(|p| p.error(e))
                .fold(0.0, Real::max)
        };
        match self {
            Guard::Distance { bodies, .. } | Guard::Workspace { bodies, .. } => {
                bodies_bound(bodies)
            }
            Guard::Limits { idx, .. } => idx.iter().map(|i| e[*i]).fold(0.0, Real::max),
            Guard::Speed { idx, .. } => idx.iter().map(|i| e[*i] * e[*i]).sum::<Real>().sqrt(),
        }
    }

    /// The largest limit margin any readouts can give: half the narrowest
    /// band of a limit, the `max` of a speed, half the narrowest side of a
    /// workspace less the body's radius (a point without a `z` readout sits
    /// at `z = 0`), and no bound for distances (far away is always clear).
    pub(crate) fn capacity(&self) -> Real {
        match self {
            Guard::Distance { .. } => Real::INFINITY,
            Guard::Workspace {
                bodies,
                lower,
                upper,
            } => {
                let point = |p: &Point, radius: Real| {
                    let mut m = Real::INFINITY;
                    for k in 0..3 {
                        let half = if k == 2 && !p.has_z() {
                            (-lower[k]).min(upper[k])
                        } else {
                            0.5 * (upper[k] - lower[k])
                        };
                        m = m.min(half - radius);
                    }
                    m
                };
                bodies
                    .iter()
                    .flat_map(|b| {
                        std::iter::once(point(&b.a, b.radius))
                            .chain(b.b.as_ref().map(|p| point(p, b.radius)))
                    })
                    .fold(Real::INFINITY, Real::min)
            }
            Guard::Limits { lower, upper, .. } => lower
                .iter()
                .zip(upper)
                .map(|(lo, hi)| 0.5 * (hi - lo))
                .fold(Real::INFINITY, Real::min),
            Guard::Speed { max, .. } => *max,
        }
    }

    /// The signed margin of the limit itself (no safety buffer) at readouts `y`.
    pub(crate) fn limit_margin(&self, y: &[Real]) -> Real {
        // `Real::min` and the distance functions drop NaN, so a readout that
        // is not finite could look safe: report NaN instead (shown as −∞).
        if !self.reads_finite(y) {
            return Real::NAN;
        }
        match self {
            Guard::Distance {
                bodies,
                shapes,
                min_distance,
            } => {
                let mut m = Real::INFINITY;
                for body in bodies {
                    let a = body.a.get(y);
                    for s in shapes {
                        let d = match &body.b {
                            None => s.signed_distance(&a),
                            Some(b) => s.segment_distance(&a, &b.get(y)),
                        };
                        m = m.min(d - body.radius - min_distance);
                    }
                }
                m
            }
            Guard::Workspace {
                bodies,
                lower,
                upper,
            } => {
                let mut m = Real::INFINITY;
                for body in bodies {
                    // The box is convex: a capsule is inside iff both end spheres are.
                    for p in std::iter::once(&body.a).chain(body.b.as_ref()) {
                        let q = p.get(y);
                        for k in 0..3 {
                            m = m.min(q[k] - lower[k] - body.radius);
                            m = m.min(upper[k] - q[k] - body.radius);
                        }
                    }
                }
                m
            }
            Guard::Limits { idx, lower, upper } => {
                let mut m = Real::INFINITY;
                for ((i, lo), hi) in idx.iter().zip(lower).zip(upper) {
                    m = m.min(y[*i] - lo).min(hi - y[*i]);
                }
                m
            }
            Guard::Speed { idx, max } => {
                let s = idx.iter().map(|i| y[*i] * y[*i]).sum::<Real>().sqrt();
                max - s
            }
        }
    }

    /// [`Guard::limit_margin`] of every row of `y` (`n×p`, `n = out.len()`),
    /// bit for bit. `finite` says every value of `y` is finite, which saves
    /// the test row by row. Distances run body by body and shape by shape
    /// over all rows, in vector registers: each body's points (one for a
    /// sphere, two for a capsule) are first copied into the columns of
    /// `cols`.
    pub(crate) fn limit_margins(
        &self,
        y: &[Real],
        p: usize,
        finite: bool,
        cols: &mut [Columns; 2],
        out: &mut [Real],
    ) {
        let rows = y.chunks_exact(p);
        let (bodies, shapes, min_distance) = match self {
            Guard::Distance {
                bodies,
                shapes,
                min_distance,
            } => (bodies, shapes, min_distance),
            // The same expressions as `limit_margin`, without its test of
            // every row when all are finite.
            Guard::Speed { idx, max } if finite => {
                for (row, o) in rows.zip(out.iter_mut()) {
                    *o = max - idx.iter().map(|i| row[*i] * row[*i]).sum::<Real>().sqrt();
                }
                return;
            }
            Guard::Limits { idx, lower, upper } if finite => {
                for (row, o) in rows.zip(out.iter_mut()) {
                    let mut m = Real::INFINITY;
                    for ((i, lo), hi) in idx.iter().zip(lower).zip(upper) {
                        m = m.min(row[*i] - lo).min(hi - row[*i]);
                    }
                    *o = m;
                }
                return;
            }
            _ => {
                for (row, o) in rows.zip(out.iter_mut()) {
                    *o = self.limit_margin(row);
                }
                return;
            }
        };
        out.fill(Real::INFINITY);
        // Per row, the same minima in the same order as `limit_margin`.
        let n = out.len();
        let [ca, cb] = cols;
        for body in bodies {
            ca.fill(y, p, body.a, n);
            let a = (&ca.x[..n], &ca.y[..n], &ca.z[..n]);
            let offsets = (body.radius, *min_distance);
            match &body.b {
                None => {
                    for shape in shapes {
                        wide(PointDistances {
                            shape,
                            a,
                            offsets,
                            m: out,
                        });
                    }
                }
                Some(b) => {
                    cb.fill(y, p, *b, n);
                    let b = (&cb.x[..n], &cb.y[..n], &cb.z[..n]);
                    for shape in shapes {
                        wide(SegmentDistances {
                            shape,
                            a,
                            b,
                            offsets,
                            m: out,
                        });
                    }
                }
            }
        }
        if !finite {
            for (row, o) in rows.zip(out.iter_mut()) {
                if !self.reads_finite(row) {
                    *o = Real::NAN;
                }
            }
        }
    }

    /// True when every readout this guardrail reads is finite.
    fn reads_finite(&self, y: &[Real]) -> bool {
        let point = |p: &Point| {
            let (x, yy, z) = p.indices();
            y[x].is_finite() && y[yy].is_finite() && z.is_none_or(|i| y[i].is_finite())
        };
        match self {
            Guard::Distance { bodies, .. } | Guard::Workspace { bodies, .. } => bodies
                .iter()
                .all(|b| point(&b.a) && b.b.as_ref().is_none_or(point)),
            Guard::Limits { idx, .. } | Guard::Speed { idx, .. } => {
                idx.iter().all(|i| y[*i].is_finite())
            }
        }
    }
}

/// The coordinates of one point of every row, column by column: what the
/// batched distances loop over.
#[derive(Clone, Debug, Default)]
pub(crate) struct Columns {
    x: Vec<Real>,
    y: Vec<Real>,
    z: Vec<Real>,
}

impl Columns {
    /// Columns for `n` rows, allocated now.
    pub(crate) fn new(n: usize) -> Self {
        Self {
            x: vec![0.0; n],
            y: vec![0.0; n],
            z: vec![0.0; n],
        }
    }

    /// Point `at` of the first `n` rows of `y` (`×p`); grows once if the
    /// columns are shorter.
    fn fill(&mut self, y: &[Real], p: usize, at: Point, n: usize) {
        for c in [&mut self.x, &mut self.y, &mut self.z] {
            if c.len() < n {
                c.resize(n, 0.0);
            }
        }
        let (ax, ay, az) = at.indices();
        let rows = y.chunks_exact(p).take(n);
        for ((row, x), yy) in rows.clone().zip(&mut self.x).zip(&mut self.y) {
            (*x, *yy) = (row[ax], row[ay]);
        }
        match az {
            Some(k) => {
                for (row, z) in rows.zip(&mut self.z) {
                    *z = row[k];
                }
            }
            None => self.z[..n].fill(0.0),
        }
    }
}

/// Columns `(x, y, z)` of a point of every row.
type Cols<'a> = (&'a [Real], &'a [Real], &'a [Real]);

/// `m ← min(m, (d − radius) − min_distance)` with `d` the signed distance
/// from each row's point to `shape`, as [`Guard::limit_margin`] computes it:
/// one loop per kind of shape, so that each is a plain loop the compiler
/// vectorizes. `offsets` is `(radius, min_distance)`.
struct PointDistances<'a> {
    shape: &'a CompiledShape,
    a: Cols<'a>,
    offsets: (Real, Real),
    m: &'a mut [Real],
}

impl Wide for PointDistances<'_> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let Self {
            shape,
            a: (x, y, z),
            offsets: (radius, min_distance),
            m,
        } = self;
        with_distance!(shape, |d| {
            for (m, ((x, y), z)) in m.iter_mut().zip(x.iter().zip(y).zip(z)) {
                *m = m.min(d.at([*x, *y, *z]) - radius - min_distance);
            }
        });
    }
}

/// [`PointDistances`] for segments (capsule bodies) from point `a` to point
/// `b` of every row: what [`CompiledShape::segment_distance`] gives.
struct SegmentDistances<'a> {
    shape: &'a CompiledShape,
    a: Cols<'a>,
    b: Cols<'a>,
    offsets: (Real, Real),
    m: &'a mut [Real],
}

impl Wide for SegmentDistances<'_> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let Self {
            shape,
            a: (ax, ay, az),
            b: (bx, by, bz),
            offsets: (radius, min_distance),
            m,
        } = self;
        let a = ax.iter().zip(ay).zip(az);
        let b = bx.iter().zip(by).zip(bz);
        with_distance!(shape, |d| {
            for (m, (((ax, ay), az), ((bx, by), bz))) in m.iter_mut().zip(a.zip(b)) {
                let s = d.along_segment([*ax, *ay, *az], [*bx, *by, *bz]);
                *m = m.min(s - radius - min_distance);
            }
        });
    }
}

/// Workspace of `Objective::add_violations`: one
/// guardrail's margins and the violations summed so far, per row.
#[derive(Clone, Debug, Default)]
pub(crate) struct Margins {
    pub(crate) cols: [Columns; 2],
    pub(crate) m: Vec<Real>,
    pub(crate) sum: Vec<Real>,
}

impl Margins {
    /// Buffers for `n` rows.
    pub(crate) fn new(n: usize) -> Self {
        Self {
            cols: [Columns::new(n), Columns::new(n)],
            m: vec![0.0; n],
            sum: vec![0.0; n],
        }
    }
}
