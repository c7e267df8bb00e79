//! World-model bundles run by ONNX Runtime, end to end: the shipped test
//! bundles (`tests/fixtures/`, written by `scripts/make_test_bundles.py`)
//! agree with the analytic model and with numpy, every broken bundle fails at
//! load with an error naming what is wrong, and MPPI plans over a bundle.
//!
//! These tests need ONNX Runtime (`python3 -m pip install onnxruntime==1.31.1`,
//! which `scripts/test` does). Without it they fail with that instruction;
//! they are never skipped.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use telic::model::bundle::Manifest;
use telic::model::{OnnxModel, OnnxOptions, PointMass, WorldModel};
use telic::objective::ObjectiveSpec;
use telic::planner::{PlannerConfig, build};
use telic::rng::Rng;
use telic::{ModelError, PlanError, Real};
use telic_sim::onnx_runtime::find_onnx_runtime;
use telic_tests::{Scratch, fixture, load_err, onnx_runtime};

/// Loads a bundle that must load; a missing ONNX Runtime fails with its fix.
fn load(dir: &Path) -> OnnxModel {
    onnx_runtime();
    OnnxModel::load(dir).unwrap_or_else(|e| panic!("{e}"))
}

fn max_abs_diff(a: &[Real], b: &[Real]) -> Real {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, Real::max)
}

fn uniform(rng: &mut Rng, n: usize, half: Real) -> Vec<Real> {
    (0..n).map(|_| rng.range(-half, half)).collect()
}

#[test]
fn onnx_runtime_is_found() {
    let path = find_onnx_runtime().unwrap_or_else(|e| panic!("{e}"));
    assert!(path.is_file(), "{}", path.display());
}

#[test]
fn point_mass_bundle_matches_the_analytic_model() {
    let mut onnx = load(&fixture("point_mass_2d"));
    let mut exact = PointMass::new(2, 0.1, 1.0).unwrap();
    let (s, e) = (onnx.spec().clone(), exact.spec().clone());
    assert_eq!(s.name, "point_mass_2d");
    assert_eq!(
        (
            &s.observations,
            &s.actions,
            s.latent_dim,
            &s.readouts,
            &s.action_lower,
            &s.action_upper,
            s.dt
        ),
        (
            &e.observations,
            &e.actions,
            e.latent_dim,
            &e.readouts,
            &e.action_lower,
            &e.action_upper,
            e.dt
        )
    );
    let mut rng = Rng::new(3);
    // Repeated sizes reuse their tensors; more sizes than are kept evict old ones.
    for b in [1, 7, 256, 7, 1, 3, 5, 9, 256, 1] {
        let obs = uniform(&mut rng, 4 * b, 3.0);
        let u = uniform(&mut rng, 2 * b, 1.0);
        let (mut z1, mut z2) = (vec![0.0; 4 * b], vec![0.0; 4 * b]);
        onnx.encode(&obs, &mut z1).unwrap();
        exact.encode(&obs, &mut z2).unwrap();
        assert!(max_abs_diff(&z1, &z2) < 1e-5, "encode, batch {b}");
        let (mut n1, mut n2) = (vec![0.0; 4 * b], vec![0.0; 4 * b]);
        onnx.predict(&z2, &u, &mut n1).unwrap();
        exact.predict(&z2, &u, &mut n2).unwrap();
        assert!(max_abs_diff(&n1, &n2) < 1e-5, "predict, batch {b}");
        let (mut y1, mut y2) = (vec![0.0; 5 * b], vec![0.0; 5 * b]);
        onnx.readout(&z2, &mut y1).unwrap();
        exact.readout(&z2, &mut y2).unwrap();
        assert!(max_abs_diff(&y1, &y2) < 1e-5, "readout, batch {b}");
    }
    // An empty batch is a no-op, as for analytic models.
    onnx.predict(&[], &[], &mut []).unwrap();
}

