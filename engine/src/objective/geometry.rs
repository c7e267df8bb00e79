//! Shapes for guardrails and signed distances between robot bodies
//! (spheres and capsules) and keep-out shapes.
//!
//! Every distance here is either exact or a *lower bound* on the true distance,
//! so a guardrail built on it can only err on the safe side.

use crate::Real;
use crate::limits::num;
use nalgebra::{Rotation3, Vector3};
use serde::{Deserialize, Serialize};

type V3 = Vector3<Real>;

/// A keep-out or obstacle shape in world coordinates.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Shape {
    /// A box; axis-aligned unless `rpy` (roll, pitch, yaw in radians) is given.
    Box {
        /// Centre.
        center: [Real; 3],
        /// Half side lengths, all `> 0`.
        half_extents: [Real; 3],
        /// Orientation as roll, pitch, yaw (default: axis-aligned).
        #[serde(default)]
        rpy: [Real; 3],
    },
    /// A ball.
    Sphere {
        /// Centre.
        center: [Real; 3],
        /// Radius `> 0`.
        radius: Real,
    },
    /// All points within `radius` of the segment `a`–`b`.
    Capsule {
        /// One end of the axis.
        a: [Real; 3],
        /// The other end of the axis.
        b: [Real; 3],
        /// Radius `> 0`.
        radius: Real,
    },
    /// A cylinder whose axis is vertical (z).
    Cylinder {
        /// Centre.
        center: [Real; 3],
        /// Radius `> 0`.
        radius: Real,
        /// Half height `> 0`.
        half_height: Real,
    },
}

impl Shape {
    /// Checks that sizes are positive and finite.
    pub fn validate(&self) -> Result<(), String> {
        let pos = |what: &str, x: Real| {
            if x.is_finite() && x > 0.0 {
                Ok(())
            } else {
                Err(format!("{what} must be positive, got {}", num(x)))
            }
        };
        let fin = |what: &str, xs: &[Real]| {
            if xs.iter().all(|x| x.is_finite()) {
                Ok(())
            } else {
                Err(format!("{what} must be finite, got {xs:?}"))
            }
        };
        match self {
            Shape::Box {
                center,
                half_extents,
                rpy,
            } => {
                fin("box center", center)?;
                fin("box rpy", rpy)?;
                half_extents
                    .iter()
                    .try_for_each(|h| pos("box half_extents", *h))
            }
            Shape::Sphere { center, radius } => {
                fin("sphere center", center)?;
                pos("sphere radius", *radius)
            }
            Shape::Capsule { a, b, radius } => {
                fin("capsule a", a)?;
                fin("capsule b", b)?;
                pos("capsule radius", *radius)
            }
            Shape::Cylinder {
                center,
                radius,
                half_height,
            } => {
                fin("cylinder center", center)?;
                pos("cylinder radius", *radius)?;
                pos("cylinder half_height", *half_height)
            }
        }
    }

    /// Precomputes what distance queries need.
    #[must_use]
    pub fn compile(&self) -> CompiledShape {
        match *self {
            Shape::Box {
                center,
                half_extents,
                rpy,
            } => CompiledShape::Box {
                center: V3::from(center),
                half: V3::from(half_extents),
                world_from_box: Rotation3::from_euler_angles(rpy[0], rpy[1], rpy[2]),
                axis_aligned: rpy == [0.0; 3],
            },
            Shape::Sphere { center, radius } => CompiledShape::Sphere {
                center: V3::from(center),
                radius,
            },
            Shape::Capsule { a, b, radius } => CompiledShape::Capsule {
                a: V3::from(a),
                b: V3::from(b),
                radius,
            },
            Shape::Cylinder {
                center,
                radius,
                half_height,
            } => CompiledShape::Cylinder {
                center: V3::from(center),
                radius,
                half_height,
            },
        }
    }
}

