//! Issue 15: on a loaded machine a planning call allocated now and then
//! (`Mppi with knots None Zero on 3 threads: 2 allocations in 20 planning
//! calls` in `no_alloc.rs`). The allocations were not the hot path's own:
//! the standard library allocates on a new thread as the thread starts (a
//! copy of its name), and a rollout worker whose core was busy first ran in
//! the middle of a later planning call, after warm-up. The same kind of late
//! first time hid in the controller: the planner thread's first blocking
//! receive allocated (the channel's waiter list and the thread's wait
//! context), and a planner that always found an observation waiting during
//! warm-up made that first wait on some later tick.
//!
//! Both are forced here rather than left to the scheduler. The counting
//! allocator can hold the threads the test did not start, at their first
//! allocation, until the test lets them go, so a thread starts as late as
//! on the busiest machine; and a model that paces the planner thread lets it
//! find the next observation waiting after every warm-up plan, so that its
//! first wait comes inside the counted window (given a fifth of a second to
//! come: on the old code the workers' case fails every time, the planner
//! thread's whenever it gets a core in that time).

#![allow(clippy::unwrap_used)]

mod harness;

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use telic::Real;
use telic::controller::{ActionSource, Controller};
use telic::error::ModelError;
use telic::model::{ModelSpec, PointMass, WorldModel};
use telic::{PlannerConfig, PlannerKind};

/// Every allocation of the process.
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);
/// While set, an allocation by a thread other than the test's waits.
static HOLDING: AtomicBool = AtomicBool::new(false);
/// Allocations that came to the gate while it was holding, and those
/// waiting there now.
static ARRIVED: AtomicUsize = AtomicUsize::new(0);
static HELD: AtomicUsize = AtomicUsize::new(0);
/// How long a held thread waits at most (in milliseconds): a fixed planner
/// waits at the gate for its threads to start, and they pass it then.
const MAX_HOLD_MS: usize = 2_000;

thread_local! {
    static TEST_THREAD: Cell<bool> = const { Cell::new(false) };
}

/// Waits at the gate when it holds this thread; true when it did.
fn gate() -> bool {
    if !HOLDING.load(Ordering::SeqCst) || TEST_THREAD.with(Cell::get) {
        return false;
    }
    ARRIVED.fetch_add(1, Ordering::SeqCst);
    HELD.fetch_add(1, Ordering::SeqCst);
    for _ in 0..MAX_HOLD_MS {
        if !HOLDING.load(Ordering::SeqCst) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    // Whoever waited this long is waited for by the test: open for all.
    HOLDING.store(false, Ordering::SeqCst);
    true
}

/// The allocator's hook: counts the allocation (after the gate, so that a
/// held thread's first allocation counts when it happens).
fn count() {
    let held = gate();
    ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
    if held {
        HELD.fetch_sub(1, Ordering::SeqCst);
    }
}

#[global_allocator]
static GLOBAL: harness::Counting = harness::Counting(count);

/// The count is process-wide and the gate holds every thread but the
/// test's: the cases run in one test, one after another.
#[test]
fn threads_that_start_or_wait_late_do_not_allocate_in_the_hot_path() {
    TEST_THREAD.with(|t| t.set(true));
    harness::wait_until_the_harness_waits();
    for kind in [PlannerKind::Mppi, PlannerKind::Cem] {
        rollout_workers_that_start_late(kind);
    }
    planner_thread_that_waits_late();
}

/// Rollout workers that first run after warm-up: every job of the warm-up
/// is taken back by the planner's thread, then the workers start inside the
/// counted planning calls.
fn rollout_workers_that_start_late(kind: PlannerKind) {
    let model = PointMass::new(2, 0.1, 2.0).unwrap();
    let objective = harness::objective().compile(model.spec()).unwrap();
    let config = PlannerConfig {
        kind,
        samples: 128,
        horizon: 15,
        threads: 3,
        ..Default::default()
    };
    ARRIVED.store(0, Ordering::SeqCst);
    HOLDING.store(true, Ordering::SeqCst);
    let mut planner = telic::build(model, objective, config).unwrap();
    let mut obs = [0.0, 0.0, 0.0, 0.0];
    for _ in 0..3 {
        planner.plan(&obs).unwrap();
    }
    // Both workers at the gate (or let through already).
    let mut waited = 0;
    while ARRIVED.load(Ordering::SeqCst) < 2
        && HOLDING.load(Ordering::SeqCst)
        && waited < MAX_HOLD_MS
    {
        std::thread::sleep(Duration::from_millis(1));
        waited += 1;
    }
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    HOLDING.store(false, Ordering::SeqCst);
    for i in 0..20 {
        obs[0] = 0.01 * i as f64;
        planner.plan(&obs).unwrap();
    }
    // Every thread let through has made the allocation it was held at.
    wait_until("the held threads", || HELD.load(Ordering::SeqCst) == 0);
    let n = ALLOCATIONS.load(Ordering::SeqCst) - before;
    assert_eq!(
        n, 0,
        "{kind:?} on 3 threads whose workers start late: {n} allocations in 20 planning calls"
    );
}

/// Observations sent by the test, and planning calls begun by the planner
/// thread (encodings off the test's thread).
static SENT: AtomicUsize = AtomicUsize::new(0);
static BEGUN: AtomicUsize = AtomicUsize::new(0);
/// While set, planning call `k` goes on only once observation `k + 1` is
/// sent, so that the planner thread finds it waiting when the call ends.
static PACED: AtomicBool = AtomicBool::new(false);

/// Ends the pacing when dropped, so that a failing test does not leave
/// the planner thread waiting for an observation that never comes.
struct Unpace;

impl Drop for Unpace {
    fn drop(&mut self) {
        PACED.store(false, Ordering::SeqCst);
    }
}

/// Yields until `done`; a minute without it is a failure, not a hang.
fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(
            Instant::now() < deadline,
            "still waiting for {what} after a minute"
        );
        std::thread::yield_now();
    }
}

