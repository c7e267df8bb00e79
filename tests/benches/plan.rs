//! Plan latency of MPPI (one sampling iteration) against samples × horizon,
//! with criterion's statistics: the analytic models (a point mass, the
//! navigate scene's unicycle, gymnasium's pendulum, the reach scene's arm)
//! and the learned reach bundle. For the learned model, criterion's
//! throughput is the bundle's dense-layer FLOPs (1 elem = 1 FLOP), per whole
//! planning call and per model call at the batch MPPI uses. `telic bench`
//! measures the same quantities once, beside the machine's own
//! matrix-multiply rate on the same layer shapes.
//!
//! `cargo bench --profile dev -p telic-tests --bench plan`. Without ONNX
//! Runtime (`python3 -m pip install onnxruntime==1.31.1`, or
//! `ORT_DYLIB_PATH`) the learned benches are skipped, saying so.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a bench that cannot set up stops loudly

use criterion::{
    BenchmarkGroup, BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group,
    criterion_main, measurement::WallTime,
};
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use telic::model::{Pendulum, PendulumParams, PointMass};
use telic::{
    ModelError, ModelSpec, ObjectiveSpec, Planner, PlannerConfig, PlannerKind, Real, WorldModel,
};
use telic_sim::Scene;
use telic_sim::scenario::ModelChoice;

mod common;
use common::{episode, onnx_runtime};

/// Samples × horizon of the analytic models.
const GRID: [(usize, usize); 2] = [(256, 16), (1024, 32)];
/// Samples × horizon of the learned model (`telic bench`'s FLOP-rate size).
const LEARNED: (usize, usize) = (1024, 32);

/// MPPI with one sampling iteration; the rest from `base`.
fn mppi(base: &PlannerConfig, samples: usize, horizon: usize) -> PlannerConfig {
    PlannerConfig {
        kind: PlannerKind::Mppi,
        samples,
        horizon,
        iterations: 1,
        model_error_steps: None,
        ..base.clone()
    }
}

/// Times `planner.plan(obs)` as `name/{samples}x{horizon}`.
fn bench_plan(
    group: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    planner: &mut dyn Planner,
    obs: &[Real],
) {
    let c = planner.config();
    let id = BenchmarkId::new(name, format!("{}x{}", c.samples, c.horizon));
    group.bench_function(id, |b| {
        b.iter(|| black_box(planner.plan(obs).unwrap().cost))
    });
}

fn plan_group<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    let mut group = c.benchmark_group(name);
    // Milliseconds per call: equal iteration counts per sample.
    group.sampling_mode(SamplingMode::Flat);
    group
}

/// The point mass of `examples/plan_point_mass.rs`, to a goal around a
/// keep-out sphere.
fn point_mass(samples: usize, horizon: usize) -> Box<dyn Planner> {
    let model = PointMass::new(2, 0.1, 2.0).unwrap();
    let objective: ObjectiveSpec =
        toml::from_str(include_str!("../../examples/plan_point_mass.toml")).unwrap();
    let objective = objective.compile(model.spec()).unwrap();
    let config = mppi(&PlannerConfig::default(), samples, horizon);
    telic::build(model, objective, config).unwrap()
}

/// Gymnasium's pendulum with its own cost, as `examples/pendulum` plans it.
fn pendulum(samples: usize, horizon: usize) -> Box<dyn Planner> {
    let model = Pendulum::new(&PendulumParams::default()).unwrap();
    let objective: ObjectiveSpec = toml::from_str(
        r#"
        [[terms]]
        name = "angle"
        residual = { kind = "readout", readouts = ["angle"], target = [0.0] }
        [[terms]]
        name = "spin"
        residual = { kind = "readout", readouts = ["thetadot"], target = [0.0] }
        weight = 0.1
        [[terms]]
        name = "effort"
        residual = { kind = "action" }
        weight = 0.001
        "#,
    )
    .unwrap();
    let objective = objective.compile(model.spec()).unwrap();
    let base = PlannerConfig {
        noise: 0.5,
        temperature: 0.1,
        ..PlannerConfig::default()
    };
    telic::build(model, objective, mppi(&base, samples, horizon)).unwrap()
}

fn analytic(c: &mut Criterion) {
    let mut group = plan_group(c, "plan_mppi");
    for (samples, horizon) in GRID {
        bench_plan(
            &mut group,
            "point_mass",
            point_mass(samples, horizon).as_mut(),
            &[0.0; 4],
        );
    }
    for (scene, name) in [("navigate", "navigate_unicycle"), ("reach", "reach_arm")] {
        let (env, obs) = episode(scene, ModelChoice::Analytic);
        for (samples, horizon) in GRID {
            let model = env.scenario().build_model(env.world()).unwrap();
            let config = mppi(&env.scenario().planner, samples, horizon);
            let mut planner = env.planner(model, Some(config)).unwrap();
            bench_plan(&mut group, name, planner.as_mut(), &obs);
        }
    }
    // Hanging at rest: the swing-up's first plan.
    bench_plan(
        &mut group,
        "pendulum",
        pendulum(1000, 30).as_mut(),
        &[-1.0, 0.0, 0.0],
    );
    group.finish();
}

