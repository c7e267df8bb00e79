//! A unicycle / differential-drive base with first-order velocity response.

use super::{ModelSpec, WorldModel, check_predict, check_readout};
use crate::Real;
use crate::error::ModelError;
use crate::math::{self, Wide, wide};

/// Differential drive with state `[x, y, θ, v, ω]` and action `[v_cmd, ω_cmd]`.
///
/// Velocities follow their commands with a first-order lag of time constant
/// `tau` (`tau = 0` means they are reached within one step), then the pose is
/// integrated with the midpoint heading:
/// `v' = v + α(v_cmd − v)`, `ω' = ω + α(ω_cmd − ω)`, `α = 1 − e^{−dt/τ}`,
/// `θ' = θ + ω'·dt`, `x' = x + v'·cos(θ + ½ω'dt)·dt`, `y'` likewise.
///
/// Observation, latent and state coincide. Readouts: `base.x`, `base.y`,
/// `heading`, `v`, `omega`, `speed` (= |v|).
#[derive(Clone, Debug)]
pub struct Unicycle {
    spec: ModelSpec,
    alpha: Real,
}

impl Unicycle {
    /// Names of the readouts: the pose, the velocities and the speed `|v|`.
    /// The navigate scene's ground truth has the same names.
    pub const READOUTS: [&'static str; 6] = ["base.x", "base.y", "heading", "v", "omega", "speed"];

    /// A differential-drive model with time step `dt`, speed bound `max_speed`
    /// (forward and backward), turn-rate bound `max_turn_rate` and velocity time constant `tau`.
    pub fn new(
        dt: Real,
        max_speed: Real,
        max_turn_rate: Real,
        tau: Real,
    ) -> Result<Self, ModelError> {
        if !(tau.is_finite() && tau >= 0.0) {
            return Err(ModelError::Invalid(format!(
                "unicycle tau must be >= 0, got {tau}"
            )));
        }
        let state: Vec<String> = ["x", "y", "theta", "v", "omega"]
            .iter()
            .map(|s| (*s).to_string())
            .collect();
        let spec = ModelSpec {
            name: "unicycle".into(),
            image: None,
            observations: state,
            actions: vec!["v_cmd".into(), "omega_cmd".into()],
            latent_dim: 5,
            readouts: Self::READOUTS.iter().map(|s| (*s).to_string()).collect(),
            action_lower: vec![-max_speed, -max_turn_rate],
            action_upper: vec![max_speed, max_turn_rate],
            dt,
        };
        spec.validate()?;
        let alpha = super::lag_factor(dt, tau);
        Ok(Self { spec, alpha })
    }
}

impl WorldModel for Unicycle {
    analytic_basics!(identity_encode);

    fn predict(&mut self, z: &[Real], u: &[Real], z_next: &mut [Real]) -> Result<(), ModelError> {
        check_predict(&self.spec, z, u, z_next)?;
        wide(Predict {
            dt: self.spec.dt,
            alpha: self.alpha,
            z,
            u,
            z_next,
        });
        Ok(())
    }

    fn readout(&mut self, z: &[Real], y: &mut [Real]) -> Result<(), ModelError> {
        check_readout(&self.spec, z, y)?;
        let rows = z.as_chunks::<5>().0.iter();
        for (s, o) in rows.zip(y.as_chunks_mut::<6>().0) {
            *o = [s[0], s[1], s[2], s[3], s[4], s[3].abs()];
        }
        Ok(())
    }

    fn predict_jacobians(
        &mut self,
        z: &[Real],
        u: &[Real],
        a: &mut [Real],
        b: &mut [Real],
    ) -> Result<(), ModelError> {
        super::expect_len("z", z, 1, 5)?;
        super::expect_len("u", u, 1, 2)?;
        super::expect_len("a", a, 5, 5)?;
        super::expect_len("b", b, 5, 2)?;
        let (dt, al) = (self.spec.dt, self.alpha);
        let v = z[3] + al * (u[0] - z[3]);
        let w = z[4] + al * (u[1] - z[4]);
        let mid = z[2] + 0.5 * w * dt;
        let (s, c) = mid.sin_cos();
        // Derivatives of (v, w) with respect to (z3, z4, u0, u1).
        let (dv_dz3, dv_du0, dw_dz4, dw_du1) = (1.0 - al, al, 1.0 - al, al);
        a.fill(0.0);
        b.fill(0.0);
        // x' = x + v c dt
        a[0] = 1.0;
        a[2] = -v * s * dt;
        a[3] = c * dt * dv_dz3;
        a[4] = -v * s * dt * 0.5 * dt * dw_dz4;
        b[0] = c * dt * dv_du0;
        b[1] = -v * s * dt * 0.5 * dt * dw_du1;
        // y' = y + v s dt
        a[5 + 1] = 1.0;
        a[5 + 2] = v * c * dt;
        a[5 + 3] = s * dt * dv_dz3;
        a[5 + 4] = v * c * dt * 0.5 * dt * dw_dz4;
        b[2] = s * dt * dv_du0;
        b[2 + 1] = v * c * dt * 0.5 * dt * dw_du1;
        // θ' = θ + w dt
        a[10 + 2] = 1.0;
        a[10 + 4] = dt * dw_dz4;
        b[4 + 1] = dt * dw_du1;
        // v', w'
        a[15 + 3] = dv_dz3;
        b[6] = dv_du0;
        a[20 + 4] = dw_dz4;
        b[8 + 1] = dw_du1;
        Ok(())
    }