/// A point mass that paces the planner thread (see [`PACED`]).
struct Paced(PointMass);

impl WorldModel for Paced {
    fn spec(&self) -> &ModelSpec {
        self.0.spec()
    }

    fn encode(&mut self, obs: &[Real], z: &mut [Real]) -> Result<(), ModelError> {
        if !TEST_THREAD.with(Cell::get) {
            let k = BEGUN.fetch_add(1, Ordering::SeqCst) + 1;
            while PACED.load(Ordering::SeqCst) && SENT.load(Ordering::SeqCst) <= k {
                std::thread::yield_now();
            }
        }
        self.0.encode(obs, z)
    }

    fn predict(&mut self, z: &[Real], u: &[Real], z_next: &mut [Real]) -> Result<(), ModelError> {
        self.0.predict(z, u, z_next)
    }

    fn readout(&mut self, z: &[Real], y: &mut [Real]) -> Result<(), ModelError> {
        self.0.readout(z, y)
    }
}

/// The controller's planner thread never waits for an observation during
/// warm-up, then waits for the first time while the control side is
/// counted.
fn planner_thread_that_waits_late() {
    let model = Paced(PointMass::new(2, 0.1, 2.0).unwrap());
    let (planner, spec, control) = harness::controller_parts(model);
    let obs = [0.0; 4];
    SENT.store(0, Ordering::SeqCst);
    BEGUN.store(0, Ordering::SeqCst);
    PACED.store(true, Ordering::SeqCst);
    // The planner thread is held as it starts until the first observation
    // waits for it.
    HOLDING.store(true, Ordering::SeqCst);
    let mut controller = Controller::spawn(planner, &spec, control).unwrap();
    // Dropped before the controller, whose drop waits for its planner thread.
    let _unpaced = Unpace;
    controller.observe(&obs, Instant::now()).unwrap();
    SENT.store(1, Ordering::SeqCst);
    HOLDING.store(false, Ordering::SeqCst);
    // Warm-up: five planning calls, each begun on the observation sent
    // before it and ending with the next one waiting.
    for k in 1..=5 {
        wait_until("a planning call", || BEGUN.load(Ordering::SeqCst) >= k);
        controller.observe(&obs, Instant::now()).unwrap();
        SENT.store(k + 1, Ordering::SeqCst);
        let _ = controller.action(Instant::now());
    }
    wait_until("five plans", || controller.metrics().plans_published >= 5);
    let mut from_plans = 0;
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    PACED.store(false, Ordering::SeqCst);
    // The sixth call ends with nothing waiting: the planner thread waits.
    wait_until("the sixth plan", || {
        controller.metrics().plans_published >= 6
    });
    // Time for it to give up spinning and wait.
    std::thread::sleep(Duration::from_millis(200));
    for _ in 0..20_000 {
        controller.observe(&obs, Instant::now()).unwrap();
        if let ActionSource::Plan { .. } = controller.action(Instant::now()).source {
            from_plans += 1;
        }
    }
    let n = ALLOCATIONS.load(Ordering::SeqCst) - before;
    assert!(from_plans > 0);
    assert_eq!(
        n, 0,
        "{n} allocations in 20,000 control reads after the planner thread's first wait"
    );
}