/// Rows a model's calls processed: encode, predict, readout.
#[derive(Debug, Default)]
struct Rows([AtomicU64; 3]);

/// A world model that counts the rows of its calls.
struct Counted {
    inner: Box<dyn WorldModel>,
    rows: Arc<Rows>,
}

impl Counted {
    fn add(&self, which: usize, values: usize, width: usize) {
        self.rows.0[which].fetch_add((values / width.max(1)) as u64, Ordering::Relaxed);
    }
}

impl WorldModel for Counted {
    fn spec(&self) -> &ModelSpec {
        self.inner.spec()
    }
    fn encode(&mut self, obs: &[Real], z: &mut [Real]) -> Result<(), ModelError> {
        self.add(0, obs.len(), self.spec().obs_dim());
        self.inner.encode(obs, z)
    }
    fn predict(&mut self, z: &[Real], u: &[Real], z_next: &mut [Real]) -> Result<(), ModelError> {
        self.add(1, z.len(), self.spec().latent_dim);
        self.inner.predict(z, u, z_next)
    }
    fn readout(&mut self, z: &[Real], y: &mut [Real]) -> Result<(), ModelError> {
        self.add(2, z.len(), self.spec().latent_dim);
        self.inner.readout(z, y)
    }
    fn readout_errors(&self) -> Option<Vec<Vec<Real>>> {
        self.inner.readout_errors()
    }
}

/// Dense-layer FLOPs per row of the bundle's encode, predict and readout
/// graphs (two per multiply-add of each weight matrix).
fn flops_per_row(env: &Scene, spec: &ModelSpec) -> [u64; 3] {
    let dir = env
        .scenario()
        .bundle_dir()
        .expect("the scene ships a bundle");
    let graphs = telic_sim::bench::bundle_matrices(&dir).unwrap();
    let widths = [
        spec.obs_dim(),
        spec.latent_dim + spec.action_dim(),
        spec.latent_dim,
    ];
    let mut out = [0; 3];
    for ((o, matrices), width) in out.iter_mut().zip(&graphs).zip(widths) {
        *o = telic_sim::bench::oriented(matrices, width)
            .iter()
            .map(|(k, n)| 2 * (k * n) as u64)
            .sum();
    }
    out
}

fn learned(c: &mut Criterion) {
    if !onnx_runtime() {
        return;
    }
    let (env, obs) = episode("reach", ModelChoice::Default);
    let mut model = env.scenario().build_model(env.world()).unwrap();
    let spec = model.spec().clone();
    let per_row = flops_per_row(&env, &spec);

    // The whole planning call; FLOPs from the rows one call processes.
    let (samples, horizon) = LEARNED;
    let rows = Arc::new(Rows::default());
    let counted = Counted {
        inner: env.scenario().build_model(env.world()).unwrap(),
        rows: Arc::clone(&rows),
    };
    let mut planner = env
        .planner(
            Box::new(counted),
            Some(mppi(&env.scenario().planner, samples, horizon)),
        )
        .unwrap();
    planner.plan(&obs).unwrap();
    rows.0.iter().for_each(|r| r.store(0, Ordering::Relaxed));
    planner.plan(&obs).unwrap();
    let flops: u64 = rows
        .0
        .iter()
        .zip(per_row)
        .map(|(r, f)| r.load(Ordering::Relaxed) * f)
        .sum();
    let mut group = plan_group(c, "plan_mppi");
    // 0.1–0.2 s per call: criterion's fewest samples fit the measurement time.
    group.sample_size(10);
    group.throughput(Throughput::Elements(flops));
    bench_plan(&mut group, "reach_learned", planner.as_mut(), &obs);
    group.finish();

    // One model call at the batch MPPI uses: `samples` rows (encode: one).
    let (l, a) = (spec.latent_dim, spec.action_dim());
    let mut z1 = vec![0.0; l];
    model.encode(&obs, &mut z1).unwrap();
    let z = z1.repeat(samples);
    let u: Vec<Real> = (0..samples * a)
        .map(|i| {
            let (lo, hi) = (spec.action_lower[i % a], spec.action_upper[i % a]);
            lo + (hi - lo) * ((i * 7919) % 1000) as Real / 1000.0
        })
        .collect();
    let mut z_next = vec![0.0; samples * l];
    let mut y = vec![0.0; samples * spec.readout_dim()];
    let mut group = c.benchmark_group("learned_model_call");
    group.throughput(Throughput::Elements(per_row[0]));
    group.bench_function("encode/1", |b| {
        b.iter(|| model.encode(black_box(&obs), &mut z1).unwrap());
    });
    group.throughput(Throughput::Elements(per_row[1] * samples as u64));
    group.bench_function(BenchmarkId::new("predict", samples), |b| {
        b.iter(|| model.predict(black_box(&z), &u, &mut z_next).unwrap());
    });
    group.throughput(Throughput::Elements(per_row[2] * samples as u64));
    group.bench_function(BenchmarkId::new("readout", samples), |b| {
        b.iter(|| model.readout(black_box(&z), &mut y).unwrap());
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .sample_size(20);
    targets = analytic, learned
}
criterion_main!(benches);
