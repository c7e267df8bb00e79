//! Gymnasium's `Pendulum-v1`: a torque-driven pendulum with semi-implicit
//! Euler steps.

use super::{ModelSpec, WorldModel, check_encode, check_predict, check_readout, expect_len};
use crate::Real;
use crate::error::ModelError;
use crate::math::{self, Wide, clip, wide};
use serde::{Deserialize, Serialize};
use std::f64::consts::{PI, TAU};

/// Settings of the [`Pendulum`] model. The defaults (shown in each doc) are
/// gymnasium's `Pendulum-v1`; a missing field takes its default when read
/// with serde, an unknown one is an error.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PendulumParams {
    /// Time step of one `predict`, in seconds (default 0.05).
    pub dt: Real,
    /// Gravity in m/s² (default 10).
    pub g: Real,
    /// Mass in kg (default 1).
    pub m: Real,
    /// Length in metres (default 1).
    pub l: Real,
    /// Bound of the angular velocity, in rad/s (default 8).
    pub max_speed: Real,
    /// Bound of the torque, in N·m (default 2).
    pub max_torque: Real,
}

impl Default for PendulumParams {
    fn default() -> Self {
        Self {
            dt: 0.05,
            g: 10.0,
            m: 1.0,
            l: 1.0,
            max_speed: 8.0,
            max_torque: 2.0,
        }
    }
}

/// The pendulum of gymnasium's `Pendulum-v1`, step for step.
///
/// Latent `[θ, θ̇]` (θ = 0 upright, not wrapped); action `[torque]`. One step:
/// `u ← clip(u, ±max_torque)`,
/// `θ̇' = clip(θ̇ + (3g/(2l)·sin θ + 3/(m l²)·u)·dt, ±max_speed)`,
/// `θ' = θ + θ̇'·dt`.
///
/// Observation `[cos, sin, thetadot]` (gymnasium's), encoded as
/// `θ = atan2(sin, cos)`. Readouts: `cos`, `sin`, `thetadot` and `angle` =
/// |θ| wrapped into `[−π, π)`, so that `angle² + 0.1·thetadot² + 0.001·u²`
/// is the environment's cost.
#[derive(Clone, Debug)]
pub struct Pendulum {
    spec: ModelSpec,
    /// Angular acceleration per unit of `sin θ`, `3g/(2l)`.
    gravity: Real,
    /// Angular acceleration per unit of torque, `3/(m l²)`.
    gain: Real,
    max_speed: Real,
    max_torque: Real,
}

fn names(xs: &[&str]) -> Vec<String> {
    xs.iter().map(|s| (*s).to_string()).collect()
}

/// `θ` wrapped into `[−π, π]`, as gymnasium's `angle_normalize` (up to
/// rounding): `floor` costs less than the `fmod` of `rem_euclid`, and a
/// product less than a quotient.
#[inline(always)]
fn wrap(theta: Real) -> Real {
    const TURNS_PER_RADIAN: Real = 1.0 / TAU;
    theta - TAU * math::floor((theta + PI) * TURNS_PER_RADIAN)
}

impl Pendulum {
    /// A pendulum with the given settings.
    ///
    /// ```
    /// use telic::model::{Pendulum, PendulumParams};
    /// use telic::WorldModel;
    ///
    /// let mut m = Pendulum::new(&PendulumParams::default()).unwrap();
    /// let mut z = [0.0; 2];
    /// // Hanging at rest, full torque: θ̇' = 3·2·0.05 = 0.3 rad/s.
    /// m.predict(&[std::f64::consts::PI, 0.0], &[2.0], &mut z).unwrap();
    /// assert!((z[1] - 0.3).abs() < 1e-9);
    /// ```
    pub fn new(p: &PendulumParams) -> Result<Self, ModelError> {
        let positive = [
            ("g", p.g),
            ("m", p.m),
            ("l", p.l),
            ("max_speed", p.max_speed),
            ("max_torque", p.max_torque),
        ];
        for (name, v) in positive {
            if !(v.is_finite() && v > 0.0) {
                return Err(ModelError::Invalid(format!(
                    "pendulum {name} must be positive, got {}",
                    crate::limits::num(v)
                )));
            }
        }
        let spec = ModelSpec {
            name: "pendulum".into(),
            image: None,
            observations: names(&["cos", "sin", "thetadot"]),
            actions: names(&["torque"]),
            latent_dim: 2,
            readouts: names(&["cos", "sin", "thetadot", "angle"]),
            action_lower: vec![-p.max_torque],
            action_upper: vec![p.max_torque],
            dt: p.dt,
        };
        spec.validate()?;
        Ok(Self {
            spec,
            gravity: 3.0 * p.g / (2.0 * p.l),
            gain: 3.0 / (p.m * p.l * p.l),
            max_speed: p.max_speed,
            max_torque: p.max_torque,
        })
    }

