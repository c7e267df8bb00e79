//! Perturbed worlds (`[perturb]` in a scenario, `telic run --perturb LEVEL`):
//! each episode's world differs from the one its model was made for, in
//! ways drawn from the episode's seed within stated ranges.
//!
//! | what | how it is drawn, per episode | `mild` | `moderate` | `severe` |
//! |---|---|---|---|---|
//! | `mass` | each collider's mass and inertia × U[1 − r, 1 + r] | 0.1 | 0.25 | 0.5 |
//! | `friction` | each collider's friction coefficient × U[1 − r, 1 + r] | 0.1 | 0.25 | 0.5 |
//! | `actuator` | each action channel's gain × U[1 − r, 1 + r] (the robot does `g·u` when told `u`) | 0.05 | 0.1 | 0.25 |
//! | `delay` | actuation delay, a whole number of control periods in 0..=k (the command sent now acts k periods later) | 0 | 1 | 3 |
//! | `obs_noise` | Gaussian noise of this standard deviation on every vector observation entry, in its own unit | 0.002 | 0.005 | 0.02 |
//! | `dropout` | probability that an observation is stale (the previous one repeated) | 0.02 | 0.05 | 0.2 |
//! | `image_noise` | Gaussian noise on every image byte (0–255 units) | 2 | 5 | 15 |
//! | `lighting` | the image's brightness × U[1 − r, 1 + r] | 0.05 | 0.1 | 0.3 |
//!
//! `none` (the default) perturbs nothing, and its episodes are bit for bit
//! those of a scenario without `[perturb]`. A setting given beside `level`
//! replaces that level's value. The validator judges every guardrail on
//! the true, perturbed state; the planner and its model are told nothing.
//!
//! ```toml
//! [perturb]
//! level = "moderate"
//! delay = 2          # overrides moderate's 1
//! ```

use crate::SimError;
use rapier3d::prelude::PhysicsWorld;
use serde::{Deserialize, Serialize};
use telic::Real;
use telic::limits::num;
use telic::rng::Rng;

/// A named level of perturbation (`[perturb] level`, `--perturb`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Nothing perturbed: the nominal world.
    #[default]
    None,
    /// Small mismatches, a little noise, no delay.
    Mild,
    /// Mismatches a deployed robot meets; one period of delay at most.
    Moderate,
    /// Beyond what the margins are calibrated for.
    Severe,
}

impl Level {
    /// Every level, mildest first.
    pub const ALL: [Level; 4] = [Level::None, Level::Mild, Level::Moderate, Level::Severe];

    /// The level's name, as written in a scenario.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Level::None => "none",
            Level::Mild => "mild",
            Level::Moderate => "moderate",
            Level::Severe => "severe",
        }
    }

    /// The ranges of this level (the module's table).
    #[must_use]
    pub fn ranges(self) -> Ranges {
        let row =
            |mass, friction, actuator, delay, obs_noise, dropout, image_noise, lighting| Ranges {
                mass,
                friction,
                actuator,
                delay,
                obs_noise,
                dropout,
                image_noise,
                lighting,
            };
        match self {
            Level::None => Ranges::default(),
            Level::Mild => row(0.1, 0.1, 0.05, 0, 0.002, 0.02, 2.0, 0.05),
            Level::Moderate => row(0.25, 0.25, 0.1, 1, 0.005, 0.05, 5.0, 0.1),
            Level::Severe => row(0.5, 0.5, 0.25, 3, 0.02, 0.2, 15.0, 0.3),
        }
    }
}

impl std::fmt::Display for Level {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Level {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Level::ALL
            .into_iter()
            .find(|l| l.name() == s)
            .ok_or_else(|| {
                format!("unknown perturbation level {s:?}: expected none, mild, moderate or severe")
            })
    }
}

