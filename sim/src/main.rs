//! `telic` — run Telic scenes from the command line.

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::PathBuf;
use telic::PlannerKind;
use telic_sim::batch::{BatchEnd, Episodes, run_episodes, run_episodes_observed};
use telic_sim::collect::{
    CollectConfig, EpisodeData, Policy, collect as collect_data, prepare_output,
};
use telic_sim::episode::{EpisodeResult, Summary, episode_seed};
use telic_sim::limits;
use telic_sim::scenario::{ModelChoice, Scenario, scenario_dir};

#[path = "cli/output.rs"]
mod output;
use output::{Ending, Interrupt, RunOutput, check_outputs, lock, quit_interrupted};

#[derive(Parser, Debug)]
#[command(
    name = "telic",
    version,
    about = "Objective-driven planning for robots: run, sweep and inspect Telic scenes, collect training data"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run episodes of a scene (a shipped name such as `reach`, or a scenario .toml).
    Run(RunArgs),
    /// Record exploration data for training a world model (`python -m telic.train`).
    Collect(CollectArgs),
    /// List the shipped scenes.
    Scenes,
    /// Load a world-model bundle (every load-time check), summarise it, and
    /// check its graphs against the training framework's `reference.json`.
    Inspect(InspectArgs),
    /// Measure planning speed on this machine: the f32 matrix-multiply rate
    /// for the learned model's layer shapes and the model's FLOP rate inside
    /// MPPI, plan latency against samples × horizon, and control-tick
    /// latency while other processes load every core.
    Bench(BenchArgs),
}

#[derive(clap::Args, Debug)]
struct BenchArgs {
    /// Scene (or scenario) whose objective, models and planner are used;
    /// the default re-plans within a control period, so that the control
    /// ticks step through plans rather than time the fallback.
    #[arg(default_value = "reach_realtime")]
    scene: String,
    /// Samples of the FLOP-rate measurement.
    #[arg(long, default_value_t = 1024)]
    samples: usize,
    /// Horizon of the FLOP-rate measurement.
    #[arg(long, default_value_t = 32)]
    horizon: usize,
    /// Planning calls timed per setting.
    #[arg(long, default_value_t = 5)]
    calls: usize,
    /// Control ticks of the tick-latency measurement.
    #[arg(long, default_value_t = 100_000)]
    ticks: usize,
    /// Control-tick rate (Hz).
    #[arg(long, default_value_t = 1000.0)]
    hz: f64,
    /// Measure ticks without loading the cores.
    #[arg(long)]
    no_load: bool,
    /// Run the control thread at normal priority (default: real-time
    /// SCHED_FIFO priority, as robot control loops run, when allowed).
    #[arg(long)]
    no_realtime: bool,
    /// The control thread sleeps until this many µs before each tick and
    /// busy-waits from there (0: sleeps until the tick itself).
    #[arg(long, default_value_t = 200)]
    spin_us: u64,
    /// Only the named parts: matmul, latency, nav2, ticks (default: all).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// (Internal) spin until killed: the load of the tick measurement.
    #[arg(long, hide = true)]
    burn: bool,
}

#[derive(clap::Args, Debug)]
struct InspectArgs {
    /// The bundle folder.
    bundle: PathBuf,
    /// Largest allowed |difference| from `reference.json`.
    #[arg(long, default_value_t = 1e-4)]
    tolerance: f64,
}

