//! A collection split into shards of episodes (`collect_selected`), each
//! written on its own, then merged (`merge`): the same bytes as one
//! collection of every episode, with or without images; shards that do not
//! make up one collection exactly are refused.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may unwrap

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use telic_sim::collect::{CollectConfig, CollectError, collect, collect_selected, merge};
use telic_sim::scenario::{ObservationMode, Scenario};

/// A scratch folder, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(test: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("telic-shards-{}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn config(episodes: usize) -> CollectConfig {
    CollectConfig {
        episodes,
        seed: 5,
        steps_per_episode: Some(8),
        ..CollectConfig::default()
    }
}

/// Every file of `dir` (name, bytes), sorted by name.
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().to_string();
            (name, std::fs::read(e.path()).unwrap())
        })
        .collect();
    out.sort();
    out
}

fn shard(s: &Scenario, cfg: &CollectConfig, indices: &[usize], dir: &Path) {
    let never = AtomicBool::new(false);
    let data = collect_selected(s, cfg, Some(indices), &never, &|_| {}).unwrap();
    assert_eq!(data.meta.shard.map(|s| s.of_episodes), Some(cfg.episodes));
    data.write(dir).unwrap();
}

fn merged_equals_whole(s: &Scenario, test: &str) {
    let scratch = Scratch::new(test);
    let cfg = config(5);
    let whole = scratch.0.join("whole");
    collect(s, &cfg, &|_| {}).unwrap().write(&whole).unwrap();
    let (a, b) = (scratch.0.join("a"), scratch.0.join("b"));
    shard(s, &cfg, &[3, 0, 4], &a);
    shard(s, &cfg, &[1, 2], &b);
    let out = scratch.0.join("merged");
    let meta = merge(s, &cfg, &[b.clone(), a.clone()], &out).unwrap();
    assert_eq!(meta.episodes, 5);
    assert!(meta.shard.is_none());
    let (w, m) = (files(&whole), files(&out));
    assert_eq!(
        w.iter().map(|f| &f.0).collect::<Vec<_>>(),
        m.iter().map(|f| &f.0).collect::<Vec<_>>()
    );
    for ((name, x), (_, y)) in w.iter().zip(&m) {
        assert!(x == y, "{name} differs");
    }
}

#[test]
fn merged_shards_are_the_whole_collection_byte_for_byte() {
    let mut s = Scenario::load("reach").unwrap();
    s.episode.max_time = 1.0;
    merged_equals_whole(&s, "state");
}

#[test]
fn merged_shards_with_images_are_the_whole_collection_byte_for_byte() {
    let mut s = Scenario::load("push").unwrap();
    s.observation.mode = ObservationMode::Pixels;
    s.observation.width = 32_u32;
    s.observation.height = 24;
    merged_equals_whole(&s, "images");
}

#[test]
fn shards_that_miss_or_repeat_an_episode_or_differ_are_refused() {
    let scratch = Scratch::new("refused");
    let s = Scenario::load("reach").unwrap();
    let cfg = config(4);
    let dir = |n: &str| scratch.0.join(n);
    shard(&s, &cfg, &[0, 1], &dir("a"));
    shard(&s, &cfg, &[1, 2, 3], &dir("b"));
    shard(&s, &cfg, &[2], &dir("c"));
    let other = CollectConfig {
        seed: 6,
        ..cfg.clone()
    };
    shard(&s, &other, &[2, 3], &dir("d"));
    let out = dir("out");
    let msg = |e: CollectError| e.to_string();
    let merged = |shards: &[&str]| {
        let shards: Vec<PathBuf> = shards.iter().map(|n| dir(n)).collect();
        msg(merge(&s, &cfg, &shards, &out).unwrap_err())
    };
    let twice = merged(&["a", "b"]);
    assert!(twice.contains("episode 1 is in two shards"), "{twice}");
    let missing = merged(&["a", "c"]);
    assert!(missing.contains("episode 3 is in no shard"), "{missing}");
    // Shard d is of the collection seeded 6: its meta.json says so.
    let differ = merged(&["a", "c", "d"]);
    assert!(
        differ.contains("not a shard of this collection") && differ.contains("seed"),
        "{differ}"
    );
    let none = msg(merge(&s, &cfg, &[], &out).unwrap_err());
    assert!(none.contains("no shard"), "{none}");
    assert!(!out.join("meta.json").exists());
    let never = AtomicBool::new(false);
    for bad in [&[4][..], &[1, 1], &[]] {
        let e = collect_selected(&s, &cfg, Some(bad), &never, &|_| {}).unwrap_err();
        assert!(e.to_string().contains("indices"), "{e}");
    }
}
