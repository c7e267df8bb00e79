//! Unit tests of the controller: determinism against the synchronous planner,
//! zero-order hold, every fallback reason, a planner thread that dies and is
//! restarted, and a control side that never waits.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::ObjectiveSpec;
use crate::error::ModelError;
use crate::model::{PointMass, WorldModel};
use crate::objective::Objective;
use crate::planner::{Plan, PlannerConfig, build};
use std::sync::atomic::AtomicBool;
use std::thread::sleep;

/// Reach (1, 0.5) while staying out of a ball at (0.5, 0.25).
const REACH: &str = r#"
    bodies = [{ name = "p", points = ["pos"], radius = 0.1 }]

    [[terms]]
    name = "goal"
    residual = { kind = "readout", readouts = ["pos.x", "pos.y"], target = [1.0, 0.5] }

    [[guardrails]]
    kind = "keep_out"
    name = "ball"
    margin = 0.05
    shape = { type = "sphere", center = [0.5, 0.25, 0.0], radius = 0.15 }
"#;

/// A guardrail no plan from the origin can keep: x must already be in [5, 6].
const TRAPPED: &str = r#"
    [[terms]]
    name = "goal"
    residual = { kind = "readout", readouts = ["pos.x"], target = [1.0] }

    [[guardrails]]
    kind = "readout_limit"
    name = "far"
    readouts = ["pos.x"]
    lower = [5.0]
    upper = [6.0]
"#;

const OBS: [Real; 4] = [0.0, 0.0, 0.3, -0.2];
const H: usize = 10;
const DT: Real = 0.1;

fn model() -> PointMass {
    PointMass::new(2, DT, 2.0).unwrap()
}

fn spec() -> ModelSpec {
    model().spec().clone()
}

fn objective(toml: &str) -> Objective {
    toml::from_str::<ObjectiveSpec>(toml)
        .unwrap()
        .compile(&spec())
        .unwrap()
}

fn planner_config() -> PlannerConfig {
    PlannerConfig {
        horizon: H,
        samples: 64,
        iterations: 2,
        seed: 7,
        ..Default::default()
    }
}

fn planner_with(toml: &str, config: PlannerConfig) -> Box<dyn Planner> {
    build(model(), objective(toml), config).unwrap()
}

fn planner() -> Box<dyn Planner> {
    planner_with(REACH, planner_config())
}

fn config(max_plan_age_ms: Real) -> ControllerConfig {
    ControllerConfig {
        max_plan_age_ms,
        ..Default::default()
    }
}

fn spawn(planner: Box<dyn Planner>, max_plan_age_ms: Real) -> Controller {
    Controller::spawn(planner, &spec(), config(max_plan_age_ms)).unwrap()
}

/// The plan the same planner returns synchronously for [`OBS`].
fn sync_plan() -> Plan {
    planner().plan(&OBS).unwrap().clone()
}

fn ms(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

fn is_plan(s: ActionSource) -> bool {
    matches!(s, ActionSource::Plan { .. })
}

fn is(reason: FallbackReason) -> impl Fn(ActionSource) -> bool {
    move |s| s == ActionSource::Fallback(reason)
}

/// Reads actions at `now` until `want` holds (the planner thread works in
/// the meantime); gives up after 60 s, which only a hung planner takes.
fn wait_for(
    c: &mut Controller,
    now: Instant,
    want: impl Fn(ActionSource) -> bool,
) -> (Vec<Real>, ActionSource) {
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let a = c.action(now);
        if want(a.source) {
            return (a.values.to_vec(), a.source);
        }
        assert!(Instant::now() < until, "still {:?}", a.source);
        sleep(ms(1));
    }
}

/// Wraps a real planner to misbehave on cue.
struct Scripted {
    inner: Box<dyn Planner>,
    calls: usize,
    panic_on: Option<usize>,
    fail_on: Option<usize>,
    delay: Duration,
    /// Moves the predicted point into the ball at this step of every plan.
    corrupt_step: Option<usize>,
    copy: Option<Plan>,
    dropped: Option<Arc<AtomicBool>>,
}

