//! Objectives: weighted cost terms plus hard guardrails, as plain data.
//!
//! Task cost over a horizon `H`:
//! `J = Σ_{t<H} Σ_i wᵢ·normᵢ(rᵢ(y_{t+1}, z_{t+1}, u_t, u_{t−1})) + Σ_j w_j·norm_j(r_j(y_H, z_H))`,
//! and guardrails `g_k(y_{t+1}, u_t) ≤ 0` for every step. A spec is resolved
//! against a model's readout names once ([`ObjectiveSpec::compile`]), so a term
//! or guardrail naming a readout the model lacks fails at load time. The
//! names come from a [`ReadoutSchema`]: a model's, or a scene's ground truth
//! ([`ObjectiveSpec::compile_with`]), so a validator checks the same
//! guardrails the planner keeps; errors are [`ObjectiveError`]s.
//!
//! Modules: `compile` resolves specs, `eval` evaluates costs and margins,
//! `guardrail` and [`geometry`] hold the constraints and their shapes.
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
mod eval;
pub mod geometry;
mod guardrail;
mod norm;
mod schema;

pub use error::{Item, ObjectiveError};
pub use eval::{Stage, StageGradient};
pub use geometry::Shape;
pub use guardrail::{BodySpec, Drawing, GuardrailSpec, LimitSpec};
pub use norm::Norm;
pub use schema::{Point, ReadoutSchema};

use crate::Real;
use crate::error::PlanError;
use guardrail::Guard;
pub(crate) use guardrail::Margins;
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

    /// What a goal observation sets on `term`: its goal latent (`Ok(None)`,
    /// a latent term) or its target, the decoded readouts at these indices
    /// (`Ok(Some(..))`, a readout term). Any other term is an error
    /// ([`PlanError::Objective`]) saying what `term` is.
    pub fn goal_observation_readouts(&self, term: &str) -> Result<Option<&[usize]>, PlanError> {
        let Some(t) = self.terms.iter().find(|t| t.name == term) else {
            return Err(PlanError::Objective(ObjectiveError::UnknownTerm {
                term: term.to_string(),
                terms: Some(self.term_names().map(str::to_string).collect()),
            }));
        };
        let kind = match &t.res {
            Res::Latent => return Ok(None),
            Res::Readout(i) => return Ok(Some(i)),
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

#[cfg(test)]
mod tests;
