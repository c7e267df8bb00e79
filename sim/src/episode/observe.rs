//! What the planner observes: the one place an episode's observation is
//! written, in each observation mode of the scenario (`[observation] mode`).
//!
//! | mode | the observation (one flat `&[Real]`) |
//! |---|---|
//! | `state` | [`World::observe`]: the scene's state, object and obstacle poses included |
//! | `pixels` | the camera image, `C·H·W` numbers `0..=255` in C×H×W order ([`World::render`]) |
//! | `pixels+proprio` | the image, then [`World::proprio`]: the robot's own state only |
//!
//! In the pixel modes nothing about objects or obstacles reaches the planner
//! but the image. The layout is the one `telic::model::ModelSpec` describes
//! (`image` first, then the named vector entries), so a model fits a mode
//! when its image is the camera's and its vector entries are the mode's
//! ([`Observer::check_model`]).

use crate::SimError;
use crate::perturb::Sensing;
use crate::scenario::{ObservationConfig, ObservationMode};
use crate::scene::World;
use crate::scene::camera::Camera;
use telic::model::ImageSpec;
use telic::{ModelSpec, Real};

/// Writes an episode's observations in one observation mode. It owns the
/// camera and the image buffer, allocated once: observing allocates nothing
/// (beyond what a camera frame does, see [`crate::scene::camera`]).
#[derive(Debug)]
pub struct Observer {
    mode: ObservationMode,
    /// The camera of the pixel modes (`None` in state mode).
    camera: Option<Camera>,
    /// The last image rendered, C×H×W RGB (empty in state mode).
    image: Vec<u8>,
    /// Names of the vector entries after the image: the state observation's
    /// in state mode, the robot's proprio entries in `pixels+proprio`, none
    /// in `pixels`.
    vector: Vec<String>,
    /// Per vector entry, its index in the state observation (`None`: not
    /// there), to take a goal's proprio entries from a state goal.
    in_state: Vec<Option<usize>>,
    /// The scene's name, for errors.
    scene: String,
    /// The perturbed world's sensors (`None`: exact observations).
    sensing: Option<Sensing>,
}

impl Observer {
    /// An observer of `world` in the mode and camera size of `config`.
    /// The camera size is checked ([`Camera::new`]).
    pub fn new(config: &ObservationConfig, world: &dyn World) -> Result<Self, SimError> {
        let state = world.analytic_model()?.spec().observations.clone();
        let (camera, vector) = match config.mode {
            ObservationMode::State => (None, state.clone()),
            mode if mode.has_proprio() => (Some(config.camera()?), world.proprio_names().to_vec()),
            _ => (Some(config.camera()?), Vec::new()),
        };
        let image = vec![0; camera.as_ref().map_or(0, |c| c.size().bytes())];
        let in_state = vector
            .iter()
            .map(|n| state.iter().position(|s| s == n))
            .collect();
        Ok(Self {
            mode: config.mode,
            camera,
            image,
            vector,
            in_state,
            scene: world.name().to_string(),
            sensing: None,
        })
    }

    /// The observation mode.
    #[must_use]
    pub fn mode(&self) -> ObservationMode {
        self.mode
    }

    /// Values of one observation: `C·H·W` image numbers (pixel modes) plus
    /// the vector entries.
    #[must_use]
    pub fn obs_dim(&self) -> usize {
        self.image.len() + self.vector.len()
    }

    /// The image's shape (channels 3, RGB), `None` in state mode.
    #[must_use]
    pub fn image_spec(&self) -> Option<ImageSpec> {
        let size = self.camera.as_ref()?.size();
        Some(ImageSpec {
            channels: 3,
            height: size.height(),
            width: size.width(),
        })
    }

    /// Names of the vector entries after the image.
    #[must_use]
    pub fn vector_names(&self) -> &[String] {
        &self.vector
    }

    /// The image of the last observation (or goal) written, C×H×W RGB
    /// bytes; empty in state mode.
    #[must_use]
    pub fn image(&self) -> &[u8] {
        &self.image
    }

