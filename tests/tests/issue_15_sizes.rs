//! Issue 15, "sizes without limits": every size a user can set has a
//! documented upper limit, checked before anything is allocated, and a value
//! above it is an error naming the key, the value and the limit (on
//! 311fd4f these aborted on a failed allocation, panicked on an overflow or
//! ran until killed). Also: a section written as an array is refused, the
//! reach scene's `sample_ranges` must match the arm's joints, and messages
//! print far-from-one numbers in exponent notation.
//!
//! The same reproducers through the `telic` program are in
//! `sim/tests/issue_15_sizes_cli.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may unwrap

use std::path::Path;
use telic::limits::Amount;
use telic::model::PointMass;
use telic::planner::{MAX_HORIZON, MAX_ITERATIONS, MAX_SAMPLES};
use telic::{LimitError, ObjectiveSpec, PlanError, PlannerConfig, WorldModel};
use telic_sim::SimError;
use telic_sim::collect::CollectConfig;
use telic_sim::scenario::Scenario;
use telic_sim::scene::navigate::NavigateConfig;

const I64_MAX: &str = "9223372036854775807";

/// The shipped scenario `name` with `key = value` set in `[section]` (the
/// key's line replaced, or added right under the section's header).
fn shipped_with(name: &str, section: &str, key: &str, value: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../sim/scenarios/{name}.toml"));
    let text = std::fs::read_to_string(path).unwrap();
    let mut out = Vec::new();
    let (mut current, mut done) = (String::new(), false);
    for line in text.lines() {
        if line.starts_with('[') {
            current = line.trim_matches(|c| c == '[' || c == ']').to_string();
        }
        let this_key = line.split('=').next().unwrap_or("").trim();
        if current == section && this_key == key && !done {
            out.push(format!("{key} = {value}"));
            done = true;
        } else {
            out.push(line.to_string());
            if line == format!("[{section}]") && !text.contains(&format!("\n{key} =")) {
                out.push(format!("{key} = {value}"));
                done = true;
            }
        }
    }
    assert!(done, "{name}.toml: no [{section}] to put {key} in");
    out.join("\n")
}

fn parse(text: &str) -> Result<Scenario, SimError> {
    Scenario::from_toml(text, "test.toml", Path::new("."))
}

/// The limit error of a scenario: from parsing it, or else from building
/// its scene (where the scene's own counts are checked).
fn limit_error(text: &str) -> LimitError {
    let err = match parse(text) {
        Err(e) => e,
        Ok(s) => match s.scene.build(&s.base_dir) {
            Err(e) => e,
            Ok(_) => panic!("accepted:\n{text}"),
        },
    };
    match err {
        SimError::Limit { limit, .. } => limit,
        other => panic!("expected a limit error, got {other}"),
    }
}

fn count(n: usize) -> Amount {
    Amount::Count(n as u64)
}

#[test]
fn planner_samples_above_the_limit_are_refused_naming_key_value_and_limit() {
    let e = limit_error(&shipped_with("reach", "planner", "samples", "100000000"));
    assert_eq!(e.key, "planner.samples");
    assert_eq!((e.value, e.limit), (count(100_000_000), count(MAX_SAMPLES)));
    assert_eq!(
        e.to_string(),
        "planner.samples = 100000000 is above its limit of 1048576"
    );
    // i64::MAX overflowed `n * h * a` in core.rs on 311fd4f.
    let e = limit_error(&shipped_with("reach", "planner", "samples", I64_MAX));
    assert_eq!(e.key, "planner.samples");
}

#[test]
fn horizon_and_iterations_above_their_limits_are_refused() {
    for value in ["10000000", I64_MAX] {
        let e = limit_error(&shipped_with("reach", "planner", "horizon", value));
        assert_eq!(
            (e.key.as_str(), e.limit),
            ("planner.horizon", count(MAX_HORIZON))
        );
    }
    let e = limit_error(&shipped_with("reach", "planner", "iterations", "100000000"));
    assert_eq!(
        (e.key.as_str(), e.limit),
        ("planner.iterations", count(MAX_ITERATIONS))
    );
}

#[test]
fn the_work_of_one_plan_call_is_bounded() {
    // Each within its own limit, together 3·10⁹ model steps per call.
    let text = shipped_with("reach", "planner", "samples", "1000000")
        .replace("horizon = 40", "horizon = 1000");
    let e = limit_error(&text);
    assert!(e.key.contains("model steps per plan"), "{e}");
}

#[test]
fn episode_time_above_the_limit_is_refused() {
    let e = limit_error(&shipped_with("reach", "episode", "max_time", "1e12"));
    assert_eq!(e.key, "episode.max_time");
    assert_eq!(
        e.to_string(),
        "episode.max_time = 1e12 is above its limit of 3600"
    );
    // 10⁴ physics steps per control period (the limit) for 3000 s: 3·10⁸.
    let text = shipped_with("navigate", "scene", "physics_dt", "0.00001")
        .replace("max_time = 25.0", "max_time = 3000.0");
    let e = limit_error(&text);
    assert!(e.key.contains("physics steps per episode"), "{e}");
}

#[test]
fn scene_counts_above_their_limits_are_refused_before_allocating() {
    for value in ["1000000000", I64_MAX] {
        let e = limit_error(&shipped_with("push", "scene", "keepouts", value));
        assert_eq!(e.key, "scene.keepouts");
    }
    let e = limit_error(&shipped_with(
        "reach",
        "scene",
        "keep_out_boxes",
        "100000000",
    ));
    assert_eq!(e.key, "scene.keep_out_boxes");
    let e = limit_error(&shipped_with("navigate", "scene", "obstacles", "100000"));
    assert_eq!(e.key, "scene.obstacles");
}