/// A [`Shape`] ready for fast distance queries.
#[derive(Clone, Debug, PartialEq)]
pub enum CompiledShape {
    /// Oriented box.
    Box {
        /// Centre.
        center: V3,
        /// Half extents.
        half: V3,
        /// Rotation from box to world frame.
        world_from_box: Rotation3<Real>,
        /// Skips the rotation when true.
        axis_aligned: bool,
    },
    /// Ball.
    Sphere {
        /// Centre.
        center: V3,
        /// Radius.
        radius: Real,
    },
    /// Capsule.
    Capsule {
        /// Axis start.
        a: V3,
        /// Axis end.
        b: V3,
        /// Radius.
        radius: Real,
    },
    /// Vertical cylinder.
    Cylinder {
        /// Centre.
        center: V3,
        /// Radius.
        radius: Real,
        /// Half height.
        half_height: Real,
    },
}

impl CompiledShape {
    /// Signed distance from point `p` to the shape (negative inside).
    #[must_use]
    pub fn signed_distance(&self, p: &V3) -> Real {
        self.point_distance([p.x, p.y, p.z])
    }

    /// [`CompiledShape::signed_distance`] of point `p`, through the
    /// [`Distance`] of the shape's kind, which the guardrails' batched
    /// margins also call in their loops over many points (where it becomes
    /// vector instructions), so that both give the same bits.
    #[inline(always)]
    pub(crate) fn point_distance(&self, p: [Real; 3]) -> Real {
        with_distance!(self, |d| d.at(p))
    }

    /// A lower bound on the signed distance from segment `a`–`b` to the shape,
    /// exact for spheres and capsules.
    #[must_use]
    pub fn segment_distance(&self, a: &V3, b: &V3) -> Real {
        with_distance!(self, |d| d.along_segment([a.x, a.y, a.z], [b.x, b.y, b.z]))
    }
}

/// Runs `$body` with `$d` bound to `$shape` as the [`Distance`] of its kind:
/// the kind is matched once, outside whatever loops `$body` runs, and each
/// kind's loop is plain code the compiler can vectorize.
macro_rules! with_distance {
    ($shape:expr, |$d:ident| $body:expr) => {
        match $shape {
            CompiledShape::Box {
                center,
                half,
                world_from_box,
                axis_aligned: true,
            } => {
                let $d = &BoxAt::<true> {
                    center,
                    half,
                    world_from_box,
                };
                $body
            }
            CompiledShape::Box {
                center,
                half,
                world_from_box,
                axis_aligned: false,
            } => {
                let $d = &BoxAt::<false> {
                    center,
                    half,
                    world_from_box,
                };
                $body
            }
            CompiledShape::Sphere { center, radius } => {
                let $d = &SphereAt {
                    center,
                    radius: *radius,
                };
                $body
            }
            CompiledShape::Capsule { a, b, radius } => {
                let $d = &CapsuleAt {
                    a,
                    b,
                    radius: *radius,
                };
                $body
            }
            CompiledShape::Cylinder {
                center,
                radius,
                half_height,
            } => {
                let $d = &CylinderAt {
                    center,
                    radius: *radius,
                    half_height: *half_height,
                };
                $body
            }
        }
    };
}
pub(crate) use with_distance;

/// One kind of shape, for the loops that measure many points or segments
/// against it (its methods are inlined into them, where a closure might be
/// left as a call).
pub(crate) trait Distance: Sized {
    /// The signed distance from `p`.
    fn at(&self, p: [Real; 3]) -> Real;

    /// A lower bound on the signed distance from segment `a`–`b`: by default
    /// [`golden_segment_distance`], for shapes with a convex distance.
    #[inline(always)]
    fn along_segment(&self, a: [Real; 3], b: [Real; 3]) -> Real {
        golden_segment_distance(a, b, self)
    }
}

/// A box, axis-aligned when `ALIGNED`.
pub(crate) struct BoxAt<'a, const ALIGNED: bool> {
    pub center: &'a V3,
    pub half: &'a V3,
    pub world_from_box: &'a Rotation3<Real>,
}

