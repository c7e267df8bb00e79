//! World-model bundles: a folder holding a manifest and three ONNX graphs.
//!
//! ```text
//! my_model/
//!   manifest.toml   names, sizes, action bounds, dt, normalisation, provenance
//!   encode.onnx     obs[B,O]            -> z[B,D]    (version 1)
//!                   image[B,C,H,W], obs[B,O] (only when O > 0) -> z[B,D]  (version 2, [image])
//!   predict.onnx    z[B,D], u[B,A]      -> z_next[B,D]
//!   readout.onnx    z[B,D]              -> y[B,P]
//! ```
//!
//! This module reads and checks the manifest; [`super::OnnxModel`] runs the
//! graphs. The full contract, written for whoever exports a bundle from any
//! framework, is `docs/bundle.md`.

use super::{ImageSpec, ModelSpec};
use crate::Real;
use crate::error::ModelError;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The newest manifest format this engine reads (`format_version` in
/// `manifest.toml`); it reads every version from 1 to this one.
pub const FORMAT_VERSION: u32 = 2;
/// The first manifest format with an `[image]` table: an encoder that sees
/// a camera image.
pub const IMAGE_FORMAT_VERSION: u32 = 2;
/// File name of the manifest inside a bundle folder.
pub const MANIFEST_FILE: &str = "manifest.toml";
/// File name of the encoder graph inside a bundle folder.
pub const ENCODE_FILE: &str = "encode.onnx";
/// File name of the predictor graph inside a bundle folder.
pub const PREDICT_FILE: &str = "predict.onnx";
/// File name of the readout graph inside a bundle folder.
pub const READOUT_FILE: &str = "readout.onnx";
/// Largest `manifest.toml` read, in bytes (16 MiB): a manifest is names,
/// sizes and a few tables of numbers.
pub const MAX_MANIFEST_BYTES: u64 = 16 << 20;
/// Largest graph file loaded, in bytes (2 GiB, the protobuf limit of an
/// ONNX file without external data).
pub const MAX_GRAPH_BYTES: u64 = 2 << 30;
/// Largest `|mean|` of an observation's normalisation.
pub const MAX_NORMALISATION_MEAN: Real = 1e9;
/// Smallest `std` of an observation's normalisation: `1 / std` scales the
/// observation, and a smaller one overflows float32 for ordinary values.
pub const MIN_NORMALISATION_STD: Real = 1e-9;
/// Largest `std` of an observation's normalisation.
pub const MAX_NORMALISATION_STD: Real = 1e9;

/// `manifest.toml`: everything about a bundle except the graphs' weights.
///
/// Unknown keys are errors, so a misspelt field is never silently ignored.
///
/// ```
/// use telic::model::bundle::Manifest;
/// let m = Manifest::from_toml(r#"
///     format_version = 1
///     name = "toy"
///     dt = 0.1
///     latent_dim = 8
///     observations = ["q", "qd"]
///     readouts = ["tip.x", "tip.y"]
///     actions = [{ name = "torque", lower = -1.0, upper = 1.0 }]
///
///     [provenance]
///     scene = "reach"
///     samples = 20000
///     episodes = 100
///     seed = 3
///     validation = { onnx_vs_torch_max_abs_diff = 2e-7 }
/// "#).unwrap();
/// assert_eq!(m.spec().latent_dim, 8);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Manifest format version, 1 to [`FORMAT_VERSION`]; an `[image]`
    /// table needs [`IMAGE_FORMAT_VERSION`].
    pub format_version: u32,
    /// A short name, e.g. `"reach_arm_jepa"`.
    pub name: String,
    /// Time step of one `predict`, in seconds.
    pub dt: Real,
    /// Latent size `D`.
    pub latent_dim: usize,
    /// Observation names, in the order of the `obs` columns (`O` of them).
    /// With an [`Manifest::image`], the vector entries that follow the
    /// image (may be empty).
    pub observations: Vec<String>,
    /// The camera image `encode.onnx` takes as its `image` input (format
    /// version 2; absent: the encoder sees the `obs` vector only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<ImageInput>,
    /// Readout names, in the order of the `y` columns (`P` of them). Points
    /// are named `p.x`, `p.y`, `p.z` so that guardrail geometry can use them.
    pub readouts: Vec<String>,
    /// Actions, in the order of the `u` columns (`A` of them), with bounds.
    pub actions: Vec<ActionSpec>,
    /// Per-observation normalisation the engine applies before `encode`
    /// (absent: observations go to the graph unchanged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub normalisation: Option<Normalisation>,
    /// Where the model comes from and how well it did.
    pub provenance: Provenance,
    /// Model-error margins of the readouts per horizon step (optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readout_error_quantiles: Option<ReadoutErrorQuantiles>,
}

