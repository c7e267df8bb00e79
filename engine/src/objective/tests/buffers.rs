//! Safety buffers and model-error margins that make a guardrail unsatisfiable.

use super::*;

/// A speed guardrail (max 1), a band of half-width 0.5 and a workspace of
/// half-width 2 around a body of radius 0.1, for the 2D point mass.
fn bands() -> Objective {
    let spec: ObjectiveSpec = toml::from_str(
        r#"bodies = [{ name = "p", points = ["pos"], radius = 0.1 }]
           [[guardrails]]
           kind = "speed"
           name = "slow"
           margin = 0.2
           readouts = ["vel.x", "vel.y"]
           max = 1.0
           [[guardrails]]
           kind = "readout_limit"
           name = "lane"
           readouts = ["pos.y", "pos.x"]
           lower = [-0.5, -10.0]
           upper = [0.5, 10.0]
           [[guardrails]]
           kind = "workspace"
           name = "room"
           lower = [-2.0, -2.0, -1.0]
           upper = [2.0, 2.0, 1.0]
           [[guardrails]]
           kind = "keep_out"
           name = "pillar"
           margin = 5.0
           shape = { type = "sphere", center = [0.0, 0.0, 0.0], radius = 0.3 }"#,
    )
    .unwrap();
    spec.compile(&pm(2)).unwrap()
}

#[test]
fn guardrails_that_model_error_makes_unsatisfiable_are_named_with_their_step() {
    let mut obj = bands();
    // Buffers alone leave every guardrail satisfiable.
    assert_eq!(obj.unsatisfiable_guardrails(10), []);
    // Readouts pos.x, pos.y, vel.x, vel.y, speed: errors growing by step.
    let errors = vec![
        vec![0.1, 0.2, 0.4, 1.0],
        vec![0.1, 0.3, 0.5, 0.6],
        vec![0.3, 0.4, 0.5, 0.6],
        vec![0.4, 0.4, 0.4, 0.4],
        vec![],
    ];
    obj.set_readout_errors(&errors).unwrap();
    let found = obj.unsatisfiable_guardrails(10);
    let names: Vec<(&str, usize)> = found
        .iter()
        .map(|u| (u.guardrail.as_str(), u.step))
        .collect();
    // slow requires 0.2 + |(e_vel.x, e_vel.y)|: 0.7, 0.77, 0.84, 0.92 < 1,
    // never. lane requires max(e_pos.y, e_pos.x): 0.5 at step 3 (0-based
    // 2) ≥ its half-band 0.5. room: the point sits at z = 0, 0.9 from its
    // floor and ceiling less the radius, and |(e_pos.x, e_pos.y)| reaches
    // |(1.0, 0.6)| ≈ 1.17 at step 4. A keep-out is never bounded.
    assert_eq!(names, [("lane", 2), ("room", 3)], "{found:?}");
    let lane = &found[0];
    assert!(close(lane.required, 0.5, 1e-12) && close(lane.capacity, 0.5, 1e-12));
    let text = lane.to_string();
    assert!(text.contains("'lane'") && text.contains("step 3"), "{text}");
    // Beyond the table the last step's error holds; a horizon that ends
    // before step 3 never meets it.
    assert_eq!(obj.unsatisfiable_guardrails(2), []);
    // Larger velocity errors switch the speed guardrail off from step 1.
    let mut errors = errors;
    errors[2] = vec![0.9, 0.9, 0.9, 0.9];
    obj.set_readout_errors(&errors).unwrap();
    let found = obj.unsatisfiable_guardrails(10);
    let slow = found.iter().find(|u| u.guardrail == "slow").unwrap();
    assert_eq!(slow.step, 0);
    assert!(close(slow.capacity, 1.0, 1e-12), "{slow:?}");
}
