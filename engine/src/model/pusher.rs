//! Planar pushing: a velocity-controlled round pusher and a box sliding
//! quasi-statically on a table.

use super::{ModelSpec, WorldModel, check_predict, check_readout};
use crate::Real;
use crate::error::ModelError;

/// Settings of the [`Pusher`] model. Every field has a default (shown in its doc).
#[derive(Clone, Debug, PartialEq)]
pub struct PusherParams {
    /// Time step of one `predict`, in seconds (default 0.1).
    pub dt: Real,
    /// Bound of each velocity command, in m/s (default 0.3).
    pub max_speed: Real,
    /// Time constant of the pusher's first-order velocity lag, in seconds;
    /// 0 reaches the command within one step (default 0.1).
    pub tau: Real,
    /// Pusher radius in metres (default 0.03).
    pub pusher_radius: Real,
    /// Half side lengths of the box's footprint in metres (default [0.05, 0.05]).
    pub box_half_extents: [Real; 2],
    /// Pusher-to-box friction coefficient (default 0.3).
    pub pusher_friction: Real,
    /// Limit-surface length `c = m_max / f_max` of the box's support in
    /// metres: how hard the box is to turn rather than slide. 0 picks the value
    /// for a uniformly pressed footprint, its mean distance from the centre
    /// (0.383 of the side of a square); a box resting on its four corners has
    /// its half diagonal (default 0).
    pub limit_surface_length: Real,
    /// Sub-steps per `predict` in which contact is resolved (default 5).
    pub substeps: usize,
}

impl Default for PusherParams {
    fn default() -> Self {
        Self {
            dt: 0.1,
            max_speed: 0.3,
            tau: 0.1,
            pusher_radius: 0.03,
            box_half_extents: [0.05, 0.05],
            pusher_friction: 0.3,
            limit_surface_length: 0.0,
            substeps: 5,
        }
    }
}

/// A round pusher and a box on a table, the analytic approximation of the
/// `push` scene.
///
/// State, observation and latent coincide:
/// `[pusher.x, pusher.y, pusher.vx, pusher.vy, box.x, box.y, box.cos, box.sin]`
/// (world frame, metres and m/s; `box.cos`, `box.sin` of the box's yaw θ).
/// Action `[vx_cmd, vy_cmd]` in m/s.
///
/// One step: the pusher's velocity follows its command with a first-order lag,
/// `v' = v + α(u − v)`, `α = 1 − e^{−dt/τ}`, and the pusher moves by `v'·dt`
/// in `substeps` equal parts. After each part, if the pusher's disc overlaps
/// the box's rectangle by a depth `δ`, the box moves quasi-statically (no
/// inertia) until the overlap is gone. In the box frame, with the contact
/// point `q` on the outline, the inward normal `n`, the tangent `t`, the lever
/// `w = ẑ × q` and the limit-surface length `c` (ellipsoidal limit surface:
/// a contact force `F` makes the box translate by `F` and turn by `w·F / c²`;
/// Lee & Cutkosky 1991, Lynch, Maekawa & Tanie 1992):
///
/// - *sticking*: the contact point follows the pusher, `Δ = δ·n + (s·t)·t`
///   with `s` the pusher's motion in this part; the force solving
///   `F + w(w·F)/c² = Δ` is `F = Δ − w(w·Δ)/(c² + |w|²)`. It is kept when it
///   lies in the friction cone, `|F·t| ≤ μ·F·n`;
/// - *sliding* otherwise: the force lies on the cone's edge, `f = n ± μt`, and
///   the twist it causes is scaled so that the contact point moves by `δ`
///   along `n`.
///
/// With `μ = 0` this is a frictionless push along the contact normal.
///
/// Readouts: the eight state entries, `offset.x`, `offset.y` (pusher minus box
/// centre, world frame) and `speed` (the pusher's speed).
///
/// Limits, by design: the box has no inertia and stops the instant it is no
/// longer pushed (a real box slides on for a few millimetres); the pusher is
/// never slowed by the box; the support's pressure distribution is fixed (a
/// box pushed at mid-height shifts its load to the leading edge, which `c`
/// and `μ` can only absorb on average); the box never tips; a light touch
/// without overlap never drags it. Jacobians are the trait's finite
/// differences (the model is only piecewise smooth: it has kinks where
/// contact begins and where sticking turns into sliding).
#[derive(Clone, Debug)]
pub struct Pusher {
    spec: ModelSpec,
    params: PusherParams,
    alpha: Real,
    /// Squared limit-surface length `c²`.
    c2: Real,
    /// Pusher–box friction coefficient.
    mu: Real,
}