/// The `[image]` table: the camera image `encode.onnx` takes, as
/// `image[B, C, H, W]`. Every key is required, so that a bundle says what
/// it expects rather than leaving it to a default.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageInput {
    /// Channels `C`: 3 for `rgb`, 1 for `gray`.
    pub channels: usize,
    /// Height `H` in pixels, 1 to [`super::MAX_IMAGE_SIZE`].
    pub height: usize,
    /// Width `W` in pixels, 1 to [`super::MAX_IMAGE_SIZE`].
    pub width: usize,
    /// Element type of the graph's `image` input.
    pub dtype: ImageDtype,
    /// What the channels are.
    pub channel_order: ChannelOrder,
    /// Axis order of the `image` input after the batch axis.
    pub layout: ImageLayout,
}

impl ImageInput {
    /// The image's sizes, as the engine's [`ModelSpec`] holds them.
    #[must_use]
    pub fn spec(&self) -> ImageSpec {
        ImageSpec {
            channels: self.channels,
            height: self.height,
            width: self.width,
        }
    }
}

/// Element type of a bundle's `image` input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImageDtype {
    /// `uint8`: the pixel bytes as they are.
    Uint8,
    /// `float32`: the pixel values `0.0..=255.0` unscaled (any scaling is the
    /// graph's).
    Float32,
}

/// What the channels of a bundle's image are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelOrder {
    /// `rgb`: red, green, blue (3 channels), as the scene cameras render.
    Rgb,
    /// `gray`: one luminance channel.
    Gray,
}

impl ImageDtype {
    /// The name the manifest gives it (`"uint8"`, `"float32"`).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            ImageDtype::Uint8 => "uint8",
            ImageDtype::Float32 => "float32",
        }
    }
}

impl ImageLayout {
    /// The name the manifest gives it (`"chw"`).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            ImageLayout::Chw => "chw",
        }
    }
}

impl ChannelOrder {
    /// The name the manifest gives it (`"rgb"`, `"gray"`).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            ChannelOrder::Rgb => "rgb",
            ChannelOrder::Gray => "gray",
        }
    }

    /// The channels an image in this order has.
    #[must_use]
    pub fn channels(self) -> usize {
        match self {
            ChannelOrder::Rgb => 3,
            ChannelOrder::Gray => 1,
        }
    }
}

/// Axis order of a bundle's `image` input after the batch axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImageLayout {
    /// `chw`: channel, row (top first), column — `[B, C, H, W]`.
    Chw,
}

/// One action: its name and bounds, in the units `predict` expects.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionSpec {
    /// Name, e.g. `"acc.x"` or `"joint1.torque"`.
    pub name: String,
    /// Lower bound.
    pub lower: Real,
    /// Upper bound.
    pub upper: Real,
}

/// Observation normalisation, applied by the engine (not by the graph):
/// `encode` receives `(obs − mean) / std`, column by column, in float32.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Normalisation {
    /// Mean per observation (`O` values, each `|mean| ≤`
    /// [`MAX_NORMALISATION_MEAN`]).
    pub mean: Vec<Real>,
    /// Standard deviation per observation (`O` values, each in
    /// [[`MIN_NORMALISATION_STD`], [`MAX_NORMALISATION_STD`]]).
    pub std: Vec<Real>,
}

/// Where a bundle comes from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provenance {
    /// Scene (or data source) the training data came from.
    pub scene: String,
    /// Training transitions.
    pub samples: u64,
    /// Training episodes.
    pub episodes: u64,
    /// Seed of data collection and training.
    pub seed: u64,
    /// Program that wrote the bundle (optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub producer: Option<String>,
    /// Training settings, free-form (optimiser, epochs, loss weights, …).
    #[serde(default)]
    pub training: toml::Table,
    /// Validation errors measured when the bundle was written.
    pub validation: Validation,
}

