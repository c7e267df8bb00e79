//! Rollouts across cores: a pool of worker threads, started once per planner,
//! each owning a copy of the world model ([`WorldModel::fork`]) and the
//! buffers of its share of the samples.
//!
//! A sampling iteration hands each worker a job — shared handles to the
//! candidate sequences and the objective, and the range of samples it rolls
//! out — while the planner's thread rolls out the first share itself, then
//! collects the workers' costs and violations. Each worker has one slot (a
//! mutex and a condition variable) through which jobs go out and results
//! come back, and buffers circulate in boxes, so an iteration allocates
//! nothing, not even the first time a thread waits (channels allocate their
//! waiter lists then). Workers sleep between jobs and run at the priority
//! they were started with (normal), so a control thread at real-time
//! priority keeps its core when it needs it. A worker that panics marks its
//! slot stopped as it unwinds: the planner gets an error, never a hang.
//!
//! [`Pool::start`] returns only once every worker thread has run. Starting
//! a thread allocates on the new thread (the standard library copies its
//! name there before our code runs), and a worker whose core was busy when
//! it was started would otherwise make that allocation whenever it first
//! ran: in the middle of some planning call, long after warm-up. Building a
//! planner may wait for a core; planning never does (below).
//!
//! A job that its worker has not started by the time the planner's thread
//! has rolled out its own share (the worker's core is busy with something
//! else: another process, the control thread) is taken back and rolled out
//! by the planner's thread, so that a plan never waits for a thread that is
//! not running: with every other core taken, planning takes about as long as
//! on one thread, not as long as the wait for a core.
//!
//! A job can also draw its samples first ([`Draw`]): each sample's noise
//! comes from its own random stream, so the worker draws exactly what the
//! planner's thread would have drawn, into its own buffer, which the planner
//! copies back. Every sample is drawn and rolled out exactly as on one
//! thread: the plan does not depend on the number of threads.

use super::rollout::{ActionSampler, Batch, Dims, Draw, Rollouts, Start, roll_out};
use crate::Real;
use crate::error::ModelError;
use crate::model::WorldModel;
use crate::objective::Objective;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

/// Fewer samples than this are rolled out on the planner's thread alone: a
/// job's hand-over (tens of microseconds) would cost more than it saves.
pub(crate) const MIN_PARALLEL: usize = 64;

/// The buffers of one worker's share, moved to the worker with each job and
/// back with its result.
#[derive(Debug)]
struct Share {
    dims: Dims,
    z0: Vec<Real>,
    u_last: Vec<Real>,
    roll: Rollouts,
    sampler: ActionSampler,
    /// The share's sequences when it draws them, and the mean and deviation
    /// it draws them around.
    seqs: Vec<Real>,
    mean: Vec<Real>,
    std: Vec<Real>,
}

/// One rollout job: samples `lo..hi`, read from the planner's `seqs` or
/// drawn from the streams of `seed` into the share's own.
struct Job {
    seqs: Source,
    objective: Arc<Objective>,
    lo: usize,
    hi: usize,
    share: Box<Share>,
}

/// Where a job's sequences come from.
enum Source {
    Shared(Arc<Vec<Real>>),
    /// Drawn by the worker from the streams of this seed.
    Drawn(u64),
}

/// A finished job: the share with its costs, and the model's verdict.
struct Done {
    share: Box<Share>,
    result: Result<(), ModelError>,
}

/// What a worker's slot holds.
#[derive(Debug)]
enum State {
    /// The worker's thread has not run yet.
    Starting,
    /// Nothing to do.
    Idle,
    /// A job for the worker.
    Job(Job),
    /// The worker's result.
    Done(Done),
    /// The worker panicked.
    Stopped,
    /// The pool is closing: the worker returns.
    Closed,
}

/// The hand-over point between the planner's thread and one worker.
#[derive(Debug)]
struct Slot {
    state: Mutex<State>,
    changed: Condvar,
}

impl Slot {
    /// The state, whoever panicked while holding it (nobody computes with
    /// the lock held, so the state is always whole).
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn put(&self, state: State) {
        *self.lock() = state;
        self.changed.notify_all();
    }

    /// The job in the slot, if its worker has not taken it yet (the slot is
    /// then left idle).
    fn take_job(&self) -> Option<Job> {
        let mut st = self.lock();
        match std::mem::replace(&mut *st, State::Idle) {
            State::Job(job) => Some(job),
            other => {
                *st = other;
                None
            }
        }
    }

