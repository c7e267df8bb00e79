//! Knots: perturbations drawn on K control points and interpolated.

use super::*;

const INTERPOLATIONS: [Interpolation; 3] = [
    Interpolation::Zero,
    Interpolation::Linear,
    Interpolation::Cubic,
];

/// A planner core for the point mass (bounds ±2) with `knots` control points.
fn knot_core(
    knots: Option<usize>,
    interpolation: Interpolation,
    noise: Real,
    beta: Real,
) -> super::core::Core<PointMass> {
    let model = point_mass();
    let obj = objective(REACH, model.spec());
    let cfg = PlannerConfig {
        horizon: 20,
        knots,
        interpolation,
        noise,
        colored_noise_beta: beta,
        ..config(PlannerKind::Mppi, 11)
    };
    super::core::Core::new(model, obj, cfg).unwrap()
}

/// Samples slot 2 around a zero mean and returns each action's sequence
/// (small noise: nothing is clamped).
fn knot_samples(core: &mut super::core::Core<PointMass>) -> Vec<Vec<Real>> {
    let (h, a, _, _) = core.sizes();
    let mean = vec![0.0; h * a];
    let std = core.sigma().to_vec();
    core.sample_range(2, 3, &mean, &std);
    let seq = &core.seqs()[2 * h * a..3 * h * a];
    assert!(seq.iter().all(|x| x.abs() < 1.0), "clamped: {seq:?}");
    (0..a)
        .map(|k| (0..h).map(|t| seq[t * a + k]).collect())
        .collect()
}

#[test]
fn knot_layouts_cover_the_horizon() {
    use super::knots::knot_steps;
    assert_eq!(knot_steps(20, 4, Interpolation::Zero), [0, 5, 10, 15]);
    // Blocks of ⌈10/4⌉ = 3 or 2 steps, longer first; every knot is used.
    assert_eq!(knot_steps(10, 4, Interpolation::Zero), [0, 3, 5, 8]);
    assert_eq!(knot_steps(10, 6, Interpolation::Zero), [0, 2, 4, 5, 7, 9]);
    assert_eq!(knot_steps(20, 4, Interpolation::Linear), [0, 6, 13, 19]);
    assert_eq!(knot_steps(20, 4, Interpolation::Cubic), [0, 6, 13, 19]);
    assert_eq!(knot_steps(7, 1, Interpolation::Cubic), [0]);
    for interpolation in INTERPOLATIONS {
        for (h, k) in [(20, 4), (10, 6), (7, 1), (7, 2), (15, 14), (12, 12)] {
            let knots = super::knots::Knots::new(h, k, interpolation, 2.0);
            let w = knots.weights();
            assert_eq!((knots.dim(), w.len()), (k, h * k));
            // Constants are kept: every row sums to one.
            for (t, row) in w.chunks_exact(k).enumerate() {
                let sum: Real = row.iter().sum();
                assert!(
                    (sum - 1.0).abs() < 1e-12,
                    "{interpolation:?} {h}/{k} t={t}: {row:?}"
                );
            }
            // Each knot is reproduced at its step.
            for (j, &s) in knot_steps(h, k, interpolation).iter().enumerate() {
                for c in 0..k {
                    assert_eq!(
                        w[s * k + c],
                        Real::from(c == j),
                        "{interpolation:?} {h}/{k}"
                    );
                }
            }
        }
    }
}

#[test]
fn zero_order_hold_samples_are_constant_in_blocks() {
    let mut core = knot_core(Some(4), Interpolation::Zero, 0.02, 2.0);
    for _ in 0..5 {
        for u in knot_samples(&mut core) {
            for block in u.chunks(5) {
                assert!(block.iter().all(|x| *x == block[0]), "{u:?}");
            }
            for pair in u.chunks(5).collect::<Vec<_>>().windows(2) {
                assert_ne!(pair[0][0], pair[1][0], "{u:?}");
            }
        }
    }
}

#[test]
fn linear_samples_are_straight_between_knots() {
    let mut core = knot_core(Some(4), Interpolation::Linear, 0.02, 2.0);
    let knots = [0, 6, 13, 19];
    for _ in 0..5 {
        for u in knot_samples(&mut core) {
            let bend = |t: usize| u[t - 1] - 2.0 * u[t] + u[t + 1];
            for t in 1..19 {
                if knots.contains(&t) {
                    // A kink at an inner knot (almost surely).
                    assert!(bend(t).abs() > 1e-9, "t={t}: {u:?}");
                } else {
                    assert!(bend(t).abs() < 1e-12, "t={t}: {u:?}");
                }
            }
        }
    }
}

#[test]
fn cubic_samples_pass_through_the_knots() {
    // The same seed draws the same knot values whatever the interpolation.
    let mut linear = knot_core(Some(4), Interpolation::Linear, 0.02, 2.0);
    let mut cubic = knot_core(Some(4), Interpolation::Cubic, 0.02, 2.0);
    let knots = [0, 6, 13, 19];
    for _ in 0..5 {
        for (l, c) in knot_samples(&mut linear)
            .into_iter()
            .zip(knot_samples(&mut cubic))
        {
            for &s in &knots {
                assert!((l[s] - c[s]).abs() < 1e-15, "step {s}: {l:?} {c:?}");
            }
            assert!(l.iter().zip(&c).any(|(a, b)| (a - b).abs() > 1e-9));
        }
    }
}

