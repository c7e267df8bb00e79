//! Learned world models: a bundle's ONNX graphs run by ONNX Runtime.
//!
//! The engine works in `f64`; the graphs in `f32`. Conversion happens here,
//! at the boundary, into tensors that are kept and reused between calls.

mod graph;
mod port;
mod runtime;

#[doc(hidden)]
pub use runtime::environment as onnx_environment;
pub use runtime::{
    ONNXRUNTIME_VERSION, ORT_DYLIB_PATH, install_hint, onnx_runtime_path, use_onnx_runtime,
};

use super::bundle::{ENCODE_FILE, ImageDtype, Manifest, PREDICT_FILE, READOUT_FILE};
use super::{ModelSpec, WorldModel, check_encode, check_predict, check_readout, expect_len};
use crate::Real;
use crate::error::ModelError;
use graph::{Feed, Graph, SessionSettings};
use port::{Elem, Port};
use std::path::{Path, PathBuf};

/// How a bundle's graphs are run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OnnxOptions {
    /// Threads ONNX Runtime may use inside one operator (default 1, so that
    /// the planner decides about parallelism; 0 lets ONNX Runtime use every
    /// core).
    pub intra_threads: usize,
}

impl Default for OnnxOptions {
    fn default() -> Self {
        Self { intra_threads: 1 }
    }
}

/// A world model loaded from a bundle folder (see [`super::bundle`] and
/// `docs/bundle.md`): `encode`, `predict` and `readout` are ONNX graphs.
///
/// Every batched call is one ONNX Runtime call. Observations are normalised
/// with the manifest's `normalisation` before `encode`. Inputs and outputs go
/// through float32 tensors kept per batch size (the few most recent sizes),
/// so a planner that calls with the same `N` every tick allocates none.
///
/// ```
/// use telic::model::{OnnxModel, WorldModel};
/// # let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/point_mass_2d");
/// # // A program names the library (`telic_sim::onnx_runtime` finds it); here python3 does.
/// # let find = "import onnxruntime, os, glob; print(max(glob.glob(os.path.join(\
/// #     os.path.dirname(onnxruntime.__file__), 'capi', '*onnxruntime.*'))))";
/// # if let Ok(out) = std::process::Command::new("python3").args(["-c", find]).output() {
/// #     telic::model::use_onnx_runtime(String::from_utf8_lossy(&out.stdout).trim());
/// # }
/// // A 2D point mass: obs = z = [pos.x, pos.y, vel.x, vel.y], u = [acc.x, acc.y].
/// let mut model = OnnxModel::load(dir)?;
/// let mut z = [0.0; 4];
/// model.encode(&[0.0, 0.0, 1.0, 0.0], &mut z)?;
/// let mut z_next = [0.0; 4];
/// model.predict(&z, &[0.0, 0.0], &mut z_next)?;
/// assert!((z_next[0] - 0.1).abs() < 1e-6);
/// # Ok::<(), telic::ModelError>(())
/// ```
#[derive(Debug)]
pub struct OnnxModel {
    dir: PathBuf,
    manifest: Manifest,
    spec: ModelSpec,
    encode: Encoder,
    predict: Graph<2>,
    readout: Graph<1>,
    /// Finite-difference scratch, grown on first use.
    fd: FdScratch,
}

/// `encode.onnx` by the inputs it takes.
#[derive(Debug)]
enum Encoder {
    /// `obs[B,O]` (format version 1).
    Vector(Graph<1>),
    /// `image[B,C,H,W]`, no vector entries.
    Image(Graph<1>),
    /// `image[B,C,H,W]` and `obs[B,O]`.
    ImageAndVector(Graph<2>),
}

impl Encoder {
    /// Loads `encode.onnx` with the inputs `spec` and the manifest's
    /// image dtype ask for.
    fn load(
        dir: &Path,
        spec: &ModelSpec,
        dtype: Option<ImageDtype>,
        settings: SessionSettings,
    ) -> Result<Self, ModelError> {
        let obs = Port::vector("obs", spec.vector_dim(), "observations");
        let z = Port::vector("z", spec.latent_dim, "latent_dim");
        let Some(image) = spec.image else {
            return Ok(Encoder::Vector(Graph::load(
                dir,
                ENCODE_FILE,
                [obs],
                z,
                settings,
            )?));
        };
        let elem = match dtype {
            Some(ImageDtype::Float32) => Elem::F32,
            Some(ImageDtype::Uint8) | None => Elem::U8,
        };
        let image = Port::image(image, elem);
        Ok(if spec.vector_dim() == 0 {
            Encoder::Image(Graph::load(dir, ENCODE_FILE, [image], z, settings)?)
        } else {
            Encoder::ImageAndVector(Graph::load(dir, ENCODE_FILE, [image, obs], z, settings)?)
        })
    }

