//! The controller's control read — `observe` then `action(now)`, one control
//! tick — while its planner thread re-plans `reach_realtime` (reach tuned to
//! re-plan within a control period: one iCEM iteration on 5 knots) with the
//! analytic arm and with the learned bundle. With `reach`'s own planner the
//! learned plans take longer than the controller's 100 ms age limit, and
//! every read would time the fallback. After the bench, one line says how
//! many reads stepped through plans.
//!
//! `telic bench` measures the same ticks at a fixed rate with every core
//! loaded; here they run back to back, with no load added.
//!
//! `cargo bench --profile dev -p telic-tests --bench control`. Without ONNX
//! Runtime the learned bench is skipped, saying so.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a bench that cannot set up stops loudly

use criterion::{
    BenchmarkGroup, Criterion, criterion_group, criterion_main, measurement::WallTime,
};
use std::hint::black_box;
use std::time::{Duration, Instant};
use telic::controller::{Controller, ControllerConfig};
use telic_sim::scenario::ModelChoice;

mod common;
use common::{episode, onnx_runtime};

fn read(group: &mut BenchmarkGroup<'_, WallTime>, name: &str, model: ModelChoice) {
    let (env, obs) = episode("reach_realtime", model);
    let m = env.scenario().build_model(env.world()).unwrap();
    let spec = m.spec().clone();
    let planner = env.planner(m, None).unwrap();
    let mut controller = Controller::spawn(planner, &spec, ControllerConfig::default()).unwrap();
    // Start from a published plan, so that reads step through plans.
    let start = Instant::now();
    while controller.metrics().plans_published == 0 && start.elapsed() < Duration::from_secs(30) {
        let now = Instant::now();
        controller.observe(&obs, now).unwrap();
        controller.action(now);
        std::thread::sleep(Duration::from_millis(1));
    }
    let before = controller.metrics();
    group.bench_function(name, |b| {
        b.iter(|| {
            let now = Instant::now();
            controller.observe(black_box(&obs), now).unwrap();
            black_box(controller.action(now).values.first().copied())
        });
    });
    let after = controller.metrics();
    let reads = after.control_reads - before.control_reads;
    println!(
        "{name}: {reads} reads, {:.1}% from plans; the planner thread published {} plans meanwhile",
        100.0 * (after.plan_reads - before.plan_reads) as f64 / reads.max(1) as f64,
        after.plans_published - before.plans_published
    );
}

fn control(c: &mut Criterion) {
    let mut group = c.benchmark_group("control_tick");
    read(&mut group, "reach_analytic", ModelChoice::Analytic);
    if onnx_runtime() {
        read(&mut group, "reach_learned", ModelChoice::Default);
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    targets = control
}
criterion_main!(benches);
