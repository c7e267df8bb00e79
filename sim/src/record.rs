//! Recordings of episodes for the [rerun](https://rerun.io) viewer: what the
//! robot imagined and what it did.
//!
//! A [`Recorder`] is an [`EpisodeObserver`]: per control step it copies the
//! plan, the scene's moving parts and the true guardrail margins into a
//! message, and a logging thread turns the messages into rerun entities, so
//! the planning thread never waits on logging. Entity layout:
//!
//! | entity | what |
//! |---|---|
//! | `world/scene/*` | fixed scenery and the episode's goal |
//! | `world/robot/*` | robot links and objects, as 3D shapes |
//! | `world/guardrails/<name>` | keep-out volumes, obstacles, workspace bounds, coloured by the true margin (green: clear of the buffer, orange: inside it, red: violated) |
//! | `world/plan/<point>` | the chosen plan's predicted path of each body point |
//! | `world/rollouts` | the best sampled rollouts of the last iteration, coloured by cost |
//! | `world/executed/<point>` | the path each body point really took |
//! | `costs/<term>`, `costs/total` | the chosen plan's cost per term |
//! | `margins/<guardrail>` | the true margin of the observed state (the validator's value) |
//! | `plan/worst_margin`, `plan/latency_ms`, `plan/status`, `plan/feasible_samples` | planner health |
//! | `log` | status changes (fallback engaged, no feasible plan), episode start and end |
//!
//! Timelines: `step` (control steps since the recording began) and
//! `sim_time` (simulated seconds since it began); `episode` numbers the
//! episodes of a run, which are recorded one after another.

use crate::episode::{EpisodeObserver, EpisodeResult, Validator, fallback_reason};
use crate::scene::Scene;
use crossbeam::channel::{Receiver, Sender, unbounded};
use rerun::{RecordingStream, RecordingStreamBuilder};
use std::path::PathBuf;
use std::thread::JoinHandle;
use telic::objective::{GuardrailSpec, Shape, UnsatisfiableGuardrail};
use telic::{ModelSpec, ObjectiveSpec, Plan, PlanStatus, Real};

/// Where a recording goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sink {
    /// An `.rrd` file.
    File(PathBuf),
    /// A running viewer, by gRPC URL (`rerun+http://127.0.0.1:9876/proxy`
    /// when `None`).
    Connect(Option<String>),
    /// A viewer started for this run (`rerun` must be on the `PATH`).
    Spawn,
}

/// What a recording holds beyond the defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordOptions {
    /// Sampled rollouts logged per control step (the best ones); 0 for none.
    pub rollouts: usize,
}

impl Default for RecordOptions {
    fn default() -> Self {
        Self { rollouts: 10 }
    }
}

/// An error opening a recording (the run itself can go on without one).
#[derive(Debug, thiserror::Error)]
#[error("cannot record to {sink}: {message}")]
pub struct RecordError {
    /// The sink, as the user named it.
    pub sink: String,
    /// What went wrong.
    pub message: String,
}

/// A named point whose coordinates are readouts (`<point>.x`, `.y`, `.z`;
/// a missing `z` is drawn at 0).
#[derive(Clone, Debug)]
struct PointIdx {
    name: String,
    xyz: [Option<usize>; 3],
}

impl PointIdx {
    fn find(name: &str, readouts: &[String]) -> Option<Self> {
        let at = |axis: &str| readouts.iter().position(|r| *r == format!("{name}.{axis}"));
        let xyz = [at("x"), at("y"), at("z")];
        (xyz[0].is_some() && xyz[1].is_some()).then(|| Self {
            name: name.to_string(),
            xyz,
        })
    }

    fn at(&self, y: &[Real]) -> Option<[f32; 3]> {
        let get = |i: Option<usize>| i.and_then(|i| y.get(i).copied());
        let p = [
            get(self.xyz[0])?,
            get(self.xyz[1])?,
            get(self.xyz[2]).unwrap_or(0.0),
        ];
        p.iter().all(|v| v.is_finite()).then(|| p.map(|v| v as f32))
    }
}