    /// Unclipped `θ̇ + θ̈·dt` of one step, from `sin θ`.
    #[inline(always)]
    fn raw_speed(&self, sin: Real, thetadot: Real, u: Real) -> Real {
        let u = clip(u, -self.max_torque, self.max_torque);
        thetadot + (self.gravity * sin + self.gain * u) * self.spec.dt
    }

    /// One step of one row, from `sin θ`: `(θ', θ̇')`.
    #[inline(always)]
    fn advance(&self, theta: Real, sin: Real, thetadot: Real, u: Real) -> (Real, Real) {
        let w = clip(
            self.raw_speed(sin, thetadot, u),
            -self.max_speed,
            self.max_speed,
        );
        (theta + w * self.spec.dt, w)
    }
}

/// Readouts `[cos, sin, thetadot, angle]` of one row.
#[inline(always)]
fn read(theta: Real, sin: Real, cos: Real, thetadot: Real, y: &mut [Real; 4]) {
    y[0] = cos;
    y[1] = sin;
    y[2] = thetadot;
    y[3] = wrap(theta).abs();
}

/// The readouts of rows `z`, the angles' sines from [`math::sin_cos`]: the
/// second pass of [`Readout`] and [`Step`] when an angle is too far for
/// [`math::sin_cos_near`].
fn read_exactly(z: &[[Real; 2]], y: &mut [[Real; 4]]) {
    for (z, y) in z.iter().zip(y) {
        let (sin, cos) = math::sin_cos(z[0]);
        read(z[0], sin, cos, z[1], y);
    }
}

/// `predict` over a batch, in vector registers: one loop without branches,
/// then the rare rows whose angle is too far for [`math::sin_cos_near`].
struct Predict<'a> {
    model: &'a Pendulum,
    z: &'a [Real],
    u: &'a [Real],
    z_next: &'a mut [Real],
}

impl Wide for Predict<'_> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let m = self.model;
        let z = self.z.as_chunks::<2>().0;
        let out = self.z_next.as_chunks_mut::<2>().0;
        let mut far = false;
        for ((z, u), out) in z.iter().zip(self.u).zip(out.iter_mut()) {
            let (sin, _, f) = math::sin_cos_near(z[0]);
            far |= f;
            (out[0], out[1]) = m.advance(z[0], sin, z[1], *u);
        }
        if far {
            for ((z, u), out) in z.iter().zip(self.u).zip(out) {
                (out[0], out[1]) = m.advance(z[0], math::sin(z[0]), z[1], *u);
            }
        }
    }
}

/// `readout` over a batch, like [`Predict`].
struct Readout<'a> {
    z: &'a [Real],
    y: &'a mut [Real],
}

impl Wide for Readout<'_> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let z = self.z.as_chunks::<2>().0;
        let y = self.y.as_chunks_mut::<4>().0;
        let mut far = false;
        for (z, y) in z.iter().zip(y.iter_mut()) {
            let (sin, cos, f) = math::sin_cos_near(z[0]);
            far |= f;
            read(z[0], sin, cos, z[1], y);
        }
        if far {
            read_exactly(z, y);
        }
    }
}

/// `predict` then `readout` over a batch, with `sin θ` read from the
/// readouts of `z`: one sine and cosine per row instead of two.
struct Step<'a> {
    model: &'a Pendulum,
    z: &'a [Real],
    y: &'a [Real],
    u: &'a [Real],
    z_next: &'a mut [Real],
    y_next: &'a mut [Real],
}

