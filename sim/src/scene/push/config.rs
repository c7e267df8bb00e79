//! Settings of the `push` scene.

use crate::SimError;
use serde::{Deserialize, Serialize};
use std::f64::consts::FRAC_PI_4;
use telic::Real;
use telic::limits::num;
use telic::model::PusherParams;

/// Most keep-out regions of the `push` scene ([`PushConfig::keepouts`]).
pub const MAX_KEEPOUTS: usize = 32;
/// Most layouts drawn per episode ([`PushConfig::max_attempts`]).
pub const MAX_ATTEMPTS: usize = 100_000;

/// Settings of the `push` scene. Every field has a default (shown in its doc).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PushConfig {
    /// Control period in seconds, the analytic model's time step (default 0.1).
    pub control_dt: Real,
    /// Physics time step in seconds; must divide `control_dt` (default 0.01).
    pub physics_dt: Real,
    /// Table extent along x in metres; the table is centred at the origin and
    /// its top is z = 0 (default 1.2).
    pub table_length: Real,
    /// Table extent along y in metres (default 0.8).
    pub table_width: Real,
    /// Box-to-table friction coefficient (default 0.4).
    pub table_friction: Real,
    /// Half side lengths of the box in metres, x, y, z (default [0.05, 0.05, 0.05]).
    pub box_half_extents: [Real; 3],
    /// Box mass in kg (default 0.5).
    pub box_mass: Real,
    /// Pusher radius in metres (default 0.03).
    pub pusher_radius: Real,
    /// Pusher mass in kg; heavier than the box, so that contacts barely slow
    /// it (default 5).
    pub pusher_mass: Real,
    /// Pusher-to-box friction coefficient (default 0.3).
    pub pusher_friction: Real,
    /// Bound of each velocity command `vx`, `vy` in m/s (default 0.3).
    pub max_speed: Real,
    /// Time constant of the velocity setpoints' first-order lag in seconds (default 0.1).
    pub tau: Real,
    /// Acceleration limit of the pusher's drive in m/s², 0 for none (default 10).
    pub max_accel: Real,
    /// Smallest distance of the box's start and goal centres from the table's
    /// edges, so the pusher can get round the box there (default 0.17).
    pub edge_inset: Real,
    /// Range of start-to-goal distances of the box in metres (default [0.15, 0.3]).
    pub goal_distance: [Real; 2],
    /// Largest change of the box's yaw from start to goal in radians (default π/4).
    pub max_yaw_change: Real,
    /// Smallest free gap between pusher and box at the start in metres (default 0.05).
    pub start_gap: Real,
    /// Number of keep-out regions the pusher must avoid (default 1; at most
    /// [`MAX_KEEPOUTS`]).
    pub keepouts: usize,
    /// Range of the keep-out regions' half side lengths in metres (default [0.03, 0.07]).
    pub keepout_half_extents: [Real; 2],
    /// Safety buffer the planner keeps from keep-out regions (`margin` of the
    /// keep-out guardrails) in metres (default 0.01).
    pub keepout_margin: Real,
    /// Free space left, beyond what the pusher strictly needs, between a
    /// keep-out region and the straight push from start to goal, the pusher's
    /// start, the table's edges and other regions, in metres (default 0.02).
    pub keepout_slack: Real,
    /// Range of the extra distance of a keep-out region from the straight push,
    /// in metres; small values put it right beside the way (default [0, 0.1]).
    pub keepout_offset: [Real; 2],
    /// The task succeeds when the box's centre is this close to the goal, in metres (default 0.03).
    pub success_distance: Real,
    /// … and its yaw is this close to the goal yaw, in radians (default 15° = 0.2618).
    pub success_yaw: Real,
    /// Layouts drawn per episode before giving up (default 200; at most
    /// [`MAX_ATTEMPTS`]).
    pub max_attempts: usize,
    /// Pusher-to-box friction coefficient the analytic model assumes. Pushes
    /// in rapier stick more than Coulomb friction with `pusher_friction`
    /// predicts (the load shifts to the box's leading edge when pushed at
    /// mid-height); 0.8 fits ten 1 s test pushes best (default 0.8).
    pub model_friction: Real,
    /// Limit-surface length the analytic model assumes, as a fraction of the
    /// box's half diagonal (rapier's box rests on its four corners, 1; 0.85
    /// fits the same test pushes best; default 0.85).
    pub model_limit_surface: Real,
}

