//! The planner thread and the channels that link it to the control side.
//!
//! Buffers travel in circles so that, after the first few plans, neither side
//! allocates: observations go to the planner and come back through a return
//! channel, snapshots go to the control side and come back the same way. Every
//! operation on the channels is a `try_` call. Only the planner thread waits
//! (for an observation), and it does so by parking; the control side unparks
//! it after each observation it sends. A blocking receive would allocate the
//! first time it waits (the channel's list of waiting threads and the
//! thread's wait context are made then), and the first wait of a planner that
//! always found an observation ready during warm-up can come at any later
//! tick; parking never allocates.

use crate::Real;
use crate::error::{ModelError, PlanError};
use crate::objective::Objective;
use crate::planner::{Plan, PlanStatus, Planner};
use crossbeam::channel::{Receiver, Sender, TryRecvError, TrySendError, bounded};
use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Room in the return channels: more buffers than can ever be in flight
/// (one in each forward channel, one held by each side, one spare).
const RETURN_SLOTS: usize = 4;
/// Buffers of each kind allocated when a planner thread starts.
const PREALLOCATED: usize = 3;

/// Sizes of the messages both sides of the link agree on.
#[derive(Clone, Copy, Debug)]
pub(super) struct MessageSizes {
    /// Observations `O`.
    pub observations: usize,
    /// Actions `A`.
    pub actions: usize,
    /// Readouts `P`.
    pub readouts: usize,
    /// Horizon `H`.
    pub horizon: usize,
    /// Model time step, the re-planning deadline.
    pub dt: Duration,
}

/// An observation on its way to the planner.
#[derive(Debug)]
pub(super) struct ObsMsg {
    at: Instant,
    values: Vec<Real>,
}

/// What the planner thread publishes after each planning call.
#[derive(Debug)]
pub(super) struct Snapshot {
    /// When the observation it planned from was taken.
    pub observed_at: Instant,
    /// The plan's status, or why the call failed.
    pub outcome: Result<PlanStatus, PlanError>,
    /// The planner's action for that observation (`A`): the fallback when
    /// the status is [`PlanStatus::NoFeasiblePlan`].
    pub action: Vec<Real>,
    /// The plan (`H×A`).
    pub actions: Vec<Real>,
    /// Predicted readouts after each action (`H×P`).
    pub readouts: Vec<Real>,
    /// `tail_margin[t]`: the worst guardrail margin of steps `t..H`, so the
    /// control side checks a shifted plan with one lookup.
    pub tail_margin: Vec<Real>,
}

impl Snapshot {
    fn new(d: &MessageSizes, at: Instant) -> Self {
        Self {
            observed_at: at,
            outcome: Ok(PlanStatus::NoFeasiblePlan),
            action: vec![0.0; d.actions],
            actions: vec![0.0; d.horizon * d.actions],
            readouts: vec![0.0; d.horizon * d.readouts],
            tail_margin: vec![Real::NEG_INFINITY; d.horizon],
        }
    }

    /// Copies `plan` in; a plan of another shape than the controller was
    /// set up for (a model spec that is not the planner's) is an error.
    fn copy_plan(&mut self, plan: &Plan) -> Result<(), PlanError> {
        for (what, got, want) in [
            ("plan action", &plan.action, &mut self.action),
            ("plan actions", &plan.actions, &mut self.actions),
            ("plan readouts", &plan.readouts, &mut self.readouts),
        ] {
            if got.len() != want.len() {
                return Err(PlanError::Model(ModelError::Shape {
                    what,
                    got: got.len(),
                    expected: want.len(),
                }));
            }
            want.copy_from_slice(got);
        }
        self.outcome = Ok(plan.status);
        Ok(())
    }

    /// Fills [`Snapshot::tail_margin`] from the predicted readouts, with the
    /// per-step margins the planner itself judged feasibility by.
    fn compute_tail_margins(&mut self, objective: &Objective, scratch: &mut [Real]) {
        let p = self.readouts.len() / self.tail_margin.len().max(1);
        let mut worst = Real::INFINITY;
        for (t, m) in self.tail_margin.iter_mut().enumerate().rev() {
            let y = &self.readouts[t * p..(t + 1) * p];
            objective.margins_at_step(y, t, scratch);
            let step = if y.iter().all(|x| x.is_finite()) {
                scratch.iter().copied().fold(Real::INFINITY, Real::min)
            } else {
                Real::NEG_INFINITY
            };
            worst = worst.min(step);
            *m = worst;
        }
    }
}

