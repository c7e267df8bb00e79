//! `telic_planner_plan` (after its first call), `telic_controller_observe`
//! and `telic_controller_action` do not allocate on the calling thread, as
//! their Rust counterparts do not: a counting allocator watches them.

#![allow(clippy::unwrap_used, clippy::expect_used)]
// tests fail loudly

// These tests call the C ABI from Rust, and count allocations with a
// global allocator, which is an unsafe trait.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::ffi::CString;
use std::ptr::{null, null_mut};
use telic_c::*;

struct Counting;

thread_local! {
    /// Allocations on this thread while `COUNTING` is on.
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}

// SAFETY: every call is forwarded to the system allocator unchanged; the
// counters are thread-local cells that never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = COUNTING.try_with(|on| {
            if on.get() {
                ALLOCATIONS.with(|n| n.set(n.get() + 1));
            }
        });
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded; `ptr` came from `System.alloc`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations made by `f` on this thread.
fn allocations(f: impl FnOnce()) -> usize {
    ALLOCATIONS.with(|n| n.set(0));
    COUNTING.with(|on| on.set(true));
    f();
    COUNTING.with(|on| on.set(false));
    ALLOCATIONS.with(Cell::get)
}

fn planner() -> (*mut TelicModel, *mut TelicPlanner) {
    let settings = CString::new(include_str!("../../../examples/c/navigate.toml")).unwrap();
    let (mut m, mut p) = (null_mut(), null_mut());
    // SAFETY: valid strings and out-pointers.
    unsafe {
        assert_eq!(
            telic_model_analytic(c"unicycle".as_ptr(), null(), &mut m),
            TelicStatus::Ok
        );
        assert_eq!(
            telic_planner_new(m, settings.as_ptr(), &mut p),
            TelicStatus::Ok
        );
    }
    (m, p)
}

#[test]
fn planning_after_the_first_call_does_not_allocate() {
    let (m, p) = planner();
    let mut obs = [0.0; 5];
    let (mut action, mut plan) = ([0.0; 2], [0.0; 80]);
    let mut result = std::mem::MaybeUninit::<TelicPlanResult>::uninit();
    let mut call = |obs: &[f64; 5]| {
        // SAFETY: buffers valid for the lengths given.
        let s = unsafe {
            telic_planner_plan(
                p,
                obs.as_ptr(),
                5,
                action.as_mut_ptr(),
                2,
                plan.as_mut_ptr(),
                80,
                result.as_mut_ptr(),
            )
        };
        assert_eq!(s, TelicStatus::Ok);
    };
    call(&obs);
    let n = allocations(|| {
        for t in 0..5 {
            obs[0] = 0.1 * f64::from(t);
            call(&obs);
        }
    });
    assert_eq!(n, 0, "allocations in 5 plan calls");
    // SAFETY: made above.
    unsafe {
        telic_planner_free(p);
        telic_model_free(m);
    }
}

#[test]
fn observe_and_action_do_not_allocate() {
    let (m, p) = planner();
    let mut c = null_mut();
    let obs = [0.0; 5];
    let mut action = [0.0; 2];
    let mut info = std::mem::MaybeUninit::<TelicActionInfo>::uninit();
    let mut metrics = std::mem::MaybeUninit::<TelicControllerMetrics>::uninit();
    // SAFETY: live handles, buffers valid for the lengths given.
    unsafe {
        assert_eq!(telic_controller_start(p, null(), &mut c), TelicStatus::Ok);
        let mut tick = || {
            assert_eq!(
                telic_controller_observe(c, obs.as_ptr(), 5),
                TelicStatus::Ok
            );
            assert_eq!(
                telic_controller_action(c, action.as_mut_ptr(), 2, info.as_mut_ptr()),
                TelicStatus::Ok
            );
        };
        // Warm up until the planner has published twice (its buffers then
        // circulate), whatever the machine's load: no deadline asserted.
        loop {
            tick();
            assert_eq!(
                telic_controller_metrics(c, metrics.as_mut_ptr()),
                TelicStatus::Ok
            );
            if metrics.assume_init_ref().plans_published >= 2 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let n = allocations(|| {
            for _ in 0..200 {
                tick();
            }
        });
        assert_eq!(n, 0, "allocations in 200 observe + action calls");
        telic_controller_stop(c);
        telic_planner_free(p);
        telic_model_free(m);
    }
}
