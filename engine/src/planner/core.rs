//! What every planner shares: the rollout workspace, sampling, feasible-first
//! ranking, warm start, fallback and the final shielded plan.

use super::knots::Knots;
use super::pool::{MIN_PARALLEL, Pool};
pub(crate) use super::rollout::rank;
use super::rollout::{ActionSampler, Batch, Dims, Draw, Rollouts, Start, Tracer};
use super::{Fallback, Plan, PlanStatus, PlannerConfig};
use crate::Real;
use crate::error::{ModelError, PlanError};
use crate::model::{ModelSpec, WorldModel};
use crate::objective::Objective;
use crate::rng::Rng;
use std::cmp::Ordering;
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

/// State and workspace shared by the planners.
#[derive(Debug)]
pub(crate) struct Core<M> {
    pub model: M,
    /// Shared with the rollout workers during an iteration; mutate it
    /// through [`Arc::make_mut`], which does not copy once they are done.
    pub objective: Arc<Objective>,
    pub config: PlannerConfig,
    pub rng: Rng,
    pub h: usize,
    pub a: usize,
    pub d: usize,
    pub p: usize,
    pub lower: Vec<Real>,
    pub upper: Vec<Real>,
    /// Noise scale per action: `noise · (hi − lo) / 2`.
    pub sigma: Vec<Real>,
    /// Warm-start sequence (`H×A`).
    pub nominal: Vec<Real>,
    pub has_nominal: bool,
    /// The action applied last (for action-rate terms).
    pub u_last: Vec<Real>,
    pub has_last: bool,
    /// The latent of the current observation (`D`) and its readouts (`P`).
    pub z0: Vec<Real>,
    pub y0: Vec<Real>,
    /// Fallback action for the current observation.
    pub fallback: Vec<Real>,
    fallback_idx: Vec<usize>,
    /// Candidate sequences (`N×H×A`), shared with the rollout workers like
    /// [`Core::objective`].
    pub seqs: Arc<Vec<Real>>,
    pub roll: Rollouts,
    /// Rollout workers (`config.threads > 1` and a model that forks).
    pool: Option<Pool>,
    sampler: ActionSampler,
    /// Best sequence seen in this call and its score.
    pub best: Vec<Real>,
    pub best_cost: Real,
    pub best_violation: Real,
    pub plan: Plan,
    started: Option<Instant>,
    chosen: Vec<Real>,
    tracer: Tracer,
}