/// The points of the objective's bodies that `readouts` locate.
fn body_points(spec: &ObjectiveSpec, readouts: &[String]) -> Vec<PointIdx> {
    let mut out: Vec<PointIdx> = Vec::new();
    for b in &spec.bodies {
        for p in &b.points {
            if out.iter().all(|q| q.name != *p)
                && let Some(idx) = PointIdx::find(p, readouts)
            {
                out.push(idx);
            }
        }
    }
    out
}

/// Geometry of one guardrail, drawn in the colour of its margin.
#[derive(Clone, Debug)]
struct GuardGeom {
    name: String,
    /// Index into the validator's margins.
    index: usize,
    /// The planner's safety buffer: inside it the colour turns orange.
    buffer: Real,
    shapes: Vec<Shape>,
}

/// Geometry of the guardrails that have some. Workspace bounds are drawn
/// within `view` (a box around the robot and its scenery, `[lower, upper]`),
/// so that a far-away bound does not shrink the robot to a dot; in a planar
/// scene (no body point has a height) they are drawn flat on the floor.
fn guard_geometry(
    spec: &ObjectiveSpec,
    names: &[String],
    planar: bool,
    view: Option<[[Real; 3]; 2]>,
) -> Vec<GuardGeom> {
    spec.guardrails
        .iter()
        .filter_map(|g| {
            let (name, buffer, shapes) = match g {
                GuardrailSpec::KeepOut {
                    name,
                    margin,
                    shape,
                    ..
                } => (name, *margin, vec![shape.clone()]),
                GuardrailSpec::Clearance {
                    name,
                    margin,
                    obstacles,
                    ..
                } => (name, *margin, obstacles.clone()),
                GuardrailSpec::Workspace {
                    name,
                    margin,
                    lower,
                    upper,
                    ..
                } => {
                    let (mut lo, mut hi) = (*lower, *upper);
                    if let Some([vl, vh]) = view {
                        for i in 0..3 {
                            lo[i] = lo[i].max(vl[i]);
                            hi[i] = hi[i].min(vh[i]).max(lo[i]);
                        }
                    }
                    let mut center = [0, 1, 2].map(|i| 0.5 * (lo[i] + hi[i]));
                    let mut half_extents = [0, 1, 2].map(|i| (0.5 * (hi[i] - lo[i])).max(0.002));
                    if planar {
                        center[2] = 0.0;
                        half_extents[2] = 0.002;
                    }
                    (
                        name,
                        *margin,
                        vec![Shape::Box {
                            center,
                            half_extents,
                            rpy: [0.0; 3],
                        }],
                    )
                }
                _ => return None,
            };
            let index = names.iter().position(|n| n == name)?;
            Some(GuardGeom {
                name: name.clone(),
                index,
                buffer,
                shapes,
            })
        })
        .collect()
}

/// One control step, as the logging thread needs it.
#[derive(Debug)]
struct StepMsg {
    step: i64,
    time: f64,
    visuals: Vec<(String, Shape)>,
    /// True positions of the body points.
    executed: Vec<(usize, [f32; 3])>,
    /// True guardrail margins of the observed state (validator order).
    margins: Vec<Real>,
    plan: Option<PlanMsg>,
}

#[derive(Debug)]
struct PlanMsg {
    /// Predicted path per body point (index into the point list).
    paths: Vec<Vec<[f32; 3]>>,
    rollouts: Vec<Vec<[f32; 3]>>,
    term_costs: Vec<Real>,
    cost: Real,
    worst_margin: Real,
    latency_ms: Real,
    status: PlanStatus,
    feasible_samples: usize,
    status_change: Option<String>,
}

