//! Objectives: weighted cost terms plus hard guardrails, as plain data.
//!
//! Task cost over a horizon `H`:
//! `J = Σ_{t<H} Σ_i wᵢ·normᵢ(rᵢ(y_{t+1}, z_{t+1}, u_t, u_{t−1})) + Σ_j w_j·norm_j(r_j(y_H, z_H))`,
//! and guardrails `g_k(y_{t+1}, u_t) ≤ 0` for every step. A spec is resolved
//! against a model's readout names once ([`ObjectiveSpec::compile`]), so a term
//! or guardrail naming a readout the model lacks fails at load time.
//!
//! ## Latent goals
//!
//! A goal can be given as a *target observation* `o*` rather than as target
//! readouts, as in DINO-WM (Zhou, Pan, LeCun, Pinto, 2024) and V-JEPA 2-AC
//! (Assran et al., 2025): the planner's world model encodes it once,
//! `z* = encode(o*)`, and a latent term (`residual = { kind = "latent" }`)
//! adds the latent energy `w·norm(z_t − z*)` of every predicted latent. The
//! planner then minimises that energy like any other cost, under the same
//! guardrails. Set the goal with
//! [`Planner::set_goal_observation`](crate::Planner::set_goal_observation):
//!
//! ```
//! use telic::model::PointMass;
//! use telic::objective::{Norm, ObjectiveSpec, Residual, TermSpec};
//! use telic::planner::{PlannerConfig, build};
//!
//! let model = PointMass::new(2, 0.1, 2.0)?;
//! let spec = ObjectiveSpec {
//!     terms: vec![TermSpec {
//!         name: "goal".into(),
//!         residual: Residual::Latent { target: Vec::new() },
//!         norm: Norm::default(),
//!         weight: 1.0,
//!         phase: Default::default(),
//!     }],
//!     ..Default::default()
//! };
//! let objective = spec.compile(telic::WorldModel::spec(&model))?;
//! let mut planner = build(model, objective, PlannerConfig::default())?;
//! // At rest at (1, 0): position then velocity, the observation layout.
//! planner.set_goal_observation("goal", &[1.0, 0.0, 0.0, 0.0])?;
//! let plan = planner.plan(&[0.0; 4])?;
//! assert!(plan.action[0] > 0.0); // towards x = 1
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Planning fails until every latent goal is set. A goal observation of the
//! wrong size or with a non-finite value, a term that does not exist or is
//! not latent, is an error naming the term, and the previous goal is kept.
//! [`Objective::set_target`] sets a goal latent directly.
//!
//! What the energy means depends on the model: for the analytic models the
//! latent is the state itself (for `SerialArm`, joint angles then joint
//! velocities), so the energy is a distance in state space, not in the task
//! space where success is usually judged; for a learned bundle it is the
//! encoder's abstract latent, as meaningful as its geometry. Weights and
//! norms need tuning per model, as for any term.

mod compile;
mod error;
pub mod geometry;
mod guardrail;
mod norm;
mod schema;

pub use error::{Item, ObjectiveError};
pub use geometry::Shape;
pub use guardrail::{BodySpec, Drawing, GuardrailSpec, LimitSpec};
pub use norm::Norm;
pub use schema::{Point, ReadoutSchema};

use crate::Real;
use crate::error::PlanError;
use crate::math::{Wide, wide};
pub(crate) use guardrail::Margins;
use guardrail::Guard;
use serde::{Deserialize, Serialize};

/// When a cost term applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// At every step of the horizon (default).
    #[default]
    Running,
    /// At the last predicted state only.
    Terminal,
    /// Both.
    Both,
}

/// What a cost term measures.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "kind",
    rename_all = "snake_case",
    deny_unknown_fields,
    from = "ResidualData"
)]
pub enum Residual {
    /// `y[readouts] − target`.
    Readout {
        /// Readout names.
        readouts: Vec<String>,
        /// Target values (default zeros); can be changed with [`Objective::set_target`].
        #[serde(default)]
        target: Vec<Real>,
    },
    /// `z − target`: latent energy to a goal latent (e.g. an encoded goal observation).
    Latent {
        /// Goal latent; set it with [`Objective::set_target`] before planning.
        #[serde(default)]
        target: Vec<Real>,
    },
    /// `u − target` (default zeros).
    Action {
        /// Target action.
        #[serde(default)]
        target: Vec<Real>,
    },
    /// `u_t − u_{t−1}`, with `u_{−1}` the action last applied.
    ActionRate,
}