#[test]
fn jacobians_match_the_analytic_model() {
    let mut onnx = load(&fixture("point_mass_2d"));
    let mut exact = PointMass::new(2, 0.1, 1.0).unwrap();
    let (z, u) = ([0.3, -1.2, 0.6, -0.8], [0.5, -1.0]);
    let (mut a1, mut b1, mut c1) = (vec![0.0; 16], vec![0.0; 8], vec![0.0; 20]);
    let (mut a2, mut b2, mut c2) = (a1.clone(), b1.clone(), c1.clone());
    onnx.predict_jacobians(&z, &u, &mut a1, &mut b1).unwrap();
    exact.predict_jacobians(&z, &u, &mut a2, &mut b2).unwrap();
    onnx.readout_jacobian(&z, &mut c1).unwrap();
    exact.readout_jacobian(&z, &mut c2).unwrap();
    assert!(max_abs_diff(&a1, &a2) < 1e-4, "{a1:?}");
    assert!(max_abs_diff(&b1, &b2) < 1e-4, "{b1:?}");
    // The speed row is nonlinear: float32 differences are good to about 1e-4.
    assert!(max_abs_diff(&c1, &c2) < 1e-3, "{c1:?} vs {c2:?}");
}

#[test]
fn tanh_mlp_bundle_matches_numpy_and_binds_inputs_by_name() {
    let mut m = load(&fixture("tanh_mlp"));
    let text = std::fs::read_to_string(fixture("tanh_mlp_reference.json")).unwrap();
    let r: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&text).unwrap();
    let get = |k: &str| -> Vec<Real> { serde_json::from_value(r[k].clone()).unwrap() };
    let (obs, u) = (get("obs"), get("u"));
    let b = obs.len() / 3;
    let mut z = vec![0.0; 6 * b];
    let mut z_next = vec![0.0; 6 * b];
    let mut y = vec![0.0; 2 * b];
    m.encode(&obs, &mut z).unwrap();
    assert!(max_abs_diff(&z, &get("z")) < 1e-5, "encode");
    // predict.onnx declares (u, z): a positional binding would swap them.
    m.predict(&get("z"), &u, &mut z_next).unwrap();
    assert!(max_abs_diff(&z_next, &get("z_next")) < 1e-5, "predict");
    m.readout(&get("z"), &mut y).unwrap();
    assert!(max_abs_diff(&y, &get("y")) < 1e-5, "readout");
    // One batched call equals row-by-row calls.
    for i in 0..b {
        let mut row = [0.0; 6];
        m.predict(&get("z")[6 * i..6 * i + 6], &u[2 * i..2 * i + 2], &mut row)
            .unwrap();
        assert_eq!(row[..], z_next[6 * i..6 * i + 6], "row {i}");
    }
    // Wrong sizes are shape errors, as for analytic models.
    let err = m.predict(&z, &u[..3], &mut z_next).unwrap_err();
    assert!(matches!(err, ModelError::Shape { what: "u", .. }), "{err}");
}

#[test]
fn manifest_provenance_and_margins_are_exposed() {
    let m = load(&fixture("point_mass_2d"));
    assert_eq!(
        m.manifest(),
        &Manifest::load(fixture("point_mass_2d")).unwrap()
    );
    let man = m.manifest();
    assert_eq!(man.provenance.validation.onnx_vs_torch_max_abs_diff, 0.0);
    assert!(man.provenance.scene.contains("PointMass"));
    let q = man.readout_error_quantiles.as_ref().unwrap();
    assert_eq!((q.quantile, q.horizon()), (0.95, 3));
    assert_eq!(q.margin("pos.y", 2), Some(3e-6));
    let tanh = load(&fixture("tanh_mlp"));
    assert!(tanh.manifest().normalisation.is_none());
    assert_eq!(
        tanh.manifest().provenance.training["hidden"].as_integer(),
        Some(8)
    );
}

#[test]
fn sessions_can_use_more_threads() {
    onnx_runtime();
    let mut m = OnnxModel::load_with(fixture("tanh_mlp"), &OnnxOptions { intra_threads: 2 })
        .unwrap_or_else(|e| panic!("{e}"));
    let mut z = [0.0; 6];
    m.encode(&[0.1, 0.2, 0.3], &mut z).unwrap();
    assert!(z.iter().all(|v| v.is_finite()));
}

#[test]
fn missing_graph_fails_at_load() {
    let b = Scratch::of(&fixture("point_mass_2d"), "missing");
    std::fs::remove_file(b.file("predict.onnx")).unwrap();
    let e = load_err(&b.0);
    assert!(e.contains("predict.onnx is missing"), "{e}");
}

