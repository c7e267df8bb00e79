//! World models: `encode`, `predict` and `readout`, always in batches.
//!
//! All buffers are flat, row-major `[batch, width]` slices of [`Real`]; the
//! batch size is the buffer length divided by the width. Models take `&mut self`
//! so that backends can reuse internal buffers between calls.

/// The [`WorldModel`] methods that the analytic models write alike, expanded
/// inside their `impl WorldModel` block: `spec` returns the model's `spec`
/// field and `fork` clones the model (an analytic model is cheap to copy, so
/// each rollout worker gets its own). `analytic_basics!(identity_encode)`
/// adds `encode` for a model whose latent is its observation: shapes checked,
/// observation copied. A macro because a trait default can neither reach a
/// field nor ask for `Clone`.
macro_rules! analytic_basics {
    () => {
        fn spec(&self) -> &$crate::model::ModelSpec {
            &self.spec
        }
        fn fork(&self) -> Option<Box<dyn $crate::model::WorldModel>> {
            Some(Box::new(self.clone()))
        }
    };
    (identity_encode) => {
        analytic_basics!();
        fn encode(
            &mut self,
            obs: &[$crate::Real],
            z: &mut [$crate::Real],
        ) -> Result<(), $crate::error::ModelError> {
            $crate::model::check_encode(&self.spec, obs, z)?;
            z.copy_from_slice(obs);
            Ok(())
        }
    };
}

mod arm;
#[cfg(feature = "onnx")]
pub mod bundle;
#[cfg(feature = "onnx")]
pub mod onnx;
pub mod pendulum;
mod point_mass;
mod pusher;
mod unicycle;

pub use arm::{JointLimits, SerialArm};
#[cfg(feature = "onnx")]
pub use onnx::{OnnxModel, OnnxOptions, use_onnx_runtime};
pub use pendulum::{Pendulum, PendulumParams};
pub use point_mass::PointMass;
pub use pusher::{Pusher, PusherParams};
pub use unicycle::Unicycle;

use crate::Real;
use crate::error::ModelError;
use crate::limits::{LimitError, num};

/// Largest height or width of an image observation, in pixels (the scene
/// cameras' limit, `telic_sim::limits::MAX_CAMERA_SIZE`, is the same).
pub const MAX_IMAGE_SIZE: usize = 1024;
/// Most channels of an image observation (gray, gray + alpha, RGB, RGBA).
pub const MAX_IMAGE_CHANNELS: usize = 4;
/// Largest value of a pixel in an observation: pixels are the bytes of an
/// 8-bit image, as numbers `0.0..=255.0`.
pub const MAX_PIXEL_VALUE: Real = 255.0;

/// The shape of the camera image at the head of a model's observation:
/// `channels × height × width` values, channel-major (`C×H×W`), row 0 the
/// top of the image. An observation of a model with an image is one flat
/// slice: first these `C·H·W` pixel values (`0.0..=255.0`), then the vector
/// entries named by [`ModelSpec::observations`].
///
/// ```
/// use telic::model::ImageSpec;
/// let image = ImageSpec { channels: 3, height: 64, width: 64 };
/// assert_eq!(image.len(), 3 * 64 * 64);
/// assert!(image.validate().is_ok());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageSpec {
    /// Channels `C` (3 for RGB), 1 to [`MAX_IMAGE_CHANNELS`].
    pub channels: usize,
    /// Height `H` in pixels (rows), 1 to [`MAX_IMAGE_SIZE`].
    pub height: usize,
    /// Width `W` in pixels (columns), 1 to [`MAX_IMAGE_SIZE`].
    pub width: usize,
}

