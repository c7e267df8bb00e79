//! Issue 15, "sizes without limits", through the `telic` program of this
//! package (`CARGO_BIN_EXE_telic`): sizes above their limits are refused
//! with exit status 1 and a message naming the key, the value and the
//! limit, before anything is allocated (on 311fd4f these aborted, panicked
//! or ran until killed; `--jobs 0` silently meant 1). And a CI-size run of
//! the scenario fuzzer (`scripts/fuzz_scenarios.py`): no panic, abort or
//! hang.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may unwrap

use std::path::Path;
use std::process::{Command, Output};

fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_telic"))
        .args(args)
        .current_dir(root())
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap()
}

/// Runs `telic run reach --model analytic --episodes 1 --quiet` with
/// `extra`, expects a refusal (exit 1) and returns its message.
fn refusal(extra: &[&str]) -> String {
    let mut args = vec![
        "run",
        "reach",
        "--model",
        "analytic",
        "--episodes",
        "1",
        "--quiet",
    ];
    args.extend_from_slice(extra);
    let out = run(&args);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{extra:?}: {err}");
    assert!(!err.contains("panicked"), "{extra:?}: {err}");
    err
}

#[test]
fn samples_and_horizon_above_their_limits_are_refused() {
    let m = refusal(&["--samples", "100000000"]);
    assert!(
        m.contains("planner.samples = 100000000 is above its limit of 1048576"),
        "{m}"
    );
    let m = refusal(&["--horizon", "10000000"]);
    assert!(
        m.contains("planner.horizon = 10000000 is above its limit of 10000"),
        "{m}"
    );
}

#[test]
fn iterations_above_the_limit_are_refused_rather_than_run() {
    let m = refusal(&["--iterations", "1000000000"]);
    assert!(
        m.contains("planner.iterations = 1000000000 is above its limit of 10000"),
        "{m}"
    );
}

#[test]
fn jobs_must_be_between_one_and_the_limit() {
    let m = refusal(&["--jobs", "3000"]);
    assert!(m.contains("--jobs = 3000 is above its limit of 256"), "{m}");
    let m = refusal(&["--jobs", "0"]);
    assert!(m.contains("--jobs must be at least 1, got 0"), "{m}");
}

#[test]
fn episodes_above_the_limit_are_refused() {
    let out = run(&[
        "run",
        "reach",
        "--model",
        "analytic",
        "--episodes",
        "1000000000",
        "--quiet",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("--episodes = 1000000000 is above its limit of 1000000"),
        "{err}"
    );
}

#[test]
fn bench_sizes_above_their_limits_are_refused_before_allocating() {
    // `--ticks` sized a vector of latencies up front.
    let out = run(&["bench", "--ticks", "1000000000000", "--only", "ticks"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("--ticks = 1000000000000 is above its limit of 10000000"),
        "{err}"
    );
}

/// A CI-size run of the fuzzer over the shipped scenarios; the full run
/// (500 cases) is `python3 scripts/fuzz_scenarios.py --cases 500`.
#[test]
fn fuzzed_scenarios_never_panic_abort_or_hang() {
    let out = Command::new("python3")
        .arg(root().join("scripts/fuzz_scenarios.py"))
        .args([
            "--cases",
            "40",
            "--seed",
            "15",
            "--jobs",
            "1",
            "--timeout",
            "120",
        ])
        .args(["--binary", env!("CARGO_BIN_EXE_telic")])
        .current_dir(root())
        .output()
        .expect("python3 runs scripts/fuzz_scenarios.py");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("fuzz_scenarios: 40 cases")
            && text.contains("PANIC 0, ABORT 0, HANG 0, ODD 0"),
        "{text}"
    );
}
