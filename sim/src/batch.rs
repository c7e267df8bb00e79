//! Many episodes of one run: on worker threads or watched one after another,
//! each result handed out the moment its episode finishes, and a run that
//! can be stopped between episodes without losing the finished ones.
//!
//! Episode `i` of a run seeded with `seed` is seeded with
//! [`episode_seed`](crate::episode::episode_seed)`(seed, i)` and gets a fresh
//! world model, so its result does not depend on the other episodes, on the
//! number of workers, or on whether the run was stopped and resumed: a run
//! can skip the episodes an earlier, interrupted run already finished.

use crate::SimError;
use crate::episode::{EpisodeObserver, EpisodeResult, NoObserver, run_indexed};
use crate::scenario::Scenario;
use std::collections::BTreeSet;
use std::ops::ControlFlow;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Which episodes a run has to run, and when to stop.
#[derive(Clone, Copy, Debug)]
pub struct Episodes<'a> {
    /// Episodes `0..count` of the run.
    pub count: usize,
    /// Indices already done (by an earlier, interrupted run): skipped.
    pub done: &'a BTreeSet<usize>,
    /// Checked before each episode starts: once it is raised (by a signal
    /// handler, say), no episode starts; those under way finish.
    pub stop: &'a AtomicBool,
}

impl Episodes<'static> {
    /// Episodes `0..count`, none done, and a stop flag that is never raised
    /// (runs that end by themselves, or by their `on_result`).
    pub(crate) fn all(count: usize) -> Self {
        static NONE_DONE: BTreeSet<usize> = BTreeSet::new();
        static NEVER: AtomicBool = AtomicBool::new(false);
        Self {
            count,
            done: &NONE_DONE,
            stop: &NEVER,
        }
    }
}

/// How a run of many episodes ended.
#[derive(Debug)]
pub enum BatchEnd {
    /// Every episode ran.
    Complete,
    /// The stop flag was raised, or the caller's `on_result` asked to stop:
    /// no episode started after that.
    Stopped,
    /// An episode (or, with `episode` `None`, a worker's scene) failed; the
    /// other workers started no episode after that. Every episode before
    /// `episode` finished.
    Failed {
        /// The failed episode's index.
        episode: Option<usize>,
        /// Why it failed.
        error: SimError,
    },
}

/// The episodes a run finished, and how it ended.
#[derive(Debug)]
pub struct Batch {
    /// `(index, result)` of every finished episode, in index order.
    pub finished: Vec<(usize, EpisodeResult)>,
    /// How the run ended.
    pub end: BatchEnd,
}

impl Batch {
    /// The finished results in index order, or the failure's error.
    pub fn into_results(self) -> Result<Vec<EpisodeResult>, SimError> {
        match self.end {
            BatchEnd::Failed { error, .. } => Err(error),
            BatchEnd::Complete | BatchEnd::Stopped => {
                Ok(self.finished.into_iter().map(|(_, r)| r).collect())
            }
        }
    }
}

/// What the workers share: the next index to hand out, the finished
/// episodes, the first failure, and whether to start another episode.
struct Shared<'a> {
    episodes: Episodes<'a>,
    next: AtomicUsize,
    halt: AtomicBool,
    finished: Mutex<Vec<(usize, EpisodeResult)>>,
    failure: Mutex<Option<(Option<usize>, SimError)>>,
}

impl<'a> Shared<'a> {
    fn new(episodes: Episodes<'a>) -> Self {
        Self {
            episodes,
            next: AtomicUsize::new(0),
            halt: AtomicBool::new(false),
            finished: Mutex::new(Vec::new()),
            failure: Mutex::new(None),
        }
    }

    /// The next episode to run, or `None` when the run is over or stopping.
    fn take(&self) -> Option<usize> {
        loop {
            if self.halt.load(Ordering::SeqCst) || self.episodes.stop.load(Ordering::SeqCst) {
                return None;
            }
            let i = self.next.fetch_add(1, Ordering::Relaxed);
            if i >= self.episodes.count {
                return None;
            }
            if !self.episodes.done.contains(&i) {
                return Some(i);
            }
        }
    }

