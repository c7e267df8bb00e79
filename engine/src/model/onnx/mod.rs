//! Learned world models: a bundle's ONNX graphs run by ONNX Runtime.
//!
//! The engine works in `f64`; the graphs in `f32`. Conversion happens here,
//! at the boundary, into tensors that are kept and reused between calls.

mod graph;
mod runtime;

pub use runtime::{ONNXRUNTIME_VERSION, ORT_DYLIB_PATH, find_onnx_runtime};

use super::bundle::{ENCODE_FILE, Manifest, PREDICT_FILE, READOUT_FILE};
use super::{ModelSpec, WorldModel, check_encode, check_predict, check_readout};
use crate::Real;
use crate::error::ModelError;
use graph::{Graph, Port, SessionSettings};
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
    encode: Graph<1>,
    predict: Graph<2>,
    readout: Graph<1>,
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
        let obs = Port {
            name: "obs",
            width: spec.obs_dim(),
            field: "observations",
        };
        let z = Port {
            name: "z",
            width: spec.latent_dim,
            field: "latent_dim",
        };
        let u = Port {
            name: "u",
            width: spec.action_dim(),
            field: "actions",
        };
        let z_next = Port {
            name: "z_next",
            ..z
        };
        let y = Port {
            name: "y",
            width: spec.readout_dim(),
            field: "readouts",
        };
        Ok(Self {
            encode: Graph::load(dir, ENCODE_FILE, [obs], z, settings)?,
            predict: Graph::load(dir, PREDICT_FILE, [z, u], z_next, settings)?,
            readout: Graph::load(dir, READOUT_FILE, [z], y, settings)?,
            dir: dir.to_path_buf(),
            manifest,
            spec,
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

    fn encode(&mut self, obs: &[Real], z: &mut [Real]) -> Result<(), ModelError> {
        let b = check_encode(&self.spec, obs, z)?;
        self.encode
            .run(b, [obs], self.manifest.normalisation.as_ref(), z)
    }

    fn predict(&mut self, z: &[Real], u: &[Real], z_next: &mut [Real]) -> Result<(), ModelError> {
        let b = check_predict(&self.spec, z, u, z_next)?;
        self.predict.run(b, [z, u], None, z_next)
    }

    fn readout(&mut self, z: &[Real], y: &mut [Real]) -> Result<(), ModelError> {
        let b = check_readout(&self.spec, z, y)?;
        self.readout.run(b, [z], None, y)
    }
}