    /// Writes the observation of `world`'s current state into `out`
    /// ([`Observer::obs_dim`] values).
    pub fn observe(&mut self, world: &dyn World, out: &mut [Real]) -> Result<(), SimError> {
        self.check_len(out.len())?;
        match self.camera.as_mut() {
            None => world.observe(out),
            Some(camera) => {
                world.render(camera, &mut self.image)?;
                let vector = self.write_image(out);
                if !vector.is_empty() {
                    world.proprio(vector);
                }
            }
        }
        if let Some(sensing) = self.sensing.as_mut() {
            sensing.observe(&mut self.image, out);
        }
        Ok(())
    }

    /// [`crate::episode::Episode::sense_row`].
    pub(crate) fn sense_row(&mut self, image: &mut [u8], state: &mut [Real]) {
        if let Some(sensing) = self.sensing.as_mut() {
            sensing.image(image);
            sensing.vector(state);
        }
    }

    /// Observes through the sensors of a perturbed world from now on
    /// ([`crate::perturb`]): noise, lighting and stale observations. The
    /// goal observation stays exact.
    pub fn disturb(&mut self, sensing: Sensing) {
        self.sensing = Some(sensing);
    }

    /// The goal as an observation of this mode, for a latent goal term:
    /// in state mode the scene's `state_goal` (its goal observation, if it
    /// gives one); in the pixel modes the image of the goal configuration
    /// ([`World::render_goal`]) followed by the proprio entries of
    /// `state_goal` when the scene gives one, else those of the current
    /// state. `None` when the scene has no goal to give (an error is for
    /// the latent term that needs it); an error when drawing it fails.
    pub fn goal(
        &mut self,
        world: &dyn World,
        state_goal: Option<&[Real]>,
    ) -> Result<Option<Vec<Real>>, SimError> {
        let Some(camera) = self.camera.as_mut() else {
            return Ok(state_goal.map(<[Real]>::to_vec));
        };
        world.render_goal(camera, &mut self.image)?;
        let mut goal = vec![0.0; self.obs_dim()];
        let vector = self.write_image(&mut goal);
        world.proprio(vector);
        if let Some(state_goal) = state_goal {
            for (v, i) in vector.iter_mut().zip(&self.in_state) {
                if let Some(x) = i.and_then(|i| state_goal.get(i)) {
                    *v = *x;
                }
            }
        }
        Ok(Some(goal))
    }

    /// Checks that `model` reads the observations of this mode: an image of
    /// the camera's shape in the pixel modes and none in state mode, and
    /// the mode's vector entries in the pixel modes.
    pub fn check_model(&self, model: &ModelSpec) -> Result<(), SimError> {
        let err = |message: String| {
            Err(SimError::Scene {
                scene: self.scene.clone(),
                message,
            })
        };
        let mode = self.mode.name();
        let (Some(camera), Some(image)) = (self.image_spec(), model.image) else {
            return match (self.camera.is_some(), model.image) {
                (false, Some(image)) => err(format!(
                    "world model '{}' reads {} images, but the observation mode is 'state': \
                     run it with --obs pixels or pixels+proprio (or [observation] mode in \
                     the scenario)",
                    model.name,
                    shape(&image)
                )),
                (true, None) => err(format!(
                    "pixel observation modes need a world model that reads images: a v2 \
                     bundle with an [image] input (docs/bundle.md); world model '{}' reads \
                     the state [{}] (observation mode '{mode}')",
                    model.name,
                    model.observations.join(", ")
                )),
                _ => Ok(()),
            };
        };
        if image != camera {
            return err(format!(
                "world model '{}' reads {} images, the camera makes {} ([observation] width \
                 and height)",
                model.name,
                shape(&image),
                shape(&camera)
            ));
        }
        if model.observations != self.vector {
            return err(format!(
                "world model '{}' reads the vector entries [{}] beside its image; observation \
                 mode '{mode}' gives [{}]",
                model.name,
                model.observations.join(", "),
                self.vector.join(", ")
            ));
        }
        Ok(())
    }

    /// Copies the image into the front of `out` as numbers and returns the
    /// rest of `out` (the vector entries).
    fn write_image<'a>(&self, out: &'a mut [Real]) -> &'a mut [Real] {
        let (pixels, vector) = out.split_at_mut(self.image.len().min(out.len()));
        for (o, b) in pixels.iter_mut().zip(&self.image) {
            *o = Real::from(*b);
        }
        vector
    }

    fn check_len(&self, len: usize) -> Result<(), SimError> {
        if len == self.obs_dim() {
            return Ok(());
        }
        Err(SimError::Scene {
            scene: self.scene.clone(),
            message: format!(
                "observation buffer has {len} values, observation mode '{}' writes {}",
                self.mode.name(),
                self.obs_dim()
            ),
        })
    }
}

