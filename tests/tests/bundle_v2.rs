//! Bundles of format version 2, whose encoder sees a camera image
//! (`docs/bundle.md`, "Version 2"), end to end: the test bundles
//! (`tests/fixtures/pixels_*`, written by `scripts/make_test_bundles.py`)
//! encode flat observations (pixels, then vector entries) as numpy does,
//! see where a rendered point is, refuse bad pixels and bundles whose graphs
//! disagree with their manifest at load, and plan — to a readout target and
//! to a goal image — through MPPI.
//!
//! Needs ONNX Runtime, as `onnx_bundle.rs` does; never skipped.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use telic::model::{OnnxModel, PointMass, WorldModel};
use telic::objective::ObjectiveSpec;
use telic::planner::{PlannerConfig, build};
use telic::{ModelError, PlanError, Real};
use telic_tests::{Scratch, fixture, load_err, onnx_runtime};

/// Metres across the pixel bundles' square arena, centred on the origin.
const ARENA: Real = 4.0;
/// Side of `pixels_v2`'s RGB image, in pixels.
const SIDE: usize = 16;
const PIXELS: usize = 3 * SIDE * SIDE;

fn load(dir: &Path) -> OnnxModel {
    onnx_runtime();
    OnnxModel::load(dir).unwrap_or_else(|e| panic!("{e}"))
}

/// A `side × side` gray image whose centroid is `(x, y)`: `level` split
/// bilinearly over the four pixels around that point (as
/// `make_test_bundles.py`'s `splat`), row 0 at the top, +y up.
fn splat(x: Real, y: Real, side: usize, level: Real) -> Vec<Real> {
    let cell = ARENA / side as Real;
    let u = (x + ARENA / 2.0) / cell - 0.5;
    let v = (ARENA / 2.0 - y) / cell - 0.5;
    let (j, i) = (u.floor(), v.floor());
    let (fu, fv) = (u - j, v - i);
    let mut img = vec![0.0; side * side];
    for (di, wi) in [(0, 1.0 - fv), (1, fv)] {
        for (dj, wj) in [(0, 1.0 - fu), (1, fu)] {
            let (r, c) = (i as usize + di, j as usize + dj);
            img[r * side + c] += level * wi * wj;
        }
    }
    img
}

/// `pixels_v2`'s flat observation of the point at `pos` moving at `vel`:
/// three equal channels of uint8 values (rounded), then the velocity.
fn observe(pos: [Real; 2], vel: [Real; 2]) -> Vec<Real> {
    let gray = splat(pos[0], pos[1], SIDE, 255.0);
    let mut obs: Vec<Real> = (0..3)
        .flat_map(|_| gray.iter().map(|g| g.round()))
        .collect();
    obs.extend(vel);
    obs
}

fn max_abs_diff(a: &[Real], b: &[Real]) -> Real {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, Real::max)
}

#[test]
fn a_v2_bundle_matches_its_numpy_reference() {
    let mut m = load(&fixture("pixels_v2"));
    let spec = m.spec().clone();
    let image = spec.image.unwrap();
    assert_eq!((image.channels, image.height, image.width), (3, SIDE, SIDE));
    assert_eq!((spec.obs_dim(), spec.vector_dim()), (PIXELS + 2, 2));
    let text = std::fs::read_to_string(fixture("pixels_v2").join("reference.json")).unwrap();
    let r: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&text).unwrap();
    let get = |k: &str| -> Vec<Real> { serde_json::from_value(r[k].clone()).unwrap() };
    let (obs, u) = (get("obs"), get("u"));
    let b = obs.len() / spec.obs_dim();
    assert_eq!(b, 3);
    let (mut z, mut z_next, mut y) = (vec![0.0; 4 * b], vec![0.0; 4 * b], vec![0.0; 5 * b]);
    m.encode(&obs, &mut z).unwrap();
    m.predict(&z, &u, &mut z_next).unwrap();
    m.readout(&z, &mut y).unwrap();
    assert!(max_abs_diff(&z, &get("z")) < 1e-4, "{z:?}");
    assert!(max_abs_diff(&z_next, &get("z_next")) < 1e-4);
    assert!(max_abs_diff(&y, &get("y")) < 1e-4);
    // One row at a time gives the rows of the batch.
    for (row, want) in obs.chunks(spec.obs_dim()).zip(z.chunks(4)) {
        let mut one = [0.0; 4];
        m.encode(row, &mut one).unwrap();
        assert!(max_abs_diff(&one, want) < 1e-6);
    }
}