#[derive(Debug)]
enum Msg {
    Start {
        episode: u64,
        seed: u64,
        step: i64,
        time: f64,
        scenery: Vec<(String, Shape)>,
        guards: Vec<GuardGeom>,
        guard_names: Vec<String>,
        term_names: Vec<String>,
        points: Vec<String>,
    },
    Step(Box<StepMsg>),
    Finish {
        step: i64,
        time: f64,
        text: String,
    },
}

/// Records episodes to a rerun sink; see the [module docs](self).
#[derive(Debug)]
pub struct Recorder {
    tx: Option<Sender<Msg>>,
    thread: Option<JoinHandle<Result<(), String>>>,
    options: RecordOptions,
    episode: u64,
    /// Steps and simulated time of the episodes recorded before this one.
    step_offset: i64,
    time_offset: f64,
    /// Body points in the planner's readouts and in the scene's true readouts.
    plan_points: Vec<PointIdx>,
    truth_points: Vec<PointIdx>,
    truth: Vec<Real>,
    margins: Vec<Real>,
    last_status: Option<PlanStatus>,
    /// Why the last plan fell back ([`fallback_reason`]).
    last_reason: Option<String>,
    /// The episode's guardrail names, and those its planner's model-error
    /// margins make unsatisfiable at some step.
    guardrails: Vec<String>,
    unsatisfiable: Vec<UnsatisfiableGuardrail>,
    pending_seed: Option<u64>,
}

impl Recorder {
    /// Opens a recording to `sink`. Errors when the file cannot be created,
    /// no viewer answers at the address, or the viewer cannot be started.
    pub fn open(sink: &Sink, options: RecordOptions) -> Result<Self, RecordError> {
        let builder = RecordingStreamBuilder::new("telic");
        let fail = |sink: &str, message: String| RecordError {
            sink: sink.to_string(),
            message,
        };
        let rec = match sink {
            Sink::File(path) => {
                let shown = path.display().to_string();
                // Fail now, with the OS's reason, rather than on a background thread.
                std::fs::File::create(path).map_err(|e| fail(&shown, e.to_string()))?;
                builder
                    .save(path)
                    .map_err(|e| fail(&shown, e.to_string()))?
            }
            Sink::Connect(url) => {
                let url = url
                    .clone()
                    .unwrap_or_else(|| "rerun+http://127.0.0.1:9876/proxy".into());
                check_reachable(&url).map_err(|m| fail(&url, m))?;
                builder
                    .connect_grpc_opts(url.clone())
                    .map_err(|e| fail(&url, e.to_string()))?
            }
            Sink::Spawn => builder.spawn().map_err(|e| {
                fail(
                    "a new viewer",
                    format!("{e} (install it with `pip install rerun-sdk==0.36.3`)"),
                )
            })?,
        };
        let (tx, rx) = unbounded();
        let thread = std::thread::Builder::new()
            .name("telic-record".into())
            .spawn(move || log_thread(&rec, &rx))
            .map_err(|e| fail("the logging thread", e.to_string()))?;
        Ok(Self {
            tx: Some(tx),
            thread: Some(thread),
            options,
            episode: 0,
            step_offset: 0,
            time_offset: 0.0,
            plan_points: Vec::new(),
            truth_points: Vec::new(),
            truth: Vec::new(),
            margins: Vec::new(),
            last_status: None,
            last_reason: None,
            guardrails: Vec::new(),
            unsatisfiable: Vec::new(),
            pending_seed: None,
        })
    }

    /// Flushes everything logged and closes the recording; reports a
    /// failure of the logging thread.
    pub fn finish(mut self) -> Result<(), RecordError> {
        self.close()
    }

