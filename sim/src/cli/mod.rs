//! The `telic` program: the command line and one module per command
//! (`run`, `collect`, `inspect`, `bench`, `render`, `soak`).
//!
//! One implementation serves both ways of starting it: the cargo binary
//! `telic` (`src/main.rs`) and the `telic` command the Python package
//! installs, which calls [`main`] through `telic._native.cli_main` with the
//! interpreter lock released.

mod bench;
mod collect;
mod inspect;
mod output;
mod render;
mod run;
mod soak;

use crate::limits;
use crate::scenario::scenario_dir;
use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use std::ffi::OsString;

use bench::{BenchArgs, bench};
use collect::{CollectArgs, collect};
use inspect::{InspectArgs, inspect};
use render::{RenderArgs, render};
use run::{RunArgs, run};
use soak::{SoakArgs, soak};

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
    /// Render one camera frame of a scene after reset, as a PNG file.
    Render(RenderArgs),
    /// Run the controller in the loop in real time, episode after episode,
    /// for a given time (perturbed as asked), reporting resident memory,
    /// the re-planning rate, fallbacks by reason and true violations.
    Soak(SoakArgs),
}

/// Runs the command line `args` (the program's name first, as
/// [`std::env::args_os`] gives them) and returns the exit status: 0 when
/// the command succeeded; for `--help`, `--version` and a command line
/// that does not parse, clap's message and status (0, or 2); for a failed
/// command, 1 after `Error: ` and the error with its causes on stderr (as
/// a `main` returning the error prints it). An interrupted `run` or
/// `collect` ends the process itself with `128 + signal`.
pub fn main<I, T>(args: I) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            // `--help` and `--version` go to stdout, mistakes to stderr.
            if let Err(io) = e.print() {
                eprintln!("error: {io}");
            }
            return e.exit_code();
        }
    };
    match execute(cli.command) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("Error: {e:?}");
            1
        }
    }
}

/// Runs one parsed command.
fn execute(command: Command) -> Result<()> {
    match command {
        Command::Run(args) => run(args),
        Command::Collect(args) => collect(args),
        Command::Inspect(args) => inspect(&args),
        Command::Bench(args) => bench(&args),
        Command::Render(args) => render(&args),
        Command::Soak(args) => soak(&args),
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

/// A progress bar of `len` episodes (hidden when `quiet`).
pub(crate) fn progress_bar(quiet: bool, len: usize, prefix: &str) -> ProgressBar {
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
pub(crate) fn jobs(arg: Option<usize>) -> Result<usize> {
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