#[test]
fn physical_scene_settings_above_the_limit_are_refused() {
    // Each panicked inside rapier/parry or ran until killed (the fuzzer).
    let e = limit_error(&shipped_with("reach", "scene", "gravity", "1e308"));
    assert_eq!(e.key, "scene.gravity");
    let e = limit_error(&shipped_with(
        "push",
        "scene",
        "box_half_extents",
        "[0.05, 0.05, 9223372036854775807.0]",
    ));
    assert_eq!(e.key, "scene.box_half_extents[2]");
    let e = limit_error(&shipped_with(
        "navigate",
        "scene",
        "robot_height",
        "9223372036854775807.0",
    ));
    assert_eq!(e.key, "scene.robot_height");
    // One control period of 2·10⁸ physics steps, in an episode of 1 s.
    let text = shipped_with("reach", "scene", "control_dt", "1e6")
        .replace("max_time = 10.0", "max_time = 1.0");
    let e = limit_error(&text);
    assert!(e.key.contains("physics steps per control period"), "{e}");
}

#[test]
fn planner_construction_checks_its_workspace_before_allocating() {
    let model = PointMass::new(2, 0.1, 2.0).unwrap();
    let objective = toml::from_str::<ObjectiveSpec>(
        "[[terms]]\nname = \"effort\"\nresidual = { kind = \"action\" }\n",
    )
    .unwrap()
    .compile(model.spec())
    .unwrap();
    // Within the per-setting limits and the work limit, but 2²⁰ samples of
    // 1000 steps of 2 actions are 16 GB of sequences.
    let config = PlannerConfig {
        samples: MAX_SAMPLES,
        horizon: 1000,
        iterations: 1,
        ..Default::default()
    };
    config.check_limits().unwrap();
    match telic::build(model.clone(), objective.clone(), config) {
        Err(PlanError::Limit(e)) => assert!(e.key.contains("workspace"), "{e}"),
        Err(other) => panic!("expected a limit error, got {other}"),
        Ok(_) => panic!("a 16 GB workspace was allocated"),
    }
    // usize::MAX samples: `n * h * a` overflowed on 311fd4f.
    let config = PlannerConfig {
        samples: usize::MAX,
        ..Default::default()
    };
    match telic::build(model, objective, config) {
        Err(PlanError::Limit(e)) => assert_eq!(e.key, "planner.samples"),
        Err(other) => panic!("expected a limit error, got {other}"),
        Ok(_) => panic!("usize::MAX samples accepted"),
    }
}

#[test]
fn plain_config_validation_checks_the_limits_too() {
    // What the Python bindings call on a dict config.
    let config = PlannerConfig {
        samples: 100_000_000,
        ..Default::default()
    };
    let m = config.validate().unwrap_err();
    assert!(
        m.contains("planner.samples = 100000000") && m.contains("1048576"),
        "{m}"
    );
}

#[test]
fn collection_sizes_above_their_limits_are_refused() {
    let cases = [
        (
            CollectConfig {
                jobs: 3000,
                ..Default::default()
            },
            "jobs = 3000",
        ),
        (
            CollectConfig {
                episodes: 1_000_000_000,
                ..Default::default()
            },
            "episodes = 1000000000",
        ),
        (
            CollectConfig {
                steps_per_episode: Some(1 << 40),
                ..Default::default()
            },
            "steps_per_episode = 1099511627776",
        ),
    ];
    for (config, what) in cases {
        let m = config.validate().unwrap_err().to_string();
        assert!(m.contains(what), "{m}");
    }
}

#[test]
fn a_section_written_as_an_array_is_refused() {
    // `episode = [1.0]` was read as `max_time = 1.0`.
    for section in ["episode", "planner"] {
        let text = format!("{section} = [1.0]\n\n[scene]\nkind = \"navigate\"\n");
        let m = parse(&text).unwrap_err().to_string();
        assert!(m.contains("expected a table"), "{section}: {m}");
    }
}

#[test]
fn reach_sample_ranges_must_match_the_joints() {
    let text = shipped_with("reach", "scene", "sample_ranges", "[[-1.0, 1.0]]");
    let s = parse(&text).unwrap();
    let m = s
        .scene
        .build(&s.base_dir)
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(
        m.contains("sample_ranges has 1 ranges") && m.contains("3 movable joints"),
        "{m}"
    );
}

#[test]
fn messages_print_far_from_one_numbers_with_exponents() {
    let config = NavigateConfig {
        control_dt: 1e-300,
        ..Default::default()
    };
    let m = config.validate().unwrap_err().to_string();
    assert!(m.contains("1e-300") && !m.contains("0.0000"), "{m}");
    let m = parse(&shipped_with("reach", "planner", "noise", "1e308"))
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(m.contains("got 1e308") && m.len() < 200, "{m}");
    // serde writes a float given for a count in full; the message does not.
    let m = parse(&shipped_with("reach", "planner", "samples", "5e-324"))
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(m.contains("floating point `5e-324`"), "{m}");
    let m = parse(&shipped_with("reach", "planner", "horizon", "1e308"))
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(m.contains("floating point `1e308`"), "{m}");
}
