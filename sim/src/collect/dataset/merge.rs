//! Joining the shards of a collection (folders written by
//! [`collect_selected`](crate::collect::collect_selected), each holding some
//! of its episodes) into the whole data set, byte for byte the one a single
//! [`collect`](crate::collect::collect) of every episode writes.
//!
//! Nothing of the description is read back from a shard but what only
//! running an episode tells (its steps and success) and the arrays: the
//! merged `meta.json` is described from the scenario and settings exactly
//! as `collect` describes it, and each shard's `meta.json` must be the text
//! that description gives for its episodes. Parsing the floats of a
//! `meta.json` and writing them again need not give the same digits; not
//! parsing them needs no exact float parser, and the comparison proves that
//! every shard is part of this collection.

use super::{Dataset, META_FILE, Meta, describe};
use crate::collect::npy;
use crate::collect::{CollectConfig, CollectError, EpisodeData, Run};
use crate::scenario::Scenario;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Joins the shard folders `shards` (any order) of the collection `config`
/// of `scenario` into the folder `out` and returns its description. The
/// shards must have been written with the same scenario and settings and
/// together hold each of its episodes exactly once; otherwise nothing is
/// written and the error names the shard, setting or episode that is wrong.
pub fn merge(
    scenario: &Scenario,
    config: &CollectConfig,
    shards: &[PathBuf],
    out: &Path,
) -> Result<Meta, CollectError> {
    config.validate()?;
    if shards.is_empty() {
        return Err(CollectError::Config("merge: no shard given".into()));
    }
    let run = Run::prepare(scenario, config, config.episodes)?;
    let mut episodes = Vec::with_capacity(config.episodes);
    for dir in shards {
        episodes.extend(read_shard(&run, dir)?);
    }
    episodes.sort_by_key(|e| e.index);
    check_complete(&episodes, config.episodes)?;
    let meta = describe(&run, &episodes)?;
    let data = Dataset { meta, episodes };
    data.write(out)?;
    Ok(data.meta)
}

/// Checks that `episodes` (sorted by index) are each of `0..total` once.
fn check_complete(episodes: &[EpisodeData], total: usize) -> Result<(), CollectError> {
    let bad = |m: String| Err(CollectError::Config(format!("merge: {m}")));
    for (expected, e) in episodes.iter().enumerate() {
        if e.index < expected {
            return bad(format!("episode {} is in two shards", e.index));
        }
        if e.index >= total {
            return bad(format!(
                "episode {} is not one of the collection's {total}",
                e.index
            ));
        }
        if e.index > expected {
            return bad(format!("episode {expected} is in no shard"));
        }
    }
    if episodes.len() < total {
        return bad(format!("episode {} is in no shard", episodes.len()));
    }
    Ok(())
}

/// The part of a shard's `meta.json` read back: the episodes and what
/// only running them tells.
#[derive(Deserialize)]
struct Listing {
    episode_policies: Vec<Listed>,
}

/// One episode of a [`Listing`].
#[derive(Deserialize)]
struct Listed {
    episode: usize,
    steps: usize,
    success: bool,
}

/// The episodes of the shard folder `dir` of the collection `run`.
fn read_shard(run: &Run<'_>, dir: &Path) -> Result<Vec<EpisodeData>, CollectError> {
    let at = |m: String| CollectError::Config(format!("merge: {}: {m}", dir.display()));
    let text = std::fs::read_to_string(dir.join(META_FILE))
        .map_err(|e| at(format!("{META_FILE}: {e}")))?;
    let listing: Listing =
        serde_json::from_str(&text).map_err(|e| at(format!("{META_FILE}: {e}")))?;
    let mut episodes: Vec<EpisodeData> = listing
        .episode_policies
        .iter()
        .map(|e| {
            let (seed, policy) = run.draw(e.episode);
            EpisodeData {
                index: e.episode,
                seed,
                policy,
                steps: e.steps,
                success: e.success,
                obs: Vec::new(),
                action: Vec::new(),
                next_obs: Vec::new(),
                readouts: Vec::new(),
                next_readouts: Vec::new(),
                violated: Vec::new(),
                frames: Vec::new(),
            }
        })
        .collect();
    let meta = describe(run, &episodes)?;
    let want = meta.to_text()?;
    if let Some(why) = difference(&text, &want) {
        return Err(at(format!(
            "not a shard of this collection (scenario, settings, seed or telic version \
             differ): {why}"
        )));
    }
    fill(dir, &meta, &mut episodes).map_err(at)?;
    Ok(episodes)
}

