//! Every bad call a C caller can make returns its status code and a
//! message naming what was wrong, and leaves the handles usable; a panic
//! inside a plan call comes back as `TELIC_STATUS_PANIC` and the planner is
//! marked dead, never unwinding into the caller.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

// These tests call the C ABI from Rust: raw pointers, as a C caller would.
#![allow(unsafe_code)]

use std::ffi::{CStr, CString};
use std::ptr::{null, null_mut};
use telic_c::*;

const SETTINGS: &str = include_str!("../../../examples/c/navigate.toml");
const PARAMS: &CStr = c"dt = 0.1\nmax_speed = 1.0\nmax_turn_rate = 2.0\ntau = 0.2";
const OBS: [f64; 5] = [0.0; 5];

fn last_error() -> String {
    // SAFETY: `telic_last_error` never returns null; the string lives until
    // the next failing call on this thread.
    unsafe { CStr::from_ptr(telic_last_error()) }
        .to_string_lossy()
        .into_owned()
}

fn model() -> *mut TelicModel {
    let mut m = null_mut();
    // SAFETY: valid strings and out-pointer.
    let s = unsafe { telic_model_analytic(c"unicycle".as_ptr(), PARAMS.as_ptr(), &mut m) };
    assert_eq!(s, TelicStatus::Ok, "{}", last_error());
    m
}

fn planner(model: *const TelicModel, settings: &str) -> (TelicStatus, *mut TelicPlanner) {
    let text = CString::new(settings).unwrap();
    let mut p = null_mut();
    // SAFETY: a live model, a valid string and out-pointer.
    let s = unsafe { telic_planner_new(model, text.as_ptr(), &mut p) };
    (s, p)
}

/// Plans with buffers of the given lengths (no plan buffer, NULL, for 0).
fn plan(p: *mut TelicPlanner, obs: &[f64], action_len: usize, actions_len: usize) -> TelicStatus {
    let mut action = vec![0.0; action_len];
    let mut actions = vec![0.0; actions_len];
    let mut result = std::mem::MaybeUninit::<TelicPlanResult>::uninit();
    // SAFETY: every buffer is valid for the length passed with it.
    unsafe {
        telic_planner_plan(
            p,
            obs.as_ptr(),
            obs.len(),
            action.as_mut_ptr(),
            action_len,
            if actions_len == 0 {
                null_mut()
            } else {
                actions.as_mut_ptr()
            },
            actions_len,
            result.as_mut_ptr(),
        )
    }
}

/// Asserts `status` is `expected` and the thread's last error contains `message`.
fn expect(case: &str, status: TelicStatus, expected: TelicStatus, message: &str) {
    let error = last_error();
    assert_eq!(status, expected, "{case}: {error}");
    assert!(
        error.contains(message),
        "{case}: message {error:?} lacks {message:?}"
    );
}

#[test]
fn bad_models_are_refused_with_their_code_and_message() {
    let mut m = null_mut();
    let bundle = c"/nonexistent/telic-bundle";
    // One call at a time: each message is the thread's latest.
    // SAFETY: strings are valid or null, out-pointers valid or null, as
    // each case says.
    unsafe {
        let s = telic_model_analytic(null(), null(), &mut m);
        expect(
            "null name",
            s,
            TelicStatus::NullPointer,
            "name is a null pointer",
        );
        let s = telic_model_analytic(c"rocket".as_ptr(), null(), &mut m);
        expect(
            "unknown model",
            s,
            TelicStatus::Config,
            "unknown analytic model 'rocket'",
        );
        let s = telic_model_analytic(c"unicycle".as_ptr(), c"wheels = 3".as_ptr(), &mut m);
        expect(
            "unknown parameter",
            s,
            TelicStatus::Config,
            "unknown field `wheels`",
        );
        let s = telic_model_analytic(c"unicycle".as_ptr(), c"dt = ".as_ptr(), &mut m);
        expect(
            "TOML syntax",
            s,
            TelicStatus::Config,
            "parameters of analytic model 'unicycle'",
        );
        let s = telic_model_analytic(c"unicycle".as_ptr(), c"tau = -1.0".as_ptr(), &mut m);
        expect("refused value", s, TelicStatus::Model, "tau must be >= 0");
        let s = telic_model_analytic(c"unicycle".as_ptr(), null(), null_mut());
        expect(
            "null out",
            s,
            TelicStatus::NullPointer,
            "out is a null pointer",
        );
        let s = telic_model_load(bundle.as_ptr(), 1, &mut m);
        expect(
            "missing bundle",
            s,
            TelicStatus::Model,
            "/nonexistent/telic-bundle",
        );
        let s = telic_model_analytic(c"uni\xffcycle".as_ptr(), null(), &mut m);
        expect(
            "not UTF-8",
            s,
            TelicStatus::InvalidInput,
            "name is not UTF-8",
        );
        let s = telic_model_dims(null(), null_mut());
        expect(
            "null model",
            s,
            TelicStatus::NullPointer,
            "model is a null pointer",
        );
    }
    assert!(m.is_null(), "no failed call wrote a model");
    // SAFETY: freeing null is allowed.
    unsafe { telic_model_free(null_mut()) };
}

