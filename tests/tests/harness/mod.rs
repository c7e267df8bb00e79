//! What the allocation-counting tests share: the counting allocator, the
//! point-mass objective they plan with, and what they need to know of the
//! test harness.

use std::alloc::{GlobalAlloc, Layout, System};
use std::time::Duration;
use telic::PlannerConfig;
use telic::controller::ControllerConfig;
use telic::model::{ModelSpec, WorldModel};
use telic::objective::{ObjectiveSpec, Residual, TermSpec};
use telic::planner::Planner;

/// The system allocator, calling its hook (the test's count) before every
/// allocation and reallocation. A `#[global_allocator]` is declared per test
/// binary: each declares this one with a hook of its own.
#[derive(Debug)]
pub struct Counting(pub fn());

// SAFETY-free wrapper: every call is forwarded to the system allocator.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        (self.0)();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        (self.0)();
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// The point mass's `pos` driven to (1, 0).
pub fn objective() -> ObjectiveSpec {
    ObjectiveSpec {
        terms: vec![TermSpec {
            name: "goal".into(),
            residual: Residual::Readout {
                readouts: vec!["pos.x".into(), "pos.y".into()],
                target: vec![1.0, 0.0],
            },
            norm: Default::default(),
            weight: 1.0,
            phase: Default::default(),
        }],
        ..Default::default()
    }
}

/// What a controller over `model` needs: a planner of 32 samples for
/// [`objective`], the model's spec, and a configuration whose plans stay
/// fresh for 10 s.
pub fn controller_parts<M: WorldModel + 'static>(
    model: M,
) -> (Box<dyn Planner>, ModelSpec, ControllerConfig) {
    let spec = model.spec().clone();
    let objective = objective().compile(&spec).unwrap();
    let config = PlannerConfig {
        samples: 32,
        ..Default::default()
    };
    let planner = telic::build(model, objective, config).unwrap();
    let control = ControllerConfig {
        max_plan_age_ms: 10_000.0,
        ..Default::default()
    };
    (planner, spec, control)
}

/// Returns once the test harness's main thread waits for this test.
///
/// libtest starts each test on a thread of its own and then, on its main
/// thread, files the running test and registers itself to wait for its
/// result: a few allocations that a loaded machine can delay into the first
/// counted window of a test that counts every allocation of the process
/// (issue 15). This waits until the main thread sleeps (Linux: its state in
/// `/proc`, seen three times in a row); elsewhere, or when this is the main
/// thread, it returns at once.
pub fn wait_until_the_harness_waits() {
    if std::thread::current().name() == Some("main") {
        return;
    }
    let path = format!("/proc/self/task/{}/stat", std::process::id());
    let mut asleep = 0;
    // At most ten seconds: the harness does not take that long to file a test.
    for _ in 0..10_000 {
        let Ok(stat) = std::fs::read_to_string(&path) else {
            return;
        };
        // The state follows the command name, which is in parentheses.
        match stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.trim_start().chars().next())
        {
            Some('S') => {
                asleep += 1;
                if asleep == 3 {
                    return;
                }
            }
            Some(_) => asleep = 0,
            None => return,
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}