    fn close(&mut self) -> Result<(), RecordError> {
        drop(self.tx.take());
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(Err(message))) => Err(RecordError {
                sink: "the recording".into(),
                message,
            }),
            Some(Err(_)) => Err(RecordError {
                sink: "the recording".into(),
                message: "the logging thread panicked".into(),
            }),
            _ => Ok(()),
        }
    }

    fn send(&mut self, msg: Msg) {
        let failed = self.tx.as_ref().is_some_and(|tx| tx.send(msg).is_err());
        if failed {
            // The logging thread ended (its error is reported by `finish`);
            // stop copying data nobody will log.
            self.tx = None;
        }
    }

    fn time(&self, scene: &dyn Scene) -> f64 {
        self.time_offset + scene.time()
    }

    /// The scene's state at `step` as a message without a plan: its moving
    /// parts, the true positions of the body points and the true margins.
    fn state_msg(&self, scene: &dyn Scene, step: i64) -> StepMsg {
        let mut visuals = Vec::new();
        scene.visuals(&mut visuals);
        let executed = self
            .truth_points
            .iter()
            .enumerate()
            .filter_map(|(i, pt)| pt.at(&self.truth).map(|p| (i, p)))
            .collect();
        StepMsg {
            step,
            time: self.time(scene),
            visuals,
            executed,
            margins: self.margins.clone(),
            plan: None,
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        if let Err(e) = self.close() {
            eprintln!("warning: {e}");
        }
    }
}

/// A quick TCP check that something listens at the host and port of `url`.
fn check_reachable(url: &str) -> Result<(), String> {
    use std::net::ToSocketAddrs;
    let rest = url.split("://").nth(1).unwrap_or(url);
    let host_port = rest.split('/').next().unwrap_or(rest);
    let addrs: Vec<_> = host_port
        .to_socket_addrs()
        .map_err(|e| format!("bad address '{host_port}': {e}"))?
        .collect();
    let timeout = std::time::Duration::from_secs(2);
    if addrs
        .iter()
        .any(|a| std::net::TcpStream::connect_timeout(a, timeout).is_ok())
    {
        Ok(())
    } else {
        Err(format!(
            "no viewer answers at {host_port} (start one with `rerun`, or use --spawn or --rrd FILE)"
        ))
    }
}

impl EpisodeObserver for Recorder {
    fn on_start(
        &mut self,
        scene: &dyn Scene,
        spec: &ObjectiveSpec,
        model: &ModelSpec,
        validator: &Validator,
    ) {
        self.plan_points = body_points(spec, &model.readouts);
        self.truth_points = body_points(spec, scene.truth_readouts());
        let planar = self.truth_points.iter().all(|p| p.xyz[2].is_none());
        self.margins = validator.margins().to_vec();
        self.truth = validator.truth().to_vec();
        self.last_status = None;
        self.last_reason = None;
        let mut scenery = Vec::new();
        scene.scenery(&mut scenery);
        let mut visuals = Vec::new();
        scene.visuals(&mut visuals);
        let view = view_box(scenery.iter().chain(&visuals).map(|(_, s)| s), 0.75);
        let guard_names = validator.names().to_vec();
        let msg = Msg::Start {
            episode: self.episode,
            seed: self.pending_seed.take().unwrap_or_default(),
            step: self.step_offset,
            time: self.time(scene),
            scenery,
            guards: guard_geometry(spec, &guard_names, planar, view),
            guard_names,
            term_names: spec.terms.iter().map(|t| t.name.clone()).collect(),
            points: self.plan_points.iter().map(|p| p.name.clone()).collect(),
        };
        self.send(msg);
    }

    fn on_reset(&mut self, _scene: &dyn Scene, objective: &telic::Objective, seed: u64) {
        // `on_reset` comes first; the seed rides on the next start message.
        self.pending_seed = Some(seed);
        self.guardrails = objective.guardrail_names().map(str::to_string).collect();
        self.unsatisfiable = objective.unsatisfiable_guardrails(usize::MAX);
    }