/// How [`Residual`] is read (see `NormData` for why).
#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
enum ResidualData {
    Readout {
        readouts: Vec<String>,
        #[serde(default)]
        target: Vec<Real>,
    },
    Latent {
        #[serde(default)]
        target: Vec<Real>,
    },
    Action {
        #[serde(default)]
        target: Vec<Real>,
    },
    ActionRate {},
}

impl From<ResidualData> for Residual {
    fn from(d: ResidualData) -> Self {
        match d {
            ResidualData::Readout { readouts, target } => Residual::Readout { readouts, target },
            ResidualData::Latent { target } => Residual::Latent { target },
            ResidualData::Action { target } => Residual::Action { target },
            ResidualData::ActionRate {} => Residual::ActionRate,
        }
    }
}

/// One weighted cost term.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TermSpec {
    /// Name in reports and for [`Objective::set_target`].
    pub name: String,
    /// What is measured.
    pub residual: Residual,
    /// How it is measured (default quadratic).
    #[serde(default)]
    pub norm: Norm,
    /// Weight (default 1).
    #[serde(default = "one")]
    pub weight: Real,
    /// When it applies (default running).
    #[serde(default)]
    pub phase: Phase,
}

fn one() -> Real {
    1.0
}

/// A guardrail that its safety buffer and model-error margin make impossible
/// to satisfy from some predicted step on: what it requires there is at
/// least the largest margin any state can have (half the narrowest band of
/// a limit or workspace, the `max` of a speed guardrail). Such a guardrail
/// switches planning off: only plans that keep at least the margin the
/// current state has are feasible, so a robot can at best hold still or back
/// away from the limit, and usually gets `no_feasible_plan` and its fallback.
/// See [`Objective::unsatisfiable_guardrails`].
#[derive(Clone, Debug, PartialEq)]
pub struct UnsatisfiableGuardrail {
    /// The guardrail's name.
    pub guardrail: String,
    /// The first predicted step (0-based: after the first action) at which
    /// it cannot be satisfied.
    pub step: usize,
    /// What it requires there: its `margin` plus the model-error margin of
    /// that step.
    pub required: Real,
    /// The largest margin any state can have.
    pub capacity: Real,
}

impl std::fmt::Display for UnsatisfiableGuardrail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "guardrail '{}' cannot be satisfied from predicted step {} on: its margin plus the \
             model's error margin there, {:.4}, is at least the largest margin any state can \
             have, {:.4}; plans that move towards its limit are all infeasible (lower the \
             bundle's error margins, or set planner.model_error_steps)",
            self.guardrail,
            self.step + 1,
            self.required,
            self.capacity
        )
    }
}

/// An objective as plain data (TOML, JSON, Python dicts).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ObjectiveSpec {
    /// Cost terms.
    #[serde(default)]
    pub terms: Vec<TermSpec>,
    /// Hard constraints.
    #[serde(default)]
    pub guardrails: Vec<GuardrailSpec>,
    /// Robot bodies the geometric guardrails speak of.
    #[serde(default)]
    pub bodies: Vec<BodySpec>,
}

#[derive(Clone, Debug, PartialEq)]
enum Res {
    Readout(Vec<usize>),
    Latent,
    Action,
    ActionRate,
}

#[derive(Clone, Debug, PartialEq)]
struct Term {
    name: String,
    res: Res,
    target: Vec<Real>,
    norm: Norm,
    weight: Real,
    running: bool,
    terminal: bool,
}

impl Term {
    /// How many times the term counts at a step: once per phase it has
    /// there (running, and terminal at the last step), so 0, 1 or 2.
    fn times(&self, terminal: bool) -> Real {
        Real::from(u8::from(self.running)) + Real::from(u8::from(terminal && self.terminal))
    }
}

