//! Upper limits on the sizes of runs, episodes and data sets.
//!
//! The planner's own limits are in [`telic::planner`] (`MAX_SAMPLES`,
//! `MAX_HORIZON`, …) and each scene documents the limits of its counts
//! (keep-out boxes, obstacles, attempts) on the setting. All are checked
//! before anything is allocated or any episode runs, with an error naming
//! the key, the value and the limit ([`SimError::Limit`]). The README's
//! "Limits" table lists them.

use crate::SimError;
use telic::{LimitError, Real};

/// Most episodes of one run or collection (`--episodes`).
pub const MAX_EPISODES: usize = 1_000_000;
/// Most episodes run at once (`--jobs`, `CollectConfig::jobs`); each holds
/// a scene and a world model.
pub const MAX_JOBS: usize = 256;
/// Longest episode in simulated seconds (`episode.max_time`): one hour.
pub const MAX_EPISODE_TIME: Real = 3600.0;
/// Most control steps of one episode (`episode.max_time / control_dt`, or
/// `--steps-per-episode` of a collection).
pub const MAX_CONTROL_STEPS: usize = 1_000_000;
/// Most physics steps of one episode (`episode.max_time / physics_dt`).
pub const MAX_PHYSICS_STEPS: usize = 10_000_000;
/// Most physics steps per control period (`episode.physics_steps_per_control`).
pub const MAX_PHYSICS_STEPS_PER_CONTROL: usize = 10_000;
/// Most ONNX Runtime threads per operator (`model_threads`, `--model-threads`).
pub const MAX_MODEL_THREADS: usize = 256;
/// Largest data set a collection holds in memory before writing it, in
/// bytes (4 GiB): episodes × steps × the bytes of one transition.
pub const MAX_DATASET_BYTES: u64 = 4 << 30;

/// [`LimitError::check`] as a [`SimError::Limit`] of `origin` (a file, a
/// scene, the command line).
pub fn check(
    origin: &str,
    key: &str,
    value: impl Into<telic::limits::Amount>,
    max: impl Into<telic::limits::Amount>,
) -> Result<(), SimError> {
    LimitError::check(key, value, max).map_err(|limit| SimError::Limit {
        origin: origin.to_string(),
        limit,
    })
}

/// Largest value of a scene's physical settings (lengths, masses, speeds,
/// gains, gravity, in SI units): rapier computes in `f32`, and far beyond
/// this its contact queries fail (a 9·10¹⁸ m box panicked in parry's EPA).
pub const MAX_SCENE_VALUE: Real = 1e9;

/// Largest width or height of a scene camera's image, in pixels
/// (`camera.width`, `camera.height`): a 1024×1024 RGB frame is 3 MiB.
pub const MAX_CAMERA_SIZE: usize = 1024;

/// Most control ticks of `telic bench`'s tick measurement (`--ticks`;
/// about three hours at 1 kHz), whose latencies are kept in memory.
pub const MAX_BENCH_TICKS: usize = 10_000_000;
/// Most planning calls timed per setting by `telic bench` (`--calls`).
pub const MAX_BENCH_CALLS: usize = 10_000;

/// Checks that an episode of `max_time` seconds with control period
/// `control_dt` and physics step `physics_dt` stays within
/// [`MAX_EPISODE_TIME`], [`MAX_PHYSICS_STEPS_PER_CONTROL`],
/// [`MAX_CONTROL_STEPS`] and [`MAX_PHYSICS_STEPS`] (the control periods
/// started before `max_time`, each run to its end).
/// Values that are not positive and finite are left to the callers'
/// validity checks.
pub(crate) fn check_episode(
    origin: &str,
    max_time: Real,
    control_dt: Real,
    physics_dt: Real,
) -> Result<(), SimError> {
    check(origin, "episode.max_time", max_time, MAX_EPISODE_TIME)?;
    if !(max_time > 0.0 && control_dt > 0.0 && physics_dt > 0.0) {
        return Ok(());
    }
    let per_control = (control_dt / physics_dt).round().max(1.0);
    check(
        origin,
        "scene.control_dt / scene.physics_dt (physics steps per control period)",
        per_control,
        MAX_PHYSICS_STEPS_PER_CONTROL as Real,
    )?;
    let control_steps = (max_time / control_dt).ceil();
    check(
        origin,
        "episode.max_time / scene.control_dt (control steps per episode)",
        control_steps,
        MAX_CONTROL_STEPS as Real,
    )?;
    check(
        origin,
        "episode.max_time / scene.physics_dt (physics steps per episode)",
        control_steps * per_control,
        MAX_PHYSICS_STEPS as Real,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn too_many_jobs_are_an_error_naming_the_key() {
        assert!(check("command line", "--jobs", MAX_JOBS, MAX_JOBS).is_ok());
        let many = check("command line", "--jobs", 3000usize, MAX_JOBS)
            .unwrap_err()
            .to_string();
        assert_eq!(
            many,
            "command line: --jobs = 3000 is above its limit of 256"
        );
    }

    #[test]
    fn long_episodes_are_errors_naming_the_product() {
        assert!(check_episode("t", 10.0, 0.05, 0.005).is_ok());
        let e = check_episode("t", 1e12, 0.05, 0.005)
            .unwrap_err()
            .to_string();
        assert!(e.contains("episode.max_time = 1e12"), "{e}");
        let e = check_episode("t", 3000.0, 0.05, 1e-5)
            .unwrap_err()
            .to_string();
        assert!(e.contains("physics steps per episode"), "{e}");
    }
}
