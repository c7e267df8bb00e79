//! Data collection for world-model training: the files `telic collect` writes
//! are valid `.npy` arrays whose shapes match `meta.json`, rows chain within an
//! episode, and the same seed writes the same bytes whatever the thread count.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may unwrap

use std::path::{Path, PathBuf};
use telic_sim::collect::npy;
use telic_sim::collect::{CollectConfig, CollectError, META_FILE, Policy, collect, prepare_output};
use telic_sim::scenario::Scenario;

/// A scratch folder, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(test: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("telic-collect-{}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const FIELDS: [&str; 9] = [
    "obs",
    "action",
    "next_obs",
    "readouts",
    "next_readouts",
    "episode",
    "step",
    "done",
    "violated",
];

fn config(episodes: usize, steps: usize, planner_fraction: f64, jobs: usize) -> CollectConfig {
    CollectConfig {
        episodes,
        seed: 11,
        steps_per_episode: Some(steps),
        planner_fraction,
        jobs,
        ..CollectConfig::default()
    }
}

fn collect_into(scene: &str, cfg: &CollectConfig, dir: &Path) -> serde_json::Value {
    let scenario = Scenario::load(scene).unwrap();
    let data = collect(&scenario, cfg, &|_| {}).unwrap();
    let written = data.write(dir).unwrap();
    assert_eq!(written.len(), FIELDS.len() + 1);
    serde_json::from_str(&std::fs::read_to_string(dir.join(META_FILE)).unwrap()).unwrap()
}

