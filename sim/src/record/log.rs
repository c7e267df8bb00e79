//! The logging thread: turns the recorder's messages into rerun entities,
//! so that the planning thread never waits on logging.

use super::geometry::{
    BELIEF, EXECUTED, GOAL, GuardGeom, OBJECT, PLAN, ROBOT, SCENERY, TRUTH, log_shape, rank_colour,
};
use crate::scene::camera::ImageSize;
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
    /// True positions of the body points (index into the truth's points).
    pub(super) executed: Vec<(usize, [f32; 3])>,
    /// The camera image, C×H×W RGB; `None` when it could not be rendered.
    pub(super) image: Option<Vec<u8>>,
    /// Why the camera failed, the first time it did in an episode.
    pub(super) camera_error: Option<String>,
    /// True values of the readouts the model also has (the start's `readouts`).
    pub(super) truth: Vec<Real>,
    /// True guardrail margins of the observed state (validator order).
    pub(super) margins: Vec<Real>,
    pub(super) plan: Option<PlanMsg>,
}

#[derive(Debug)]
pub(super) struct PlanMsg {
    /// Predicted path per body point (index into the point list).
    pub(super) paths: Vec<Vec<[f32; 3]>>,
    /// The readouts decoded from the observation, paired with `truth` of the
    /// step (the start's `readouts`).
    pub(super) believed: Vec<Real>,
    /// Body points where the model decoded them (index into the point list).
    pub(super) believed_points: Vec<(usize, [f32; 3])>,
    /// Moving parts at the pose the model decoded.
    pub(super) believed_shapes: Vec<(String, Shape)>,
    pub(super) rollouts: Vec<Vec<[f32; 3]>>,
    pub(super) term_costs: Vec<Real>,
    pub(super) cost: Real,
    pub(super) worst_margin: Real,
    pub(super) latency_ms: Real,
    pub(super) status: PlanStatus,
    pub(super) feasible_samples: usize,
    pub(super) status_change: Option<String>,
}

/// The start of an episode.
#[derive(Debug)]
pub(super) struct Start {
    pub(super) episode: u64,
    pub(super) seed: u64,
    pub(super) step: i64,
    pub(super) time: f64,
    pub(super) scenery: Vec<(String, Shape)>,
    pub(super) guards: Vec<GuardGeom>,
    pub(super) guard_names: Vec<String>,
    pub(super) term_names: Vec<String>,
    /// Body points the model's readouts locate.
    pub(super) points: Vec<String>,
    /// Body points the true readouts locate.
    pub(super) truth_points: Vec<String>,
    /// Readouts both the model and the truth name.
    pub(super) readouts: Vec<String>,
    pub(super) camera: ImageSize,
}

#[derive(Debug)]
pub(super) enum Msg {
    Start(Box<Start>),
    Step(Box<StepMsg>),
    Finish { step: i64, time: f64, text: String },
}

/// What the logging thread keeps between messages.
#[derive(Default)]
struct LogState {
    guards: Vec<GuardGeom>,
    guard_names: Vec<String>,
    term_names: Vec<String>,
    points: Vec<String>,
    truth_points: Vec<String>,
    readouts: Vec<String>,
    camera: ImageSize,
    /// The executed path of each true body point in this episode.
    executed: Vec<Vec<[f32; 3]>>,
    /// The camera image as H×W×3, reused.
    hwc: Vec<u8>,
}

/// The default view: the 3D world above the camera image, beside time
/// series of costs, margins, belief vs truth and planner health, and the
/// status log; the side panels collapsed, so that the views get the room.
fn blueprint() -> rerun::blueprint::Blueprint {
    use rerun::blueprint::components::PanelState;
    use rerun::blueprint::{
        Blueprint, BlueprintPanel, Horizontal, SelectionPanel, Spatial2DView, Spatial3DView,
        TextLogView, TimePanel, TimeSeriesView, Vertical,
    };
    Blueprint::new(
        Horizontal::new([
            Vertical::new([
                Spatial3DView::new("world").with_origin("/world").into(),
                Spatial2DView::new("camera").with_origin("/camera").into(),
            ])
            .with_row_shares([0.65, 0.35])
            .into(),
            Vertical::new([
                TimeSeriesView::new("cost terms")
                    .with_origin("/costs")
                    .into(),
                TimeSeriesView::new("true guardrail margins")
                    .with_origin("/margins")
                    .into(),
                TimeSeriesView::new("belief vs truth")
                    .with_contents(["/belief/**", "/truth/**"])
                    .into(),
                TimeSeriesView::new("planner").with_origin("/plan").into(),
                TextLogView::new("log").with_origin("/log").into(),
            ])
            .into(),
        ])
        .with_column_shares([0.6, 0.4]),
    )
    .with_blueprint_panel(BlueprintPanel::from_state(PanelState::Collapsed))
    .with_selection_panel(SelectionPanel::from_state(PanelState::Collapsed))
    .with_time_panel(
        TimePanel::new()
            .with_state(PanelState::Collapsed)
            .with_timeline("step"),
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
        Msg::Start(start) => log_start(rec, st, *start),
        Msg::Step(m) => log_step(rec, st, *m),
        Msg::Finish { step, time, text } => {
            set_time(rec, step, time);
            rec.log(
                "log",
                &rerun::TextLog::new(text).with_level(rerun::TextLogLevel::INFO),
            )
        }
    }
}