    fn on_plan(&mut self, scene: &dyn Scene, _obs: &[Real], plan: &Plan, step: usize) {
        if self.tx.is_none() {
            return;
        }
        let dim = readout_dim(plan);
        let paths = self
            .plan_points
            .iter()
            .map(|pt| plan.readouts.chunks(dim).filter_map(|y| pt.at(y)).collect())
            .collect();
        let k = self.options.rollouts.min(plan.rollout_costs.len());
        let per = if plan.rollout_costs.is_empty() {
            0
        } else {
            plan.rollouts.len() / plan.rollout_costs.len()
        };
        let rollouts = match self.plan_points.first() {
            Some(pt) if per > 0 => plan
                .rollouts
                .chunks(per)
                .take(k)
                .map(|r| r.chunks(dim).filter_map(|y| pt.at(y)).collect())
                .collect(),
            _ => Vec::new(),
        };
        let reason = (plan.status == PlanStatus::NoFeasiblePlan).then(|| {
            let horizon = plan.actions.len() / plan.action.len().max(1);
            let unsatisfiable: Vec<UnsatisfiableGuardrail> = self
                .unsatisfiable
                .iter()
                .filter(|u| u.step < horizon)
                .cloned()
                .collect();
            fallback_reason(plan, &self.guardrails, &unsatisfiable)
        });
        let changed = self.last_status != Some(plan.status) || self.last_reason != reason;
        let status_change = changed.then(|| match &reason {
            Some(why) => format!("no feasible plan: fallback engaged ({why})"),
            None => format!("planner status: {:?}", plan.status),
        });
        self.last_status = Some(plan.status);
        self.last_reason = reason;
        let msg = StepMsg {
            plan: Some(PlanMsg {
                paths,
                rollouts,
                term_costs: plan.term_costs.clone(),
                cost: plan.cost,
                worst_margin: plan.worst_margin(),
                latency_ms: plan.elapsed.as_secs_f64() * 1e3,
                status: plan.status,
                feasible_samples: plan.feasible_samples,
                status_change,
            }),
            ..self.state_msg(scene, self.step_offset + step as i64)
        };
        self.send(Msg::Step(Box::new(msg)));
    }

    fn on_physics_step(&mut self, _scene: &dyn Scene, truth: &[Real], margins: &[Real]) {
        self.truth.clear();
        self.truth.extend_from_slice(truth);
        self.margins.clear();
        self.margins.extend_from_slice(margins);
    }

    fn on_finish(&mut self, scene: &dyn Scene, result: &EpisodeResult) {
        // The final state: after the last step's physics, with no plan.
        let step = self.step_offset + result.control_steps as i64;
        let state = self.state_msg(scene, step);
        let time = state.time;
        self.send(Msg::Step(Box::new(state)));
        let errors: Vec<String> = result
            .final_error
            .iter()
            .map(|(n, e)| format!("{n} {e:.4}"))
            .collect();
        let fallbacks: Vec<String> = result
            .fallback_reasons
            .iter()
            .map(|(why, n)| format!("{why} {n}"))
            .collect();
        let text = format!(
            "episode {} (seed {}) {} after {:.2} s; final error {}; {} true violation steps",
            self.episode,
            result.seed,
            if result.success {
                "succeeded"
            } else {
                "failed"
            },
            result.duration,
            errors.join(", "),
            result.violation_steps
        );
        self.send(Msg::Finish { step, time, text });
        // Each on a line of its own, so that none is cut off.
        if result.fallback_steps > 0 {
            let text = format!(
                "{} fallback steps: {}",
                result.fallback_steps,
                fallbacks.join(", ")
            );
            self.send(Msg::Finish { step, time, text });
        }
        for warning in &result.planner_warnings {
            let text = format!("planner warning: {warning}");
            self.send(Msg::Finish { step, time, text });
        }
        self.episode += 1;
        self.step_offset = step + 1;
        self.time_offset = time;
    }
}

