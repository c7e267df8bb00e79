//! Safety buffers and the model's readout error: margins that tighten
//! guardrails, and a way back out of a buffer.

use super::*;

/// Regression: a state that model error pushed into a guardrail's safety
/// buffer (limit itself intact) froze the robot on its fallback for the rest
/// of an episode, because every plan started infeasible.
#[test]
fn state_inside_the_buffer_can_back_out() {
    for kind in [PlannerKind::Mppi, PlannerKind::Cem, PlannerKind::Gradient] {
        let mut p = planner(REACH, config(kind, 3));
        // The body (radius 0.1) is 0.02 from the ball (radius 0.15): inside
        // the 0.05 buffer, outside the limit. At rest, moving away from the ball.
        let start = [0.5 - 0.27, 0.25, 0.0, 0.0];
        let mut state = start;
        let mut model = point_mass();
        for step in 0..20 {
            let plan = p.plan(&state).unwrap();
            assert!(
                plan.status.is_feasible(),
                "{kind:?} step {step}: {:?} from inside the buffer",
                plan.status
            );
            let mut next = [0.0; 4];
            model.predict(&state, &plan.action, &mut next).unwrap();
            state = next;
            let gap = ((state[0] - 0.5).powi(2) + (state[1] - 0.25).powi(2)).sqrt() - 0.25;
            assert!(gap >= 0.0, "{kind:?} step {step}: hit the ball ({gap})");
        }
        let end_gap = ((state[0] - 0.5).powi(2) + (state[1] - 0.25).powi(2)).sqrt() - 0.25;
        assert!(
            end_gap > 0.02,
            "{kind:?}: never left the buffer ({end_gap})"
        );
    }
}

/// A point mass whose predictions are trusted only up to a growing error:
/// the planner must keep that much farther from a guardrail.
#[derive(Clone, Debug)]
struct Uncertain(PointMass, Real);

impl WorldModel for Uncertain {
    fn spec(&self) -> &ModelSpec {
        self.0.spec()
    }
    fn encode(&mut self, o: &[Real], z: &mut [Real]) -> Result<(), ModelError> {
        self.0.encode(o, z)
    }
    fn predict(&mut self, z: &[Real], u: &[Real], n: &mut [Real]) -> Result<(), ModelError> {
        self.0.predict(z, u, n)
    }
    fn readout(&mut self, z: &[Real], y: &mut [Real]) -> Result<(), ModelError> {
        self.0.readout(z, y)
    }
    fn readout_errors(&self) -> Option<Vec<Vec<Real>>> {
        // pos.x and pos.y may be off by `self.1 · (t + 1)` after t + 1 steps.
        let grow: Vec<Real> = (1..=10).map(|t| self.1 * t as Real).collect();
        let mut rows = vec![Vec::new(); self.0.spec().readout_dim()];
        rows[0] = grow.clone();
        rows[1] = grow;
        Some(rows)
    }
}

/// A wall at x = 0.5 (keep x ≤ 0.5 via a readout limit) and a goal beyond it.
const WALL: &str = r#"
    [[terms]]
    name = "goal"
    residual = { kind = "readout", readouts = ["pos.x", "pos.y"], target = [2.0, 0.0] }
    [[guardrails]]
    kind = "readout_limit"
    name = "wall"
    readouts = ["pos.x"]
    lower = [-10.0]
    upper = [0.5]
"#;

#[test]
fn model_error_margins_tighten_guardrails() {
    let closest = |err: Real| {
        let model = Uncertain(point_mass(), err);
        let obj = objective(WALL, model.spec());
        let mut p = build(model.clone(), obj, config(PlannerKind::Mppi, 1)).unwrap();
        let mut plant = point_mass();
        let mut state = [0.0; 4];
        let mut max_x: Real = 0.0;
        for _ in 0..60 {
            let plan = p.plan(&state).unwrap();
            let mut next = [0.0; 4];
            plant.predict(&state, &plan.action, &mut next).unwrap();
            state = next;
            max_x = max_x.max(state[0]);
        }
        max_x
    };
    let exact = closest(0.0);
    let uncertain = closest(0.02);
    eprintln!("closest approach: exact model {exact}, uncertain model {uncertain}");
    assert!(exact <= 0.5 && exact > 0.49, "without model error: {exact}");
    // One step ahead the error bound is 0.02: the robot stops at least that short.
    assert!(
        uncertain <= 0.48 + 1e-9,
        "with model error: {uncertain} (exact {exact})"
    );
}

#[test]
fn model_error_steps_stop_the_margins_growing() {
    // The model's error bound grows 2 cm per step for 10 steps.
    let margins = |steps: Option<usize>| {
        let model = Uncertain(point_mass(), 0.02);
        let obj = objective(WALL, model.spec());
        let cfg = PlannerConfig {
            model_error_steps: steps,
            ..config(PlannerKind::Mppi, 1)
        };
        let mut p = build(model.clone(), obj, cfg).unwrap();
        p.plan(&[0.0; 4]).unwrap();
        let y = [0.0; 4];
        let mut out = [0.0];
        (0..12)
            .map(|t| {
                p.objective().margins_at_step(&y, t, &mut out);
                out[0]
            })
            .collect::<Vec<Real>>()
    };
    let all = margins(None);
    let capped = margins(Some(3));
    // Uncapped: 0.5 less 0.02·(t + 1), held after the table's 10 steps.
    for (t, m) in all.iter().enumerate() {
        let expect = 0.5 - 0.02 * (t.min(9) + 1) as Real;
        assert!((m - expect).abs() < 1e-9, "step {t}: {m} vs {expect}");
    }
    // Capped at 3 steps: the same for the first 3, then the third's holds.
    assert_eq!(capped[..3], all[..3]);
    for m in &capped[3..] {
        assert!((m - all[2]).abs() < 1e-12, "{capped:?}");
    }
    let zero = PlannerConfig {
        model_error_steps: Some(0),
        ..config(PlannerKind::Mppi, 1)
    };
    let err = zero.validate().unwrap_err();
    assert!(err.contains("model_error_steps"), "{err}");
}

#[test]
fn readout_errors_of_the_wrong_size_are_refused() {
    let model = point_mass();
    let mut obj = objective(REACH, model.spec());
    let err = obj
        .set_readout_errors(&[vec![0.1]])
        .unwrap_err()
        .to_string();
    assert!(err.contains("readout errors"), "{err}");
    let mut rows = vec![Vec::new(); model.spec().readout_dim()];
    rows[0] = vec![-1.0];
    assert!(obj.set_readout_errors(&rows).is_err());
}
