//! Data sets with camera images (`telic collect` in a pixel observation
//! mode): `image.npy.gz` and `next_image.npy.gz` hold the scene camera's
//! image of every row's state, described in `meta.json`, the same bytes on
//! any number of threads; a state-mode collection writes none of it.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may unwrap

use std::path::{Path, PathBuf};
use telic_sim::collect::{CollectConfig, META_FILE, collect, npy};
use telic_sim::scenario::{ObservationMode, Scenario};
use telic_sim::scene::camera::{Camera, ImageSize};

/// A scratch folder, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(test: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "telic-collect-images-{}-{test}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const WIDTH: usize = 32;
const HEIGHT: usize = 24;

/// The shipped `push` scenario observing `mode` with 32×24 images.
fn push(mode: ObservationMode) -> Scenario {
    let mut s = Scenario::load("push").unwrap();
    s.observation.mode = mode;
    s.observation.width = WIDTH as u32;
    s.observation.height = HEIGHT as u32;
    s
}

fn config(jobs: usize) -> CollectConfig {
    CollectConfig {
        episodes: 4,
        seed: 3,
        steps_per_episode: Some(10),
        planner_fraction: 0.5,
        jobs,
        ..CollectConfig::default()
    }
}

/// Collects into `dir`; returns `meta.json`.
fn collect_into(scenario: &Scenario, jobs: usize, dir: &Path) -> serde_json::Value {
    let data = collect(scenario, &config(jobs), &|_| {}).unwrap();
    data.write(dir).unwrap();
    serde_json::from_str(&std::fs::read_to_string(dir.join(META_FILE)).unwrap()).unwrap()
}

#[test]
fn pixel_collections_store_the_image_of_every_row() {
    let scratch = Scratch::new("rows");
    let scenario = push(ObservationMode::PixelsProprio);
    let meta = collect_into(&scenario, 1, &scratch.0);
    assert_eq!(meta["format_version"], 2);
    let image = &meta["image"];
    assert_eq!(image["channels"], 3);
    assert_eq!(image["height"], HEIGHT);
    assert_eq!(image["width"], WIDTH);
    assert_eq!(image["dtype"], "uint8");
    assert_eq!(image["file"], "image.npy.gz");
    assert_eq!(image["next_file"], "next_image.npy.gz");
    // What the camera sees: the push table, 1.2 m × 0.8 m around the origin.
    assert_eq!(
        image["view"],
        serde_json::json!({"center": [0.0, 0.0], "half_extents": [0.6, 0.4]})
    );
    assert_eq!(
        meta["proprio"],
        serde_json::json!(["pusher.x", "pusher.y", "pusher.vx", "pusher.vy"])
    );
    // The state stays whole: the labels of probes and margins.
    assert_eq!(meta["observations"].as_array().unwrap().len(), 8);
    assert_eq!(meta["scenario"]["observation"]["mode"], "pixels+proprio");

    let n = meta["transitions"].as_u64().unwrap() as usize;
    let frame = 3 * HEIGHT * WIDTH;
    let read = |file: &str| {
        let (header, data) = npy::read(&scratch.0.join(file)).unwrap();
        assert_eq!(header.shape, [n, 3, HEIGHT, WIDTH], "{file}");
        assert_eq!(header.descr, "|u1", "{file}");
        data
    };
    let (now, next) = (read("image.npy.gz"), read("next_image.npy.gz"));
    let (_, done) = npy::read(&scratch.0.join("done.npy")).unwrap();
    let row = |images: &[u8], t: usize| images[t * frame..(t + 1) * frame].to_vec();
    for (t, last) in done.iter().enumerate().take(n - 1) {
        if *last == 0 {
            assert_eq!(row(&next, t), row(&now, t + 1), "row {t}");
        }
    }
    // The first row of every episode is the scene right after its reset.
    let mut scene = scenario.scene.build(&scenario.base_dir).unwrap();
    let mut camera = Camera::new(ImageSize::new(WIDTH, HEIGHT)).unwrap();
    let mut expected = vec![0; frame];
    let mut first = 0;
    for e in meta["episode_policies"].as_array().unwrap() {
        scene.reset(e["seed"].as_u64().unwrap()).unwrap();
        scene.render(&mut camera, &mut expected).unwrap();
        assert_eq!(row(&now, first), expected, "episode {}", e["episode"]);
        let steps = e["steps"].as_u64().unwrap() as usize;
        // The pusher moves: an episode's images are not all alike.
        assert_ne!(row(&now, first), row(&next, first + steps - 1));
        first += steps;
    }
    assert_eq!(first, n);
}

#[test]
fn image_files_repeat_their_bytes_on_any_number_of_threads() {
    let (a, b) = (Scratch::new("one"), Scratch::new("two"));
    let scenario = push(ObservationMode::Pixels);
    let meta_a = collect_into(&scenario, 1, &a.0);
    let meta_b = collect_into(&scenario, 3, &b.0);
    assert_eq!(meta_a, meta_b);
    for file in ["image.npy.gz", "next_image.npy.gz", "obs.npy", META_FILE] {
        let bytes = |dir: &Path| std::fs::read(dir.join(file)).unwrap();
        assert_eq!(bytes(&a.0), bytes(&b.0), "{file}");
    }
}

#[test]
fn state_collections_write_no_images() {
    let scratch = Scratch::new("state");
    let meta = collect_into(&push(ObservationMode::State), 2, &scratch.0);
    assert_eq!(meta["format_version"], 1);
    assert!(meta.get("image").is_none() && meta.get("proprio").is_none());
    assert!(!scratch.0.join("image.npy.gz").exists());
}
