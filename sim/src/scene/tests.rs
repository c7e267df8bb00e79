//! Tests of what every scene tells beside its state: the robot's own state,
//! the truth readouts that measure the per-episode hazards, the guardrails
//! on them for the pixel modes, and goal images.

use super::camera::{Camera, ImageSize};
use super::*;
use crate::scenario::Scenario;
use telic::ObjectiveSpec;
use telic::rng::Rng;

const SCENES: [&str; 3] = ["reach", "navigate", "push"];

/// The shipped scene `name`, reset with `seed`.
fn reset(name: &str, seed: u64) -> (Scenario, Box<dyn World>, EpisodeSetup) {
    let scenario = Scenario::load(name).unwrap();
    let mut scene = scenario.scene.build(&scenario.base_dir).unwrap();
    let setup = scene.reset(seed).unwrap();
    (scenario, scene, setup)
}

/// Holds a random action (uniform within the model's bounds) for one
/// control period of `physics_steps` physics steps.
fn wander(scene: &mut dyn World, rng: &mut Rng, physics_steps: usize) {
    let model = scene.analytic_model().unwrap();
    let spec = model.spec();
    let u: Vec<Real> = spec
        .action_lower
        .iter()
        .zip(&spec.action_upper)
        .map(|(lo, hi)| rng.range(*lo, *hi))
        .collect();
    scene.apply(&u);
    for _ in 0..physics_steps {
        scene.step();
    }
}

#[test]
fn proprio_is_the_robots_part_of_the_state_observation() {
    let expected: [&[&str]; 3] = [
        &[],
        &["x", "y", "theta", "v", "omega"],
        &["pusher.x", "pusher.y", "pusher.vx", "pusher.vy"],
    ];
    let mut rng = Rng::new(3);
    for (name, expected) in SCENES.iter().zip(expected) {
        let (_, mut scene, _) = reset(name, 2);
        let spec = scene.analytic_model().unwrap().spec().clone();
        let names = scene.proprio_names().to_vec();
        if expected.is_empty() {
            // reach: every joint angle and velocity, i.e. the whole state.
            assert_eq!(names, spec.observations, "{name}");
        } else {
            assert_eq!(names, *expected, "{name}");
        }
        for _ in 0..5 {
            wander(scene.as_mut(), &mut rng, 5);
            let mut obs = vec![0.0; spec.obs_dim()];
            scene.observe(&mut obs);
            let mut proprio = vec![Real::NAN; names.len()];
            scene.proprio(&mut proprio);
            for (n, v) in names.iter().zip(&proprio) {
                let k = spec.observations.iter().position(|o| o == n).unwrap();
                assert_eq!(*v, obs[k], "{name}: {n}");
            }
        }
    }
}

/// The unbuffered margins (what the validator checks) of the episode's
/// geometric guardrails (their minimum) and of its pixel guardrails, at
/// the scene's current truth readouts, with the scenario's bodies.
fn margins(scenario: &Scenario, scene: &dyn World, setup: &EpisodeSetup) -> (Real, Real) {
    let mut model = scene.analytic_model().unwrap().spec().clone();
    model.readouts = scene.truth_readouts().to_vec();
    let margins_of = |guardrails: &[telic::objective::GuardrailSpec]| {
        let spec = ObjectiveSpec {
            guardrails: guardrails.to_vec(),
            bodies: scenario.objective.bodies.clone(),
            ..ObjectiveSpec::default()
        };
        let objective = spec.compile(&model).unwrap();
        let mut y = vec![0.0; model.readouts.len()];
        scene.truth(&mut y);
        let mut out = vec![0.0; guardrails.len()];
        objective.margins(&y, false, &mut out);
        out.into_iter().fold(Real::INFINITY, Real::min)
    };
    (
        margins_of(&setup.guardrails),
        margins_of(&setup.pixel_guardrails),
    )
}

#[test]
fn clearance_readouts_equal_the_geometric_guardrails_margins() {
    // navigate: `clearance` is the true distance from the robot's disc to
    // the nearest obstacle, so `clearance − min_clearance` is the margin of
    // the clearance guardrail; push: `keepout.clearance` is the keep_out
    // guardrails' margin itself (their minimum distance is 0).
    for (name, readout) in [("navigate", "clearance"), ("push", "keepout.clearance")] {
        let mut rng = Rng::new(5);
        let mut seen = Vec::new();
        for seed in 1..4 {
            let (scenario, mut scene, setup) = reset(name, seed);
            assert_eq!(setup.pixel_guardrails.len(), 1, "{name}");
            let g = &setup.pixel_guardrails[0];
            assert_eq!(g.margin(), setup.guardrails[0].margin(), "{name}");
            let k = scene
                .truth_readouts()
                .iter()
                .position(|r| r == readout)
                .unwrap();
            for _ in 0..30 {
                wander(scene.as_mut(), &mut rng, 10);
                let (geometric, pixel) = margins(&scenario, scene.as_ref(), &setup);
                assert!(
                    (geometric - pixel).abs() < 1e-9,
                    "{name}, seed {seed}: geometric margin {geometric}, readout margin {pixel}"
                );
                let mut y = vec![0.0; scene.truth_readouts().len()];
                scene.truth(&mut y);
                seen.push(y[k]);
            }
        }
        // The states differ: the equality was checked at many distances.
        let (lo, hi) = seen
            .iter()
            .fold((Real::INFINITY, Real::NEG_INFINITY), |(a, b), v| {
                (a.min(*v), b.max(*v))
            });
        assert!(hi - lo > 0.05, "{name}: {readout} in [{lo}, {hi}]");
    }
}

#[test]
fn reach_has_no_pixel_guardrails_and_readouts_keep_their_places() {
    let (_, scene, setup) = reset("reach", 1);
    assert!(setup.pixel_guardrails.is_empty());
    for name in ["navigate", "push"] {
        let (_, scene, _) = reset(name, 1);
        let model = scene.analytic_model().unwrap();
        let readouts = &model.spec().readouts;
        // Appended: every analytic readout keeps its index.
        assert_eq!(&scene.truth_readouts()[..readouts.len()], &readouts[..]);
        assert_eq!(scene.truth_readouts().len(), readouts.len() + 1);
    }
    assert_eq!(
        scene.truth_readouts(),
        &scene.analytic_model().unwrap().spec().readouts[..]
    );
}

#[test]
fn goal_images_show_the_goal_configuration() {
    let mut camera = Camera::new(ImageSize::default()).unwrap();
    let bytes = camera.size().bytes();
    for name in SCENES {
        let scenario = Scenario::load(name).unwrap();
        let mut scene = scenario.scene.build(&scenario.base_dir).unwrap();
        let mut goal = vec![0; bytes];
        // Before a reset there is no goal.
        let e = scene.render_goal(&mut camera, &mut goal).unwrap_err();
        assert!(e.to_string().contains("no goal"), "{name}: {e}");
        scene.reset(4).unwrap();
        let mut now = vec![0; bytes];
        scene.render(&mut camera, &mut now).unwrap();
        scene.render_goal(&mut camera, &mut goal).unwrap();
        assert_ne!(now, goal, "{name}: the goal image is the current image");
        let mut again = vec![0; bytes];
        scene.render_goal(&mut camera, &mut again).unwrap();
        assert_eq!(goal, again, "{name}");
        // Rendering the goal leaves the current state's image as it was.
        scene.render(&mut camera, &mut again).unwrap();
        assert_eq!(now, again, "{name}");
    }
}