/// The box around the centres of `shapes`, grown by `pad` on every side
/// (`None` without shapes).
fn view_box<'a>(shapes: impl Iterator<Item = &'a Shape>, pad: Real) -> Option<[[Real; 3]; 2]> {
    let mut out: Option<[[Real; 3]; 2]> = None;
    for s in shapes {
        let (c, r) = match s {
            Shape::Box {
                center,
                half_extents,
                ..
            } => (*center, half_extents.iter().copied().fold(0.0, Real::max)),
            Shape::Sphere { center, radius } => (*center, *radius),
            Shape::Capsule { a, b, radius } => ([0, 1, 2].map(|i| 0.5 * (a[i] + b[i])), *radius),
            Shape::Cylinder {
                center,
                radius,
                half_height,
            } => (*center, radius.max(*half_height)),
        };
        let [lo, hi] = out.get_or_insert([c, c]);
        for i in 0..3 {
            lo[i] = lo[i].min(c[i] - r - pad);
            hi[i] = hi[i].max(c[i] + r + pad);
        }
    }
    out
}

/// Readouts per predicted step of `plan`.
fn readout_dim(plan: &Plan) -> usize {
    let h = plan.actions.len() / plan.action.len().max(1);
    (plan.readouts.len() / h.max(1)).max(1)
}

const GREEN: [u8; 4] = [60, 180, 75, 110];
const ORANGE: [u8; 4] = [240, 150, 30, 160];
const RED: [u8; 4] = [230, 40, 40, 200];
const ROBOT: [u8; 4] = [90, 120, 200, 255];
const OBJECT: [u8; 4] = [200, 150, 90, 255];
const SCENERY: [u8; 4] = [170, 170, 170, 120];
const GOAL: [u8; 4] = [60, 200, 200, 160];
const PLAN: [u8; 4] = [250, 230, 40, 255];
const EXECUTED: [u8; 4] = [255, 255, 255, 255];

fn margin_colour(margin: Real, buffer: Real) -> [u8; 4] {
    if !(margin >= 0.0) {
        RED
    } else if margin < buffer {
        ORANGE
    } else {
        GREEN
    }
}

/// Green (best) to red (worst) over `n` ranked rollouts.
fn rank_colour(i: usize, n: usize) -> [u8; 4] {
    let t = if n > 1 {
        i as f32 / (n - 1) as f32
    } else {
        0.0
    };
    [(60.0 + 190.0 * t) as u8, (200.0 - 150.0 * t) as u8, 60, 140]
}

fn quat_from_rpy(rpy: [Real; 3]) -> [f32; 4] {
    let (sr, cr) = (0.5 * rpy[0]).sin_cos();
    let (sp, cp) = (0.5 * rpy[1]).sin_cos();
    let (sy, cy) = (0.5 * rpy[2]).sin_cos();
    // R = Rz(yaw) · Ry(pitch) · Rx(roll), as xyzw.
    [
        (sr * cp * cy - cr * sp * sy) as f32,
        (cr * sp * cy + sr * cp * sy) as f32,
        (cr * cp * sy - sr * sp * cy) as f32,
        (cr * cp * cy + sr * sp * sy) as f32,
    ]
}

fn f3(p: [Real; 3]) -> [f32; 3] {
    p.map(|v| v as f32)
}

/// Logs `shape` at `path` in `colour`.
fn log_shape(
    rec: &RecordingStream,
    path: &str,
    shape: &Shape,
    colour: [u8; 4],
    static_: bool,
) -> rerun::RecordingStreamResult<()> {
    let c = rerun::Color::from_unmultiplied_rgba(colour[0], colour[1], colour[2], colour[3]);
    match shape {
        Shape::Box {
            center,
            half_extents,
            rpy,
        } => rec.log_with_static(
            path,
            static_,
            &rerun::Boxes3D::from_centers_and_half_sizes([f3(*center)], [f3(*half_extents)])
                .with_quaternions([rerun::Quaternion::from_xyzw(quat_from_rpy(*rpy))])
                .with_colors([c]),
        ),
        Shape::Sphere { center, radius } => rec.log_with_static(
            path,
            static_,
            &rerun::Ellipsoids3D::from_centers_and_radii([f3(*center)], [*radius as f32])
                .with_colors([c]),
        ),
        Shape::Capsule { a, b, radius } => rec.log_with_static(
            path,
            static_,
            &rerun::Capsules3D::from_endpoints_and_radii([f3(*a)], [f3(*b)], [*radius as f32])
                .with_colors([c]),
        ),
        Shape::Cylinder {
            center,
            radius,
            half_height,
        } => rec.log_with_static(
            path,
            static_,
            &rerun::Cylinders3D::from_lengths_and_radii(
                [2.0 * *half_height as f32],
                [*radius as f32],
            )
            .with_centers([f3(*center)])
            .with_colors([c]),
        ),
    }
}

