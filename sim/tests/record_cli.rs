//! `telic run` with a recording it cannot make: a warning, and the run
//! completes with its results.

#![cfg(feature = "rerun")]
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may unwrap

use std::process::Command;

fn run_with(extra: &[&str], json: &std::path::Path) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_telic"))
        .args([
            "run",
            "reach",
            "--episodes",
            "1",
            "--model",
            "analytic",
            "--quiet",
            "--json",
        ])
        .arg(json)
        .args(extra)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_recording_that_cannot_be_made_does_not_lose_the_run() {
    let dir = std::env::temp_dir().join(format!("telic-record-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (extra, expect) in [
        (
            vec!["--rrd", "/nonexistent-dir/telic/out.rrd"],
            "cannot record to /nonexistent-dir/telic/out.rrd",
        ),
        (
            vec!["--connect", "rerun+http://127.0.0.1:9/proxy"],
            "no viewer answers",
        ),
    ] {
        let json = dir.join("results.json");
        let _ = std::fs::remove_file(&json);
        let (ok, stderr) = run_with(&extra, &json);
        assert!(ok, "{extra:?}: the run failed: {stderr}");
        assert!(
            stderr.contains("warning") && stderr.contains(expect),
            "{extra:?}: {stderr}"
        );
        let doc: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
        assert_eq!(doc["episodes"].as_array().unwrap().len(), 1, "{extra:?}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