fn log_start(
    rec: &RecordingStream,
    st: &mut LogState,
    m: Start,
) -> rerun::RecordingStreamResult<()> {
    set_time(rec, m.step, m.time);
    rec.set_time_sequence("episode", m.episode as i64);
    // A new episode: clear what the last one drew.
    rec.log("world", &rerun::Clear::recursive())?;
    for (name, shape) in &m.scenery {
        let colour = if name == "goal" { GOAL } else { SCENERY };
        log_shape(rec, &format!("world/scene/{name}"), shape, colour, false)?;
    }
    rec.log(
        "log",
        &rerun::TextLog::new(format!("episode {} (seed {}) starts", m.episode, m.seed))
            .with_level(rerun::TextLogLevel::INFO),
    )?;
    st.guards = m.guards;
    st.guard_names = m.guard_names;
    st.term_names = m.term_names;
    st.executed = vec![Vec::new(); m.truth_points.len()];
    st.points = m.points;
    st.truth_points = m.truth_points;
    st.readouts = m.readouts;
    st.camera = m.camera;
    Ok(())
}

fn log_step(
    rec: &RecordingStream,
    st: &mut LogState,
    m: StepMsg,
) -> rerun::RecordingStreamResult<()> {
    set_time(rec, m.step, m.time);
    for (name, shape) in &m.visuals {
        let colour =
            if name.starts_with("link") || name == "robot" || name == "pusher" || name == "heading"
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
    for (name, value) in st.readouts.iter().zip(&m.truth) {
        rec.log(format!("truth/{name}"), &rerun::Scalars::single(*value))?;
    }
    for (i, p) in &m.executed {
        if let (Some(path), Some(name)) = (st.executed.get_mut(*i), st.truth_points.get(*i)) {
            path.push(*p);
            log_point(rec, &format!("world/truth/{name}"), *p, TRUTH)?;
        }
    }
    for (name, path) in st.truth_points.iter().zip(&st.executed) {
        if path.len() > 1 {
            rec.log(
                format!("world/executed/{name}"),
                &rerun::LineStrips3D::new([path.clone()]).with_colors([colour(EXECUTED)]),
            )?;
        }
    }
    if let Some(image) = &m.image {
        log_image(rec, st, image)?;
    }
    if let Some(text) = &m.camera_error {
        rec.log(
            "log",
            &rerun::TextLog::new(text.as_str()).with_level(rerun::TextLogLevel::WARN),
        )?;
    }
    if let Some(plan) = m.plan {
        log_plan(rec, st, &plan)?;
        log_belief(rec, st, &plan)?;
    }
    Ok(())
}

fn colour(c: [u8; 4]) -> rerun::Color {
    rerun::Color::from_unmultiplied_rgba(c[0], c[1], c[2], c[3])
}

/// Logs one point at `path` as a small ball.
fn log_point(
    rec: &RecordingStream,
    path: &str,
    p: [f32; 3],
    c: [u8; 4],
) -> rerun::RecordingStreamResult<()> {
    rec.log(
        path,
        &rerun::Points3D::new([p])
            .with_radii([0.012])
            .with_colors([colour(c)]),
    )
}

/// Logs the C×H×W camera image as the H×W×3 image rerun shows.
fn log_image(
    rec: &RecordingStream,
    st: &mut LogState,
    image: &[u8],
) -> rerun::RecordingStreamResult<()> {
    let (w, h) = (st.camera.width(), st.camera.height());
    let plane = w * h;
    if image.len() != 3 * plane {
        return Ok(());
    }
    st.hwc.resize(3 * plane, 0);
    for (k, px) in st.hwc.chunks_exact_mut(3).enumerate() {
        for (c, v) in px.iter_mut().enumerate() {
            *v = image[c * plane + k];
        }
    }
    rec.log(
        "camera/image",
        &rerun::Image::from_rgb24(st.hwc.clone(), [w as u32, h as u32]),
    )
}

/// Logs what the model decoded from the observation: the paired readouts
/// as scalars, the body points and the moving parts in the 3D view.
fn log_belief(
    rec: &RecordingStream,
    st: &LogState,
    plan: &PlanMsg,
) -> rerun::RecordingStreamResult<()> {
    for (name, value) in st.readouts.iter().zip(&plan.believed) {
        rec.log(format!("belief/{name}"), &rerun::Scalars::single(*value))?;
    }
    for (i, p) in &plan.believed_points {
        if let Some(name) = st.points.get(*i) {
            log_point(rec, &format!("world/belief/{name}"), *p, BELIEF)?;
        }
    }
    for (name, shape) in &plan.believed_shapes {
        log_shape(
            rec,
            &format!("world/belief/shapes/{name}"),
            shape,
            BELIEF,
            false,
        )?;
    }
    Ok(())
}

fn log_plan(
    rec: &RecordingStream,
    st: &LogState,
    plan: &PlanMsg,
) -> rerun::RecordingStreamResult<()> {
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
