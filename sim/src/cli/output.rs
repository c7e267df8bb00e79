//! What `telic run` writes, and what it does on SIGINT and SIGTERM.
//!
//! One rule for every output the command line asks for (`--json`, `--rrd`,
//! `--connect`, `--spawn`): it is checked before any episode runs, without
//! creating or changing a file, and one that cannot be made is an error.
//! Results are written as episodes finish ([`crate::results`]); a run
//! that is interrupted or whose episode fails keeps every finished episode
//! and says how to finish it with `--resume`.

use crate::episode::{EpisodeResult, Summary};
use crate::results::{self, EpisodeLog};
use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// Header keys of the partial file that may differ on `--resume`: they do
/// not change any episode's result.
pub const FREE_ON_RESUME: &[&str] = &["episodes"];

/// How a run ended, as its document says.
#[derive(Debug)]
pub enum Ending {
    /// Every episode asked for finished.
    Complete,
    /// A signal stopped the run.
    Interrupted,
    /// An episode failed with this message.
    Failed(String),
}

/// The results of a run: the finished episodes, and where they go.
#[derive(Debug)]
pub struct RunOutput {
    /// `--json`: the document written at the end.
    json: Option<PathBuf>,
    /// The partial file, once an episode finished (or from `--resume`).
    log: Option<EpisodeLog>,
    /// The partial file's header: the run's settings.
    header: Value,
    /// Keys every document starts with (scene, seed, planner, model, …).
    head: Value,
    /// Episodes asked for.
    requested: usize,
    /// Finished episodes by index (with those of an interrupted run resumed).
    finished: BTreeMap<usize, EpisodeResult>,
    /// `--controller`: each finished episode's controller figures.
    controller: Option<BTreeMap<usize, Value>>,
    /// The first failed write of a result: the run stops on it.
    write_error: Option<String>,
    /// The document was written for good; nothing more is written.
    closed: bool,
    /// The command that finishes this run.
    resume_command: String,
}

impl RunOutput {
    /// The output of a run asking for `requested` episodes, writing `json`
    /// (if any) with the document keys `head` and the partial file header
    /// `header`. With `resume`, the partial file of the unfinished run is
    /// opened and its episodes are taken as finished.
    pub fn start(
        json: Option<&Path>,
        head: Value,
        header: Value,
        requested: usize,
        resume: bool,
        controller: bool,
    ) -> Result<Self> {
        let mut out = Self {
            json: json.map(Path::to_path_buf),
            log: None,
            header,
            head,
            requested,
            finished: BTreeMap::new(),
            controller: controller.then(BTreeMap::new),
            write_error: None,
            closed: false,
            resume_command: resume_command(),
        };
        if let (true, Some(path)) = (resume, json) {
            let partial = results::partial_path(path);
            let (log, done) =
                EpisodeLog::resume(&partial, &out.header, FREE_ON_RESUME).context("--resume")?;
            out.finished
                .extend(done.into_iter().filter(|(i, _)| *i < requested));
            out.log = Some(log);
        }
        Ok(out)
    }

    /// Indices of the finished episodes.
    pub fn done(&self) -> std::collections::BTreeSet<usize> {
        self.finished.keys().copied().collect()
    }

    /// The finished episodes, in index order.
    pub fn results(&self) -> Vec<EpisodeResult> {
        self.finished.values().cloned().collect()
    }

    /// Keeps a finished episode and appends it to the partial file (created
    /// with the first one). A failed write breaks: the run stops on it.
    pub fn record(&mut self, index: usize, result: &EpisodeResult) -> ControlFlow<()> {
        self.finished.insert(index, result.clone());
        if self.closed || self.write_error.is_some() {
            return ControlFlow::Break(());
        }
        let Some(json) = &self.json else {
            return ControlFlow::Continue(());
        };
        if self.log.is_none() {
            match EpisodeLog::create(&results::partial_path(json), &self.header) {
                Ok(log) => self.log = Some(log),
                Err(e) => {
                    self.write_error = Some(e.to_string());
                    return ControlFlow::Break(());
                }
            }
        }
        let written = match &mut self.log {
            Some(log) => log.append(index, result),
            None => Ok(()),
        };
        match written {
            Ok(()) => ControlFlow::Continue(()),
            Err(e) => {
                self.write_error = Some(e.to_string());
                ControlFlow::Break(())
            }
        }
    }