impl Pusher {
    /// Names of the readouts: the state (the first eight, also the
    /// observations), then the pusher's offset from the box and its speed.
    /// The push scene's ground truth has the same names.
    pub const READOUTS: [&'static str; 11] = [
        "pusher.x",
        "pusher.y",
        "pusher.vx",
        "pusher.vy",
        "box.x",
        "box.y",
        "box.cos",
        "box.sin",
        "offset.x",
        "offset.y",
        "speed",
    ];

    /// A pusher model with the given settings.
    ///
    /// ```
    /// use telic::model::{Pusher, PusherParams};
    /// use telic::WorldModel;
    ///
    /// let mut m = Pusher::new(&PusherParams::default()).unwrap();
    /// // Pusher 1 cm behind the box's left face, pushing along +x.
    /// let z = [-0.09, 0.0, 0.2, 0.0, 0.0, 0.0, 1.0, 0.0];
    /// let mut next = [0.0; 8];
    /// m.predict(&z, &[0.2, 0.0], &mut next).unwrap();
    /// assert!(next[4] > 0.005); // the box moved along +x
    /// ```
    pub fn new(params: &PusherParams) -> Result<Self, ModelError> {
        let bad = |m: String| Err(ModelError::Invalid(format!("pusher: {m}")));
        let [hx, hy] = params.box_half_extents;
        for (name, v) in [
            ("pusher_radius", params.pusher_radius),
            ("box_half_extents[0]", hx),
            ("box_half_extents[1]", hy),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return bad(format!(
                    "{name} must be positive, got {}",
                    crate::limits::num(v)
                ));
            }
        }
        for (name, v) in [
            ("tau", params.tau),
            ("pusher_friction", params.pusher_friction),
            ("limit_surface_length", params.limit_surface_length),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return bad(format!(
                    "{name} must be >= 0, got {}",
                    crate::limits::num(v)
                ));
            }
        }
        if params.substeps == 0 {
            return bad("substeps must be positive".into());
        }
        let names = |xs: &[&str]| xs.iter().map(|s| (*s).to_string()).collect::<Vec<_>>();
        let spec = ModelSpec {
            name: "pusher".into(),
            image: None,
            observations: names(&Self::READOUTS[..8]),
            actions: names(&["vx_cmd", "vy_cmd"]),
            latent_dim: 8,
            readouts: names(&Self::READOUTS),
            action_lower: vec![-params.max_speed; 2],
            action_upper: vec![params.max_speed; 2],
            dt: params.dt,
        };
        spec.validate()?;
        let alpha = super::lag_factor(params.dt, params.tau);
        let c = if params.limit_surface_length > 0.0 {
            params.limit_surface_length
        } else {
            limit_surface_length(hx, hy)
        };
        Ok(Self {
            spec,
            params: params.clone(),
            alpha,
            c2: c * c,
            mu: params.pusher_friction,
        })
    }

    /// The settings this model was built with.
    #[must_use]
    pub fn params(&self) -> &PusherParams {
        &self.params
    }

    /// Resolves the overlap of the pusher at `p` with the box at `b`, yaw `th`.
    fn resolve(&self, p: [Real; 2], step: [Real; 2], b: &mut [Real; 2], th: &mut Real) {
        let [hx, hy] = self.params.box_half_extents;
        let (s, c) = th.sin_cos();
        let (dx, dy) = (p[0] - b[0], p[1] - b[1]);
        // Pusher centre in the box frame.
        let rel = [c * dx + s * dy, -s * dx + c * dy];
        let q = [rel[0].clamp(-hx, hx), rel[1].clamp(-hy, hy)];
        let (ex, ey) = (rel[0] - q[0], rel[1] - q[1]);
        let dist = ex.hypot(ey);
        // Outward normal at the contact point `q` and signed distance to the outline.
        let (q, n_out, sd) = if dist > 1e-12 {
            (q, [ex / dist, ey / dist], dist)
        } else {
            let (gx, gy) = (hx - rel[0].abs(), hy - rel[1].abs());
            if gx <= gy {
                let sx = if rel[0] >= 0.0 { 1.0 } else { -1.0 };
                ([sx * hx, rel[1]], [sx, 0.0], -gx)
            } else {
                let sy = if rel[1] >= 0.0 { 1.0 } else { -1.0 };
                ([rel[0], sy * hy], [0.0, sy], -gy)
            }
        };
        let depth = self.params.pusher_radius - sd;
        if depth <= 0.0 {
            return;
        }
        // Box frame from here on: inward normal n, tangent t, and the lever
        // w = ẑ × q, so that a twist (v, ω) moves the contact point by v + ω·w.
        let n = [-n_out[0], -n_out[1]];
        let t = [-n[1], n[0]];
        let w = [-q[1], q[0]];
        let c2 = self.c2;
        let dot = |a: [Real; 2], b: [Real; 2]| a[0] * b[0] + a[1] * b[1];
        let slide = [c * step[0] + s * step[1], -s * step[0] + c * step[1]];
        // Sticking: the contact point follows the pusher (the overlap along n,
        // the pusher's own motion along t). The force F obeys F + w(w·F)/c² = Δ.
        let dn = [depth * n[0], depth * n[1]];
        let dt = dot(slide, t);
        let delta = [dn[0] + dt * t[0], dn[1] + dt * t[1]];
        let wd = dot(w, delta) / (c2 + dot(w, w));
        let f_stick = [delta[0] - wd * w[0], delta[1] - wd * w[1]];
        let (fn_, ft) = (dot(f_stick, n), dot(f_stick, t));
        let (v, om) = if fn_ > 0.0 && ft.abs() <= self.mu * fn_ {
            (f_stick, dot(w, f_stick) / c2)
        } else {
            // Sliding: the force lies on the friction cone's edge; scale the
            // twist it causes so that the overlap is removed.
            let sgn = if ft >= 0.0 { 1.0 } else { -1.0 };
            let edge = |mu: Real| [n[0] + sgn * mu * t[0], n[1] + sgn * mu * t[1]];
            let along_n = |f: [Real; 2]| dot(f, n) + dot(w, f) * dot(w, n) / c2;
            let mut f = edge(self.mu);
            if along_n(f) < 1e-9 {
                f = edge(0.0);
            }
            let k = depth / along_n(f);
            ([k * f[0], k * f[1]], k * dot(w, f) / c2)
        };
        b[0] += c * v[0] - s * v[1];
        b[1] += s * v[0] + c * v[1];
        *th += om;
    }
}

