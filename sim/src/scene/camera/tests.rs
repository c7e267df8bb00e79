use super::*;
use crate::scenario::Scenario;
use crate::scene::EpisodeSetup;
use telic::WorldModel;

/// The shipped scene `name`, reset with `seed`.
fn scene(name: &str, seed: u64) -> Box<dyn World> {
    let scenario = Scenario::load(name).unwrap();
    let mut world = scenario.scene.build(&scenario.base_dir).unwrap();
    world.reset(seed).unwrap();
    world
}

fn frame(world: &dyn World, camera: &mut Camera) -> Vec<u8> {
    let mut image = vec![0; camera.size().bytes()];
    world.render(camera, &mut image).unwrap();
    image
}

/// Count of pixels of colour `rgb` in a C×H×W image.
fn count(image: &[u8], rgb: [u8; 3]) -> usize {
    let plane = image.len() / 3;
    (0..plane)
        .filter(|&k| [image[k], image[plane + k], image[2 * plane + k]] == rgb)
        .count()
}

#[test]
fn same_state_same_bytes_other_state_other_bytes() {
    for name in ["reach", "navigate", "push"] {
        let mut camera = Camera::new(ImageSize::default()).unwrap();
        let world = scene(name, 3);
        let first = frame(world.as_ref(), &mut camera);
        assert_eq!(first.len(), 3 * 64 * 64);
        assert_eq!(first, frame(world.as_ref(), &mut camera), "{name}");
        let mut fresh = Camera::new(ImageSize::default()).unwrap();
        assert_eq!(first, frame(scene(name, 3).as_ref(), &mut fresh), "{name}");
        let other = frame(scene(name, 4).as_ref(), &mut camera);
        assert_ne!(first, other, "{name}: seeds 3 and 4 look alike");
    }
}

#[test]
fn rendering_leaves_the_state_alone() {
    let mut world = scene("push", 5);
    let mut before = vec![0.0; 8];
    world.observe(&mut before);
    let mut camera = Camera::new(ImageSize::default()).unwrap();
    let first = frame(world.as_ref(), &mut camera);
    let mut after = vec![0.0; 8];
    world.observe(&mut after);
    assert_eq!(before, after);
    world.apply(&[0.3, 0.2]);
    for _ in 0..50 {
        world.step();
    }
    assert_ne!(
        first,
        frame(world.as_ref(), &mut camera),
        "the pusher moved"
    );
}

#[test]
fn hazards_and_the_robot_are_visible() {
    let mut camera = Camera::new(ImageSize::default()).unwrap();
    for name in ["reach", "navigate", "push"] {
        let image = frame(scene(name, 1).as_ref(), &mut camera);
        assert!(count(&image, HAZARD) > 0, "{name}: no keep-out or obstacle");
        assert!(count(&image, ROBOT) > 0, "{name}: no robot");
    }
    let image = frame(scene("push", 1).as_ref(), &mut camera);
    assert!(count(&image, BOX) > 0 && count(&image, BOX_FACE) > 0);
}

/// A world holding one push box at a given yaw, with a keep-out region
/// under it or none.
struct BoxAt(Real, bool);

impl World for BoxAt {
    fn name(&self) -> &str {
        "box"
    }
    fn reset(&mut self, _seed: u64) -> Result<EpisodeSetup, SimError> {
        Ok(EpisodeSetup::default())
    }
    fn observe(&self, _out: &mut [Real]) {}
    fn truth_readouts(&self) -> &[String] {
        &[]
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
    fn goal_error(&self) -> Vec<(&'static str, Real)> {
        Vec::new()
    }
    fn analytic_model(&self) -> Result<Box<dyn WorldModel>, SimError> {
        Err(camera_err("no model".into()))
    }
    fn visuals(&self, out: &mut Vec<(String, Shape)>) {
        out.push((
            "box".into(),
            Shape::Box {
                center: [0.05, -0.02, 0.05],
                half_extents: [0.1, 0.06, 0.05],
                rpy: [0.0, 0.0, self.0],
            },
        ));
    }
    fn camera_view(&self) -> Option<View> {
        Some(View::new([0.0, 0.0], [0.3, 0.3]))
    }
    fn hazards(&self, out: &mut Vec<Shape>) {
        if self.1 {
            out.push(Shape::Box {
                center: [0.05, -0.02, 0.0],
                half_extents: [0.04, 0.03, 0.001],
                rpy: [0.0, 0.0, 0.3],
            });
        }
    }
    fn proprio_names(&self) -> &[String] {
        &[]
    }
    fn proprio(&self, _out: &mut [Real]) {}
}

#[test]
fn a_half_turn_of_the_box_shows() {
    let mut camera = Camera::new(ImageSize::default()).unwrap();
    for theta in [0.0, 0.7, -2.0] {
        let a = frame(&BoxAt(theta, false), &mut camera);
        let b = frame(&BoxAt(theta + std::f64::consts::PI, false), &mut camera);
        assert_ne!(a, b, "yaw {theta} and {theta} + π look alike");
        assert_eq!(a, frame(&BoxAt(theta, false), &mut camera));
    }
}

#[test]
fn a_box_over_a_keep_out_region_does_not_hide_it() {
    // The region lies wholly under the box: its fill is covered, its
    // outline is drawn over the box.
    let mut camera = Camera::new(ImageSize::default()).unwrap();
    let reddish = |image: &[u8]| {
        let plane = image.len() / 3;
        (0..plane)
            .filter(|&k| image[k] > 150 && image[plane + k] < 120 && image[2 * plane + k] < 120)
            .count()
    };
    let red = reddish(&frame(&BoxAt(0.0, true), &mut camera));
    assert!(red >= 20, "{red} red pixels");
    assert_eq!(reddish(&frame(&BoxAt(0.0, false), &mut camera)), 0);
}

#[test]
fn sizes_are_bounded_and_buffers_checked() {
    let at = |width, height| Camera::new(ImageSize::new(width, height));
    let e = at(MAX_CAMERA_SIZE + 1, 64).unwrap_err().to_string();
    assert!(
        e.contains("camera.width = 1025 is above its limit of 1024"),
        "{e}"
    );
    let e = at(64, 0).unwrap_err().to_string();
    assert!(e.contains("camera.height must be at least 1"), "{e}");
    let mut camera = at(32, 48).unwrap();
    let world = scene("navigate", 1);
    let mut short = vec![0; 10];
    let e = world
        .render(&mut camera, &mut short)
        .unwrap_err()
        .to_string();
    assert!(e.contains("needs 4608"), "{e}");
    let mut image = vec![0; 3 * 32 * 48];
    assert!(world.render(&mut camera, &mut image).is_ok());
}
