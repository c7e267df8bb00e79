//! The workspace every planner shares and the rules it applies in each call:
//! the start (observation check, encoding, fallback, warm start — the state
//! itself is [`PlanState`]), sampling and evaluation of candidate sequences
//! with feasible-first ranking, the kept rollouts, the time budget, and the
//! shielded finish. Solvers reach it through [`super::driver::Driver`].

use super::knots::Knots;
use super::pool::{MIN_PARALLEL, Pool};
pub(crate) use super::rollout::rank;
use super::rollout::{ActionSampler, Batch, Dims, Draw, Rollouts, Start, Tracer};
use super::state::{PlanState, fallback_indices};
use super::step::{Scored, Slots};
use super::{Plan, PlanStatus, PlannerConfig};
use crate::Real;
use crate::error::{ModelError, PlanError};
use crate::model::{ModelSpec, WorldModel};
use crate::objective::Objective;
use crate::rng::Rng;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Checks an observation for `model`: `O` values, all finite. Every planning
/// call and every goal observation goes through it.
pub(crate) fn check_observation(model: &ModelSpec, obs: &[Real]) -> Result<(), PlanError> {
    let o = model.obs_dim();
    if obs.len() != o {
        return Err(PlanError::ObservationSize {
            got: obs.len(),
            expected: o,
        });
    }
    if let Some((index, value)) = obs.iter().enumerate().find(|(_, x)| !x.is_finite()) {
        return Err(PlanError::NonFiniteObservation {
            index,
            value: *value,
        });
    }
    Ok(())
}

/// The workspace every planner shares, and the rules it applies to every
/// call: the start of a call, sampling and evaluation of candidate
/// sequences, the kept rollouts, the time budget, and the shielded finish.
#[derive(Debug)]
pub(crate) struct Core<M> {
    model: M,
    /// Shared with the rollout workers during an iteration; mutate it
    /// through [`Arc::make_mut`], which does not copy once they are done.
    objective: Arc<Objective>,
    config: PlannerConfig,
    rng: Rng,
    h: usize,
    a: usize,
    d: usize,
    p: usize,
    lower: Vec<Real>,
    upper: Vec<Real>,
    /// Noise scale per action: `noise · (hi − lo) / 2`.
    sigma: Vec<Real>,
    /// Warm start, last action, observation, fallback and best sequence.
    state: PlanState,
    /// Candidate sequences (`N×H×A`), shared with the rollout workers like
    /// [`Core::objective`].
    seqs: Arc<Vec<Real>>,
    roll: Rollouts,
    /// Rollout workers (`config.threads > 1` and a model that forks).
    pool: Option<Pool>,
    sampler: ActionSampler,
    plan: Plan,
    started: Option<Instant>,
    chosen: Vec<Real>,
    tracer: Tracer,
}

impl<M: WorldModel> Core<M> {
    /// The workspace for `model`, `objective` and `config`, allocated once;
    /// checks them first.
    pub fn new(model: M, objective: Objective, config: PlannerConfig) -> Result<Self, PlanError> {
        let spec = check_inputs(&model, &objective, &config)?;
        let dims = Dims::new(
            config.horizon,
            spec.action_dim(),
            spec.latent_dim,
            spec.readout_dim(),
        );
        let (h, a, d, p) = dims.sizes();
        let n = config.samples;
        let fallback_idx = fallback_indices(&config.fallback, &spec)?;
        let objective = with_readout_errors(objective, &model, &config)?;
        let sampler = action_sampler(dims, &spec, &config);
        let keep = config.keep_rollouts > 0;
        let pool = Pool::start(&model, &objective, &sampler, config.threads, n, dims, keep)
            .map_err(PlanError::Config)?;
        Ok(Self {
            pool,
            rng: Rng::new(config.seed),
            h,
            a,
            d,
            p,
            lower: spec.action_lower.clone(),
            upper: spec.action_upper.clone(),
            sigma: noise_scale(&spec, config.noise),
            state: PlanState::new(
                dims,
                mid_actions(&spec),
                fallback_idx,
                config.delay_steps,
                config.identify_delay,
            ),
            seqs: Arc::new(vec![0.0; n * h * a]),
            roll: Rollouts::new(n, dims, &objective, keep),
            tracer: Tracer::new(dims, &objective),
            sampler,
            plan: empty_plan(dims, &objective, config.keep_rollouts),
            model,
            objective: Arc::new(objective),
            config,
            started: None,
            chosen: vec![0.0; h * a],
        })
    }