impl Scripted {
    fn new(inner: Box<dyn Planner>) -> Self {
        Self {
            inner,
            calls: 0,
            panic_on: None,
            fail_on: None,
            delay: Duration::ZERO,
            corrupt_step: None,
            copy: None,
            dropped: None,
        }
    }
}

impl Drop for Scripted {
    fn drop(&mut self) {
        if let Some(flag) = &self.dropped {
            flag.store(true, Ordering::SeqCst);
        }
    }
}

impl Planner for Scripted {
    fn plan(&mut self, obs: &[Real]) -> Result<&Plan, PlanError> {
        self.calls += 1;
        if self.panic_on == Some(self.calls) {
            panic!("scripted panic on call {}", self.calls);
        }
        sleep(self.delay);
        if self.fail_on == Some(self.calls) {
            return Err(PlanError::Model(ModelError::Backend(
                "scripted failure".into(),
            )));
        }
        if let Some(step) = self.corrupt_step {
            let mut plan = self.inner.plan(obs)?.clone();
            let p = plan.readouts.len() / H;
            plan.readouts[step * p..step * p + 2].copy_from_slice(&[0.5, 0.25]);
            return Ok(self.copy.insert(plan));
        }
        self.inner.plan(obs)
    }
    fn set_goal_observation(&mut self, term: &str, obs: &[Real]) -> Result<(), PlanError> {
        self.inner.set_goal_observation(term, obs)
    }
    fn reset(&mut self) {
        self.inner.reset();
    }
    fn objective_mut(&mut self) -> &mut Objective {
        self.inner.objective_mut()
    }
    fn objective(&self) -> &Objective {
        self.inner.objective()
    }
    fn config(&self) -> &PlannerConfig {
        self.inner.config()
    }
    fn reseed(&mut self, seed: u64) {
        self.inner.reseed(seed);
    }
}

fn assert_reads_add_up(c: &Controller) {
    let m = c.metrics();
    assert_eq!(m.control_reads, m.plan_reads + m.fallback_reads.total());
}

#[test]
fn controller_serves_the_plan_the_planner_returns_synchronously() {
    let want = sync_plan();
    assert!(want.status.is_feasible());
    let mut c = spawn(planner(), 1000.0);
    let t0 = Instant::now();
    c.observe(&OBS, t0).unwrap();
    let (values, source) = wait_for(&mut c, t0, is_plan);
    assert_eq!(
        source,
        ActionSource::Plan {
            step: 0,
            age: Duration::ZERO
        }
    );
    assert_eq!(values, want.action);
    assert_eq!(c.predicted_readouts().unwrap(), &want.readouts[..]);
    let m = c.metrics();
    assert_eq!((m.plans_published, m.plans_failed), (1, 0));
    assert!(m.planner_alive);
    assert!(m.last_plan_latency.is_some());
    assert_reads_add_up(&c);
}

#[test]
fn controller_has_no_plan_before_observing_and_a_stale_one_after_max_age() {
    let mut c = spawn(planner(), 500.0);
    let t0 = Instant::now();
    let a = c.action(t0);
    assert_eq!(a.source, ActionSource::Fallback(FallbackReason::NoPlanYet));
    assert_eq!(a.values, &[0.0, 0.0]);
    c.observe(&OBS, t0).unwrap();
    wait_for(&mut c, t0, is_plan);
    // Exactly the maximum age still acts; a moment later the plan is stale.
    let at_limit = c.action(t0 + ms(500)).source;
    assert!(is_plan(at_limit), "{at_limit:?}");
    let late = c.action(t0 + ms(501));
    assert_eq!(late.source, ActionSource::Fallback(FallbackReason::Stale));
    assert_eq!(late.values, &[0.0, 0.0]);
    let m = c.metrics();
    assert_eq!(m.fallback_reads.stale, 1);
    assert!(m.fallback_reads.no_plan_yet >= 1);
    assert_eq!(m.latest_plan_age, Some(ms(501)));
    assert_eq!(m.max_plan_age, ms(501));
    assert_reads_add_up(&c);
}