#[test]
fn bad_settings_are_refused_with_their_code_and_message() {
    let m = model();
    let cases = [
        (
            "unknown readout",
            SETTINGS.replace("[\"base.x\", \"base.y\"]", "[\"base.x\", \"base.z\"]"),
            "base.z",
        ),
        (
            "unknown key",
            SETTINGS.replace("samples = 256", "sampels = 256"),
            "unknown field `sampels`",
        ),
        (
            "bad value",
            SETTINGS.replace("samples = 256", "samples = 0"),
            "samples",
        ),
        ("TOML syntax", "[planner\n".to_string(), "settings_toml"),
        (
            "unknown section",
            format!("{SETTINGS}\n[robot]\nwheels = 2\n"),
            "unknown field `robot`",
        ),
    ];
    for (case, text, message) in cases {
        let (s, p) = planner(m, &text);
        expect(case, s, TelicStatus::Config, message);
        assert!(p.is_null(), "{case}");
    }
    let (s, _) = planner(null(), SETTINGS);
    expect(
        "null model",
        s,
        TelicStatus::NullPointer,
        "model is a null pointer",
    );
    // SAFETY: a live model, null settings and out-pointer are refused.
    let s = unsafe { telic_planner_new(m, null(), null_mut()) };
    expect(
        "null settings",
        s,
        TelicStatus::NullPointer,
        "settings_toml is a null pointer",
    );
    // SAFETY: made above.
    unsafe { telic_model_free(m) };
}