impl<const ALIGNED: bool> Distance for BoxAt<'_, ALIGNED> {
    #[inline(always)]
    fn at(&self, p: [Real; 3]) -> Real {
        box_distance(p, self.center, self.half, self.world_from_box, ALIGNED)
    }
}

/// A vertical cylinder.
pub(crate) struct CylinderAt<'a> {
    pub center: &'a V3,
    pub radius: Real,
    pub half_height: Real,
}

impl Distance for CylinderAt<'_> {
    #[inline(always)]
    fn at(&self, p: [Real; 3]) -> Real {
        cylinder_distance(p, self.center, self.radius, self.half_height)
    }
}

/// A ball: exact distances from segments too.
pub(crate) struct SphereAt<'a> {
    pub center: &'a V3,
    pub radius: Real,
}

impl Distance for SphereAt<'_> {
    #[inline(always)]
    fn at(&self, p: [Real; 3]) -> Real {
        sphere_distance(p, self.center, self.radius)
    }
    #[inline(always)]
    fn along_segment(&self, a: [Real; 3], b: [Real; 3]) -> Real {
        point_segment_distance(self.center, &V3::from(a), &V3::from(b)) - self.radius
    }
}

/// A capsule: exact distances from segments too.
pub(crate) struct CapsuleAt<'a> {
    pub a: &'a V3,
    pub b: &'a V3,
    pub radius: Real,
}

impl Distance for CapsuleAt<'_> {
    #[inline(always)]
    fn at(&self, p: [Real; 3]) -> Real {
        point_segment_distance(&V3::from(p), self.a, self.b) - self.radius
    }
    #[inline(always)]
    fn along_segment(&self, a: [Real; 3], b: [Real; 3]) -> Real {
        segment_segment_distance(&V3::from(a), &V3::from(b), self.a, self.b) - self.radius
    }
}

/// The golden ratio's inverse, the bracket's shrink per search step.
const G: Real = 0.618_033_988_749_895;

/// A lower bound on the smallest signed distance `d` along segment `a`–`b`,
/// for a shape whose signed distance is convex (boxes, cylinders): a
/// golden-section search, exact to the final bracket width since `d` is
/// 1-Lipschitz. Without branches, so that a loop over many segments runs
/// in vector registers: each step picks its bracket with selects, which
/// compute what the textbook branches compute.
#[inline(always)]
pub(crate) fn golden_segment_distance(a: [Real; 3], b: [Real; 3], d: &impl Distance) -> Real {
    let ab = [b[0] - a[0], b[1] - a[1], b[2] - a[2]];
    let len = (ab[0] * ab[0] + ab[1] * ab[1] + ab[2] * ab[2]).sqrt();
    // A function, not a closure: the compiler leaves a closure here as a
    // call, and the loop over segments in scalar code.
    #[inline(always)]
    fn along(d: &impl Distance, a: [Real; 3], ab: [Real; 3], t: Real) -> Real {
        d.at([a[0] + ab[0] * t, a[1] + ab[1] * t, a[2] + ab[2] * t])
    }
    /// One step of the search, with selects for the textbook branches.
    #[inline(always)]
    fn step(d: &impl Distance, a: [Real; 3], ab: [Real; 3], s: [Real; 6]) -> [Real; 6] {
        let [lo, hi, x1, f1, x2, f2] = s;
        // Left: the minimum is in [lo, x2]; x1 becomes the upper probe.
        let left = f1 <= f2;
        let (lo, hi) = if left { (lo, x2) } else { (x1, hi) };
        let x = if left {
            hi - G * (hi - lo)
        } else {
            lo + G * (hi - lo)
        };
        let fx = along(d, a, ab, x);
        let (x1, f1, x2, f2) = if left {
            (x, fx, x1, f1)
        } else {
            (x2, f2, x, fx)
        };
        [lo, hi, x1, f1, x2, f2]
    }
    let (lo, hi) = (0.0, 1.0);
    let x1 = hi - G * (hi - lo);
    let x2 = lo + G * (hi - lo);
    /// Four steps in a row.
    #[inline(always)]
    fn four(d: &impl Distance, a: [Real; 3], ab: [Real; 3], s: [Real; 6]) -> [Real; 6] {
        step(d, a, ab, step(d, a, ab, step(d, a, ab, step(d, a, ab, s))))
    }
    let s = [lo, hi, x1, along(d, a, ab, x1), x2, along(d, a, ab, x2)];
    // Twelve steps written out: as a loop, the compiler keeps it (its body
    // is long), and a loop inside the loop over segments is not vectorized.
    let s = four(d, a, ab, four(d, a, ab, four(d, a, ab, s)));
    let [lo, hi, _, f1, _, f2] = s;
    let best = f1
        .min(f2)
        .min(along(d, a, ab, 0.0))
        .min(along(d, a, ab, 1.0));
    let bound = best - (hi - lo) * len;
    // A segment too short to search is its end point.
    if len < 1e-9 { d.at(a) } else { bound }
}

