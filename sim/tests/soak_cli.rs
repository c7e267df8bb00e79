//! `telic soak` runs the controller in the loop for the time asked and
//! reports memory, re-planning, fallbacks and violations (a few seconds
//! here; the figures themselves are not asserted, only that they are there
//! and add up).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may unwrap

use std::process::Command;

fn soak(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_telic"))
        .arg("soak")
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn a_short_soak_reports_memory_replanning_and_violations() {
    let dir = std::env::temp_dir().join(format!("telic-soak-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let json = dir.join("soak.json");
    let out = soak(&[
        "--minutes",
        "0.05",
        "--every",
        "1",
        "--perturb",
        "mild",
        "--json",
        json.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("resident memory:"), "{stdout}");
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let totals = &doc["totals"];
    let episodes = totals["episodes"].as_u64().unwrap();
    assert!(episodes >= 1, "{doc}");
    assert!(totals["successes"].as_u64().unwrap() <= episodes);
    assert!(totals["resident_at_end"].as_u64().unwrap() > 0, "{doc}");
    assert_eq!(doc["perturb"]["level"], "mild");
    let steps = totals["control_steps"].as_u64().unwrap();
    assert!(steps >= totals["plan_steps"].as_u64().unwrap());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn impossible_soak_settings_are_refused() {
    for (args, expected) in [
        (&["--minutes", "0"][..], "--minutes"),
        (&["--minutes", "1", "--every=-1"][..], "--every"),
        (&["--minutes", "1", "--warmup", "1.5"][..], "--warmup"),
        (&["warp", "--minutes", "1"][..], "no such scene"),
    ] {
        let out = soak(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && stderr.contains(expected),
            "{args:?}: {stderr}"
        );
    }
}