impl ImageSpec {
    /// Values of one image, `C·H·W`.
    #[must_use]
    pub fn len(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// Whether a size is 0 (never, for an image that validates).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Checks that every size is positive and within its limit
    /// ([`MAX_IMAGE_CHANNELS`], [`MAX_IMAGE_SIZE`]); the error names the
    /// size (`image.height`, …).
    pub fn validate(&self) -> Result<(), ModelError> {
        for (key, value, limit) in [
            ("image.channels", self.channels, MAX_IMAGE_CHANNELS),
            ("image.height", self.height, MAX_IMAGE_SIZE),
            ("image.width", self.width, MAX_IMAGE_SIZE),
        ] {
            if value == 0 {
                return Err(ModelError::Invalid(format!("{key} must be positive")));
            }
            LimitError::check(key, value, limit).map_err(|e| ModelError::Invalid(e.to_string()))?;
        }
        Ok(())
    }
}

/// Names, sizes, bounds and time step of a world model.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelSpec {
    /// A short name, e.g. `"point_mass"`.
    pub name: String,
    /// The camera image at the head of each observation, if the model sees
    /// one (`None` for every analytic model and every version 1 bundle).
    pub image: Option<ImageSpec>,
    /// Names of the vector observation entries (`O` of them), which follow
    /// the image's pixels when there is an image.
    pub observations: Vec<String>,
    /// Names of the action entries (`A` of them).
    pub actions: Vec<String>,
    /// Latent size `D`.
    pub latent_dim: usize,
    /// Names of the readouts (`P` of them). Points are named `p.x`, `p.y`
    /// (and optionally `p.z`) so that geometry can refer to point `p`.
    pub readouts: Vec<String>,
    /// Lower action bound, one per action.
    pub action_lower: Vec<Real>,
    /// Upper action bound, one per action.
    pub action_upper: Vec<Real>,
    /// Time step of one `predict`, in seconds.
    pub dt: Real,
}

impl ModelSpec {
    /// Length of one flat observation: [`ModelSpec::image_len`] pixel
    /// values, then [`ModelSpec::vector_dim`] named entries.
    #[must_use]
    pub fn obs_dim(&self) -> usize {
        self.image_len() + self.vector_dim()
    }
    /// Pixel values at the head of an observation, `C·H·W` (0 without an
    /// image).
    #[must_use]
    pub fn image_len(&self) -> usize {
        self.image.map_or(0, |i| i.len())
    }
    /// Named vector entries of an observation, `O`.
    #[must_use]
    pub fn vector_dim(&self) -> usize {
        self.observations.len()
    }
    /// Action size `A`.
    #[must_use]
    pub fn action_dim(&self) -> usize {
        self.actions.len()
    }
    /// Readout size `P`.
    #[must_use]
    pub fn readout_dim(&self) -> usize {
        self.readouts.len()
    }
    /// Index of the readout called `name`.
    #[must_use]
    pub fn readout_index(&self, name: &str) -> Option<usize> {
        self.readouts.iter().position(|r| r == name)
    }
    /// Index of the action called `name`.
    #[must_use]
    pub fn action_index(&self, name: &str) -> Option<usize> {
        self.actions.iter().position(|r| r == name)
    }

    /// Checks that sizes, bounds and time step are consistent, and the
    /// image's sizes within their limits.
    pub fn validate(&self) -> Result<(), ModelError> {
        let bad = |m: String| Err(ModelError::Invalid(m));
        if let Some(image) = &self.image {
            image
                .validate()
                .map_err(|e| ModelError::Invalid(format!("{}: {e}", self.name)))?;
        }
        if self.obs_dim() == 0 || self.actions.is_empty() || self.latent_dim == 0 {
            return bad(format!(
                "{}: observation, action and latent sizes must be positive",
                self.name
            ));
        }
        if self.action_lower.len() != self.actions.len()
            || self.action_upper.len() != self.actions.len()
        {
            return bad(format!(
                "{}: {} actions but {} lower and {} upper bounds",
                self.name,
                self.actions.len(),
                self.action_lower.len(),
                self.action_upper.len()
            ));
        }
        for (i, (lo, hi)) in self.action_lower.iter().zip(&self.action_upper).enumerate() {
            if !(lo.is_finite() && hi.is_finite() && lo <= hi) {
                return bad(format!(
                    "{}: action {} has bounds [{}, {}]",
                    self.name,
                    self.actions[i],
                    num(*lo),
                    num(*hi)
                ));
            }
        }
        if !(self.dt.is_finite() && self.dt > 0.0) {
            return bad(format!(
                "{}: time step {} is not positive",
                self.name,
                num(self.dt)
            ));
        }
        Ok(())
    }

