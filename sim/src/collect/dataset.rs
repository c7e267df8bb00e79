//! A collected data set in memory, its description (`meta.json`) and how
//! it is written to a folder.

use super::npy::{self, Dtype};
use super::{CollectConfig, CollectError, EpisodeData, Policy, Run, prepare_output};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use telic::Real;

mod merge;
pub use merge::merge;

/// Version of the data-set layout written by [`Dataset::write`] (`format_version` in `meta.json`).
pub const FORMAT_VERSION: u32 = 1;
/// The layout version of a data set with camera images ([`Meta::image`]).
pub const FORMAT_VERSION_IMAGES: u32 = 2;
/// File name of the data set's description.
pub const META_FILE: &str = "meta.json";
/// File name of the images of the states before the actions.
pub const IMAGE_FILE: &str = "image.npy.gz";
/// File name of the images one control period later.
pub const NEXT_IMAGE_FILE: &str = "next_image.npy.gz";

/// Per-episode entry of `meta.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpisodeInfo {
    /// Episode index.
    pub episode: usize,
    /// Episode seed.
    pub seed: u64,
    /// The policy that drove it.
    pub policy: Policy,
    /// Control steps recorded.
    pub steps: usize,
    /// The scene reported success at the last step.
    pub success: bool,
}

/// Type and shape of one field file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FieldInfo {
    /// File name, e.g. `"obs.npy"`.
    pub file: String,
    /// NumPy `descr`, e.g. `"<f4"`.
    pub dtype: String,
    /// Array shape.
    pub shape: Vec<usize>,
    /// What it holds.
    pub description: String,
}

/// `meta.json`: everything about a data set except the arrays.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Meta {
    /// Always `"telic.transitions"`.
    pub format: String,
    /// Layout version: [`FORMAT_VERSION`], or [`FORMAT_VERSION_IMAGES`]
    /// when the data set has images.
    pub format_version: u32,
    /// Version of the `telic-sim` crate that wrote the data.
    pub telic_version: String,
    /// Scene name, e.g. `"reach"`.
    pub scene: String,
    /// The whole scenario (scene settings, episode, objective, planner) as JSON.
    pub scenario: serde_json::Value,
    /// Seed of the run.
    pub seed: u64,
    /// Episodes recorded.
    pub episodes: usize,
    /// Rows (transitions) recorded.
    pub transitions: usize,
    /// Step limit per episode.
    pub steps_per_episode: usize,
    /// Control period in seconds (one row).
    pub dt: Real,
    /// Physics time step in seconds.
    pub physics_dt: Real,
    /// Physics steps per control period.
    pub physics_steps_per_control: usize,
    /// Observation names (columns of `obs`, `next_obs`).
    pub observations: Vec<String>,
    /// Action names (columns of `action`).
    pub actions: Vec<String>,
    /// Lower action bounds.
    pub action_lower: Vec<Real>,
    /// Upper action bounds.
    pub action_upper: Vec<Real>,
    /// Ground-truth readout names (columns of `readouts`, `next_readouts`).
    pub readouts: Vec<String>,
    /// The exploration settings (the policy mix).
    pub policy: CollectConfig,
    /// The policy of every episode.
    pub episode_policies: Vec<EpisodeInfo>,
    /// The field files.
    pub fields: BTreeMap<String, FieldInfo>,
    /// The camera images, when the collection's observation mode has them
    /// (absent otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<ImageInfo>,
    /// Names of the robot's own state ([`World::proprio_names`](crate::scene::World::proprio_names)): columns
    /// of `obs` a `pixels+proprio` encoder reads beside the image; present
    /// with `image`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proprio: Option<Vec<String>>,
    /// Present when the folder holds some episodes of a collection only (a
    /// shard, [`collect_selected`](super::collect_selected)); [`merge`]
    /// joins the shards into the whole data set, which has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<ShardInfo>,
}

/// The `shard` entry of `meta.json`: which collection the shard is part of
/// (its episodes are those of [`Meta::episode_policies`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardInfo {
    /// Episodes of the whole collection (`0..of_episodes`).
    pub of_episodes: usize,
}

/// The `image` entry of `meta.json`: two gzip-compressed `.npy` files of
/// `uint8` `[N, channels, height, width]`, row `t` the camera image of the
/// state of `obs[t]` (`file`) and of `next_obs[t]` (`next_file`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ImageInfo {
    /// Colour channels (3: RGB).
    pub channels: usize,
    /// Image height in pixels.
    pub height: usize,
    /// Image width in pixels.
    pub width: usize,
    /// Element type, `"uint8"`.
    pub dtype: String,
    /// Images of the states before the actions, `"image.npy.gz"`.
    pub file: String,
    /// Images one control period later, `"next_image.npy.gz"`.
    pub next_file: String,
    /// What the camera sees: the ground rectangle `center ± half_extents`
    /// (metres), drawn centred in the image at the largest scale that fits
    /// it (`crate::scene::camera`), so that world `[x, y]` is pixel column
    /// `W/2 + s·(x − cx)`, row `H/2 − s·(y − cy)`, `s = min(W/2hx, H/2hy)`.
    /// Absent in data sets written before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub view: Option<ViewInfo>,
}

