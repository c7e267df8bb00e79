//! `telic run`: episodes of a scene, their results and summary, and
//! optionally a recording or the controller in the loop.

use super::output::{Ending, Interrupt, RunOutput, check_outputs, lock, quit_interrupted};
use super::{jobs, progress_bar};
use crate::batch::{BatchEnd, Episodes, run_episodes, run_episodes_observed};
use crate::episode::{EpisodeResult, Summary, episode_seed};
use crate::limits;
use crate::perturb::Level;
use crate::scenario::{Ablation, GoalSource, ModelChoice, ObservationMode, Scenario};
use anyhow::{Result, bail};
use indicatif::ProgressBar;
use std::path::PathBuf;
use telic::PlannerKind;

#[derive(clap::Args, Debug)]
pub(crate) struct RunArgs {
    /// Scene name (`reach`, `navigate`) or path to a scenario .toml file.
    scene: String,
    /// Number of episodes.
    #[arg(long, default_value_t = 20)]
    episodes: usize,
    /// Seed of the run; episode i uses a seed derived from it.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Planner: mppi, cem or gradient (default: the scenario's).
    #[arg(long)]
    planner: Option<PlannerKind>,
    /// World model: `analytic`, a bundle folder, or `default` (the scene's
    /// shipped bundle in models/ when there is one, else analytic).
    #[arg(long)]
    model: Option<ModelChoice>,
    /// What the planner observes: `state` (the scene's state), `pixels`
    /// (the camera image) or `pixels+proprio` (the image and the robot's
    /// own state); default: the scenario's `[observation] mode`. The pixel
    /// modes need a world model that reads images (a v2 bundle): a shipped
    /// scene observed through its camera runs its shipped pixel scenario
    /// (`push` → `push_pixels.toml`) when there is one.
    #[arg(long, value_name = "MODE")]
    obs: Option<ObservationMode>,
    /// Leave `margins` (a learned model's error margins) or `guardrails`
    /// (all of them) out of the planner's objective, to measure what they
    /// do (`[episode] ablate`); the validator judges every guardrail as
    /// always.
    #[arg(long, value_name = "WHAT")]
    ablate: Option<Ablation>,
    /// Perturb every episode's world: `none`, `mild`, `moderate` or
    /// `severe` (masses, frictions, actuator gains, actuation delay,
    /// observation noise and dropouts, image noise and lighting, drawn per
    /// episode from its seed; `[perturb] level`, whose other settings are
    /// kept). The validator judges the true, perturbed state.
    #[arg(long, value_name = "LEVEL")]
    perturb: Option<Level>,
    /// Where the planner's goals come from: `targets` (the scene's goal
    /// values) or `observation` (the goal as the robot would be shown it:
    /// in the pixel modes the camera image of the goal, whose decoded
    /// readouts become the targets); default: the scenario's `[episode] goal`.
    #[arg(long, value_name = "FROM")]
    goal: Option<GoalSource>,
    /// Override the planner's samples per iteration.
    #[arg(long)]
    samples: Option<usize>,
    /// Override the planner's horizon.
    #[arg(long)]
    horizon: Option<usize>,
    /// Episodes run in parallel (default: the number of cores; 1 to 256).
    #[arg(long)]
    jobs: Option<usize>,
    /// Write per-episode results and the summary as JSON to this file
    /// (written whole at the end; meanwhile each finished episode is
    /// appended to FILE.partial.jsonl, kept if the run does not complete).
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Finish the interrupted run whose --json FILE is given: run only the
    /// episodes missing from FILE.partial.jsonl (same per-episode results).
    #[arg(long, requires = "json")]
    resume: bool,
    /// Record the episodes for the rerun viewer into this .rrd file
    /// (episodes then run one after another).
    #[arg(long, value_name = "FILE")]
    rrd: Option<PathBuf>,
    /// Stream the episodes to a running rerun viewer (default address
    /// rerun+http://127.0.0.1:9876/proxy).
    #[arg(long, value_name = "URL", num_args = 0..=1, default_missing_value = "")]
    connect: Option<String>,
    /// Start a rerun viewer and stream the episodes to it (`rerun` must be
    /// installed: pip install rerun-sdk==0.36.3).
    #[arg(long)]
    spawn: bool,
    /// Sampled rollouts recorded per control step, best first.
    #[arg(long, default_value_t = 10)]
    record_rollouts: usize,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
    /// Run in real time with the controller in the loop: the scene advances
    /// one control period per period of wall-clock time and takes whatever
    /// action the controller has ready while its planner thread re-plans
    /// (episodes one after another).
    #[arg(long)]
    controller: bool,
    /// ONNX Runtime threads per operator of a learned model (default: the
    /// scenario's `model_threads`, 1; 0 = every core).
    #[arg(long)]
    model_threads: Option<usize>,
    /// Rollout threads of the planner (`planner.threads`: analytic models
    /// roll out on this many cores; the plans do not change).
    #[arg(long)]
    threads: Option<usize>,
    /// Override the planner's iterations per plan.
    #[arg(long)]
    iterations: Option<usize>,
    /// With --controller: the oldest plan acted on (ms since its
    /// observation); older plans give the fallback.
    #[arg(long, default_value_t = 100.0)]
    max_plan_age_ms: f64,
}

