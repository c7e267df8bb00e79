//! What a solver supplies to the shared iteration driver: its update step.
//!
//! In the spirit of argmin's `Solver::next_iter` / `Executor` split, the
//! driver ([`super::driver`]) owns the time budget, the iteration limit, the
//! draws, the kept rollouts, the final choice, the shield and the fallback; a
//! sampling solver (MPPI, iCEM) only says around what to sample and how to
//! move its distribution once the samples are scored ([`SamplingStep`]), and
//! a solver as a whole ([`Solver`]) only says how one planning call runs
//! between the start of a call and its finish.

use super::driver::Driver;
use crate::Real;
use crate::error::PlanError;
use crate::model::WorldModel;
use std::fmt::Debug;

/// The update step of a sampling solver: a distribution over action
/// sequences (`mean`, `std`) that it moves after each scored batch.
pub trait SamplingStep {
    /// Starts a call from the warm start `nominal` (`H×A`) and the noise
    /// scale per action `sigma` (`A`).
    fn start(&mut self, nominal: &[Real], sigma: &[Real]);
    /// Puts candidates of its own (after the mean in slot 0 and the fallback
    /// in slot 1) into `slots`; the rest are drawn.
    fn fill(&mut self, _slots: &mut Slots<'_>) {}
    /// The mean the samples are drawn around (`H×A`).
    fn mean(&self) -> &[Real];
    /// Their deviation: per `(t, a)` (`H×A` values) or per action (`A`).
    fn std(&self) -> &[Real];
    /// Moves the distribution after the batch `scored`.
    fn update(&mut self, scored: &Scored<'_>);
    /// Ends a call after its last iteration.
    fn end(&mut self) {}
}

/// Candidate slots of an iteration that a [`SamplingStep`] fills before the
/// driver draws the rest.
#[derive(Debug)]
pub struct Slots<'a> {
    /// All `N×H×A` candidate sequences.
    seqs: &'a mut [Real],
    /// `H×A`.
    len: usize,
    /// The next free slot.
    next: usize,
    /// `N`.
    n: usize,
}

impl<'a> Slots<'a> {
    /// The slots `next..n` of `seqs` (sequences of `len` values).
    pub(crate) fn new(seqs: &'a mut [Real], len: usize, next: usize, n: usize) -> Self {
        Self { seqs, len, next, n }
    }

    /// Copies `seq` into the next free slot; does nothing when all are taken.
    pub fn push(&mut self, seq: &[Real]) {
        if self.next < self.n {
            let len = self.len;
            self.seqs[self.next * len..(self.next + 1) * len].copy_from_slice(seq);
            self.next += 1;
        }
    }

    /// The first slot left to draw.
    pub(crate) fn next(&self) -> usize {
        self.next
    }
}

/// One scored batch of an iteration: `N` sequences, their task costs and
/// summed guardrail violations.
#[derive(Clone, Copy, Debug)]
pub struct Scored<'a> {
    /// Task cost per sequence (`N`).
    cost: &'a [Real],
    /// Summed guardrail violation per sequence (`N`, 0 when feasible).
    violation: &'a [Real],
    /// The sequences (`N×H×A`).
    seqs: &'a [Real],
    /// How many of them are feasible.
    feasible: usize,
}

impl<'a> Scored<'a> {
    /// The batch of `seqs` (`N×H×A`) with `cost` and `violation` (`N` each),
    /// `feasible` of them feasible.
    pub(crate) fn new(
        cost: &'a [Real],
        violation: &'a [Real],
        seqs: &'a [Real],
        feasible: usize,
    ) -> Self {
        Self {
            cost,
            violation,
            seqs,
            feasible,
        }
    }

    /// Task cost per sequence (`N`).
    pub fn cost(&self) -> &'a [Real] {
        self.cost
    }

    /// Summed guardrail violation per sequence (`N`, 0 when feasible).
    pub fn violation(&self) -> &'a [Real] {
        self.violation
    }

    /// The sequences (`N×H×A`, row-major).
    pub fn seqs(&self) -> &'a [Real] {
        self.seqs
    }

    /// How many sequences are feasible.
    pub fn feasible(&self) -> usize {
        self.feasible
    }
}

/// A planning algorithm as the generic planner drives it: how one call runs
/// after the driver started it, up to the finish
/// ([`Driver::finish`], or [`Driver::sample_and_finish`] for a solver that
/// only samples), which it must call.
pub trait Solver: Debug + Send + Sized {
    /// The solver's workspace for the planner of `core`, allocated once.
    fn new<M: WorldModel>(core: &Driver<M>) -> Self;
    /// Runs one planning call after its start and finishes the plan.
    fn solve<M: WorldModel>(&mut self, core: &mut Driver<M>) -> Result<(), PlanError>;
    /// Forgets what it carries between calls (with the warm start).
    fn reset(&mut self) {}
}