/// The ground rectangle a data set's camera sees ([`ImageInfo::view`]).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ViewInfo {
    /// Centre, world `[x, y]` in metres.
    pub center: [Real; 2],
    /// Half width (x) and half height (y) in metres.
    pub half_extents: [Real; 2],
}

impl ImageInfo {
    /// Bytes of one image.
    #[must_use]
    pub fn bytes(&self) -> usize {
        self.channels * self.height * self.width
    }
}

/// A collected data set: all episodes, concatenated in episode order.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    /// Description (written as `meta.json`).
    pub meta: Meta,
    /// Episodes in order.
    pub episodes: Vec<EpisodeData>,
}

/// The description of `episodes` (in index order) of the collection `run`:
/// a shard ([`Meta::shard`]) unless they are all of its episodes.
pub(super) fn describe(run: &Run<'_>, episodes: &[EpisodeData]) -> Result<Meta, CollectError> {
    let n: usize = episodes.iter().map(|e| e.steps).sum();
    let spec = &run.spec;
    let readouts = run.readouts.clone();
    let (o, a, p) = (spec.obs_dim(), spec.action_dim(), readouts.len());
    let field = |name: &str, dtype: Dtype, shape: Vec<usize>, description: &str| {
        (
            name.to_string(),
            FieldInfo {
                file: format!("{name}.npy"),
                dtype: dtype.descr().to_string(),
                shape,
                description: description.to_string(),
            },
        )
    };
    let fields = BTreeMap::from([
        field(
            "obs",
            Dtype::F32,
            vec![n, o],
            "observation before the action",
        ),
        field(
            "action",
            Dtype::F32,
            vec![n, a],
            "applied (clamped) action, held for dt",
        ),
        field("next_obs", Dtype::F32, vec![n, o], "observation dt later"),
        field(
            "readouts",
            Dtype::F32,
            vec![n, p],
            "true readouts before the action",
        ),
        field(
            "next_readouts",
            Dtype::F32,
            vec![n, p],
            "true readouts dt later",
        ),
        field("episode", Dtype::I32, vec![n], "episode index"),
        field(
            "step",
            Dtype::I32,
            vec![n],
            "control step within the episode",
        ),
        field(
            "done",
            Dtype::U8,
            vec![n],
            "1 on the last row of an episode",
        ),
        field(
            "violated",
            Dtype::U8,
            vec![n],
            "1 where the true state broke a guardrail of the scenario during the transition",
        ),
    ]);
    let image = run.image.map(|size| ImageInfo {
        channels: 3,
        height: size.height(),
        width: size.width(),
        dtype: "uint8".into(),
        file: IMAGE_FILE.into(),
        next_file: NEXT_IMAGE_FILE.into(),
        view: run.view.map(|v| ViewInfo {
            center: v.center(),
            half_extents: v.half_extents(),
        }),
    });
    let scenario = serde_json::to_value(run.scenario)
        .map_err(|e| CollectError::Config(format!("cannot describe the scenario: {e}")))?;
    let mut policy = run.config.clone();
    policy.jobs = 1; // not part of the data: any number of jobs writes the same bytes
    policy.steps_per_episode = Some(run.steps);
    Ok(Meta {
        format: "telic.transitions".into(),
        format_version: if image.is_some() {
            FORMAT_VERSION_IMAGES
        } else {
            FORMAT_VERSION
        },
        telic_version: env!("CARGO_PKG_VERSION").into(),
        scene: run.scene_name.clone(),
        scenario,
        seed: run.config.seed,
        episodes: episodes.len(),
        transitions: n,
        steps_per_episode: run.steps,
        dt: spec.dt,
        physics_dt: spec.dt / run.physics_steps as Real,
        physics_steps_per_control: run.physics_steps,
        observations: spec.observations.clone(),
        actions: spec.actions.clone(),
        action_lower: spec.action_lower.clone(),
        action_upper: spec.action_upper.clone(),
        readouts,
        policy,
        episode_policies: episodes.iter().map(EpisodeData::info).collect(),
        fields,
        proprio: image.as_ref().map(|_| run.proprio.clone()),
        image,
        shard: (episodes.len() != run.config.episodes).then_some(ShardInfo {
            of_episodes: run.config.episodes,
        }),
    })
}

impl EpisodeData {
    /// Its entry in `meta.json`.
    fn info(&self) -> EpisodeInfo {
        EpisodeInfo {
            episode: self.index,
            seed: self.seed,
            policy: self.policy,
            steps: self.steps,
            success: self.success,
        }
    }
}

impl Meta {
    /// The text of `meta.json`: the one serialisation of a description,
    /// which [`merge`] also compares shards against.
    fn to_text(&self) -> Result<String, CollectError> {
        serde_json::to_string_pretty(self)
            .map(|text| text + "\n")
            .map_err(|e| CollectError::Config(format!("cannot write {META_FILE}: {e}")))
    }
}

