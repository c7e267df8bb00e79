//! The logging thread: turns the recorder's messages into rerun entities,
//! so that the planning thread never waits on logging.

use super::geometry::{
    EXECUTED, GOAL, GuardGeom, OBJECT, PLAN, ROBOT, SCENERY, log_shape, rank_colour,
};
use crossbeam::channel::Receiver;
use rerun::RecordingStream;
use telic::objective::Shape;
use telic::{PlanStatus, Real};

/// One control step, as the logging thread needs it.
#[derive(Debug)]
pub(super) struct StepMsg {
    pub(super) step: i64,
    pub(super) time: f64,
    pub(super) visuals: Vec<(String, Shape)>,
    /// True positions of the body points.
    pub(super) executed: Vec<(usize, [f32; 3])>,
    /// True guardrail margins of the observed state (validator order).
    pub(super) margins: Vec<Real>,
    pub(super) plan: Option<PlanMsg>,
}

#[derive(Debug)]
pub(super) struct PlanMsg {
    /// Predicted path per body point (index into the point list).
    pub(super) paths: Vec<Vec<[f32; 3]>>,
    pub(super) rollouts: Vec<Vec<[f32; 3]>>,
    pub(super) term_costs: Vec<Real>,
    pub(super) cost: Real,
    pub(super) worst_margin: Real,
    pub(super) latency_ms: Real,
    pub(super) status: PlanStatus,
    pub(super) feasible_samples: usize,
    pub(super) status_change: Option<String>,
}

#[derive(Debug)]
pub(super) enum Msg {
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

pub(super) fn log_thread(rec: &RecordingStream, rx: &Receiver<Msg>) -> Result<(), String> {
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
                g.log(rec, &m.margins)?;
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