    /// Keeps the controller figures of episode `index`.
    pub fn record_controller(&mut self, index: usize, stats: Value) {
        if let Some(c) = &mut self.controller {
            c.insert(index, stats);
        }
    }

    /// The first failed write, if any.
    pub fn write_error(&self) -> Option<&str> {
        self.write_error.as_deref()
    }

    /// Finished episodes.
    pub fn len(&self) -> usize {
        self.finished.len()
    }

    /// The document over the finished episodes.
    fn document(&self, ending: &Ending) -> Value {
        let results = self.results();
        let mut doc = self.head.clone();
        if let Some(d) = doc.as_object_mut() {
            d.insert("complete".into(), matches!(ending, Ending::Complete).into());
            match ending {
                Ending::Complete => {}
                Ending::Interrupted => {
                    d.insert("interrupted".into(), true.into());
                }
                Ending::Failed(message) => {
                    d.insert("error".into(), message.as_str().into());
                }
            }
            d.insert("episodes_requested".into(), self.requested.into());
            d.insert(
                "episode_indices".into(),
                self.finished.keys().copied().collect::<Vec<_>>().into(),
            );
            d.insert("summary".into(), json!(Summary::of(&results)));
            d.insert("episodes".into(), json!(results));
            if let Some(c) = &self.controller {
                d.insert("controller".into(), c.values().cloned().collect());
            }
        }
        doc
    }

    /// Writes the document (`--json`) over the finished episodes, once: a
    /// run that finished no episode leaves the file as it was. A complete
    /// run's partial file is removed; an incomplete run's is kept for
    /// `--resume` (but for `--controller` runs, which cannot be resumed).
    pub fn write_document(&mut self, ending: &Ending) -> Result<()> {
        if self.closed {
            return Ok(());
        }
        self.closed = true;
        let Some(path) = self.json.clone() else {
            return Ok(());
        };
        if self.finished.is_empty() {
            eprintln!("no episode finished: {} was not written", path.display());
            return Ok(());
        }
        let text = serde_json::to_string_pretty(&self.document(ending))? + "\n";
        results::write_atomic(&path, text.as_bytes())?;
        // The partial file is kept only for --resume, which does not apply
        // to real-time (--controller) episodes.
        let resumable = self.controller.is_none() && !matches!(ending, Ending::Complete);
        if !resumable && let Some(log) = self.log.take() {
            log.remove()?;
        }
        match ending {
            Ending::Complete => println!("results written to {}", path.display()),
            Ending::Interrupted | Ending::Failed(_) if resumable => eprintln!(
                "results of the {} finished episodes written to {} (\"complete\": false); \
                 they are also in {}",
                self.finished.len(),
                path.display(),
                results::partial_path(&path).display()
            ),
            Ending::Interrupted | Ending::Failed(_) => eprintln!(
                "results of the {} finished episodes written to {} (\"complete\": false)",
                self.finished.len(),
                path.display(),
            ),
        }
        Ok(())
    }

    /// Says how to finish the run (to stderr).
    pub fn print_resume_hint(&self) {
        if self.controller.is_some() {
            return;
        }
        if self.json.is_some() && !self.finished.is_empty() {
            eprintln!(
                "to run only the {} missing episodes: {}",
                self.requested.saturating_sub(self.finished.len()),
                self.resume_command
            );
        } else if self.json.is_none() {
            eprintln!("(with --json FILE a run keeps its finished episodes and can be resumed)");
        }
    }
}