    /// Forgets the warm start and the last action.
    pub fn reset(&mut self) {
        let mid = mid_actions(self.model.spec());
        self.state.reset(&mid);
    }

    /// Restarts the sampling noise from `seed` and forgets the warm start.
    pub fn reseed(&mut self, seed: u64) {
        self.config.seed = seed;
        self.rng = Rng::new(seed);
        self.reset();
    }

    /// Starts a call: checks the observation, encodes it, computes the
    /// fallback and shifts the warm start by one step.
    pub fn begin(&mut self, obs: &[Real]) -> Result<(), PlanError> {
        self.started = Some(Instant::now());
        self.plan.rollouts.clear();
        self.plan.rollout_costs.clear();
        self.plan.rollout_violations.clear();
        check_observation(self.model.spec(), obs)?;
        self.objective.check_ready().map_err(PlanError::Objective)?;
        self.state.encode(&mut self.model, obs)?;
        self.plan.decoded.copy_from_slice(self.state.y0());
        self.plan.delay_steps = self.state.delay();
        Arc::make_mut(&mut self.objective).relax_buffers(self.state.y0());
        self.state.check_encoded()?;
        self.state
            .set_fallback(&self.config.fallback, self.model.spec());
        self.state.warm_start();
        Ok(())
    }

    /// Encodes the goal observation `obs` and makes it the goal latent of the
    /// latent term `term`, or the target of the readout term `term` (its
    /// readouts decoded from that latent). Not on the per-step path: it
    /// allocates. On any error the previous goal is kept.
    pub fn set_goal_observation(&mut self, term: &str, obs: &[Real]) -> Result<(), PlanError> {
        let readouts = self
            .objective
            .goal_observation_readouts(term)?
            .map(<[usize]>::to_vec);
        let refuse = |cause: PlanError| PlanError::GoalObservation {
            term: term.to_string(),
            cause: Box::new(cause),
        };
        check_observation(self.model.spec(), obs).map_err(refuse)?;
        let mut goal = vec![0.0; self.d];
        self.model
            .encode(obs, &mut goal)
            .map_err(|e| refuse(e.into()))?;
        if let Some(index) = goal.iter().position(|x| !x.is_finite()) {
            return Err(refuse(PlanError::Model(ModelError::NonFinite {
                what: "encoded goal latent",
                index,
            })));
        }
        if let Some(indices) = readouts {
            let mut y = vec![0.0; self.model.spec().readouts.len()];
            self.model
                .readout(&goal, &mut y)
                .map_err(|e| refuse(e.into()))?;
            goal = indices.iter().map(|&i| y[i]).collect();
            if let Some(index) = goal.iter().position(|x| !x.is_finite()) {
                return Err(refuse(PlanError::Model(ModelError::NonFinite {
                    what: "decoded goal readouts",
                    index,
                })));
            }
        }
        Arc::make_mut(&mut self.objective).set_target(term, &goal)
    }

    /// True when the time budget is spent.
    pub fn out_of_time(&self) -> bool {
        match (self.config.time_budget_ms, self.started) {
            (Some(ms), Some(t0)) => t0.elapsed().as_secs_f64() * 1e3 >= ms,
            _ => false,
        }
    }

    /// Draws slots `from..n` around `mean` with deviation `std` (see
    /// [`ActionSampler::fill`]), from a new seed of the planner's generator, and
    /// evaluates slots `0..n` ([`Core::evaluate`]). With rollout workers,
    /// each draws and rolls out its own share of the samples.
    pub fn sample_and_evaluate(
        &mut self,
        from: usize,
        n: usize,
        mean: &[Real],
        std: &[Real],
    ) -> Result<(), PlanError> {
        let draw = self.next_draw(from, mean, std);
        self.run(n, Some(draw))
    }

    /// Draws slots `from..n` on this thread, without evaluating them.
    #[cfg(test)]
    pub fn sample_range(&mut self, from: usize, n: usize, mean: &[Real], std: &[Real]) {
        let draw = self.next_draw(from, mean, std);
        self.sampler.draw(&draw, from..n, &mut self.seqs);
    }

    /// The draw of slots from `from` around `mean`, from a new seed of the
    /// planner's generator.
    fn next_draw<'a>(&mut self, from: usize, mean: &'a [Real], std: &'a [Real]) -> Draw<'a> {
        Draw::new(self.rng.next_u64(), from, mean, std)
    }