/// `C×H×W` of an image shape.
fn shape(image: &ImageSpec) -> String {
    format!("{}x{}x{}", image.channels, image.height, image.width)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Scenario;

    fn push(mode: ObservationMode) -> (Box<dyn World>, ObservationConfig) {
        let scenario = Scenario::load("push").unwrap();
        let mut world = scenario.scene.build(&scenario.base_dir).unwrap();
        world.reset(3).unwrap();
        let config = ObservationConfig {
            mode,
            width: 32,
            height: 24,
        };
        (world, config)
    }

    #[test]
    fn state_mode_observes_the_state() {
        let (world, config) = push(ObservationMode::State);
        let mut observer = Observer::new(&config, world.as_ref()).unwrap();
        let spec = world.analytic_model().unwrap().spec().clone();
        assert_eq!(observer.obs_dim(), spec.obs_dim());
        assert_eq!(observer.image_spec(), None);
        let (mut a, mut b) = (vec![0.0; spec.obs_dim()], vec![1.0; spec.obs_dim()]);
        observer.observe(world.as_ref(), &mut a).unwrap();
        world.observe(&mut b);
        assert_eq!(a, b);
        assert!(observer.image().is_empty());
    }

    #[test]
    fn pixel_modes_observe_the_image_then_the_proprio_entries() {
        for mode in [ObservationMode::Pixels, ObservationMode::PixelsProprio] {
            let (world, config) = push(mode);
            let mut observer = Observer::new(&config, world.as_ref()).unwrap();
            let proprio = match mode {
                ObservationMode::PixelsProprio => world.proprio_names().len(),
                _ => 0,
            };
            assert_eq!(observer.obs_dim(), 3 * 32 * 24 + proprio);
            let mut obs = vec![-1.0; observer.obs_dim()];
            observer.observe(world.as_ref(), &mut obs).unwrap();
            let mut camera = config.camera().unwrap();
            let mut image = vec![0; 3 * 32 * 24];
            world.render(&mut camera, &mut image).unwrap();
            assert_eq!(observer.image(), image.as_slice());
            let pixels: Vec<Real> = image.iter().map(|b| Real::from(*b)).collect();
            assert_eq!(&obs[..image.len()], pixels.as_slice());
            let mut expected = vec![0.0; proprio];
            world.proprio(&mut expected);
            assert_eq!(&obs[image.len()..], expected.as_slice(), "{mode:?}");
            let err = observer.observe(world.as_ref(), &mut obs[1..]).unwrap_err();
            assert!(err.to_string().contains("observation buffer"), "{err}");
        }
    }

    #[test]
    fn a_model_must_read_the_observations_of_the_mode() {
        let (world, config) = push(ObservationMode::PixelsProprio);
        let observer = Observer::new(&config, world.as_ref()).unwrap();
        let analytic = world.analytic_model().unwrap().spec().clone();
        let err = observer.check_model(&analytic).unwrap_err().to_string();
        assert!(
            err.contains("need a world model that reads images"),
            "{err}"
        );
        let mut seeing = analytic.clone();
        seeing.image = observer.image_spec();
        seeing.observations = world.proprio_names().to_vec();
        observer.check_model(&seeing).unwrap();
        let mut wrong_size = seeing.clone();
        wrong_size.image = Some(ImageSpec {
            channels: 3,
            height: 64,
            width: 64,
        });
        let err = observer.check_model(&wrong_size).unwrap_err().to_string();
        assert!(
            err.contains("reads 3x64x64 images, the camera makes 3x24x32"),
            "{err}"
        );
        let mut wrong_vector = seeing.clone();
        wrong_vector.observations = vec!["box.x".into()];
        let err = observer.check_model(&wrong_vector).unwrap_err().to_string();
        assert!(err.contains("vector entries [box.x]"), "{err}");

        let (world, config) = push(ObservationMode::State);
        let state = Observer::new(&config, world.as_ref()).unwrap();
        state.check_model(&analytic).unwrap();
        let err = state.check_model(&seeing).unwrap_err().to_string();
        assert!(err.contains("observation mode is 'state'"), "{err}");
    }
}