/// Mean distance from the centre of a `2a × 2b` rectangle to its points: the
/// ratio `m_max / f_max` of a uniformly pressed footprint.
fn limit_surface_length(a: Real, b: Real) -> Real {
    let d = a.hypot(b);
    // ∫₀ᵃ∫₀ᵇ √(x²+y²) dy dx, one quadrant.
    let i =
        (2.0 * a * b * d + a.powi(3) * ((b + d) / a).ln() + b.powi(3) * ((a + d) / b).ln()) / 6.0;
    i / (a * b)
}

impl WorldModel for Pusher {
    analytic_basics!(identity_encode);

    fn predict(&mut self, z: &[Real], u: &[Real], z_next: &mut [Real]) -> Result<(), ModelError> {
        check_predict(&self.spec, z, u, z_next)?;
        let (al, n) = (self.alpha, self.params.substeps);
        let h = self.params.dt / n as Real;
        for ((s, a), o) in z
            .chunks_exact(8)
            .zip(u.chunks_exact(2))
            .zip(z_next.chunks_exact_mut(8))
        {
            let v = [s[2] + al * (a[0] - s[2]), s[3] + al * (a[1] - s[3])];
            let mut p = [s[0], s[1]];
            let mut b = [s[4], s[5]];
            // atan2 also renormalises a (cos, sin) pair that has drifted off the circle.
            let mut th = s[7].atan2(s[6]);
            for _ in 0..n {
                p[0] += v[0] * h;
                p[1] += v[1] * h;
                self.resolve(p, [v[0] * h, v[1] * h], &mut b, &mut th);
            }
            let (sn, cs) = th.sin_cos();
            o.copy_from_slice(&[p[0], p[1], v[0], v[1], b[0], b[1], cs, sn]);
        }
        Ok(())
    }

