//! What every planner shares: the rollout workspace, sampling, feasible-first
//! ranking, warm start, fallback and the final shielded plan.

use super::knots::Knots;
use super::pool::{MIN_PARALLEL, Pool};
use super::{Fallback, Plan, PlanStatus, PlannerConfig};
use crate::Real;
use crate::error::{ModelError, PlanError};
use crate::math::{self, Wide, wide};
use crate::model::{ModelSpec, WorldModel};
use crate::objective::{Margins, Objective, ObjectiveScratch};
use crate::rng::Rng;
use std::cmp::Ordering;
use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Horizon `H`, action, latent and readout sizes of a rollout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Shape {
    pub h: usize,
    pub a: usize,
    pub d: usize,
    pub p: usize,
}

/// Rollout buffers for `N` sequences, allocated once.
#[derive(Debug)]
pub(crate) struct Rollouts {
    z: Vec<Real>,
    z_next: Vec<Real>,
    /// Readouts of `z` and of `z_next`.
    y: Vec<Real>,
    y_next: Vec<Real>,
    u_t: Vec<Real>,
    u_prev_t: Vec<Real>,
    /// Guardrail margins of a step, per row.
    margins: Margins,
    /// One step's task cost per sequence.
    step: Vec<Real>,
    /// Task cost per sequence.
    pub cost: Vec<Real>,
    /// Summed guardrail violation per sequence (0 when feasible).
    pub violation: Vec<Real>,
    /// Predicted readouts of every sequence (`N×H×P`), kept only when the
    /// planner keeps rollouts for inspection (empty otherwise).
    pub ys: Vec<Real>,
    /// Sequence indices, for ranking the kept rollouts without allocating.
    order: Vec<usize>,
}

impl Rollouts {
    pub fn new(n: usize, d: usize, a: usize, p: usize, g: usize, h: usize, keep: bool) -> Self {
        Self {
            z: vec![0.0; n * d],
            z_next: vec![0.0; n * d],
            y: vec![0.0; n * p],
            y_next: vec![0.0; n * p],
            u_t: vec![0.0; n * a],
            u_prev_t: vec![0.0; n * a],
            margins: if g > 0 {
                Margins::new(n)
            } else {
                Margins::default()
            },
            step: vec![0.0; n],
            cost: vec![0.0; n],
            violation: vec![0.0; n],
            ys: if keep {
                vec![0.0; n * h * p]
            } else {
                Vec::new()
            },
            order: if keep { (0..n).collect() } else { Vec::new() },
        }
    }
}

/// Feasible before infeasible; then by violation, then by cost.
pub(crate) fn rank(violation_a: Real, cost_a: Real, violation_b: Real, cost_b: Real) -> Ordering {
    let fa = violation_a <= 0.0;
    let fb = violation_b <= 0.0;
    match (fa, fb) {
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        (true, true) => cost_a.total_cmp(&cost_b),
        (false, false) => violation_a
            .total_cmp(&violation_b)
            .then(cost_a.total_cmp(&cost_b)),
    }
}

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

/// Rolls out the sequences `seqs` (`n×H×A`) from latent `z0`, the action
/// `u_last` applied before them: the task cost and summed guardrail
/// violation of each go to `roll.cost[..n]` and `roll.violation[..n]`, its
/// readouts to `roll.ys` when rollouts are kept. One batched
/// [`WorldModel::step`] per step, the objective term by term over the batch.
#[allow(clippy::too_many_arguments)]
pub(crate) fn roll_out<M: WorldModel + ?Sized>(
    model: &mut M,
    objective: &Objective,
    seqs: &[Real],
    z0: &[Real],
    u_last: &[Real],
    shape: Shape,
    r: &mut Rollouts,
    scratch: &mut ObjectiveScratch,
) -> Result<(), ModelError> {
    let Shape { h, a, d, p } = shape;
    let n = seqs.len() / (h * a).max(1);
    for z in r.z[..n * d].chunks_exact_mut(d) {
        for (z, z0) in z.iter_mut().zip(z0) {
            *z = *z0;
        }
    }
    for u in r.u_prev_t[..n * a].chunks_exact_mut(a) {
        for (u, u0) in u.iter_mut().zip(u_last) {
            *u = *u0;
        }
    }
    model.readout(&r.z[..n * d], &mut r.y[..n * p])?;
    r.cost[..n].fill(0.0);
    r.violation[..n].fill(0.0);
    let guarded = objective.num_guardrails() > 0;
    for t in 0..h {
        gather_step(seqs, t, shape, &mut r.u_t[..n * a]);
        model.step(
            &r.z[..n * d],
            &r.y[..n * p],
            &r.u_t[..n * a],
            &mut r.z_next[..n * d],
            &mut r.y_next[..n * p],
        )?;
        objective.stage_costs(
            &r.y_next[..n * p],
            &r.z_next[..n * d],
            &r.u_t[..n * a],
            &r.u_prev_t[..n * a],
            t + 1 == h,
            scratch,
            &mut r.step[..n],
        );
        for (c, s) in r.cost[..n].iter_mut().zip(&r.step[..n]) {
            *c += s;
        }
        let y_next = &r.y_next[..n * p];
        let finite = math::all_finite(y_next);
        if guarded {
            objective.add_violations(y_next, t, finite, &mut r.margins, &mut r.violation[..n]);
        } else if !finite {
            for (y, v) in y_next.chunks_exact(p).zip(&mut r.violation[..n]) {
                if !y.iter().all(|x| x.is_finite()) {
                    *v += Real::INFINITY;
                }
            }
        }
        if !r.ys.is_empty() {
            for i in 0..n {
                let at = (i * h + t) * p;
                r.ys[at..at + p].copy_from_slice(&r.y_next[i * p..(i + 1) * p]);
            }
        }
        std::mem::swap(&mut r.z, &mut r.z_next);
        std::mem::swap(&mut r.y, &mut r.y_next);
        std::mem::swap(&mut r.u_prev_t, &mut r.u_t);
    }
    Ok(())
}

