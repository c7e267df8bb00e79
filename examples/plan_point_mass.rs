//! The Rust API in a dozen lines: plan a point mass to a goal around a keep-out sphere.
//!
//! Run with `cargo run --example plan_point_mass`.

use telic::model::{PointMass, WorldModel};
use telic::{ObjectiveSpec, PlannerConfig};

/// The objective: reach (2, 0) and settle, around a keep-out sphere.
const OBJECTIVE_TOML: &str = include_str!("plan_point_mass.toml");

fn main() -> anyhow::Result<()> {
    let mut model = PointMass::new(2, 0.1, 2.0)?;
    let objective: ObjectiveSpec = toml::from_str(OBJECTIVE_TOML)?;
    let objective = objective.compile(model.spec())?;
    let config = PlannerConfig {
        horizon: 30,
        ..Default::default()
    };
    let mut planner = telic::build(model.clone(), objective, config)?;

    let mut state = vec![0.0; 4]; // [x, y, vx, vy]
    for step in 0..60 {
        let plan = planner.plan(&state)?;
        println!(
            "step {step:2}  pos ({:+.2}, {:+.2})  cost {:8.3}  worst margin {:+.3}  {:?}",
            state[0],
            state[1],
            plan.cost,
            plan.worst_margin(),
            plan.status
        );
        let action = plan.action.clone();
        let mut next = vec![0.0; 4];
        model.predict(&state, &action, &mut next)?; // the "plant" here is the model itself
        state = next;
    }
    Ok(())
}