#[test]
fn the_encoder_sees_where_the_point_is_and_reads_the_vector() {
    let mut m = load(&fixture("pixels_v2"));
    let cases = [
        ([0.3, -1.1], [0.5, -0.25]),
        ([-1.6, 1.4], [0.0, 0.0]),
        ([1.0, 0.5], [-0.75, 1.0]),
    ];
    let obs: Vec<Real> = cases.iter().flat_map(|&(p, v)| observe(p, v)).collect();
    let mut z = vec![0.0; 4 * cases.len()];
    m.encode(&obs, &mut z).unwrap();
    for ((p, v), got) in cases.iter().zip(z.chunks(4)) {
        // Pixels are whole numbers: the centroid is good to a few mm.
        assert!(max_abs_diff(&got[..2], p) < 5e-3, "{p:?}: {got:?}");
        // The velocity goes through the manifest's normalisation, which
        // the graph undoes.
        assert!(max_abs_diff(&got[2..], v) < 1e-6, "{v:?}: {got:?}");
    }
}

#[test]
fn a_float32_gray_image_is_all_a_v2_encoder_may_see() {
    let mut m = load(&fixture("pixels_gray_f32"));
    assert_eq!((m.spec().obs_dim(), m.spec().vector_dim()), (64, 0));
    // float32 images get the values unrounded: 0.4 of a level stays 0.4.
    let mut img = vec![0.0; 64];
    img[2 * 8 + 5] = 0.4;
    img[2 * 8 + 6] = 0.4;
    let mut z = [0.0; 2];
    m.encode(&img, &mut z).unwrap();
    // Rows of 0.5 m: pixels (2, 5) and (2, 6) centre at x = 0.75, 1.25, y = 0.75.
    // Their mass 0.8 is below the graph's floor of 1: the centroid is 0.8 of it.
    assert!(max_abs_diff(&z, &[0.8 * 1.0, 0.8 * 0.75]) < 1e-6, "{z:?}");
    let img = splat(-0.6, 1.2, 8, 200.0);
    m.encode(&img, &mut z).unwrap();
    assert!(max_abs_diff(&z, &[-0.6, 1.2]) < 1e-5, "{z:?}");
}

#[test]
fn pixels_outside_0_to_255_are_refused_by_index() {
    let mut m = load(&fixture("pixels_v2"));
    let mut obs = observe([0.0, 0.0], [0.0, 0.0]);
    obs.extend(observe([0.5, 0.5], [0.0, 0.0]));
    let mut z = [0.0; 8];
    let row = PIXELS + 2;
    obs[row + 17] = 300.0;
    let e = m.encode(&obs, &mut z).unwrap_err();
    assert!(
        matches!(e, ModelError::OutOfRange { index, value, .. } if index == row + 17 && value == 300.0),
        "{e}"
    );
    assert!(e.to_string().contains("pixel at index 787 is 300"), "{e}");
    obs[row + 17] = -1.0;
    assert!(matches!(
        m.encode(&obs, &mut z),
        Err(ModelError::OutOfRange { .. })
    ));
    obs[row + 17] = Real::NAN;
    assert!(matches!(
        m.encode(&obs, &mut z),
        Err(ModelError::NonFinite { index: 787, .. })
    ));
    // The vector entries after the image may take any finite value.
    obs[row + 17] = 0.0;
    obs[row + PIXELS] = 1e3;
    m.encode(&obs, &mut z).unwrap();
}

#[test]
fn v2_manifests_that_disagree_with_their_graphs_fail_at_load() {
    let cases = [
        (
            "dtype = \"uint8\"",
            "dtype = \"float32\"",
            "encode.onnx: input `image` has element type u8, expected f32 (float32) (the \
             manifest's image.dtype)",
        ),
        (
            "height = 16",
            "height = 32",
            "encode.onnx: input `image` has height 16, but the manifest's image.height gives 32",
        ),
        (
            "width = 16",
            "width = 8",
            "encode.onnx: input `image` has width 16, but the manifest's image.width gives 8",
        ),
        (
            "format_version = 2",
            "format_version = 1",
            "manifest.toml: image: an [image] table needs format_version = 2",
        ),
        (
            "channels = 3",
            "channels = 1",
            "channels = 1 but channel_order = \"rgb\" has 3",
        ),
        (
            "observations = [\"vel.x\", \"vel.y\"]",
            "observations = [\"vel.x\"]",
            "normalisation has 2 means and 2 stds for 1 observations",
        ),
    ];
    for (i, (old, new, want)) in cases.into_iter().enumerate() {
        let b = Scratch::of(&fixture("pixels_v2"), &format!("v2_manifest{i}"));
        b.edit_manifest(old, new);
        let e = load_err(&b.0);
        assert!(
            e.contains(want) && e.contains(&*b.0.to_string_lossy()),
            "{new}: {e}"
        );
    }
    // Gray: one channel, where the graph takes three.
    let b = Scratch::of(&fixture("pixels_v2"), "v2_gray");
    b.edit_manifest("channels = 3", "channels = 1");
    b.edit_manifest("\"rgb\"", "\"gray\"");
    let e = load_err(&b.0);
    assert!(
        e.contains("input `image` has channels 3, but the manifest's image.channels gives 1"),
        "{e}"
    );
    // An encoder exported without its image input.
    let b = Scratch::of(&fixture("pixels_v2"), "v2_no_image");
    std::fs::copy(
        fixture("pixels_broken").join("encode.onnx"),
        b.file("encode.onnx"),
    )
    .unwrap();
    let e = load_err(&b.0);
    assert!(
        e.contains("encode.onnx: no input named `image`; the graph's inputs are `obs`"),
        "{e}"
    );
    // An image encoder in a bundle whose manifest has no [image].
    let b = Scratch::of(&fixture("point_mass_2d"), "v1_with_image_encoder");
    std::fs::copy(
        fixture("pixels_v2").join("encode.onnx"),
        b.file("encode.onnx"),
    )
    .unwrap();
    let e = load_err(&b.0);
    assert!(
        e.contains("encode.onnx: unexpected input `image`; the bundle contract's inputs are `obs`"),
        "{e}"
    );
    // A vector where the contract has none (observations = []).
    let b = Scratch::of(&fixture("pixels_gray_f32"), "v2_extra_obs");
    std::fs::copy(
        fixture("pixels_v2").join("encode.onnx"),
        b.file("encode.onnx"),
    )
    .unwrap();
    let e = load_err(&b.0);
    assert!(e.contains("encode.onnx: unexpected input `obs`"), "{e}");
}