/// This process's command line with `--resume` added, quoted for a shell.
fn resume_command() -> String {
    let mut words: Vec<String> = std::env::args().collect();
    if !words.iter().any(|w| w == "--resume") {
        words.push("--resume".into());
    }
    words
        .iter()
        .map(|w| {
            let plain = !w.is_empty()
                && w.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@".contains(c));
            if plain {
                w.clone()
            } else {
                format!("'{}'", w.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Locks the run's output, whatever a panicking holder left.
pub fn lock(output: &Mutex<RunOutput>) -> MutexGuard<'_, RunOutput> {
    output
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Writes an interrupted run's document, says how to resume, and exits
/// with `128 + signal` (130 for SIGINT).
pub fn quit_interrupted(output: &Mutex<RunOutput>, signal: i32) -> ! {
    let mut out = lock(output);
    if let Err(e) = out.write_document(&Ending::Interrupted) {
        eprintln!("error: {e:#}");
    }
    out.print_resume_hint();
    std::process::exit(128 + signal)
}

/// SIGINT and SIGTERM: the first asks the run to stop (no episode starts;
/// those under way finish and everything finished is written); a second
/// runs `quit_now`.
#[derive(Debug)]
pub struct Interrupt {
    stop: Arc<AtomicBool>,
    signal: Arc<AtomicI32>,
}

impl Interrupt {
    /// Installs the handlers; `on_first` is told of the first signal (after
    /// the stop flag is raised), `quit_now` of the second.
    pub fn install(
        on_first: impl Fn(i32) + Send + 'static,
        quit_now: impl Fn(i32) + Send + 'static,
    ) -> Result<Self> {
        use signal_hook::consts::{SIGINT, SIGTERM};
        let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])
            .context("installing the SIGINT and SIGTERM handlers")?;
        let stop = Arc::new(AtomicBool::new(false));
        let signal = Arc::new(AtomicI32::new(0));
        let (s, g) = (Arc::clone(&stop), Arc::clone(&signal));
        std::thread::Builder::new()
            .name("telic-signals".into())
            .spawn(move || {
                for sig in signals.forever() {
                    if s.swap(true, Ordering::SeqCst) {
                        quit_now(sig);
                    } else {
                        g.store(sig, Ordering::SeqCst);
                        on_first(sig);
                    }
                }
            })
            .context("starting the signal thread")?;
        Ok(Self { stop, signal })
    }

    /// Raised by the first signal.
    pub fn stop_flag(&self) -> &AtomicBool {
        &self.stop
    }

    /// The first signal received, if any.
    pub fn signal(&self) -> Option<i32> {
        match self.signal.load(Ordering::SeqCst) {
            0 if self.stop.load(Ordering::SeqCst) => Some(signal_hook::consts::SIGINT),
            0 => None,
            s => Some(s),
        }
    }
}

/// Checks, before any episode runs and without creating or changing a
/// file, every output the command line asks for: `json` (and its partial
/// file, which must exist exactly when `resume`) and the recording `rrd`.
pub fn check_outputs(json: Option<&Path>, rrd: Option<&Path>, resume: bool) -> Result<()> {
    match json {
        Some(path) => {
            results::check_output(path).context("--json")?;
            let partial = results::partial_path(path);
            let exists = partial
                .try_exists()
                .with_context(|| format!("--json: cannot read {}", partial.display()))?;
            match (exists, resume) {
                (true, false) => bail!(
                    "--json: {} exists: it holds the finished episodes of an unfinished run; \
                     finish that run with --resume, or remove the file",
                    partial.display()
                ),
                (false, true) => bail!(
                    "--resume: {} does not exist: there is no unfinished run of {} to finish",
                    partial.display(),
                    path.display()
                ),
                _ => results::check_output(&partial).context("--json")?,
            }
        }
        None if resume => bail!("--resume needs --json FILE, the results of the run to finish"),
        None => {}
    }
    if let Some(path) = rrd {
        results::check_output(path).context("--rrd")?;
    }
    Ok(())
}