    /// Keeps a finished episode and hands it to `on_result`.
    fn finish(
        &self,
        index: usize,
        result: EpisodeResult,
        on_result: &dyn Fn(usize, &EpisodeResult) -> ControlFlow<()>,
    ) {
        if on_result(index, &result).is_break() {
            self.halt.store(true, Ordering::SeqCst);
        }
        if let Ok(mut f) = self.finished.lock() {
            f.push((index, result));
        }
    }

    /// Records a failure and stops the other workers. Of failures in
    /// episodes under way at once, the lowest index is kept (a worker's
    /// scene before any), so the error does not depend on their timing.
    fn fail(&self, episode: Option<usize>, error: SimError) {
        self.halt.store(true, Ordering::SeqCst);
        if let Ok(mut f) = self.failure.lock() {
            let lower = match &*f {
                None => true,
                Some((kept, _)) => episode.is_none_or(|i| kept.is_some_and(|k| i < k)),
            };
            if lower {
                *f = Some((episode, error));
            }
        }
    }

    fn into_batch(self) -> Batch {
        let mut finished = self
            .finished
            .into_inner()
            .unwrap_or_else(|e| e.into_inner());
        finished.sort_by_key(|(i, _)| *i);
        let failure = self.failure.into_inner().unwrap_or_else(|e| e.into_inner());
        let count = self.episodes.count;
        let all_done = finished.len() + self.episodes.done.range(..count).count() >= count;
        let end = match failure {
            Some((episode, error)) => BatchEnd::Failed { episode, error },
            None if all_done => BatchEnd::Complete,
            None => BatchEnd::Stopped,
        };
        Batch { finished, end }
    }

    /// Runs episodes in `scene` until the run is over, stopping or failed.
    fn work(
        &self,
        scenario: &Scenario,
        seed: u64,
        observer: &mut dyn EpisodeObserver,
        on_result: &dyn Fn(usize, &EpisodeResult) -> ControlFlow<()>,
    ) {
        let mut scene = match scenario.scene.build(&scenario.base_dir) {
            Ok(s) => s,
            Err(e) => return self.fail(None, e),
        };
        while let Some(i) = self.take() {
            match run_indexed(scenario, scene.as_mut(), seed, i, observer) {
                Ok(r) => self.finish(i, r, on_result),
                Err(e) => return self.fail(Some(i), e),
            }
        }
    }
}

/// Runs the `episodes` of a run of `scenario` seeded with `seed` on `jobs`
/// threads. `on_result` gets each episode's index and result as soon as it
/// finishes (from the worker threads, in the order they finish); returning
/// [`ControlFlow::Break`] stops the run as the stop flag does. A failing
/// episode stops the run too: the other workers finish the episode they are
/// running and start no other. Whatever ends the run, the returned
/// [`Batch`] holds every episode that finished.
pub fn run_episodes(
    scenario: &Scenario,
    seed: u64,
    episodes: Episodes<'_>,
    jobs: usize,
    on_result: &(dyn Fn(usize, &EpisodeResult) -> ControlFlow<()> + Sync),
) -> Batch {
    let to_run = episodes.count.saturating_sub(episodes.done.len());
    let jobs = jobs.clamp(1, to_run.max(1));
    let shared = Shared::new(episodes);
    std::thread::scope(|s| {
        let mut handles = Vec::with_capacity(jobs);
        for k in 0..jobs {
            let spawned = std::thread::Builder::new()
                .name(format!("episodes-{k}"))
                .spawn_scoped(s, || {
                    shared.work(scenario, seed, &mut NoObserver, on_result)
                });
            match spawned {
                Ok(h) => handles.push(h),
                Err(e) => {
                    // An error, not an abort: the workers started finish
                    // their episodes and start no other.
                    shared.fail(
                        None,
                        SimError::Scene {
                            scene: scenario.scene_name().to_string(),
                            message: format!(
                                "cannot start episode worker thread {} of {jobs}: {e}",
                                k + 1
                            ),
                        },
                    );
                    break;
                }
            }
        }
        for h in handles {
            if h.join().is_err() {
                shared.fail(
                    None,
                    SimError::Scene {
                        scene: scenario.scene_name().to_string(),
                        message: "an episode worker panicked".into(),
                    },
                );
            }
        }
    });
    shared.into_batch()
}