    /// Clamps `u` (one or many actions) into the action bounds, in place.
    pub fn clamp_actions(&self, u: &mut [Real]) {
        let a = self.action_dim();
        if a == 0 {
            return;
        }
        for row in u.chunks_mut(a) {
            for ((x, lo), hi) in row
                .iter_mut()
                .zip(&self.action_lower)
                .zip(&self.action_upper)
            {
                *x = x.clamp(*lo, *hi);
            }
        }
    }
}

/// Number of rows of width `width` in `buf`, or a shape error.
pub fn batch_of(what: &'static str, buf: &[Real], width: usize) -> Result<usize, ModelError> {
    if width == 0 || !buf.len().is_multiple_of(width) {
        return Err(ModelError::Shape {
            what,
            got: buf.len(),
            expected: width * (buf.len() / width.max(1)).max(1),
        });
    }
    Ok(buf.len() / width)
}

/// The lag factor `α = 1 − e^{−Δt/τ}` of a first-order velocity response
/// with time constant `tau` over a step of `dt` seconds; 1 when `tau` is 0
/// (the command is reached within the step). The analytic models and the
/// scenes whose robots they predict share this one rule.
#[must_use]
pub fn lag_factor(dt: Real, tau: Real) -> Real {
    if tau == 0.0 {
        1.0
    } else {
        1.0 - (-dt / tau).exp()
    }
}

/// Checks that `buf` holds exactly `batch` rows of `width`.
pub fn expect_len(
    what: &'static str,
    buf: &[Real],
    batch: usize,
    width: usize,
) -> Result<(), ModelError> {
    if buf.len() != batch * width {
        return Err(ModelError::Shape {
            what,
            got: buf.len(),
            expected: batch * width,
        });
    }
    Ok(())
}

/// A world model: observation → latent, latent × action → next latent,
/// latent → named physical readouts. Every call is batched.
pub trait WorldModel: Send {
    /// Names, sizes, bounds and time step.
    fn spec(&self) -> &ModelSpec;

    /// `obs[B,O] -> z[B,D]`.
    fn encode(&mut self, obs: &[Real], z: &mut [Real]) -> Result<(), ModelError>;

    /// `z[B,D], u[B,A] -> z'[B,D]`: one step of imagined dynamics.
    fn predict(&mut self, z: &[Real], u: &[Real], z_next: &mut [Real]) -> Result<(), ModelError>;

    /// `z[B,D] -> y[B,P]`: physical quantities decoded from latents.
    fn readout(&mut self, z: &[Real], y: &mut [Real]) -> Result<(), ModelError>;

    /// One step of a rollout: `predict` from `z`, then `readout` of the
    /// result, given `y[B,P]`, the readouts of `z`, which a rollout has from
    /// its previous step. The default calls the two; a model overrides it to
    /// reuse what `y` holds (the pendulum reads `sin θ` there instead of
    /// computing it again), and must then give exactly what the two calls
    /// give when `y` is `readout(z)`.
    fn step(
        &mut self,
        z: &[Real],
        y: &[Real],
        u: &[Real],
        z_next: &mut [Real],
        y_next: &mut [Real],
    ) -> Result<(), ModelError> {
        let _ = y;
        self.predict(z, u, z_next)?;
        self.readout(z_next, y_next)
    }

    /// Model-error margins: per readout (in [`ModelSpec::readouts`] order), a
    /// bound on the prediction error of that readout after `t + 1` steps, for
    /// `t` in `0..H` (empty rows: no bound known). Planners tighten every
    /// guardrail by it, so that model error does not turn into real
    /// violations. Analytic models return `None`.
    fn readout_errors(&self) -> Option<Vec<Vec<Real>>> {
        None
    }