#[test]
fn bad_plan_calls_are_refused_and_the_planner_still_plans() {
    let m = model();
    let (s, p) = planner(m, SETTINGS);
    assert_eq!(s, TelicStatus::Ok, "{}", last_error());
    let h = 40 * 2;
    let nan = [0.0, 0.0, f64::NAN, 0.0, 0.0];
    let inf = [0.0, f64::INFINITY, 0.0, 0.0, 0.0];
    expect(
        "null planner",
        plan(null_mut(), &OBS, 2, h),
        TelicStatus::NullPointer,
        "planner is a null pointer",
    );
    for (case, obs, a, hh, message) in [
        (
            "short observation",
            &OBS[..4],
            2,
            h,
            "observation has 4 values",
        ),
        ("NaN observation", &nan[..], 2, h, "obs[2] is NaN"),
        ("infinite observation", &inf[..], 2, h, "obs[1] is inf"),
        (
            "action buffer length",
            &OBS[..],
            3,
            h,
            "action has length 3, expected 2",
        ),
        (
            "plan buffer length",
            &OBS[..],
            2,
            5,
            "actions has length 5, expected 80",
        ),
    ] {
        expect(
            case,
            plan(p, obs, a, hh),
            TelicStatus::InvalidInput,
            message,
        );
    }
    // SAFETY: null buffers with their lengths are refused before use.
    let s = unsafe { telic_planner_plan(p, null(), 5, null_mut(), 2, null_mut(), 0, null_mut()) };
    expect(
        "null observation",
        s,
        TelicStatus::NullPointer,
        "obs is a null pointer",
    );
    // SAFETY: as above.
    let s =
        unsafe { telic_planner_plan(p, OBS.as_ptr(), 5, null_mut(), 2, null_mut(), 0, null_mut()) };
    expect(
        "null action",
        s,
        TelicStatus::NullPointer,
        "action is a null pointer",
    );

    let target = |term: &CStr, values: &[f64]| {
        // SAFETY: valid string and buffer.
        unsafe { telic_planner_set_target(p, term.as_ptr(), values.as_ptr(), values.len()) }
    };
    expect(
        "unknown term",
        target(c"nope", &[1.0, 2.0]),
        TelicStatus::Config,
        "nope",
    );
    expect(
        "target length",
        target(c"goal", &[1.0, 2.0, 3.0]),
        TelicStatus::Config,
        "target has 3 values",
    );
    expect(
        "NaN target",
        target(c"goal", &[f64::NAN, 0.0]),
        TelicStatus::InvalidInput,
        "target[0] is NaN",
    );
    expect(
        "action-rate target",
        target(c"smooth", &[0.0, 0.0]),
        TelicStatus::Config,
        "smooth",
    );
    // SAFETY: a null term is refused.
    let s = unsafe { telic_planner_set_target(p, null(), OBS.as_ptr(), 2) };
    expect(
        "null term",
        s,
        TelicStatus::NullPointer,
        "term is a null pointer",
    );
    // SAFETY: valid string and buffer.
    let s = unsafe { telic_planner_set_goal_observation(p, c"goal".as_ptr(), OBS.as_ptr(), 3) };
    expect(
        "goal observation length",
        s,
        TelicStatus::InvalidInput,
        "goal observation for cost term 'goal'",
    );

    // Nothing above changed the planner: it plans, with or without the plan buffer.
    assert_eq!(target(c"goal", &[4.0, 0.0]), TelicStatus::Ok);
    assert_eq!(plan(p, &OBS, 2, h), TelicStatus::Ok, "{}", last_error());
    assert_eq!(plan(p, &OBS, 2, 0), TelicStatus::Ok, "{}", last_error());
    // SAFETY: made above.
    unsafe {
        telic_planner_free(p);
        telic_model_free(m);
    }
}