impl<M: WorldModel> Core<M> {
    pub fn new(model: M, objective: Objective, config: PlannerConfig) -> Result<Self, PlanError> {
        config.check_limits()?;
        config.validate().map_err(PlanError::Config)?;
        let spec = model.spec().clone();
        spec.validate()?;
        // Every buffer below is at most `N × max(H·A, H·P, D, …)` values,
        // which this bounds (in checked arithmetic) before any is allocated.
        config.check_workspace(spec.action_dim(), spec.latent_dim, spec.readout_dim())?;
        if objective.readout_dim() != spec.readout_dim() {
            return Err(PlanError::Objective(crate::objective::ObjectiveError::shape(format!(
                "objective was compiled for {} readouts, model '{}' has {}",
                objective.readout_dim(),
                spec.name,
                spec.readout_dim()
            ))));
        }
        let (h, a, d, p) = (
            config.horizon,
            spec.action_dim(),
            spec.latent_dim,
            spec.readout_dim(),
        );
        let n = config.samples;
        let g = objective.num_guardrails();
        let fallback_idx = match &config.fallback {
            Fallback::Zero => Vec::new(),
            Fallback::Constant { action } => {
                if action.len() != a || action.iter().any(|x| !x.is_finite()) {
                    return Err(PlanError::Config(format!(
                        "fallback action must have {a} finite values, got {action:?}"
                    )));
                }
                Vec::new()
            }
            Fallback::Hold { readouts } => {
                if readouts.len() != a {
                    return Err(PlanError::Config(format!(
                        "fallback hold names {} readouts, the model has {a} actions",
                        readouts.len()
                    )));
                }
                readouts
                    .iter()
                    .map(|r| {
                        spec.readout_index(r).ok_or_else(|| {
                            PlanError::Config(format!(
                                "fallback hold: model '{}' has no readout '{r}'",
                                spec.name
                            ))
                        })
                    })
                    .collect::<Result<_, _>>()?
            }
        };
        let sigma = spec
            .action_lower
            .iter()
            .zip(&spec.action_upper)
            .map(|(lo, hi)| config.noise * 0.5 * (hi - lo))
            .collect();
        let mut mid: Vec<Real> = vec![0.0; a];
        spec.clamp_actions(&mut mid);
        let nominal = mid.repeat(h);
        let mut objective = objective;
        if let Some(mut errors) = model.readout_errors() {
            if let Some(k) = config.model_error_steps {
                for row in &mut errors {
                    row.truncate(k);
                }
            }
            objective.set_readout_errors(&errors)?;
        }
        let dims = Dims { h, a, d, p };
        let sampler = ActionSampler::new(
            dims,
            &spec.action_lower,
            &spec.action_upper,
            Knots::new(
                h,
                config.knots.unwrap_or(h),
                config.interpolation,
                config.colored_noise_beta,
            ),
        );
        let pool = Pool::start(
            &model,
            &objective,
            &sampler,
            config.threads,
            n,
            dims,
            config.keep_rollouts > 0,
        )
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
            sigma,
            nominal: nominal.clone(),
            has_nominal: false,
            u_last: mid.clone(),
            has_last: false,
            z0: vec![0.0; d],
            y0: vec![0.0; p],
            fallback: mid,
            fallback_idx,
            seqs: Arc::new(vec![0.0; n * h * a]),
            roll: Rollouts::new(n, dims, &objective, config.keep_rollouts > 0),
            tracer: Tracer::new(dims, &objective),
            sampler,
            best: nominal,
            best_cost: Real::INFINITY,
            best_violation: Real::INFINITY,
            plan: Plan {
                status: PlanStatus::NoFeasiblePlan,
                action: vec![0.0; a],
                actions: vec![0.0; h * a],
                readouts: vec![0.0; h * p],
                cost: Real::INFINITY,
                term_costs: vec![0.0; objective.num_terms()],
                margins: vec![0.0; g],
                violation: Real::INFINITY,
                feasible_samples: 0,
                iterations: 0,
                elapsed: Duration::ZERO,
                rollouts: Vec::with_capacity(config.keep_rollouts * h * p),
                rollout_costs: Vec::with_capacity(config.keep_rollouts),
                rollout_violations: Vec::with_capacity(config.keep_rollouts),
            },
            model,
            objective: Arc::new(objective),
            config,
            started: None,
            chosen: vec![0.0; h * a],
        })
    }

    pub fn reset(&mut self) {
        self.has_nominal = false;
        self.has_last = false;
        let mut mid = vec![0.0; self.a];
        self.model.spec().clamp_actions(&mut mid);
        for row in self.nominal.chunks_mut(self.a) {
            row.copy_from_slice(&mid);
        }
        self.u_last.copy_from_slice(&mid);
    }

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
        self.model.encode(obs, &mut self.z0)?;
        self.model.readout(&self.z0, &mut self.y0)?;
        Arc::make_mut(&mut self.objective).relax_buffers(&self.y0);
        if let Some(i) = self.z0.iter().chain(&self.y0).position(|x| !x.is_finite()) {
            return Err(PlanError::Model(ModelError::NonFinite {
                what: "encoded latent or readout",
                index: i,
            }));
        }
        match &self.config.fallback {
            Fallback::Zero => self.fallback.fill(0.0),
            Fallback::Constant { action } => self.fallback.copy_from_slice(action),
            Fallback::Hold { .. } => {
                for (f, i) in self.fallback.iter_mut().zip(&self.fallback_idx) {
                    *f = self.y0[*i];
                }
            }
        }
        self.model.spec().clamp_actions(&mut self.fallback);
        if self.has_nominal {
            // Shift by one step and repeat the last action; a one-step plan
            // is kept as it is.
            let a = self.a;
            if self.nominal.len() > a {
                self.nominal.copy_within(a.., 0);
                let last = self.nominal.len() - a;
                let (head, tail) = self.nominal.split_at_mut(last);
                tail.copy_from_slice(&head[last - a..]);
            }
        } else {
            // First call: start from holding the fallback, a plan that is
            // usually safe and always admissible.
            for row in self.nominal.chunks_mut(self.a) {
                row.copy_from_slice(&self.fallback);
            }
        }
        if !self.has_last {
            self.u_last.copy_from_slice(&self.nominal[..self.a]);
        }
        self.best.copy_from_slice(&self.nominal);
        self.best_cost = Real::INFINITY;
        self.best_violation = Real::INFINITY;
        Ok(())
    }

    /// Encodes the goal observation `obs` and makes it the goal latent of the
    /// latent term `term`. Not on the per-step path: it allocates the goal
    /// latent. On any error the previous goal is kept.
    pub fn set_goal_observation(&mut self, term: &str, obs: &[Real]) -> Result<(), PlanError> {
        self.objective.check_latent_term(term)?;
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
        Draw {
            seed: self.rng.next_u64(),
            from,
            mean,
            std,
        }
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
            seqs[at..at + a].copy_from_slice(&self.fallback);
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
        let start = Start::new(&self.z0, &self.u_last);
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
        for i in 0..n {
            let (v, c) = (r.violation[i], r.cost[i]);
            if rank(v, c, self.best_violation, self.best_cost) == Ordering::Less {
                self.best_violation = v;
                self.best_cost = c;
                self.best
                    .copy_from_slice(&self.seqs[i * len..(i + 1) * len]);
            }
        }
        Ok(())
    }

    /// Keeps the best [`PlannerConfig::keep_rollouts`] of the first `n`
    /// evaluated sequences in the plan (no-op when none are kept). Called
    /// after each full sampling iteration, so the last one's remain.
    pub fn keep_rollouts(&mut self, n: usize) {
        let k = self.config.keep_rollouts.min(n);
        let r = &mut self.roll;
        if k == 0 || r.ys.is_empty() {
            return;
        }
        let (cost, violation) = (&r.cost, &r.violation);
        let order = &mut r.order[..n];
        for (i, o) in order.iter_mut().enumerate() {
            *o = i;
        }
        order.sort_unstable_by(|&i, &j| rank(violation[i], cost[i], violation[j], cost[j]));
        let len = self.h * self.p;
        let plan = &mut self.plan;
        plan.rollouts.clear();
        plan.rollout_costs.clear();
        plan.rollout_violations.clear();
        for &i in &order[..k] {
            plan.rollouts
                .extend_from_slice(&r.ys[i * len..(i + 1) * len]);
            plan.rollout_costs.push(cost[i]);
            plan.rollout_violations.push(violation[i]);
        }
    }

    /// Number of feasible sequences among the first `n` evaluated.
    pub fn feasible_count(&self, n: usize) -> usize {
        self.roll.violation[..n]
            .iter()
            .filter(|v| **v <= 0.0)
            .count()
    }

    /// Rolls out `seq` alone and writes its trajectory, costs and margins into
    /// the plan; returns `(violation, cost)`.
    pub fn trace(&mut self, seq: &[Real]) -> Result<(Real, Real), PlanError> {
        let start = Start::new(&self.z0, &self.u_last);
        let traced =
            self.tracer
                .trace(&mut self.model, &self.objective, start, seq, &mut self.plan)?;
        Ok(traced)
    }

    /// [`Core::finish`] with the best sequence seen in this call.
    pub fn finish_with_best(
        &mut self,
        iterations: usize,
        feasible_samples: usize,
        timed_out: bool,
        converged: bool,
    ) -> Result<(), PlanError> {
        self.chosen.copy_from_slice(&self.best);
        self.finish_chosen(iterations, feasible_samples, timed_out, converged)
    }

    /// Ends a call with `chosen` as the plan: shields it, fills the plan, and
    /// keeps it as the next warm start.
    pub fn finish(
        &mut self,
        chosen: &[Real],
        iterations: usize,
        feasible_samples: usize,
        timed_out: bool,
        converged: bool,
    ) -> Result<(), PlanError> {
        self.chosen.copy_from_slice(chosen);
        self.finish_chosen(iterations, feasible_samples, timed_out, converged)
    }

    fn finish_chosen(
        &mut self,
        iterations: usize,
        feasible_samples: usize,
        timed_out: bool,
        converged: bool,
    ) -> Result<(), PlanError> {
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
        plan.iterations = iterations;
        plan.feasible_samples = feasible_samples;
        plan.status = if !feasible {
            PlanStatus::NoFeasiblePlan
        } else if timed_out {
            PlanStatus::OutOfTime
        } else if converged {
            PlanStatus::Converged
        } else {
            PlanStatus::Completed
        };
        if feasible {
            plan.action.copy_from_slice(&chosen[..self.a]);
        } else {
            plan.action.copy_from_slice(&self.fallback);
        }
        self.nominal.copy_from_slice(&chosen);
        self.has_nominal = true;
        self.u_last.copy_from_slice(&plan.action);
        self.has_last = true;
        plan.elapsed = self.started.map_or(Duration::ZERO, |t| t.elapsed());
        self.chosen = chosen;
        Ok(())
    }
}
