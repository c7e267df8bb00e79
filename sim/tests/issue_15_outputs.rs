//! Issue 15, "`--json` loses results": results are written as episodes
//! finish, an existing file is never clobbered by a run that fails before
//! its first episode, an interrupted run keeps every finished episode and
//! `--resume` finishes it with the results an uninterrupted run gives, a
//! failing episode keeps the others' results, and every output asked for
//! (`--json`, `--rrd`) is checked before any episode runs.
//!
//! These run the `telic` program of this package (`CARGO_BIN_EXE_telic`),
//! on a navigate scene cut to 0.3 s so that episodes finish quickly.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may unwrap

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A fresh folder for one test.
fn folder(test: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("telic-issue15-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The shipped navigate scenario with `edits` (key, value) applied to its
/// lines, written into `dir`.
fn scenario(dir: &Path, name: &str, edits: &[(&str, &str)]) -> PathBuf {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/navigate.toml");
    let mut text = String::new();
    for line in std::fs::read_to_string(shipped).unwrap().lines() {
        let key = line.split('=').next().unwrap_or("").trim();
        match edits.iter().find(|(k, _)| *k == key) {
            Some((k, v)) => text += &format!("{k} = {v}\n"),
            None => text += &format!("{line}\n"),
        }
    }
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn short(dir: &Path) -> PathBuf {
    scenario(dir, "short.toml", &[("max_time", "0.3")])
}

fn telic(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_telic"));
    cmd.args(args).env("RUST_BACKTRACE", "0");
    cmd
}

fn run(args: &[&str]) -> Output {
    telic(args).output().unwrap()
}

/// `telic run SCENE --model analytic --quiet --json JSON`.
fn analytic(scene: &Path, json: &Path) -> Command {
    let mut cmd = telic(&["run", scene.to_str().unwrap(), "--model", "analytic"]);
    cmd.args(["--quiet", "--json", json.to_str().unwrap()]);
    cmd
}

/// [`analytic`] with `extra` arguments, run to its end.
fn run_analytic(scene: &Path, json: &Path, extra: &[&str]) -> Output {
    analytic(scene, json).args(extra).output().unwrap()
}

/// Sends `signal` (`-INT`, `-TERM`) to `child`.
fn kill(signal: &str, child: &std::process::Child) {
    let killed = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn lines(path: &Path) -> usize {
    std::fs::read_to_string(path).map_or(0, |t| t.lines().count())
}

fn partial(json: &Path) -> PathBuf {
    let mut name = json.file_name().unwrap().to_os_string();
    name.push(".partial.jsonl");
    json.with_file_name(name)
}

/// The per-episode results of a document, without their wall-clock latencies.
fn episodes(doc: &Value) -> Vec<Value> {
    let mut v = doc["episodes"].as_array().unwrap().clone();
    for e in &mut v {
        e.as_object_mut().unwrap().remove("plan_latency_ms");
    }
    v
}

/// Starts a run of a million episodes, waits (generously) until at least
/// `at_least` episodes are in the partial file, and sends `signal`.
fn interrupted_run(scene: &Path, json: &Path, signal: &str, at_least: usize) -> Output {
    let mut child = analytic(scene, json)
        .args(["--episodes", "1000000", "--jobs", "2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(300);
    while lines(&partial(json)) < at_least + 1 {
        if let Some(status) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            panic!("the run ended by itself ({status}): {}", text(&out.stderr));
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!(
                "no {} with {at_least} episodes after 300 s",
                partial(json).display()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    kill(signal, &child);
    child.wait_with_output().unwrap()
}

#[test]
fn a_run_that_fails_before_its_first_episode_leaves_an_existing_file_alone() {
    let dir = folder("keep");
    let keep = dir.join("keep.json");
    std::fs::write(&keep, "{\"x\":1}\n").unwrap();
    let out = run(&[
        "run",
        "reach",
        "--model",
        "/nonexistent_bundle",
        "--quiet",
        "--json",
        keep.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert_eq!(std::fs::read_to_string(&keep).unwrap(), "{\"x\":1}\n");
    assert!(!partial(&keep).exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_interrupted_run_keeps_its_episodes_and_resumes_to_the_same_results() {
    let dir = folder("interrupt");
    let scene = short(&dir);
    let json = dir.join("big.json");
    let out = interrupted_run(&scene, &json, "-INT", 3);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("--resume"), "{stderr}");
    let doc = read_json(&json);
    assert_eq!(doc["complete"], false);
    assert_eq!(doc["interrupted"], true);
    let done = doc["episodes"].as_array().unwrap().len();
    assert!(done >= 3, "{done}");
    assert_eq!(doc["summary"]["episodes"], done);
    assert_eq!(
        lines(&partial(&json)),
        done + 1,
        "a header and a line per episode"
    );

    // Finish it with two more episodes, and run the same episodes afresh.
    let count = (done + 2).to_string();
    let common = [
        "run",
        scene.to_str().unwrap(),
        "--model",
        "analytic",
        "--quiet",
        "--episodes",
        &count,
    ];
    let resumed = telic(&common)
        .args(["--jobs", "2", "--json", json.to_str().unwrap(), "--resume"])
        .output()
        .unwrap();
    assert!(resumed.status.success(), "{}", text(&resumed.stderr));
    let fresh_json = dir.join("fresh.json");
    let fresh = telic(&common)
        .args(["--jobs", "1", "--json", fresh_json.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(fresh.status.success(), "{}", text(&fresh.stderr));
    let (a, b) = (read_json(&json), read_json(&fresh_json));
    assert_eq!(a["complete"], true);
    assert!(
        !partial(&json).exists(),
        "a complete run removes its partial file"
    );
    assert_eq!(episodes(&a).len(), done + 2);
    assert_eq!(
        episodes(&a),
        episodes(&b),
        "bit-identical per-episode results"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn sigterm_keeps_the_finished_episodes_too() {
    let dir = folder("term");
    let scene = short(&dir);
    let json = dir.join("out.json");
    let out = interrupted_run(&scene, &json, "-TERM", 1);
    assert_eq!(out.status.code(), Some(143), "{}", text(&out.stderr));
    let doc = read_json(&json);
    assert_eq!(doc["interrupted"], true);
    assert!(!doc["episodes"].as_array().unwrap().is_empty());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_failing_episode_keeps_the_results_of_the_others() {
    let dir = folder("fail");
    // One attempt at a field of 6 obstacles: with seed 1 the first
    // episodes draw a solvable field and a later one does not.
    let scene = scenario(
        &dir,
        "fail.toml",
        &[("max_time", "0.3"), ("obstacles", "6\nmax_attempts = 1")],
    );
    let json = dir.join("out.json");
    let out = run_analytic(
        &scene,
        &json,
        &["--seed", "1", "--episodes", "1000", "--jobs", "1"],
    );
    let stderr = text(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("no solvable field"), "{stderr}");
    let doc = read_json(&json);
    assert_eq!(doc["complete"], false);
    let error = doc["error"].as_str().unwrap();
    assert!(error.contains("no solvable field"), "{error}");
    let done = doc["episodes"].as_array().unwrap().len();
    assert!((1..1000).contains(&done), "{done}");
    assert_eq!(lines(&partial(&json)), done + 1);
    // One worker: the episodes before the failing one, and none after it.
    let indices: Vec<u64> = doc["episode_indices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert_eq!(indices, (0..done as u64).collect::<Vec<_>>());
    assert!(error.contains(&format!("episode {done} ")), "{error}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn outputs_that_cannot_be_written_fail_before_any_episode() {
    let dir = folder("unwritable");
    let scene = short(&dir);
    let json = dir.join("out.json");
    for (extra, expect) in [
        (vec!["--json", "/dev/full"], "/dev/full"),
        (
            vec!["--json", "/nonexistent-dir/telic/out.json"],
            "/nonexistent-dir/telic",
        ),
        (
            vec!["--rrd", "/proc/x.rrd", "--json", json.to_str().unwrap()],
            "--rrd",
        ),
        (
            vec![
                "--rrd",
                "/nonexistent-dir/telic/out.rrd",
                "--json",
                json.to_str().unwrap(),
            ],
            "--rrd",
        ),
    ] {
        let out = telic(&["run", scene.to_str().unwrap(), "--model", "analytic"])
            .args(["--episodes", "2", "--quiet"])
            .args(&extra)
            .output()
            .unwrap();
        let stderr = text(&out.stderr);
        assert!(!out.status.success(), "{extra:?}");
        assert!(stderr.contains(expect), "{extra:?}: {stderr}");
        // No episode ran: no summary was printed, no results were written.
        assert!(!text(&out.stdout).contains("success rate"), "{extra:?}");
        assert!(!json.exists() && !partial(&json).exists(), "{extra:?}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_unfinished_run_is_not_overwritten_without_resume() {
    let dir = folder("unfinished");
    let scene = short(&dir);
    let json = dir.join("out.json");
    let kept = "{\"format\":\"telic.run.episodes\"}\n";
    std::fs::write(partial(&json), kept).unwrap();
    let out = run_analytic(&scene, &json, &["--episodes", "1"]);
    let stderr = text(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("--resume"), "{stderr}");
    assert_eq!(std::fs::read_to_string(partial(&json)).unwrap(), kept);
    assert!(!json.exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_interrupted_collection_says_it_wrote_nothing() {
    let dir = folder("collect");
    let out = dir.join("data");
    let child = telic(&["collect", "navigate", "--episodes", "100000", "--quiet"])
        .arg("--out")
        .arg(&out)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The folder is made once the handler is in place.
    let deadline = Instant::now() + Duration::from_secs(300);
    while !out.exists() {
        assert!(
            Instant::now() < deadline,
            "no {} after 300 s",
            out.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    kill("-INT", &child);
    let done = child.wait_with_output().unwrap();
    let stderr = text(&done.stderr);
    assert_eq!(done.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("nothing was written"), "{stderr}");
    assert!(!out.join("meta.json").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_first_failing_write_stops_the_run_with_its_error() {
    let dir = folder("full");
    let scene = short(&dir);
    let json = dir.join("out.json");
    // Files of at most 8 blocks (4 KiB): the partial file fills up after a
    // few episodes, as a full disk would (EFBIG instead of ENOSPC).
    let script = format!(
        "trap '' XFSZ; ulimit -f 8; exec '{}' run '{}' --model analytic --episodes 100000 \
         --jobs 2 --quiet --json '{}'",
        env!("CARGO_BIN_EXE_telic"),
        scene.display(),
        json.display()
    );
    let out = Command::new("bash")
        .args(["-c", &script])
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("the run stopped at the first result it could not write"),
        "{stderr}"
    );
    // The lines written before it are whole and stay.
    let kept = std::fs::read_to_string(partial(&json)).unwrap();
    assert!(kept.lines().count() >= 2, "{kept}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_controller_run_writes_its_results_the_same_way() {
    let dir = folder("controller");
    let scene = short(&dir);
    let json = dir.join("out.json");
    let out = run_analytic(&scene, &json, &["--episodes", "2", "--controller"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let doc = read_json(&json);
    assert_eq!(doc["complete"], true);
    assert_eq!(doc["mode"], "controller");
    assert_eq!(doc["episodes"].as_array().unwrap().len(), 2);
    assert_eq!(doc["controller"].as_array().unwrap().len(), 2);
    assert!(!partial(&json).exists());
    let refused = run(&[
        "run",
        scene.to_str().unwrap(),
        "--controller",
        "--resume",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert!(!refused.status.success());
    std::fs::remove_dir_all(&dir).unwrap();
}
