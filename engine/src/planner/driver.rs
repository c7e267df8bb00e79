//! The iteration driver, written once for every solver: time budget,
//! iteration limit, draws, kept rollouts and the final evaluation of the
//! mean ([`Driver::iterate`]), and the one generic [`Planner`] ([`Planned`])
//! that runs a [`Solver`] between the start of a call and its shielded finish.

use super::core::Core;
pub(crate) use super::core::Ended;
use super::rollout::Start;
use super::step::{SamplingStep, Solver};
use super::{Plan, Planner, PlannerConfig};
use crate::Real;
use crate::error::PlanError;
use crate::model::WorldModel;
use crate::objective::Objective;

/// Outcome of the sampling iterations of one call.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Iterated {
    /// Sampling iterations run.
    iterations: usize,
    /// Feasible samples in the last iteration.
    feasible: usize,
    /// The time budget ended during sampling.
    timed_out: bool,
}

impl Iterated {
    /// The time budget ended during sampling.
    pub(crate) fn timed_out(&self) -> bool {
        self.timed_out
    }

    /// How the call ended when `more` iterations of another kind followed
    /// the sampling (0 for none), which ran out of time (`timed_out`) or met
    /// their tolerance (`converged`) or not.
    pub(crate) fn ended(self, more: usize, timed_out: bool, converged: bool) -> Ended {
        Ended::new(
            self.iterations + more,
            self.feasible,
            self.timed_out || timed_out,
            converged,
        )
    }
}

/// The shared planner state and workspace ([`Core`]) as the solvers see
/// it: the iteration driver, the finish, and read access to what a solver
/// step needs.
#[derive(Debug)]
pub struct Driver<M> {
    core: Core<M>,
}

impl<M: WorldModel> Driver<M> {
    /// Runs the sampling iterations of `step` after the start of a call,
    /// stopping before its finish: each iteration puts the mean in slot 0,
    /// the fallback held still in slot 1 and the step's own candidates after
    /// them, draws the rest from one new seed, keeps the rollouts and hands
    /// the scored batch to the step. The mean is evaluated once more at the
    /// end (it has not been rolled out since its last update); the best
    /// sequence of the call is then [`Driver::best`].
    pub(crate) fn iterate<S: SamplingStep>(&mut self, step: &mut S) -> Result<Iterated, PlanError> {
        let c = &mut self.core;
        let n = c.config().samples;
        let mut out = Iterated::default();
        step.start(c.state().nominal(), c.sigma());
        for it in 0..c.config().iterations {
            if it > 0 && c.out_of_time() {
                out.timed_out = true;
                break;
            }
            c.set_seq(0, step.mean());
            c.set_fallback_seq(1);
            let mut slots = c.slots(2, n);
            step.fill(&mut slots);
            let from = slots.next().min(n);
            c.sample_and_evaluate(from, n, step.mean(), step.std())?;
            c.keep_rollouts(n);
            out.iterations += 1;
            let feasible = c.feasible_count(n);
            out.feasible = feasible;
            step.update(&c.scored(n, feasible));
        }
        step.end();
        c.set_seq(0, step.mean());
        c.evaluate(1)?;
        Ok(out)
    }

    /// One call of a solver that only samples: [`Driver::iterate`], then the
    /// finish with the best sequence seen.
    pub(crate) fn sample_and_finish<S: SamplingStep>(
        &mut self,
        step: &mut S,
    ) -> Result<(), PlanError> {
        let out = self.iterate(step)?;
        self.finish_with_best(out)
    }

    /// True when the time budget is spent.
    pub(crate) fn out_of_time(&self) -> bool {
        self.core.out_of_time()
    }

    /// Ends a call with the best sequence seen ([`Core::finish_with_best`]).
    fn finish_with_best(&mut self, out: Iterated) -> Result<(), PlanError> {
        self.core.finish_with_best(out.ended(0, false, false))
    }

    /// Ends a call with `chosen` as the plan ([`Core::finish`]).
    pub(crate) fn finish(&mut self, chosen: &[Real], ended: Ended) -> Result<(), PlanError> {
        self.core.finish(chosen, ended)
    }

    /// The planner's configuration.
    pub(crate) fn config(&self) -> &PlannerConfig {
        self.core.config()
    }

    /// The values of one action sequence, `H×A`.
    pub(crate) fn sequence_len(&self) -> usize {
        let (h, a, _, _) = self.core.sizes();
        h * a
    }

    /// Horizon `H`, action, latent and readout sizes.
    pub(crate) fn sizes(&self) -> (usize, usize, usize, usize) {
        self.core.sizes()
    }

    /// The actions' lower and upper bounds (`A` each).
    pub(crate) fn bounds(&self) -> (&[Real], &[Real]) {
        self.core.bounds()
    }

    /// The noise scale per action (`A`): `noise · (hi − lo) / 2`.
    pub(crate) fn sigma(&self) -> &[Real] {
        self.core.sigma()
    }

    /// The objective.
    pub(crate) fn objective(&self) -> &Objective {
        self.core.objective()
    }

    /// The best sequence seen in this call (`H×A`).
    pub(crate) fn best(&self) -> &[Real] {
        self.core.state().best()
    }

    /// What a rollout from the current observation needs: the model, the
    /// objective, and where it starts.
    pub(crate) fn rollout_from(&mut self) -> (&mut M, &Objective, Start<'_>) {
        self.core.rollout_from()
    }
}

/// A planner: the planning state and iteration driver every planner shares,
/// and a solver `S` that supplies the update steps. [`Mppi`](super::Mppi),
/// [`Cem`](super::Cem) and [`Gradient`](super::Gradient) name it for each
/// solver; build one with their `new` or with [`build`](super::build).
#[derive(Debug)]
pub struct Planned<M, S> {
    driver: Driver<M>,
    solver: S,
}

impl<M: WorldModel, S: Solver> Planned<M, S> {
    /// A planner for `model` and `objective`; checks `config`.
    pub fn new(model: M, objective: Objective, config: PlannerConfig) -> Result<Self, PlanError> {
        let driver = Driver {
            core: Core::new(model, objective, config)?,
        };
        let solver = S::new(&driver);
        Ok(Self { driver, solver })
    }

    /// The world model.
    pub fn model(&self) -> &M {
        self.driver.core.model()
    }

    /// The shared planner state (tests reach the rollout pool through it).
    #[cfg(test)]
    pub(crate) fn core_mut(&mut self) -> &mut Core<M> {
        &mut self.driver.core
    }
}

impl<M: WorldModel, S: Solver> Planner for Planned<M, S> {
    fn plan(&mut self, obs: &[Real]) -> Result<&Plan, PlanError> {
        self.driver.core.begin(obs)?;
        self.solver.solve(&mut self.driver)?;
        Ok(self.driver.core.plan())
    }

    fn set_goal_observation(&mut self, term: &str, obs: &[Real]) -> Result<(), PlanError> {
        self.driver.core.set_goal_observation(term, obs)
    }
    fn reset(&mut self) {
        self.driver.core.reset();
        self.solver.reset();
    }
    fn objective_mut(&mut self) -> &mut Objective {
        self.driver.core.objective_mut()
    }
    fn objective(&self) -> &Objective {
        self.driver.core.objective()
    }
    fn config(&self) -> &PlannerConfig {
        self.driver.core.config()
    }
    fn reseed(&mut self, seed: u64) {
        self.driver.core.reseed(seed);
        self.solver.reset();
    }
}
