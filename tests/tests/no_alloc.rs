//! After warm-up, the hot paths do not touch the heap: a planning call of the
//! sampling planners, and the controller's control side (`observe`, `action`) while its
//! planner thread re-plans. Counted with a global allocator that counts every
//! allocation of the process (all threads).

#![allow(clippy::unwrap_used)]

mod harness;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use telic::controller::{ActionSource, Controller};
use telic::model::{PointMass, WorldModel};
use telic::objective::{ObjectiveSpec, Residual, TermSpec};
use telic::{PlannerConfig, PlannerKind, Real};

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

fn count() {
    ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
}

#[global_allocator]
static GLOBAL: harness::Counting = harness::Counting(count);

/// Allocations made while `f` runs (by any thread).
fn allocations(f: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    f();
    ALLOCATIONS.load(Ordering::SeqCst) - before
}

/// The count is process-wide, and the test harness allocates whenever a
/// test starts or ends: the phases run in one test, one after another, once
/// the harness has filed it.
#[test]
fn hot_paths_do_not_allocate_after_warm_up() {
    harness::wait_until_the_harness_waits();
    sampling_planners();
    control_side();
    learned_model();
    image_bundle();
}

/// MPPI over a learned bundle: what Rust allocates around the ONNX Runtime
/// calls (the runtime's own arena is its business, not counted here).
fn learned_model() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/reach");
    telic_tests::onnx_runtime();
    let model = telic::model::OnnxModel::load(&dir).unwrap();
    let spec = model.spec().clone();
    let objective = ObjectiveSpec {
        terms: vec![TermSpec {
            name: "goal".into(),
            residual: Residual::Readout {
                readouts: vec!["tool.x".into(), "tool.y".into(), "tool.z".into()],
                target: vec![0.3, 0.1, 0.3],
            },
            norm: Default::default(),
            weight: 1.0,
            phase: Default::default(),
        }],
        ..Default::default()
    }
    .compile(&spec)
    .unwrap();
    let config = PlannerConfig {
        samples: 32,
        horizon: 10,
        ..Default::default()
    };
    let mut planner = telic::build(model, objective, config).unwrap();
    let obs = vec![0.0; spec.obs_dim()];
    for _ in 0..3 {
        planner.plan(&obs).unwrap();
    }
    let n = allocations(|| {
        for _ in 0..5 {
            planner.plan(&obs).unwrap();
        }
    });
    assert_eq!(n, 0, "learned model: {n} allocations in 5 planning calls");
}

/// MPPI over a bundle whose encoder sees a camera image
/// (`tests/fixtures/pixels_v2`: a uint8 RGB 16×16 image, then 2 vector
/// entries), planning from flat observations — pixel values 0..255 in
/// C×H×W order, then the vector — to a readout target and to a goal image.
/// Setting the goal image is not counted: it allocates the goal latent and
/// copies the objective when it is shared (`Arc::make_mut`), once per goal,
/// not per tick.
fn image_bundle() {
    const SIDE: usize = 16;
    telic_tests::onnx_runtime();
    let model = telic::model::OnnxModel::load(telic_tests::fixture("pixels_v2")).unwrap();
    let spec = model.spec().clone();
    assert_eq!(spec.obs_dim(), 3 * SIDE * SIDE + 2);
    let objective: ObjectiveSpec = toml::from_str(
        r#"
        [[terms]]
        name = "target"
        residual = { kind = "readout", readouts = ["pos.x", "pos.y"], target = [1.0, 0.5] }

        [[terms]]
        name = "goal"
        residual = { kind = "latent" }
        norm = { kind = "l2", eps = 0.01 }

        [[terms]]
        name = "effort"
        weight = 0.01
        residual = { kind = "action" }
        "#,
    )
    .unwrap();
    let objective = objective.compile(&spec).unwrap();
    let config = PlannerConfig {
        samples: 32,
        horizon: 10,
        ..Default::default()
    };
    let mut planner = telic::build(model, objective, config).unwrap();
    // A bright 2×2 square at pixel (row, col) in every channel, then the velocity.
    let observe = |obs: &mut [Real], row: usize, col: usize| {
        obs.fill(0.0);
        for c in 0..3 {
            for r in row..row + 2 {
                let at = (c * SIDE + r) * SIDE + col;
                obs[at..at + 2].fill(255.0);
            }
        }
        obs[3 * SIDE * SIDE..].copy_from_slice(&[0.1, -0.2]);
    };
    let mut obs = vec![0.0; spec.obs_dim()];
    observe(&mut obs, 3, 12);
    planner.set_goal_observation("goal", &obs).unwrap();
    for i in 0..3 {
        observe(&mut obs, 8, i);
        planner.plan(&obs).unwrap();
    }
    let n = allocations(|| {
        for i in 0..5 {
            observe(&mut obs, 8 + i, 3 + i);
            planner.plan(&obs).unwrap();
        }
    });
    assert_eq!(n, 0, "image bundle: {n} allocations in 5 planning calls");
}