    /// An independent copy of this model for another thread, when one is
    /// cheap to make: planners with [`PlannerConfig::threads`] > 1 give one
    /// to each rollout worker. The copy must compute exactly what `self`
    /// computes. The default, `None`, keeps rollouts on the planner's thread
    /// (learned models: their backend batches and threads a step itself).
    ///
    /// [`PlannerConfig::threads`]: crate::PlannerConfig::threads
    fn fork(&self) -> Option<Box<dyn WorldModel>> {
        None
    }

    /// Jacobians of one step for one sample: `a = ∂z'/∂z` (`D×D`) and
    /// `b = ∂z'/∂u` (`D×A`), row-major. The default uses central finite
    /// differences, batched into one `predict` call; analytic models override it.
    fn predict_jacobians(
        &mut self,
        z: &[Real],
        u: &[Real],
        a: &mut [Real],
        b: &mut [Real],
    ) -> Result<(), ModelError> {
        let (d, na) = (self.spec().latent_dim, self.spec().action_dim());
        expect_len("z", z, 1, d)?;
        expect_len("u", u, 1, na)?;
        expect_len("a", a, d, d)?;
        expect_len("b", b, d, na)?;
        let n = d + na;
        let mut zs = Vec::with_capacity(2 * n * d);
        let mut us = Vec::with_capacity(2 * n * na);
        let mut steps = Vec::with_capacity(n);
        for j in 0..n {
            let base = if j < d { z[j] } else { u[j - d] };
            let h = 1e-6 * base.abs().max(1.0);
            steps.push(h);
            for sign in [1.0, -1.0] {
                let mut zz = z.to_vec();
                let mut uu = u.to_vec();
                if j < d {
                    zz[j] += sign * h;
                } else {
                    uu[j - d] += sign * h;
                }
                zs.extend_from_slice(&zz);
                us.extend_from_slice(&uu);
            }
        }
        let mut out = vec![0.0; 2 * n * d];
        self.predict(&zs, &us, &mut out)?;
        for (j, h) in steps.iter().enumerate() {
            let plus = &out[2 * j * d..(2 * j + 1) * d];
            let minus = &out[(2 * j + 1) * d..(2 * j + 2) * d];
            for i in 0..d {
                let g = (plus[i] - minus[i]) / (2.0 * h);
                if j < d {
                    a[i * d + j] = g;
                } else {
                    b[i * na + (j - d)] = g;
                }
            }
        }
        Ok(())
    }

    /// Jacobian of the readout for one sample: `c = ∂y/∂z` (`P×D`), row-major.
    /// The default uses central finite differences in one `readout` call.
    fn readout_jacobian(&mut self, z: &[Real], c: &mut [Real]) -> Result<(), ModelError> {
        let (d, p) = (self.spec().latent_dim, self.spec().readout_dim());
        expect_len("z", z, 1, d)?;
        expect_len("c", c, p, d)?;
        let mut zs = Vec::with_capacity(2 * d * d);
        let mut steps = Vec::with_capacity(d);
        for j in 0..d {
            let h = 1e-6 * z[j].abs().max(1.0);
            steps.push(h);
            for sign in [1.0, -1.0] {
                let mut zz = z.to_vec();
                zz[j] += sign * h;
                zs.extend_from_slice(&zz);
            }
        }
        let mut out = vec![0.0; 2 * d * p];
        self.readout(&zs, &mut out)?;
        for (j, h) in steps.iter().enumerate() {
            for i in 0..p {
                c[i * d + j] = (out[2 * j * p + i] - out[(2 * j + 1) * p + i]) / (2.0 * h);
            }
        }
        Ok(())
    }
}

