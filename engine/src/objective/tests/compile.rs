//! Compiling specs: errors that name the problem, duplicate names, unknown
//! keys, and specs that round-trip through TOML.

use super::*;

#[test]
fn compile_errors_name_the_problem() {
    let model = pm(2);
    let compile = |toml: &str| {
        let spec: ObjectiveSpec = toml::from_str(toml).unwrap();
        spec.compile(&model).unwrap_err().to_string()
    };
    let err = compile(
        r#"[[terms]]
           name = "goal"
           residual = { kind = "readout", readouts = ["pos.x", "gripper.x"] }"#,
    );
    assert!(
        err.contains("goal") && err.contains("'gripper.x'") && err.contains("point_mass"),
        "{err}"
    );
    let err = compile(
        r#"[[terms]]
           name = "goal"
           residual = { kind = "readout", readouts = ["pos.x"], target = [1.0, 2.0] }"#,
    );
    assert!(
        err.contains("goal") && err.contains("target has 2 values"),
        "{err}"
    );
    let err = compile(
        r#"[[terms]]
           name = "effort"
           residual = { kind = "action", target = [1.0] }"#,
    );
    assert!(
        err.contains("effort") && err.contains("target has 1 values"),
        "{err}"
    );
    let err = compile(
        r#"[[terms]]
           name = "goal"
           weight = -1.0
           residual = { kind = "action" }"#,
    );
    assert!(err.contains("goal") && err.contains("weight"), "{err}");
    let err = compile(
        r#"[[terms]]
           name = "goal"
           norm = { kind = "huber", delta = 0.0 }
           residual = { kind = "action" }"#,
    );
    assert!(err.contains("goal") && err.contains("delta"), "{err}");
    let err = compile(
        r#"[[guardrails]]
           kind = "keep_out"
           name = "table"
           shape = { type = "sphere", center = [0.0, 0.0, 0.0], radius = 1.0 }"#,
    );
    assert!(err.contains("table") && err.contains("bodies"), "{err}");
    let err = compile(
        r#"bodies = [{ name = "p", points = ["pos"], radius = 0.1 }]
           [[guardrails]]
           kind = "keep_out"
           name = "table"
           bodies = ["hand"]
           shape = { type = "sphere", center = [0.0, 0.0, 0.0], radius = 1.0 }"#,
    );
    assert!(err.contains("table") && err.contains("'hand'"), "{err}");
    let err = compile(r#"bodies = [{ name = "hand", points = ["wrist"], radius = 0.1 }]"#);
    assert!(err.contains("hand") && err.contains("'wrist.x'"), "{err}");
    let err = compile(
        r#"bodies = [{ name = "p", points = ["pos"], radius = 0.1 }]
           [[guardrails]]
           kind = "keep_out"
           name = "table"
           shape = { type = "sphere", center = [0.0, 0.0, 0.0], radius = -1.0 }"#,
    );
    assert!(err.contains("table") && err.contains("radius"), "{err}");
    let err = compile(
        r#"[[guardrails]]
           kind = "joint_position"
           name = "limits"
           readouts = ["elbow"]
           lower = [0.0]
           upper = [1.0]"#,
    );
    assert!(err.contains("limits") && err.contains("'elbow'"), "{err}");
    let err = compile(
        r#"[[guardrails]]
           kind = "joint_velocity"
           name = "limits"
           readouts = ["vel.x", "vel.y"]
           lower = [0.0]
           upper = [1.0, 1.0]"#,
    );
    assert!(
        err.contains("limits") && err.contains("2 readouts but 1 lower"),
        "{err}"
    );
    let err = compile(
        r#"[[guardrails]]
           kind = "readout_limit"
           name = "limits"
           readouts = ["vel.x"]
           lower = [1.0]
           upper = [0.0]"#,
    );
    assert!(
        err.contains("limits") && err.contains("lower limit exceeds"),
        "{err}"
    );
    let err = compile(
        r#"[[guardrails]]
           kind = "speed"
           name = "fast"
           readouts = ["vel.w"]
           max = 1.0"#,
    );
    assert!(err.contains("fast") && err.contains("'vel.w'"), "{err}");
    let err = compile(
        r#"[[guardrails]]
           kind = "speed"
           name = "fast"
           margin = -0.1
           readouts = ["speed"]
           max = 1.0"#,
    );
    assert!(err.contains("fast") && err.contains("margin"), "{err}");
    let err = compile(
        r#"bodies = [{ name = "p", points = ["pos"], radius = 0.1 }]
           [[guardrails]]
           kind = "workspace"
           name = "cell"
           lower = [0.0, 0.0, 0.0]
           upper = [1.0, 1.0, 0.0]"#,
    );
    assert!(
        err.contains("cell") && err.contains("lower must be < upper"),
        "{err}"
    );
}

#[test]
fn unknown_toml_keys_are_named() {
    let parse = |s: &str| toml::from_str::<ObjectiveSpec>(s).unwrap_err().to_string();
    let err = parse("gaurdrails = []");
    assert!(err.contains("gaurdrails"), "{err}");
    let err = parse(
        r#"[[terms]]
           name = "goal"
           wieght = 2.0
           residual = { kind = "action" }"#,
    );
    assert!(err.contains("wieght"), "{err}");
    let err = parse(
        r#"[[terms]]
           name = "goal"
           residual = { kind = "readout", readouts = ["pos.x"], targte = [1.0] }"#,
    );
    assert!(err.contains("targte"), "{err}");
    let err = parse(
        r#"[[terms]]
           name = "goal"
           norm = { kind = "huber", delta = 1.0, epsilon = 2.0 }
           residual = { kind = "action" }"#,
    );
    assert!(err.contains("epsilon"), "{err}");
    let err = parse(
        r#"[[guardrails]]
           kind = "keep_out"
           name = "table"
           buffer = 0.1
           shape = { type = "sphere", center = [0.0, 0.0, 0.0], radius = 1.0 }"#,
    );
    assert!(err.contains("buffer"), "{err}");
    let err = parse(
        r#"[[guardrails]]
           kind = "keep_out"
           name = "table"
           shape = { type = "sphere", center = [0.0, 0.0, 0.0], radius = 1.0, height = 2.0 }"#,
    );
    assert!(err.contains("height"), "{err}");
    let err = parse(
        r#"[[guardrails]]
           kind = "joint_position"
           name = "limits"
           readouts = ["pos.x"]
           lower = [0.0]
           upper = [1.0]
           hard = true"#,
    );
    assert!(err.contains("hard"), "{err}");
    let err = parse(r#"bodies = [{ name = "p", points = ["pos"], radius = 0.1, mass = 1.0 }]"#);
    assert!(err.contains("mass"), "{err}");
    let err = parse(
        r#"[[guardrails]]
           kind = "keep_away"
           name = "table""#,
    );
    assert!(err.contains("keep_away"), "{err}");
}

#[test]
fn specs_round_trip_through_toml() {
    let spec = all_guardrails();
    let text = toml::to_string(&spec).unwrap();
    let back: ObjectiveSpec = toml::from_str(&text).unwrap();
    assert_eq!(spec, back);
    let mut with_terms = five_terms();
    with_terms.guardrails = spec.guardrails;
    with_terms.bodies = spec.bodies;
    let text = toml::to_string(&with_terms).unwrap();
    let back: ObjectiveSpec = toml::from_str(&text).unwrap();
    assert_eq!(with_terms, back);
    // Defaults: quadratic, weight 1, running.
    let t: ObjectiveSpec = toml::from_str(
        r#"[[terms]]
           name = "goal"
           residual = { kind = "action" }"#,
    )
    .unwrap();
    assert_eq!(t.terms[0].norm, Norm::Quadratic);
    assert_eq!(t.terms[0].weight, 1.0);
    assert_eq!(t.terms[0].phase, Phase::Running);
}

#[test]
fn duplicate_names_are_refused_naming_the_name_and_the_list() {
    let model = pm(2);
    let compile = |toml: &str| {
        let spec: ObjectiveSpec = toml::from_str(toml).unwrap();
        spec.compile(&model).map(|_| ()).map_err(|e| e.to_string())
    };
    // Two `goal` terms: `set_target("goal")` would only ever reach the first.
    let err = compile(
        r#"[[terms]]
           name = "goal"
           residual = { kind = "readout", readouts = ["pos.x"] }
           [[terms]]
           name = "effort"
           residual = { kind = "action" }
           [[terms]]
           name = "goal"
           residual = { kind = "readout", readouts = ["pos.y"] }"#,
    )
    .unwrap_err();
    assert!(
        err.contains("'goal'") && err.contains("terms") && err.contains("unique"),
        "{err}"
    );
    let err = compile(
        r#"[[guardrails]]
           kind = "speed"
           name = "slow"
           readouts = ["vel.x"]
           max = 1.0
           [[guardrails]]
           kind = "readout_limit"
           name = "slow"
           readouts = ["pos.x"]
           lower = [-1.0]
           upper = [1.0]"#,
    )
    .unwrap_err();
    assert!(
        err.contains("'slow'") && err.contains("guardrails"),
        "{err}"
    );
    let err = compile(
        r#"bodies = [
               { name = "p", points = ["pos"], radius = 0.1 },
               { name = "p", points = ["vel"], radius = 0.2 },
           ]"#,
    )
    .unwrap_err();
    assert!(err.contains("'p'") && err.contains("bodies"), "{err}");
    // The same name in two lists is fine.
    compile(
        r#"bodies = [{ name = "p", points = ["pos"], radius = 0.1 }]
           [[terms]]
           name = "p"
           residual = { kind = "action" }
           [[guardrails]]
           kind = "speed"
           name = "p"
           readouts = ["vel.x", "vel.y"]
           max = 1.0"#,
    )
    .unwrap();
}

#[test]
fn guardrails_over_no_readouts_are_refused() {
    let model = pm(2);
    let compile = |toml: &str| {
        let spec: ObjectiveSpec = toml::from_str(toml).unwrap();
        spec.compile(&model).map(|_| ()).map_err(|e| e.to_string())
    };
    let err = compile(
        r#"[[guardrails]]
           kind = "speed"
           name = "slow"
           readouts = []
           max = 1.0"#,
    )
    .unwrap_err();
    assert!(
        err.contains("'slow'") && err.contains("readouts is empty"),
        "{err}"
    );
    for kind in ["readout_limit", "joint_position", "joint_velocity"] {
        let err = compile(&format!(
            r#"[[guardrails]]
               kind = "{kind}"
               name = "box"
               readouts = []
               lower = []
               upper = []"#
        ))
        .unwrap_err();
        assert!(
            err.contains("'box'") && err.contains("readouts is empty"),
            "{kind}: {err}"
        );
    }
}

#[test]
fn a_norm_can_be_named_alone() {
    let spec: ObjectiveSpec = toml::from_str(
        r#"[[terms]]
           name = "goal"
           norm = "l2"
           residual = { kind = "readout", readouts = ["pos.x", "pos.y"], target = [3.0, 4.0] }"#,
    )
    .unwrap();
    assert_eq!(spec.terms[0].norm, Norm::L2 { eps: 0.0 });
    let obj = spec.compile(&pm(2)).unwrap();
    let mut s = obj.scratch();
    let y = [0.0, 0.0, 0.0, 0.0];
    let c = obj.stage_cost(
        Stage {
            y: &y,
            z: &[],
            u: &[0.0, 0.0],
            u_prev: &[0.0, 0.0],
            terminal: false,
        },
        &mut s,
        None,
    );
    assert!(close(c, 5.0, 1e-12), "{c}");
}
