//! Issue 15: a normal feasible plan reported `iteration_limit`, which reads
//! like a failure. The normal outcome is `Completed` (`"completed"` in files,
//! JSON and Python), and the failure status stays distinct.

#![allow(clippy::expect_used)] // test helpers may expect

use telic::model::PointMass;
use telic::objective::ObjectiveSpec;
use telic::{PlanStatus, PlannerConfig, WorldModel};

fn plan_status(guardrail_lower: f64, guardrail_upper: f64) -> PlanStatus {
    let model = PointMass::new(2, 0.1, 2.0).expect("a valid point mass");
    let spec: ObjectiveSpec = toml::from_str(&format!(
        r#"
        [[terms]]
        name = "goal"
        residual = {{ kind = "readout", readouts = ["pos.x", "pos.y"], target = [1.0, 0.0] }}
        weight = 1.0

        [[guardrails]]
        kind = "readout_limit"
        name = "lane"
        readouts = ["pos.y"]
        lower = [{guardrail_lower}]
        upper = [{guardrail_upper}]
        "#
    ))
    .expect("the objective parses");
    let objective = spec.compile(model.spec()).expect("the objective compiles");
    let config = PlannerConfig {
        samples: 64,
        ..PlannerConfig::default()
    };
    let mut planner = telic::build(model, objective, config).expect("the planner builds");
    planner.plan(&[0.0; 4]).expect("a plan").status
}

#[test]
fn a_normal_feasible_plan_is_completed() {
    let status = plan_status(-0.5, 0.5);
    assert_eq!(status, PlanStatus::Completed);
    assert!(status.is_feasible());
}

#[test]
fn no_feasible_plan_stays_a_distinct_failure() {
    // The lane starts half a metre away: nothing the planner tries is inside it.
    let status = plan_status(0.5, 0.6);
    assert_eq!(status, PlanStatus::NoFeasiblePlan);
    assert!(!status.is_feasible());
}

#[test]
fn statuses_are_written_in_snake_case_and_completed_reads_as_success() {
    let names: Vec<String> = [
        PlanStatus::Completed,
        PlanStatus::Converged,
        PlanStatus::OutOfTime,
        PlanStatus::NoFeasiblePlan,
    ]
    .iter()
    .map(|s| serde_json::to_string(s).expect("a status serialises"))
    .collect();
    assert_eq!(
        names,
        [
            r#""completed""#,
            r#""converged""#,
            r#""out_of_time""#,
            r#""no_feasible_plan""#
        ]
    );
    let back: PlanStatus = serde_json::from_str(r#""completed""#).expect("it reads back");
    assert_eq!(back, PlanStatus::Completed);
    assert!(serde_json::from_str::<PlanStatus>(r#""iteration_limit""#).is_err());
}