    /// Waits until `take` accepts the state, and leaves `Idle` in its place;
    /// a state it declines (`Err` gives it back) is left as it was and
    /// waited past.
    fn wait_for<T>(&self, mut take: impl FnMut(State) -> Result<T, State>) -> T {
        let mut st = self.lock();
        loop {
            match take(std::mem::replace(&mut *st, State::Idle)) {
                Ok(t) => return t,
                Err(back) => {
                    *st = back;
                    st = self
                        .changed
                        .wait(st)
                        .unwrap_or_else(PoisonError::into_inner);
                }
            }
        }
    }
}

/// Marks its slot stopped if the worker unwinds from a panic.
struct Mourner<'a>(&'a Slot);

impl Drop for Mourner<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.put(State::Stopped);
        }
    }
}

/// A rollout worker: a pool thread with its slot and the buffers of its share.
#[derive(Debug)]
struct RolloutWorker {
    slot: Arc<Slot>,
    handle: Option<JoinHandle<()>>,
    /// The share's buffers while the worker is idle.
    share: Option<Box<Share>>,
}

/// Worker threads that roll out shares of the samples.
#[derive(Debug)]
pub(crate) struct Pool {
    workers: Vec<RolloutWorker>,
    dims: Dims,
    /// A worker stopped (it panicked, or its thread is gone).
    broken: bool,
    /// Tests: wait for every job instead of taking back the unstarted ones,
    /// so that a worker's model is called whatever the machine's load.
    #[cfg(test)]
    never_take_back: bool,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Job({}..{})", self.lo, self.hi)
    }
}

impl std::fmt::Debug for Done {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Done({:?})", self.result)
    }
}

/// How the samples `0..n` of a batch are split between the threads: this
/// thread's share ends at `bound(1)`, worker `k`'s runs from `bound(k + 1)`
/// to `bound(k + 2)`; the slots drawn (`from..n`) are split evenly.
#[derive(Clone, Copy, Debug)]
struct Shares {
    n: usize,
    from: usize,
    threads: usize,
}

impl Shares {
    fn bound(self, k: usize) -> usize {
        if k == 0 {
            0
        } else {
            self.from + k * (self.n - self.from) / self.threads
        }
    }

    /// Samples `lo..hi` of worker `k` (0-based).
    fn worker(self, k: usize) -> (usize, usize) {
        (self.bound(k + 1), self.bound(k + 2))
    }
}

/// What every worker's job of one batch shares.
struct Hand<'a> {
    objective: &'a Arc<Objective>,
    seqs: &'a Arc<Vec<Real>>,
    draw: Option<&'a Draw<'a>>,
    start: Start<'a>,
}

/// Where the workers' results go: the costs into `roll`, the sequences they
/// drew into `seqs` (when they drew).
struct Back<'a, 'b> {
    sent: &'a [bool],
    shares: Shares,
    seqs: Option<&'b mut Arc<Vec<Real>>>,
    roll: &'b mut Rollouts,
}

impl Pool {
    /// Starts `threads − 1` workers for `samples` samples with copies of
    /// `model`. `Ok(None)` when the model cannot fork (rollouts stay on the
    /// planner's thread); an error when a thread cannot be started.
    pub fn start(
        model: &dyn WorldModel,
        objective: &Objective,
        sampler: &ActionSampler,
        threads: usize,
        samples: usize,
        dims: Dims,
        keep: bool,
    ) -> Result<Option<Self>, String> {
        if threads < 2 {
            return Ok(None);
        }
        let share_max = samples.div_ceil(threads);
        // Every copy first: a model forks always or never.
        let Some(models) = (1..threads)
            .map(|_| model.fork())
            .collect::<Option<Vec<_>>>()
        else {
            return Ok(None);
        };
        // Workers join the pool as they start, so that an error starting a
        // later one closes the earlier ones (the pool's `Drop`).
        let mut pool = Self {
            workers: Vec::with_capacity(threads - 1),
            dims,
            broken: false,
            #[cfg(test)]
            never_take_back: false,
        };
        for (k, model) in (1..).zip(models) {
            let slot = Arc::new(Slot {
                state: Mutex::new(State::Starting),
                changed: Condvar::new(),
            });
            let theirs = Arc::clone(&slot);
            let handle = std::thread::Builder::new()
                .name(format!("telic-rollout-{k}"))
                .spawn(move || work(model, &theirs))
                .map_err(|e| format!("could not start rollout thread {k}: {e}"))?;
            let (h, a, d, _) = dims.sizes();
            pool.workers.push(RolloutWorker {
                slot,
                handle: Some(handle),
                share: Some(Box::new(Share {
                    dims,
                    z0: vec![0.0; d],
                    u_last: vec![0.0; a],
                    roll: Rollouts::new(share_max, dims, objective, keep),
                    sampler: sampler.clone(),
                    seqs: vec![0.0; share_max * h * a],
                    mean: Vec::with_capacity(h * a),
                    std: Vec::with_capacity(h * a),
                })),
            });
        }
        for (k, w) in (1..).zip(&pool.workers) {
            let running = w.slot.wait_for(|st| match st {
                State::Idle => Ok(true),
                State::Stopped => Ok(false),
                other => Err(other),
            });
            if !running {
                return Err(format!("rollout thread {k} stopped as it started"));
            }
        }
        Ok(Some(pool))
    }