/// MPPI and iCEM, on one thread and with rollout workers. (The gradient planner refines with argmin's L-BFGS, whose
/// solver state is built per call: it allocates, and is not for the hard
/// real-time path.)
fn sampling_planners() {
    use telic::planner::Interpolation;
    // Knots with every interpolation, and rollouts on 3 threads.
    let variants = [
        (None, Interpolation::Zero, 1),
        (Some(4), Interpolation::Zero, 1),
        (Some(4), Interpolation::Linear, 1),
        (Some(4), Interpolation::Cubic, 1),
        (None, Interpolation::Zero, 3),
    ];
    for (kind, (knots, interpolation, threads)) in [PlannerKind::Mppi, PlannerKind::Cem]
        .into_iter()
        .flat_map(|k| variants.into_iter().map(move |x| (k, x)))
    {
        let model = PointMass::new(2, 0.1, 2.0).unwrap();
        let objective = harness::objective().compile(model.spec()).unwrap();
        let config = PlannerConfig {
            kind,
            samples: 128,
            horizon: 15,
            knots,
            interpolation,
            threads,
            ..Default::default()
        };
        let mut planner = telic::build(model, objective, config).unwrap();
        let mut obs = [0.0, 0.0, 0.0, 0.0];
        for _ in 0..3 {
            planner.plan(&obs).unwrap();
        }
        let n = allocations(|| {
            for i in 0..20 {
                obs[0] = 0.01 * i as f64;
                planner.plan(&obs).unwrap();
            }
        });
        assert_eq!(
            n, 0,
            "{kind:?} with knots {knots:?} {interpolation:?} on {threads} threads: {n} allocations in 20 planning calls"
        );
    }
}

/// `observe` and `action` while the planner thread re-plans (its planning
/// calls are counted too).
fn control_side() {
    let model = PointMass::new(2, 0.1, 2.0).unwrap();
    let (planner, spec, control) = harness::controller_parts(model);
    let mut controller = Controller::spawn(planner, &spec, control).unwrap();
    let obs = [0.0; 4];
    // Warm-up: plans published and buffers returned both ways.
    let deadline = Instant::now() + Duration::from_secs(30);
    while controller.metrics().plans_published < 5 && Instant::now() < deadline {
        controller.observe(&obs, Instant::now()).unwrap();
        let _ = controller.action(Instant::now());
        std::thread::sleep(Duration::from_millis(1));
    }
    let mut from_plans = 0;
    let n = allocations(|| {
        for _ in 0..20_000 {
            controller.observe(&obs, Instant::now()).unwrap();
            if let ActionSource::Plan { .. } = controller.action(Instant::now()).source {
                from_plans += 1;
            }
        }
    });
    assert!(from_plans > 0);
    assert!(controller.metrics().plans_published >= 5);
    assert_eq!(n, 0, "{n} allocations in 20,000 control reads");
}
