//! Observation modes end to end (issue 17): a push episode planned from the
//! camera image and the pusher's own state, by a hand-written world model
//! that reads the box's pose off the image's pixels, with the keep-out
//! guarded through a readout the model decodes and the true keep-out judged
//! by the validator; and the errors of a model that does not read the mode.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may unwrap

use telic::model::ImageSpec;
use telic::objective::geometry::CompiledShape;
use telic::objective::{GuardrailSpec, Shape};
use telic::{ModelError, ModelSpec, Real, WorldModel};
use telic_sim::scenario::{ModelChoice, ObservationMode, Scenario};
use telic_sim::scene::{Scene, SceneConfig};

/// The camera's side in these tests: the 0.1 m box is about 11 pixels wide.
const SIDE: u32 = 128;

/// The push scene's analytic model (`telic::model::Pusher`) behind an encoder that sees: the pusher's state
/// from the proprio entries, the box's position from the centroid of its
/// brown and yellow pixels and its yaw from where the yellow (+x) face is.
/// It knows the keep-out region's shape, as a model trained on images of
/// the scene would, and reads out `keepout.clearance` from the pusher's
/// position, which the pixel guardrail bounds.
struct SeeingPusher {
    inner: Box<dyn WorldModel>,
    spec: ModelSpec,
    keepouts: Vec<CompiledShape>,
    pusher_radius: Real,
    /// Pixels per metre: the camera sees the table centred, scaled to fit.
    scale: Real,
    /// Readouts of the inner model (reused).
    inner_y: Vec<Real>,
    /// Observations handed to `encode`, for the test to look at.
    seen: Vec<Vec<Real>>,
}

impl SeeingPusher {
    /// The model for the running episode of `scene`, reading images of
    /// shape `image`.
    fn new(image: ImageSpec, scene: &Scene) -> Self {
        let SceneConfig::Push(config) = &scene.scenario().scene else {
            panic!("a push scene");
        };
        let inner = scene.world().analytic_model().unwrap();
        let scale = (image.width as Real / config.table_length)
            .min(image.height as Real / config.table_width);
        let mut spec = inner.spec().clone();
        spec.name = "seeing_pusher".into();
        spec.image = Some(image);
        spec.observations = spec.observations[..4].to_vec();
        spec.readouts.push("keepout.clearance".into());
        Self {
            inner,
            spec,
            keepouts: keepouts(scene).iter().map(Shape::compile).collect(),
            pusher_radius: config.pusher_radius,
            scale,
            inner_y: Vec::new(),
            seen: Vec::new(),
        }
    }

    /// The box's `[x, y, cos, sin]` seen in a C×H×W image given as numbers.
    fn box_pose(&self, pixels: &[Real]) -> Result<[Real; 4], ModelError> {
        let ImageSpec { height, width, .. } = self.spec.image.unwrap();
        let plane = height * width;
        let (mut all, mut face) = ([0.0; 3], [0.0; 3]);
        for k in 0..plane {
            let rgb = [pixels[k], pixels[plane + k], pixels[2 * plane + k]];
            let (row, col) = ((k / width) as Real, (k % width) as Real);
            let brown = near(rgb, [140.0, 90.0, 40.0]);
            let yellow = near(rgb, [250.0, 210.0, 30.0]);
            if brown || yellow {
                all = [all[0] + col, all[1] + row, all[2] + 1.0];
            }
            if yellow {
                face = [face[0] + col, face[1] + row, face[2] + 1.0];
            }
        }
        if all[2] == 0.0 || face[2] == 0.0 {
            return Err(ModelError::Invalid("the box is not in the image".into()));
        }
        let s = self.scale;
        let at = |c: [Real; 3]| {
            let (col, row) = (c[0] / c[2] + 0.5, c[1] / c[2] + 0.5);
            [
                (col - width as Real / 2.0) / s,
                (height as Real / 2.0 - row) / s,
            ]
        };
        let (centre, marked) = (at(all), at(face));
        let yaw = (marked[1] - centre[1]).atan2(marked[0] - centre[0]);
        Ok([centre[0], centre[1], yaw.cos(), yaw.sin()])
    }
}

/// `rgb` is within a few steps of `colour` (anti-aliased edges are not).
fn near(rgb: [Real; 3], colour: [Real; 3]) -> bool {
    rgb.iter().zip(colour).all(|(a, b)| (a - b).abs() < 24.0)
}

impl WorldModel for SeeingPusher {
    fn spec(&self) -> &ModelSpec {
        &self.spec
    }

    fn encode(&mut self, obs: &[Real], z: &mut [Real]) -> Result<(), ModelError> {
        let o = self.spec.obs_dim();
        let image = self.spec.image_len();
        for (row, z) in obs.chunks_exact(o).zip(z.chunks_exact_mut(8)) {
            self.seen.push(row.to_vec());
            z[..4].copy_from_slice(&row[image..]);
            z[4..].copy_from_slice(&self.box_pose(&row[..image])?);
        }
        Ok(())
    }