#[derive(Clone, Debug, PartialEq)]
struct Guardrail {
    name: String,
    buffer: Real,
    /// The limit margin of the current state (≥ 0), set by
    /// [`Objective::relax_buffers`]: no buffer demands more than this.
    current: Real,
    /// Extra buffer per horizon step for model error ([`Objective::set_readout_errors`]).
    tightening: Vec<Real>,
    guard: Guard,
}

/// An objective resolved against a model: evaluates costs and guardrail margins.
#[derive(Clone, Debug, PartialEq)]
pub struct Objective {
    terms: Vec<Term>,
    guards: Vec<Guardrail>,
    latent_dim: usize,
    action_dim: usize,
    readout_dim: usize,
    max_term_width: usize,
}

/// Scratch space for [`Objective`] evaluation, allocated once.
#[derive(Clone, Debug, Default)]
pub struct ObjectiveScratch {
    r: Vec<Real>,
    g: Vec<Real>,
    y: Vec<Real>,
}

impl Objective {
    /// Number of cost terms.
    #[must_use]
    pub fn num_terms(&self) -> usize {
        self.terms.len()
    }
    /// Number of guardrails.
    #[must_use]
    pub fn num_guardrails(&self) -> usize {
        self.guards.len()
    }
    /// Names of the cost terms, in evaluation order.
    pub fn term_names(&self) -> impl Iterator<Item = &str> {
        self.terms.iter().map(|t| t.name.as_str())
    }
    /// The current target of cost term `term` (`None`: no such term).
    #[must_use]
    pub fn target(&self, term: &str) -> Option<&[Real]> {
        self.terms
            .iter()
            .find(|t| t.name == term)
            .map(|t| t.target.as_slice())
    }
    /// Names of the guardrails, in evaluation order.
    pub fn guardrail_names(&self) -> impl Iterator<Item = &str> {
        self.guards.iter().map(|g| g.name.as_str())
    }

    /// A scratch buffer sized for this objective.
    #[must_use]
    pub fn scratch(&self) -> ObjectiveScratch {
        ObjectiveScratch {
            r: vec![0.0; self.max_term_width],
            g: vec![0.0; self.max_term_width],
            y: vec![0.0; self.readout_dim],
        }
    }

    /// Replaces the target of the term called `term`.
    pub fn set_target(&mut self, term: &str, target: &[Real]) -> Result<(), PlanError> {
        self.set_target_inner(term, target)
            .map_err(PlanError::Objective)
    }

    fn set_target_inner(&mut self, term: &str, target: &[Real]) -> Result<(), ObjectiveError> {
        let (latent_dim, action_dim) = (self.latent_dim, self.action_dim);
        let t = self
            .terms
            .iter_mut()
            .find(|t| t.name == term)
            .ok_or_else(|| ObjectiveError::UnknownTerm {
                term: term.to_string(),
                terms: None,
            })?;
        let width = match &t.res {
            Res::Readout(i) => i.len(),
            Res::Latent => latent_dim,
            Res::Action => action_dim,
            Res::ActionRate => {
                return Err(ObjectiveError::NoTarget {
                    term: term.to_string(),
                });
            }
        };
        let at = || Item::Target(term.to_string());
        if target.len() != width {
            return Err(ObjectiveError::shape(format!(
                "target has {} values, expected {width}",
                target.len()
            ))
            .at(at()));
        }
        if target.iter().any(|x| !x.is_finite()) {
            return Err(ObjectiveError::value("target is not finite").at(at()));
        }
        t.target = target.to_vec();
        Ok(())
    }

    /// Names of the latent terms, whose goal is a latent: set it with
    /// [`Objective::set_target`], or from an observation with
    /// [`Planner::set_goal_observation`](crate::Planner::set_goal_observation).
    pub fn latent_term_names(&self) -> impl Iterator<Item = &str> {
        self.terms
            .iter()
            .filter(|t| t.res == Res::Latent)
            .map(|t| t.name.as_str())
    }

    /// Checks that `term` names a latent term; otherwise the error
    /// ([`PlanError::Objective`]) says what `term` is.
    pub fn check_latent_term(&self, term: &str) -> Result<(), PlanError> {
        let Some(t) = self.terms.iter().find(|t| t.name == term) else {
            return Err(PlanError::Objective(ObjectiveError::UnknownTerm {
                term: term.to_string(),
                terms: Some(self.term_names().map(str::to_string).collect()),
            }));
        };
        let kind = match t.res {
            Res::Latent => return Ok(()),
            Res::Readout(_) => "a readout",
            Res::Action => "an action",
            Res::ActionRate => "an action-rate",
        };
        Err(PlanError::Objective(ObjectiveError::NotLatent {
            term: term.to_string(),
            kind,
        }))
    }