/// The episodes run at once and the scenario of this run: the scene's with
/// the command line's overrides, checked.
fn configure(args: &RunArgs) -> Result<(usize, Scenario)> {
    if args.episodes == 0 {
        bail!("--episodes must be at least 1");
    }
    limits::check(
        "command line",
        "--episodes",
        args.episodes,
        limits::MAX_EPISODES,
    )?;
    let jobs = jobs(args.jobs)?;
    let mut scenario = Scenario::load_observing(&args.scene, args.obs)?;
    if let Some(kind) = args.planner {
        scenario.planner.kind = kind;
    }
    if let Some(m) = &args.model {
        scenario.model = m.clone();
    }
    if let Some(what) = args.ablate {
        scenario.episode.ablate = Some(what);
    }
    if let Some(level) = args.perturb {
        scenario.perturb.level = level;
    }
    if let Some(from) = args.goal {
        scenario.episode.goal = from;
    }
    if let Some(n) = args.samples {
        scenario.planner.samples = n;
    }
    if let Some(h) = args.horizon {
        scenario.planner.horizon = h;
    }
    if let Some(n) = args.iterations {
        scenario.planner.iterations = n;
    }
    if let Some(t) = args.model_threads {
        scenario.model_threads = t;
    }
    if let Some(t) = args.threads {
        scenario.planner.threads = t;
    }
    scenario.validate(&args.scene)?;
    let mode = scenario.observation.mode;
    if mode.has_image() && scenario.bundle_dir().is_none() {
        bail!(
            "observation mode '{mode}' needs a world model that reads images (a v2 bundle, \
             --model path/to/bundle); the analytic model reads the state"
        );
    }
    Ok((jobs, scenario))
}

/// `telic run`: the episodes asked for, their results written as they
/// finish, then the summary.
pub(crate) fn run(args: RunArgs) -> Result<()> {
    let (jobs, mut scenario) = configure(&args)?;
    // Every output asked for is checked before any episode runs, without
    // creating or changing a file; one that cannot be made is an error.
    check_outputs(args.json.as_deref(), args.rrd.as_deref(), args.resume)?;
    if args.resume && args.controller {
        bail!("--resume does not apply to --controller: real-time episodes do not repeat exactly");
    }
    let bar = progress_bar(args.quiet, args.episodes, &args.scene);
    let successes = std::sync::atomic::AtomicUsize::new(0);
    let violations = std::sync::atomic::AtomicUsize::new(0);
    let warned = std::sync::atomic::AtomicBool::new(false);
    let progress = |r: &EpisodeResult| {
        use std::sync::atomic::Ordering::Relaxed;
        let s = successes.fetch_add(usize::from(r.success), Relaxed) + usize::from(r.success);
        let v = violations.fetch_add(r.violation_steps, Relaxed) + r.violation_steps;
        // The planner's warnings, once, as soon as an episode brings them.
        if !r.planner_warnings.is_empty() && !warned.swap(true, Relaxed) {
            bar.suspend(|| {
                for w in &r.planner_warnings {
                    eprintln!("warning: {w}");
                }
            });
        }
        bar.inc(1);
        bar.set_message(format!("success {s}, violations {v}"));
    };
    let output = std::sync::Arc::new(std::sync::Mutex::new(start_output(&args, &scenario)?));
    let interrupt = {
        let (bar, quit) = (bar.clone(), std::sync::Arc::clone(&output));
        Interrupt::install(
            move |_| {
                bar.suspend(|| {
                    eprintln!(
                        "\ninterrupted: no new episode starts; the episodes under way finish and \
                         every finished episode is kept (interrupt again to quit at once)"
                    );
                });
            },
            move |signal| quit_interrupted(&quit, signal),
        )?
    };
    for r in lock(&output).results() {
        progress(&r);
    }
    if args.controller {
        return run_with_controller(&args, &scenario, &bar, &output, &interrupt);
    }
    let recorder = open_recorder(&args, &mut scenario)?;
    let done = lock(&output).done();
    let episodes = Episodes {
        count: args.episodes,
        done: &done,
        stop: interrupt.stop_flag(),
    };
    let on_result = |i: usize, r: &EpisodeResult| {
        progress(r);
        lock(&output).record(i, r)
    };
    let (batch, recorded) = match recorder {
        Some(mut recorder) => {
            let batch =
                run_episodes_observed(&scenario, args.seed, episodes, &mut recorder, &on_result);
            (batch, Some(recorder.finish()))
        }
        None => (
            run_episodes(&scenario, args.seed, episodes, jobs, &on_result),
            None,
        ),
    };
    bar.finish_and_clear();
    let ended = end_run(&args, &scenario, &output, batch.end, &interrupt);
    match recorded {
        Some(Ok(())) if args.rrd.is_some() => {
            eprintln!("recording written to {}", record_sink_name(&args))
        }
        Some(Ok(())) => eprintln!("recording sent to {}", record_sink_name(&args)),
        Some(Err(e)) => {
            ended?;
            bail!("{e}");
        }
        None => {}
    }
    ended
}