/// Figures the planner thread updates and the control side reads.
#[derive(Debug, Default)]
pub(super) struct Counters {
    pub published: AtomicU64,
    pub failed: AtomicU64,
    pub late: AtomicU64,
    /// Latency of the latest call in nanoseconds, `u64::MAX` before any.
    pub last_latency_ns: AtomicU64,
    pub max_latency_ns: AtomicU64,
}

impl Counters {
    pub fn new() -> Self {
        Self {
            last_latency_ns: AtomicU64::new(u64::MAX),
            ..Self::default()
        }
    }

    fn record(&self, ok: bool, latency: Duration, deadline: Duration) {
        let counter = if ok { &self.published } else { &self.failed };
        counter.fetch_add(1, Ordering::Relaxed);
        if latency > deadline {
            self.late.fetch_add(1, Ordering::Relaxed);
        }
        let ns = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX - 1);
        self.last_latency_ns.store(ns, Ordering::Relaxed);
        self.max_latency_ns.fetch_max(ns, Ordering::Relaxed);
    }
}

/// The control side's ends of the channels to one planner thread.
#[derive(Debug)]
pub(super) struct Link {
    obs_tx: Sender<ObsMsg>,
    /// A second receiver of the observation channel, to take back an
    /// observation the planner has not started on when a newer one comes.
    obs_pending: Receiver<ObsMsg>,
    obs_free: Receiver<ObsMsg>,
    snaps: Receiver<Box<Snapshot>>,
    snap_free: Sender<Box<Snapshot>>,
    exit: Receiver<String>,
    stop: Arc<AtomicBool>,
    handle: JoinHandle<()>,
}

/// The planner thread's state.
struct PlannerThread {
    planner: Box<dyn Planner>,
    dims: MessageSizes,
    obs: Receiver<ObsMsg>,
    obs_free: Sender<ObsMsg>,
    snaps: Sender<Box<Snapshot>>,
    /// A second receiver of the snapshot channel, to replace a snapshot the
    /// control side has not read yet.
    snaps_back: Receiver<Box<Snapshot>>,
    snap_free: Receiver<Box<Snapshot>>,
    spare: Option<Box<Snapshot>>,
    margins: Vec<Real>,
    stop: Arc<AtomicBool>,
    counters: Arc<Counters>,
}

impl Link {
    /// Starts a planner thread named `telic-planner` that owns `planner`.
    pub fn start(
        planner: Box<dyn Planner>,
        dims: MessageSizes,
        counters: Arc<Counters>,
    ) -> Result<Self, PlanError> {
        let (obs_tx, obs_rx) = bounded(1);
        let (obs_free_tx, obs_free_rx) = bounded(RETURN_SLOTS);
        let (snap_tx, snap_rx) = bounded(1);
        let (snap_free_tx, snap_free_rx) = bounded(RETURN_SLOTS);
        let (exit_tx, exit_rx) = bounded(1);
        let stop = Arc::new(AtomicBool::new(false));
        let margins = vec![0.0; planner.objective().num_guardrails()];
        // Every buffer either side will ever hold, allocated now: at most one
        // observation queued, one being planned and one being written; at
        // most one snapshot read, one queued and one being filled.
        let now = Instant::now();
        for _ in 0..PREALLOCATED {
            let _ = obs_free_tx.try_send(ObsMsg {
                at: now,
                values: Vec::with_capacity(dims.observations),
            });
            let _ = snap_free_tx.try_send(Box::new(Snapshot::new(&dims, now)));
        }
        let worker = PlannerThread {
            planner,
            dims,
            obs: obs_rx.clone(),
            obs_free: obs_free_tx,
            snaps: snap_tx,
            snaps_back: snap_rx.clone(),
            snap_free: snap_free_rx,
            spare: None,
            margins,
            stop: Arc::clone(&stop),
            counters,
        };
        let handle = std::thread::Builder::new()
            .name("telic-planner".into())
            .spawn(move || {
                let ran = catch_unwind(AssertUnwindSafe(move || worker.run()));
                if let Err(payload) = ran {
                    let _ = exit_tx.try_send(panic_message(payload.as_ref()));
                }
            })
            .map_err(|e| PlanError::Config(format!("cannot start the planner thread: {e}")))?;
        Ok(Self {
            obs_tx,
            obs_pending: obs_rx,
            obs_free: obs_free_rx,
            snaps: snap_rx,
            snap_free: snap_free_tx,
            exit: exit_rx,
            stop,
            handle,
        })
    }

