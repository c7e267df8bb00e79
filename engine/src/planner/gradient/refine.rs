//! L-BFGS on the augmented Lagrangian, through argmin.
//!
//! The unconstrained variable is `v ∈ ℝ^{H×A}` with `u = c + h·tanh(v)` (`c`, `h`
//! the centre and half range of the action bounds), so every iterate respects
//! the bounds by construction. Each round minimises
//! `L(v) = J(u(v)) + Σ_{t,k} ψ(m_{t,k}; λ_{t,k}, ρ)` with argmin's `LBFGS`
//! (Nocedal & Wright, *Numerical Optimization*, 2nd ed., Algorithm 7.5) and a
//! More–Thuente line search (Moré & Thuente, ACM TOMS 1994), then updates the
//! multipliers (see [`Multipliers`]).
//!
//! argmin's traits take `&self`, so the problem keeps the model and the
//! buffers behind a `RefCell`. argmin itself allocates: every iteration clones
//! parameter and gradient vectors, the L-BFGS history and the line-search
//! executor, and `Gradient::gradient` must return an owned `Vec`.

use super::adjoint::{Adjoint, Multipliers, Rollout};
use crate::Real;
use crate::error::ModelError;
use crate::model::WorldModel;
use crate::planner::driver::Driver;
use argmin::core::{
    CostFunction, Error as ArgminError, Executor, Gradient as ArgminGradient, State,
    TerminationReason,
};
use argmin::solver::linesearch::MoreThuenteLineSearch;
use argmin::solver::quasinewton::LBFGS;
use std::cell::RefCell;

/// How far from `±1` the start `tanh(v₀)` is kept: `atanh` is infinite at the
/// bounds and its slope vanishes there.
const TANH_LIMIT: Real = 0.999;
/// L-BFGS memory `m`.
const HISTORY: usize = 8;
/// Gradient-norm tolerance, relative to the proposal's cost scale.
const TOL_GRAD: Real = 1e-6;
/// Tolerance on the change of `L` between iterations, relative to the cost scale.
const TOL_COST: Real = 1e-10;
/// Function evaluations allowed per L-BFGS iteration (line search included).
const EVALS_PER_ITERATION: usize = 25;

/// Why a round stopped before argmin's own termination.
#[derive(Debug)]
pub(crate) enum Stop {
    /// The time budget is spent.
    OutOfTime,
    /// Too many evaluations in one round.
    EvaluationLimit,
    /// The Lagrangian or its gradient is not finite (or the solver could not
    /// be set up).
    NonFinite,
    /// The world model failed.
    Model(ModelError),
}

/// Outcome of one L-BFGS round.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Round {
    /// L-BFGS iterations run.
    iterations: usize,
    /// L-BFGS met its gradient or cost tolerance.
    converged: bool,
}

impl Round {
    /// L-BFGS iterations run.
    pub fn iterations(&self) -> usize {
        self.iterations
    }

    /// L-BFGS met its gradient or cost tolerance.
    pub fn converged(&self) -> bool {
        self.converged
    }
}

/// Refinement workspace, allocated once per planner.
#[derive(Debug)]
pub(crate) struct Refiner {
    adjoint: Adjoint,
    mult: Multipliers,
    centre: Vec<Real>,
    half: Vec<Real>,
    /// Unconstrained iterate `v` (`H×A`).
    v: Vec<Real>,
    /// Actions `u(v)` of the last rollout.
    u: Vec<Real>,
    /// `∂L/∂u`.
    gu: Vec<Real>,
    /// `v` of the last rollout, and whether it is current.
    cached: Vec<Real>,
    cached_ok: bool,
    last: Rollout,
    /// Best feasible sequence evaluated in this call (by task cost).
    best: Vec<Real>,
    best_cost: Real,
    has_best: bool,
    evals: usize,
    max_evals: usize,
    tol_grad: Real,
    tol_cost: Real,
    stop: Option<Stop>,
}