    fn predict(&mut self, z: &[Real], u: &[Real], z_next: &mut [Real]) -> Result<(), ModelError> {
        self.inner.predict(z, u, z_next)
    }

    fn readout(&mut self, z: &[Real], y: &mut [Real]) -> Result<(), ModelError> {
        let (p, q) = (self.spec.readout_dim(), self.inner.spec().readout_dim());
        self.inner_y.resize(z.len() / 8 * q, 0.0);
        self.inner.readout(z, &mut self.inner_y)?;
        for ((y, inner), z) in y
            .chunks_exact_mut(p)
            .zip(self.inner_y.chunks_exact(q))
            .zip(z.chunks_exact(8))
        {
            y[..q].copy_from_slice(inner);
            let at = [z[0], z[1], 0.0].into();
            let far = self.keepouts.iter().map(|k| k.signed_distance(&at));
            y[q] = far.fold(Real::INFINITY, Real::min) - self.pusher_radius;
        }
        Ok(())
    }
}

/// The push scenario in `mode` with the test camera, the analytic model's
/// planner settings at a smaller budget.
fn push(mode: ObservationMode) -> Scenario {
    let mut scenario = Scenario::load("push").unwrap();
    scenario.model = ModelChoice::Analytic;
    scenario.observation.mode = mode;
    scenario.observation.width = SIDE;
    scenario.observation.height = SIDE;
    scenario.planner.samples = 128;
    scenario.episode.max_time = 10.0;
    scenario
}

/// The keep-out shapes of the running episode, from its true guardrails.
fn keepouts(scene: &Scene) -> Vec<Shape> {
    let setup = scene.setup().unwrap();
    setup
        .guardrails
        .iter()
        .filter_map(|g| match g {
            GuardrailSpec::KeepOut { shape, .. } => Some(shape.clone()),
            _ => None,
        })
        .collect()
}

/// The observation `scene` should hand out now: its world's image as
/// numbers, then the pusher's own state.
fn expected_observation(scene: &Scene) -> Vec<Real> {
    let world = scene.world();
    let mut camera = scene.scenario().observation.camera().unwrap();
    let mut image = vec![0; 3 * (SIDE * SIDE) as usize];
    world.render(&mut camera, &mut image).unwrap();
    let mut obs: Vec<Real> = image.iter().map(|b| Real::from(*b)).collect();
    let mut proprio = vec![0.0; world.proprio_names().len()];
    world.proprio(&mut proprio);
    obs.extend(proprio);
    obs
}

#[test]
fn a_push_episode_plans_from_the_image_and_the_pusher_state() {
    let scenario = push(ObservationMode::PixelsProprio);
    let mut scene = Scene::new(scenario).unwrap();
    let image = scene.image_spec().unwrap();
    assert_eq!((image.channels, image.height, image.width), (3, 128, 128));
    let n = scene.obs_dim();
    assert_eq!(n, 3 * 128 * 128 + 4);
    assert_eq!(
        scene.vector_names(),
        ["pusher.x", "pusher.y", "pusher.vx", "pusher.vy"]
    );
    let mut successes = 0;
    for seed in [1, 2, 3] {
        let mut obs = vec![0.0; n];
        scene.reset(seed, &mut obs).unwrap();
        let model = SeeingPusher::new(image, &scene);
        let mut planner = scene.planner(Box::new(model), None).unwrap();
        // The planner's objective bounds the decoded clearance, not the
        // keep-out's coordinates; the validator judges the true keep-out.
        let guards: Vec<&str> = planner.objective().guardrail_names().collect();
        assert!(guards.contains(&"keep_out"), "{guards:?}");
        let planned = &scene.planner_objective().unwrap().guardrails;
        assert!(
            !planned
                .iter()
                .any(|g| matches!(g, GuardrailSpec::KeepOut { .. })),
            "{planned:?}"
        );
        assert!(
            planned
                .iter()
                .any(|g| matches!(g, GuardrailSpec::ReadoutLimit(l)
            if l.readouts == ["keepout.clearance"]))
        );
        assert!(
            scene
                .validator()
                .unwrap()
                .names()
                .iter()
                .any(|g| g == "keep_out")
        );
        let mut violation_steps = 0;
        loop {
            assert_eq!(obs, expected_observation(&scene), "seed {seed}");
            assert_eq!(scene.image().len(), 3 * 128 * 128);
            assert_eq!(scene.vector(&obs), &obs[3 * 128 * 128..]);
            let action = planner.plan(&obs).unwrap().action.clone();
            let out = scene.step(&action, &mut obs).unwrap();
            violation_steps += out.violation_steps;
            if out.success || out.truncated {
                break;
            }
        }
        let result = scene.result().unwrap();
        assert_eq!(result.violation_steps, violation_steps);
        eprintln!(
            "seed {seed}: success {} in {} steps, {violation_steps} violation steps",
            result.success, result.control_steps
        );
        successes += usize::from(result.success);
    }
    assert!(successes >= 2, "{successes} of 3 pixel episodes succeeded");
}

