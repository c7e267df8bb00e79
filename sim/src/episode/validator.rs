//! The ground-truth validator: every guardrail checked against the true
//! physics state.

use crate::scene::World;
use telic::objective::{ReadoutSchema, Residual};
use telic::{Objective, ObjectiveSpec, Real};

/// Checks guardrails against the *true* physics state.
///
/// It compiles the episode's guardrails against the scene's ground-truth
/// readout names and evaluates the limits themselves (the planner's safety
/// buffers are not part of the limit).
#[derive(Debug)]
pub struct Validator {
    objective: Objective,
    /// The objective's readout and action terms, resolved against the true readouts.
    cost: Objective,
    names: Vec<String>,
    margins: Vec<Real>,
    truth: Vec<Real>,
    scratch: telic::objective::ObjectiveScratch,
}

impl Validator {
    /// A validator for the guardrails and bodies of `spec`, over the readouts
    /// named `truth_names`, for a robot with the named `actions`.
    pub fn new(
        spec: &ObjectiveSpec,
        truth_names: &[String],
        actions: &[String],
    ) -> Result<Self, telic::PlanError> {
        let guard_only = ObjectiveSpec {
            terms: Vec::new(),
            guardrails: spec.guardrails.clone(),
            bodies: spec.bodies.clone(),
        };
        let objective = guard_only.compile_with(&ReadoutSchema::truth(truth_names, 1))?;
        // Latent terms have no ground truth; readout terms whose readouts the
        // scene does not measure are left out of the executed-cost account.
        let measurable = |t: &&telic::objective::TermSpec| match &t.residual {
            Residual::Latent { .. } => false,
            Residual::Readout { readouts, .. } => readouts.iter().all(|r| truth_names.contains(r)),
            Residual::Action { .. } | Residual::ActionRate => true,
        };
        let cost = ObjectiveSpec {
            terms: spec.terms.iter().filter(measurable).cloned().collect(),
            guardrails: Vec::new(),
            bodies: Vec::new(),
        }
        .compile_with(&ReadoutSchema::truth(truth_names, actions.len()))?;
        let names = objective.guardrail_names().map(str::to_string).collect();
        let g = objective.num_guardrails();
        let scratch = cost.scratch();
        Ok(Self {
            objective,
            cost,
            names,
            margins: vec![0.0; g],
            truth: vec![0.0; truth_names.len()],
            scratch,
        })
    }

    /// Sets the target of a cost term of the executed-cost account (terms it
    /// left out are ignored).
    pub fn set_target(&mut self, term: &str, target: &[Real]) -> Result<(), telic::PlanError> {
        if self.cost.term_names().any(|t| t == term) {
            self.cost.set_target(term, target)?;
        }
        Ok(())
    }

    /// The running task cost of the last checked true state after action `u`
    /// that followed `u_prev`.
    pub fn task_cost(&mut self, u: &[Real], u_prev: &[Real]) -> Real {
        self.cost.stage_cost(
            telic::objective::Stage {
                y: &self.truth,
                z: &[],
                u,
                u_prev,
                terminal: false,
            },
            &mut self.scratch,
            None,
        )
    }

    /// Names of the guardrails checked, in order.
    #[must_use]
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Reads the scene's true state and evaluates the margin of every
    /// guardrail (negative: violated), see [`Validator::margins`].
    pub fn check(&mut self, world: &dyn World) {
        world.truth(&mut self.truth);
        self.objective
            .margins(&self.truth, false, &mut self.margins);
    }

    /// The margins computed by the last [`Validator::check`].
    #[must_use]
    pub fn margins(&self) -> &[Real] {
        &self.margins
    }

    /// The last true readouts read by [`Validator::check`].
    #[must_use]
    pub fn truth(&self) -> &[Real] {
        &self.truth
    }
}