/// What the logging thread keeps between messages.
#[derive(Default)]
struct LogState {
    guards: Vec<GuardGeom>,
    guard_names: Vec<String>,
    term_names: Vec<String>,
    points: Vec<String>,
    /// The executed path of each body point in this episode.
    executed: Vec<Vec<[f32; 3]>>,
}

/// The default view: the 3D world beside time series of costs, margins and
/// planner health, and the status log.
fn blueprint() -> rerun::blueprint::Blueprint {
    use rerun::blueprint::{
        Blueprint, Horizontal, Spatial3DView, TextLogView, TimeSeriesView, Vertical,
    };
    Blueprint::new(
        Horizontal::new([
            Spatial3DView::new("world").with_origin("/world").into(),
            Vertical::new([
                TimeSeriesView::new("cost terms")
                    .with_origin("/costs")
                    .into(),
                TimeSeriesView::new("true guardrail margins")
                    .with_origin("/margins")
                    .into(),
                TimeSeriesView::new("planner").with_origin("/plan").into(),
                TextLogView::new("log").with_origin("/log").into(),
            ])
            .into(),
        ])
        .with_column_shares([0.6, 0.4]),
    )
}

fn log_thread(rec: &RecordingStream, rx: &Receiver<Msg>) -> Result<(), String> {
    let mut state = LogState::default();
    let mut first_error: Option<String> = None;
    if let Err(e) = blueprint().send(rec, rerun::blueprint::BlueprintActivation::default()) {
        first_error = Some(e.to_string());
    }
    for msg in rx {
        if let Err(e) = log_msg(rec, &mut state, msg)
            && first_error.is_none()
        {
            first_error = Some(e.to_string());
        }
    }
    if let Err(e) = rec.flush_blocking() {
        first_error.get_or_insert(e.to_string());
    }
    first_error.map_or(Ok(()), Err)
}

fn set_time(rec: &RecordingStream, step: i64, time: f64) {
    rec.set_time_sequence("step", step);
    rec.set_duration_secs("sim_time", time);
}

