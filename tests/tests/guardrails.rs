//! Guardrail guarantees, end to end.
//!
//! For every guardrail kind: first show that the *cheapest* plan breaks it (the
//! same objective without the guardrail, run in closed loop, crosses it), then
//! run the closed loop with it — plan, apply the first action to a plant, repeat
//! — and check every executed state against the limit itself
//! (`Objective::margins(y, buffered = false)` on the true plant state).
//! Analytic models serve as both model and plant; MPPI and CEM run every
//! kind between them, the gradient planner a selection.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use telic::Real;
use telic::model::{PointMass, Unicycle, WorldModel};
use telic::objective::ObjectiveSpec;
use telic::planner::{PlannerConfig, PlannerKind, build};
use telic::{Objective, PlanStatus};

use PlannerKind::{Cem, Gradient, Mppi};

/// Reach `goal` with a point mass and stop there, with a little effort cost.
fn reach(goal: &[Real]) -> String {
    let axes = ["x", "y", "z"];
    let pos: Vec<String> = axes[..goal.len()]
        .iter()
        .map(|a| format!("\"pos.{a}\""))
        .collect();
    let vel: Vec<String> = axes[..goal.len()]
        .iter()
        .map(|a| format!("\"vel.{a}\""))
        .collect();
    format!(
        r#"
        [[terms]]
        name = "goal"
        residual = {{ kind = "readout", readouts = [{}], target = {goal:?} }}

        [[terms]]
        name = "stop"
        phase = "terminal"
        weight = 2.0
        residual = {{ kind = "readout", readouts = [{}] }}

        [[terms]]
        name = "effort"
        weight = 0.01
        residual = {{ kind = "action" }}
        "#,
        pos.join(", "),
        vel.join(", ")
    )
}

/// Drive a unicycle's base to `goal`.
fn drive(goal: [Real; 2]) -> String {
    format!(
        r#"
        [[terms]]
        name = "goal"
        residual = {{ kind = "readout", readouts = ["base.x", "base.y"], target = {goal:?} }}

        [[terms]]
        name = "effort"
        weight = 0.01
        residual = {{ kind = "action" }}
        "#
    )
}

const BALL: &str = r#"bodies = [{ name = "p", points = ["pos"], radius = 0.1 }]"#;

fn compile(toml: &str, model: &impl WorldModel) -> Objective {
    let spec: ObjectiveSpec = toml::from_str(toml).unwrap();
    spec.compile(model.spec()).unwrap()
}

fn config(kind: PlannerKind, seed: u64) -> PlannerConfig {
    PlannerConfig {
        kind,
        horizon: 20,
        samples: 128,
        iterations: 3,
        elites: 12,
        seed,
        ..Default::default()
    }
}

/// What a closed-loop run did, as seen by a validator.
#[derive(Debug)]
struct Run {
    /// Smallest unbuffered margin of each checked guardrail over the executed states.
    worst: Vec<Real>,
    /// Plan calls that found no feasible plan.
    infeasible: usize,
    /// Readouts of the executed states (including the start).
    ys: Vec<Vec<Real>>,
}

/// Plans with `objective`, applies each first action to a copy of `model`,
/// and checks every state with `check`.
fn closed_loop<M: WorldModel + Clone + 'static>(
    model: &M,
    objective: Objective,
    cfg: PlannerConfig,
    x0: &[Real],
    steps: usize,
    check: &Objective,
) -> Run {
    let mut planner = build(model.clone(), objective, cfg).unwrap();
    let mut plant = model.clone();
    let p = plant.spec().readout_dim();
    let mut x = x0.to_vec();
    let mut next = x.clone();
    let mut y = vec![0.0; p];
    let mut m = vec![0.0; check.num_guardrails()];
    let mut run = Run {
        worst: vec![Real::INFINITY; check.num_guardrails()],
        infeasible: 0,
        ys: Vec::new(),
    };
    let mut observe = |x: &[Real], run: &mut Run| {
        plant.readout(x, &mut y).unwrap();
        check.margins(&y, false, &mut m);
        for (w, m) in run.worst.iter_mut().zip(&m) {
            *w = w.min(*m);
        }
        run.ys.push(y.clone());
    };
    observe(&x, &mut run);
    for _ in 0..steps {
        let plan = planner.plan(&x).unwrap();
        if plan.status == PlanStatus::NoFeasiblePlan {
            run.infeasible += 1;
        }
        model.clone().predict(&x, &plan.action, &mut next).unwrap();
        x.copy_from_slice(&next);
        observe(&x, &mut run);
    }
    run
}