impl<M: WorldModel + ?Sized> WorldModel for Box<M> {
    fn spec(&self) -> &ModelSpec {
        (**self).spec()
    }
    fn encode(&mut self, obs: &[Real], z: &mut [Real]) -> Result<(), ModelError> {
        (**self).encode(obs, z)
    }
    fn predict(&mut self, z: &[Real], u: &[Real], z_next: &mut [Real]) -> Result<(), ModelError> {
        (**self).predict(z, u, z_next)
    }
    fn readout(&mut self, z: &[Real], y: &mut [Real]) -> Result<(), ModelError> {
        (**self).readout(z, y)
    }
    fn step(
        &mut self,
        z: &[Real],
        y: &[Real],
        u: &[Real],
        z_next: &mut [Real],
        y_next: &mut [Real],
    ) -> Result<(), ModelError> {
        (**self).step(z, y, u, z_next, y_next)
    }
    fn readout_errors(&self) -> Option<Vec<Vec<Real>>> {
        (**self).readout_errors()
    }
    fn fork(&self) -> Option<Box<dyn WorldModel>> {
        (**self).fork()
    }
    fn predict_jacobians(
        &mut self,
        z: &[Real],
        u: &[Real],
        a: &mut [Real],
        b: &mut [Real],
    ) -> Result<(), ModelError> {
        (**self).predict_jacobians(z, u, a, b)
    }
    fn readout_jacobian(&mut self, z: &[Real], c: &mut [Real]) -> Result<(), ModelError> {
        (**self).readout_jacobian(z, c)
    }
}

/// Checks the shapes of a `predict` call and returns the batch size.
pub(crate) fn check_predict(
    spec: &ModelSpec,
    z: &[Real],
    u: &[Real],
    z_next: &[Real],
) -> Result<usize, ModelError> {
    let b = batch_of("z", z, spec.latent_dim)?;
    expect_len("u", u, b, spec.action_dim())?;
    expect_len("z_next", z_next, b, spec.latent_dim)?;
    Ok(b)
}

/// Checks the shapes of an `encode` call and returns the batch size: every
/// value finite, and for a model with an image every pixel value within
/// `0..=`[`MAX_PIXEL_VALUE`] (the error names the first index, counted
/// over the whole buffer).
pub(crate) fn check_encode(
    spec: &ModelSpec,
    obs: &[Real],
    z: &[Real],
) -> Result<usize, ModelError> {
    let width = spec.obs_dim();
    let b = batch_of("obs", obs, width)?;
    expect_len("z", z, b, spec.latent_dim)?;
    crate::error::check_finite("observation", obs)?;
    let pixels = spec.image_len();
    if pixels > 0 {
        for (row, values) in obs.chunks(width).enumerate() {
            let image = values.get(..pixels).unwrap_or(values);
            if let Some(i) = image
                .iter()
                .position(|x| !(0.0..=MAX_PIXEL_VALUE).contains(x))
            {
                return Err(ModelError::OutOfRange {
                    what: "observation image pixel",
                    index: row * width + i,
                    value: image.get(i).copied().unwrap_or(Real::NAN),
                    lower: 0.0,
                    upper: MAX_PIXEL_VALUE,
                });
            }
        }
    }
    Ok(b)
}