impl Refiner {
    /// The workspace for `core`'s sizes, action bounds and guardrails.
    pub fn new<M: WorldModel>(core: &Driver<M>) -> Self {
        let (h, a, d, p) = core.sizes();
        let g = core.objective().num_guardrails();
        let (lower, upper) = core.bounds();
        let centre = lower
            .iter()
            .zip(upper)
            .map(|(lo, hi)| 0.5 * (lo + hi))
            .collect();
        let half = lower
            .iter()
            .zip(upper)
            .map(|(lo, hi)| 0.5 * (hi - lo))
            .collect();
        Self {
            adjoint: Adjoint::new(h, a, d, p, core.objective()),
            mult: Multipliers::new(h * g),
            centre,
            half,
            v: vec![0.0; h * a],
            u: vec![0.0; h * a],
            gu: vec![0.0; h * a],
            cached: vec![0.0; h * a],
            cached_ok: false,
            last: Rollout::NONE,
            best: vec![0.0; h * a],
            best_cost: Real::INFINITY,
            has_best: false,
            evals: 0,
            max_evals: 0,
            tol_grad: TOL_GRAD,
            tol_cost: TOL_COST,
            stop: None,
        }
    }

    /// Scores `core`'s best sequence (the proposal) with the rollout
    /// refinement uses, so that the two compare like for like, and prepares
    /// the call from it ([`Self::start`] with the proposal's cost as scale).
    pub fn begin<M: WorldModel>(
        &mut self,
        core: &mut Driver<M>,
        rho: Real,
        slack: Real,
    ) -> Result<Rollout, ModelError> {
        // `best` is set again before it is read: by a feasible rollout of
        // this call, or by the proposal when none is accepted.
        let mut proposal = std::mem::take(&mut self.best);
        proposal.copy_from_slice(core.best());
        let (model, objective, start) = core.rollout_from();
        let scored = self
            .adjoint
            .forward(model, objective, start, &proposal, None);
        if let Ok(roll) = &scored {
            self.start(&proposal, roll.cost(), rho, slack);
        }
        self.best = proposal;
        scored
    }

    /// The sequence the call ends with: the best feasible one refinement
    /// found when it was accepted, else the proposal ([`Self::take_proposal`]).
    pub fn best(&self) -> &[Real] {
        &self.best
    }

    /// The task cost of the best feasible sequence of this call, if any.
    pub fn best_feasible_cost(&self) -> Option<Real> {
        self.has_best.then_some(self.best_cost)
    }

    /// Makes `proposal` the sequence the call ends with (refinement was not
    /// accepted).
    pub fn take_proposal(&mut self, proposal: &[Real]) {
        self.best.copy_from_slice(proposal);
    }

    /// Why the last round stopped early, if it did; clears it.
    pub fn take_stop(&mut self) -> Option<Stop> {
        self.stop.take()
    }

    /// Multiplies the penalty `ρ` by `growth` for the next round.
    pub fn grow_penalty(&mut self, growth: Real) {
        self.mult.grow_penalty(growth);
    }

    /// Prepares a call: `v₀ = atanh` of the clamped `proposal`, no best yet,
    /// `λ = 0`, and `ρ` and the tolerances scaled by `scale` (the proposal's cost).
    fn start(&mut self, proposal: &[Real], scale: Real, rho: Real, slack: Real) {
        let a = self.centre.len().max(1);
        for (i, (v, u)) in self.v.iter_mut().zip(proposal).enumerate() {
            let k = i % a;
            let (c, h) = (self.centre[k], self.half[k]);
            *v = if h > 0.0 {
                ((u - c) / h).clamp(-TANH_LIMIT, TANH_LIMIT).atanh()
            } else {
                0.0
            };
        }
        let scale = if scale.is_finite() {
            scale.abs().max(1.0)
        } else {
            1.0
        };
        self.mult.reset(rho * scale, slack);
        self.tol_grad = TOL_GRAD * scale;
        self.tol_cost = TOL_COST * scale;
        self.best_cost = Real::INFINITY;
        self.has_best = false;
        self.cached_ok = false;
        self.stop = None;
    }