    /// Checks that the objective can be evaluated (every latent goal is set).
    pub fn check_ready(&self) -> Result<(), ObjectiveError> {
        for t in &self.terms {
            if t.res == Res::Latent && t.target.len() != self.latent_dim {
                return Err(ObjectiveError::GoalNotSet {
                    latent_dim: self.latent_dim,
                }
                .at(Item::Target(t.name.clone())));
            }
        }
        Ok(())
    }

    fn residual(
        &self,
        t: &Term,
        y: &[Real],
        z: &[Real],
        u: &[Real],
        u_prev: &[Real],
        r: &mut [Real],
    ) -> usize {
        match &t.res {
            Res::Readout(idx) => {
                for ((o, i), g) in r.iter_mut().zip(idx).zip(&t.target) {
                    *o = y[*i] - g;
                }
                idx.len()
            }
            Res::Latent => {
                for ((o, x), g) in r.iter_mut().zip(z).zip(&t.target) {
                    *o = x - g;
                }
                z.len().min(t.target.len())
            }
            Res::Action => {
                for ((o, x), g) in r.iter_mut().zip(u).zip(&t.target) {
                    *o = x - g;
                }
                u.len()
            }
            Res::ActionRate => {
                for ((o, x), p) in r.iter_mut().zip(u).zip(u_prev) {
                    *o = x - p;
                }
                u.len()
            }
        }
    }

    /// Cost of one step: readouts `y` and latent `z` after applying `u`, which
    /// followed `u_prev`. `terminal` adds the terminal terms. When
    /// `per_term` is given, each term's weighted cost is added to it.
    /// Returns `+∞` for a non-finite cost.
    #[allow(clippy::too_many_arguments)]
    pub fn stage_cost(
        &self,
        y: &[Real],
        z: &[Real],
        u: &[Real],
        u_prev: &[Real],
        terminal: bool,
        scratch: &mut ObjectiveScratch,
        mut per_term: Option<&mut [Real]>,
    ) -> Real {
        let mut total = 0.0;
        for (k, t) in self.terms.iter().enumerate() {
            let times = t.times(terminal);
            if times == 0.0 {
                continue;
            }
            let n = self.residual(t, y, z, u, u_prev, &mut scratch.r);
            let c = times * t.weight * t.norm.eval(&scratch.r[..n]);
            total += c;
            if let Some(pt) = per_term.as_deref_mut()
                && let Some(slot) = pt.get_mut(k)
            {
                *slot += c;
            }
        }
        if total.is_finite() {
            total
        } else {
            Real::INFINITY
        }
    }

    /// [`Self::stage_cost`] of a batch of `out.len()` samples, term by term:
    /// `y`, `z`, `u` and `u_prev` hold one row per sample, `out` receives
    /// each sample's cost, equal to the bit to what [`Self::stage_cost`]
    /// returns for it. The planners' rollouts call this once per step;
    /// evaluating one term over every sample keeps its loop free of
    /// dispatch, and quadratic readout and action terms, the common ones,
    /// run as plain loops the compiler vectorises.
    #[allow(clippy::too_many_arguments)]
    pub fn stage_costs(
        &self,
        y: &[Real],
        z: &[Real],
        u: &[Real],
        u_prev: &[Real],
        terminal: bool,
        scratch: &mut ObjectiveScratch,
        out: &mut [Real],
    ) {
        wide(StageCosts {
            objective: self,
            y,
            z,
            u,
            u_prev,
            terminal,
            scratch,
            out,
        });
    }