#[test]
fn the_planner_is_handed_only_the_image_and_the_proprio_entries() {
    let mut scene = Scene::new(push(ObservationMode::PixelsProprio)).unwrap();
    let mut obs = vec![0.0; scene.obs_dim()];
    scene.reset(4, &mut obs).unwrap();
    let image = scene.image_spec().unwrap();
    let model = SeeingPusher::new(image, &scene);
    // The encoder sees what the planner is handed: keep the model outside
    // the planner for one encode, as the planner would call it.
    let mut model = model;
    let mut z = vec![0.0; 8];
    model.encode(&obs, &mut z).unwrap();
    let mut state = vec![0.0; 8];
    scene.world().observe(&mut state);
    assert_eq!(model.seen, vec![expected_observation(&scene)]);
    // Box pose read off the pixels: within 1 cm and 10° of the truth.
    assert!(
        (z[4] - state[4]).abs() < 0.01 && (z[5] - state[5]).abs() < 0.01,
        "{z:?} vs {state:?}"
    );
    let yaw_error = (z[7] * state[6] - z[6] * state[7]).atan2(z[6] * state[6] + z[7] * state[7]);
    assert!(yaw_error.abs() < 10f64.to_radians(), "{yaw_error}");
    assert_eq!(&z[..4], &state[..4]);
}

/// The same actions in state and pixel modes: the validator counts the same
/// true violations (it judges the truth, whatever the planner observes).
#[test]
fn the_validator_judges_the_truth_in_every_mode() {
    let mut accounts = Vec::new();
    for mode in [ObservationMode::State, ObservationMode::Pixels] {
        let mut scenario = push(mode);
        scenario.episode.max_time = 4.0;
        let mut scene = Scene::new(scenario).unwrap();
        let mut obs = vec![0.0; scene.obs_dim()];
        scene.reset(5, &mut obs).unwrap();
        let [
            GuardrailSpec::KeepOut {
                shape: Shape::Box { center, .. },
                ..
            },
        ] = scene.setup().unwrap().guardrails.as_slice()
        else {
            panic!("push draws one keep-out box");
        };
        let target = [center[0], center[1]];
        loop {
            let mut p = [0.0; 4];
            scene.world().proprio(&mut p);
            let (dx, dy) = (target[0] - p[0], target[1] - p[1]);
            let d = dx.hypot(dy).max(1e-9);
            let out = scene.step(&[0.3 * dx / d, 0.3 * dy / d], &mut obs).unwrap();
            if out.success || out.truncated {
                break;
            }
        }
        let r = scene.result().unwrap();
        accounts.push((
            r.violation_steps,
            r.worst_margin.to_bits(),
            r.worst_guardrail,
        ));
    }
    assert!(
        accounts[0].0 > 0,
        "the pusher drove into the keep-out: {accounts:?}"
    );
    assert_eq!(accounts[0], accounts[1]);
}

#[test]
fn a_model_that_does_not_read_the_mode_is_an_error() {
    let mut scene = Scene::new(push(ObservationMode::PixelsProprio)).unwrap();
    let mut obs = vec![0.0; scene.obs_dim()];
    scene.reset(1, &mut obs).unwrap();
    let analytic = scene.world().analytic_model().unwrap();
    let Err(err) = scene.planner(analytic, None) else {
        panic!("the analytic model planned in a pixel mode");
    };
    let err = err.to_string();
    assert!(
        err.contains("pixel observation modes need a world model that reads images"),
        "{err}"
    );

    let small = ImageSpec {
        channels: 3,
        height: 64,
        width: 64,
    };
    let model = SeeingPusher::new(small, &scene);
    let Err(err) = scene.planner(Box::new(model), None) else {
        panic!("a 64x64 model planned from 128x128 images");
    };
    let err = err.to_string();
    assert!(
        err.contains("reads 3x64x64 images, the camera makes 3x128x128"),
        "{err}"
    );

    // `pixels` gives no proprio entries: a model that wants them does not fit.
    let mut scene = Scene::new(push(ObservationMode::Pixels)).unwrap();
    let mut obs = vec![0.0; scene.obs_dim()];
    assert_eq!(obs.len(), 3 * 128 * 128);
    scene.reset(1, &mut obs).unwrap();
    let image = scene.image_spec().unwrap();
    let model = SeeingPusher::new(image, &scene);
    let Err(err) = scene.planner(Box::new(model), None) else {
        panic!("a model reading proprio entries planned in mode pixels");
    };
    assert!(
        err.to_string()
            .contains("observation mode 'pixels' gives []"),
        "{err}"
    );

    // And a seeing model in state mode.
    let mut scene = Scene::new(push(ObservationMode::State)).unwrap();
    let mut obs = vec![0.0; scene.obs_dim()];
    scene.reset(1, &mut obs).unwrap();
    let model = SeeingPusher::new(image, &scene);
    let Err(err) = scene.planner(Box::new(model), None) else {
        panic!("a seeing model planned in state mode");
    };
    assert!(
        err.to_string().contains("observation mode is 'state'"),
        "{err}"
    );
}