impl Default for PushConfig {
    fn default() -> Self {
        Self {
            control_dt: 0.1,
            physics_dt: 0.01,
            table_length: 1.2,
            table_width: 0.8,
            table_friction: 0.4,
            box_half_extents: [0.05, 0.05, 0.05],
            box_mass: 0.5,
            pusher_radius: 0.03,
            pusher_mass: 5.0,
            pusher_friction: 0.3,
            max_speed: 0.3,
            tau: 0.1,
            max_accel: 10.0,
            edge_inset: 0.17,
            goal_distance: [0.15, 0.3],
            max_yaw_change: FRAC_PI_4,
            start_gap: 0.05,
            keepouts: 1,
            keepout_half_extents: [0.03, 0.07],
            keepout_margin: 0.01,
            keepout_slack: 0.02,
            keepout_offset: [0.0, 0.1],
            success_distance: 0.03,
            success_yaw: 15.0_f64.to_radians(),
            max_attempts: 200,
            model_friction: 0.8,
            model_limit_surface: 0.85,
        }
    }
}

impl PushConfig {
    /// Checks every value; the message names the offending field.
    pub fn validate(&self) -> Result<(), SimError> {
        crate::scene::check_counts(
            "push",
            &[
                ("keepouts", self.keepouts, MAX_KEEPOUTS),
                ("max_attempts", self.max_attempts, MAX_ATTEMPTS),
            ],
        )?;
        let bad = |message: String| {
            Err(SimError::Scene {
                scene: "push".into(),
                message,
            })
        };
        let [bx, by, bz] = self.box_half_extents;
        let positive = [
            ("control_dt", self.control_dt),
            ("physics_dt", self.physics_dt),
            ("table_length", self.table_length),
            ("table_width", self.table_width),
            ("box_half_extents[0]", bx),
            ("box_half_extents[1]", by),
            ("box_half_extents[2]", bz),
            ("box_mass", self.box_mass),
            ("pusher_radius", self.pusher_radius),
            ("pusher_mass", self.pusher_mass),
            ("max_speed", self.max_speed),
            ("success_distance", self.success_distance),
            ("success_yaw", self.success_yaw),
            ("model_limit_surface", self.model_limit_surface),
        ];
        let non_negative = [
            ("table_friction", self.table_friction),
            ("pusher_friction", self.pusher_friction),
            ("tau", self.tau),
            ("max_accel", self.max_accel),
            ("edge_inset", self.edge_inset),
            ("max_yaw_change", self.max_yaw_change),
            ("start_gap", self.start_gap),
            ("keepout_margin", self.keepout_margin),
            ("keepout_slack", self.keepout_slack),
            ("model_friction", self.model_friction),
        ];
        crate::scene::check_settings("push", &positive, &non_negative)?;
        for (name, [lo, hi], min) in [
            ("goal_distance", self.goal_distance, 0.0),
            ("keepout_half_extents", self.keepout_half_extents, 1e-6),
            ("keepout_offset", self.keepout_offset, 0.0),
        ] {
            if !(lo.is_finite() && hi.is_finite() && min <= lo && lo <= hi) {
                return bad(format!(
                    "{name} must be a range {} <= lo <= hi, got [{}, {}]",
                    num(min),
                    num(lo),
                    num(hi)
                ));
            }
        }
        if self.max_attempts == 0 {
            return bad("max_attempts must be positive".into());
        }
        crate::scene::check_control_period("push", self.control_dt, self.physics_dt)?;
        // The box must fit between the insets, and the pusher beside it.
        let room = self.edge_inset - self.box_half_diagonal() - 2.0 * self.pusher_radius;
        if room < 0.0 {
            return bad(format!(
                "edge_inset ({}) leaves the pusher no room between box and table edge",
                num(self.edge_inset)
            ));
        }
        if 2.0 * self.edge_inset >= self.table_length.min(self.table_width) {
            return bad(format!(
                "edge_inset ({}) leaves no room on the table",
                num(self.edge_inset)
            ));
        }
        Ok(())
    }

    /// Physics steps per control period.
    #[must_use]
    pub fn physics_steps_per_control(&self) -> usize {
        crate::scene::steps_per_control(self.control_dt, self.physics_dt)
    }

    /// Half diagonal of the box's footprint: the radius of the disc around it.
    #[must_use]
    pub fn box_half_diagonal(&self) -> Real {
        self.box_half_extents[0].hypot(self.box_half_extents[1])
    }

    /// Settings of the analytic model matching this scene: geometry and
    /// actuation copied, contact calibrated (`model_friction`, `model_limit_surface`).
    #[must_use]
    pub fn model_params(&self) -> PusherParams {
        PusherParams {
            dt: self.control_dt,
            max_speed: self.max_speed,
            tau: self.tau,
            pusher_radius: self.pusher_radius,
            box_half_extents: [self.box_half_extents[0], self.box_half_extents[1]],
            pusher_friction: self.model_friction,
            limit_surface_length: self.model_limit_surface * self.box_half_diagonal(),
            ..PusherParams::default()
        }
    }
}