    /// Gradient of [`Self::stage_cost`] with respect to `y`, `z`, `u` and `u_prev`,
    /// *added* to the given buffers.
    #[allow(clippy::too_many_arguments)]
    pub fn add_stage_gradient(
        &self,
        y: &[Real],
        z: &[Real],
        u: &[Real],
        u_prev: &[Real],
        terminal: bool,
        scratch: &mut ObjectiveScratch,
        gy: &mut [Real],
        gz: &mut [Real],
        gu: &mut [Real],
        gu_prev: &mut [Real],
    ) {
        let g = &mut scratch.g;
        for t in &self.terms {
            let times = t.times(terminal);
            if times == 0.0 {
                continue;
            }
            let n = self.residual(t, y, z, u, u_prev, &mut scratch.r);
            g[..n].fill(0.0);
            t.norm
                .add_gradient(&scratch.r[..n], times * t.weight, &mut g[..n]);
            match &t.res {
                Res::Readout(idx) => {
                    for (i, gi) in idx.iter().zip(g.iter()) {
                        gy[*i] += gi;
                    }
                }
                Res::Latent => gz.iter_mut().zip(g.iter()).for_each(|(a, b)| *a += b),
                Res::Action => gu.iter_mut().zip(g.iter()).for_each(|(a, b)| *a += b),
                Res::ActionRate => {
                    gu.iter_mut().zip(g.iter()).for_each(|(a, b)| *a += b);
                    gu_prev.iter_mut().zip(g.iter()).for_each(|(a, b)| *a -= b);
                }
            }
        }
    }

    /// Signed margins of every guardrail at readouts `y` into `out` (positive
    /// is safe). With `buffered`, each guardrail's safety buffer is subtracted
    /// (what planners keep); without, the limit itself (what validators check).
    /// A non-finite margin is reported as `−∞`.
    pub fn margins(&self, y: &[Real], buffered: bool, out: &mut [Real]) {
        for (g, o) in self.guards.iter().zip(out.iter_mut()) {
            let m = g.guard.limit_margin(y)
                - if buffered {
                    g.buffer.min(g.current)
                } else {
                    0.0
                };
            *o = if m.is_nan() { Real::NEG_INFINITY } else { m };
        }
    }

    /// Tightens every guardrail by a bound on the model's readout error:
    /// `errors[i][t]` bounds the error of readout `i` after `t + 1` predicted
    /// steps (empty rows: no error). At step `t` a guardrail's buffer grows by
    /// how much its margin can move under those errors (the last step's value
    /// holds beyond the table). Used by planners with learned models, whose
    /// bundles carry held-out error quantiles.
    pub fn set_readout_errors(&mut self, errors: &[Vec<Real>]) -> Result<(), PlanError> {
        if errors.len() != self.readout_dim {
            return Err(PlanError::Objective(ObjectiveError::shape(format!(
                "readout errors for {} readouts, the objective has {}",
                errors.len(),
                self.readout_dim
            ))));
        }
        if errors
            .iter()
            .flatten()
            .any(|x| !(x.is_finite() && *x >= 0.0))
        {
            return Err(PlanError::Objective(ObjectiveError::value(
                "readout errors must be finite and >= 0",
            )));
        }
        let steps = errors.iter().map(Vec::len).max().unwrap_or(0);
        let mut e = vec![0.0; self.readout_dim];
        for g in &mut self.guards {
            g.tightening.clear();
            for t in 0..steps {
                for (ei, row) in e.iter_mut().zip(errors) {
                    *ei = row.get(t).or(row.last()).copied().unwrap_or(0.0);
                }
                g.tightening.push(g.guard.error_bound(&e));
            }
        }
        Ok(())
    }

    /// Margins of every guardrail at predicted step `t` (0-based: after the
    /// first action): the limit margin less the safety buffer plus the
    /// model-error tightening of that step — but never demanding more than
    /// the current state has (see [`Objective::relax_buffers`]), so a robot
    /// already inside that band may act as long as it does not get closer.
    pub fn margins_at_step(&self, y: &[Real], t: usize, out: &mut [Real]) {
        for (g, o) in self.guards.iter().zip(out.iter_mut()) {
            let extra = g.tightening.get(t).or(g.tightening.last()).copied();
            let required = (g.buffer + extra.unwrap_or(0.0)).min(g.current);
            let m = g.guard.limit_margin(y) - required;
            *o = if m.is_nan() { Real::NEG_INFINITY } else { m };
        }
    }