impl Wide for Step<'_> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let m = self.model;
        let z = self.z.as_chunks::<2>().0;
        let y = self.y.as_chunks::<4>().0;
        let z_next = self.z_next.as_chunks_mut::<2>().0;
        for (((z, y), u), out) in z.iter().zip(y).zip(self.u).zip(z_next.iter_mut()) {
            let (theta, w) = m.advance(z[0], y[1], z[1], *u);
            *out = [theta, w];
        }
        // Two loops: one with the sine and cosine alone keeps its values in
        // registers (5% faster than one loop that also steps).
        Readout {
            z: self.z_next,
            y: self.y_next,
        }
        .run();
    }
}

impl WorldModel for Pendulum {
    analytic_basics!();

    fn encode(&mut self, obs: &[Real], z: &mut [Real]) -> Result<(), ModelError> {
        check_encode(&self.spec, obs, z)?;
        for (o, s) in obs.chunks_exact(3).zip(z.chunks_exact_mut(2)) {
            s[0] = o[1].atan2(o[0]);
            s[1] = o[2];
        }
        Ok(())
    }

    fn predict(&mut self, z: &[Real], u: &[Real], z_next: &mut [Real]) -> Result<(), ModelError> {
        check_predict(&self.spec, z, u, z_next)?;
        wide(Predict {
            model: self,
            z,
            u,
            z_next,
        });
        Ok(())
    }

    fn step(
        &mut self,
        z: &[Real],
        y: &[Real],
        u: &[Real],
        z_next: &mut [Real],
        y_next: &mut [Real],
    ) -> Result<(), ModelError> {
        check_predict(&self.spec, z, u, z_next)?;
        check_readout(&self.spec, z, y)?;
        check_readout(&self.spec, z_next, y_next)?;
        wide(Step {
            model: self,
            z,
            y,
            u,
            z_next,
            y_next,
        });
        Ok(())
    }

    fn readout(&mut self, z: &[Real], y: &mut [Real]) -> Result<(), ModelError> {
        check_readout(&self.spec, z, y)?;
        wide(Readout { z, y });
        Ok(())
    }

    fn predict_jacobians(
        &mut self,
        z: &[Real],
        u: &[Real],
        a: &mut [Real],
        b: &mut [Real],
    ) -> Result<(), ModelError> {
        expect_len("z", z, 1, 2)?;
        expect_len("u", u, 1, 1)?;
        expect_len("a", a, 2, 2)?;
        expect_len("b", b, 2, 1)?;
        let dt = self.spec.dt;
        // Where a clip is active its output does not move with its input.
        let free = self.raw_speed(math::sin(z[0]), z[1], u[0]).abs() < self.max_speed;
        let u_free = u[0].abs() < self.max_torque;
        let (dw_dth, dw_dw, dw_du) = if free {
            (
                self.gravity * z[0].cos() * dt,
                1.0,
                if u_free { self.gain * dt } else { 0.0 },
            )
        } else {
            (0.0, 0.0, 0.0)
        };
        a.copy_from_slice(&[1.0 + dw_dth * dt, dw_dw * dt, dw_dth, dw_dw]);
        b.copy_from_slice(&[dw_du * dt, dw_du]);
        Ok(())
    }