/// One guardrail scenario.
struct Case<M> {
    name: &'static str,
    model: M,
    x0: Vec<Real>,
    /// Cost terms (TOML).
    terms: String,
    /// Bodies and the guardrail (TOML).
    guard: String,
    steps: usize,
    /// Readouts whose distance to `goal` must shrink with the guardrail on.
    goal_readouts: [usize; 2],
    goal: [Real; 2],
}

impl<M: WorldModel + Clone + 'static> Case<M> {
    /// The cheapest plan breaks the guardrail; the guarded closed loop never
    /// does, with each of `kinds`, and still makes progress.
    fn check(&self, kinds: &[PlannerKind]) {
        let check = compile(&format!("{}\n{}", self.guard, self.terms), &self.model);
        assert!(check.num_guardrails() > 0, "{}", self.name);
        let free = compile(&self.terms, &self.model);
        let cheapest = closed_loop(
            &self.model,
            free,
            config(Mppi, 1),
            &self.x0,
            self.steps,
            &check,
        );
        let broken = cheapest
            .worst
            .iter()
            .copied()
            .fold(Real::INFINITY, Real::min);
        assert!(
            broken < 0.0,
            "{}: without the guardrail the plan should break it, worst margin {broken}",
            self.name
        );
        let dist = |y: &[Real]| {
            let [i, j] = self.goal_readouts;
            (y[i] - self.goal[0]).hypot(y[j] - self.goal[1])
        };
        // Two guarded runs per test: two planners, or one planner with two seeds.
        let seeds: &[u64] = if kinds.len() > 1 { &[1] } else { &[1, 2] };
        for &kind in kinds {
            for &seed in seeds {
                let guarded = closed_loop(
                    &self.model,
                    check.clone(),
                    config(kind, seed),
                    &self.x0,
                    self.steps,
                    &check,
                );
                let (first, last) = (dist(&guarded.ys[0]), dist(guarded.ys.last().unwrap()));
                eprintln!(
                    "{} {kind:?} seed {seed}: cheapest worst margin {broken:.3}, guarded worst {:?}, \
                     {} infeasible calls, distance to goal {first:.2} -> {last:.2}",
                    self.name, guarded.worst, guarded.infeasible
                );
                for (name, w) in check.guardrail_names().zip(&guarded.worst) {
                    assert!(
                        *w >= 0.0,
                        "{} {kind:?} seed {seed}: '{name}' broken in the executed states \
                         (margin {w}); {} infeasible plan calls",
                        self.name,
                        guarded.infeasible
                    );
                }
                assert!(
                    last < 0.8 * first,
                    "{} {kind:?} seed {seed}: safe but made no progress ({first} -> {last})",
                    self.name
                );
            }
        }
    }
}

fn pm2() -> PointMass {
    PointMass::new(2, 0.1, 2.0).unwrap()
}

fn pm3() -> PointMass {
    PointMass::new(3, 0.1, 2.0).unwrap()
}

/// 2-D point mass from the origin to (2, 0) past an obstacle on the straight line.
fn past(name: &'static str, guard: &str) -> Case<PointMass> {
    Case {
        name,
        model: pm2(),
        x0: vec![0.0; 4],
        terms: reach(&[2.0, 0.0]),
        guard: format!("{BALL}\n{guard}"),
        steps: 50,
        goal_readouts: [0, 1],
        goal: [2.0, 0.0],
    }
}

/// The same in 3-D.
fn past3(name: &'static str, guard: &str) -> Case<PointMass> {
    Case {
        model: pm3(),
        x0: vec![0.0; 6],
        terms: reach(&[2.0, 0.0, 0.0]),
        ..past(name, guard)
    }
}