    /// Ends the rollout worker threads, keeping the pool (see
    /// [`Pool::stall_workers`]); false without a pool.
    #[cfg(test)]
    pub fn stall_rollout_workers(&mut self) -> bool {
        self.pool.as_mut().map(Pool::stall_workers).is_some()
    }

    /// Makes the rollout pool wait for every job instead of taking back the
    /// ones its workers have not started (see [`Pool::never_take_back`]);
    /// false without a pool.
    #[cfg(test)]
    pub fn never_take_back_jobs(&mut self) -> bool {
        self.pool.as_mut().map(Pool::never_take_back).is_some()
    }

    /// Copies `src` (`H×A`) into sequence slot `i`.
    pub fn set_seq(&mut self, i: usize, src: &[Real]) {
        let len = self.h * self.a;
        Arc::make_mut(&mut self.seqs)[i * len..(i + 1) * len].copy_from_slice(src);
    }

    /// Fills slot `i` with the fallback held for the whole horizon.
    pub fn set_fallback_seq(&mut self, i: usize) {
        let (h, a) = (self.h, self.a);
        let seqs = Arc::make_mut(&mut self.seqs);
        for t in 0..h {
            let at = (i * h + t) * a;
            seqs[at..at + a].copy_from_slice(self.state.fallback());
        }
    }

    /// Evaluates the first `n` sequences: task cost and guardrail violation.
    /// Also remembers the best of them (feasible first). With rollout
    /// workers, the samples are shared between them and this thread.
    pub fn evaluate(&mut self, n: usize) -> Result<(), PlanError> {
        self.run(n, None)
    }

    /// [`Core::evaluate`], drawing slots first when `draw` says so.
    fn run(&mut self, n: usize, draw: Option<Draw<'_>>) -> Result<(), PlanError> {
        let len = self.h * self.a;
        let start = self.state.start();
        let batch = Batch::new(&mut self.seqs, n, draw.map(|d| (d, &mut self.sampler)));
        match &mut self.pool {
            Some(pool) if n >= MIN_PARALLEL => {
                let rolled = pool.roll_out(
                    &mut self.model,
                    &self.objective,
                    batch,
                    start,
                    &mut self.roll,
                );
                if pool.broken() {
                    // A worker stopped: later calls roll out on this thread.
                    self.pool = None;
                }
                rolled?;
            }
            _ => batch.roll_out(&mut self.model, &self.objective, start, &mut self.roll)?,
        }
        let r = &self.roll;
        self.state
            .remember_best(&r.costs()[..n], &r.violations()[..n], &self.seqs[..n * len]);
        Ok(())
    }

    /// Keeps the best [`PlannerConfig::keep_rollouts`] of the first `n`
    /// evaluated sequences in the plan (no-op when none are kept). Called
    /// after each full sampling iteration, so the last one's remain.
    pub fn keep_rollouts(&mut self, n: usize) {
        let k = self.config.keep_rollouts.min(n);
        self.roll.keep_best(k, n, &mut self.plan);
    }