/// The output of this run: the document keys, the partial file's header
/// (the settings that fix every episode's result), and with `--resume` the
/// episodes the interrupted run finished.
fn start_output(args: &RunArgs, scenario: &Scenario) -> Result<RunOutput> {
    let model = scenario
        .bundle_dir()
        .map_or("analytic".into(), |d| d.display().to_string());
    let mut head = serde_json::json!({
        "scene": args.scene,
        "seed": args.seed,
        "planner": scenario.planner,
        "model": model,
    });
    if args.controller {
        head["mode"] = "controller".into();
        head["max_plan_age_ms"] = args.max_plan_age_ms.into();
    }
    // Named when it is not the state (documents of state runs are as before).
    let observation = scenario.observation.mode;
    if observation != ObservationMode::State {
        head["observation"] = observation.name().into();
    }
    if !scenario.perturb.is_nominal() {
        head["perturb"] = serde_json::to_value(&scenario.perturb)?;
    }
    let header = serde_json::json!({
        "scene": args.scene,
        "seed": args.seed,
        "episodes": args.episodes,
        "model": model,
        "mode": if args.controller { "controller" } else { "episodes" },
        "scenario": scenario,
    });
    RunOutput::start(
        args.json.as_deref(),
        head,
        header,
        args.episodes,
        args.resume,
        args.controller,
    )
}

/// Prints the summary of a run that ended with `end`, writes its document,
/// and on an interrupted or failed run says how to finish it: an
/// interrupted run exits with `128 + signal`, a failed one is an error.
fn end_run(
    args: &RunArgs,
    scenario: &Scenario,
    output: &std::sync::Mutex<RunOutput>,
    end: BatchEnd,
    interrupt: &Interrupt,
) -> Result<()> {
    let mut out = lock(output);
    if out.len() > 0 {
        if !matches!(end, BatchEnd::Complete) {
            println!("\n  {} of {} episodes finished", out.len(), args.episodes);
        }
        print_summary(args, scenario, &Summary::of(&out.results()));
    }
    match end {
        BatchEnd::Complete => out.write_document(&Ending::Complete),
        BatchEnd::Stopped => {
            if let Some(e) = out.write_error().map(str::to_string) {
                // The results written so far stay where they are.
                out.print_resume_hint();
                bail!("{e}: the run stopped at the first result it could not write");
            }
            drop(out);
            quit_interrupted(output, interrupt.signal().unwrap_or(libc::SIGINT))
        }
        BatchEnd::Failed { episode, error } => {
            let what = match episode {
                Some(i) => format!("episode {i} (seed {})", episode_seed(args.seed, i)),
                None => "a worker's scene".into(),
            };
            let message = format!("{what} failed: {error}");
            if let Err(e) = out.write_document(&Ending::Failed(message.clone())) {
                eprintln!("error: {e:#}");
            }
            out.print_resume_hint();
            bail!("{message}")
        }
    }
}

/// Where the recording asked for on the command line goes, as a phrase.
fn record_sink_name(args: &RunArgs) -> String {
    match (&args.rrd, &args.connect, args.spawn) {
        (Some(p), _, _) => p.display().to_string(),
        (_, Some(u), _) if !u.is_empty() => u.clone(),
        (_, Some(_), _) => "the viewer".into(),
        _ => "the spawned viewer".into(),
    }
}

