//! Recordings of episodes for the [rerun](https://rerun.io) viewer: what the
//! robot imagined and what it did.
//!
//! A [`Recorder`] is an [`EpisodeObserver`]: per control step it copies the
//! plan, the scene's moving parts, the camera image and the true guardrail
//! margins into a message, and a logging thread turns the messages into
//! rerun entities, so the planning thread never waits on logging. Entity
//! layout:
//!
//! | entity | what |
//! |---|---|
//! | `world/scene/*` | fixed scenery and the episode's goal |
//! | `world/robot/*` | robot links and objects, as 3D shapes |
//! | `world/guardrails/<name>` | keep-out volumes, obstacles, workspace bounds, coloured by the true margin (green: clear of the buffer, orange: inside it, red: violated) |
//! | `world/plan/<point>` | the chosen plan's predicted path of each body point |
//! | `world/rollouts` | the best sampled rollouts of the last iteration, coloured by cost |
//! | `world/executed/<point>` | the path each body point really took |
//! | `world/belief/<point>`, `world/truth/<point>` | each body point where the model decoded it from the observation ([`Plan::decoded`]) and where it was |
//! | `world/belief/shapes/<part>` | a moving part (the push box, the pusher) drawn at the pose the model decoded, when its readouts name it (`<part>.x`, `.y`, and `.cos`/`.sin` or `.yaw`) |
//! | `camera/image` | the scene's camera image ([`World::render`], of [`RecordOptions::camera`]'s size), in every observation mode |
//! | `belief/<readout>`, `truth/<readout>` | each readout the model and the scene's truth both name (box pose, clearance, …): what the robot believed beside what was |
//! | `costs/<term>`, `costs/total` | the chosen plan's cost per term |
//! | `margins/<guardrail>` | the true margin of the observed state (the validator's value) |
//! | `plan/worst_margin`, `plan/latency_ms`, `plan/status`, `plan/feasible_samples` | planner health |
//! | `log` | status changes (fallback engaged, no feasible plan), episode start and end |
//!
//! Timelines: `step` (control steps since the recording began) and
//! `sim_time` (simulated seconds since it began); `episode` numbers the
//! episodes of a run, which are recorded one after another.

mod belief;
mod geometry;
mod log;

use crate::episode::{EpisodeObserver, EpisodeResult, Validator, fallback_reason};
use crate::scene::World;
use crate::scene::camera::{Camera, ImageSize};
use belief::Belief;
use crossbeam::channel::{Sender, unbounded};
use geometry::{BodyPoint, body_points, guard_geometry, view_box};
use log::{Msg, PlanMsg, Start, StepMsg, log_thread};
use rerun::RecordingStreamBuilder;
use std::path::PathBuf;
use std::thread::JoinHandle;
use telic::objective::{ReadoutSchema, UnsatisfiableGuardrail};
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
    /// Default 10.
    pub rollouts: usize,
    /// Size of the camera image logged per control step: the scenario's
    /// camera size, so that the recording shows what a pixel model sees.
    /// Default 64×64.
    pub camera: ImageSize,
}