    /// Slots `next..n` of the candidate sequences, for a solver's own
    /// candidates.
    pub fn slots(&mut self, next: usize, n: usize) -> Slots<'_> {
        let len = self.h * self.a;
        Slots::new(&mut Arc::make_mut(&mut self.seqs)[..], len, next, n)
    }

    /// The first `n` evaluated sequences with their scores, `feasible` of
    /// them feasible.
    pub fn scored(&self, n: usize, feasible: usize) -> Scored<'_> {
        let len = self.h * self.a;
        let r = &self.roll;
        Scored::new(
            &r.costs()[..n],
            &r.violations()[..n],
            &self.seqs[..n * len],
            feasible,
        )
    }

    /// The candidate sequences (`N×H×A`), to read draws in tests.
    #[cfg(test)]
    pub fn seqs(&self) -> &[Real] {
        &self.seqs
    }

    /// Task cost of every slot's last evaluation (`N`), for tests.
    #[cfg(test)]
    pub fn costs(&self) -> &[Real] {
        self.roll.costs()
    }

    /// Summed violation of every slot's last evaluation (`N`), for tests.
    #[cfg(test)]
    pub fn violations(&self) -> &[Real] {
        self.roll.violations()
    }

    /// The world model.
    pub fn model(&self) -> &M {
        &self.model
    }

    /// The objective.
    pub fn objective(&self) -> &Objective {
        &self.objective
    }

    /// The objective, to change; copied only while rollout workers hold it
    /// (never after a call).
    pub fn objective_mut(&mut self) -> &mut Objective {
        Arc::make_mut(&mut self.objective)
    }

    /// The planner's configuration.
    pub fn config(&self) -> &PlannerConfig {
        &self.config
    }

    /// Horizon `H`, action, latent and readout sizes.
    pub fn sizes(&self) -> (usize, usize, usize, usize) {
        (self.h, self.a, self.d, self.p)
    }

    /// The actions' lower and upper bounds (`A` each).
    pub fn bounds(&self) -> (&[Real], &[Real]) {
        (&self.lower, &self.upper)
    }

    /// The noise scale per action (`A`): `noise · (hi − lo) / 2`.
    pub fn sigma(&self) -> &[Real] {
        &self.sigma
    }

    /// The warm start, observation, fallback and best sequence.
    pub fn state(&self) -> &PlanState {
        &self.state
    }

    /// [`Core::state`], to change in tests.
    #[cfg(test)]
    pub fn state_mut(&mut self) -> &mut PlanState {
        &mut self.state
    }

    /// The plan of the last call.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// What a rollout from the current observation needs: the model, the
    /// objective, and where it starts.
    pub fn rollout_from(&mut self) -> (&mut M, &Objective, Start<'_>) {
        (&mut self.model, &self.objective, self.state.start())
    }

    /// Number of feasible sequences among the first `n` evaluated.
    pub fn feasible_count(&self, n: usize) -> usize {
        self.roll.feasible(n)
    }

    /// Rolls out `seq` alone and writes its trajectory, costs and margins into
    /// the plan; returns `(violation, cost)`.
    pub fn trace(&mut self, seq: &[Real]) -> Result<(Real, Real), PlanError> {
        let start = self.state.start();
        let traced =
            self.tracer
                .trace(&mut self.model, &self.objective, start, seq, &mut self.plan)?;
        Ok(traced)
    }

    /// [`Core::finish`] with the best sequence seen in this call.
    pub fn finish_with_best(&mut self, ended: Ended) -> Result<(), PlanError> {
        self.chosen.copy_from_slice(self.state.best());
        self.finish_chosen(ended)
    }

    /// Ends a call with `chosen` as the plan: shields it, fills the plan, and
    /// keeps it as the next warm start.
    pub fn finish(&mut self, chosen: &[Real], ended: Ended) -> Result<(), PlanError> {
        self.chosen.copy_from_slice(chosen);
        self.finish_chosen(ended)
    }

    /// The shielded finish of `self.chosen`.
    fn finish_chosen(&mut self, ended: Ended) -> Result<(), PlanError> {
        // The shield: the returned plan is re-evaluated on its own; only a
        // plan that satisfies every guardrail may act.
        let chosen = std::mem::take(&mut self.chosen);
        let traced = self.trace(&chosen);
        let (violation, cost) = match traced {
            Ok(vc) => vc,
            Err(e) => {
                self.chosen = chosen;
                return Err(e);
            }
        };
        let feasible = violation <= 0.0 && cost.is_finite();
        let plan = &mut self.plan;
        plan.actions.copy_from_slice(&chosen);
        plan.cost = cost;
        plan.violation = violation;
        ended.report(plan, feasible);
        if feasible {
            plan.action.copy_from_slice(&chosen[..self.a]);
        } else {
            plan.action.copy_from_slice(self.state.fallback());
        }
        self.state.keep(&chosen, &plan.action);
        plan.elapsed = self.started.map_or(Duration::ZERO, |t| t.elapsed());
        self.chosen = chosen;
        Ok(())
    }
}

/// How a call ended, for [`Core::finish`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Ended {
    /// Iterations run (of every kind).
    iterations: usize,
    /// Feasible samples in the last sampling iteration.
    feasible: usize,
    /// The time budget ended first.
    timed_out: bool,
    /// The solver met its tolerance.
    converged: bool,
}

impl Ended {
    /// A call that ran `iterations` (of every kind), found `feasible`
    /// samples in its last sampling iteration, ran out of time or not, and
    /// met its solver's tolerance or not.
    pub fn new(iterations: usize, feasible: usize, timed_out: bool, converged: bool) -> Self {
        Self {
            iterations,
            feasible,
            timed_out,
            converged,
        }
    }

