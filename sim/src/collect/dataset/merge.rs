//! Joining the shards of a collection (folders written by
//! [`collect_selected`](crate::collect::collect_selected), each holding some
//! of its episodes) into the whole data set: read back into memory and
//! written by [`Dataset::write`], the one writer, so that the result is
//! byte for byte the data set one [`collect`](crate::collect::collect) of
//! every episode writes.

use super::{Dataset, META_FILE, Meta};
use crate::collect::npy;
use crate::collect::{CollectError, EpisodeData};
use std::path::{Path, PathBuf};

/// Joins the data-set folders `shards` (any order) into the folder `out`
/// and returns its description. The shards must be parts of one collection
/// (the same scenario, settings and seed) that together hold each of its
/// episodes exactly once; otherwise nothing is written and the error says
/// which episode or setting is wrong.
pub fn merge(shards: &[PathBuf], out: &Path) -> Result<Meta, CollectError> {
    let bad = |m: String| CollectError::Config(format!("merge: {m}"));
    let Some((first, rest)) = shards.split_first() else {
        return Err(bad("no shard given".into()));
    };
    let mut parts = vec![Dataset::read(first)?];
    let total = parts[0]
        .meta
        .shard
        .map_or(parts[0].meta.episodes, |s| s.of_episodes);
    let common = common_part(&parts[0].meta);
    for dir in rest {
        let part = Dataset::read(dir)?;
        if common_part(&part.meta) != common {
            return Err(bad(format!(
                "{} is not part of the same collection as {} (scenario, settings, seed or \
                 version differ)",
                dir.display(),
                first.display()
            )));
        }
        parts.push(part);
    }
    let mut episodes: Vec<EpisodeData> = parts.into_iter().flat_map(|p| p.episodes).collect();
    episodes.sort_by_key(|e| e.index);
    for (expected, e) in episodes.iter().enumerate() {
        if e.index != expected {
            let what = if e.index < expected {
                format!("episode {} is in two shards", e.index)
            } else {
                format!("episode {expected} is in no shard")
            };
            return Err(bad(what));
        }
    }
    if episodes.len() != total {
        return Err(bad(format!(
            "the shards hold {} of the collection's {total} episodes",
            episodes.len()
        )));
    }
    let mut meta = common;
    let n: usize = episodes.iter().map(|e| e.steps).sum();
    meta.episodes = episodes.len();
    meta.transitions = n;
    for f in meta.fields.values_mut() {
        if let Some(rows) = f.shape.first_mut() {
            *rows = n;
        }
    }
    meta.episode_policies = episodes.iter().map(EpisodeData::info).collect();
    let data = Dataset { meta, episodes };
    data.write(out)?;
    Ok(data.meta)
}

/// What every shard of one collection shares: its description without
/// the episodes, rows and shard entry.
fn common_part(meta: &Meta) -> Meta {
    let mut m = meta.clone();
    m.episodes = 0;
    m.transitions = 0;
    m.episode_policies.clear();
    m.shard = None;
    for f in m.fields.values_mut() {
        if let Some(rows) = f.shape.first_mut() {
            *rows = 0;
        }
    }
    m
}

impl EpisodeData {
    /// Its entry in `meta.json`.
    pub(super) fn info(&self) -> super::EpisodeInfo {
        super::EpisodeInfo {
            episode: self.index,
            seed: self.seed,
            policy: self.policy,
            steps: self.steps,
            success: self.success,
        }
    }
}

