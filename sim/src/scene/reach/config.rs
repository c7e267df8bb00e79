//! Settings of the `reach` scene and their checks.

use crate::SimError;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use telic::Real;
use telic::limits::num;

/// Most keep-out boxes per episode ([`ReachConfig::keep_out_boxes`]).
pub const MAX_KEEP_OUT_BOXES: usize = 32;
/// Most Gauss–Seidel passes per solver iteration ([`ReachConfig::pgs_iterations`]).
pub const MAX_PGS_ITERATIONS: usize = 100;

/// Settings of the `reach` scene. Every field has a default (shown in its doc).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReachConfig {
    /// The arm's URDF, relative to the scenario's folder (default: the shipped
    /// 3-joint arm, `assets/arm3.urdf` of this crate).
    pub urdf: Option<PathBuf>,
    /// The link whose frame must reach the target (default `"tool"`).
    pub tip_link: String,
    /// Control period and time step of the analytic model, in seconds (default 0.05).
    pub control_dt: Real,
    /// Physics time step in seconds; `control_dt` must be a whole multiple of
    /// it (default 0.005).
    pub physics_dt: Real,
    /// Bound on every joint velocity command in rad/s, on top of the URDF
    /// velocity limits (default 1.2).
    pub max_joint_speed: Option<Real>,
    /// Time constant of the analytic model's joint velocity response, in
    /// seconds (default 0: the stiff motors reach a command within a physics step).
    pub model_tau: Real,
    /// Damping gain of the joint velocity motors; larger tracks commands more
    /// stiffly (default 1e6).
    pub motor_gain: Real,
    /// Gauss–Seidel passes per solver iteration (rapier's
    /// `num_internal_pgs_iterations`); the coupled joint motors need a few to
    /// hold their commands against gravity (default 4; at most
    /// [`MAX_PGS_ITERATIONS`]).
    pub pgs_iterations: usize,
    /// Gravity along −z in m/s² (default 9.81).
    pub gravity: Real,
    /// Largest number of keep-out boxes per episode; each episode draws
    /// between 1 and this many (default 2; 0 disables them; at most
    /// [`MAX_KEEP_OUT_BOXES`]).
    pub keep_out_boxes: usize,
    /// Safety buffer of the keep-out guardrails the planner keeps, in metres (default 0.02).
    pub keep_out_margin: Real,
    /// Range of the boxes' half side lengths in metres (default [0.04, 0.09]).
    pub box_half_extent: [Real; 2],
    /// Give boxes a random yaw instead of keeping them axis-aligned (default true).
    pub yawed_boxes: bool,
    /// Radius of a capsule around every link segment of the arm used when placing
    /// boxes, a bound on the arm's own bodies (default 0.05).
    pub arm_radius: Real,
    /// Smallest gap between the arm (capsules of `arm_radius`) and any box at the
    /// start and at the target configuration, in metres (default 0.08).
    pub clearance: Real,
    /// Smallest gap kept from the boxes and the floor along the witness path
    /// that proves an episode solvable, in metres (default 0.04).
    pub path_clearance: Real,
    /// The witness path goes straight in joint space from the start to the
    /// target, or through one configuration within this many radians of their
    /// midpoint on every joint: episodes need at most such a detour (default 0.8).
    pub detour: Real,
    /// Sampled configurations keep this far (radians) inside the joint limits (default 0.3).
    pub limit_inset: Real,
    /// Ranges `[lo, hi]` (radians) the start and target configurations are drawn
    /// from, one per movable joint, intersected with the inset joint limits
    /// (default empty: the inset joint limits). Any other number of ranges
    /// than the arm's movable joints is an error.
    pub sample_ranges: Vec<[Real; 2]>,
    /// Largest change of any joint between the start and the target
    /// configuration, in radians (default 1.6). With a base yaw joint, a larger
    /// turn makes reaching back over the top look shorter to a planner than
    /// turning, a local minimum at the shoulder limit.
    pub max_joint_travel: Real,
    /// Lowest height of every moving link frame in sampled configurations, in
    /// metres (default 0.12).
    pub min_height: Real,
    /// Highest tool position in sampled configurations, in metres (default
    /// 0.6). High targets tempt a planner to reach back over the top of the
    /// arm, a local minimum at the shoulder limit.
    pub max_height: Real,
    /// Smallest horizontal distance of the tool from the base axis in sampled
    /// configurations, in metres (default 0.25).
    pub min_radius: Real,
    /// Smallest distance between the start tool position and the target, in metres (default 0.3).
    pub min_goal_distance: Real,
    /// Success: the tool is within this distance of the target, in metres (default 0.02).
    pub success_radius: Real,
}

impl Default for ReachConfig {
    fn default() -> Self {
        Self {
            urdf: None,
            tip_link: "tool".into(),
            control_dt: 0.05,
            physics_dt: 0.005,
            max_joint_speed: Some(1.2),
            model_tau: 0.0,
            motor_gain: 1.0e6,
            pgs_iterations: 4,
            gravity: 9.81,
            keep_out_boxes: 2,
            keep_out_margin: 0.02,
            box_half_extent: [0.04, 0.09],
            yawed_boxes: true,
            arm_radius: 0.05,
            clearance: 0.08,
            path_clearance: 0.04,
            detour: 0.8,
            limit_inset: 0.3,
            sample_ranges: Vec::new(),
            max_joint_travel: 1.6,
            min_height: 0.12,
            max_height: 0.6,
            min_radius: 0.25,
            min_goal_distance: 0.3,
            success_radius: 0.02,
        }
    }
}