fn f32s(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

fn i32s(bytes: &[u8]) -> Vec<i32> {
    bytes
        .chunks_exact(4)
        .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// Reads every field, checks its header against `meta.json`, and checks that
/// rows chain: `obs[t+1] == next_obs[t]` inside an episode, `step` counts up,
/// `done` marks exactly each episode's last row.
fn check_files(dir: &Path, meta: &serde_json::Value) {
    let n = meta["transitions"].as_u64().unwrap() as usize;
    let width = |key: &str| meta[key].as_array().unwrap().len();
    let (o, a, p) = (width("observations"), width("actions"), width("readouts"));
    let expected = [
        vec![n, o],
        vec![n, a],
        vec![n, o],
        vec![n, p],
        vec![n, p],
        vec![n],
        vec![n],
        vec![n],
        vec![n],
    ];
    let mut arrays = std::collections::BTreeMap::new();
    for (field, shape) in FIELDS.iter().zip(expected) {
        let info = &meta["fields"][field];
        let path = dir.join(info["file"].as_str().unwrap());
        let (header, data) = npy::read(&path).unwrap();
        assert_eq!(header.shape, shape, "{field}");
        assert!(!header.fortran_order);
        assert_eq!(header.descr, info["dtype"].as_str().unwrap(), "{field}");
        let meta_shape: Vec<usize> = info["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as usize)
            .collect();
        assert_eq!(meta_shape, shape, "{field}");
        arrays.insert(*field, data);
    }
    let obs = f32s(&arrays["obs"]);
    let next_obs = f32s(&arrays["next_obs"]);
    let action = f32s(&arrays["action"]);
    let episode = i32s(&arrays["episode"]);
    let step = i32s(&arrays["step"]);
    let done = &arrays["done"];
    assert!(arrays["violated"].iter().all(|v| *v <= 1));
    assert!(obs.iter().chain(&next_obs).all(|v| v.is_finite()));
    let lower = meta["action_lower"].as_array().unwrap();
    let upper = meta["action_upper"].as_array().unwrap();
    for row in action.chunks(a) {
        for ((u, lo), hi) in row.iter().zip(lower).zip(upper) {
            let (lo, hi) = (lo.as_f64().unwrap() as f32, hi.as_f64().unwrap() as f32);
            assert!(*u >= lo && *u <= hi, "action {u} outside [{lo}, {hi}]");
        }
    }
    let mut episodes_seen = 0;
    for t in 0..n {
        let last = t + 1 == n || episode[t + 1] != episode[t];
        assert_eq!(done[t], u8::from(last), "row {t}");
        if t == 0 || episode[t] != episode[t - 1] {
            assert_eq!(step[t], 0, "row {t}");
            episodes_seen += 1;
        } else {
            assert_eq!(step[t], step[t - 1] + 1, "row {t}");
            assert_eq!(
                obs[t * o..(t + 1) * o],
                next_obs[(t - 1) * o..t * o],
                "row {t}"
            );
        }
    }
    assert_eq!(episodes_seen, meta["episodes"].as_u64().unwrap() as usize);
}

fn read_all(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect();
    files.sort();
    files
}

#[test]
fn collected_files_are_npy_arrays_described_by_meta() {
    let dir = Scratch::new("files");
    let meta = collect_into("reach", &config(2, 12, 0.5, 1), &dir.0);
    assert_eq!(meta["scene"], "reach");
    assert_eq!(meta["episodes"], 2);
    assert_eq!(meta["dt"], 0.05);
    assert_eq!(meta["scenario"]["scene"]["kind"], "reach");
    assert_eq!(meta["episode_policies"].as_array().unwrap().len(), 2);
    let n: u64 = meta["episode_policies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["steps"].as_u64().unwrap())
        .sum();
    assert_eq!(meta["transitions"].as_u64(), Some(n));
    check_files(&dir.0, &meta);
}

#[test]
fn same_seed_writes_identical_bytes_on_any_number_of_threads() {
    let (a, b, c) = (
        Scratch::new("det-a"),
        Scratch::new("det-b"),
        Scratch::new("det-c"),
    );
    collect_into("reach", &config(2, 10, 0.5, 1), &a.0);
    collect_into("reach", &config(2, 10, 0.5, 2), &b.0);
    let files = read_all(&a.0);
    assert_eq!(files.len(), FIELDS.len() + 1);
    assert_eq!(files, read_all(&b.0));
    let mut other = config(2, 10, 0.5, 1);
    other.seed += 1;
    collect_into("reach", &other, &c.0);
    let obs = |files: &[(String, Vec<u8>)]| files.iter().find(|(n, _)| n == "obs.npy").cloned();
    assert_ne!(
        obs(&files),
        obs(&read_all(&c.0)),
        "another seed, other data"
    );
}

#[test]
fn policy_mix_follows_the_planner_fraction() {
    let scenario = Scenario::load("navigate").unwrap();
    let all_random = collect(&scenario, &config(3, 8, 0.0, 1), &|_| {}).unwrap();
    assert!(
        all_random
            .meta
            .episode_policies
            .iter()
            .all(|e| matches!(e.policy, Policy::Random { .. }))
    );
    let all_planner = collect(&scenario, &config(2, 4, 1.0, 1), &|_| {}).unwrap();
    assert!(
        all_planner
            .meta
            .episode_policies
            .iter()
            .all(|e| matches!(e.policy, Policy::Planner { .. }))
    );
    let dir = Scratch::new("navigate");
    all_random.write(&dir.0).unwrap();
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.0.join(META_FILE)).unwrap()).unwrap();
    assert_eq!(meta["scene"], "navigate");
    check_files(&dir.0, &meta);
}

#[test]
fn bad_settings_and_unwritable_folders_are_clear_errors() {
    let scenario = Scenario::load("reach").unwrap();
    for (cfg, want) in [
        (config(0, 5, 0.5, 1), "episodes"),
        (config(1, 0, 0.5, 1), "steps_per_episode"),
        (config(1, 5, 1.5, 1), "planner_fraction"),
        (config(1, 5, 0.5, 0), "jobs"),
    ] {
        let e = collect(&scenario, &cfg, &|_| {}).unwrap_err().to_string();
        assert!(e.contains(want), "{e}");
    }
    let dir = Scratch::new("unwritable");
    std::fs::create_dir_all(&dir.0).unwrap();
    let file = dir.0.join("a_file");
    std::fs::write(&file, b"x").unwrap();
    let e = prepare_output(&file.join("out")).unwrap_err();
    assert!(matches!(e, CollectError::Write { .. }), "{e}");
    assert!(e.to_string().contains("cannot write"), "{e}");
    let e = Scenario::load("no_such_scene").unwrap_err().to_string();
    assert!(e.contains("no such scene"), "{e}");
}

#[test]
fn transitions_that_break_a_guardrail_are_marked() {
    // The shipped reach scenario: the random policy and the noisy planner
    // mostly keep its guardrails.
    let dir = Scratch::new("violated-none");
    collect_into("reach", &config(2, 20, 0.5, 1), &dir.0);
    let (_, safe) = npy::read(&dir.0.join("violated.npy")).unwrap();
    assert!(
        safe.iter().filter(|v| **v == 1).count() < safe.len() / 2,
        "{safe:?}"
    );

    // A workspace the tool never enters: every transition breaks it.
    let mut scenario = Scenario::load("reach").unwrap();
    scenario.objective.guardrails.push(
        toml::from_str(
            r#"
            kind = "workspace"
            name = "unreachable"
            lower = [5.0, 5.0, 5.0]
            upper = [6.0, 6.0, 6.0]
            bodies = ["tool"]
            "#,
        )
        .unwrap(),
    );
    let data = collect(&scenario, &config(2, 20, 0.5, 1), &|_| {}).unwrap();
    let dir = Scratch::new("violated-all");
    data.write(&dir.0).unwrap();
    let (_, all) = npy::read(&dir.0.join("violated.npy")).unwrap();
    assert!(!all.is_empty() && all.iter().all(|v| *v == 1), "{all:?}");
}
