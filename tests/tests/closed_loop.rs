//! Closed loop in rapier: the shipped scenarios reach their goals without
//! breaking a guardrail in the true physics state, and runs are reproducible.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may unwrap

use telic_sim::episode::{EpisodeResult, Summary, run_batch};
use telic_sim::scenario::Scenario;

fn run(scene: &str, episodes: usize, seed: u64) -> Vec<EpisodeResult> {
    let scenario = Scenario::load(scene).unwrap();
    run_batch(&scenario, episodes, seed, 2, &|_| {}).unwrap()
}

fn check_scene(scene: &str) {
    let results = run(scene, 6, 7);
    let s = Summary::of(&results);
    assert_eq!(
        s.violation_steps,
        0,
        "{scene}: true guardrail violations: {:?}",
        results.iter().map(|r| &r.violated).collect::<Vec<_>>()
    );
    assert!(
        s.successes >= 5,
        "{scene}: only {}/6 episodes succeeded",
        s.successes
    );
}

#[test]
fn reach_succeeds_without_violations() {
    check_scene("reach");
}

#[test]
fn navigate_succeeds_without_violations() {
    check_scene("navigate");
}

#[test]
fn push_succeeds_without_violations() {
    check_scene("push");
}

/// Everything but wall-clock latency must be bit-identical.
fn strip(mut r: Vec<EpisodeResult>) -> Vec<EpisodeResult> {
    for e in &mut r {
        e.plan_latency_ms.clear();
    }
    r
}

#[test]
fn same_seed_gives_identical_episodes() {
    for scene in ["reach", "navigate"] {
        let a = strip(run(scene, 2, 11));
        let b = strip(run(scene, 2, 11));
        assert_eq!(a, b, "{scene}: same seed, different results");
        let c = strip(run(scene, 2, 12));
        assert_ne!(a, c, "{scene}: different seeds gave identical results");
    }
}