    /// Adds each row's guardrail violation at step `t` to `violation`, for
    /// the rows of `y` (`n×P`, `n = violation.len()`): `+∞` for a row with a
    /// readout that is not finite, plus, over the guardrails, how far each
    /// margin of [`Objective::margins_at_step`] is below zero. The same bits
    /// as summing those margins row by row, computed guardrail by guardrail
    /// over all rows (body distances in vector registers).
    /// `finite` says every value of `y` is finite.
    pub(crate) fn add_violations(
        &self,
        y: &[Real],
        t: usize,
        finite: bool,
        work: &mut Margins,
        violation: &mut [Real],
    ) {
        let n = violation.len();
        let p = self.readout_dim;
        let Margins { cols, m, sum } = work;
        for buffer in [&mut *m, &mut *sum] {
            if buffer.len() < n {
                buffer.resize(n, 0.0);
            }
        }
        let (m, sum) = (&mut m[..n], &mut sum[..n]);
        sum.fill(0.0);
        for g in &self.guards {
            let extra = g.tightening.get(t).or(g.tightening.last()).copied();
            let required = (g.buffer + extra.unwrap_or(0.0)).min(g.current);
            g.guard.limit_margins(y, p, finite, cols, m);
            for (s, m) in sum.iter_mut().zip(m.iter()) {
                let m = *m - required;
                let m = if m.is_nan() { Real::NEG_INFINITY } else { m };
                *s += (-m).max(0.0);
            }
        }
        for ((v, s), row) in violation.iter_mut().zip(sum.iter()).zip(y.chunks_exact(p)) {
            let finite = finite || row.iter().all(|x| x.is_finite());
            let add = if finite { 0.0 } else { Real::INFINITY } + s;
            *v += if add.is_nan() { Real::INFINITY } else { add };
        }
    }

    /// Shrinks each guardrail's safety buffer to the margin the state `y0`
    /// actually has, when that is smaller (never below zero).
    ///
    /// A state that model error pushed *into* a buffer, without breaking the
    /// limit itself, would otherwise make every plan infeasible and freeze
    /// the robot on its fallback. With the buffer relaxed to the current
    /// margin, plans that do not move closer to the limit are feasible, so
    /// the robot can back out. Called by the planners at every plan call;
    /// buffers are recomputed from the spec each time.
    pub fn relax_buffers(&mut self, y0: &[Real]) {
        for g in &mut self.guards {
            let m = g.guard.limit_margin(y0);
            let m = if m.is_nan() { 0.0 } else { m };
            g.current = m.max(0.0);
        }
    }

    /// Gradient of guardrail `k`'s margin with respect to `y`, by central
    /// differences over the readouts (margins are cheap; readouts are few).
    pub fn margin_gradient(&self, k: usize, y: &[Real], grad: &mut [Real]) {
        let mut scratch = self.scratch();
        self.margin_gradient_with(k, y, &mut scratch, grad);
    }

    /// [`Objective::margin_gradient`] without allocating.
    pub fn margin_gradient_with(
        &self,
        k: usize,
        y: &[Real],
        scratch: &mut ObjectiveScratch,
        grad: &mut [Real],
    ) {
        let Some(g) = self.guards.get(k) else {
            return;
        };
        scratch.y.clear();
        scratch.y.extend_from_slice(y);
        let yy = &mut scratch.y;
        for i in 0..y.len().min(grad.len()) {
            let h = 1e-6 * y[i].abs().max(1.0);
            yy[i] = y[i] + h;
            let p = g.guard.limit_margin(yy);
            yy[i] = y[i] - h;
            let m = g.guard.limit_margin(yy);
            yy[i] = y[i];
            grad[i] = (p - m) / (2.0 * h);
        }
    }