/// How far each part of the world may differ from the nominal one
/// (the module's table gives each level's).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Ranges {
    /// Relative half range of each collider's mass.
    pub mass: Real,
    /// Relative half range of each collider's friction coefficient.
    pub friction: Real,
    /// Relative half range of each action channel's gain.
    pub actuator: Real,
    /// Largest actuation delay in control periods.
    pub delay: usize,
    /// Standard deviation of the noise on vector observation entries.
    pub obs_noise: Real,
    /// Probability of a stale observation.
    pub dropout: Real,
    /// Standard deviation of the noise on image bytes.
    pub image_noise: Real,
    /// Relative half range of the image's brightness.
    pub lighting: Real,
}

impl Ranges {
    /// Nothing is perturbed.
    #[must_use]
    pub fn is_none(&self) -> bool {
        *self == Ranges::default()
    }
}

/// Largest actuation delay a scenario may ask for, in control periods.
pub const MAX_DELAY: usize = 100;

/// The `[perturb]` section: a level, and any of its ranges replaced.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PerturbConfig {
    /// The named level (default `none`).
    pub level: Level,
    /// Replaces the level's `mass` range.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mass: Option<Real>,
    /// Replaces the level's `friction` range.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub friction: Option<Real>,
    /// Replaces the level's `actuator` range.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actuator: Option<Real>,
    /// Replaces the level's largest `delay` (control periods).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delay: Option<usize>,
    /// Replaces the level's `obs_noise`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub obs_noise: Option<Real>,
    /// Replaces the level's `dropout` probability.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dropout: Option<Real>,
    /// Replaces the level's `image_noise`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_noise: Option<Real>,
    /// Replaces the level's `lighting` range.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lighting: Option<Real>,
}

impl PerturbConfig {
    /// The section of `level` alone.
    #[must_use]
    pub fn level(level: Level) -> Self {
        Self {
            level,
            ..Self::default()
        }
    }

    /// Nothing is perturbed, and nothing is written (the default section).
    #[must_use]
    pub fn is_nominal(&self) -> bool {
        *self == Self::default()
    }

    /// The level's ranges with the settings given replaced.
    #[must_use]
    pub fn ranges(&self) -> Ranges {
        let mut r = self.level.ranges();
        let set = |dst: &mut Real, v: Option<Real>| {
            if let Some(v) = v {
                *dst = v;
            }
        };
        set(&mut r.mass, self.mass);
        set(&mut r.friction, self.friction);
        set(&mut r.actuator, self.actuator);
        set(&mut r.obs_noise, self.obs_noise);
        set(&mut r.dropout, self.dropout);
        set(&mut r.image_noise, self.image_noise);
        set(&mut r.lighting, self.lighting);
        if let Some(d) = self.delay {
            r.delay = d;
        }
        r
    }

    /// Checks the settings: relative ranges in [0, 1) (a factor stays
    /// positive), noise and dropout within bounds, delay within
    /// [`MAX_DELAY`].
    pub fn validate(&self, origin: &str) -> Result<(), SimError> {
        let r = self.ranges();
        let bad = |message: String| {
            Err(SimError::Scenario {
                path: origin.to_string(),
                message,
            })
        };
        for (name, v) in [
            ("mass", r.mass),
            ("friction", r.friction),
            ("actuator", r.actuator),
            ("lighting", r.lighting),
        ] {
            if !(v.is_finite() && (0.0..1.0).contains(&v)) {
                return bad(format!(
                    "perturb.{name} is a relative half range in [0, 1) (the factor stays \
                     positive), got {}",
                    num(v)
                ));
            }
        }
        if !(r.dropout.is_finite() && (0.0..1.0).contains(&r.dropout)) {
            return bad(format!(
                "perturb.dropout is a probability in [0, 1), got {}",
                num(r.dropout)
            ));
        }
        if !(r.obs_noise.is_finite() && r.obs_noise >= 0.0) {
            return bad(format!(
                "perturb.obs_noise is a standard deviation ≥ 0, got {}",
                num(r.obs_noise)
            ));
        }
        if !(r.image_noise.is_finite() && (0.0..=255.0).contains(&r.image_noise)) {
            return bad(format!(
                "perturb.image_noise is a standard deviation in 0..=255 (image bytes), got {}",
                num(r.image_noise)
            ));
        }
        crate::limits::check(origin, "perturb.delay", r.delay, MAX_DELAY)
    }
}

