//! Issue 15: configurations and world models that silently broke planning
//! now fail with an error naming what is wrong, or say why the robot fell
//! back. Duplicate names, guardrails over no readouts, a norm written by
//! name, bundle files that are not regular files, normalisation that
//! overflows float32, graphs that return NaN, bundle action bounds wider
//! than the scene's, and model-error margins that switch a guardrail off.
//!
//! These tests need ONNX Runtime (`python3 -m pip install onnxruntime==1.31.1`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use telic::model::{OnnxModel, WorldModel};
use telic::objective::{Norm, ObjectiveSpec};
use telic::planner::{PlannerConfig, build};
use telic_sim::episode::{Summary, run_batch};
use telic_sim::scenario::{ModelChoice, Scenario, scenario_dir};
use telic_tests::{Scratch, fixture, load_err, print_rrd, rerun_bin, root};

/// A shipped scenario's text with `extra` appended, parsed.
fn scenario_with(name: &str, extra: &str) -> Result<Scenario, String> {
    let path = scenario_dir().join(format!("{name}.toml"));
    let text = std::fs::read_to_string(&path).unwrap() + extra;
    Scenario::from_toml(&text, "test.toml", &scenario_dir()).map_err(|e| e.to_string())
}

fn run_one(scenario: &Scenario) -> Result<telic_sim::episode::EpisodeResult, String> {
    run_batch(scenario, 1, 1, 1, &|_| {})
        .map(|mut r| r.remove(0))
        .map_err(|e| e.to_string())
}

#[test]
fn a_second_goal_term_is_refused_naming_it() {
    // Before: accepted, and `set_target("goal")` reached only the first
    // term, so the arm was pulled to the scene's default target: 0/4.
    let mut s = scenario_with(
        "reach",
        "\n[[objective.terms]]\nname = \"goal\"\nresidual = { kind = \"readout\", readouts = [\"tool.x\", \"tool.y\", \"tool.z\"] }\n",
    )
    .unwrap();
    s.model = ModelChoice::Analytic;
    let e = run_one(&s).unwrap_err();
    assert!(
        e.contains("'goal'") && e.contains("terms") && e.contains("unique"),
        "{e}"
    );
}

#[test]
fn a_second_guardrail_or_body_of_one_name_is_refused() {
    let mut s = scenario_with(
        "navigate",
        "\n[[objective.guardrails]]\nkind = \"speed\"\nname = \"speed\"\nreadouts = [\"speed\"]\nmax = 2.0\n",
    )
    .unwrap();
    s.model = ModelChoice::Analytic;
    let e = run_one(&s).unwrap_err();
    assert!(e.contains("'speed'") && e.contains("guardrails"), "{e}");
    let mut s = scenario_with(
        "navigate",
        "\n[[objective.bodies]]\nname = \"base\"\npoints = [\"base\"]\nradius = 0.3\n",
    )
    .unwrap();
    s.model = ModelChoice::Analytic;
    let e = run_one(&s).unwrap_err();
    assert!(e.contains("'base'") && e.contains("bodies"), "{e}");
}

#[test]
fn a_speed_guardrail_over_no_readouts_is_refused() {
    let mut s = scenario_with(
        "navigate",
        "\n[[objective.guardrails]]\nkind = \"speed\"\nname = \"nothing\"\nreadouts = []\nmax = 1.0\n",
    )
    .unwrap();
    s.model = ModelChoice::Analytic;
    let e = run_one(&s).unwrap_err();
    assert!(
        e.contains("'nothing'") && e.contains("readouts is empty"),
        "{e}"
    );
}

#[test]
fn a_norm_can_be_given_by_name() {
    let s = scenario_with(
        "navigate",
        "\n[[objective.terms]]\nname = \"near\"\nnorm = \"l2\"\nresidual = { kind = \"readout\", readouts = [\"base.x\"] }\n",
    )
    .unwrap();
    let near = s.objective.terms.iter().find(|t| t.name == "near").unwrap();
    assert_eq!(near.norm, Norm::L2 { eps: 0.0 });
    // The same in JSON (Python dicts go through the same serde).
    let spec: ObjectiveSpec = serde_json::from_str(
        r#"{"terms": [{"name": "goal", "norm": "l2",
             "residual": {"kind": "readout", "readouts": ["pos.x"]}}]}"#,
    )
    .unwrap();
    assert_eq!(spec.terms[0].norm, Norm::L2 { eps: 0.0 });
    let e = serde_json::from_str::<ObjectiveSpec>(
        r#"{"terms": [{"name": "goal", "norm": "huber",
             "residual": {"kind": "readout", "readouts": ["pos.x"]}}]}"#,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains(r#"kind = "huber", delta"#), "{e}");
}