/// Step `t`'s actions of every sequence (`n×H×A`) into `u_t` (`n×A`).
fn gather_step(seqs: &[Real], t: usize, shape: Shape, u_t: &mut [Real]) {
    let Shape { h, a, .. } = shape;
    match a {
        1 => {
            for (u, x) in u_t.iter_mut().zip(seqs[t..].iter().step_by(h)) {
                *u = *x;
            }
        }
        2 => gather_rows::<2>(seqs, t, h, u_t),
        3 => gather_rows::<3>(seqs, t, h, u_t),
        _ => {
            for (u, seq) in u_t.chunks_exact_mut(a).zip(seqs.chunks_exact(h * a)) {
                for (u, x) in u.iter_mut().zip(&seq[t * a..(t + 1) * a]) {
                    *u = *x;
                }
            }
        }
    }
}

/// [`gather_step`] for `A` actions, a width known to the compiler (plain
/// loads and stores, not a call to copy each row).
fn gather_rows<const A: usize>(seqs: &[Real], t: usize, h: usize, u_t: &mut [Real]) {
    let rows = u_t.as_chunks_mut::<A>().0;
    for (u, seq) in rows.iter_mut().zip(seqs.chunks_exact(h * A)) {
        for (k, u) in u.iter_mut().enumerate() {
            *u = seq[t * A + k];
        }
    }
}

/// Draws candidate sequences around a mean. Sample `i` of an iteration takes
/// its noise from its own random stream ([`Rng::stream`] of the iteration's
/// seed and `i`), so that any thread can draw any sample and the plan does
/// not depend on which one did. Each rollout worker has a copy.
#[derive(Clone, Debug)]
pub(crate) struct Sampler {
    h: usize,
    a: usize,
    lower: Vec<Real>,
    upper: Vec<Real>,
    /// Where the noise is drawn and how it is spread over the steps.
    knots: Knots,
    noise_t: Vec<Real>,
}

impl Sampler {
    /// Fills `seqs` (`m×H×A`: samples `first..first + m`) with
    /// `mean + std ⊙ W·ε` (`ε` colored noise across the knots, `W` their
    /// interpolation to the steps; `W = I` without knots), clamped into the
    /// action bounds. `std` is per `(t, a)` when it has `H×A` values and per
    /// action when it has `A`.
    pub fn fill(
        &mut self,
        seed: u64,
        first: usize,
        seqs: &mut [Real],
        mean: &[Real],
        std: &[Real],
    ) {
        let (h, a) = (self.h, self.a);
        for (i, seq) in (first..).zip(seqs.chunks_exact_mut(h * a)) {
            let mut rng = Rng::stream(seed, i);
            for k in 0..a {
                self.knots.sample(&mut rng, &mut self.noise_t);
                let (lo, hi) = (self.lower[k], self.upper[k]);
                let noise = &self.noise_t;
                if a == 1 {
                    // One action: contiguous slices, a loop in vectors.
                    wide(Perturb {
                        seq,
                        mean,
                        noise,
                        std,
                        bounds: (lo, hi),
                    });
                } else {
                    for (t, e) in noise.iter().enumerate() {
                        let s = if std.len() == a {
                            std[k]
                        } else {
                            std[t * a + k]
                        };
                        seq[t * a + k] = math::clip(mean[t * a + k] + s * e, lo, hi);
                    }
                }
            }
        }
    }

    /// [`Sampler::fill`] of slots `slots` of the shared sequences, as `draw`
    /// says. Nobody else may hold `seqs` (then it is not copied).
    pub fn draw(&mut self, draw: &Draw<'_>, slots: Range<usize>, seqs: &mut Arc<Vec<Real>>) {
        let len = self.h * self.a;
        let seqs = &mut Arc::make_mut(seqs)[slots.start * len..slots.end * len];
        self.fill(draw.seed, slots.start, seqs, draw.mean, draw.std);
    }
}

/// `seq = clip(mean + std ⊙ noise)` for one action: `std` has one value,
/// or one per step.
struct Perturb<'a> {
    seq: &'a mut [Real],
    mean: &'a [Real],
    noise: &'a [Real],
    std: &'a [Real],
    bounds: (Real, Real),
}