/// What one episode's world got: the values drawn from the [`Ranges`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Draw {
    /// The actuation delay in control periods.
    pub delay: usize,
    /// Each action channel's gain.
    pub actuator: Vec<Real>,
    /// The image's brightness factor.
    pub lighting: Real,
    /// Colliders whose mass and friction were scaled.
    pub colliders: usize,
}

/// Salt of the perturbation's random streams: the scene and the planner
/// draw from streams of their own, unchanged by a perturbation.
const SALT: u64 = 0x7065_7274_7572_6221;

/// Draws the perturbation of the episode of `seed` within `ranges` for a
/// robot of `actions` action channels, and scales the masses and frictions
/// of `physics` (when the scene has a rapier world). Returns what was
/// drawn, the actuation that delays and scales every action, and the
/// sensing that disturbs every observation.
#[must_use]
pub fn start(
    ranges: Ranges,
    seed: u64,
    actions: usize,
    physics: Option<&mut PhysicsWorld>,
) -> (Draw, Actuation, Sensing) {
    let mut rng = Rng::stream(seed ^ SALT, 0);
    let factor = |r: Real, rng: &mut Rng| {
        if r > 0.0 {
            rng.range(1.0 - r, 1.0 + r)
        } else {
            1.0
        }
    };
    let delay = if ranges.delay > 0 {
        rng.below(ranges.delay + 1)
    } else {
        0
    };
    let gains: Vec<Real> = (0..actions)
        .map(|_| factor(ranges.actuator, &mut rng))
        .collect();
    let lighting = factor(ranges.lighting, &mut rng);
    let mut colliders = 0;
    if let Some(world) = physics
        && (ranges.mass > 0.0 || ranges.friction > 0.0)
    {
        // In the set's (arena) order: the same colliders get the same factors.
        for (_, c) in world.colliders.iter_mut() {
            let (m, f) = (
                factor(ranges.mass, &mut rng),
                factor(ranges.friction, &mut rng),
            );
            if c.density() > 0.0 {
                c.set_density(c.density() * m as f32);
            }
            c.set_friction(c.friction() * f as f32);
            colliders += 1;
        }
    }
    let draw = Draw {
        delay,
        actuator: gains.clone(),
        lighting,
        colliders,
    };
    let actuation = Actuation {
        pending: (0..delay).map(|_| vec![0.0; actions]).collect(),
        acting: vec![0.0; actions],
        gains,
    };
    let sensing = Sensing {
        ranges,
        lighting,
        noise: Rng::stream(seed ^ SALT, 1),
        last: None,
    };
    (draw, actuation, sensing)
}

/// The actuators of a perturbed world: each command acts `delay` control
/// periods after it is sent, scaled by the channel's gain. Acting
/// allocates nothing.
#[derive(Debug)]
pub struct Actuation {
    /// The commands sent, oldest first: `delay` of them wait (zero at the
    /// start: the robot was told nothing before).
    pending: std::collections::VecDeque<Vec<Real>>,
    /// The command in force, scaled by the gains.
    acting: Vec<Real>,
    gains: Vec<Real>,
}

impl Actuation {
    /// The command that acts now when `command` is sent: the one sent
    /// `delay` periods ago, scaled by the actuator gains.
    pub fn act(&mut self, command: &[Real]) -> &[Real] {
        match self.pending.pop_front() {
            Some(mut oldest) => {
                std::mem::swap(&mut oldest, &mut self.acting);
                // `oldest` now holds the previous command in force: its
                // buffer carries the command that starts to wait.
                oldest.clear();
                oldest.extend_from_slice(command);
                self.pending.push_back(oldest);
            }
            None => {
                self.acting.clear();
                self.acting.extend_from_slice(command);
            }
        }
        for (u, g) in self.acting.iter_mut().zip(&self.gains) {
            *u *= g;
        }
        &self.acting
    }
}

