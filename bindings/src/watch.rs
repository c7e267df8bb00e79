//! Long batches (`run`, `collect`) that Python can interrupt and watch:
//! the episodes run on a thread of their own with the interpreter lock
//! released, while the calling thread waits for them and, after each
//! finished episode (and at least every [`TICK`]), takes the lock to run
//! Python's signal handlers (Ctrl-C) and the caller's progress callback.
//! An exception from either raises the batch's stop flag: the episodes
//! under way finish, no other starts, and the exception is raised once
//! the batch's thread has ended (no thread outlives the call).

use crate::errors::{Kind, error};
use pyo3::prelude::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

/// How long the waiting thread sleeps at most between two signal checks.
const TICK: Duration = Duration::from_millis(50);

/// A progress callback: `progress(done, total)`, called between episodes.
pub(crate) struct Progress<'py>(Bound<'py, PyAny>);

impl<'py> Progress<'py> {
    /// `callback` if it can be called, else a `TypeError`.
    pub(crate) fn new(callback: Bound<'py, PyAny>) -> PyResult<Self> {
        if callback.is_callable() {
            Ok(Self(callback))
        } else {
            Err(pyo3::exceptions::PyTypeError::new_err(format!(
                "progress must be a callable progress(done, total), got {}",
                callback.get_type().name()?
            )))
        }
    }
}

/// Runs `work(stop, finished)` on a thread of its own, `work` calling
/// `finished()` after each of its `total` episodes and starting no episode
/// once `stop` is raised; meanwhile this thread checks Python's signals and
/// calls `progress(done, total)`. Returns what `work` returned, or the
/// exception that stopped it.
pub(crate) fn watch<T: Send>(
    py: Python<'_>,
    total: usize,
    progress: Option<&Progress<'_>>,
    work: impl FnOnce(&AtomicBool, &(dyn Fn() + Sync)) -> T + Send,
) -> PyResult<T> {
    let stop = AtomicBool::new(false);
    let (tx, rx) = mpsc::channel::<()>();
    std::thread::scope(|s| {
        let stop = &stop;
        let spawned = std::thread::Builder::new()
            .name("telic-batch".into())
            .spawn_scoped(s, move || {
                // Dropped when the work ends: the waiting loop then ends.
                let tx = tx;
                let finished = move || {
                    let _ = tx.send(());
                };
                work(stop, &finished)
            })
            .map_err(|e| error(Kind::Sim, format!("cannot start the batch's thread: {e}")))?;
        let mut rx = rx;
        let mut done = 0;
        let mut failure: Option<PyErr> = None;
        loop {
            let (next, back) = py.detach(move || (rx.recv_timeout(TICK), rx));
            rx = back;
            let outcome = match next {
                Ok(()) => {
                    done += 1;
                    match (&failure, progress) {
                        (None, Some(Progress(callback))) => callback.call1((done, total)).err(),
                        _ => None,
                    }
                }
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => break,
            };
            let outcome = outcome.or_else(|| py.check_signals().err());
            if let (None, Some(e)) = (&failure, outcome) {
                stop.store(true, Ordering::SeqCst);
                failure = Some(e);
            }
        }
        let joined = py.detach(|| spawned.join());
        match (failure, joined) {
            (Some(e), _) => Err(e),
            (None, Ok(out)) => Ok(out),
            (None, Err(_)) => Err(error(Kind::Sim, "the batch's thread panicked")),
        }
    })
}