    fn readout_jacobian(&mut self, z: &[Real], c: &mut [Real]) -> Result<(), ModelError> {
        super::expect_len("z", z, 1, 5)?;
        super::expect_len("c", c, 6, 5)?;
        c.fill(0.0);
        for i in 0..5 {
            c[i * 5 + i] = 1.0;
        }
        c[25 + 3] = if z[3] >= 0.0 { 1.0 } else { -1.0 };
        Ok(())
    }
}

/// `predict` over a batch, in vector registers: one loop without branches,
/// then, in the rare batch with a heading too far for
/// [`math::sin_cos_near`], every row again with [`math::sin_cos`] (the
/// same bits for the others).
struct Predict<'a> {
    dt: Real,
    alpha: Real,
    z: &'a [Real],
    u: &'a [Real],
    z_next: &'a mut [Real],
}

/// One row of `predict`, with `sin_cos` for the mid-step heading.
#[inline(always)]
fn step(
    dt: Real,
    al: Real,
    s: &[Real; 5],
    a: &[Real; 2],
    mut sin_cos: impl FnMut(Real) -> (Real, Real),
) -> [Real; 5] {
    let v = s[3] + al * (a[0] - s[3]);
    let w = s[4] + al * (a[1] - s[4]);
    let mid = s[2] + 0.5 * w * dt;
    let (sin, cos) = sin_cos(mid);
    [
        s[0] + v * cos * dt,
        s[1] + v * sin * dt,
        s[2] + w * dt,
        v,
        w,
    ]
}

impl Wide for Predict<'_> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let Self {
            dt,
            alpha,
            z,
            u,
            z_next,
        } = self;
        let z = z.as_chunks::<5>().0;
        let u = u.as_chunks::<2>().0;
        let out = z_next.as_chunks_mut::<5>().0;
        let mut far = false;
        for ((s, a), o) in z.iter().zip(u).zip(out.iter_mut()) {
            *o = step(dt, alpha, s, a, |x| {
                let (sin, cos, f) = math::sin_cos_near(x);
                far |= f;
                (sin, cos)
            });
        }
        if far {
            for ((s, a), o) in z.iter().zip(u).zip(out.iter_mut()) {
                *o = step(dt, alpha, s, a, math::sin_cos);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jacobians_match_finite_differences() {
        let mut m = Unicycle::new(0.1, 1.0, 2.0, 0.2).unwrap();
        super::super::tests::check_jacobians(&mut m, &[0.3, -0.1, 0.7, 0.4, -0.3], &[0.8, 0.5]);
    }

    #[test]
    fn batches_equal_the_scalar_step_bit_for_bit() {
        let mut m = Unicycle::new(0.1, 1.0, 2.0, 0.2).unwrap();
        let mut rng = crate::rng::Rng::new(8);
        let n = 23;
        let mut z: Vec<Real> = (0..5 * n).map(|_| rng.range(-40.0, 40.0)).collect();
        let u: Vec<Real> = (0..2 * n).map(|_| rng.range(-3.0, 3.0)).collect();
        let mut next = vec![0.0; 5 * n];
        for far in [false, true] {
            if far {
                // A heading beyond the fast sine's range: the second pass.
                z[5 * 4 + 2] = 4e7;
            }
            m.predict(&z, &u, &mut next).unwrap();
            for i in 0..n {
                let (s, a) = (&z[5 * i..5 * i + 5], &u[2 * i..2 * i + 2]);
                let (dt, al) = (0.1, m.alpha);
                let v = s[3] + al * (a[0] - s[3]);
                let w = s[4] + al * (a[1] - s[4]);
                let (sin, cos) = math::sin_cos(s[2] + 0.5 * w * dt);
                let want = [
                    s[0] + v * cos * dt,
                    s[1] + v * sin * dt,
                    s[2] + w * dt,
                    v,
                    w,
                ];
                for (got, want) in next[5 * i..5 * i + 5].iter().zip(want) {
                    assert_eq!(got.to_bits(), want.to_bits(), "row {i}, far {far}");
                }
            }
        }
    }

    #[test]
    fn drives_straight_along_heading() {
        let mut m = Unicycle::new(0.1, 1.0, 2.0, 0.0).unwrap();
        let mut z = [0.0; 5];
        m.predict(
            &[0.0, 0.0, std::f64::consts::FRAC_PI_2, 0.0, 0.0],
            &[1.0, 0.0],
            &mut z,
        )
        .unwrap();
        assert!(z[0].abs() < 1e-12 && (z[1] - 0.1).abs() < 1e-12, "{z:?}");
    }
}