impl ReachConfig {
    /// The URDF path, resolved against `base_dir`.
    #[must_use]
    pub fn urdf_path(&self, base_dir: &Path) -> PathBuf {
        match &self.urdf {
            Some(p) if p.is_absolute() => p.clone(),
            Some(p) => base_dir.join(p),
            None => crate::scenario::sim_dir().join("assets/arm3.urdf"),
        }
    }

    /// Checks the counts against their limits ([`MAX_KEEP_OUT_BOXES`],
    /// [`MAX_PGS_ITERATIONS`]) and the physical settings against
    /// [`MAX_SCENE_VALUE`](crate::limits::MAX_SCENE_VALUE);
    /// [`ReachConfig::validate`] does too.
    pub fn check_limits(&self) -> Result<(), SimError> {
        let origin = "scene 'reach'";
        let [lo, hi] = self.box_half_extent;
        let values = [
            ("control_dt", self.control_dt),
            ("physics_dt", self.physics_dt),
            ("max_joint_speed", self.max_joint_speed.unwrap_or(0.0)),
            ("model_tau", self.model_tau),
            ("motor_gain", self.motor_gain),
            ("gravity", self.gravity),
            ("keep_out_margin", self.keep_out_margin),
            ("box_half_extent[0]", lo),
            ("box_half_extent[1]", hi),
            ("arm_radius", self.arm_radius),
            ("clearance", self.clearance),
            ("path_clearance", self.path_clearance),
            ("detour", self.detour),
            ("limit_inset", self.limit_inset),
            ("max_joint_travel", self.max_joint_travel),
            ("min_height", self.min_height),
            ("max_height", self.max_height),
            ("min_radius", self.min_radius),
            ("min_goal_distance", self.min_goal_distance),
            ("success_radius", self.success_radius),
        ];
        crate::scene::check_magnitudes("reach", &values)?;
        crate::limits::check(
            origin,
            "scene.keep_out_boxes",
            self.keep_out_boxes,
            MAX_KEEP_OUT_BOXES,
        )?;
        crate::limits::check(
            origin,
            "scene.pgs_iterations",
            self.pgs_iterations,
            MAX_PGS_ITERATIONS,
        )
    }

    /// Checks every value; the message names the offending field.
    pub fn validate(&self) -> Result<(), String> {
        self.check_limits().map_err(|e| e.to_string())?;
        let positive = |name: &str, v: Real| {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(format!("scene.{name} must be positive, got {}", num(v)))
            }
        };
        let non_negative = |name: &str, v: Real| {
            if v.is_finite() && v >= 0.0 {
                Ok(())
            } else {
                Err(format!("scene.{name} must be >= 0, got {}", num(v)))
            }
        };
        positive("control_dt", self.control_dt)?;
        positive("physics_dt", self.physics_dt)?;
        let ratio = self.control_dt / self.physics_dt;
        if !(ratio.is_finite() && ratio >= 0.5) || (ratio - ratio.round()).abs() > 1e-6 * ratio {
            return Err(format!(
                "scene.control_dt ({}) must be a whole multiple of scene.physics_dt ({})",
                num(self.control_dt),
                num(self.physics_dt)
            ));
        }
        if let Some(s) = self.max_joint_speed {
            positive("max_joint_speed", s)?;
        }
        non_negative("model_tau", self.model_tau)?;
        positive("motor_gain", self.motor_gain)?;
        if self.pgs_iterations == 0 {
            return Err("scene.pgs_iterations must be positive, got 0".into());
        }
        non_negative("gravity", self.gravity)?;
        non_negative("keep_out_margin", self.keep_out_margin)?;
        let [lo, hi] = self.box_half_extent;
        positive("box_half_extent[0]", lo)?;
        if !(hi.is_finite() && hi >= lo) {
            return Err(format!(
                "scene.box_half_extent must be [min, max] with min <= max, got [{}, {}]",
                num(lo),
                num(hi)
            ));
        }
        non_negative("arm_radius", self.arm_radius)?;
        non_negative("clearance", self.clearance)?;
        non_negative("path_clearance", self.path_clearance)?;
        non_negative("detour", self.detour)?;
        non_negative("limit_inset", self.limit_inset)?;
        if let Some([lo, hi]) = self
            .sample_ranges
            .iter()
            .find(|[lo, hi]| !(lo.is_finite() && hi.is_finite() && lo <= hi))
        {
            return Err(format!(
                "scene.sample_ranges: [{}, {}] is not a range with lo <= hi",
                num(*lo),
                num(*hi)
            ));
        }
        positive("max_joint_travel", self.max_joint_travel)?;
        if !self.min_height.is_finite() {
            return Err(format!(
                "scene.min_height must be finite, got {}",
                num(self.min_height)
            ));
        }
        if !(self.max_height.is_finite() && self.max_height > self.min_height) {
            return Err(format!(
                "scene.max_height must exceed scene.min_height, got {}",
                num(self.max_height)
            ));
        }
        non_negative("min_radius", self.min_radius)?;
        non_negative("min_goal_distance", self.min_goal_distance)?;
        positive("success_radius", self.success_radius)?;
        Ok(())
    }
}