/// The sensors of a perturbed world: noise on the observation's vector
/// entries and image, the image's lighting, and stale observations.
/// Observing allocates nothing after the first observation.
#[derive(Debug)]
pub struct Sensing {
    ranges: Ranges,
    lighting: Real,
    /// Draws the noise and the dropouts.
    noise: Rng,
    /// The last observation handed out (`None` before the first).
    last: Option<Vec<Real>>,
}

impl Sensing {
    /// Disturbs an observation in place: the `image` bytes (empty in state
    /// mode; `obs` begins with them as numbers) get the lighting and the
    /// noise, the vector entries after them the noise. With the dropout's
    /// probability the observation is instead the previous one: `obs` and
    /// `image` are overwritten with it.
    pub fn observe(&mut self, image: &mut [u8], obs: &mut [Real]) {
        if self.last.is_some()
            && self.stale()
            && let Some(last) = self.last.as_ref()
        {
            obs.copy_from_slice(last);
            // The image at hand is the one observed.
            for (byte, o) in image.iter_mut().zip(obs.iter()) {
                *byte = *o as u8;
            }
            return;
        }
        let (pixels, vector) = obs.split_at_mut(image.len().min(obs.len()));
        if self.image(image) {
            // The numbers follow the disturbed bytes.
            for (o, byte) in pixels.iter_mut().zip(image.iter()) {
                *o = Real::from(*byte);
            }
        }
        self.vector(vector);
        match self.last.as_mut() {
            Some(last) if last.len() == obs.len() => last.copy_from_slice(obs),
            _ => self.last = Some(obs.to_vec()),
        }
    }

    /// Draws whether the next observation is stale (the previous one
    /// repeated).
    fn stale(&mut self) -> bool {
        self.ranges.dropout > 0.0 && self.noise.uniform() < self.ranges.dropout
    }

    /// The lighting and the noise on image bytes; false when there are
    /// none (the bytes are left alone).
    pub fn image(&mut self, image: &mut [u8]) -> bool {
        let (gain, sigma) = (self.lighting, self.ranges.image_noise);
        if image.is_empty() || (sigma == 0.0 && gain == 1.0) {
            return false;
        }
        for byte in image.iter_mut() {
            let mut v = Real::from(*byte) * gain;
            if sigma > 0.0 {
                v += sigma * self.noise.normal();
            }
            *byte = v.round().clamp(0.0, 255.0) as u8;
        }
        true
    }

