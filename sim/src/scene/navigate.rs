//! The `navigate` scene (being written).

use super::{EpisodeSetup, Scene};
use crate::SimError;
use serde::{Deserialize, Serialize};
use telic::{Real, WorldModel};

/// Settings of the `navigate` scene.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NavigateConfig {}

/// The `navigate` scene.
#[derive(Debug)]
pub struct Navigate {
    names: Vec<String>,
}

impl Navigate {
    /// Builds the scene.
    pub fn new(_config: &NavigateConfig ) -> Result<Self, SimError> {
        Err(SimError::Scene {
            scene: "navigate".into(),
            message: "not implemented yet".into(),
        })
    }
}

impl Scene for Navigate {
    fn name(&self) -> &str {
        "navigate"
    }
    fn reset(&mut self, _seed: u64) -> Result<EpisodeSetup, SimError> {
        Ok(EpisodeSetup::default())
    }
    fn observe(&self, _out: &mut [Real]) {}
    fn truth_readouts(&self) -> &[String] {
        &self.names
    }
    fn truth(&self, _out: &mut [Real]) {}
    fn apply(&mut self, _action: &[Real]) {}
    fn step(&mut self) {}
    fn physics_dt(&self) -> Real {
        0.01
    }
    fn time(&self) -> Real {
        0.0
    }
    fn success(&self) -> bool {
        false
    }
    fn analytic_model(&self) -> Result<Box<dyn WorldModel>, SimError> {
        Err(SimError::Scene {
            scene: "navigate".into(),
            message: "not implemented yet".into(),
        })
    }
}