    /// The guardrails that cannot be satisfied at some step of a horizon of
    /// `horizon` steps, each with the first such step: those whose safety
    /// buffer plus model-error tightening ([`Objective::set_readout_errors`])
    /// there is at least the largest margin any readouts can give (half the
    /// narrowest band of a limit or workspace, the `max` of a speed
    /// guardrail; keep-out and clearance guardrails can always be
    /// satisfied far enough away). Planners with such a guardrail can only
    /// keep the margin the current state has; check this after building one
    /// ([`Planner::unsatisfiable_guardrails`](crate::Planner::unsatisfiable_guardrails)).
    #[must_use]
    pub fn unsatisfiable_guardrails(&self, horizon: usize) -> Vec<UnsatisfiableGuardrail> {
        let mut out = Vec::new();
        for g in &self.guards {
            let capacity = g.guard.capacity();
            // Beyond the table the last step's tightening holds.
            let steps = horizon.min(g.tightening.len().max(1));
            let step = (0..steps).find_map(|t| {
                let extra = g.tightening.get(t).or(g.tightening.last()).copied();
                let required = g.buffer + extra.unwrap_or(0.0);
                (required >= capacity).then_some((t, required))
            });
            if let Some((step, required)) = step {
                out.push(UnsatisfiableGuardrail {
                    guardrail: g.name.clone(),
                    step,
                    required,
                    capacity,
                });
            }
        }
        out
    }

    /// Readout size this objective was compiled for.
    #[must_use]
    pub fn readout_dim(&self) -> usize {
        self.readout_dim
    }
}

/// One step's rows, as [`StageCosts`] reads them; `widths` is `(P, D, A)`.
struct Rows<'a> {
    y: &'a [Real],
    z: &'a [Real],
    u: &'a [Real],
    u_prev: &'a [Real],
    widths: (usize, usize, usize),
}

/// Adds `w ·` term `t`'s cost of every row to `out`, for a residual of `K`
/// values: the residual built in registers, the norm chosen once, each row
/// the bits of [`Objective::stage_cost`].
#[inline(always)]
fn add_term<const K: usize>(t: &Term, w: Real, rows: &Rows<'_>, out: &mut [Real]) {
    match t.norm {
        Norm::Quadratic => add_rows::<K>(t, w, rows, out, |r| Norm::Quadratic.eval(r)),
        Norm::L1 => add_rows::<K>(t, w, rows, out, |r| Norm::L1.eval(r)),
        Norm::SmoothAbs { eps } => {
            add_rows::<K>(t, w, rows, out, |r| Norm::SmoothAbs { eps }.eval(r));
        }
        Norm::L2 { eps } => add_rows::<K>(t, w, rows, out, |r| Norm::L2 { eps }.eval(r)),
        Norm::Huber { delta } => {
            add_rows::<K>(t, w, rows, out, |r| Norm::Huber { delta }.eval(r));
        }
    }
}

/// [`add_term`] with the norm `eval`.
#[inline(always)]
fn add_rows<const K: usize>(
    t: &Term,
    w: Real,
    rows: &Rows<'_>,
    out: &mut [Real],
    eval: impl Fn(&[Real]) -> Real,
) {
    let (p, d, a) = rows.widths;
    let g: [Real; K] = std::array::from_fn(|k| t.target.get(k).copied().unwrap_or(0.0));
    match &t.res {
        Res::Readout(idx) => {
            let idx: [usize; K] = std::array::from_fn(|k| idx[k]);
            for (o, y) in out.iter_mut().zip(rows.y.chunks_exact(p)) {
                let r: [Real; K] = std::array::from_fn(|k| y[idx[k]] - g[k]);
                *o += w * eval(&r);
            }
        }
        Res::Latent => {
            for (o, z) in out.iter_mut().zip(rows.z.chunks_exact(d)) {
                let r: [Real; K] = std::array::from_fn(|k| z[k] - g[k]);
                *o += w * eval(&r);
            }
        }
        Res::Action => {
            for (o, u) in out.iter_mut().zip(rows.u.chunks_exact(a)) {
                let r: [Real; K] = std::array::from_fn(|k| u[k] - g[k]);
                *o += w * eval(&r);
            }
        }
        Res::ActionRate => {
            let pairs = rows.u.chunks_exact(a).zip(rows.u_prev.chunks_exact(a));
            for (o, (u, up)) in out.iter_mut().zip(pairs) {
                let r: [Real; K] = std::array::from_fn(|k| u[k] - up[k]);
                *o += w * eval(&r);
            }
        }
    }
}