#[test]
fn controller_holds_each_plan_step_for_one_model_step() {
    let want = sync_plan();
    let mut c = spawn(planner(), 10_000.0);
    let t0 = Instant::now();
    c.observe(&OBS, t0).unwrap();
    wait_for(&mut c, t0, is_plan);
    let dt = Duration::from_secs_f64(DT);
    for (age, step) in [
        (dt * 5 / 2, 2),
        (dt * 3, 3),
        (dt * 3 - ms(1), 2),
        (dt * 19 / 2, 9),
    ] {
        let a = c.action(t0 + age);
        assert_eq!(a.source, ActionSource::Plan { step, age }, "age {age:?}");
        assert_eq!(a.values, &want.actions[step * 2..step * 2 + 2]);
    }
    let past = c.action(t0 + dt * 10).source;
    assert_eq!(
        past,
        ActionSource::Fallback(FallbackReason::ShiftedPastHorizon)
    );
}

#[test]
fn controller_reports_a_dead_planner_and_restart_brings_plans_back() {
    let mut dying = Scripted::new(planner());
    dying.panic_on = Some(2);
    let mut c = spawn(Box::new(dying), 1000.0);
    let t0 = Instant::now();
    c.observe(&OBS, t0).unwrap();
    wait_for(&mut c, t0, is_plan);
    c.observe(&OBS, t0 + ms(1)).unwrap();
    wait_for(&mut c, t0, is(FallbackReason::PlannerDead));
    for i in 0..1000 {
        // Observations are still accepted, and the fallback served.
        c.observe(&OBS, t0 + ms(2)).unwrap();
        let a = c.action(t0 + ms(2) + Duration::from_micros(i));
        assert_eq!(
            a.source,
            ActionSource::Fallback(FallbackReason::PlannerDead)
        );
        assert_eq!(a.values, &[0.0, 0.0]);
    }
    let m = c.metrics();
    assert!(!m.planner_alive);
    let error = m.last_error.unwrap();
    assert!(error.contains("scripted panic on call 2"), "{error}");

    c.restart(planner()).unwrap();
    // The new planner plans from the newest observation without being asked.
    let (values, _) = wait_for(&mut c, t0 + ms(2), is_plan);
    assert_eq!(values, sync_plan().action);
    let m = c.metrics();
    assert!(m.planner_alive);
    assert_eq!(m.planner_restarts, 1);
    assert_reads_add_up(&c);
}

#[test]
fn controller_refuses_bad_observations_and_keeps_serving_its_plan() {
    let mut c = spawn(planner(), 1000.0);
    let t0 = Instant::now();
    c.observe(&OBS, t0).unwrap();
    let (before, _) = wait_for(&mut c, t0, is_plan);
    assert_eq!(
        c.observe(&[0.0; 3], t0 + ms(1)),
        Err(PlanError::ObservationSize {
            got: 3,
            expected: 4
        })
    );
    let bad = c.observe(&[0.0, Real::NAN, 0.0, 0.0], t0 + ms(1));
    assert!(
        matches!(bad, Err(PlanError::NonFiniteObservation { index: 1, .. })),
        "{bad:?}"
    );
    sleep(ms(20));
    let a = c.action(t0 + ms(2));
    assert_eq!(
        a.source,
        ActionSource::Plan {
            step: 0,
            age: ms(2)
        }
    );
    assert_eq!(a.values, &before[..]);
    let m = c.metrics();
    assert_eq!((m.observations, m.plans_published), (1, 1));
}