#[test]
fn truncated_graph_fails_at_load() {
    let b = Scratch::of(&fixture("point_mass_2d"), "truncated");
    let bytes = std::fs::read(b.file("readout.onnx")).unwrap();
    std::fs::write(b.file("readout.onnx"), &bytes[..100]).unwrap();
    let e = load_err(&b.0);
    assert!(
        e.contains("readout.onnx could not be loaded by ONNX Runtime"),
        "{e}"
    );
}

#[test]
fn garbage_graph_fails_at_load() {
    let b = Scratch::of(&fixture("point_mass_2d"), "garbage");
    std::fs::write(b.file("encode.onnx"), b"this is not an ONNX model\n").unwrap();
    let e = load_err(&b.0);
    assert!(
        e.contains("encode.onnx could not be loaded by ONNX Runtime"),
        "{e}"
    );
}

#[test]
fn latent_dim_disagreeing_with_the_graph_fails_at_load() {
    let b = Scratch::of(&fixture("point_mass_2d"), "latent");
    b.edit_manifest("latent_dim = 4", "latent_dim = 5");
    let e = load_err(&b.0);
    assert!(
        e.contains("encode.onnx: output `z` has width 4, but the manifest's latent_dim gives 5"),
        "{e}"
    );
}

#[test]
fn observation_count_disagreeing_with_the_graph_fails_at_load() {
    let b = Scratch::of(&fixture("tanh_mlp"), "observations");
    b.edit_manifest(
        r#"observations = ["q", "qd", "load"]"#,
        r#"observations = ["q", "qd"]"#,
    );
    let e = load_err(&b.0);
    assert!(
        e.contains("encode.onnx: input `obs` has width 3, but the manifest's observations gives 2"),
        "{e}"
    );
}

#[test]
fn wrong_input_name_fails_at_load() {
    // encode.onnx takes `obs`, where a readout graph must take `z`.
    let b = Scratch::of(&fixture("point_mass_2d"), "input_name");
    std::fs::copy(b.file("encode.onnx"), b.file("readout.onnx")).unwrap();
    let e = load_err(&b.0);
    assert!(
        e.contains("readout.onnx: unexpected input `obs`; the bundle contract's inputs are `z`"),
        "{e}"
    );
}

#[test]
fn graph_with_a_missing_input_fails_at_load() {
    // readout.onnx takes only `z`, where a predictor also needs `u`.
    let b = Scratch::of(&fixture("point_mass_2d"), "missing_input");
    std::fs::copy(b.file("readout.onnx"), b.file("predict.onnx")).unwrap();
    let e = load_err(&b.0);
    assert!(e.contains("predict.onnx: no input named `u`"), "{e}");
}

#[test]
fn bad_manifests_fail_at_load() {
    let cases = [
        ("dt = 0.1", "dt = 0.1\nlatent = 4", "unknown field `latent`"),
        (
            "format_version = 1",
            "format_version = 9",
            "format_version 9",
        ),
        ("lower = -1.0", "lower = 3.0", "bounds"),
        (
            "std = [2.0, 2.0, 1.0, 1.0]",
            "std = [2.0, 2.0]",
            "normalisation",
        ),
        (
            "readouts = [",
            "readouts = [\"pos.x\", ",
            "`pos.x` is empty or repeated",
        ),
    ];
    for (i, (old, new, want)) in cases.into_iter().enumerate() {
        let b = Scratch::of(&fixture("point_mass_2d"), &format!("manifest{i}"));
        b.edit_manifest(old, new);
        let e = load_err(&b.0);
        assert!(
            e.contains("manifest.toml") && e.contains(want),
            "{new}: {e}"
        );
    }
    // A well-formed manifest that disagrees with a graph fails on the graph.
    let b = Scratch::of(&fixture("point_mass_2d"), "readouts");
    b.edit_manifest("readouts = [", "readouts = [\"pos.z\", ");
    let e = load_err(&b.0);
    assert!(
        e.contains("readout.onnx: output `y` has width 5, but the manifest's readouts gives 6"),
        "{e}"
    );
    let b = Scratch::of(&fixture("point_mass_2d"), "no_manifest");
    std::fs::remove_file(b.file("manifest.toml")).unwrap();
    let e = load_err(&b.0);
    assert!(e.contains("cannot read manifest.toml"), "{e}");
    let e = load_err(Path::new("/nonexistent/telic/bundle"));
    assert!(e.contains("is not a folder"), "{e}");
}