    /// Maps `v` to `u(v)` in `self.u`.
    fn map(&mut self, v: &[Real]) {
        let a = self.centre.len().max(1);
        for (i, (u, x)) in self.u.iter_mut().zip(v).enumerate() {
            let k = i % a;
            *u = self.centre[k] + self.half[k] * x.tanh();
        }
    }

    /// Remembers the rollout of `u(v)` and keeps the best feasible sequence seen.
    fn record(&mut self, v: &[Real], roll: Rollout) {
        self.cached.copy_from_slice(v);
        self.cached_ok = true;
        self.last = roll;
        if roll.violation() <= 0.0 && roll.cost().is_finite() && roll.cost() < self.best_cost {
            self.best_cost = roll.cost();
            self.best.copy_from_slice(&self.u);
            self.has_best = true;
        }
    }

    fn is_cached(&self, v: &[Real]) -> bool {
        self.cached_ok && self.cached == v
    }

    /// Rolls out `u(v)` unless it is the sequence rolled out last.
    fn ensure<M: WorldModel>(
        &mut self,
        core: &mut Driver<M>,
        v: &[Real],
    ) -> Result<Rollout, ModelError> {
        if self.is_cached(v) {
            return Ok(self.last);
        }
        self.map(v);
        self.cached_ok = false;
        let (model, objective, start) = core.rollout_from();
        let roll = self
            .adjoint
            .forward(model, objective, start, &self.u, Some(&self.mult))?;
        self.record(v, roll);
        Ok(roll)
    }

    /// `L(v)` and, when `grad` is given, `∂L/∂v`.
    fn eval<M: WorldModel>(
        &mut self,
        core: &mut Driver<M>,
        v: &[Real],
        grad: Option<&mut [Real]>,
    ) -> Result<Real, ArgminError> {
        if self.stop.is_some() {
            return Err(ArgminError::msg("refinement stopped"));
        }
        if core.out_of_time() {
            return self.halt(Stop::OutOfTime);
        }
        if v.len() != self.v.len() {
            return self.halt(Stop::NonFinite);
        }
        let fresh = !self.is_cached(v);
        if fresh {
            if self.evals >= self.max_evals {
                return self.halt(Stop::EvaluationLimit);
            }
            self.evals += 1;
        }
        let result = match (fresh, grad.is_some()) {
            // Cost and gradient at a new point: one forward and one backward pass.
            (true, true) => {
                self.map(v);
                self.cached_ok = false;
                let (model, objective, start) = core.rollout_from();
                let r = self.adjoint.cost_gradient(
                    model,
                    objective,
                    start,
                    &self.u,
                    Some(&self.mult),
                    &mut self.gu,
                );
                if let Ok(roll) = r {
                    self.record(v, roll);
                }
                r
            }
            // A gradient where the trajectory is known: backward pass only.
            (false, true) => {
                let (model, objective, start) = core.rollout_from();
                self.adjoint
                    .backward(
                        model,
                        objective,
                        start.u_last(),
                        &self.u,
                        Some(&self.mult),
                        &mut self.gu,
                    )
                    .map(|()| self.last)
            }
            (_, false) => self.ensure(core, v),
        };
        let roll = match result {
            Ok(r) => r,
            Err(e) => return self.halt(Stop::Model(e)),
        };
        let value = roll.lagrangian();
        if !value.is_finite() {
            return self.halt(Stop::NonFinite);
        }
        if let Some(grad) = grad {
            // Chain rule through u = c + h·tanh(v).
            let a = self.centre.len().max(1);
            for (i, ((g, gu), x)) in grad.iter_mut().zip(&self.gu).zip(v).enumerate() {
                let th = x.tanh();
                *g = gu * self.half[i % a] * (1.0 - th * th);
            }
            if grad.iter().any(|g| !g.is_finite()) {
                return self.halt(Stop::NonFinite);
            }
        }
        Ok(value)
    }