    /// Writes the iteration count, the feasible samples and the status into
    /// `plan`, whose shielded plan is `feasible` or not.
    fn report(&self, plan: &mut Plan, feasible: bool) {
        plan.iterations = self.iterations;
        plan.feasible_samples = self.feasible;
        plan.status = if !feasible {
            PlanStatus::NoFeasiblePlan
        } else if self.timed_out {
            PlanStatus::OutOfTime
        } else if self.converged {
            PlanStatus::Converged
        } else {
            PlanStatus::Completed
        };
    }
}

/// Checks `config`, `model`'s spec and that `objective` was compiled for its
/// readouts, bounding the workspace before any of it is allocated; returns
/// the spec.
fn check_inputs<M: WorldModel>(
    model: &M,
    objective: &Objective,
    config: &PlannerConfig,
) -> Result<ModelSpec, PlanError> {
    config.check_limits()?;
    config.validate().map_err(PlanError::Config)?;
    let spec = model.spec().clone();
    spec.validate()?;
    // Every buffer is at most `N × max(H·A, H·P, D, …)` values, which this
    // bounds (in checked arithmetic) before any is allocated.
    config.check_workspace(spec.action_dim(), spec.latent_dim, spec.readout_dim())?;
    if objective.readout_dim() != spec.readout_dim() {
        return Err(PlanError::Objective(
            crate::objective::ObjectiveError::shape(format!(
                "objective was compiled for {} readouts, model '{}' has {}",
                objective.readout_dim(),
                spec.name,
                spec.readout_dim()
            )),
        ));
    }
    Ok(spec)
}

/// The middle of the action bounds of `spec`, clamped into them (`A`).
fn mid_actions(spec: &ModelSpec) -> Vec<Real> {
    let mut mid: Vec<Real> = vec![0.0; spec.action_dim()];
    spec.clamp_actions(&mut mid);
    mid
}

/// The noise scale per action of `spec`: `noise · (hi − lo) / 2`.
fn noise_scale(spec: &ModelSpec, noise: Real) -> Vec<Real> {
    spec.action_lower
        .iter()
        .zip(&spec.action_upper)
        .map(|(lo, hi)| noise * 0.5 * (hi - lo))
        .collect()
}

/// The sampler of `config`'s knots and noise within `spec`'s bounds.
fn action_sampler(dims: Dims, spec: &ModelSpec, config: &PlannerConfig) -> ActionSampler {
    let h = dims.horizon();
    ActionSampler::new(
        dims,
        &spec.action_lower,
        &spec.action_upper,
        Knots::new(
            h,
            config.knots.unwrap_or(h),
            config.interpolation,
            config.colored_noise_beta,
        ),
    )
}

/// `objective` with `model`'s readout errors (the first
/// [`PlannerConfig::model_error_steps`] steps of them) as guardrail margins.
fn with_readout_errors<M: WorldModel>(
    mut objective: Objective,
    model: &M,
    config: &PlannerConfig,
) -> Result<Objective, PlanError> {
    if let Some(mut errors) = model.readout_errors() {
        // With an actuation delay the start is already `delay_steps`
        // predicted steps on: the margins of the plan's steps follow (with
        // identification, from the largest delay's start, the wider).
        for row in &mut errors {
            let skip = config.delay_steps.min(row.len().saturating_sub(1));
            row.drain(..skip);
        }
        if let Some(k) = config.model_error_steps {
            for row in &mut errors {
                row.truncate(k);
            }
        }
        objective.set_readout_errors(&errors)?;
    }
    Ok(objective)
}

/// The plan before any call, its buffers sized for `dims`, `objective` and
/// `keep` kept rollouts.
fn empty_plan(dims: Dims, objective: &Objective, keep: usize) -> Plan {
    let (h, a, _, p) = dims.sizes();
    Plan {
        status: PlanStatus::NoFeasiblePlan,
        action: vec![0.0; a],
        actions: vec![0.0; h * a],
        readouts: vec![0.0; h * p],
        decoded: vec![0.0; p],
        delay_steps: 0,
        cost: Real::INFINITY,
        term_costs: vec![0.0; objective.num_terms()],
        margins: vec![0.0; objective.num_guardrails()],
        violation: Real::INFINITY,
        feasible_samples: 0,
        iterations: 0,
        elapsed: Duration::ZERO,
        rollouts: Vec::with_capacity(keep * h * p),
        rollout_costs: Vec::with_capacity(keep),
        rollout_violations: Vec::with_capacity(keep),
    }
}