#[derive(clap::Args, Debug)]
struct CollectArgs {
    /// Scene name (`reach`, `navigate`) or path to a scenario .toml file.
    scene: String,
    /// Number of episodes.
    #[arg(long, default_value_t = 100)]
    episodes: usize,
    /// Output folder: one .npy file per field and meta.json (created if needed).
    #[arg(long)]
    out: PathBuf,
    /// Seed of the run; episode i uses a seed derived from it.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Control steps per episode (default: the scenario's max_time / dt).
    #[arg(long)]
    steps_per_episode: Option<usize>,
    /// Share of episodes driven by the scenario's planner with noisy actions;
    /// the others use colored-noise random actions.
    #[arg(long, default_value_t = 0.5)]
    planner_fraction: f64,
    /// Largest std of the planner's action noise, as a fraction of the half range.
    #[arg(long, default_value_t = 0.5)]
    planner_noise: f64,
    /// Range of the random policy's scale (fraction of the half range), `LO,HI`.
    #[arg(long, value_name = "LO,HI", value_delimiter = ',', default_values_t = [0.3, 1.0])]
    random_scale: Vec<f64>,
    /// Exponent of the colored exploration noise (0 white, 2 Brownian-like).
    #[arg(long, default_value_t = 1.0)]
    noise_beta: f64,
    /// Keep running an episode after the task succeeded.
    #[arg(long)]
    no_stop_on_success: bool,
    /// Episodes run in parallel (default: the number of cores; 1 to 256); the data does not depend on it.
    #[arg(long)]
    jobs: Option<usize>,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

#[derive(clap::Args, Debug)]
struct RunArgs {
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

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Run(args) => run(args),
        Command::Collect(args) => collect(args),
        Command::Inspect(args) => inspect(&args),
        Command::Bench(args) => bench(&args),
        Command::Scenes => {
            let dir = scenario_dir();
            let mut names: Vec<String> = std::fs::read_dir(&dir)
                .with_context(|| format!("reading {}", dir.display()))?
                .filter_map(|e| e.ok())
                .filter_map(|e| {
                    let p = e.path();
                    (p.extension()? == "toml")
                        .then(|| p.file_stem()?.to_str().map(str::to_string))?
                })
                .collect();
            names.sort();
            for n in names {
                println!("{n}");
            }
            Ok(())
        }
    }
}