#[test]
fn cubic_knots_reproduce_lines_and_inner_parabolas() {
    // Knots at 0, 10, 20, 30. Lines are kept exactly everywhere; the slopes at
    // inner knots (mean of the two secants) are exact for a parabola, so the
    // segment between the two inner knots is that parabola.
    let (h, k) = (31, 4);
    let knots = super::knots::Knots::new(h, k, Interpolation::Cubic, 2.0);
    let steps = super::knots::knot_steps(h, k, Interpolation::Cubic);
    assert_eq!(steps, [0, 10, 20, 30]);
    let at = |f: &dyn Fn(Real) -> Real, t: usize| -> Real {
        let row = &knots.weights()[t * k..(t + 1) * k];
        row.iter().zip(&steps).map(|(w, &s)| w * f(s as Real)).sum()
    };
    let line = |t: Real| 0.3 - 0.07 * t;
    let parabola = |t: Real| (t - 12.0).powi(2) / 50.0;
    for t in 0..h {
        assert!((at(&line, t) - line(t as Real)).abs() < 1e-12, "t={t}");
    }
    for t in 10..=20 {
        let (got, want) = (at(&parabola, t), parabola(t as Real));
        assert!((got - want).abs() < 1e-12, "t={t}: {got} vs {want}");
    }
    // The end segments use one-sided slopes: not exact there.
    assert!((at(&parabola, 5) - parabola(5.0)).abs() > 1e-3);
}

#[test]
fn knots_set_the_number_of_random_draws() {
    // White noise: one normal draw per knot (and action, for each of which
    // the sampler calls `Knots::sample` once).
    for (knots, draws) in [(None, 20), (Some(20), 20), (Some(4), 4), (Some(1), 1)] {
        for interpolation in INTERPOLATIONS {
            let mut k = super::knots::Knots::new(20, knots.unwrap_or(20), interpolation, 0.0);
            let mut rng = crate::rng::Rng::new(11);
            k.sample(&mut rng, &mut [0.0; 20]);
            let mut reference = crate::rng::Rng::new(11);
            for _ in 0..draws {
                reference.normal();
            }
            assert_eq!(
                (rng.normal(), rng.next_u64()),
                (reference.normal(), reference.next_u64()),
                "{knots:?} {interpolation:?}"
            );
        }
    }
}

#[test]
fn one_knot_per_step_is_the_per_step_planner() {
    // K = H: W = I, the same search dimension and the same plans bit for bit.
    for interpolation in INTERPOLATIONS {
        let knots = super::knots::Knots::new(15, 15, interpolation, 2.0);
        assert_eq!(knots.dim(), 15);
        for kind in KINDS {
            let per_step = run(&mut *planner(REACH, config(kind, 4)), [0.0; 4], 3);
            let cfg = PlannerConfig {
                knots: Some(15),
                interpolation,
                ..config(kind, 4)
            };
            assert_eq!(run(&mut *planner(REACH, cfg), [0.0; 4], 3), per_step);
        }
    }
}

#[test]
fn planners_with_four_knots_reach_the_goal() {
    for interpolation in INTERPOLATIONS {
        for kind in KINDS {
            let cfg = PlannerConfig {
                knots: Some(4),
                interpolation,
                ..config(kind, 3)
            };
            let what = format!("{kind:?} {interpolation:?}");
            let mut p = planner(REACH, cfg.clone());
            let first = p.plan(&[0.0; 4]).unwrap();
            assert!(first.status.is_feasible(), "{what}");
            assert!(first.action[0] > 0.0, "{what}: {:?}", first.action);
            let mut plant = point_mass();
            let mut x = [0.0; 4];
            for _ in 0..60 {
                let plan = p.plan(&x).unwrap();
                assert!(plan.status.is_feasible(), "{what}");
                let mut next = [0.0; 4];
                plant.predict(&x, &plan.action, &mut next).unwrap();
                x = next;
            }
            let dist = (x[0] - 1.0).hypot(x[1] - 0.5);
            assert!(dist < 0.1, "{what}: ended at {x:?}, {dist} from the goal");
            // Deterministic for a seed.
            let a = run(&mut *planner(REACH, cfg.clone()), [0.0; 4], 4);
            assert_eq!(a, run(&mut *planner(REACH, cfg), [0.0; 4], 4), "{what}");
        }
    }
}

#[test]
fn bad_knots_are_errors_naming_the_field() {
    for knots in [0, 21] {
        let cfg = PlannerConfig {
            knots: Some(knots),
            ..Default::default()
        };
        let err = cfg.validate().unwrap_err();
        assert!(
            err.contains("planner.knots") && err.contains("1..=20"),
            "{err}"
        );
        let model = point_mass();
        let obj = objective(REACH, model.spec());
        match build(model, obj, cfg) {
            Err(PlanError::Config(msg)) => assert!(msg.contains("planner.knots"), "{msg}"),
            other => panic!("knots = {knots}: {:?}", other.map(|_| ())),
        }
    }
    let parse = |s: &str| toml::from_str::<PlannerConfig>(s);
    let cfg = parse("horizon = 30\nknots = 6\ninterpolation = \"cubic\"").unwrap();
    assert_eq!(
        (cfg.knots, cfg.interpolation),
        (Some(6), Interpolation::Cubic)
    );
    cfg.validate().unwrap();
    let back: PlannerConfig = toml::from_str(&toml::to_string(&cfg).unwrap()).unwrap();
    assert_eq!(back, cfg);
    let default = parse("").unwrap();
    assert_eq!(
        (default.knots, default.interpolation),
        (None, Interpolation::Zero)
    );
    let err = parse("knots = 4\ninterpolation = \"quadratic\"")
        .unwrap_err()
        .to_string();
    for word in ["interpolation", "quadratic", "zero", "linear", "cubic"] {
        assert!(err.contains(word), "{word}: {err}");
    }
    let err = parse("knots = -1").unwrap_err().to_string();
    assert!(err.contains("knots"), "{err}");
}