#[test]
fn keep_out_axis_aligned_box() {
    past(
        "aabb",
        r#"
        [[guardrails]]
        kind = "keep_out"
        name = "crate"
        shape = { type = "box", center = [1.0, 0.0, 0.0], half_extents = [0.2, 0.3, 0.5] }
        "#,
    )
    .check(&[Mppi, Cem, Gradient]);
}

#[test]
fn huge_weights_do_not_buy_violations() {
    // The goal is the centre of the keep-out box and the goal weight is 10⁶:
    // guardrails are ranked before cost, never weighed against it.
    Case {
        terms: reach(&[1.0, 0.0]).replace("name = \"goal\"", "name = \"goal\"\nweight = 1e6"),
        goal: [1.0, 0.0],
        steps: 30,
        ..past(
            "goal inside a box",
            r#"
            [[guardrails]]
            kind = "keep_out"
            name = "crate"
            shape = { type = "box", center = [1.0, 0.0, 0.0], half_extents = [0.2, 0.3, 0.5] }
            "#,
        )
    }
    .check(&[Mppi, Cem, Gradient]);
}

#[test]
fn keep_out_yawed_box() {
    // A thin wall across the path, turned 60° about z.
    past(
        "yawed box",
        r#"
        [[guardrails]]
        kind = "keep_out"
        name = "wall"
        shape = { type = "box", center = [1.0, 0.0, 0.0], half_extents = [0.4, 0.05, 0.5], rpy = [0.0, 0.0, 1.0471975511965976] }
        "#,
    )
    .check(&[Mppi]);
}

#[test]
fn keep_out_rolled_box() {
    // Half extents (0.1, 0.5, 0.1) rolled 90° about x: a post standing along z.
    past3(
        "rolled box",
        r#"
        [[guardrails]]
        kind = "keep_out"
        name = "post"
        shape = { type = "box", center = [1.0, 0.0, 0.0], half_extents = [0.1, 0.5, 0.1], rpy = [1.5707963267948966, 0.0, 0.0] }
        "#,
    )
    .check(&[Mppi, Cem]);
}

#[test]
fn keep_out_sphere() {
    past3(
        "sphere",
        r#"
        [[guardrails]]
        kind = "keep_out"
        name = "ball"
        margin = 0.02
        shape = { type = "sphere", center = [1.0, 0.0, 0.0], radius = 0.3 }
        "#,
    )
    .check(&[Mppi]);
}

#[test]
fn keep_out_capsule() {
    past(
        "capsule",
        r#"
        [[guardrails]]
        kind = "keep_out"
        name = "pipe"
        shape = { type = "capsule", a = [1.0, -0.3, 0.0], b = [1.0, 0.3, 0.0], radius = 0.15 }
        "#,
    )
    .check(&[Cem]);
}

#[test]
fn keep_out_cylinder() {
    past(
        "cylinder",
        r#"
        [[guardrails]]
        kind = "keep_out"
        name = "pillar"
        shape = { type = "cylinder", center = [1.0, 0.0, 0.0], radius = 0.3, half_height = 1.0 }
        "#,
    )
    .check(&[Mppi]);
}

#[test]
fn clearance_from_several_obstacles() {
    past(
        "clearance",
        r#"
        [[guardrails]]
        kind = "clearance"
        name = "clear"
        min_distance = 0.15
        obstacles = [
            { type = "sphere", center = [0.6, 0.1, 0.0], radius = 0.15 },
            { type = "box", center = [1.2, -0.1, 0.0], half_extents = [0.15, 0.15, 0.5] },
            { type = "cylinder", center = [1.8, 0.05, 0.0], radius = 0.1, half_height = 1.0 },
        ]
        "#,
    )
    .check(&[Mppi, Cem, Gradient]);
}

#[test]
fn workspace_bounds() {
    // The goal lies outside the workspace: approach its wall and stop there.
    past(
        "workspace",
        r#"
        [[guardrails]]
        kind = "workspace"
        name = "cell"
        lower = [-0.5, -0.5, -1.0]
        upper = [1.2, 0.5, 1.0]
        "#,
    )
    .check(&[Mppi, Cem, Gradient]);
}

