//! Gradient refinement through argmin (L-BFGS on an augmented Lagrangian).

use super::mppi::Mppi;
use super::{Plan, Planner, PlannerConfig};
use crate::Real;
use crate::error::PlanError;
use crate::model::WorldModel;
use crate::objective::Objective;

/// MPPI proposal refined by L-BFGS. (Refinement is not implemented yet.)
#[derive(Debug)]
pub struct Gradient<M> {
    mppi: Mppi<M>,
}

impl<M: WorldModel> Gradient<M> {
    /// A planner for `model` and `objective`; checks `config`.
    pub fn new(model: M, objective: Objective, config: PlannerConfig) -> Result<Self, PlanError> {
        Ok(Self {
            mppi: Mppi::new(model, objective, config)?,
        })
    }
}

impl<M: WorldModel> Planner for Gradient<M> {
    fn plan(&mut self, obs: &[Real]) -> Result<&Plan, PlanError> {
        self.mppi.plan(obs)
    }
    fn reset(&mut self) {
        self.mppi.reset();
    }
    fn objective_mut(&mut self) -> &mut Objective {
        self.mppi.objective_mut()
    }
    fn objective(&self) -> &Objective {
        self.mppi.objective()
    }
    fn config(&self) -> &PlannerConfig {
        self.mppi.config()
    }
    fn reseed(&mut self, seed: u64) {
        self.mppi.reseed(seed);
    }
}