#[test]
fn a_graph_that_is_not_a_regular_file_is_named() {
    let b = Scratch::of(&fixture("point_mass_2d"), "not_regular");
    std::fs::remove_file(b.file("encode.onnx")).unwrap();
    std::fs::create_dir(b.file("encode.onnx")).unwrap();
    let e = load_err(&b.0);
    assert!(
        e.contains("encode.onnx is a folder, not a regular file"),
        "{e}"
    );
    std::fs::remove_dir(b.file("encode.onnx")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", b.file("encode.onnx")).unwrap();
    let e = load_err(&b.0);
    assert!(
        e.contains("encode.onnx is not a regular file") && e.contains(&b.0.display().to_string()),
        "{e}"
    );
    // A link to a regular file is a graph like any other.
    std::fs::remove_file(b.file("encode.onnx")).unwrap();
    std::os::unix::fs::symlink(
        fixture("point_mass_2d").join("encode.onnx"),
        b.file("encode.onnx"),
    )
    .unwrap();
    OnnxModel::load(&b.0).unwrap();
    std::fs::remove_file(b.file("encode.onnx")).unwrap();
    let e = load_err(&b.0);
    assert!(e.contains("encode.onnx is missing"), "{e}");
}

#[test]
fn normalisation_that_overflows_float32_is_refused() {
    for (old, new, want) in [
        (
            "mean = [0.5,",
            "mean = [1e308,",
            "normalisation of `pos.x`: mean 1e308",
        ),
        (
            "std = [2.0,",
            "std = [1e-308,",
            "normalisation of `pos.x`: std 1e-308",
        ),
    ] {
        let b = Scratch::of(&fixture("point_mass_2d"), "norm");
        b.edit_manifest(old, new);
        let e = load_err(&b.0);
        assert!(e.contains(want), "{new}: {e}");
    }
}

/// A plan over the 2D point-mass bundle in `dir`; the error if it fails.
fn plan_err(dir: &Path) -> String {
    telic_tests::onnx_runtime();
    let model = OnnxModel::load(dir).unwrap();
    let objective = ObjectiveSpec::default().compile(model.spec()).unwrap();
    let config = PlannerConfig {
        samples: 16,
        horizon: 4,
        ..Default::default()
    };
    let mut planner = build(model, objective, config).unwrap();
    planner.plan(&[0.0, 0.0, 0.0, 0.0]).unwrap_err().to_string()
}

#[test]
fn a_graph_returning_nan_is_an_error_naming_the_bundle_and_the_graph() {
    for graph in ["encode.onnx", "readout.onnx"] {
        let b = Scratch::of(&fixture("point_mass_2d"), "nan_graph");
        b.nan(graph);
        let e = plan_err(&b.0);
        let dir = b.0.display().to_string();
        assert!(
            e.contains(&dir) && e.contains(graph) && e.contains("NaN"),
            "{graph}: {e}"
        );
    }
}

#[test]
fn bundle_action_bounds_wider_than_the_scenes_are_refused() {
    let s = Scenario::load("navigate").unwrap();
    let scene = s.scene.build(&s.base_dir).unwrap();
    // The shipped bundle's bounds are the scene's.
    let shipped = root().join("models").join("navigate");
    let mut ok = s.clone();
    ok.model = ModelChoice::Bundle(shipped.clone());
    ok.build_model(scene.as_ref()).unwrap();
    for (old, new, shown) in [
        ("upper = 1.0", "upper = 100.0", "[-1, 100]"),
        ("lower = -2.0", "lower = -1e300", "[-1e300, 2]"),
    ] {
        let b = Scratch::of(&shipped, "bounds");
        b.edit_manifest(old, new);
        let mut wide = s.clone();
        wide.model = ModelChoice::Bundle(b.0.clone());
        let e = match wide.build_model(scene.as_ref()) {
            Ok(_) => panic!("{new}: loaded"),
            Err(e) => e.to_string(),
        };
        assert!(
            e.contains("wider than the scene's") && e.contains(shown),
            "{new}: {e}"
        );
    }
    // Narrower bounds are the model's own business.
    let b = Scratch::of(&shipped, "narrow");
    b.edit_manifest("upper = 1.0", "upper = 0.5");
    let mut narrow = s.clone();
    narrow.model = ModelChoice::Bundle(b.0.clone());
    narrow.build_model(scene.as_ref()).unwrap();
}

#[test]
fn a_model_predicting_nan_says_why_the_robot_fell_back() {
    let b = Scratch::of(&root().join("models").join("navigate"), "nan_predict");
    b.nan("predict.onnx");
    let mut s = Scenario::load("navigate").unwrap();
    s.model = ModelChoice::Bundle(b.0.clone());
    s.episode.max_time = 0.5;
    s.planner.samples = 32;
    s.planner.iterations = 1;
    let r = run_one(&s).unwrap();
    assert!(
        r.control_steps > 0 && r.fallback_steps == r.control_steps,
        "{r:?}"
    );
    assert_eq!(r.fallback_reasons.len(), 1, "{:?}", r.fallback_reasons);
    let (why, n) = &r.fallback_reasons[0];
    assert!(
        why.contains("not finite") && *n == r.fallback_steps,
        "{why}"
    );
    let summary = Summary::of(std::slice::from_ref(&r));
    assert_eq!(summary.fallback_reasons, r.fallback_reasons);
    // And in the JSON of the results.
    let json = serde_json::to_value(&summary).unwrap();
    assert_eq!(json["fallback_reasons"][0][1], n.to_owned());
}

#[test]
fn margins_that_switch_a_guardrail_off_are_reported_when_the_planner_is_built() {
    let b = Scratch::of(&fixture("point_mass_2d"), "margins");
    // Position errors growing to 2 m, against a lane of half-width 1 m.
    b.edit_manifest(
        r#""pos.x" = [1e-06, 2e-06, 3e-06]"#,
        r#""pos.x" = [0.5, 1.0, 2.0]"#,
    );
    let spec: ObjectiveSpec = toml::from_str(
        r#"[[guardrails]]
           kind = "readout_limit"
           name = "lane"
           readouts = ["pos.x"]
           lower = [-1.0]
           upper = [1.0]"#,
    )
    .unwrap();
    telic_tests::onnx_runtime();
    let planner_with = |steps: Option<usize>| {
        let model = OnnxModel::load(&b.0).unwrap();
        let objective = spec.compile(model.spec()).unwrap();
        let config = PlannerConfig {
            samples: 16,
            horizon: 5,
            model_error_steps: steps,
            ..Default::default()
        };
        build(model, objective, config).unwrap()
    };
    let found = planner_with(None).unsatisfiable_guardrails();
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!((found[0].guardrail.as_str(), found[0].step), ("lane", 1));
    let text = found[0].to_string();
    assert!(
        text.contains("'lane'") && text.contains("model_error_steps"),
        "{text}"
    );
    // Margins that stop growing after the first step leave it satisfiable.
    assert_eq!(planner_with(Some(1)).unsatisfiable_guardrails(), []);
}

#[test]
fn the_recording_says_why_the_robot_fell_back() {
    use telic_sim::episode::run_observed;
    use telic_sim::record::{RecordOptions, Recorder, Sink};
    let b = Scratch::of(&root().join("models").join("navigate"), "nan_record");
    b.nan("predict.onnx");
    let mut s = Scenario::load("navigate").unwrap();
    s.model = ModelChoice::Bundle(b.0.clone());
    s.episode.max_time = 0.3;
    s.planner.samples = 16;
    s.planner.iterations = 1;
    let rrd = b.file("nan.rrd");
    let mut recorder = Recorder::open(&Sink::File(rrd.clone()), RecordOptions::default()).unwrap();
    let results = run_observed(&s, 1, 1, &mut recorder, &|_| {}).unwrap();
    recorder.finish().unwrap();
    assert!(results[0].fallback_steps > 0, "{:?}", results[0]);
    let text = print_rrd(&rerun_bin(), &rrd);
    assert!(
        text.contains("no feasible plan: fallback engaged (predicted readouts not finite"),
        "the recording's log does not say why"
    );
    assert!(
        text.contains(&format!(
            "{} fallback steps: predicted readouts not finite",
            results[0].fallback_steps
        )),
        "the episode's end does not count the reasons"
    );
}