#[test]
fn guardrail_on_a_readout_the_bundle_lacks_fails_at_compile() {
    let m = load(&fixture("point_mass_2d"));
    let spec: ObjectiveSpec = toml::from_str(
        r#"
        [[terms]]
        name = "goal"
        residual = { kind = "readout", readouts = ["pos.x", "pos.y"], target = [1.0, 0.5] }

        [[guardrails]]
        kind = "speed"
        name = "slow"
        readouts = ["omega"]
        max = 0.5
        "#,
    )
    .unwrap();
    let e = spec.compile(m.spec()).unwrap_err();
    assert!(
        matches!(&e, PlanError::Objective(m) if m.to_string().contains("omega")),
        "{e}"
    );
}

const REACH: &str = r#"
    [[terms]]
    name = "goal"
    residual = { kind = "readout", readouts = ["pos.x", "pos.y"], target = [1.0, 0.5] }

    [[terms]]
    name = "stop"
    phase = "terminal"
    weight = 2.0
    residual = { kind = "readout", readouts = ["vel.x", "vel.y"] }

    [[terms]]
    name = "effort"
    weight = 0.01
    residual = { kind = "action" }

    [[guardrails]]
    kind = "speed"
    name = "slow"
    readouts = ["speed"]
    max = 0.8
"#;

fn config() -> PlannerConfig {
    PlannerConfig {
        horizon: 20,
        samples: 128,
        iterations: 3,
        seed: 5,
        ..Default::default()
    }
}

#[test]
fn mppi_over_the_onnx_point_mass_reaches_a_target() {
    let model = load(&fixture("point_mass_2d"));
    let spec: ObjectiveSpec = toml::from_str(REACH).unwrap();
    let objective = spec.compile(model.spec()).unwrap();
    let mut exact_planner = build(
        PointMass::new(2, 0.1, 1.0).unwrap(),
        objective.clone(),
        config(),
    )
    .unwrap();
    let mut planner = build(model, objective, config()).unwrap();
    let mut plant = PointMass::new(2, 0.1, 1.0).unwrap();
    let mut x = vec![0.0; 4];
    let mut next = x.clone();
    let mut y = vec![0.0; 5];
    // Same seed, same samples: the first plan is the analytic model's, up to float32.
    let first = planner.plan(&x).unwrap().action.clone();
    let exact = exact_planner.plan(&x).unwrap().action.clone();
    assert!(
        max_abs_diff(&first, &exact) < 1e-3,
        "{first:?} vs {exact:?}"
    );
    let mut fastest: Real = 0.0;
    for tick in 0..60 {
        let plan = planner.plan(&x).unwrap();
        assert!(plan.status.is_feasible(), "tick {tick}: {:?}", plan.status);
        plant.predict(&x, &plan.action, &mut next).unwrap();
        x.copy_from_slice(&next);
        plant.readout(&x, &mut y).unwrap();
        fastest = fastest.max(y[4]);
    }
    let dist = (x[0] - 1.0).hypot(x[1] - 0.5);
    assert!(dist < 0.1, "ended {dist:.3} m from the target at {x:?}");
    assert!(fastest <= 0.8 + 1e-6, "speed guardrail broken: {fastest}");
}

#[test]
fn gradient_planner_runs_over_the_onnx_point_mass() {
    let model = load(&fixture("point_mass_2d"));
    let spec: ObjectiveSpec = toml::from_str(REACH).unwrap();
    let objective = spec.compile(model.spec()).unwrap();
    let cfg = PlannerConfig {
        kind: telic::PlannerKind::Gradient,
        samples: 64,
        ..config()
    };
    let mut planner = build(model, objective, cfg).unwrap();
    let mut plant = PointMass::new(2, 0.1, 1.0).unwrap();
    let (mut x, mut next) = (vec![0.0; 4], vec![0.0; 4]);
    for tick in 0..40 {
        let plan = planner.plan(&x).unwrap();
        assert!(plan.status.is_feasible(), "tick {tick}: {:?}", plan.status);
        plant.predict(&x, &plan.action, &mut next).unwrap();
        x.copy_from_slice(&next);
    }
    let dist = (x[0] - 1.0).hypot(x[1] - 0.5);
    assert!(dist < 0.15, "ended {dist:.3} m from the target at {x:?}");
}