/// Signed distance from `p` to a box (`aligned`: `world_from_box` is the
/// identity, and is skipped).
#[inline(always)]
pub(crate) fn box_distance(
    p: [Real; 3],
    center: &V3,
    half: &V3,
    world_from_box: &Rotation3<Real>,
    aligned: bool,
) -> Real {
    let d = [p[0] - center.x, p[1] - center.y, p[2] - center.z];
    let q = if aligned {
        d
    } else {
        // The transposed rotation: box frame from world frame.
        let r = world_from_box.matrix();
        let col = |j: usize| r[(0, j)] * d[0] + r[(1, j)] * d[1] + r[(2, j)] * d[2];
        [col(0), col(1), col(2)]
    };
    let e = [
        q[0].abs() - half.x,
        q[1].abs() - half.y,
        q[2].abs() - half.z,
    ];
    let o = e.map(|x| x.max(0.0));
    let outside = (o[0] * o[0] + o[1] * o[1] + o[2] * o[2]).sqrt();
    let inside = e[0].max(e[1]).max(e[2]).min(0.0);
    outside + inside
}

/// Signed distance from `p` to a ball.
#[inline(always)]
pub(crate) fn sphere_distance(p: [Real; 3], center: &V3, radius: Real) -> Real {
    let d = [p[0] - center.x, p[1] - center.y, p[2] - center.z];
    (d[0] * d[0] + d[1] * d[1] + d[2] * d[2]).sqrt() - radius
}

/// Signed distance from `p` to a vertical cylinder.
#[inline(always)]
pub(crate) fn cylinder_distance(
    p: [Real; 3],
    center: &V3,
    radius: Real,
    half_height: Real,
) -> Real {
    let d = [p[0] - center.x, p[1] - center.y, p[2] - center.z];
    let dr = (d[0] * d[0] + d[1] * d[1]).sqrt() - radius;
    let dz = d[2].abs() - half_height;
    let (or, oz) = (dr.max(0.0), dz.max(0.0));
    let outside = (or * or + oz * oz).sqrt();
    outside + dr.max(dz).min(0.0)
}

/// Distance from point `p` to segment `a`–`b`.
#[must_use]
#[inline(always)]
pub fn point_segment_distance(p: &V3, a: &V3, b: &V3) -> Real {
    let ab = b - a;
    let denom = ab.norm_squared();
    let t = if denom > 0.0 {
        ((p - a).dot(&ab) / denom).clamp(0.0, 1.0)
    } else {
        0.0
    };
    (p - (a + ab * t)).norm()
}