#[test]
fn bad_controller_calls_are_refused_with_their_code_and_message() {
    let m = model();
    let (_, p) = planner(m, SETTINGS);
    let mut c = null_mut();
    // SAFETY (every call below): live or null handles, valid or null
    // strings and buffers with their lengths, as each case says.
    unsafe {
        let s = telic_controller_start(p, c"max_plan_age_ms = -1.0".as_ptr(), &mut c);
        expect("bad age", s, TelicStatus::Config, "max_plan_age_ms");
        let s = telic_controller_start(p, c"bogus = 1".as_ptr(), &mut c);
        expect(
            "unknown key",
            s,
            TelicStatus::Config,
            "unknown field `bogus`",
        );
        let s = telic_controller_start(null_mut(), null(), &mut c);
        expect(
            "null planner",
            s,
            TelicStatus::NullPointer,
            "planner is a null pointer",
        );
        assert!(c.is_null());
        // Refused settings left the planner as it was.
        assert_eq!(plan(p, &OBS, 2, 80), TelicStatus::Ok, "{}", last_error());

        assert_eq!(
            telic_controller_start(p, null(), &mut c),
            TelicStatus::Ok,
            "{}",
            last_error()
        );
        expect(
            "planner handed over",
            plan(p, &OBS, 2, 80),
            TelicStatus::Config,
            "handed to a controller",
        );
        let s = telic_controller_start(p, null(), &mut c);
        expect(
            "planner handed over twice",
            s,
            TelicStatus::Config,
            "handed to a controller",
        );
        let s = telic_controller_restart(c, p);
        expect(
            "restart with a used planner",
            s,
            TelicStatus::Config,
            "handed to a controller",
        );

        let s = telic_controller_observe(c, OBS.as_ptr(), 4);
        expect(
            "short observation",
            s,
            TelicStatus::InvalidInput,
            "observation has 4 values",
        );
        let nan = [f64::NAN; 5];
        let s = telic_controller_observe(c, nan.as_ptr(), 5);
        expect(
            "NaN observation",
            s,
            TelicStatus::InvalidInput,
            "obs[0] is NaN",
        );
        let s = telic_controller_observe(null_mut(), OBS.as_ptr(), 5);
        expect(
            "null controller",
            s,
            TelicStatus::NullPointer,
            "controller is a null pointer",
        );
        let mut a = [0.0; 3];
        let s = telic_controller_action(c, a.as_mut_ptr(), 3, null_mut());
        expect(
            "action length",
            s,
            TelicStatus::InvalidInput,
            "action has length 3, expected 2",
        );
        let s = telic_controller_action(c, null_mut(), 2, null_mut());
        expect(
            "null action",
            s,
            TelicStatus::NullPointer,
            "action is a null pointer",
        );
        let s = telic_controller_metrics(c, null_mut());
        expect(
            "null metrics",
            s,
            TelicStatus::NullPointer,
            "out is a null pointer",
        );

        // It still acts, with the fallback until a plan arrives.
        let mut info = std::mem::MaybeUninit::<TelicActionInfo>::uninit();
        assert_eq!(
            telic_controller_observe(c, OBS.as_ptr(), 5),
            TelicStatus::Ok
        );
        assert_eq!(
            telic_controller_action(c, a.as_mut_ptr(), 2, info.as_mut_ptr()),
            TelicStatus::Ok
        );
        let mut needed = 0;
        assert_eq!(
            telic_controller_planner_error(c, null_mut(), 0, &mut needed),
            TelicStatus::Ok
        );
        assert_eq!(needed, 1, "no planning error");
        assert_eq!(
            CStr::from_ptr(telic_action_source_name(TelicActionSource::Stale as i32)),
            c"stale"
        );
        assert_eq!(CStr::from_ptr(telic_action_source_name(99)), c"unknown");
        telic_controller_stop(c);
        telic_controller_stop(null_mut());
        telic_planner_free(p);
        telic_model_free(m);
    }
}

#[test]
fn a_panic_inside_a_plan_returns_an_error_and_kills_only_that_planner() {
    let m = model();
    let (_, p) = planner(m, SETTINGS);
    assert_eq!(plan(p, &OBS, 2, 80), TelicStatus::Ok, "{}", last_error());
    // SAFETY: a live planner used by this thread only.
    unsafe { telic_c::fault::panic_in_next_plan(p) };
    expect(
        "injected panic",
        plan(p, &OBS, 2, 80),
        TelicStatus::Panic,
        "injected by fault::panic_in_next_plan",
    );
    expect(
        "dead planner",
        plan(p, &OBS, 2, 80),
        TelicStatus::Dead,
        "died in an earlier panic",
    );
    // SAFETY: a live (dead) planner.
    let s = unsafe { telic_planner_reset(p) };
    expect(
        "dead planner reset",
        s,
        TelicStatus::Dead,
        "died in an earlier panic",
    );
    let mut c = null_mut();
    // SAFETY: as above.
    let s = unsafe { telic_controller_start(p, null(), &mut c) };
    expect(
        "dead planner to a controller",
        s,
        TelicStatus::Dead,
        "died in an earlier panic",
    );
    // The library and the model are fine: a new planner plans.
    let (s, q) = planner(m, SETTINGS);
    assert_eq!(s, TelicStatus::Ok);
    assert_eq!(plan(q, &OBS, 2, 80), TelicStatus::Ok, "{}", last_error());
    // SAFETY: made above; a dead planner is freed as any other.
    unsafe {
        telic_planner_free(p);
        telic_planner_free(q);
        telic_model_free(m);
    }
}
