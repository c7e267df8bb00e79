//! Issue 15, "one bar that slipped": with the shipped learned model, reach
//! fell to 88/100 on seed 1. Three of its failures, each as it ended on
//! 311fd4f: the arm parked 2.9 cm, 3.2 cm and 4.1 cm from its target (the
//! success radius is 2 cm) because every sample of the planner's noise
//! strayed further than standing still, and because the bundle's error
//! margins two seconds out left barely a feasible plan beside a box. The
//! full figures (100 episodes on seeds 1, 2 and 5) are in models/README.md.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may unwrap

use telic_sim::episode::{NoObserver, episode_seed, run_episode};
use telic_sim::scenario::{ModelChoice, Scenario};

#[test]
fn learned_reach_no_longer_parks_short_of_its_target() {
    let mut scenario = Scenario::load("reach").unwrap();
    let bundle = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/reach");
    scenario.model = ModelChoice::Bundle(bundle);
    let mut scene = scenario.scene.build(&scenario.base_dir).unwrap();
    // Episodes 16, 25 and 26 of `telic run reach --seed 1`.
    for index in [16, 25, 26] {
        let seed = episode_seed(1, index);
        let model = scenario.build_model(scene.as_ref()).unwrap();
        let r = run_episode(&scenario, scene.as_mut(), model, seed, &mut NoObserver).unwrap();
        assert_eq!(r.violation_steps, 0, "episode {index}: {:?}", r.violated);
        assert!(
            r.success,
            "episode {index} (seed {seed}) ended {:?} from its target",
            r.final_error
        );
    }
}