/// Opens the recording the command line asks for, if any. A sink that
/// cannot be opened is an error, as an unwritable --json is.
#[cfg(feature = "rerun")]
fn open_recorder(
    args: &RunArgs,
    scenario: &mut Scenario,
) -> Result<Option<crate::record::Recorder>> {
    use crate::record::{RecordOptions, Recorder, Sink};
    let sink = match (&args.rrd, &args.connect, args.spawn) {
        (Some(path), _, _) => Sink::File(path.clone()),
        (None, Some(url), _) => Sink::Connect((!url.is_empty()).then(|| url.clone())),
        (None, None, true) => Sink::Spawn,
        (None, None, false) => return Ok(None),
    };
    let options = RecordOptions {
        rollouts: args.record_rollouts,
        camera: scenario.observation.image_size(),
    };
    let recorder = Recorder::open(&sink, options)?;
    scenario.planner.keep_rollouts = args.record_rollouts.min(scenario.planner.samples);
    Ok(Some(recorder))
}

#[cfg(not(feature = "rerun"))]
fn open_recorder(args: &RunArgs, _scenario: &mut Scenario) -> Result<Option<NoRecorder>> {
    if args.rrd.is_some() || args.connect.is_some() || args.spawn {
        bail!("this telic was built without the `rerun` feature: it cannot record");
    }
    Ok(None)
}

/// Stands in for the recorder in a build without rerun.
#[cfg(not(feature = "rerun"))]
#[derive(Debug)]
struct NoRecorder;

#[cfg(not(feature = "rerun"))]
impl crate::episode::EpisodeObserver for NoRecorder {}

#[cfg(not(feature = "rerun"))]
impl NoRecorder {
    fn finish(self) -> Result<(), String> {
        Ok(())
    }
}

fn print_summary(args: &RunArgs, scenario: &Scenario, s: &Summary) {
    let p = &scenario.planner;
    let kind = match p.kind {
        PlannerKind::Mppi => "mppi",
        PlannerKind::Cem => "cem",
        PlannerKind::Gradient => "gradient",
    };
    let rows: Vec<(&str, String)> = vec![
        ("scene", args.scene.clone()),
        (
            "model",
            scenario
                .bundle_dir()
                .map_or("analytic".into(), |d| format!("bundle {}", d.display())),
        ),
        (
            "planner",
            format!(
                "{kind}, {} samples x {} steps x {} iterations",
                p.samples, p.horizon, p.iterations
            ),
        ),
        ("observation", observation_row(scenario)),
        ("perturbation", perturbation_row(scenario)),
        ("episodes (seed)", format!("{} ({})", s.episodes, args.seed)),
        (
            "success rate",
            format!(
                "{:.1}% ({}/{})",
                100.0 * s.success_rate,
                s.successes,
                s.episodes
            ),
        ),
        (
            "mean time to goal",
            s.mean_time_to_goal
                .map_or("-".into(), |t| format!("{t:.2} s")),
        ),
        ("mean task cost", format!("{:.3}", s.mean_task_cost)),
        (
            "true violations",
            format!(
                "{} physics steps in {} episodes",
                s.violation_steps, s.episodes_with_violations
            ),
        ),
        (
            "worst true margin",
            format!("{:.4} ({})", s.worst_margin, s.worst_guardrail),
        ),
        ("fallback steps", format!("{}", s.fallback_steps)),
        (
            "fallback reasons",
            if s.fallback_reasons.is_empty() {
                "-".into()
            } else {
                s.fallback_reasons
                    .iter()
                    .take(3)
                    .map(|(why, n)| format!("{why} {n}"))
                    .collect::<Vec<_>>()
                    .join("; ")
            },
        ),
        (
            "failures ended at",
            if s.failure_final_error.is_empty() {
                "-".into()
            } else {
                s.failure_final_error
                    .iter()
                    .map(|(n, p50, p90)| format!("{n} p50 {p50:.3}, p90 {p90:.3}"))
                    .collect::<Vec<_>>()
                    .join("; ")
            },
        ),
        (
            "plan latency",
            format!(
                "p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
                s.plan_latency_p50_ms, s.plan_latency_p99_ms, s.plan_latency_max_ms
            ),
        ),
    ];
    let w = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    println!();
    for (k, v) in rows {
        println!("  {k:<w$}  {v}");
    }
    for warning in &s.planner_warnings {
        println!("  warning: {warning}");
    }
}