/// Distance between segments `p1`–`q1` and `p2`–`q2` (Ericson, *Real-Time
/// Collision Detection*, 5.1.9).
#[must_use]
pub fn segment_segment_distance(p1: &V3, q1: &V3, p2: &V3, q2: &V3) -> Real {
    let d1 = q1 - p1;
    let d2 = q2 - p2;
    let r = p1 - p2;
    let a = d1.norm_squared();
    let e = d2.norm_squared();
    let f = d2.dot(&r);
    let eps = 1e-12;
    let (s, t);
    if a <= eps && e <= eps {
        return r.norm();
    }
    if a <= eps {
        s = 0.0;
        t = (f / e).clamp(0.0, 1.0);
    } else {
        let c = d1.dot(&r);
        if e <= eps {
            t = 0.0;
            s = (-c / a).clamp(0.0, 1.0);
        } else {
            let b = d1.dot(&d2);
            let denom = a * e - b * b;
            let mut s0 = if denom > eps {
                ((b * f - c * e) / denom).clamp(0.0, 1.0)
            } else {
                0.0
            };
            let mut t0 = (b * s0 + f) / e;
            if t0 < 0.0 {
                t0 = 0.0;
                s0 = (-c / a).clamp(0.0, 1.0);
            } else if t0 > 1.0 {
                t0 = 1.0;
                s0 = ((b - c) / a).clamp(0.0, 1.0);
            }
            s = s0;
            t = t0;
        }
    }
    ((p1 + d1 * s) - (p2 + d2 * t)).norm()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(x: Real, y: Real, z: Real) -> V3 {
        V3::new(x, y, z)
    }

    fn brute_segment(shape: &CompiledShape, a: &V3, b: &V3) -> Real {
        (0..=20_000)
            .map(|i| shape.signed_distance(&(a + (b - a) * (i as Real / 20_000.0))))
            .fold(Real::INFINITY, Real::min)
    }

    #[test]
    fn box_distances() {
        let b = Shape::Box {
            center: [1.0, 0.0, 0.0],
            half_extents: [0.5, 0.5, 0.5],
            rpy: [0.0; 3],
        }
        .compile();
        assert!((b.signed_distance(&v(0.0, 0.0, 0.0)) - 0.5).abs() < 1e-12);
        assert!((b.signed_distance(&v(1.0, 0.0, 0.0)) + 0.5).abs() < 1e-12);
        let rotated = Shape::Box {
            center: [0.0; 3],
            half_extents: [1.0, 0.1, 0.1],
            rpy: [0.0, 0.0, std::f64::consts::FRAC_PI_2],
        }
        .compile();
        // Rotated by 90° about z, the long side lies along y.
        assert!((rotated.signed_distance(&v(0.0, 0.9, 0.0)) + 0.1).abs() < 1e-9);
        assert!((rotated.signed_distance(&v(0.9, 0.0, 0.0)) - 0.8).abs() < 1e-9);
    }

    #[test]
    fn segment_distance_is_a_tight_lower_bound() {
        let shapes = [
            Shape::Box {
                center: [0.3, 0.2, 0.1],
                half_extents: [0.2, 0.1, 0.3],
                rpy: [0.3, -0.2, 0.7],
            },
            Shape::Sphere {
                center: [0.1, 0.5, 0.0],
                radius: 0.2,
            },
            Shape::Capsule {
                a: [0.0, 0.0, 0.5],
                b: [0.5, 0.5, 0.5],
                radius: 0.1,
            },
            Shape::Cylinder {
                center: [0.4, -0.3, 0.0],
                radius: 0.2,
                half_height: 0.4,
            },
        ];
        let segments = [
            (v(-1.0, -1.0, 0.0), v(1.0, 1.0, 0.2)),
            (v(-0.5, 0.8, 0.9), v(0.9, -0.6, -0.4)),
            (v(0.0, 0.0, 0.0), v(0.0, 0.0, 0.0)),
        ];
        for s in &shapes {
            let c = s.compile();
            for (a, b) in &segments {
                let got = c.segment_distance(a, b);
                let truth = brute_segment(&c, a, b);
                assert!(got <= truth + 1e-6, "{s:?}: {got} > {truth}");
                assert!(got >= truth - 0.01, "{s:?}: {got} far below {truth}");
            }
        }
    }

    #[test]
    fn invalid_shapes_are_rejected() {
        let s = Shape::Sphere {
            center: [0.0; 3],
            radius: -1.0,
        };
        assert!(s.validate().unwrap_err().contains("radius"));
    }
}