    /// Encodes `b` flat observations `obs` (pixels, then vector entries)
    /// into `z`; `norm` normalises the vector entries.
    fn run(
        &mut self,
        spec: &ModelSpec,
        norm: Option<&super::bundle::Normalisation>,
        b: usize,
        obs: &[Real],
        z: &mut [Real],
    ) -> Result<(), ModelError> {
        let (width, pixels) = (spec.obs_dim(), spec.image_len());
        let image = Feed::rows(obs, width);
        let vector = Feed::columns(obs, width, pixels).normalised(norm);
        match self {
            Encoder::Vector(g) => g.run(b, [vector], z),
            Encoder::Image(g) => g.run(b, [image], z),
            Encoder::ImageAndVector(g) => g.run(b, [image, vector], z),
        }
    }
}

#[derive(Debug, Default)]
struct FdScratch {
    z: Vec<Real>,
    u: Vec<Real>,
    out: Vec<Real>,
}

/// Largest latent magnitude for which [`OnnxModel`]'s `readout` must return
/// finite values.
pub const READOUT_CHECKED_LATENT: Real = 1e9;

/// Checks the `b` rows of the output `out` of graph `file` of the bundle in
/// `dir`: a row that is not finite where every value of its input row
/// `input` is within `±bound` is an error naming the bundle, the graph,
/// the row, the column and the value, since no planner can use it.
fn check_output(
    dir: &Path,
    file: &str,
    input: &[Real],
    bound: Real,
    out: &[Real],
    b: usize,
) -> Result<(), ModelError> {
    if out.iter().all(|x| x.is_finite()) {
        return Ok(());
    }
    let (wi, wo) = (input.len() / b.max(1), out.len() / b.max(1));
    let rows = input.chunks(wi.max(1)).zip(out.chunks(wo.max(1)));
    for (row, (i, o)) in rows.enumerate() {
        let Some(col) = o.iter().position(|x| !x.is_finite()) else {
            continue;
        };
        if i.iter().all(|x| x.abs() <= bound) {
            let value = o.get(col).copied().unwrap_or(Real::NAN);
            return Err(ModelError::Invalid(format!(
                "bundle {}: {file} returned {value} at row {row}, column {col} for a finite input: \
                 the graph does not compute a finite output",
                dir.display()
            )));
        }
    }
    Ok(())
}

/// Central-difference step for float32 graphs: about ∛ε₃₂ relative, which
/// balances truncation against rounding (the engine's default 1e-6 step
/// is below float32 resolution).
fn fd_step(x: Real) -> Real {
    5e-3 * x.abs().max(1.0)
}

impl OnnxModel {
    /// Loads the bundle in `dir` with default [`OnnxOptions`].
    ///
    /// Reads and validates the manifest, starts ONNX Runtime if needed, and
    /// checks every graph's input and output names, ranks, widths and element
    /// types against the manifest, so that a bad bundle fails here with an
    /// error naming the file, the tensor and the mismatch, never later.
    pub fn load(dir: impl AsRef<Path>) -> Result<Self, ModelError> {
        Self::load_with(dir, &OnnxOptions::default())
    }

    /// Loads the bundle in `dir` with `options`.
    pub fn load_with(dir: impl AsRef<Path>, options: &OnnxOptions) -> Result<Self, ModelError> {
        let dir = dir.as_ref();
        if !dir.is_dir() {
            return Err(ModelError::Invalid(format!(
                "bundle {} is not a folder",
                dir.display()
            )));
        }
        let manifest = Manifest::load(dir)?;
        let spec = manifest.spec();
        let settings = SessionSettings {
            intra_threads: options.intra_threads,
        };
        let z = Port::vector("z", spec.latent_dim, "latent_dim");
        let u = Port::vector("u", spec.action_dim(), "actions");
        let z_next = Port::vector("z_next", spec.latent_dim, "latent_dim");
        let y = Port::vector("y", spec.readout_dim(), "readouts");
        let dtype = manifest.image.as_ref().map(|i| i.dtype);
        Ok(Self {
            encode: Encoder::load(dir, &spec, dtype, settings)?,
            predict: Graph::load(dir, PREDICT_FILE, [z, u], z_next, settings)?,
            readout: Graph::load(dir, READOUT_FILE, [z], y, settings)?,
            dir: dir.to_path_buf(),
            manifest,
            spec,
            fd: FdScratch::default(),
        })
    }

