//! The cost of planning through the C ABI against the same call in Rust, in
//! one run: the navigate problem of `examples/c/navigate.toml` (unicycle
//! model, MPPI, 256 samples × 40 steps × 3 iterations), two planners with
//! the same seed, their calls interleaved (alternating which goes first) so
//! that load on the machine falls on both alike.
//!
//! ```text
//! cargo run -p telic-c --example overhead [calls]
//! ```
//!
//! Prints the median and mean time per call of each and their ratio.

// The example calls the C ABI from Rust.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::ptr::null_mut;
use std::time::{Duration, Instant};
use telic_c::*;
use telic_sim::scenario::PlanningSections;

const SETTINGS: &str = include_str!("../../../examples/c/navigate.toml");

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let calls: usize = std::env::args().nth(1).map_or(Ok(300), |n| n.parse())?;

    // Rust: the planner built as the C ABI builds it (a boxed model from the
    // same source), called directly: the difference is the ABI layer alone.
    let mut unicycle = telic_sim::model_source::Params::new();
    for (k, v) in [
        ("dt", 0.1),
        ("max_speed", 1.0),
        ("max_turn_rate", 2.0),
        ("tau", 0.2),
    ] {
        unicycle.insert(k.into(), v.into());
    }
    let model = telic_sim::model_source::ModelSource::analytic("unicycle", unicycle)?.build()?;
    let sections = PlanningSections::from_toml(SETTINGS, "navigate.toml", ".".as_ref())?;
    let objective = sections.objective.compile(model.spec())?;
    let mut rust = telic::build(model, objective, sections.planner)?;
    rust.objective_mut().set_target("goal", &[4.0, 0.0])?;

    // C: the same through the exported functions.
    let settings = CString::new(SETTINGS)?;
    let params = c"dt = 0.1\nmax_speed = 1.0\nmax_turn_rate = 2.0\ntau = 0.2";
    let (mut m, mut p) = (null_mut(), null_mut());
    // SAFETY: valid strings and out-pointers.
    unsafe {
        check(telic_model_analytic(
            c"unicycle".as_ptr(),
            params.as_ptr(),
            &mut m,
        ))?;
        check(telic_planner_new(m, settings.as_ptr(), &mut p))?;
        check(telic_planner_set_target(
            p,
            c"goal".as_ptr(),
            [4.0, 0.0].as_ptr(),
            2,
        ))?;
    }
    let (mut action, mut plan) = ([0.0; 2], [0.0; 80]);
    let mut result = std::mem::MaybeUninit::<TelicPlanResult>::uninit();

    let (mut t_rust, mut t_c) = (Vec::with_capacity(calls), Vec::with_capacity(calls));
    for i in 0..calls + 5 {
        // The same observations for both: a robot crossing the arena.
        let x = 0.01 * (i % 300) as f64;
        let obs = [x, -0.3 * x, 0.1, 0.5, 0.0];
        // Which goes first alternates, so neither gains from the other's caches.
        let mut time_rust = || -> Result<(f64, Duration), telic::PlanError> {
            let start = Instant::now();
            let a = rust.plan(&obs)?.action[0];
            Ok((a, start.elapsed()))
        };
        let mut time_c = || {
            let start = Instant::now();
            // SAFETY: a live planner, buffers valid for the lengths given.
            let status = unsafe {
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
            (status, start.elapsed())
        };
        let ((rust_action, rust_time), (status, c_time)) = if i % 2 == 0 {
            let r = time_rust()?;
            (r, time_c())
        } else {
            let c = time_c();
            (time_rust()?, c)
        };
        check(status)?;
        assert_eq!(rust_action.to_bits(), action[0].to_bits(), "the same plan");
        if i >= 5 {
            t_rust.push(rust_time);
            t_c.push(c_time);
        }
    }
    // SAFETY: made above.
    unsafe {
        telic_planner_free(p);
        telic_model_free(m);
    }
    let (rm, cm) = (median(&mut t_rust), median(&mut t_c));
    let (ra, ca) = (mean(&t_rust), mean(&t_c));
    println!("navigate, MPPI 256 samples x 40 steps x 3 iterations, {calls} calls each");
    println!(
        "Rust  plan: median {:8.3} ms   mean {:8.3} ms",
        ms(rm),
        ms(ra)
    );
    println!(
        "C ABI plan: median {:8.3} ms   mean {:8.3} ms",
        ms(cm),
        ms(ca)
    );
    println!(
        "ratio C/Rust: median {:.4}   mean {:.4}   (median difference {:+.2} us)",
        cm.as_secs_f64() / rm.as_secs_f64(),
        ca.as_secs_f64() / ra.as_secs_f64(),
        (cm.as_secs_f64() - rm.as_secs_f64()) * 1e6
    );
    Ok(())
}

fn check(status: TelicStatus) -> Result<(), String> {
    if status == TelicStatus::Ok {
        return Ok(());
    }
    // SAFETY: never null; valid until the next failing call on this thread.
    let message = unsafe { std::ffi::CStr::from_ptr(telic_last_error()) };
    Err(format!("{status:?}: {}", message.to_string_lossy()))
}

fn median(times: &mut [Duration]) -> Duration {
    times.sort();
    times.get(times.len() / 2).copied().unwrap_or_default()
}

fn mean(times: &[Duration]) -> Duration {
    let n = u32::try_from(times.len().max(1)).unwrap_or(u32::MAX);
    times.iter().sum::<Duration>() / n
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