/// Validation errors measured when the bundle was written.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Validation {
    /// Largest absolute difference between the exported ONNX graphs and the
    /// framework model they were exported from, on validation inputs (the
    /// name comes from the PyTorch trainer; other exporters report the same
    /// check against their own framework).
    pub onnx_vs_torch_max_abs_diff: Real,
    /// Further named errors (e.g. `readout_rmse_h10`), free-form.
    #[serde(default)]
    pub errors: BTreeMap<String, Real>,
}

/// Model-error margins for the readouts, per horizon step: `margins[r][k]` is
/// the `quantile` of `|y_predicted − y_true|` for readout `r`, `k + 1` predict
/// steps after encoding a real observation, on validation data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadoutErrorQuantiles {
    /// Which quantile, in `(0, 1)`, e.g. `0.95`.
    pub quantile: Real,
    /// Per readout name (a subset of the manifest's readouts), one margin per
    /// horizon step; every list has the same length.
    pub margins: BTreeMap<String, Vec<Real>>,
}

impl ReadoutErrorQuantiles {
    /// Steps covered by the table.
    #[must_use]
    pub fn horizon(&self) -> usize {
        self.margins.values().map(Vec::len).max().unwrap_or(0)
    }

    /// Margin of `readout` at horizon step `step` (0: one step ahead), or
    /// `None` when the table does not cover it.
    #[must_use]
    pub fn margin(&self, readout: &str, step: usize) -> Option<Real> {
        self.margins.get(readout)?.get(step).copied()
    }
}

impl Manifest {
    /// Parses and validates a manifest.
    pub fn from_toml(text: &str) -> Result<Self, ModelError> {
        let manifest: Manifest = toml::from_str(text)
            .map_err(|e| ModelError::Invalid(format!("{MANIFEST_FILE}: {e}")))?;
        manifest.validate()?;
        Ok(manifest)
    }

    /// Reads and validates `dir/manifest.toml`, a regular file (or a link
    /// to one) of at most [`MAX_MANIFEST_BYTES`].
    pub fn load(dir: impl AsRef<Path>) -> Result<Self, ModelError> {
        use std::io::Read;
        let dir = dir.as_ref();
        let path = dir.join(MANIFEST_FILE);
        let cannot = |e: String| {
            ModelError::Invalid(format!(
                "bundle {}: cannot read {MANIFEST_FILE}: {e}",
                dir.display()
            ))
        };
        std::fs::metadata(&path).map_err(|e| cannot(e.to_string()))?;
        check_file(dir, MANIFEST_FILE, MAX_MANIFEST_BYTES)?;
        let file = std::fs::File::open(&path).map_err(|e| cannot(e.to_string()))?;
        let mut text = String::new();
        file.take(MAX_MANIFEST_BYTES + 1)
            .read_to_string(&mut text)
            .map_err(|e| cannot(e.to_string()))?;
        if text.len() as u64 > MAX_MANIFEST_BYTES {
            return Err(cannot(format!(
                "it is larger than the limit of {MAX_MANIFEST_BYTES} bytes"
            )));
        }
        Self::from_toml(&text).map_err(|e| match e {
            ModelError::Invalid(m) => ModelError::Invalid(format!("bundle {}: {m}", dir.display())),
            other => other,
        })
    }

    /// The manifest as TOML.
    pub fn to_toml(&self) -> Result<String, ModelError> {
        toml::to_string(self).map_err(|e| ModelError::Invalid(format!("{MANIFEST_FILE}: {e}")))
    }

    /// The model description the engine plans with.
    #[must_use]
    pub fn spec(&self) -> ModelSpec {
        ModelSpec {
            name: self.name.clone(),
            image: self.image.as_ref().map(ImageInput::spec),
            observations: self.observations.clone(),
            actions: self.actions.iter().map(|a| a.name.clone()).collect(),
            latent_dim: self.latent_dim,
            readouts: self.readouts.clone(),
            action_lower: self.actions.iter().map(|a| a.lower).collect(),
            action_upper: self.actions.iter().map(|a| a.upper).collect(),
            dt: self.dt,
        }
    }