    fn readout(&mut self, z: &[Real], y: &mut [Real]) -> Result<(), ModelError> {
        check_readout(&self.spec, z, y)?;
        for (s, o) in z.chunks_exact(8).zip(y.chunks_exact_mut(11)) {
            o[..8].copy_from_slice(s);
            o[8] = s[0] - s[4];
            o[9] = s[1] - s[5];
            o[10] = s[2].hypot(s[3]);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> Pusher {
        Pusher::new(&PusherParams::default()).unwrap()
    }

    /// Runs `steps` predictions of a constant action from `z`.
    fn roll(m: &mut Pusher, mut z: [Real; 8], u: [Real; 2], steps: usize) -> [Real; 8] {
        for _ in 0..steps {
            let mut next = [0.0; 8];
            m.predict(&z, &u, &mut next).unwrap();
            z = next;
        }
        z
    }

    #[test]
    fn limit_surface_length_of_a_square() {
        // (√2 + ln(1 + √2)) / 6 of the side for a uniform square.
        let c = limit_surface_length(0.05, 0.05);
        assert!((c - 0.038_26).abs() < 1e-5, "{c}");
    }

    #[test]
    fn free_pusher_follows_its_command_without_moving_the_box() {
        let mut m = model();
        let z = roll(
            &mut m,
            [0.3, 0.3, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0],
            [0.0, -0.2],
            5,
        );
        let al = m.alpha;
        let v_expect = 0.2 * (1.0 - (1.0 - al).powi(5));
        assert!((z[3] + v_expect).abs() < 1e-12, "{z:?}");
        assert!(z[1] < 0.3 - 0.05 && z[0] == 0.3, "{z:?}");
        assert_eq!(&z[4..], &[0.0, 0.0, 1.0, 0.0]);
    }

    #[test]
    fn centred_push_translates_the_box() {
        let mut m = model();
        let z = roll(
            &mut m,
            [-0.1, 0.0, 0.2, 0.0, 0.0, 0.0, 1.0, 0.0],
            [0.2, 0.0],
            10,
        );
        // Pusher and box move together, in contact, without turning.
        assert!((z[0] - z[4] + 0.08).abs() < 1e-3, "{z:?}");
        assert!(
            z[4] > 0.1 && z[5].abs() < 1e-12 && z[7].abs() < 1e-12,
            "{z:?}"
        );
    }

    #[test]
    fn offset_push_turns_the_box_away_from_the_contact() {
        let mut m = model();
        // Pushing +x on the face x = −0.05 above the centre (y > 0) turns the box clockwise.
        let z = roll(
            &mut m,
            [-0.1, 0.03, 0.2, 0.0, 0.0, 0.0, 1.0, 0.0],
            [0.2, 0.0],
            10,
        );
        assert!(z[7] < -0.05 && z[4] > 0.05, "{z:?}");
        assert!((z[6].hypot(z[7]) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn readouts_and_bad_input() {
        let mut m = model();
        let z = [0.1, 0.2, 0.3, -0.4, 0.05, 0.1, 0.6, 0.8];
        let mut y = [0.0; 11];
        m.readout(&z, &mut y).unwrap();
        assert_eq!(&y[..8], &z);
        assert!((y[8] - 0.05).abs() < 1e-12 && (y[9] - 0.1).abs() < 1e-12);
        assert!((y[10] - 0.5).abs() < 1e-12);
        let mut short = [0.0; 7];
        assert!(m.predict(&z, &[0.0; 2], &mut short).is_err());
        let p = PusherParams {
            pusher_radius: -1.0,
            ..PusherParams::default()
        };
        assert!(
            Pusher::new(&p)
                .unwrap_err()
                .to_string()
                .contains("pusher_radius")
        );
    }

    #[test]
    fn default_jacobians_are_finite_away_from_the_contact_kink() {
        let mut m = model();
        let (mut a, mut b) = ([0.0; 64], [0.0; 16]);
        // In firm contact: the box moves with the pusher.
        let z = [-0.085, 0.01, 0.2, 0.0, 0.0, 0.0, 1.0, 0.0];
        m.predict_jacobians(&z, &[0.2, 0.05], &mut a, &mut b)
            .unwrap();
        assert!(a.iter().chain(&b).all(|x| x.is_finite()));
        // ∂box.x'/∂vx_cmd is positive: pushing harder moves the box further.
        assert!(b[4 * 2] > 0.01, "{b:?}");
    }
}