    /// Ends the worker threads but keeps their slots, as if every worker's
    /// core were taken by something else: jobs go out and are never started.
    #[cfg(test)]
    pub fn stall_workers(&mut self) {
        for w in &mut self.workers {
            w.slot.put(State::Closed);
            if let Some(handle) = w.handle.take() {
                let _ = handle.join();
            }
            w.slot.put(State::Idle);
        }
    }

    /// Waits for every job from now on, as if every worker always had a core.
    #[cfg(test)]
    pub fn never_take_back(&mut self) {
        self.never_take_back = true;
    }

    /// True once a worker has stopped: the pool should not be used again.
    pub fn broken(&self) -> bool {
        self.broken
    }

    /// Threads that roll out, the planner's own included.
    pub fn threads(&self) -> usize {
        self.workers.len() + 1
    }

    /// Rolls out the batch's sequences into `roll` (costs, violations, and
    /// readouts when kept), sharing them between the workers and the calling
    /// thread, which rolls out the first share with `model`. When the batch
    /// draws, slots `draw.from..n` are drawn first, each share by whoever
    /// rolls it out (this thread with the batch's sampler), and end up in the
    /// batch's sequences. An error of any share is returned after every share
    /// is back; a worker that is gone is an error too, and leaves the pool
    /// [`broken`](Self::broken).
    pub fn roll_out<M: WorldModel + ?Sized>(
        &mut self,
        model: &mut M,
        objective: &Arc<Objective>,
        batch: Batch<'_>,
        start: Start<'_>,
        roll: &mut Rollouts,
    ) -> Result<(), ModelError> {
        let (seqs, n, draw) = batch.into_parts();
        let len = self.dims.sequence_len();
        // This thread's share holds the slots that are not drawn, so that
        // every worker's share is drawn whole.
        let drawn = draw.is_some();
        let from = draw.as_ref().map_or(0, |(d, _)| d.from().min(n));
        let shares = Shares {
            n,
            from,
            threads: self.threads(),
        };
        let mut first_error = None;
        let job = Hand {
            objective,
            seqs,
            draw: draw.as_ref().map(|(d, _)| d),
            start,
        };
        let sent = self.hand_out(&job, shares, &mut first_error);
        let mine = shares.bound(1);
        if let Some((d, sampler)) = draw {
            // No worker holds `seqs` when drawing.
            sampler.draw(&d, from..mine, seqs);
        }
        let rolled = roll_out(model, objective, &seqs[..mine * len], start, roll);
        if let Err(e) = rolled {
            first_error.get_or_insert(e);
        }
        let back = Back {
            sent: &sent,
            shares,
            seqs: drawn.then_some(seqs),
            roll,
        };
        self.collect(model, back, &mut first_error);
        first_error.map_or(Ok(()), Err)
    }

    /// Hands each worker its share of `job` (see [`Shares`]); returns which
    /// workers got one. A worker that has stopped is noted in `first_error`.
    fn hand_out(
        &mut self,
        job: &Hand<'_>,
        shares: Shares,
        first_error: &mut Option<ModelError>,
    ) -> [bool; super::config::MAX_THREADS] {
        let mut sent = [false; super::config::MAX_THREADS];
        for (k, w) in self.workers.iter_mut().enumerate() {
            let (lo, hi) = shares.worker(k);
            let Some(mut share) = w.share.take() else {
                // Lost with a worker that stopped mid-job.
                self.broken = true;
                first_error.get_or_insert_with(gone);
                continue;
            };
            share.z0.copy_from_slice(job.start.z0());
            share.u_last.copy_from_slice(job.start.u_last());
            let source = match job.draw {
                Some(d) => Source::Drawn(d.hand_over(&mut share.mean, &mut share.std)),
                None => Source::Shared(Arc::clone(job.seqs)),
            };
            let job = Job {
                seqs: source,
                objective: Arc::clone(job.objective),
                lo,
                hi,
                share,
            };
            let mut st = w.slot.lock();
            if matches!(*st, State::Idle) {
                *st = State::Job(job);
                drop(st);
                w.slot.changed.notify_all();
                sent[k] = true;
            } else {
                // Stopped: keep the buffers, report it.
                drop(st);
                w.share = Some(job.share);
                self.broken = true;
                first_error.get_or_insert_with(gone);
            }
        }
        sent
    }