fn log_msg(rec: &RecordingStream, st: &mut LogState, msg: Msg) -> rerun::RecordingStreamResult<()> {
    match msg {
        Msg::Start {
            episode,
            seed,
            step,
            time,
            scenery,
            guards,
            guard_names,
            term_names,
            points,
        } => {
            set_time(rec, step, time);
            rec.set_time_sequence("episode", episode as i64);
            // A new episode: clear what the last one drew.
            rec.log("world", &rerun::Clear::recursive())?;
            for (name, shape) in &scenery {
                let colour = if name == "goal" { GOAL } else { SCENERY };
                log_shape(rec, &format!("world/scene/{name}"), shape, colour, false)?;
            }
            rec.log(
                "log",
                &rerun::TextLog::new(format!("episode {episode} (seed {seed}) starts"))
                    .with_level(rerun::TextLogLevel::INFO),
            )?;
            st.guards = guards;
            st.guard_names = guard_names;
            st.term_names = term_names;
            st.executed = vec![Vec::new(); points.len()];
            st.points = points;
        }
        Msg::Step(m) => {
            set_time(rec, m.step, m.time);
            for (name, shape) in &m.visuals {
                let colour = if name.starts_with("link")
                    || name == "robot"
                    || name == "pusher"
                    || name == "heading"
                {
                    ROBOT
                } else {
                    OBJECT
                };
                log_shape(rec, &format!("world/robot/{name}"), shape, colour, false)?;
            }
            for g in &st.guards {
                let m_g = m.margins.get(g.index).copied().unwrap_or(Real::NAN);
                let colour = margin_colour(m_g, g.buffer);
                if let [shape] = g.shapes.as_slice() {
                    log_shape(
                        rec,
                        &format!("world/guardrails/{}", g.name),
                        shape,
                        colour,
                        false,
                    )?;
                } else {
                    for (i, shape) in g.shapes.iter().enumerate() {
                        log_shape(
                            rec,
                            &format!("world/guardrails/{}/{i}", g.name),
                            shape,
                            colour,
                            false,
                        )?;
                    }
                }
            }
            for (name, value) in st.guard_names.iter().zip(&m.margins) {
                rec.log(format!("margins/{name}"), &rerun::Scalars::single(*value))?;
            }
            for (i, p) in &m.executed {
                if let Some(path) = st.executed.get_mut(*i) {
                    path.push(*p);
                }
            }
            for (name, path) in st.points.iter().zip(&st.executed) {
                if path.len() > 1 {
                    rec.log(
                        format!("world/executed/{name}"),
                        &rerun::LineStrips3D::new([path.clone()]).with_colors([
                            rerun::Color::from_unmultiplied_rgba(
                                EXECUTED[0],
                                EXECUTED[1],
                                EXECUTED[2],
                                EXECUTED[3],
                            ),
                        ]),
                    )?;
                }
            }
            if let Some(plan) = m.plan {
                log_plan(rec, st, &plan)?;
            }
        }
        Msg::Finish { step, time, text } => {
            set_time(rec, step, time);
            rec.log(
                "log",
                &rerun::TextLog::new(text).with_level(rerun::TextLogLevel::INFO),
            )?;
        }
    }
    Ok(())
}

fn log_plan(
    rec: &RecordingStream,
    st: &LogState,
    plan: &PlanMsg,
) -> rerun::RecordingStreamResult<()> {
    let colour = |c: [u8; 4]| rerun::Color::from_unmultiplied_rgba(c[0], c[1], c[2], c[3]);
    for (name, path) in st.points.iter().zip(&plan.paths) {
        rec.log(
            format!("world/plan/{name}"),
            &rerun::LineStrips3D::new([path.clone()]).with_colors([colour(PLAN)]),
        )?;
    }
    let n = plan.rollouts.len();
    rec.log(
        "world/rollouts",
        &rerun::LineStrips3D::new(plan.rollouts.clone())
            .with_colors((0..n).map(|i| colour(rank_colour(i, n)))),
    )?;
    for (name, value) in st.term_names.iter().zip(&plan.term_costs) {
        rec.log(format!("costs/{name}"), &rerun::Scalars::single(*value))?;
    }
    rec.log("costs/total", &rerun::Scalars::single(plan.cost))?;
    rec.log(
        "plan/worst_margin",
        &rerun::Scalars::single(plan.worst_margin),
    )?;
    rec.log("plan/latency_ms", &rerun::Scalars::single(plan.latency_ms))?;
    rec.log(
        "plan/feasible_samples",
        &rerun::Scalars::single(plan.feasible_samples as f64),
    )?;
    let code = match plan.status {
        PlanStatus::Converged => 0.0,
        PlanStatus::Completed => 1.0,
        PlanStatus::OutOfTime => 2.0,
        PlanStatus::NoFeasiblePlan => 3.0,
    };
    rec.log("plan/status", &rerun::Scalars::single(code))?;
    if let Some(text) = &plan.status_change {
        let level = if plan.status == PlanStatus::NoFeasiblePlan {
            rerun::TextLogLevel::WARN
        } else {
            rerun::TextLogLevel::INFO
        };
        rec.log("log", &rerun::TextLog::new(text.as_str()).with_level(level))?;
    }
    Ok(())
}