impl Dataset {
    /// Reads back a data set written by [`Dataset::write`]. Its
    /// `meta.json` must be exactly what this version writes for the
    /// description it holds (so that writing it again gives the same bytes).
    pub fn read(dir: &Path) -> Result<Self, CollectError> {
        let at = |m: String| CollectError::Config(format!("{}: {m}", dir.display()));
        let path = dir.join(META_FILE);
        let text = std::fs::read_to_string(&path).map_err(|e| at(e.to_string()))?;
        let meta: Meta =
            serde_json::from_str(&text).map_err(|e| at(format!("{META_FILE}: {e}")))?;
        let again = serde_json::to_string_pretty(&meta).map_err(|e| at(e.to_string()))? + "\n";
        if let Some((line, (had, want))) = text
            .lines()
            .zip(again.lines())
            .enumerate()
            .find(|(_, (a, b))| a != b)
        {
            return Err(at(format!(
                "{META_FILE} was not written by this version of telic (telic_version {}, \
                 this is {}): line {} is {had:?}, this version writes {want:?}",
                meta.telic_version,
                env!("CARGO_PKG_VERSION"),
                line + 1
            )));
        }
        if again != text {
            return Err(at(format!(
                "{META_FILE} has other lines than this version writes"
            )));
        }
        let field = |name: &str| -> Result<Vec<u8>, CollectError> {
            let info = meta
                .fields
                .get(name)
                .ok_or_else(|| at(format!("{META_FILE} describes no field {name}")))?;
            let (header, data) = npy::read(&dir.join(&info.file)).map_err(at)?;
            if header.shape != info.shape {
                return Err(at(format!(
                    "{}: shape {:?}, {META_FILE} says {:?}",
                    info.file, header.shape, info.shape
                )));
            }
            Ok(data)
        };
        let floats = |name: &str| -> Result<Vec<f32>, CollectError> {
            Ok(field(name)?
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect())
        };
        let (o, a, p) = (
            meta.observations.len(),
            meta.actions.len(),
            meta.readouts.len(),
        );
        let obs = floats("obs")?;
        let action = floats("action")?;
        let next_obs = floats("next_obs")?;
        let readouts = floats("readouts")?;
        let next_readouts = floats("next_readouts")?;
        let violated = field("violated")?;
        let images = match &meta.image {
            None => None,
            Some(image) => {
                let read = |file: &str| npy::read(&dir.join(file)).map(|(_, d)| d).map_err(at);
                Some((image.bytes(), read(&image.file)?, read(&image.next_file)?))
            }
        };
        let mut episodes = Vec::with_capacity(meta.episode_policies.len());
        let mut row = 0;
        for e in &meta.episode_policies {
            let rows = row..row + e.steps;
            let cut = |v: &[f32], width: usize| -> Result<Vec<f32>, CollectError> {
                v.get(rows.start * width..rows.end * width)
                    .map(<[f32]>::to_vec)
                    .ok_or_else(|| at(format!("fewer rows than its episodes' steps ({row}+)")))
            };
            let frames = match &images {
                None => Vec::new(),
                Some((size, now, next)) => {
                    let (Some(first), Some(last)) = (
                        now.get(rows.start * size..rows.end * size),
                        next.get((rows.end.max(1) - 1) * size..rows.end * size),
                    ) else {
                        return Err(at(format!(
                            "episode {} has no images or fewer than its steps",
                            e.episode
                        )));
                    };
                    if e.steps == 0 {
                        return Err(at(format!("episode {} has no step", e.episode)));
                    }
                    [first, last].concat()
                }
            };
            episodes.push(EpisodeData {
                index: e.episode,
                seed: e.seed,
                policy: e.policy,
                steps: e.steps,
                success: e.success,
                obs: cut(&obs, o)?,
                action: cut(&action, a)?,
                next_obs: cut(&next_obs, o)?,
                readouts: cut(&readouts, p)?,
                next_readouts: cut(&next_readouts, p)?,
                violated: violated
                    .get(rows.clone())
                    .map(<[u8]>::to_vec)
                    .ok_or_else(|| at("fewer violated rows than steps".into()))?,
                frames,
            });
            row = rows.end;
        }
        if row != meta.transitions {
            return Err(at(format!(
                "its episodes hold {row} steps, {META_FILE} says {} transitions",
                meta.transitions
            )));
        }
        Ok(Self { meta, episodes })
    }
}