impl Default for RecordOptions {
    fn default() -> Self {
        Self {
            rollouts: 10,
            camera: ImageSize::default(),
        }
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
    plan_points: Vec<BodyPoint>,
    truth_points: Vec<BodyPoint>,
    truth: Vec<Real>,
    margins: Vec<Real>,
    /// The camera and the image it renders into, reused every step.
    camera: Camera,
    image: Vec<u8>,
    /// Whether rendering failed this episode (said once in the log).
    camera_failed: bool,
    belief: Belief,
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
        let camera = Camera::new(options.camera).map_err(|e| fail("the camera", e.to_string()))?;
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
            image: vec![0; camera.size().bytes()],
            camera,
            camera_failed: false,
            belief: Belief::default(),
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

    fn time(&self, scene: &dyn World) -> f64 {
        self.time_offset + scene.time()
    }

    /// The scene's state at `step` as a message without a plan: its moving
    /// parts, its camera image, the true positions of the body points, the
    /// true readouts the model also has and the true margins.
    fn state_msg(&mut self, scene: &dyn World, step: i64) -> StepMsg {
        let mut visuals = Vec::new();
        scene.visuals(&mut visuals);
        let executed = self
            .truth_points
            .iter()
            .enumerate()
            .filter_map(|(i, pt)| pt.at(&self.truth).map(|p| (i, p)))
            .collect();
        let (image, camera_error) = match scene.render(&mut self.camera, &mut self.image) {
            Ok(()) => (Some(self.image.clone()), None),
            Err(e) if !self.camera_failed => {
                self.camera_failed = true;
                (None, Some(format!("no camera image: {e}")))
            }
            Err(_) => (None, None),
        };
        StepMsg {
            step,
            time: self.time(scene),
            visuals,
            executed,
            image,
            camera_error,
            truth: self.belief.true_values(&self.truth),
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
        scene: &dyn World,
        spec: &ObjectiveSpec,
        model: &ModelSpec,
        validator: &Validator,
    ) {
        self.plan_points = body_points(spec, &ReadoutSchema::from(model));
        self.truth_points = body_points(spec, &ReadoutSchema::truth(scene.truth_readouts(), 0));
        let planar = self.truth_points.iter().all(|p| !p.has_z());
        self.margins = validator.margins().to_vec();
        self.truth = validator.truth().to_vec();
        self.last_status = None;
        self.last_reason = None;
        let mut scenery = Vec::new();
        scene.scenery(&mut scenery);
        let mut visuals = Vec::new();
        scene.visuals(&mut visuals);
        let view = view_box(scenery.iter().chain(&visuals).map(|(_, s)| s), 0.75);
        self.belief = Belief::new(model, scene.truth_readouts(), &visuals);
        self.camera_failed = false;
        let guard_names = validator.names().to_vec();
        let names = |points: &[BodyPoint]| points.iter().map(|p| p.name().to_string()).collect();
        let msg = Start {
            episode: self.episode,
            seed: self.pending_seed.take().unwrap_or_default(),
            step: self.step_offset,
            time: self.time(scene),
            scenery,
            guards: guard_geometry(spec, &guard_names, planar, view),
            guard_names,
            term_names: spec.terms.iter().map(|t| t.name.clone()).collect(),
            points: names(&self.plan_points),
            truth_points: names(&self.truth_points),
            readouts: self.belief.names().to_vec(),
            camera: self.options.camera,
        };
        self.send(Msg::Start(Box::new(msg)));
    }

    fn on_reset(&mut self, _scene: &dyn World, objective: &telic::Objective, seed: u64) {
        // `on_reset` comes first; the seed rides on the next start message.
        self.pending_seed = Some(seed);
        self.guardrails = objective.guardrail_names().map(str::to_string).collect();
        self.unsatisfiable = objective.unsatisfiable_guardrails(usize::MAX);
    }

    fn on_plan(&mut self, scene: &dyn World, _obs: &[Real], plan: &Plan, step: usize) {
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
        let state = self.state_msg(scene, self.step_offset + step as i64);
        let believed_points = self
            .plan_points
            .iter()
            .enumerate()
            .filter_map(|(i, pt)| pt.at(&plan.decoded).map(|p| (i, p)))
            .collect();
        let msg = StepMsg {
            plan: Some(PlanMsg {
                believed: self.belief.believed(&plan.decoded),
                believed_points,
                believed_shapes: self.belief.shapes(&plan.decoded, &state.visuals),
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
            ..state
        };
        self.send(Msg::Step(Box::new(msg)));
    }

    fn on_physics_step(&mut self, _scene: &dyn World, truth: &[Real], margins: &[Real]) {
        self.truth.clear();
        self.truth.extend_from_slice(truth);
        self.margins.clear();
        self.margins.extend_from_slice(margins);
    }

    fn on_finish(&mut self, scene: &dyn World, result: &EpisodeResult) {
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

/// Readouts per predicted step of `plan`.
fn readout_dim(plan: &Plan) -> usize {
    let h = plan.actions.len() / plan.action.len().max(1);
    (plan.readouts.len() / h.max(1)).max(1)
}