    /// Checks version, sizes, names, bounds, normalisation and margins.
    pub fn validate(&self) -> Result<(), ModelError> {
        let bad = |m: String| Err(ModelError::Invalid(format!("{MANIFEST_FILE}: {m}")));
        if !(1..=FORMAT_VERSION).contains(&self.format_version) {
            return bad(format!(
                "format_version {} is not supported; this engine reads versions 1 to \
                 {FORMAT_VERSION}",
                self.format_version
            ));
        }
        if self.name.trim().is_empty() {
            return bad("name is empty".into());
        }
        if let Some(image) = &self.image {
            self.validate_image(image)?;
        }
        let actions: Vec<String> = self.actions.iter().map(|a| a.name.clone()).collect();
        for (what, names) in [
            ("observations", &self.observations),
            ("actions", &actions),
            ("readouts", &self.readouts),
        ] {
            // An encoder that sees an image may take no vector at all.
            let may_be_empty = what == "observations" && self.image.is_some();
            if names.is_empty() && !may_be_empty {
                return bad(format!("{what} is empty"));
            }
            let mut seen = BTreeSet::new();
            for n in names {
                if n.is_empty() || !seen.insert(n.as_str()) {
                    return bad(format!("{what}: name `{n}` is empty or repeated"));
                }
            }
        }
        if self.latent_dim == 0 {
            return bad("latent_dim must be positive".into());
        }
        self.spec()
            .validate()
            .map_err(|e| ModelError::Invalid(format!("{MANIFEST_FILE}: {e}")))?;
        if let Some(n) = &self.normalisation {
            let o = self.observations.len();
            if n.mean.len() != o || n.std.len() != o {
                return bad(format!(
                    "normalisation has {} means and {} stds for {o} observations",
                    n.mean.len(),
                    n.std.len()
                ));
            }
            for ((name, m), s) in self.observations.iter().zip(&n.mean).zip(&n.std) {
                if !(m.is_finite() && s.is_finite() && *s > 0.0) {
                    return bad(format!(
                        "normalisation of `{name}`: mean {m}, std {s} (std must be finite and > 0)"
                    ));
                }
                // The engine computes (obs − mean) / std in float32: a huge
                // mean or a tiny std turns ordinary observations into ±∞.
                if m.abs() > MAX_NORMALISATION_MEAN {
                    return bad(format!(
                        "normalisation of `{name}`: mean {m:e} is beyond ±{MAX_NORMALISATION_MEAN:e}"
                    ));
                }
                if !(MIN_NORMALISATION_STD..=MAX_NORMALISATION_STD).contains(s) {
                    return bad(format!(
                        "normalisation of `{name}`: std {s:e} is outside \
                         [{MIN_NORMALISATION_STD:e}, {MAX_NORMALISATION_STD:e}] (1 / std scales \
                         the observation in float32)"
                    ));
                }
            }
        }
        let diff = self.provenance.validation.onnx_vs_torch_max_abs_diff;
        if !(diff.is_finite() && diff >= 0.0) {
            return bad(format!(
                "provenance.validation.onnx_vs_torch_max_abs_diff is {diff}"
            ));
        }
        if let Some(q) = &self.readout_error_quantiles {
            self.validate_quantiles(q)?;
        }
        Ok(())
    }

    fn validate_image(&self, image: &ImageInput) -> Result<(), ModelError> {
        let bad = |m: String| Err(ModelError::Invalid(format!("{MANIFEST_FILE}: image: {m}")));
        if self.format_version < IMAGE_FORMAT_VERSION {
            return bad(format!(
                "an [image] table needs format_version = {IMAGE_FORMAT_VERSION}, this manifest \
                 says {}",
                self.format_version
            ));
        }
        image
            .spec()
            .validate()
            .map_err(|e| ModelError::Invalid(format!("{MANIFEST_FILE}: {e}")))?;
        let want = image.channel_order.channels();
        if image.channels != want {
            return bad(format!(
                "channels = {} but channel_order = \"{}\" has {want}",
                image.channels,
                image.channel_order.name()
            ));
        }
        Ok(())
    }

