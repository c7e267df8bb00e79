//! Goals given as observations: the `reach_latent` scenario plans on the
//! latent energy to the encoded target configuration, in rapier; readout and
//! latent goals mix; and a latent term in a scene that gives no goal
//! observation is a clear error.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may unwrap

use telic::Real;
use telic::objective::{Norm, Residual, TermSpec};
use telic_sim::SimError;
use telic_sim::episode::{EpisodeObserver, NoObserver, episode_seed, run_batch, run_episode};
use telic_sim::scenario::{ModelChoice, Scenario};
use telic_sim::scene::World;

/// Distance of the tool from `goal` when the first plan is made and after
/// the last physics step.
#[derive(Debug)]
struct ToolDistance {
    goal: [Real; 3],
    idx: [usize; 3],
    start: Option<Real>,
    last: Real,
}

impl ToolDistance {
    fn new(scene: &dyn World, goal: &[Real]) -> Self {
        let names = scene.truth_readouts();
        let at = |n: &str| names.iter().position(|x| x == n).unwrap();
        Self {
            goal: [goal[0], goal[1], goal[2]],
            idx: [at("tool.x"), at("tool.y"), at("tool.z")],
            start: None,
            last: Real::NAN,
        }
    }

    fn distance(&self, truth: &[Real]) -> Real {
        self.idx
            .iter()
            .zip(&self.goal)
            .map(|(i, g)| (truth[*i] - g).powi(2))
            .sum::<Real>()
            .sqrt()
    }
}

impl EpisodeObserver for ToolDistance {
    fn on_plan(&mut self, scene: &dyn World, _obs: &[Real], _plan: &telic::Plan, _step: usize) {
        if self.start.is_none() {
            let mut truth = vec![0.0; scene.truth_readouts().len()];
            scene.truth(&mut truth);
            self.start = Some(self.distance(&truth));
        }
    }
    fn on_physics_step(&mut self, _scene: &dyn World, truth: &[Real], _margins: &[Real]) {
        self.last = self.distance(truth);
    }
}

fn latent_term(name: &str, weight: Real) -> TermSpec {
    TermSpec {
        name: name.into(),
        residual: Residual::Latent { target: Vec::new() },
        norm: Norm::L2 { eps: 0.01 },
        weight,
        phase: Default::default(),
    }
}

#[test]
fn reach_latent_brings_the_tool_close_to_the_target() {
    let mut scenario = Scenario::load("reach_latent").unwrap();
    scenario.model = ModelChoice::Analytic;
    scenario.episode.max_time = 5.0;
    let mut scene = scenario.scene.build(&scenario.base_dir).unwrap();
    for i in 0..3 {
        let seed = episode_seed(3, i);
        // The target point is drawn from the seed; `run_episode` draws it again.
        let setup = scene.reset(seed).unwrap();
        assert_eq!(setup.targets[0].0, "goal");
        let mut tool = ToolDistance::new(scene.as_ref(), &setup.targets[0].1);
        let model = scenario.build_model(scene.as_ref()).unwrap();
        let r = run_episode(&scenario, scene.as_mut(), model, seed, &mut tool).unwrap();
        let start = tool.start.unwrap();
        eprintln!(
            "episode {i}: tool {start:.3} m -> {:.3} m from the target, success {}",
            tool.last, r.success
        );
        assert_eq!(r.violation_steps, 0, "episode {i}: {:?}", r.violated);
        assert!(
            tool.last < 0.25 * start,
            "episode {i}: the tool went from {start:.3} m to {:.3} m from the target",
            tool.last
        );
    }
}

#[test]
fn readout_and_latent_goals_mix() {
    // reach's readout goal (the tool position) plus a latent pull towards the
    // target configuration: the runner sets both.
    let mut scenario = Scenario::load("reach").unwrap();
    scenario.model = ModelChoice::Analytic;
    scenario.episode.max_time = 0.5;
    scenario.objective.terms.push(latent_term("posture", 1.0));
    let r = run_batch(&scenario, 1, 5, 1, &|_| {}).unwrap();
    assert!(
        r[0].control_steps > 0 && r[0].violation_steps == 0,
        "{:?}",
        r[0]
    );
}

#[test]
fn latent_goal_in_a_scene_without_goal_observation_is_an_error() {
    let mut scenario = Scenario::load("navigate").unwrap();
    scenario.model = ModelChoice::Analytic;
    scenario.objective.terms.push(latent_term("energy", 1.0));
    let err = run_batch(&scenario, 1, 1, 1, &|_| {}).unwrap_err();
    let message = err.to_string();
    assert!(
        matches!(&err, SimError::Scene { scene, .. } if scene == "navigate"),
        "{message}"
    );
    assert!(
        message.contains("'energy'") && message.contains("no goal observation"),
        "{message}"
    );

    // Without the latent term the scenario runs as before.
    scenario.objective.terms.pop();
    scenario.episode.max_time = 0.2;
    let mut scene = scenario.scene.build(&scenario.base_dir).unwrap();
    let model = scenario.build_model(scene.as_ref()).unwrap();
    run_episode(&scenario, scene.as_mut(), model, 1, &mut NoObserver).unwrap();
}