    fn readout_jacobian(&mut self, z: &[Real], c: &mut [Real]) -> Result<(), ModelError> {
        expect_len("z", z, 1, 2)?;
        expect_len("c", c, 4, 2)?;
        let (sin, cos) = z[0].sin_cos();
        let sign = if wrap(z[0]) >= 0.0 { 1.0 } else { -1.0 };
        c.copy_from_slice(&[-sin, 0.0, cos, 0.0, 0.0, 1.0, sign, 0.0]);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pendulum() -> Pendulum {
        Pendulum::new(&PendulumParams::default()).unwrap()
    }

    /// gymnasium 1.4's `Pendulum-v1`: `env.unwrapped.state = [θ, θ̇]`, then
    /// `env.step([u])` and the new `env.unwrapped.state`.
    const GYMNASIUM_STEPS: [([Real; 3], [Real; 2]); 4] = [
        ([1.0, 2.0, 1.5], [1.1428051619302961, 2.8561032386059226]),
        // θ̇ clipped to the speed bound.
        ([-3.0, 7.9, -2.0], [-2.625292000302245, 7.4941599939551]),
        // u clipped to the torque bound.
        ([0.3, -1.0, 5.0], [0.27608200774980024, -0.4783598450039953]),
        // θ̇ = 7.9 + (15 sin 2 + 6)·0.05 = 8.88 → 8, θ' = 2 + 8·0.05.
        ([2.0, 7.9, 2.0], [2.4, 8.0]),
    ];

    #[test]
    fn steps_like_gymnasium() {
        let mut m = pendulum();
        for ([th, w, u], expected) in GYMNASIUM_STEPS {
            let mut z = [0.0; 2];
            m.predict(&[th, w], &[u], &mut z).unwrap();
            for (got, want) in z.iter().zip(expected) {
                assert!(
                    (got - want).abs() < 1e-12,
                    "{got} vs {want} from {th}, {w}, {u}"
                );
            }
        }
    }

    #[test]
    fn batch_matches_single_rows() {
        let mut m = pendulum();
        let z: Vec<Real> = GYMNASIUM_STEPS
            .iter()
            .flat_map(|(s, _)| [s[0], s[1]])
            .collect();
        let u: Vec<Real> = GYMNASIUM_STEPS.iter().map(|(s, _)| s[2]).collect();
        let mut next = vec![0.0; z.len()];
        m.predict(&z, &u, &mut next).unwrap();
        let mut y = vec![0.0; 4 * u.len()];
        m.readout(&next, &mut y).unwrap();
        for (i, (_, want)) in GYMNASIUM_STEPS.iter().enumerate() {
            assert!((next[2 * i] - want[0]).abs() < 1e-12);
            assert!((next[2 * i + 1] - want[1]).abs() < 1e-12);
            let mut one = [0.0; 4];
            m.readout(&next[2 * i..2 * i + 2], &mut one).unwrap();
            assert_eq!(one, y[4 * i..4 * i + 4]);
        }
    }

    #[test]
    fn wide_batches_equal_row_by_row_bit_for_bit() {
        let mut m = pendulum();
        let mut rng = crate::rng::Rng::new(9);
        // More rows than a vector holds, not a multiple of it; angles up to
        // many turns, speeds and torques past their bounds, and one far angle
        // for the C library.
        let n = 29;
        let mut z: Vec<Real> = (0..n)
            .flat_map(|_| [rng.range(-60.0, 60.0), rng.range(-9.0, 9.0)])
            .collect();
        z[6] = 3e7;
        let u: Vec<Real> = (0..n).map(|_| rng.range(-3.0, 3.0)).collect();
        let (mut next, mut y) = (vec![0.0; 2 * n], vec![0.0; 4 * n]);
        m.predict(&z, &u, &mut next).unwrap();
        m.readout(&z, &mut y).unwrap();
        for i in 0..n {
            let (mut one, mut yi) = ([0.0; 2], [0.0; 4]);
            m.predict(&z[2 * i..2 * i + 2], &u[i..=i], &mut one)
                .unwrap();
            m.readout(&z[2 * i..2 * i + 2], &mut yi).unwrap();
            assert_eq!(
                one.map(Real::to_bits),
                [next[2 * i].to_bits(), next[2 * i + 1].to_bits()]
            );
            for (a, b) in yi.iter().zip(&y[4 * i..4 * i + 4]) {
                assert_eq!(
                    a.to_bits(),
                    b.to_bits(),
                    "row {i}: {yi:?} vs {:?}",
                    &y[4 * i..4 * i + 4]
                );
            }
        }
    }

    #[test]
    fn step_equals_predict_then_readout_bit_for_bit() {
        let mut m = pendulum();
        let mut rng = crate::rng::Rng::new(4);
        let n = 41;
        let mut z: Vec<Real> = (0..n)
            .flat_map(|_| [rng.range(-60.0, 60.0), rng.range(-9.0, 9.0)])
            .collect();
        // An angle the fast sine does not reduce, before and after the step.
        z[6] = -3e7;
        let u: Vec<Real> = (0..n).map(|_| rng.range(-3.0, 3.0)).collect();
        let mut y = vec![0.0; 4 * n];
        m.readout(&z, &mut y).unwrap();
        let (mut z1, mut y1) = (vec![0.0; 2 * n], vec![0.0; 4 * n]);
        m.step(&z, &y, &u, &mut z1, &mut y1).unwrap();
        let (mut z2, mut y2) = (vec![0.0; 2 * n], vec![0.0; 4 * n]);
        m.predict(&z, &u, &mut z2).unwrap();
        m.readout(&z2, &mut y2).unwrap();
        let bits = |v: &[Real]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&z1), bits(&z2));
        assert_eq!(bits(&y1), bits(&y2));
        let err = m.step(&z, &y[4..], &u, &mut z1, &mut y1).unwrap_err();
        assert!(matches!(err, ModelError::Shape { what: "y", .. }), "{err}");
    }

    #[test]
    fn encodes_observations_and_reads_out_the_cost_terms() {
        let mut m = pendulum();
        let th: Real = -2.5;
        let mut z = [0.0; 4];
        m.encode(&[th.cos(), th.sin(), 1.5, 1.0, 0.0, -3.0], &mut z)
            .unwrap();
        assert!((z[0] - th).abs() < 1e-12 && z[1] == 1.5, "{z:?}");
        assert!(z[2] == 0.0 && z[3] == -3.0, "{z:?}");
        let mut y = [0.0; 8];
        // 3π/2 + 0.1 wraps to −π/2 + 0.1.
        m.readout(&[0.2, -1.0, 1.5 * PI + 0.1, 0.0], &mut y)
            .unwrap();
        assert!((y[0] - 0.2_f64.cos()).abs() < 1e-12 && (y[1] - 0.2_f64.sin()).abs() < 1e-12);
        assert!(y[2] == -1.0 && (y[3] - 0.2).abs() < 1e-12, "{y:?}");
        assert!((y[7] - (0.5 * PI - 0.1)).abs() < 1e-12, "{y:?}");
        for th in [-13.0, -PI, 0.0, 3.0, PI, 40.0] {
            let gymnasium = ((th + PI).rem_euclid(TAU) - PI).abs();
            m.readout(&[th, 0.0], &mut y[..4]).unwrap();
            assert!(
                (y[3] - gymnasium).abs() < 1e-12,
                "{th}: {} vs {gymnasium}",
                y[3]
            );
        }
    }

    #[test]
    fn jacobians_match_finite_differences() {
        let mut m = pendulum();
        for (z, u) in [
            ([0.7, -1.2], 0.4),
            ([-2.9, 3.0], -1.1),
            ([2.0, 7.9], 1.0),
            ([0.1, 0.0], 2.5),
        ] {
            super::super::tests::check_jacobians(&mut m, &z, &[u]);
        }
    }

    #[test]
    fn rejects_bad_input() {
        let bad = PendulumParams {
            l: 0.0,
            ..PendulumParams::default()
        };
        assert!(matches!(Pendulum::new(&bad), Err(ModelError::Invalid(_))));
        let bad_dt = PendulumParams {
            dt: -0.05,
            ..PendulumParams::default()
        };
        assert!(Pendulum::new(&bad_dt).is_err());
        let mut m = pendulum();
        let mut z = [0.0; 2];
        let err = m.predict(&[0.0; 2], &[0.0; 2], &mut z).unwrap_err();
        assert!(matches!(err, ModelError::Shape { what: "u", .. }), "{err}");
        let err = m.encode(&[1.0, 0.0], &mut z).unwrap_err();
        assert!(
            matches!(err, ModelError::Shape { what: "obs", .. }),
            "{err}"
        );
        let err = m.encode(&[1.0, Real::NAN, 0.0], &mut z).unwrap_err();
        assert!(
            matches!(err, ModelError::NonFinite { index: 1, .. }),
            "{err}"
        );
        let err = m.readout(&[0.0; 2], &mut [0.0; 3]).unwrap_err();
        assert!(matches!(err, ModelError::Shape { what: "y", .. }), "{err}");
    }
}