/// The summary's observation row: the mode, and the camera size in the
/// pixel modes.
fn perturbation_row(scenario: &Scenario) -> String {
    let p = &scenario.perturb;
    if p.is_nominal() {
        return "none".into();
    }
    let r = p.ranges();
    let pct = |x: f64| format!("±{:.0}%", 100.0 * x);
    format!(
        "{} (mass {}, friction {}, actuator {}, delay ≤ {}, obs noise {}, dropout {:.0}%, \
         image noise {}, lighting {})",
        p.level,
        pct(r.mass),
        pct(r.friction),
        pct(r.actuator),
        r.delay,
        r.obs_noise,
        100.0 * r.dropout,
        r.image_noise,
        pct(r.lighting)
    )
}

fn observation_row(scenario: &Scenario) -> String {
    let o = &scenario.observation;
    match o.mode {
        ObservationMode::State => "state".into(),
        mode => format!("{mode} ({}x{} camera)", o.width, o.height),
    }
}

/// `telic run --controller`: real-time episodes with the controller in the
/// loop, one after another. Results are written as episodes finish, as in
/// a batch run; a signal stops the run after the episode under way.
fn run_with_controller(
    args: &RunArgs,
    scenario: &Scenario,
    bar: &ProgressBar,
    output: &std::sync::Mutex<RunOutput>,
    interrupt: &Interrupt,
) -> Result<()> {
    use crate::realtime::{RealtimeStats, run_realtime};
    use telic::controller::ControllerConfig;
    let control = ControllerConfig {
        max_plan_age_ms: args.max_plan_age_ms,
        ..Default::default()
    };
    let next = std::cell::Cell::new(0usize);
    // Called between episodes on this thread: the place to stop.
    let progress = |r: &EpisodeResult, s: &RealtimeStats| {
        bar.inc(1);
        bar.set_message(format!("success {}, {:.0} plans/s", r.success, s.replan_hz));
        let i = next.replace(next.get() + 1);
        let mut out = lock(output);
        out.record_controller(i, serde_json::json!(s));
        if out.record(i, r).is_break()
            && let Some(e) = out.write_error()
        {
            bar.finish_and_clear();
            eprintln!("error: {e}: the run stopped at the first result it could not write");
            std::process::exit(1);
        }
        drop(out);
        if let Some(signal) = interrupt.signal() {
            bar.finish_and_clear();
            quit_interrupted(output, signal);
        }
    };
    let runs = match run_realtime(scenario, args.episodes, args.seed, &control, &progress) {
        Ok(runs) => runs,
        Err(error) => {
            bar.finish_and_clear();
            let i = next.get();
            let message = format!(
                "episode {i} (seed {}) failed: {error}",
                episode_seed(args.seed, i)
            );
            let mut out = lock(output);
            if let Err(e) = out.write_document(&Ending::Failed(message.clone())) {
                eprintln!("error: {e:#}");
            }
            bail!("{message}");
        }
    };
    bar.finish_and_clear();
    let results: Vec<EpisodeResult> = runs.iter().map(|(r, _)| r.clone()).collect();
    let summary = Summary::of(&results);
    print_summary(args, scenario, &summary);
    let stats: Vec<&RealtimeStats> = runs.iter().map(|(_, s)| s).collect();
    let wall: f64 = stats.iter().map(|s| s.wall_seconds).sum();
    let plans: u64 = stats.iter().map(|s| s.plans).sum();
    let steps: usize = results.iter().map(|r| r.control_steps).sum();
    let plan_steps: usize = stats.iter().map(|s| s.plan_steps).sum();
    let late: usize = stats.iter().map(|s| s.late_steps).sum();
    let oldest = stats.iter().map(|s| s.max_plan_age_ms).fold(0.0, f64::max);
    let mut reasons = telic::controller::FallbackCounts::default();
    for s in &stats {
        reasons += &s.fallback_steps;
    }
    println!("controller in the loop (real time, {wall:.1} s wall):");
    println!(
        "  re-planning rate        {:.1} plans/s ({plans} plans), control rate {:.1} Hz",
        plans as f64 / wall.max(1e-9),
        steps as f64 / wall.max(1e-9)
    );
    println!(
        "  actions from plans      {plan_steps}/{steps} ({:.1}%), oldest plan acted on {oldest:.1} ms",
        100.0 * plan_steps as f64 / steps.max(1) as f64
    );
    println!(
        "  fallbacks               no plan yet {}, stale {}, infeasible {}, past horizon {}, guardrail on shifted plan {}, failed {}, dead {}",
        reasons.no_plan_yet,
        reasons.stale,
        reasons.no_feasible_plan,
        reasons.shifted_past_horizon,
        reasons.guardrail_on_shifted_plan,
        reasons.planner_failed,
        reasons.planner_dead
    );
    println!("  late control steps      {late}");
    lock(output).write_document(&Ending::Complete)
}
