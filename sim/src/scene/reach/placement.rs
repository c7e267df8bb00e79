//! Where a reach episode starts and ends: random arm configurations that
//! are high enough and clear of the keep-out boxes, and the gaps that prove
//! an episode solvable.

use super::ReachConfig;
use rapier3d::na::Vector3;
use telic::Real;
use telic::model::SerialArm;
use telic::objective::geometry::CompiledShape;
use telic::rng::Rng;

type V3 = Vector3<Real>;

/// Geometry used to place boxes and prove an episode solvable: the arm's
/// link positions at sampled configurations.
pub(super) struct Placement<'a> {
    arm: &'a mut SerialArm,
    config: &'a ReachConfig,
    points: Vec<[Real; 3]>,
    /// Link positions at `q = 0`: frames that stay there whatever `q` (the
    /// base) are exempt from `min_height`.
    rest: Vec<[Real; 3]>,
}

impl<'a> Placement<'a> {
    /// Placement with `arm`, whose link positions at `q = 0` are `rest`.
    pub(super) fn new(
        arm: &'a mut SerialArm,
        config: &'a ReachConfig,
        rest: Vec<[Real; 3]>,
    ) -> Self {
        Self {
            points: rest.clone(),
            rest,
            arm,
            config,
        }
    }

    /// The tool's position at the configuration last passed to [`Self::fk`].
    pub(super) fn tip(&self) -> [Real; 3] {
        self.points.last().copied().unwrap_or([0.0; 3])
    }

    /// Link frame positions at `q`.
    pub(super) fn fk(&mut self, q: &[Real]) -> bool {
        self.arm.link_positions(q, &mut self.points).is_ok()
    }

    /// A random configuration inside the inset limits whose links are high
    /// enough and whose tool is away from the base axis.
    pub(super) fn config(&mut self, rng: &mut Rng) -> Option<Vec<Real>> {
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
    pub(super) fn gap(&mut self, q: &[Real], shapes: &[CompiledShape]) -> Real {
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
    pub(super) fn near_midpoint(&self, a: &[Real], b: &[Real], rng: &mut Rng) -> Vec<Real> {
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
    pub(super) fn path_gap(&mut self, a: &[Real], b: &[Real], shapes: &[CompiledShape]) -> Real {
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