/// Runs the `episodes` of a run of `scenario` seeded with `seed` one after
/// another on this thread, each watched by `observer` (a recording, say):
/// the same seeds, results and stopping rules as [`run_episodes`].
pub fn run_episodes_observed(
    scenario: &Scenario,
    seed: u64,
    episodes: Episodes<'_>,
    observer: &mut dyn EpisodeObserver,
    on_result: &dyn Fn(usize, &EpisodeResult) -> ControlFlow<()>,
) -> Batch {
    let shared = Shared::new(episodes);
    shared.work(scenario, seed, observer, on_result);
    shared.into_batch()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::ModelChoice;

    fn short_navigate() -> Scenario {
        let mut s = Scenario::load("navigate").unwrap_or_else(|e| panic!("{e}"));
        s.model = ModelChoice::Analytic;
        s.episode.max_time = 0.2;
        s
    }

    #[test]
    fn a_caller_that_breaks_stops_the_run_and_keeps_what_finished() {
        let scenario = short_navigate();
        let episodes = Episodes::all(1000);
        let seen = AtomicUsize::new(0);
        let batch = run_episodes(&scenario, 1, episodes, 2, &|_, _| {
            if seen.fetch_add(1, Ordering::SeqCst) >= 2 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        });
        assert!(matches!(batch.end, BatchEnd::Stopped), "{:?}", batch.end);
        // The workers finish the episodes they were running and start no
        // other (a generous bound: the exact count depends on scheduling).
        assert!(batch.finished.len() < 50, "{}", batch.finished.len());
        assert_eq!(batch.finished.len(), seen.load(Ordering::SeqCst));
    }

    #[test]
    fn a_failing_episode_stops_the_other_workers_and_keeps_what_finished() {
        // One attempt at a field of 6 obstacles: with seed 1 some episode
        // after the first draws no solvable field.
        let shipped = crate::scenario::scenario_dir().join("navigate.toml");
        let text = std::fs::read_to_string(&shipped).unwrap_or_default();
        let text = text
            .replace("max_time = 25.0", "max_time = 0.3")
            .replace("obstacles = 10", "obstacles = 6\nmax_attempts = 1");
        let scenario = Scenario::from_toml(&text, "fail.toml", std::path::Path::new("."))
            .unwrap_or_else(|e| panic!("{e}"));
        let episodes = Episodes::all(1000);
        let batch = run_episodes(&scenario, 1, episodes, 2, &|_, _| ControlFlow::Continue(()));
        let BatchEnd::Failed {
            episode: Some(k), ..
        } = batch.end
        else {
            panic!("{:?}", batch.end)
        };
        let indices: BTreeSet<usize> = batch.finished.iter().map(|(i, _)| *i).collect();
        // Every episode handed out before the failing one finished...
        assert!((0..k).all(|i| indices.contains(&i)), "{k}: {indices:?}");
        // ...and the other worker started few after it (a generous bound).
        assert!(indices.len() < k + 50, "{k}: {indices:?}");
    }

    #[test]
    fn done_episodes_are_skipped_and_the_others_repeat_exactly() {
        let scenario = short_navigate();
        let full = run_episodes(&scenario, 7, Episodes::all(5), 2, &|_, _| {
            ControlFlow::Continue(())
        });
        assert!(matches!(full.end, BatchEnd::Complete));
        let done = BTreeSet::from([0, 3]);
        let some_done = Episodes {
            done: &done,
            ..Episodes::all(5)
        };
        let rest = run_episodes_observed(&scenario, 7, some_done, &mut NoObserver, &|_, _| {
            ControlFlow::Continue(())
        });
        assert!(matches!(rest.end, BatchEnd::Complete));
        let indices: Vec<usize> = rest.finished.iter().map(|(i, _)| *i).collect();
        assert_eq!(indices, [1, 2, 4]);
        for (i, r) in &rest.finished {
            let (_, f) = &full.finished[*i];
            assert_eq!(
                (r.seed, r.control_steps, r.task_cost, r.success),
                (f.seed, f.control_steps, f.task_cost, f.success)
            );
        }
    }
}