#[test]
fn joint_position_limits() {
    // The point mass's coordinates stand in for two joints.
    past(
        "joint position",
        r#"
        [[guardrails]]
        kind = "joint_position"
        name = "joints"
        readouts = ["pos.x", "pos.y"]
        lower = [-1.0, -0.5]
        upper = [1.2, 0.5]
        "#,
    )
    .check(&[Mppi]);
}

#[test]
fn joint_velocity_limits() {
    Case {
        steps: 40,
        ..past(
            "joint velocity",
            r#"
            [[guardrails]]
            kind = "joint_velocity"
            name = "joint_speeds"
            readouts = ["vel.x", "vel.y"]
            lower = [-0.6, -0.6]
            upper = [0.6, 0.6]
            "#,
        )
    }
    .check(&[Mppi, Cem]);
}

/// A unicycle from the origin (heading +x) to `goal`.
fn unicycle_case(name: &'static str, goal: [Real; 2], guard: &str) -> Case<Unicycle> {
    Case {
        name,
        model: Unicycle::new(0.1, 1.0, 2.0, 0.2).unwrap(),
        x0: vec![0.0; 5],
        terms: drive(goal),
        guard: guard.into(),
        steps: 40,
        goal_readouts: [0, 1],
        goal,
    }
}

#[test]
fn speed_limit() {
    unicycle_case(
        "speed",
        [3.0, 1.0],
        r#"
        [[guardrails]]
        kind = "speed"
        name = "slow"
        readouts = ["speed"]
        max = 0.5
        "#,
    )
    .check(&[Mppi, Cem, Gradient]);
}

#[test]
fn speed_limit_on_a_velocity_vector() {
    Case {
        steps: 40,
        ..past(
            "speed vector",
            r#"
            [[guardrails]]
            kind = "speed"
            name = "slow"
            margin = 0.05
            readouts = ["vel.x", "vel.y"]
            max = 0.7
            "#,
        )
    }
    .check(&[Cem]);
}

#[test]
fn readout_limit() {
    // The goal lies to the left; the heading may not turn past 0.4 rad.
    unicycle_case(
        "readout limit",
        [1.0, 2.0],
        r#"
        [[guardrails]]
        kind = "readout_limit"
        name = "heading"
        readouts = ["heading"]
        lower = [-0.4]
        upper = [0.4]
        "#,
    )
    .check(&[Mppi, Cem, Gradient]);
}

/// The start is inside the keep-out zone, so no plan is feasible: every call
/// says so and returns the configured fallback, for each fallback kind.
#[test]
fn no_feasible_plan_gives_the_fallback() {
    use telic::planner::Fallback;
    let model = pm2();
    let toml = format!(
        r#"{BALL}
        [[guardrails]]
        kind = "keep_out"
        name = "crate"
        shape = {{ type = "box", center = [0.0, 0.0, 0.0], half_extents = [1.0, 1.0, 0.5] }}
        {}"#,
        reach(&[2.0, 0.0])
    );
    let obj = compile(&toml, &model);
    let x0 = [0.1, -0.2, 0.4, -3.0];
    let cases = [
        (Fallback::Zero, vec![0.0, 0.0]),
        (
            Fallback::Constant {
                action: vec![-0.5, 0.7],
            },
            vec![-0.5, 0.7],
        ),
        // Accelerations equal to the velocity readouts, clamped into ±2.
        (
            Fallback::Hold {
                readouts: vec!["vel.x".into(), "vel.y".into()],
            },
            vec![0.4, -2.0],
        ),
    ];
    for kind in [Mppi, Cem, Gradient] {
        for (fallback, want) in &cases {
            let cfg = PlannerConfig {
                fallback: fallback.clone(),
                horizon: 10,
                ..config(kind, 3)
            };
            let mut planner = build(model.clone(), obj.clone(), cfg).unwrap();
            for call in 0..3 {
                let plan = planner.plan(&x0).unwrap();
                assert_eq!(
                    plan.status,
                    PlanStatus::NoFeasiblePlan,
                    "{kind:?} {fallback:?} call {call}"
                );
                assert_eq!(&plan.action, want, "{kind:?} {fallback:?} call {call}");
                assert!(plan.worst_margin() < 0.0 && plan.violation > 0.0);
            }
        }
    }
}