#[test]
fn controller_reports_a_failed_planning_call_and_recovers() {
    let mut failing = Scripted::new(planner());
    failing.fail_on = Some(2);
    let mut c = spawn(Box::new(failing), 1000.0);
    let t0 = Instant::now();
    c.observe(&OBS, t0).unwrap();
    wait_for(&mut c, t0, is_plan);
    c.observe(&OBS, t0 + ms(1)).unwrap();
    let (values, _) = wait_for(&mut c, t0 + ms(1), is(FallbackReason::PlannerFailed));
    assert_eq!(values, [0.0, 0.0]);
    assert!(c.predicted_readouts().is_none());
    let m = c.metrics();
    assert_eq!((m.plans_published, m.plans_failed), (1, 1));
    assert!(m.planner_alive);
    let error = m.last_error.unwrap();
    assert!(error.contains("scripted failure"), "{error}");
    c.observe(&OBS, t0 + ms(2)).unwrap();
    wait_for(&mut c, t0 + ms(2), is_plan);
    assert_eq!(c.metrics().plans_published, 2);
    assert_reads_add_up(&c);
}

#[test]
fn controller_never_waits_for_a_busy_planner() {
    let mut slow = Scripted::new(planner());
    slow.delay = ms(120);
    let mut c = spawn(Box::new(slow), 1000.0);
    let t0 = Instant::now();
    for i in 0..10_000 {
        if i % 100 == 0 {
            c.observe(&OBS, t0).unwrap();
        }
        let a = c.action(t0);
        assert_eq!(a.values.len(), 2);
    }
    assert_eq!(c.metrics().control_reads, 10_000);
    wait_for(&mut c, t0, is_plan);
    // Sleeping 120 ms per call misses the 100 ms re-planning deadline.
    let m = c.metrics();
    assert!(m.plans_late >= 1);
    assert!(m.max_plan_latency >= ms(120));
    assert!(m.observations_skipped >= 1);
}

#[test]
fn controller_plans_from_the_newest_observation_and_skips_the_rest() {
    let mut slow = Scripted::new(planner());
    slow.delay = ms(50);
    let mut c = spawn(Box::new(slow), 1000.0);
    let t0 = Instant::now();
    for k in 0..3 {
        c.observe(&OBS, t0 + ms(k)).unwrap();
    }
    // Only the plan from the newest observation is zero steps and 0 s old.
    let newest = ActionSource::Plan {
        step: 0,
        age: Duration::ZERO,
    };
    wait_for(&mut c, t0 + ms(2), |s| s == newest);
    let m = c.metrics();
    assert_eq!(m.observations, 3);
    assert!(m.observations_skipped >= 1);
    assert_eq!(m.plans_published + m.observations_skipped, 3);
}

#[test]
fn controller_falls_back_while_a_step_ahead_breaks_a_guardrail() {
    let want = sync_plan();
    let mut corrupt = Scripted::new(planner());
    corrupt.corrupt_step = Some(4);
    let mut c = spawn(Box::new(corrupt), 10_000.0);
    let t0 = Instant::now();
    c.observe(&OBS, t0).unwrap();
    let guard = is(FallbackReason::GuardrailOnShiftedPlan);
    let (values, _) = wait_for(&mut c, t0, &guard);
    assert_eq!(values, [0.0, 0.0]);
    let dt = Duration::from_secs_f64(DT);
    for step in 0..=4 {
        assert!(
            guard(c.action(t0 + dt * step + ms(1)).source),
            "step {step}"
        );
    }
    // Past the broken step the rest of the plan is safe again.
    let a = c.action(t0 + dt * 5 + ms(1));
    assert!(is_plan(a.source), "{:?}", a.source);
    assert_eq!(a.values, &want.actions[10..12]);
}

#[test]
fn controller_returns_the_planners_fallback_when_nothing_is_feasible() {
    let cfg = PlannerConfig {
        fallback: Fallback::Constant {
            action: vec![0.5, -3.0],
        },
        ..planner_config()
    };
    let own = ControllerConfig {
        fallback: Some(Fallback::Zero),
        ..config(1000.0)
    };
    let mut c = Controller::spawn(planner_with(TRAPPED, cfg), &spec(), own).unwrap();
    let t0 = Instant::now();
    c.observe(&OBS, t0).unwrap();
    let (values, _) = wait_for(&mut c, t0, is(FallbackReason::NoFeasiblePlan));
    // The planner's fallback, clamped into the bounds by the planner.
    assert_eq!(values, [0.5, -2.0]);
    // A stale plan gets the controller's own fallback.
    assert_eq!(c.action(t0 + ms(2000)).values, &[0.0, 0.0]);
}