    /// Hands `obs` to the planner without waiting; returns true when it
    /// replaced an observation the planner had not started on.
    pub fn send_observation(&self, obs: &[Real], at: Instant) -> bool {
        let (mut msg, skipped) = match self.obs_pending.try_recv() {
            Ok(msg) => (msg, true),
            Err(_) => match self.obs_free.try_recv() {
                Ok(msg) => (msg, false),
                Err(_) => (
                    ObsMsg {
                        at,
                        values: Vec::with_capacity(obs.len()),
                    },
                    false,
                ),
            },
        };
        msg.at = at;
        msg.values.clear();
        msg.values.extend_from_slice(obs);
        // This side is the only sender and the channel was just emptied, so
        // it has room; failing means the planner thread is gone.
        let _ = self.obs_tx.try_send(msg);
        self.handle.thread().unpark();
        skipped
    }

    /// Moves the newest published snapshot, if any, into `current` and
    /// returns the one it replaces for reuse; true when one arrived.
    pub fn take_newest(&self, current: &mut Option<Box<Snapshot>>) -> bool {
        let mut arrived = false;
        while let Ok(snap) = self.snaps.try_recv() {
            if let Some(old) = current.replace(snap) {
                let _ = self.snap_free.try_send(old);
            }
            arrived = true;
        }
        arrived
    }

    /// Why the planner thread ended, once it has; `None` while it runs.
    pub fn exit_reason(&self) -> Option<String> {
        match self.exit.try_recv() {
            Ok(message) => Some(message),
            Err(TryRecvError::Disconnected) => Some("planner thread exited".into()),
            Err(TryRecvError::Empty) => None,
        }
    }

    /// True while the planner thread runs.
    pub fn is_running(&self) -> bool {
        !self.handle.is_finished()
    }

    /// Stops the planner thread and waits for it: it ends after its current
    /// planning call.
    pub fn shutdown(self) {
        let Link {
            obs_tx,
            stop,
            handle,
            ..
        } = self;
        stop.store(true, Ordering::Release);
        drop(obs_tx);
        // A planner waiting for an observation wakes and sees `stop`.
        handle.thread().unpark();
        // A panic was caught and reported inside the thread already.
        let _ = handle.join();
    }
}

impl PlannerThread {
    fn run(mut self) {
        loop {
            if self.stop.load(Ordering::Acquire) {
                return;
            }
            let msg = match self.obs.try_recv() {
                Ok(msg) => msg,
                Err(TryRecvError::Empty) => {
                    // Woken by the next observation, by `shutdown`, or for
                    // nothing: the loop looks again either way.
                    std::thread::park();
                    continue;
                }
                Err(TryRecvError::Disconnected) => return,
            };
            if self.stop.load(Ordering::Acquire) {
                return;
            }
            let snap = self.plan(&msg);
            let _ = self.obs_free.try_send(msg);
            if !self.publish(snap) {
                return;
            }
        }
    }

    /// Plans from `msg` into a reused snapshot.
    fn plan(&mut self, msg: &ObsMsg) -> Box<Snapshot> {
        let mut snap = match self.spare.take() {
            Some(snap) => snap,
            None => self
                .snap_free
                .try_recv()
                .unwrap_or_else(|_| Box::new(Snapshot::new(&self.dims, msg.at))),
        };
        snap.observed_at = msg.at;
        let started = Instant::now();
        let planned = self
            .planner
            .plan(&msg.values)
            .and_then(|plan| snap.copy_plan(plan));
        let latency = started.elapsed();
        let ok = planned.is_ok();
        match planned {
            Ok(()) => snap.compute_tail_margins(self.planner.objective(), &mut self.margins),
            Err(e) => snap.outcome = Err(e),
        }
        self.counters.record(ok, latency, self.dims.dt);
        snap
    }

    /// Publishes `snap`, replacing one the control side has not read yet;
    /// false when the control side is gone.
    fn publish(&mut self, snap: Box<Snapshot>) -> bool {
        let snap = match self.snaps.try_send(snap) {
            Ok(()) => return true,
            Err(TrySendError::Disconnected(_)) => return false,
            Err(TrySendError::Full(snap)) => snap,
        };
        if let Ok(old) = self.snaps_back.try_recv() {
            self.spare = Some(old);
        }
        match self.snaps.try_send(snap) {
            Ok(()) => true,
            // Only this thread sends, and it just made room.
            Err(TrySendError::Full(snap)) => {
                self.spare = Some(snap);
                true
            }
            Err(TrySendError::Disconnected(_)) => false,
        }
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    let text = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)");
    format!("planner thread panicked: {text}")
}