    /// The bundle's manifest (provenance, normalisation, error margins).
    #[must_use]
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The folder the bundle was loaded from.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl WorldModel for OnnxModel {
    fn spec(&self) -> &ModelSpec {
        &self.spec
    }

    /// The manifest's held-out readout-error quantiles, per readout and step.
    fn readout_errors(&self) -> Option<Vec<Vec<Real>>> {
        let q = self.manifest.readout_error_quantiles.as_ref()?;
        Some(
            self.spec
                .readouts
                .iter()
                .map(|r| q.margins.get(r).cloned().unwrap_or_default())
                .collect(),
        )
    }

    /// Fails, naming the bundle and `encode.onnx`, when the graph returns a
    /// value that is not finite (for a finite observation, which
    /// [`WorldModel::encode`] requires).
    fn encode(&mut self, obs: &[Real], z: &mut [Real]) -> Result<(), ModelError> {
        let b = check_encode(&self.spec, obs, z)?;
        let norm = self.manifest.normalisation.as_ref();
        self.encode.run(&self.spec, norm, b, obs, z)?;
        check_output(&self.dir, ENCODE_FILE, obs, Real::INFINITY, z, b)
    }

    /// A prediction that is not finite is returned as it is: planners
    /// count such a rollout as infeasible, and a model that predicts NaN
    /// everywhere ends in the safe fallback, not in an error.
    fn predict(&mut self, z: &[Real], u: &[Real], z_next: &mut [Real]) -> Result<(), ModelError> {
        let b = check_predict(&self.spec, z, u, z_next)?;
        let (d, a) = (self.spec.latent_dim, self.spec.action_dim());
        self.predict
            .run(b, [Feed::rows(z, d), Feed::rows(u, a)], z_next)
    }

    /// Fails, naming the bundle and `readout.onnx`, when the graph returns a
    /// value that is not finite for a latent row whose values are all
    /// within `±`[`READOUT_CHECKED_LATENT`]. Rows beyond (a rollout that
    /// diverged, whose readout may overflow float32) are returned as they
    /// are, for planners to count as infeasible.
    fn readout(&mut self, z: &[Real], y: &mut [Real]) -> Result<(), ModelError> {
        let b = check_readout(&self.spec, z, y)?;
        self.readout
            .run(b, [Feed::rows(z, self.spec.latent_dim)], y)?;
        check_output(&self.dir, READOUT_FILE, z, READOUT_CHECKED_LATENT, y, b)
    }

    /// Central differences in one batched `predict` call, with a step suited
    /// to float32.
    fn predict_jacobians(
        &mut self,
        z: &[Real],
        u: &[Real],
        a: &mut [Real],
        b: &mut [Real],
    ) -> Result<(), ModelError> {
        let (d, na) = (self.spec.latent_dim, self.spec.action_dim());
        expect_len("z", z, 1, d)?;
        expect_len("u", u, 1, na)?;
        expect_len("a", a, d, d)?;
        expect_len("b", b, d, na)?;
        let n = d + na;
        let fd = &mut self.fd;
        fd.z.clear();
        fd.u.clear();
        for j in 0..n {
            for sign in [1.0, -1.0] {
                fd.z.extend_from_slice(z);
                fd.u.extend_from_slice(u);
                let (zr, ur) = (fd.z.len() - d, fd.u.len() - na);
                let x = if j < d {
                    fd.z.get_mut(zr + j)
                } else {
                    fd.u.get_mut(ur + j - d)
                };
                if let Some(x) = x {
                    *x += sign * fd_step(*x);
                }
            }
        }
        fd.out.resize(2 * n * d, 0.0);
        let rows = 2 * n;
        let feeds = [Feed::rows(&fd.z, d), Feed::rows(&fd.u, na)];
        self.predict.run(rows, feeds, &mut fd.out)?;
        for j in 0..n {
            let base = if j < d { z.get(j) } else { u.get(j - d) };
            let h = fd_step(base.copied().unwrap_or(0.0));
            let plus = fd.out.get(2 * j * d..(2 * j + 1) * d).unwrap_or(&[]);
            let minus = fd.out.get((2 * j + 1) * d..(2 * j + 2) * d).unwrap_or(&[]);
            for (i, (p, m)) in plus.iter().zip(minus).enumerate() {
                let g = (p - m) / (2.0 * h);
                let cell = if j < d {
                    a.get_mut(i * d + j)
                } else {
                    b.get_mut(i * na + j - d)
                };
                if let Some(c) = cell {
                    *c = g;
                }
            }
        }
        Ok(())
    }

    /// Central differences in one batched `readout` call, with a step suited
    /// to float32.
    fn readout_jacobian(&mut self, z: &[Real], c: &mut [Real]) -> Result<(), ModelError> {
        let (d, p) = (self.spec.latent_dim, self.spec.readout_dim());
        expect_len("z", z, 1, d)?;
        expect_len("c", c, p, d)?;
        let fd = &mut self.fd;
        fd.z.clear();
        for j in 0..d {
            for sign in [1.0, -1.0] {
                fd.z.extend_from_slice(z);
                let at = fd.z.len() - d + j;
                if let Some(x) = fd.z.get_mut(at) {
                    *x += sign * fd_step(*x);
                }
            }
        }
        fd.out.resize(2 * d * p, 0.0);
        self.readout
            .run(2 * d, [Feed::rows(&fd.z, d)], &mut fd.out)?;
        for (j, zj) in z.iter().enumerate() {
            let h = fd_step(*zj);
            let plus = fd.out.get(2 * j * p..(2 * j + 1) * p).unwrap_or(&[]);
            let minus = fd.out.get((2 * j + 1) * p..(2 * j + 2) * p).unwrap_or(&[]);
            for (i, (yp, ym)) in plus.iter().zip(minus).enumerate() {
                if let Some(cell) = c.get_mut(i * d + j) {
                    *cell = (yp - ym) / (2.0 * h);
                }
            }
        }
        Ok(())
    }
}
