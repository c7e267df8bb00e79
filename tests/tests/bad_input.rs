//! Bad input gives a clear error naming the problem, never a panic.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may unwrap

use std::path::Path;
use telic_sim::SimError;
use telic_sim::scenario::Scenario;

fn parse(text: &str) -> Result<Scenario, SimError> {
    Scenario::from_toml(text, "test.toml", Path::new("."))
}

fn message(text: &str) -> String {
    match parse(text) {
        Ok(_) => panic!("scenario should have been rejected:\n{text}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn minimal_scenario_parses() {
    let s = parse("[scene]\nkind = \"navigate\"\n").unwrap();
    assert_eq!(s.planner, telic::PlannerConfig::default());
}

#[test]
fn unknown_top_level_key_is_named() {
    let m = message("[scene]\nkind = \"navigate\"\n\n[plannr]\nsamples = 10\n");
    assert!(m.contains("plannr"), "{m}");
}

#[test]
fn unknown_planner_key_is_named() {
    let m = message("[scene]\nkind = \"navigate\"\n\n[planner]\nsampels = 10\n");
    assert!(m.contains("sampels"), "{m}");
}

#[test]
fn unknown_scene_key_is_named() {
    let m = message("[scene]\nkind = \"reach\"\nnot_a_setting = 3\n");
    assert!(m.contains("not_a_setting"), "{m}");
}

#[test]
fn unknown_objective_key_is_named() {
    let m = message(
        "[scene]\nkind = \"navigate\"\n\n[[objective.terms]]\nname = \"goal\"\nresidual = { kind = \"action\" }\nwieght = 2.0\n",
    );
    assert!(m.contains("wieght"), "{m}");
}

#[test]
fn unknown_scene_kind_is_named() {
    let m = message("[scene]\nkind = \"juggle\"\n");
    assert!(m.contains("juggle"), "{m}");
}

#[test]
fn negative_horizon_is_rejected_with_its_key() {
    let m = message("[scene]\nkind = \"navigate\"\n\n[planner]\nhorizon = -5\n");
    assert!(m.contains("horizon"), "{m}");
}

#[test]
fn zero_horizon_is_rejected_with_its_key() {
    let m = message("[scene]\nkind = \"navigate\"\n\n[planner]\nhorizon = 0\n");
    assert!(m.contains("planner.horizon"), "{m}");
}

#[test]
fn negative_time_limit_is_rejected() {
    let m = message("[scene]\nkind = \"navigate\"\n\n[episode]\nmax_time = -1.0\n");
    assert!(m.contains("episode.max_time"), "{m}");
}

#[test]
fn unknown_scene_name_lists_the_shipped_ones() {
    let err = Scenario::load("no_such_scene").unwrap_err().to_string();
    assert!(
        err.contains("no_such_scene") && err.contains("reach"),
        "{err}"
    );
}

#[test]
fn missing_scenario_file_names_the_path() {
    let err = Scenario::load("/nonexistent/dir/x.toml")
        .unwrap_err()
        .to_string();
    assert!(err.contains("/nonexistent/dir/x.toml"), "{err}");
}

#[test]
fn missing_urdf_names_the_path() {
    let s = parse("[scene]\nkind = \"reach\"\nurdf = \"/nonexistent/arm.urdf\"\n").unwrap();
    let err = s
        .scene
        .build(Path::new("."))
        .err()
        .expect("missing URDF must fail");
    assert!(matches!(err, SimError::Urdf { .. }), "{err}");
    assert!(err.to_string().contains("/nonexistent/arm.urdf"), "{err}");
}

#[test]
fn malformed_urdf_is_an_error() {
    let dir = std::env::temp_dir().join(format!("telic-bad-urdf-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("broken.urdf");
    std::fs::write(&path, "<robot name=\"x\"><link name=\"a\"></robot").unwrap();
    let text = format!("[scene]\nkind = \"reach\"\nurdf = \"{}\"\n", path.display());
    let s = parse(&text).unwrap();
    let err = s
        .scene
        .build(Path::new("."))
        .err()
        .expect("broken URDF must fail");
    assert!(matches!(err, SimError::Urdf { .. }), "{err}");
    assert!(err.to_string().contains("broken.urdf"), "{err}");
}