fn progress_bar(quiet: bool, len: usize, prefix: &str) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let b = ProgressBar::new(len as u64);
    b.set_style(
        ProgressStyle::with_template(
            "{prefix} [{bar:30}] {pos}/{len} episodes  {msg}  ({elapsed}, eta {eta})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    b.set_prefix(prefix.to_string());
    b
}

/// The episodes run at once: `--jobs` (at least 1, at most
/// [`limits::MAX_JOBS`]), by default one per core.
fn jobs(arg: Option<usize>) -> Result<usize> {
    match arg {
        Some(0) => bail!("--jobs must be at least 1, got 0"),
        Some(n) => {
            limits::check("command line", "--jobs", n, limits::MAX_JOBS)?;
            Ok(n)
        }
        None => Ok(std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(limits::MAX_JOBS)),
    }
}

fn collect(args: CollectArgs) -> Result<()> {
    let scenario = Scenario::load(&args.scene)?;
    let [lo, hi] = args.random_scale[..] else {
        bail!("--random-scale takes two values, LO,HI");
    };
    let config = CollectConfig {
        episodes: args.episodes,
        seed: args.seed,
        steps_per_episode: args.steps_per_episode,
        planner_fraction: args.planner_fraction,
        planner_noise: args.planner_noise,
        random_scale: [lo, hi],
        noise_beta: args.noise_beta,
        stop_on_success: !args.no_stop_on_success,
        jobs: jobs(args.jobs)?,
    };
    config.validate()?;
    let bar = progress_bar(args.quiet, args.episodes, &args.scene);
    // The data set stays in memory until every episode finished: an
    // interrupted collection writes nothing (and while writing, the data
    // set's meta.json is written last, so a cut-short one is not read).
    let writing = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let quit = {
        let (bar, out, writing) = (bar.clone(), args.out.clone(), writing.clone());
        move |signal: i32| {
            bar.finish_and_clear();
            if writing.load(std::sync::atomic::Ordering::SeqCst) {
                eprintln!(
                    "\ninterrupted while writing {}: it has no meta.json, so it is not a data set",
                    out.display()
                );
            } else {
                eprintln!(
                    "\ninterrupted: nothing was written to {} (a collection writes its data set \
                     when every episode has finished)",
                    out.display()
                );
            }
            std::process::exit(128 + signal);
        }
    };
    let _interrupt = Interrupt::install(quit.clone(), quit)?;
    // Fail on an unwritable folder before spending minutes on episodes.
    prepare_output(&args.out)?;
    let rows = std::sync::atomic::AtomicUsize::new(0);
    let progress = |e: &EpisodeData| {
        let n = rows.fetch_add(e.steps, std::sync::atomic::Ordering::Relaxed) + e.steps;
        bar.inc(1);
        bar.set_message(format!("{n} transitions"));
    };
    let t0 = std::time::Instant::now();
    let data = collect_data(&scenario, &config, &progress)?;
    bar.finish_and_clear();
    writing.store(true, std::sync::atomic::Ordering::SeqCst);
    data.write(&args.out)?;
    writing.store(false, std::sync::atomic::Ordering::SeqCst);
    let m = &data.meta;
    let planner_eps = m
        .episode_policies
        .iter()
        .filter(|e| matches!(e.policy, Policy::Planner { .. }))
        .count();
    println!(
        "{} transitions from {} episodes ({planner_eps} noisy-planner, {} random) of {} in {:.1} s",
        m.transitions,
        m.episodes,
        m.episodes - planner_eps,
        m.scene,
        t0.elapsed().as_secs_f64()
    );
    println!(
        "  obs {}, action {}, readouts {}, dt {} s",
        m.observations.len(),
        m.actions.len(),
        m.readouts.len(),
        m.dt
    );
    println!("written to {}", args.out.display());
    Ok(())
}

fn run(args: RunArgs) -> Result<()> {
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
    let mut scenario = Scenario::load(&args.scene)?;
    if let Some(kind) = args.planner {
        scenario.planner.kind = kind;
    }
    if let Some(m) = &args.model {
        scenario.model = m.clone();
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
) -> Result<Option<telic_sim::record::Recorder>> {
    use telic_sim::record::{RecordOptions, Recorder, Sink};
    let sink = match (&args.rrd, &args.connect, args.spawn) {
        (Some(path), _, _) => Sink::File(path.clone()),
        (None, Some(url), _) => Sink::Connect((!url.is_empty()).then(|| url.clone())),
        (None, None, true) => Sink::Spawn,
        (None, None, false) => return Ok(None),
    };
    let options = RecordOptions {
        rollouts: args.record_rollouts,
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
impl telic_sim::episode::EpisodeObserver for NoRecorder {}

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

/// Reads `path` as text, refusing anything but a regular file (or a link to
/// one) of at most `max` bytes.
#[cfg(feature = "onnx")]
fn read_capped(path: &std::path::Path, max: u64) -> Result<String> {
    use std::io::Read;
    let meta = std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
    if !meta.is_file() || meta.len() > max {
        bail!(
            "{} is not a regular file of at most {max} bytes",
            path.display()
        );
    }
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(max).read_to_string(&mut text))
        .with_context(|| format!("reading {}", path.display()))?;
    Ok(text)
}

#[cfg(not(feature = "onnx"))]
fn inspect(_args: &InspectArgs) -> Result<()> {
    bail!("`telic inspect` needs telic-sim built with the `onnx` feature")
}

#[cfg(feature = "onnx")]
fn inspect(args: &InspectArgs) -> Result<()> {
    use telic::WorldModel;
    let mut model = telic::model::OnnxModel::load(&args.bundle)?;
    let m = model.manifest().clone();
    println!("bundle       {}", args.bundle.display());
    println!("name         {} (format {})", m.name, m.format_version);
    println!("dt           {} s", m.dt);
    println!(
        "observations {} [{}]",
        m.observations.len(),
        m.observations.join(", ")
    );
    let actions: Vec<String> = m
        .actions
        .iter()
        .map(|a| format!("{} in [{}, {}]", a.name, a.lower, a.upper))
        .collect();
    println!("actions      {} [{}]", actions.len(), actions.join(", "));
    println!("latent       {}", m.latent_dim);
    println!(
        "readouts     {} [{}]",
        m.readouts.len(),
        m.readouts.join(", ")
    );
    println!(
        "provenance   scene {}, {} samples, {} episodes, seed {}",
        m.provenance.scene, m.provenance.samples, m.provenance.episodes, m.provenance.seed
    );
    if let Some(q) = &m.readout_error_quantiles {
        println!(
            "error margins quantile {} over {} steps for {} readouts",
            q.quantile,
            q.horizon(),
            q.margins.len()
        );
    }
    let reference = args.bundle.join("reference.json");
    if !reference.exists() {
        println!("reference    none (no reference.json): parity not checked");
        return Ok(());
    }
    let text = read_capped(&reference, 256 << 20)?;
    let r: std::collections::BTreeMap<String, Vec<f64>> = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a reference file", reference.display()))?;
    let get = |k: &str| {
        r.get(k)
            .cloned()
            .with_context(|| format!("{} lacks `{k}`", reference.display()))
    };
    let (obs, u, z_ref, z_next_ref, y_ref) =
        (get("obs")?, get("u")?, get("z")?, get("z_next")?, get("y")?);
    let spec = model.spec().clone();
    let b = obs.len() / spec.obs_dim().max(1);
    let mut z = vec![0.0; b * spec.latent_dim];
    let mut z_next = vec![0.0; b * spec.latent_dim];
    let mut y = vec![0.0; b * spec.readout_dim()];
    let dir = args.bundle.display();
    model
        .encode(&obs, &mut z)
        .with_context(|| format!("bundle {dir}: encode.onnx on the reference inputs"))?;
    model
        .predict(&z_ref, &u, &mut z_next)
        .with_context(|| format!("bundle {dir}: predict.onnx on the reference inputs"))?;
    model
        .readout(&z_ref, &mut y)
        .with_context(|| format!("bundle {dir}: readout.onnx on the reference inputs"))?;
    // The reference inputs are real observations and latents: every output
    // must be finite, and NaN, which compares false with everything, is a
    // mismatch (a NaN difference would vanish in a running maximum).
    let diff = |graph: &str, a: &[f64], b: &[f64]| -> Result<f64> {
        if a.len() != b.len() {
            bail!(
                "reference sizes do not match the bundle ({} vs {})",
                a.len(),
                b.len()
            );
        }
        if let Some(i) = a.iter().position(|x| !x.is_finite()) {
            bail!(
                "bundle {dir}: {graph}.onnx returned {} at index {i} on the reference inputs",
                a[i]
            );
        }
        let mut worst = 0.0;
        for (x, y) in a.iter().zip(b) {
            let d = (x - y).abs();
            if !(d <= worst) {
                worst = if d.is_nan() { f64::INFINITY } else { d };
            }
        }
        Ok(worst)
    };
    let d = [
        ("encode", diff("encode", &z, &z_ref)?),
        ("predict", diff("predict", &z_next, &z_next_ref)?),
        ("readout", diff("readout", &y, &y_ref)?),
    ];
    let worst = d.iter().map(|(_, v)| *v).fold(0.0, f64::max);
    println!(
        "reference    {b} rows: max |Rust - reference| encode {:.2e}, predict {:.2e}, readout {:.2e}",
        d[0].1, d[1].1, d[2].1
    );
    if !(worst <= args.tolerance) {
        bail!(
            "the bundle's graphs differ from its reference by {worst:.3e} > {:.1e}",
            args.tolerance
        );
    }
    println!(
        "parity       ok (max {worst:.2e} <= {:.1e})",
        args.tolerance
    );
    Ok(())
}

/// Loads every core with a spinning child process until dropped.
struct Load(Vec<std::process::Child>);

impl Load {
    fn start() -> Result<Self> {
        let exe = std::env::current_exe().context("finding the telic program")?;
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let children = (0..cores)
            .map(|_| {
                std::process::Command::new(&exe)
                    .args(["bench", "--burn"])
                    .stdout(std::process::Stdio::null())
                    .spawn()
                    .context("starting a load process")
            })
            .collect::<Result<_>>()?;
        Ok(Self(children))
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn bench(args: &BenchArgs) -> Result<()> {
    use telic_sim::bench;
    if args.burn {
        let mut x = 0u64;
        loop {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
    }
    let origin = "command line";
    limits::check(origin, "--ticks", args.ticks, limits::MAX_BENCH_TICKS)?;
    limits::check(origin, "--calls", args.calls, limits::MAX_BENCH_CALLS)?;
    let part = |name: &str| args.only.is_empty() || args.only.iter().any(|p| p == name);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("telic bench {} — {cores} cores", args.scene);
    if part("matmul") {
        let m = bench::matmul(&args.scene, args.samples, args.horizon, args.calls)?;
        println!(
            "\n(a) learned model inside MPPI, {} samples × {} steps, 1 iteration, 1 ONNX Runtime thread",
            m.samples, m.horizon
        );
        println!("  each layer's matrix product alone (ONNX Runtime MatMul, f32, 1 thread):");
        for (rows, k, n, g) in &m.layers {
            println!("    [{rows:>5} × {k:>3}]·[{k:>3} × {n:>3}]  {g:6.1} GFLOP/s");
        }
        println!(
            "  dense-layer work per plan {:.2} GFLOP; plan {:.1} ms, of which model calls {:.1} ms",
            m.flops_per_plan * 1e-9,
            m.plan_seconds * 1e3,
            m.model_seconds * 1e3
        );
        println!(
            "  machine rate on these shapes {:.1} GFLOP/s; model inside MPPI {:.1} GFLOP/s = {:.0}% of it",
            m.machine_gflops(),
            m.model_gflops(),
            100.0 * m.efficiency()
        );
        if let (Some(lo), Some(hi)) = (m.shares.first(), m.shares.last()) {
            println!(
                "  (the median of {} rounds, each a plan and then the same products alone; rounds from {:.0}% to {:.0}%;\n   \
                 against the fastest round of the products alone, {:.0}%)",
                m.shares.len(),
                100.0 * lo,
                100.0 * hi,
                100.0 * m.fastest_gemm_seconds / m.model_seconds
            );
        }
    }
    if part("latency") {
        let grid = [(256, 16), (256, 32), (1024, 16), (1024, 32)];
        println!(
            "\n(b) plan latency, MPPI 1 iteration, median of {} calls (ms)",
            args.calls
        );
        println!(
            "  {:>7} {:>7} {:>10} {:>10}",
            "samples", "horizon", "analytic", "learned"
        );
        let analytic = bench::latency(&args.scene, ModelChoice::Analytic, &grid, args.calls)?;
        let learned = bench::latency(&args.scene, ModelChoice::Default, &grid, args.calls)?;
        for ((s, h, a), (_, _, l)) in analytic.iter().zip(&learned) {
            println!("  {s:>7} {h:>7} {:>10.2} {:>10.2}", a * 1e3, l * 1e3);
        }
    }
    if part("nav2") {
        let t = bench::nav2(args.calls, 1)?;
        let rate = 1024.0 * 100.0 / t;
        println!(
            "\n(d) the MPPI-Generic / Nav2 problem (navigate: unicycle, dt 0.02 s, 1024 samples × 100 steps, 1 iteration; its goal, effort and smoothness costs, clearance and speed guardrails)"
        );
        println!(
            "  plan {:.2} ms on one core = {:.1} M rollout-steps/s per core (Nav2's published figure: 1024 × 100 in 3.36 ms on an i9-13900K, 30 M/s)",
            t * 1e3,
            rate * 1e-6
        );
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        if cores > 1 {
            let t = bench::nav2(args.calls, cores)?;
            println!(
                "  plan {:.2} ms with planner.threads = {cores} = {:.1} M rollout-steps/s on this machine",
                t * 1e3,
                1024.0 * 100.0 / t * 1e-6
            );
        }
    }
    if part("ticks") {
        let load = if args.no_load {
            None
        } else {
            Some(Load::start()?)
        };
        let t = bench::ticks(
            &args.scene,
            ModelChoice::Default,
            args.ticks,
            args.hz,
            !args.no_realtime,
            std::time::Duration::from_micros(args.spin_us),
        )?;
        drop(load);
        let us = |d: std::time::Duration| d.as_secs_f64() * 1e6;
        println!(
            "\n(c) control ticks: {} at {} Hz, learned-model planner re-planning, {}",
            t.ticks,
            args.hz,
            if args.no_load {
                "no load".to_string()
            } else {
                format!("{cores} spinning processes loading every core")
            }
        );
        match &t.realtime {
            Ok(()) => println!(
                "  control thread at real-time priority (SCHED_FIFO 80), planner thread at normal priority"
            ),
            Err(why) => println!("  control thread at normal priority ({why})"),
        }
        if t.spin.is_zero() {
            println!("  each tick: sleep until it (clock_nanosleep, absolute)");
        } else {
            println!(
                "  each tick: sleep until {:.0} µs before it (clock_nanosleep, absolute), then busy-wait",
                us(t.spin)
            );
        }
        println!(
            "  observe+action latency p50 {:.1} µs, p99 {:.1} µs, p99.9 {:.1} µs, max {:.1} µs",
            us(t.latency[0]),
            us(t.latency[1]),
            us(t.latency[2]),
            us(t.latency[3])
        );
        println!(
            "  wake-up lateness (guest OS and host) p50 {:.1} µs, p99 {:.1} µs, p99.9 {:.1} µs, max {:.1} µs",
            us(t.wake[0]),
            us(t.wake[1]),
            us(t.wake[2]),
            us(t.wake[3])
        );
        let steal = t.steal.map_or("unknown".into(), |d| {
            format!("{:.0} ms", d.as_secs_f64() * 1e3)
        });
        println!(
            "  missed deadlines (action ready after its {:.0} µs period): {}; host steal time meanwhile (all CPUs): {steal}",
            us(t.period),
            t.missed,
        );
        println!(
            "  actions from plans {}, fallbacks {}; plans published {}",
            t.from_plan, t.fallback, t.plans
        );
    }
    Ok(())
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
    use telic::controller::ControllerConfig;
    use telic_sim::realtime::{RealtimeStats, run_realtime};
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