/// Where the `meta.json` text `had` differs from `want`, if it does.
fn difference(had: &str, want: &str) -> Option<String> {
    if had == want {
        return None;
    }
    let first = had
        .lines()
        .zip(want.lines())
        .enumerate()
        .find(|(_, (a, b))| a != b);
    Some(match first {
        Some((line, (a, b))) => format!(
            "line {} of its {META_FILE} is {:?}, this collection's is {:?}",
            line + 1,
            a.trim(),
            b.trim()
        ),
        None => format!("its {META_FILE} has other lines than this collection's"),
    })
}

/// Reads the arrays of the shard folder `dir`, described by `meta`, into
/// its `episodes` (in the order `meta` lists them).
fn fill(dir: &Path, meta: &Meta, episodes: &mut [EpisodeData]) -> Result<(), String> {
    let field = |name: &str| -> Result<Vec<u8>, String> {
        let info = meta
            .fields
            .get(name)
            .ok_or_else(|| format!("no field {name}"))?;
        array(&dir.join(&info.file), &info.shape)
    };
    let floats = |name: &str| -> Result<Vec<f32>, String> {
        Ok(field(name)?
            .chunks_exact(4)
            .map(|b| <[u8; 4]>::try_from(b).map_or(0.0, f32::from_le_bytes))
            .collect())
    };
    let (o, a, p) = (
        meta.observations.len(),
        meta.actions.len(),
        meta.readouts.len(),
    );
    let (obs, action, next_obs) = (floats("obs")?, floats("action")?, floats("next_obs")?);
    let (readouts, next_readouts) = (floats("readouts")?, floats("next_readouts")?);
    let violated = field("violated")?;
    let images = match &meta.image {
        None => None,
        Some(image) => {
            let shape = [meta.transitions, image.channels, image.height, image.width];
            let now = array(&dir.join(&image.file), &shape)?;
            let next = array(&dir.join(&image.next_file), &shape)?;
            Some((image.bytes(), now, next))
        }
    };
    let mut start = 0;
    for e in episodes {
        let end = start + e.steps;
        // The shapes were checked against `meta`, whose rows are the sum
        // of the episodes' steps: no range below is out of bounds.
        let rows = |v: &[f32], width: usize| v.get(start * width..end * width).map(<[f32]>::to_vec);
        let short = || format!("episode {}: fewer rows than its steps", e.index);
        e.obs = rows(&obs, o).ok_or_else(short)?;
        e.action = rows(&action, a).ok_or_else(short)?;
        e.next_obs = rows(&next_obs, o).ok_or_else(short)?;
        e.readouts = rows(&readouts, p).ok_or_else(short)?;
        e.next_readouts = rows(&next_readouts, p).ok_or_else(short)?;
        e.violated = violated.get(start..end).ok_or_else(short)?.to_vec();
        if let Some((size, now, next)) = &images {
            e.frames = frames(now, next, *size, start, end).ok_or_else(short)?;
        }
        start = end;
    }
    Ok(())
}

/// The images of the episode of rows `start..end`, as it holds them: one
/// per row, and the next image of its last row.
fn frames(now: &[u8], next: &[u8], size: usize, start: usize, end: usize) -> Option<Vec<u8>> {
    if end == start {
        return Some(Vec::new());
    }
    let rows = now.get(start * size..end * size)?;
    let last = next.get((end - 1) * size..end * size)?;
    Some([rows, last].concat())
}

/// The data bytes of the `.npy` (or `.npy.gz`) file `path`, which must
/// have the shape `shape`.
fn array(path: &Path, shape: &[usize]) -> Result<Vec<u8>, String> {
    let (header, data) = npy::read(path)?;
    if header.shape != shape {
        return Err(format!(
            "{}: shape {:?}, its {META_FILE} says {shape:?}",
            path.display(),
            header.shape
        ));
    }
    Ok(data)
}