    fn halt(&mut self, why: Stop) -> Result<Real, ArgminError> {
        let msg = format!("refinement stopped: {why:?}");
        self.stop = Some(why);
        Err(ArgminError::msg(msg))
    }

    /// Runs one round of at most `iterations` L-BFGS iterations from `self.v`
    /// and leaves the final iterate in `self.v`. Stops early (see
    /// [`Self::stop`]) when out of time or when the model fails.
    pub fn round<M: WorldModel>(&mut self, core: &mut Driver<M>, iterations: usize) -> Round {
        self.cached_ok = false; // the multipliers changed
        self.evals = 0;
        self.max_evals = EVALS_PER_ITERATION
            .saturating_mul(iterations)
            .saturating_add(5);
        let mut out = Round {
            iterations: 0,
            converged: false,
        };
        let solver = LBFGS::new(MoreThuenteLineSearch::new(), HISTORY)
            .with_tolerance_grad(self.tol_grad)
            .and_then(|s| s.with_tolerance_cost(self.tol_cost));
        let Ok(solver) = solver else {
            self.stop = Some(Stop::NonFinite);
            return out;
        };
        let v0 = self.v.clone();
        let problem = Lagrangian(RefCell::new(Ctx { core, r: self }));
        let result = Executor::new(problem, solver)
            .configure(|s| {
                s.param(v0)
                    .max_iters(u64::try_from(iterations).unwrap_or(u64::MAX))
            })
            .run();
        if let Ok(mut res) = result {
            let state = &mut res.state;
            out.iterations = usize::try_from(state.get_iter()).unwrap_or(usize::MAX);
            out.converged = matches!(
                state.get_termination_reason(),
                Some(TerminationReason::SolverConverged)
            );
            let param = state.take_param();
            drop(res);
            if let Some(p) = param
                && p.len() == self.v.len()
            {
                self.v.copy_from_slice(&p);
            }
        }
        out
    }

    /// Rolls out the current iterate and updates the multipliers from its
    /// margins; returns the rollout and the largest multiplier change.
    pub fn update_multipliers<M: WorldModel>(
        &mut self,
        core: &mut Driver<M>,
    ) -> Result<(Rollout, Real), ModelError> {
        let v = std::mem::take(&mut self.v);
        let roll = self.ensure(core, &v);
        self.v = v;
        let roll = roll?;
        let change = self.mult.update(self.adjoint.margins());
        self.cached_ok = false;
        Ok((roll, change))
    }
}

struct Ctx<'a, M> {
    core: &'a mut Driver<M>,
    r: &'a mut Refiner,
}

/// The augmented Lagrangian as an argmin problem.
struct Lagrangian<'a, M>(RefCell<Ctx<'a, M>>);

impl<M: WorldModel> CostFunction for Lagrangian<'_, M> {
    type Param = Vec<Real>;
    type Output = Real;

    fn cost(&self, v: &Self::Param) -> Result<Real, ArgminError> {
        let mut ctx = self.0.try_borrow_mut()?;
        let Ctx { core, r } = &mut *ctx;
        r.eval(core, v, None)
    }
}

impl<M: WorldModel> ArgminGradient for Lagrangian<'_, M> {
    type Param = Vec<Real>;
    type Gradient = Vec<Real>;

    fn gradient(&self, v: &Self::Param) -> Result<Vec<Real>, ArgminError> {
        let mut ctx = self.0.try_borrow_mut()?;
        let Ctx { core, r } = &mut *ctx;
        let mut grad = vec![0.0; v.len()];
        r.eval(core, v, Some(&mut grad))?;
        Ok(grad)
    }
}
