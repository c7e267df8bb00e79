//! `telic bench` runs its three measurements and prints their figures (small
//! settings: the figures themselves are not asserted, only that they exist
//! and are sane).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may unwrap

use std::process::Command;

fn bench(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_telic"))
        .arg("bench")
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The number printed right before `suffix` on the line containing `key`.
fn figure(text: &str, key: &str, suffix: &str) -> f64 {
    let line = text.lines().find(|l| l.contains(key)).unwrap();
    let before = &line[..line.find(suffix).unwrap()];
    before.split_whitespace().last().unwrap().parse().unwrap()
}

#[test]
fn bench_prints_rates_latencies_and_ticks() {
    let out = bench(&[
        "--only",
        "matmul,latency,nav2,ticks",
        "--samples",
        "64",
        "--horizon",
        "4",
        "--calls",
        "1",
        "--ticks",
        "200",
        "--no-load",
    ]);
    let share = figure(&out, "% of it", "% of it");
    assert!(share > 0.0 && share < 1000.0, "{out}");
    assert!(figure(&out, "machine rate on these shapes", "GFLOP/s;") > 0.0);
    assert!(
        out.contains("[   64 ×  35]·[ 35 × 256]"),
        "the predictor's first layer: {out}"
    );
    assert_eq!(
        out.lines()
            .filter(|l| l.trim_start().starts_with("1024"))
            .count(),
        2,
        "{out}"
    );
    assert!(figure(&out, "observe+action latency", "µs, p99 ") >= 0.0);
    assert!(out.contains("missed deadlines"), "{out}");
    assert!(figure(&out, "rollout-steps/s per core", "M rollout-steps/s") > 0.0);
}