impl Wide for Perturb<'_> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let (lo, hi) = self.bounds;
        let rows = self.seq.iter_mut().zip(self.mean).zip(self.noise);
        if let [s] = self.std {
            for ((x, m), e) in rows {
                *x = math::clip(m + s * e, lo, hi);
            }
        } else {
            for (((x, m), e), s) in rows.zip(self.std) {
                *x = math::clip(m + s * e, lo, hi);
            }
        }
    }
}

/// The samples an evaluation draws before rolling out: slots `from..n`,
/// from the streams of `seed` (see [`Sampler`]).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Draw<'a> {
    pub seed: u64,
    pub from: usize,
    pub mean: &'a [Real],
    pub std: &'a [Real],
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
    scratch: ObjectiveScratch,
    sampler: Sampler,
    /// Best sequence seen in this call and its score.
    pub best: Vec<Real>,
    pub best_cost: Real,
    pub best_violation: Real,
    pub plan: Plan,
    started: Option<Instant>,
    chosen: Vec<Real>,
    trace_z: Vec<Real>,
    trace_z_next: Vec<Real>,
    trace_margins: Vec<Real>,
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
            return Err(PlanError::Objective(format!(
                "objective was compiled for {} readouts, model '{}' has {}",
                objective.readout_dim(),
                spec.name,
                spec.readout_dim()
            )));
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
        let scratch = objective.scratch();
        let sampler = Sampler {
            h,
            a,
            lower: spec.action_lower.clone(),
            upper: spec.action_upper.clone(),
            knots: Knots::new(
                h,
                config.knots.unwrap_or(h),
                config.interpolation,
                config.colored_noise_beta,
            ),
            noise_t: vec![0.0; h],
        };
        let pool = Pool::start(
            &model,
            &objective,
            &sampler,
            config.threads,
            n,
            Shape { h, a, d, p },
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
            roll: Rollouts::new(n, d, a, p, g, h, config.keep_rollouts > 0),
            scratch,
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
            trace_z: vec![0.0; d],
            trace_z_next: vec![0.0; d],
            trace_margins: vec![0.0; g],
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
    /// [`Sampler::fill`]), from a new seed of the planner's generator, and
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
        let (h, a, d, p) = (self.h, self.a, self.d, self.p);
        let shape = Shape { h, a, d, p };
        let len = h * a;
        match &mut self.pool {
            Some(pool) if n >= MIN_PARALLEL => {
                let rolled = pool.roll_out(
                    &mut self.model,
                    &self.objective,
                    &mut self.seqs,
                    n,
                    draw.map(|d| (d, &mut self.sampler)),
                    &self.z0,
                    &self.u_last,
                    &mut self.roll,
                    &mut self.scratch,
                );
                if pool.broken() {
                    // A worker stopped: later calls roll out on this thread.
                    self.pool = None;
                }
                rolled?;
            }
            _ => {
                if let Some(d) = draw {
                    self.sampler.draw(&d, d.from..n, &mut self.seqs);
                }
                roll_out(
                    &mut self.model,
                    &self.objective,
                    &self.seqs[..n * len],
                    &self.z0,
                    &self.u_last,
                    shape,
                    &mut self.roll,
                    &mut self.scratch,
                )?;
            }
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
        let (h, a, d, p) = (self.h, self.a, self.d, self.p);
        let plan = &mut self.plan;
        plan.term_costs.fill(0.0);
        plan.margins.fill(Real::INFINITY);
        let (mut z, mut z_next) = (
            std::mem::take(&mut self.trace_z),
            std::mem::take(&mut self.trace_z_next),
        );
        z.copy_from_slice(&self.z0);
        let margins = &mut self.trace_margins;
        let mut cost = 0.0;
        let mut violation = 0.0;
        for t in 0..h {
            let u = &seq[t * a..(t + 1) * a];
            let up = if t == 0 {
                &self.u_last[..]
            } else {
                &seq[(t - 1) * a..t * a]
            };
            let y = &mut plan.readouts[t * p..(t + 1) * p];
            let step = self
                .model
                .predict(&z, u, &mut z_next)
                .and_then(|()| self.model.readout(&z_next, y));
            if let Err(e) = step {
                self.trace_z = z;
                self.trace_z_next = z_next;
                return Err(e.into());
            }
            cost += self.objective.stage_cost(
                y,
                &z_next,
                u,
                up,
                t + 1 == h,
                &mut self.scratch,
                Some(&mut plan.term_costs),
            );
            self.objective.margins_at_step(y, t, margins);
            for (m, o) in margins.iter().zip(plan.margins.iter_mut()) {
                violation += (-m).max(0.0);
                *o = o.min(*m);
            }
            if y.iter().any(|x| !x.is_finite()) {
                violation = Real::INFINITY;
            }
            std::mem::swap(&mut z, &mut z_next);
        }
        debug_assert_eq!(d, z.len());
        self.trace_z = z;
        self.trace_z_next = z_next;
        Ok((violation, cost))
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