impl Dataset {
    /// Transitions (rows) in the data set.
    #[must_use]
    pub fn len(&self) -> usize {
        self.meta.transitions
    }

    /// True when no transition was recorded.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Writes `dir/<field>.npy` for every field of [`Meta::fields`], the
    /// gzip-compressed image arrays of [`Meta::image`] if any, and then
    /// `dir/meta.json`; returns the paths written. An earlier data set's
    /// `meta.json` is removed first and the new one is written last
    /// (atomically), so a write cut short leaves a folder without
    /// `meta.json`, which the trainer refuses, never a mix of two data sets.
    pub fn write(&self, dir: &Path) -> Result<Vec<PathBuf>, CollectError> {
        prepare_output(dir)?;
        let meta_path = dir.join(META_FILE);
        match std::fs::remove_file(&meta_path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(CollectError::Write {
                    path: meta_path.display().to_string(),
                    source: e,
                });
            }
            _ => {}
        }
        let cat = |f: fn(&EpisodeData) -> &Vec<f32>| -> Vec<u8> {
            let all: Vec<f32> = self
                .episodes
                .iter()
                .flat_map(|e| f(e).iter().copied())
                .collect();
            npy::f32_bytes(&all)
        };
        let index = |f: fn(&EpisodeData, usize) -> i32| -> Vec<u8> {
            let all: Vec<i32> = self
                .episodes
                .iter()
                .flat_map(|e| (0..e.steps).map(move |t| f(e, t)))
                .collect();
            npy::i32_bytes(&all)
        };
        let done: Vec<u8> = self
            .episodes
            .iter()
            .flat_map(|e| (0..e.steps).map(move |t| u8::from(t + 1 == e.steps)))
            .collect();
        let mut files: Vec<(&str, Vec<u8>)> = vec![
            ("obs", cat(|e| &e.obs)),
            ("action", cat(|e| &e.action)),
            ("next_obs", cat(|e| &e.next_obs)),
            ("readouts", cat(|e| &e.readouts)),
            ("next_readouts", cat(|e| &e.next_readouts)),
            (
                "episode",
                index(|e, _| i32::try_from(e.index).unwrap_or(i32::MAX)),
            ),
            ("step", index(|_, t| i32::try_from(t).unwrap_or(i32::MAX))),
        ];
        files.push(("done", done));
        let violated: Vec<u8> = self
            .episodes
            .iter()
            .flat_map(|e| e.violated.iter().copied())
            .collect();
        files.push(("violated", violated));
        let mut written = Vec::with_capacity(files.len() + 1);
        for (name, bytes) in files {
            let Some(info) = self.meta.fields.get(name) else {
                return Err(CollectError::Config(format!(
                    "no description of field {name}"
                )));
            };
            let dtype = match info.dtype.as_str() {
                "<i4" => Dtype::I32,
                "|u1" => Dtype::U8,
                _ => Dtype::F32,
            };
            let path = dir.join(&info.file);
            npy::write(&path, dtype, &info.shape, &bytes).map_err(|source| {
                CollectError::Write {
                    path: path.display().to_string(),
                    source,
                }
            })?;
            written.push(path);
        }
        if let Some(image) = &self.meta.image {
            written.extend(self.write_images(dir, image)?);
        }
        let path = dir.join(META_FILE);
        let text = self.meta.to_text()?;
        crate::results::write_atomic(&path, text.as_bytes()).map_err(|e| CollectError::Write {
            path: path.display().to_string(),
            source: std::io::Error::other(e),
        })?;
        written.push(path);
        Ok(written)
    }

    /// Writes the two image arrays, each streamed episode by episode into
    /// its gzip file (the two compressed at once, one thread each).
    fn write_images(&self, dir: &Path, image: &ImageInfo) -> Result<Vec<PathBuf>, CollectError> {
        let frame = image.bytes();
        let shape = [self.len(), image.channels, image.height, image.width];
        let write = |file: &str, skip: usize| -> Result<PathBuf, CollectError> {
            let path = dir.join(file);
            let failed = |source| CollectError::Write {
                path: path.display().to_string(),
                source,
            };
            let mut out = npy::GzWriter::create(&path, Dtype::U8, &shape).map_err(failed)?;
            for e in &self.episodes {
                let rows = e.frames.get(skip * frame..(skip + e.steps) * frame);
                let Some(rows) = rows else {
                    return Err(CollectError::Episode {
                        episode: e.index,
                        seed: e.seed,
                        message: format!(
                            "{} image bytes for {} steps of {frame}-byte images",
                            e.frames.len(),
                            e.steps
                        ),
                    });
                };
                out.write(rows).map_err(failed)?;
            }
            out.finish().map_err(failed)?;
            Ok(path)
        };
        let (now, next) = std::thread::scope(|s| {
            let next = s.spawn(|| write(&image.next_file, 1));
            let now = write(&image.file, 0);
            (now, next.join())
        });
        let next = next.unwrap_or_else(|_| {
            Err(CollectError::Config(
                "the image writer thread panicked".into(),
            ))
        });
        Ok(vec![now?, next?])
    }
}