/// Adds `w ·` term `t`'s cost of every row to `out`, row by row through
/// [`Objective::residual`]: residuals wider than [`add_term`] takes.
fn add_term_by_rows(
    obj: &Objective,
    t: &Term,
    w: Real,
    rows: &Rows<'_>,
    scratch: &mut ObjectiveScratch,
    out: &mut [Real],
) {
    let (p, d, a) = rows.widths;
    for (i, o) in out.iter_mut().enumerate() {
        let k = obj.residual(
            t,
            &rows.y[i * p..(i + 1) * p],
            &rows.z[i * d..(i + 1) * d],
            &rows.u[i * a..(i + 1) * a],
            &rows.u_prev[i * a..(i + 1) * a],
            &mut scratch.r,
        );
        *o += w * t.norm.eval(&scratch.r[..k]);
    }
}

/// `out[i] += w·(y[i][j] − g)²` over rows of `P` readouts.
#[inline(always)]
fn add_quadratic<const P: usize>(out: &mut [Real], y: &[Real], j: usize, g: Real, w: Real) {
    for (o, y) in out.iter_mut().zip(y.as_chunks::<P>().0) {
        let r = y[j] - g;
        *o += w * (r * r);
    }
}

/// [`Objective::stage_costs`]' loops, compiled for the widest vectors.
struct StageCosts<'a> {
    objective: &'a Objective,
    y: &'a [Real],
    z: &'a [Real],
    u: &'a [Real],
    u_prev: &'a [Real],
    terminal: bool,
    scratch: &'a mut ObjectiveScratch,
    out: &'a mut [Real],
}

impl Wide for StageCosts<'_> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let Self {
            objective: obj,
            y,
            z,
            u,
            u_prev,
            terminal,
            scratch,
            out,
        } = self;
        let n = out.len();
        let (p, d, a) = (obj.readout_dim, obj.latent_dim, obj.action_dim);
        debug_assert!(y.len() == n * p && z.len() == n * d && u.len() == n * a);
        out.fill(0.0);
        for t in &obj.terms {
            let times = t.times(terminal);
            if times == 0.0 {
                continue;
            }
            let w = times * t.weight;
            match (&t.res, t.norm) {
                (Res::Readout(idx), Norm::Quadratic) if idx.len() == 1 => {
                    let (j, g) = (idx[0], t.target[0]);
                    // A fixed row width lets the compiler load rows as
                    // vectors and pick column `j` out of them.
                    match p {
                        2 => add_quadratic::<2>(out, y, j, g, w),
                        3 => add_quadratic::<3>(out, y, j, g, w),
                        4 => add_quadratic::<4>(out, y, j, g, w),
                        5 => add_quadratic::<5>(out, y, j, g, w),
                        6 => add_quadratic::<6>(out, y, j, g, w),
                        8 => add_quadratic::<8>(out, y, j, g, w),
                        _ => {
                            for (o, y) in out.iter_mut().zip(y.chunks_exact(p)) {
                                let r = y[j] - g;
                                *o += w * (r * r);
                            }
                        }
                    }
                }
                (Res::Action, Norm::Quadratic) if a == 1 => {
                    let g = t.target[0];
                    for (o, u) in out.iter_mut().zip(u) {
                        let r = u - g;
                        *o += w * (r * r);
                    }
                }
                (res, _) => {
                    // Residuals of up to four values, their width known to
                    // the compiler: no call per row.
                    let width = match res {
                        Res::Readout(idx) => idx.len(),
                        Res::Latent => d.min(t.target.len()),
                        Res::Action | Res::ActionRate => a,
                    };
                    let rows = Rows {
                        y,
                        z,
                        u,
                        u_prev,
                        widths: (p, d, a),
                    };
                    match width {
                        1 => add_term::<1>(t, w, &rows, out),
                        2 => add_term::<2>(t, w, &rows, out),
                        3 => add_term::<3>(t, w, &rows, out),
                        4 => add_term::<4>(t, w, &rows, out),
                        _ => add_term_by_rows(obj, t, w, &rows, scratch, out),
                    }
                }
            }
        }
        // `o + 0` is `o` here (a sum that starts at +0 is never −0), but
        // unlike `o` it makes the compiler store every row: it would
        // otherwise store only the non-finite ones, with masked stores that
        // cost more than the whole loop.
        for o in out.iter_mut() {
            *o = if o.is_finite() {
                *o + 0.0
            } else {
                Real::INFINITY
            };
        }
    }
}

#[cfg(test)]
mod tests;
