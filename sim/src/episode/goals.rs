//! An episode's goals set on its planner.

use crate::SimError;
use crate::scene::EpisodeSetup;
use telic::Planner;

/// Sets an episode's goals on `planner`: each of the scene's targets on the
/// term it names, and on every latent term the scene's goal observation,
/// encoded by the planner's world model. A latent term takes no target: a
/// scene target naming one (a scene's readout goal, in a scenario that made
/// its goal latent) is left to the goal observation. A latent term in a
/// scene that gives no goal observation is an error naming the term and
/// the scene `scene`.
pub fn set_goals(
    planner: &mut dyn Planner,
    setup: &EpisodeSetup,
    scene: &str,
) -> Result<(), SimError> {
    let latent: Vec<String> = planner
        .objective()
        .latent_term_names()
        .map(str::to_string)
        .collect();
    for (term, target) in &setup.targets {
        if !latent.contains(term) {
            planner.objective_mut().set_target(term, target)?;
        }
    }
    for term in &latent {
        let Some(obs) = &setup.goal_observation else {
            return Err(SimError::Scene {
                scene: scene.to_string(),
                message: format!(
                    "cost term '{term}' is a latent goal, but this scene gives no goal \
                     observation to encode; give the goal as readout targets instead"
                ),
            });
        };
        planner.set_goal_observation(term, obs)?;
    }
    Ok(())
}