/// Checks the shapes of a `readout` call and returns the batch size.
pub(crate) fn check_readout(spec: &ModelSpec, z: &[Real], y: &[Real]) -> Result<usize, ModelError> {
    let b = batch_of("z", z, spec.latent_dim)?;
    expect_len("y", y, b, spec.readout_dim())?;
    Ok(b)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn seeing_spec(vector: usize) -> ModelSpec {
        ModelSpec {
            name: "seeing".into(),
            image: Some(ImageSpec {
                channels: 3,
                height: 2,
                width: 4,
            }),
            observations: (0..vector).map(|i| format!("q{i}")).collect(),
            actions: vec!["u".into()],
            latent_dim: 2,
            readouts: vec!["p.x".into()],
            action_lower: vec![-1.0],
            action_upper: vec![1.0],
            dt: 0.1,
        }
    }

    #[test]
    fn an_observation_is_the_image_then_the_vector() {
        let spec = seeing_spec(2);
        assert_eq!(
            (spec.image_len(), spec.vector_dim(), spec.obs_dim()),
            (24, 2, 26)
        );
        assert!(seeing_spec(0).validate().is_ok());
        let blind = ModelSpec {
            image: None,
            ..seeing_spec(2)
        };
        assert_eq!((blind.image_len(), blind.obs_dim()), (0, 2));
        let nothing = ModelSpec {
            image: None,
            ..seeing_spec(0)
        };
        assert!(nothing.validate().is_err());
    }

    #[test]
    fn image_sizes_are_positive_and_limited() {
        let cases = [
            ((0, 8, 8), "image.channels must be positive"),
            ((5, 8, 8), "image.channels = 5 is above its limit of 4"),
            (
                (3, 1025, 8),
                "image.height = 1025 is above its limit of 1024",
            ),
            ((3, 8, 0), "image.width must be positive"),
        ];
        for ((channels, height, width), want) in cases {
            let spec = ModelSpec {
                image: Some(ImageSpec {
                    channels,
                    height,
                    width,
                }),
                ..seeing_spec(1)
            };
            let e = spec.validate().unwrap_err().to_string();
            assert!(e.contains(want) && e.contains("seeing"), "{want}: {e}");
        }
        let largest = ImageSpec {
            channels: MAX_IMAGE_CHANNELS,
            height: MAX_IMAGE_SIZE,
            width: MAX_IMAGE_SIZE,
        };
        assert!(largest.validate().is_ok());
    }

    #[test]
    fn encode_checks_pixels_in_every_row() {
        let spec = seeing_spec(1);
        let mut obs = vec![255.0; 2 * 25];
        obs[24] = -7.0; // the vector entry of row 0: any finite value
        let z = [0.0; 4];
        assert_eq!(check_encode(&spec, &obs, &z), Ok(2));
        obs[25 + 3] = 300.0;
        let e = check_encode(&spec, &obs, &z).unwrap_err();
        assert_eq!(
            e,
            ModelError::OutOfRange {
                what: "observation image pixel",
                index: 28,
                value: 300.0,
                lower: 0.0,
                upper: 255.0
            }
        );
        assert!(e.to_string().contains("index 28 is 300"), "{e}");
        obs[28] = -0.5;
        assert!(matches!(
            check_encode(&spec, &obs, &z),
            Err(ModelError::OutOfRange { index: 28, .. })
        ));
        obs[28] = Real::NAN;
        assert_eq!(
            check_encode(&spec, &obs, &z),
            Err(ModelError::NonFinite {
                what: "observation",
                index: 28
            })
        );
    }

    /// Compares a model's Jacobians with the finite-difference defaults.
    pub(crate) fn check_jacobians<M: WorldModel>(model: &mut M, z: &[Real], u: &[Real]) {
        struct Fd<'a, M>(&'a mut M);
        impl<M: WorldModel> WorldModel for Fd<'_, M> {
            fn spec(&self) -> &ModelSpec {
                self.0.spec()
            }
            fn encode(&mut self, o: &[Real], z: &mut [Real]) -> Result<(), ModelError> {
                self.0.encode(o, z)
            }
            fn predict(
                &mut self,
                z: &[Real],
                u: &[Real],
                n: &mut [Real],
            ) -> Result<(), ModelError> {
                self.0.predict(z, u, n)
            }
            fn readout(&mut self, z: &[Real], y: &mut [Real]) -> Result<(), ModelError> {
                self.0.readout(z, y)
            }
        }
        let (d, na, p) = (
            model.spec().latent_dim,
            model.spec().action_dim(),
            model.spec().readout_dim(),
        );
        let (mut a, mut b, mut c) = (vec![0.0; d * d], vec![0.0; d * na], vec![0.0; p * d]);
        let (mut a2, mut b2, mut c2) = (a.clone(), b.clone(), c.clone());
        model.predict_jacobians(z, u, &mut a, &mut b).unwrap();
        model.readout_jacobian(z, &mut c).unwrap();
        let mut fd = Fd(model);
        fd.predict_jacobians(z, u, &mut a2, &mut b2).unwrap();
        fd.readout_jacobian(z, &mut c2).unwrap();
        for (x, y) in a
            .iter()
            .zip(&a2)
            .chain(b.iter().zip(&b2))
            .chain(c.iter().zip(&c2))
        {
            assert!(
                (x - y).abs() < 1e-5,
                "analytic {x} vs finite difference {y}"
            );
        }
    }
}