    fn validate_quantiles(&self, q: &ReadoutErrorQuantiles) -> Result<(), ModelError> {
        let bad = |m: String| {
            Err(ModelError::Invalid(format!(
                "{MANIFEST_FILE}: readout_error_quantiles: {m}"
            )))
        };
        if !(q.quantile > 0.0 && q.quantile < 1.0) {
            return bad(format!("quantile {} is not in (0, 1)", q.quantile));
        }
        let h = q.horizon();
        for (name, margins) in &q.margins {
            if !self.readouts.contains(name) {
                return bad(format!("`{name}` is not a readout of this bundle"));
            }
            if margins.is_empty() || margins.len() != h {
                return bad(format!(
                    "`{name}` has {} steps, expected {h} like the others (at least 1)",
                    margins.len()
                ));
            }
            if let Some(m) = margins.iter().find(|m| !(m.is_finite() && **m >= 0.0)) {
                return bad(format!(
                    "`{name}` has margin {m}; margins are finite and ≥ 0"
                ));
            }
        }
        Ok(())
    }
}

/// Checks that `dir/file` is a regular file (a link to one is followed) of
/// at most `max_bytes`: a folder, a device such as `/dev/zero` or a pipe
/// in its place is refused by name, before anything is read.
pub(crate) fn check_file(dir: &Path, file: &str, max_bytes: u64) -> Result<(), ModelError> {
    let bad = |m: String| {
        Err(ModelError::Invalid(format!(
            "bundle {}: {file} {m} (a bundle holds manifest.toml, encode.onnx, predict.onnx and \
             readout.onnx)",
            dir.display()
        )))
    };
    let meta = match std::fs::metadata(dir.join(file)) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return bad("is missing".into()),
        Err(e) => return bad(format!("cannot be read: {e}")),
    };
    if meta.is_dir() {
        return bad("is a folder, not a regular file".into());
    }
    if !meta.is_file() {
        return bad("is not a regular file (a device, pipe or socket?)".into());
    }
    if meta.len() > max_bytes {
        return bad(format!(
            "is {} bytes, more than the limit of {max_bytes}",
            meta.len()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
        format_version = 1
        name = "toy"
        dt = 0.1
        latent_dim = 3
        observations = ["a", "b"]
        readouts = ["p.x", "p.y"]

        [[actions]]
        name = "u"
        lower = -1.0
        upper = 2.0

        [normalisation]
        mean = [0.0, 1.0]
        std = [1.0, 2.0]

        [provenance]
        scene = "reach"
        samples = 100
        episodes = 2
        seed = 5
        training = { epochs = 3, optimiser = { name = "adam", lr = 1e-3 } }
        validation = { onnx_vs_torch_max_abs_diff = 1e-7, errors = { rmse = 0.01 } }

        [readout_error_quantiles]
        quantile = 0.9
        margins = { "p.x" = [0.1, 0.2], "p.y" = [0.1, 0.3] }
    "#;

    fn with(old: &str, new: &str) -> Result<Manifest, ModelError> {
        assert!(GOOD.contains(old), "{old}");
        Manifest::from_toml(&GOOD.replacen(old, new, 1))
    }

    fn err(old: &str, new: &str) -> String {
        with(old, new).unwrap_err().to_string()
    }

    #[test]
    fn reads_a_full_manifest() {
        let m = Manifest::from_toml(GOOD).unwrap();
        let spec = m.spec();
        assert_eq!(spec.actions, ["u"]);
        assert_eq!((spec.action_lower[0], spec.action_upper[0]), (-1.0, 2.0));
        assert_eq!(spec.obs_dim(), 2);
        assert_eq!(m.provenance.training["epochs"].as_integer(), Some(3));
        assert_eq!(m.provenance.validation.errors["rmse"], 0.01);
        let q = m.readout_error_quantiles.as_ref().unwrap();
        assert_eq!(q.horizon(), 2);
        assert_eq!(q.margin("p.y", 1), Some(0.3));
        assert_eq!(q.margin("p.y", 2), None);
        assert_eq!(q.margin("nope", 0), None);
    }

    #[test]
    fn round_trips_through_toml() {
        let m = Manifest::from_toml(GOOD).unwrap();
        assert_eq!(Manifest::from_toml(&m.to_toml().unwrap()).unwrap(), m);
    }

    #[test]
    fn optional_tables_may_be_absent() {
        let text = GOOD.split("[normalisation]").next().unwrap().to_string()
            + "[provenance]\nscene = \"s\"\nsamples = 0\nepisodes = 0\nseed = 0\n\
               validation = { onnx_vs_torch_max_abs_diff = 0.0 }\n";
        let m = Manifest::from_toml(&text).unwrap();
        assert!(m.normalisation.is_none() && m.readout_error_quantiles.is_none());
    }

    #[test]
    fn rejects_bad_manifests_with_a_reason() {
        let cases = [
            (
                "format_version = 1",
                "format_version = 3",
                "format_version 3 is not supported; this engine reads versions 1 to 2",
            ),
            (
                "format_version = 1",
                "format_version = 0",
                "format_version 0",
            ),
            ("dt = 0.1", "dt = 0.1\ncolour = 3", "unknown field `colour`"),
            ("dt = 0.1", "dt = -0.1", "time step"),
            ("latent_dim = 3", "latent_dim = 0", "latent_dim"),
            ("latent_dim = 3", "latent_dim = -3", "latent_dim"),
            (r#"["a", "b"]"#, r#"["a", "a"]"#, "`a` is empty or repeated"),
            (r#"["p.x", "p.y"]"#, "[]", "readouts is empty"),
            ("upper = 2.0", "upper = -2.0", "bounds"),
            (
                "std = [1.0, 2.0]",
                "std = [1.0, 0.0]",
                "normalisation of `b`",
            ),
            (
                "std = [1.0, 2.0]",
                "std = [1.0]",
                "1 stds for 2 observations",
            ),
            ("seed = 5", "", "missing field `seed`"),
            ("1e-7", "nan", "onnx_vs_torch_max_abs_diff"),
            ("quantile = 0.9", "quantile = 1.5", "quantile 1.5"),
            (r#""p.x" = "#, r#""q.x" = "#, "`q.x` is not a readout"),
            ("[0.1, 0.3]", "[0.1]", "`p.y` has 1 steps"),
            ("[0.1, 0.3]", "[0.1, -0.3]", "margin -0.3"),
            (
                "mean = [0.0, 1.0]",
                "mean = [0.0, 1e308]",
                "normalisation of `b`: mean 1e308",
            ),
            (
                "std = [1.0, 2.0]",
                "std = [1e-308, 2.0]",
                "normalisation of `a`: std 1e-308",
            ),
            (
                "std = [1.0, 2.0]",
                "std = [1.0, 1e300]",
                "normalisation of `b`: std 1e300",
            ),
        ];
        for (old, new, want) in cases {
            let e = err(old, new);
            assert!(e.contains(want), "{old} -> {new}: {e}");
            assert!(e.contains(MANIFEST_FILE), "{e}");
        }
    }

    /// GOOD as a version 2 manifest with an image table and `rest` after it.
    fn seeing(image: &str) -> Result<Manifest, ModelError> {
        let text = GOOD
            .replacen("format_version = 1", "format_version = 2", 1)
            .replacen(
                "[normalisation]",
                &format!("[image]\n{image}\n[normalisation]"),
                1,
            );
        Manifest::from_toml(&text)
    }

    const IMAGE: &str = r#"channels = 3
        height = 48
        width = 64
        dtype = "uint8"
        channel_order = "rgb"
        layout = "chw""#;

    #[test]
    fn an_image_table_gives_the_spec_its_image() {
        let m = seeing(IMAGE).unwrap();
        let spec = m.spec();
        let image = spec.image.unwrap();
        assert_eq!((image.channels, image.height, image.width), (3, 48, 64));
        assert_eq!(spec.obs_dim(), 3 * 48 * 64 + 2);
        assert_eq!(m.image.as_ref().unwrap().dtype, ImageDtype::Uint8);
        assert_eq!(Manifest::from_toml(&m.to_toml().unwrap()).unwrap(), m);
        let gray = IMAGE
            .replace("channels = 3", "channels = 1")
            .replace("\"rgb\"", "\"gray\"")
            .replace("\"uint8\"", "\"float32\"");
        let m = seeing(&gray).unwrap();
        assert_eq!(m.image.unwrap().dtype, ImageDtype::Float32);
        // Version 2 without an image is a version 1 manifest.
        let m = with("format_version = 1", "format_version = 2").unwrap();
        assert!(m.spec().image.is_none());
    }

    #[test]
    fn an_image_may_be_all_the_encoder_sees() {
        let text = GOOD
            .replacen("format_version = 1", "format_version = 2", 1)
            .replacen(r#"observations = ["a", "b"]"#, "observations = []", 1)
            .replacen(
                "[normalisation]\n        mean = [0.0, 1.0]\n        std = [1.0, 2.0]",
                &format!("[image]\n{IMAGE}"),
                1,
            );
        let m = Manifest::from_toml(&text).unwrap();
        assert_eq!(m.spec().obs_dim(), 3 * 48 * 64);
        assert_eq!(m.spec().vector_dim(), 0);
        // Without an image, observations may not be empty.
        let e = err(r#"observations = ["a", "b"]"#, "observations = []").to_string();
        assert!(e.contains("observations is empty"), "{e}");
    }

    #[test]
    fn bad_image_tables_name_the_field() {
        let cases = [
            (
                "channels = 3",
                "channels = 4",
                "channels = 4 but channel_order = \"rgb\" has 3",
            ),
            (
                "height = 48",
                "height = 2000",
                "image.height = 2000 is above its limit of 1024",
            ),
            ("width = 64", "width = 0", "image.width must be positive"),
            (
                "\"uint8\"",
                "\"int8\"",
                "unknown variant `int8`, expected `uint8` or `float32`",
            ),
            ("\"rgb\"", "\"bgr\"", "unknown variant `bgr`"),
            (
                "\"chw\"",
                "\"hwc\"",
                "unknown variant `hwc`, expected `chw`",
            ),
            ("layout = \"chw\"", "", "missing field `layout`"),
            (
                "layout = \"chw\"",
                "layout = \"chw\"\nscale = 1",
                "unknown field `scale`",
            ),
        ];
        for (old, new, want) in cases {
            assert!(IMAGE.contains(old), "{old}");
            let e = seeing(&IMAGE.replacen(old, new, 1))
                .unwrap_err()
                .to_string();
            assert!(e.contains(want) && e.contains(MANIFEST_FILE), "{new}: {e}");
        }
        let text = GOOD.replacen(
            "[normalisation]",
            &format!("[image]\n{IMAGE}\n[normalisation]"),
            1,
        );
        let e = Manifest::from_toml(&text).unwrap_err().to_string();
        assert!(
            e.contains("an [image] table needs format_version = 2, this manifest says 1"),
            "{e}"
        );
    }

    #[test]
    fn normalisation_at_its_limits_is_accepted() {
        let m = with(
            "mean = [0.0, 1.0]\n        std = [1.0, 2.0]",
            "mean = [-1e9, 1e9]\n        std = [1e-9, 1e9]",
        );
        assert!(m.is_ok(), "{m:?}");
    }

    #[test]
    fn a_manifest_that_is_not_a_regular_file_is_named() {
        let dir = std::env::temp_dir().join(format!("telic-manifest-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join(MANIFEST_FILE)).unwrap();
        let e = Manifest::load(&dir).unwrap_err().to_string();
        assert!(e.contains("manifest.toml is a folder"), "{e}");
        std::fs::remove_dir_all(dir.join(MANIFEST_FILE)).unwrap();
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink("/dev/zero", dir.join(MANIFEST_FILE)).unwrap();
            let e = Manifest::load(&dir).unwrap_err().to_string();
            assert!(e.contains("manifest.toml is not a regular file"), "{e}");
            std::fs::remove_file(dir.join(MANIFEST_FILE)).unwrap();
            // A link to a regular file is read.
            std::fs::write(dir.join("real.toml"), GOOD).unwrap();
            std::os::unix::fs::symlink(dir.join("real.toml"), dir.join(MANIFEST_FILE)).unwrap();
            assert!(Manifest::load(&dir).is_ok());
            std::fs::remove_file(dir.join(MANIFEST_FILE)).unwrap();
        }
        let e = Manifest::load(&dir).unwrap_err().to_string();
        assert!(e.contains("cannot read manifest.toml"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn load_names_the_folder() {
        let e = Manifest::load("/nonexistent/bundle")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("/nonexistent/bundle") && e.contains(MANIFEST_FILE),
            "{e}"
        );
    }
}