fn config() -> PlannerConfig {
    PlannerConfig {
        horizon: 20,
        samples: 128,
        iterations: 3,
        seed: 5,
        colored_noise_beta: 2.0,
        temperature: 0.1,
        ..Default::default()
    }
}

/// Runs `ticks` control steps of the point mass from rest at the origin,
/// planning from its camera image and velocity; returns its final state.
fn closed_loop(planner: &mut dyn telic::Planner, ticks: usize) -> [Real; 4] {
    let mut plant = PointMass::new(2, 0.1, 1.0).unwrap();
    let (mut x, mut next) = ([0.0; 4], [0.0; 4]);
    for tick in 0..ticks {
        let plan = planner.plan(&observe([x[0], x[1]], [x[2], x[3]])).unwrap();
        assert!(plan.status.is_feasible(), "tick {tick}: {:?}", plan.status);
        plant.predict(&x, &plan.action, &mut next).unwrap();
        x = next;
    }
    x
}

#[test]
fn mppi_plans_from_images_to_a_readout_target() {
    let model = load(&fixture("pixels_v2"));
    let spec: ObjectiveSpec = toml::from_str(
        r#"
        [[terms]]
        name = "goal"
        residual = { kind = "readout", readouts = ["pos.x", "pos.y"], target = [1.0, 0.5] }

        [[terms]]
        name = "effort"
        weight = 0.01
        residual = { kind = "action" }
        "#,
    )
    .unwrap();
    let objective = spec.compile(model.spec()).unwrap();
    let mut planner = build(model, objective, config()).unwrap();
    let x = closed_loop(&mut *planner, 60);
    let dist = (x[0] - 1.0).hypot(x[1] - 0.5);
    assert!(dist < 0.1, "ended {dist:.3} m from the target at {x:?}");
    // A pixel out of range is the model's error, returned by plan.
    let mut obs = observe([0.0, 0.0], [0.0, 0.0]);
    obs[5] = 256.0;
    let e = planner.plan(&obs).unwrap_err();
    assert!(
        matches!(e, PlanError::Model(ModelError::OutOfRange { index: 5, .. })),
        "{e}"
    );
}

#[test]
fn mppi_plans_to_a_goal_image() {
    let model = load(&fixture("pixels_v2"));
    let spec: ObjectiveSpec = toml::from_str(
        r#"
        [[terms]]
        name = "goal"
        residual = { kind = "latent" }
        norm = { kind = "l2", eps = 0.01 }

        [[terms]]
        name = "smooth"
        weight = 0.01
        residual = { kind = "action_rate" }
        "#,
    )
    .unwrap();
    let objective = spec.compile(model.spec()).unwrap();
    let mut planner = build(model, objective, config()).unwrap();
    let goal = [-1.2, 0.8];
    planner
        .set_goal_observation("goal", &observe(goal, [0.0, 0.0]))
        .unwrap();
    let x = closed_loop(&mut *planner, 60);
    let dist = (x[0] - goal[0]).hypot(x[1] - goal[1]);
    assert!(
        dist < 0.15,
        "ended {dist:.3} m from the goal image's point at {x:?}"
    );
    // A goal image with a bad pixel is refused, naming the term.
    let mut bad = observe(goal, [0.0, 0.0]);
    bad[PIXELS - 1] = 1e3;
    let e = planner.set_goal_observation("goal", &bad).unwrap_err();
    assert!(
        e.to_string()
            .contains("goal observation for cost term 'goal'")
            && e.to_string().contains("outside [0, 255]"),
        "{e}"
    );
}