    /// The noise on vector observation entries.
    pub fn vector(&mut self, values: &mut [Real]) {
        if self.ranges.obs_noise > 0.0 {
            for v in values.iter_mut() {
                *v += self.ranges.obs_noise * self.noise.normal();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_parse_and_grow() {
        for l in Level::ALL {
            assert_eq!(l.name().parse::<Level>().unwrap(), l);
        }
        let e = "hard".parse::<Level>().unwrap_err();
        assert!(e.contains("moderate"), "{e}");
        assert!(Level::None.ranges().is_none());
        let [_, mild, moderate, severe] = Level::ALL.map(Level::ranges);
        for (a, b) in [(mild, moderate), (moderate, severe)] {
            assert!(a.mass < b.mass && a.actuator < b.actuator && a.delay < b.delay);
            assert!(a.obs_noise < b.obs_noise && a.dropout < b.dropout);
        }
    }

    #[test]
    fn settings_replace_the_levels_and_are_checked() {
        let c = PerturbConfig {
            delay: Some(2),
            mass: Some(0.0),
            ..PerturbConfig::level(Level::Moderate)
        };
        let r = c.ranges();
        assert_eq!((r.delay, r.mass), (2, 0.0));
        assert_eq!(r.friction, Level::Moderate.ranges().friction);
        c.validate("t").unwrap();
        for (bad, what) in [
            (
                PerturbConfig {
                    mass: Some(1.0),
                    ..PerturbConfig::default()
                },
                "perturb.mass",
            ),
            (
                PerturbConfig {
                    dropout: Some(Real::NAN),
                    ..PerturbConfig::default()
                },
                "perturb.dropout",
            ),
            (
                PerturbConfig {
                    obs_noise: Some(-1.0),
                    ..PerturbConfig::default()
                },
                "perturb.obs_noise",
            ),
            (
                PerturbConfig {
                    image_noise: Some(300.0),
                    ..PerturbConfig::default()
                },
                "perturb.image_noise",
            ),
            (
                PerturbConfig {
                    delay: Some(MAX_DELAY + 1),
                    ..PerturbConfig::default()
                },
                "perturb.delay",
            ),
        ] {
            let e = bad.validate("t").unwrap_err().to_string();
            assert!(e.contains(what), "{e}");
        }
    }

    #[test]
    fn actions_wait_for_the_delay_and_are_scaled() {
        let ranges = Ranges {
            delay: 3,
            actuator: 0.2,
            ..Ranges::default()
        };
        // Some seed draws a delay of 2.
        let (draw, mut d, _) = (0..64)
            .map(|s| start(ranges, s, 2, None))
            .find(|(draw, _, _)| draw.delay == 2)
            .expect("a delay of 2 among 64 seeds");
        let g = draw.actuator.clone();
        assert!(g.iter().all(|g| (0.8..=1.2).contains(g)), "{g:?}");
        assert_eq!(d.act(&[1.0, 2.0]), [0.0, 0.0]);
        assert_eq!(d.act(&[3.0, 4.0]), [0.0, 0.0]);
        assert_eq!(d.act(&[5.0, 6.0]), [g[0], 2.0 * g[1]]);
        assert_eq!(d.act(&[7.0, 8.0]), [3.0 * g[0], 4.0 * g[1]]);
        // No delay: the command acts at once.
        let (_, mut now, _) = start(Ranges::default(), 1, 1, None);
        assert_eq!(now.act(&[0.5]), [0.5]);
    }

    #[test]
    fn draws_come_from_the_seed() {
        let r = Level::Severe.ranges();
        let draw = |seed| start(r, seed, 3, None).0;
        assert_eq!(draw(9), draw(9));
        assert_ne!(draw(9), draw(10));
    }

    #[test]
    fn observations_get_noise_and_dropouts() {
        let ranges = Ranges {
            obs_noise: 0.1,
            dropout: 0.5,
            ..Ranges::default()
        };
        let (_, _, mut d) = start(ranges, 3, 1, None);
        let (mut stale, mut noisy) = (0, 0);
        let mut prev = vec![0.0; 4];
        for k in 0..200 {
            let mut obs = vec![k as Real; 4];
            d.observe(&mut [], &mut obs);
            if k > 0 && obs == prev {
                stale += 1;
            } else if obs.iter().all(|o| (o - k as Real).abs() > 0.0) {
                noisy += 1;
            }
            prev = obs;
        }
        assert!((70..130).contains(&stale), "{stale} stale of 200");
        assert_eq!(stale + noisy, 200, "every fresh observation is noisy");

        // The image: lighting and noise within bytes; the numbers follow.
        let ranges = Ranges {
            image_noise: 5.0,
            lighting: 0.3,
            ..Ranges::default()
        };
        let (_, _, mut d) = start(ranges, 4, 1, None);
        let mut image = vec![128u8; 300];
        let mut obs = vec![128.0; 301];
        d.observe(&mut image, &mut obs);
        assert!(image.iter().any(|b| *b != 128));
        for (b, o) in image.iter().zip(&obs) {
            assert_eq!(Real::from(*b), *o);
        }
        assert_eq!(obs[300], 128.0, "no vector noise asked for");
    }

    use crate::episode::{Episode, EpisodeResult, NoObserver, run_episode};
    use crate::scenario::{ModelChoice, Scenario};

    /// A short analytic `navigate` episode of `seed` with `perturb`.
    fn navigate(perturb: PerturbConfig, seed: u64) -> EpisodeResult {
        let mut scenario = Scenario::load("navigate").unwrap();
        scenario.model = ModelChoice::Analytic;
        scenario.planner.samples = 32;
        scenario.episode.max_time = 2.0;
        scenario.perturb = perturb;
        scenario.validate("test").unwrap();
        let mut world = scenario.scene.build(&scenario.base_dir).unwrap();
        let model = world.analytic_model().unwrap();
        run_episode(&scenario, world.as_mut(), model, seed, &mut NoObserver).unwrap()
    }

    #[test]
    fn the_nominal_level_changes_nothing_and_a_perturbed_world_is_reproducible() {
        let plain = navigate(PerturbConfig::default(), 5);
        let none = navigate(
            PerturbConfig {
                delay: Some(0),
                ..PerturbConfig::level(Level::None)
            },
            5,
        );
        assert_eq!(plain.task_cost.to_bits(), none.task_cost.to_bits());
        assert_eq!(none.perturbation, None);
        let moderate = PerturbConfig::level(Level::Moderate);
        let timeless = |mut r: EpisodeResult| {
            r.plan_latency_ms.clear();
            r
        };
        let a = timeless(navigate(moderate.clone(), 5));
        let b = timeless(navigate(moderate, 5));
        assert_eq!(a, b, "the same seed perturbs the same way");
        assert_ne!(a.task_cost.to_bits(), plain.task_cost.to_bits());
        let draw = a.perturbation.expect("the draw is reported");
        assert_eq!(draw.actuator.len(), 2);
        assert!(draw.colliders > 0, "{draw:?}");
    }

    #[test]
    fn a_delayed_robot_starts_moving_after_its_delay() {
        let mut scenario = Scenario::load("navigate").unwrap();
        scenario.perturb = PerturbConfig {
            delay: Some(3),
            ..PerturbConfig::default()
        };
        let ranges = scenario.perturb.ranges();
        let seed = (0..64)
            .find(|s| start(ranges, *s, 2, None).0.delay == 2)
            .expect("a delay of 2 among 64 seeds");
        let mut world = scenario.scene.build(&scenario.base_dir).unwrap();
        let control = world.analytic_model().unwrap().spec().clone();
        let mut episode = Episode::start(&scenario, world.as_mut(), seed, &control).unwrap();
        let full = control.action_upper.clone();
        let speed = world
            .truth_readouts()
            .iter()
            .position(|n| n == "speed")
            .unwrap();
        let mut truth = vec![0.0; world.truth_readouts().len()];
        let mut speeds = Vec::new();
        for _ in 0..3 {
            episode.step(world.as_mut(), &full, &mut |_, _| {});
            world.truth(&mut truth);
            speeds.push(truth[speed]);
        }
        assert_eq!(speeds[..2], [0.0, 0.0], "{speeds:?}");
        assert!(speeds[2] > 0.0, "{speeds:?}");
    }

    #[test]
    fn the_planner_identifies_the_delay_each_world_draws() {
        // Delays of 0 to 3 periods, nothing else perturbed; the planner
        // knows only that the delay is at most 3.
        let perturb = PerturbConfig {
            delay: Some(3),
            ..PerturbConfig::default()
        };
        let ranges = perturb.ranges();
        for delay in 0..=3 {
            let seed = (0..64)
                .find(|s| start(ranges, *s, 2, None).0.delay == delay)
                .expect("every delay among 64 seeds");
            let mut scenario = Scenario::load("navigate").unwrap();
            scenario.model = ModelChoice::Analytic;
            scenario.planner.samples = 32;
            scenario.planner.delay_steps = 3;
            scenario.planner.identify_delay = true;
            scenario.episode.max_time = 2.0;
            scenario.perturb = perturb.clone();
            scenario.validate("test").unwrap();
            let mut world = scenario.scene.build(&scenario.base_dir).unwrap();
            let model = world.analytic_model().unwrap();
            let r = run_episode(&scenario, world.as_mut(), model, seed, &mut NoObserver).unwrap();
            assert_eq!(r.perturbation.map(|d| d.delay), Some(delay));
            assert_eq!(r.delay_identified, Some(delay), "seed {seed}");
        }
    }

    #[test]
    fn masses_and_frictions_of_the_world_are_scaled() {
        let scenario = Scenario::load("push").unwrap();
        let mut world = scenario.scene.build(&scenario.base_dir).unwrap();
        world.reset(3).unwrap();
        let props = |w: &mut dyn crate::World| -> Vec<(f32, f32)> {
            let p = w.physics_mut().unwrap();
            p.colliders
                .iter()
                .map(|(_, c)| (c.mass(), c.friction()))
                .collect()
        };
        let before = props(world.as_mut());
        let ranges = Ranges {
            mass: 0.5,
            friction: 0.5,
            ..Ranges::default()
        };
        let (draw, _, _) = start(ranges, 3, 2, world.physics_mut());
        let after = props(world.as_mut());
        assert_eq!(draw.colliders, before.len());
        let changed = |i: usize| {
            before
                .iter()
                .zip(&after)
                .filter(|(b, a)| {
                    let (b, a) = ([b.0, b.1][i], [a.0, a.1][i]);
                    b > 0.0 && (a / b - 1.0).abs() > 1e-4 && (a / b - 1.0).abs() <= 0.5 + 1e-4
                })
                .count()
        };
        assert!(changed(0) >= 2, "masses {before:?} -> {after:?}");
        assert!(changed(1) >= 2, "frictions {before:?} -> {after:?}");
    }

    #[test]
    fn a_scenario_names_its_perturbation() {
        let dir = std::path::Path::new(".");
        let text = "[scene]\nkind = \"navigate\"\n[perturb]\nlevel = \"moderate\"\ndelay = 2\n";
        let s = Scenario::from_toml(text, "t", dir).unwrap();
        assert_eq!(s.perturb.level, Level::Moderate);
        assert_eq!(s.perturb.ranges().delay, 2);
        for (bad, expected) in [
            ("level = \"hard\"", "unknown variant `hard`"),
            ("wind = 1.0", "unknown field `wind`"),
            ("actuator = 1.5", "perturb.actuator"),
            ("delay = 1000", "perturb.delay"),
        ] {
            let text = format!("[scene]\nkind = \"navigate\"\n[perturb]\n{bad}\n");
            let e = Scenario::from_toml(&text, "t", dir)
                .unwrap_err()
                .to_string();
            assert!(e.contains(expected), "{bad}: {e}");
        }
    }

    #[test]
    fn observations_of_an_episode_are_noisy() {
        let mut scenario = Scenario::load("navigate").unwrap();
        scenario.perturb = PerturbConfig {
            obs_noise: Some(0.05),
            ..PerturbConfig::default()
        };
        let mut world = scenario.scene.build(&scenario.base_dir).unwrap();
        let control = world.analytic_model().unwrap().spec().clone();
        let mut episode = Episode::start(&scenario, world.as_mut(), 2, &control).unwrap();
        let mut noisy = vec![0.0; episode.obs_dim()];
        episode.observe(world.as_ref(), &mut noisy).unwrap();
        let mut exact = vec![0.0; noisy.len()];
        world.observe(&mut exact);
        let diff: Vec<Real> = noisy.iter().zip(&exact).map(|(a, b)| a - b).collect();
        assert!(
            diff.iter().all(|d| d.abs() > 0.0 && d.abs() < 0.5),
            "{diff:?}"
        );
    }
}