#[test]
fn controller_holds_the_newest_observation() {
    let hold = || Fallback::Hold {
        readouts: vec!["vel.x".into(), "vel.y".into()],
    };
    let cfg = PlannerConfig {
        fallback: hold(),
        ..planner_config()
    };
    let mut c = Controller::spawn(planner_with(REACH, cfg), &spec(), config(1000.0)).unwrap();
    let t0 = Instant::now();
    c.observe(&[0.0, 0.0, 0.4, -3.0], t0).unwrap();
    wait_for(&mut c, t0, is_plan);
    let a = c.action(t0 + ms(1500));
    assert_eq!(a.source, ActionSource::Fallback(FallbackReason::Stale));
    assert_eq!(a.values, &[0.4, -2.0]);

    // `speed` is a readout only the model computes: refused, unless the
    // controller has a fallback of its own.
    let speed = Fallback::Hold {
        readouts: vec!["speed".into(), "speed".into()],
    };
    let cfg = PlannerConfig {
        fallback: speed,
        ..planner_config()
    };
    let err =
        Controller::spawn(planner_with(REACH, cfg.clone()), &spec(), config(100.0)).unwrap_err();
    assert!(
        err.to_string().contains("'speed' is not an observation"),
        "{err}"
    );
    let own = ControllerConfig {
        fallback: Some(hold()),
        ..config(100.0)
    };
    assert!(Controller::spawn(planner_with(REACH, cfg), &spec(), own).is_ok());
}

#[test]
fn controller_refuses_bad_configs_and_models() {
    for age in [0.0, -1.0, Real::NAN, Real::INFINITY] {
        let err = Controller::spawn(planner(), &spec(), config(age)).unwrap_err();
        assert!(
            matches!(&err, PlanError::Config(m) if m.contains("max_plan_age_ms")),
            "{err}"
        );
        assert!(config(age).validate().is_err());
    }
    assert!(ControllerConfig::default().validate().is_ok());
    let constant = |action: Vec<Real>| ControllerConfig {
        fallback: Some(Fallback::Constant { action }),
        ..Default::default()
    };
    for bad in [vec![0.0], vec![0.0, Real::NAN]] {
        let err = Controller::spawn(planner(), &spec(), constant(bad)).unwrap_err();
        assert!(matches!(err, PlanError::Config(_)), "{err}");
    }
    let spatial = PointMass::new(3, DT, 2.0).unwrap().spec().clone();
    let err = Controller::spawn(planner(), &spatial, ControllerConfig::default()).unwrap_err();
    assert!(matches!(err, PlanError::Objective(_)), "{err}");

    // A planner for another model is refused by restart, and the old one kept.
    let mut c = spawn(planner(), 1000.0);
    let spatial_planner = {
        let m = PointMass::new(3, DT, 2.0).unwrap();
        let obj = toml::from_str::<ObjectiveSpec>(REACH)
            .unwrap()
            .compile(m.spec())
            .unwrap();
        build(m, obj, planner_config()).unwrap()
    };
    assert!(c.restart(spatial_planner).is_err());
    let t0 = Instant::now();
    c.observe(&OBS, t0).unwrap();
    wait_for(&mut c, t0, is_plan);
    assert_eq!(c.metrics().planner_restarts, 0);
}

#[test]
fn dropping_the_controller_stops_and_joins_the_planner_thread() {
    let dropped = Arc::new(AtomicBool::new(false));
    let mut slow = Scripted::new(planner());
    slow.delay = ms(50);
    slow.dropped = Some(Arc::clone(&dropped));
    let mut c = spawn(Box::new(slow), 1000.0);
    c.observe(&OBS, Instant::now()).unwrap();
    sleep(ms(10));
    drop(c);
    // The thread owned the planner: joined means dropped.
    assert!(dropped.load(Ordering::SeqCst));
}

#[test]
fn controller_is_send() {
    fn send<T: Send>() {}
    send::<Controller>();
}