    /// Collects the shares handed out into `back.roll` (and the drawn
    /// sequences into `back.seqs`), rolling out here with `model` the jobs no
    /// worker has started. The first error goes to `first_error`.
    fn collect<M: WorldModel + ?Sized>(
        &mut self,
        model: &mut M,
        back: Back<'_, '_>,
        first_error: &mut Option<ModelError>,
    ) {
        let Back {
            sent,
            shares,
            mut seqs,
            roll,
        } = back;
        let len = self.dims.sequence_len();
        for (k, w) in self.workers.iter_mut().enumerate() {
            if !sent[k] {
                continue;
            }
            let (lo, hi) = shares.worker(k);
            // A job its worker has not started (its core is busy elsewhere)
            // is done here rather than waited for.
            #[cfg(test)]
            let taken = if self.never_take_back {
                None
            } else {
                w.slot.take_job()
            };
            #[cfg(not(test))]
            let taken = w.slot.take_job();
            let done = match taken {
                Some(job) => Some(run(model, job)),
                None => w.slot.wait_for(|st| match st {
                    State::Done(done) => Ok(Some(done)),
                    State::Stopped => Ok(None),
                    other => Err(other),
                }),
            };
            let Some(done) = done else {
                // Leave it stopped, so that later calls see it too.
                w.slot.put(State::Stopped);
                self.broken = true;
                first_error.get_or_insert_with(gone);
                continue;
            };
            let s = &done.share;
            roll.take_share(lo, hi, &s.roll);
            if let Some(seqs) = seqs.as_deref_mut() {
                Arc::make_mut(seqs)[lo * len..hi * len].copy_from_slice(&s.seqs[..(hi - lo) * len]);
            }
            if let Err(e) = done.result {
                first_error.get_or_insert(e);
            }
            w.share = Some(done.share);
        }
    }
}

fn gone() -> ModelError {
    ModelError::Backend("a rollout worker thread stopped".into())
}

/// A worker's loop: one job at a time until the pool closes its slot.
fn work(mut model: Box<dyn WorldModel>, slot: &Slot) {
    let _mourner = Mourner(slot);
    {
        // Unless the pool closed before this thread ran.
        let mut st = slot.lock();
        if matches!(*st, State::Starting) {
            *st = State::Idle;
        }
    }
    slot.changed.notify_all();
    loop {
        let job = slot.wait_for(|st| match st {
            State::Job(job) => Ok(Some(job)),
            State::Closed => Ok(None),
            other => Err(other),
        });
        let Some(job) = job else {
            return;
        };
        let done = run(&mut *model, job);
        let mut st = slot.lock();
        if matches!(*st, State::Closed) {
            return;
        }
        *st = State::Done(done);
        drop(st);
        slot.changed.notify_all();
    }
}

/// Draws (when the job says so) and rolls out one job's samples with
/// `model`: a worker's part, or the planner's when it takes back a job that
/// its worker has not started.
fn run<M: WorldModel + ?Sized>(model: &mut M, job: Job) -> Done {
    let Job {
        seqs,
        objective,
        lo,
        hi,
        mut share,
    } = job;
    let Share {
        dims,
        z0,
        u_last,
        roll,
        sampler,
        seqs: own,
        mean,
        std,
    } = &mut *share;
    let len = dims.sequence_len();
    let mine = match &seqs {
        Source::Shared(all) => &all[lo * len..hi * len],
        Source::Drawn(seed) => {
            let own = &mut own[..(hi - lo) * len];
            sampler.fill(*seed, lo, own, mean, std);
            own
        }
    };
    let result = roll_out(model, &objective, mine, Start::new(z0, u_last), roll);
    // Released before the result is handed over, so that the planner finds
    // itself the only owner again and mutates without copying.
    drop((seqs, objective));
    Done { share, result }
}

impl Drop for Pool {
    fn drop(&mut self) {
        for w in &self.workers {
            w.slot.put(State::Closed);
        }
        for w in &mut self.workers {
            if let Some(handle) = w.handle.take() {
                // A worker that panicked has nothing left to clean up.
                let _ = handle.join();
            }
        }
    }
}
