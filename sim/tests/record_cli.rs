//! `telic run` with a recording it cannot make: an error before any
//! episode runs, as for an unwritable `--json` (one rule for every output
//! the command line asks for), and no results file is written.

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
fn a_recording_that_cannot_be_made_is_an_error_before_any_episode() {
    let dir = std::env::temp_dir().join(format!("telic-record-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (extra, expect) in [
        (
            vec!["--rrd", "/nonexistent-dir/telic/out.rrd"],
            "cannot write /nonexistent-dir/telic",
        ),
        (
            vec!["--connect", "rerun+http://127.0.0.1:9/proxy"],
            "no viewer answers",
        ),
    ] {
        let json = dir.join("results.json");
        let _ = std::fs::remove_file(&json);
        let (ok, stderr) = run_with(&extra, &json);
        assert!(!ok, "{extra:?}: the run went on without its recording");
        assert!(stderr.contains(expect), "{extra:?}: {stderr}");
        assert!(!json.exists(), "{extra:?}: no episode should have run");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
