//! Set-up shared by the benches.

use telic::Real;
use telic_sim::Scene;
use telic_sim::scenario::{ModelChoice, Scenario};

/// Episode 1 of the shipped scenario `scene` with `model`, and its first
/// observation (as `telic bench` plans it).
pub fn episode(scene: &str, model: ModelChoice) -> (Scene, Vec<Real>) {
    let mut s = Scenario::load(scene).unwrap();
    s.model = model;
    let mut env = Scene::new(s).unwrap();
    let mut obs = vec![0.0; env.spec().obs_dim()];
    env.reset(1, &mut obs).unwrap();
    (env, obs)
}

/// Whether ONNX Runtime can be loaded; when not, says that the learned-model
/// benches are skipped and why. A bench may skip; the tests never do.
pub fn onnx_runtime() -> bool {
    match telic_sim::onnx_runtime::locate() {
        Ok(()) => true,
        Err(e) => {
            println!("learned-model benches skipped: the ONNX Runtime library was not found ({e})");
            false
        }
    }
}
