//! A point mass (double integrator) in 2 or 3 dimensions.

use super::{ModelSpec, WorldModel, check_predict, check_readout, expect_len};
use crate::Real;
use crate::error::ModelError;

const AXES: [&str; 3] = ["x", "y", "z"];

/// Double integrator: state `[p, v]`, action `a` (acceleration), exact
/// zero-order-hold discretisation `p' = p + v·dt + ½a·dt²`, `v' = v + a·dt`.
///
/// Observation, latent and state coincide. Readouts: `pos.x, pos.y[, pos.z]`,
/// `vel.x, vel.y[, vel.z]` and `speed`.
#[derive(Clone, Debug)]
pub struct PointMass {
    spec: ModelSpec,
    n: usize,
}

impl PointMass {
    /// A point mass in `dims` (2 or 3) dimensions with time step `dt` and
    /// accelerations bounded by `max_accel` on every axis.
    ///
    /// ```
    /// use telic::model::{PointMass, WorldModel};
    /// let mut m = PointMass::new(2, 0.1, 1.0).unwrap();
    /// let mut z = [0.0; 4];
    /// m.predict(&[0.0, 0.0, 1.0, 0.0], &[0.0, 0.0], &mut z).unwrap();
    /// assert!((z[0] - 0.1).abs() < 1e-12);
    /// ```
    pub fn new(dims: usize, dt: Real, max_accel: Real) -> Result<Self, ModelError> {
        if !(2..=3).contains(&dims) {
            return Err(ModelError::Invalid(format!(
                "point mass needs 2 or 3 dimensions, got {dims}"
            )));
        }
        if !(max_accel.is_finite() && max_accel > 0.0) {
            return Err(ModelError::Invalid(format!(
                "point mass max_accel must be positive, got {max_accel}"
            )));
        }
        let axes = &AXES[..dims];
        let pos = axes.iter().map(|a| format!("pos.{a}"));
        let vel = axes.iter().map(|a| format!("vel.{a}"));
        let state: Vec<String> = pos.chain(vel).collect();
        let mut readouts = state.clone();
        readouts.push("speed".into());
        let spec = ModelSpec {
            name: "point_mass".into(),
            image: None,
            observations: state,
            actions: axes.iter().map(|a| format!("acc.{a}")).collect(),
            latent_dim: 2 * dims,
            readouts,
            action_lower: vec![-max_accel; dims],
            action_upper: vec![max_accel; dims],
            dt,
        };
        spec.validate()?;
        Ok(Self { spec, n: dims })
    }
}

impl WorldModel for PointMass {
    analytic_basics!(identity_encode);

    fn predict(&mut self, z: &[Real], u: &[Real], z_next: &mut [Real]) -> Result<(), ModelError> {
        check_predict(&self.spec, z, u, z_next)?;
        let (n, dt) = (self.n, self.spec.dt);
        for ((s, a), out) in z
            .chunks_exact(2 * n)
            .zip(u.chunks_exact(n))
            .zip(z_next.chunks_exact_mut(2 * n))
        {
            for i in 0..n {
                let (p, v) = (s[i], s[n + i]);
                out[i] = p + v * dt + 0.5 * a[i] * dt * dt;
                out[n + i] = v + a[i] * dt;
            }
        }
        Ok(())
    }

    fn readout(&mut self, z: &[Real], y: &mut [Real]) -> Result<(), ModelError> {
        check_readout(&self.spec, z, y)?;
        let n = self.n;
        for (s, out) in z.chunks_exact(2 * n).zip(y.chunks_exact_mut(2 * n + 1)) {
            out[..2 * n].copy_from_slice(s);
            out[2 * n] = s[n..].iter().map(|v| v * v).sum::<Real>().sqrt();
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
        let (n, dt) = (self.n, self.spec.dt);
        let d = 2 * n;
        expect_len("z", z, 1, d)?;
        expect_len("u", u, 1, n)?;
        expect_len("a", a, d, d)?;
        expect_len("b", b, d, n)?;
        a.fill(0.0);
        b.fill(0.0);
        for i in 0..n {
            a[i * d + i] = 1.0;
            a[i * d + n + i] = dt;
            a[(n + i) * d + n + i] = 1.0;
            b[i * n + i] = 0.5 * dt * dt;
            b[(n + i) * n + i] = dt;
        }
        Ok(())
    }

    fn readout_jacobian(&mut self, z: &[Real], c: &mut [Real]) -> Result<(), ModelError> {
        let n = self.n;
        let d = 2 * n;
        expect_len("z", z, 1, d)?;
        expect_len("c", c, d + 1, d)?;
        c.fill(0.0);
        for i in 0..d {
            c[i * d + i] = 1.0;
        }
        let speed = z[n..].iter().map(|v| v * v).sum::<Real>().sqrt();
        if speed > 1e-12 {
            for i in 0..n {
                c[d * d + n + i] = z[n + i] / speed;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jacobians_match_finite_differences() {
        let mut m = PointMass::new(3, 0.05, 2.0).unwrap();
        super::super::tests::check_jacobians(
            &mut m,
            &[0.1, -0.2, 0.3, 0.5, -0.4, 0.2],
            &[0.3, 1.0, -0.7],
        );
    }

    #[test]
    fn rejects_bad_shapes_and_dims() {
        assert!(PointMass::new(4, 0.1, 1.0).is_err());
        let mut m = PointMass::new(2, 0.1, 1.0).unwrap();
        let mut z = [0.0; 4];
        let err = m.predict(&[0.0; 4], &[0.0; 3], &mut z).unwrap_err();
        assert!(matches!(err, ModelError::Shape { what: "u", .. }), "{err}");
        let err = m.encode(&[0.0, Real::NAN, 0.0, 0.0], &mut z).unwrap_err();
        assert!(
            matches!(err, ModelError::NonFinite { index: 1, .. }),
            "{err}"
        );
    }
}
