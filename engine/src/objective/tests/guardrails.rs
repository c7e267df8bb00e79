//! Guardrail margins: hand-computed per kind, NaN readouts, gradients
//! against finite differences, and the batched violations bit for bit.

use super::*;

#[test]
fn margins_of_every_guardrail_kind_match_hand_computation() {
    let obj = all_guardrails().compile(&pm(3)).unwrap();
    let y = y3([0.0; 3], [0.6, 0.8, 0.0]);
    let sqrt2 = 2.0_f64.sqrt();
    let want = [
        ("aabb", 1.5 - 0.1),
        // Box frame: the origin lies on the box's long axis, √2 from its centre.
        ("yawed_box", sqrt2 - 1.0 - 0.1),
        // Rolled by 90° about x, the box's y half extent (0.5) points along world z.
        ("rolled_box", 1.0 - 0.5 - 0.1),
        ("sphere", 1.0 - 0.3 - 0.1),
        ("capsule", 1.0 - 0.2 - 0.1),
        // Below the cylinder's bottom face (z = 0.2), inside its radius.
        ("cylinder", 0.2 - 0.1),
        // The segment (0,0,0)–(0.6,0.8,0) passes (0.36,0.48,0), 0.8 from the centre.
        ("arm_vs_sphere", 0.8 - 0.2 - 0.05),
        // The segment's top end (y = 0.8) lies under the box's lower face (y = 0.9).
        ("arm_vs_box", 0.1 - 0.05),
        // Nearest obstacle: the box, 0.8 away.
        ("clearance", 0.8 - 0.1 - 0.25),
        // Tightest face: z ≥ −0.5.
        ("workspace", 0.5 - 0.1),
        // Tightest: the capsule's far end, x = 0.6 ≤ 0.7.
        ("arm_workspace", 0.7 - 0.6 - 0.05),
        // Tightest: pos.y ≥ −0.2.
        ("joints", 0.2),
        ("joint_speeds", 1.5 - 0.6),
        // speed 1 > 0.8: violated.
        ("speed_limit_as_readout", 0.8 - 1.0),
        ("speed", 2.0 - 1.0),
    ];
    assert_eq!(
        obj.guardrail_names().collect::<Vec<_>>(),
        want.iter().map(|(n, _)| *n).collect::<Vec<_>>()
    );
    let mut raw = vec![0.0; obj.num_guardrails()];
    let mut buffered = raw.clone();
    obj.margins(&y, false, &mut raw);
    obj.margins(&y, true, &mut buffered);
    for (k, (name, m)) in want.iter().enumerate() {
        // Box-versus-capsule distances are lower bounds within a few millimetres.
        let tol = if *name == "arm_vs_box" { 5e-3 } else { 1e-9 };
        assert!(raw[k] <= m + 1e-9, "{name}: {} above the exact {m}", raw[k]);
        assert!(raw[k] >= m - tol, "{name}: {} vs {m}", raw[k]);
        assert!(close(buffered[k], raw[k] - 0.1, 1e-12), "{name} buffered");
    }
}

#[test]
fn margins_are_negative_inside() {
    let obj = all_guardrails().compile(&pm(3)).unwrap();
    let names: Vec<&str> = obj.guardrail_names().collect();
    let at = |n: &str| names.iter().position(|x| *x == n).unwrap();
    let mut m = vec![0.0; obj.num_guardrails()];
    // Inside the cylinder: 0.3 below its top face, 0.5 from its side.
    obj.margins(&y3([0.0, 0.0, 0.5], [0.0; 3]), false, &mut m);
    assert!(
        close(m[at("cylinder")], -0.3 - 0.1, 1e-12),
        "{}",
        m[at("cylinder")]
    );
    // At the centre of the yawed box: 0.2 from its long faces.
    obj.margins(&y3([1.0, 1.0, 0.0], [0.0; 3]), false, &mut m);
    assert!(
        close(m[at("yawed_box")], -0.2 - 0.1, 1e-12),
        "{}",
        m[at("yawed_box")]
    );
    // Outside the workspace in x by 0.5.
    obj.margins(&y3([2.5, 0.0, 0.0], [0.0; 3]), false, &mut m);
    assert!(
        close(m[at("workspace")], -0.5 - 0.1, 1e-12),
        "{}",
        m[at("workspace")]
    );
}

/// Regression: `Real::min` and the box distance dropped NaN, so a NaN position
/// gave keep-out margins of `+∞` and workspace or limit margins that looked safe.
#[test]
fn nan_readouts_never_look_safe() {
    let obj = all_guardrails().compile(&pm(3)).unwrap();
    let names: Vec<&str> = obj.guardrail_names().collect();
    let mut m = vec![0.0; obj.num_guardrails()];
    let speed_only = ["joint_speeds", "speed_limit_as_readout", "speed"];
    for bad in [Real::NAN, Real::INFINITY, Real::NEG_INFINITY] {
        let mut y = y3([0.0; 3], [0.1, 0.0, 0.0]);
        y[0] = bad;
        obj.margins(&y, false, &mut m);
        for (k, name) in names.iter().enumerate() {
            if !speed_only.contains(name) {
                assert_eq!(m[k], Real::NEG_INFINITY, "{name} with pos.x = {bad}");
            } else {
                assert!(m[k].is_finite() && m[k] > 0.0, "{name} does not read pos.x");
            }
        }
        let mut y = y3([0.0; 3], [0.1, 0.0, 0.0]);
        y[3] = bad;
        y[6] = bad;
        obj.margins(&y, true, &mut m);
        for name in speed_only {
            let k = names.iter().position(|n| *n == name).unwrap();
            assert_eq!(m[k], Real::NEG_INFINITY, "{name} with vel.x = {bad}");
        }
    }
}

#[test]
fn margin_gradient_matches_finite_differences() {
    let obj = all_guardrails().compile(&pm(3)).unwrap();
    let names: Vec<&str> = obj.guardrail_names().collect();
    // Generic points, away from kinks of any margin.
    let points = [
        y3([0.13, -0.07, 0.21], [0.55, 0.83, 0.12]),
        y3([-0.31, 0.42, 0.05], [0.2, -0.35, 0.6]),
    ];
    let mut m = vec![0.0; obj.num_guardrails()];
    for y in &points {
        for (k, name) in names.iter().enumerate() {
            let mut g = vec![0.0; y.len()];
            obj.margin_gradient(k, y, &mut g);
            for i in 0..y.len() {
                let h = 1e-5;
                let mut f = |d: Real| {
                    let mut yy = y.clone();
                    yy[i] += d;
                    obj.margins(&yy, true, &mut m);
                    m[k]
                };
                let fd = (f(h) - f(-h)) / (2.0 * h);
                // Box-versus-capsule margins come from a search: looser.
                let tol = if *name == "arm_vs_box" { 5e-2 } else { 1e-5 };
                assert!(
                    (fd - g[i]).abs() < tol,
                    "{name} d/dy[{i}]: {} vs {fd}",
                    g[i]
                );
            }
        }
    }
    // And against closed forms at the first point.
    let y = &points[0];
    let mut g = vec![0.0; y.len()];
    let unit = |v: [Real; 3]| {
        let n = v.iter().map(|x| x * x).sum::<Real>().sqrt();
        v.map(|x| x / n)
    };
    // Sphere at (0,0,1): the margin grows along (p − c)/|p − c|.
    obj.margin_gradient(
        names.iter().position(|n| *n == "sphere").unwrap(),
        y,
        &mut g,
    );
    let dir = unit([0.13, -0.07, 0.21 - 1.0]);
    for i in 0..3 {
        assert!(
            (g[i] - dir[i]).abs() < 1e-6,
            "sphere {i}: {} vs {}",
            g[i],
            dir[i]
        );
    }
    assert!(g[3..].iter().all(|x| x.abs() < 1e-9));
    // Speed: −v/|v| over the velocity readouts.
    obj.margin_gradient(names.iter().position(|n| *n == "speed").unwrap(), y, &mut g);
    let dir = unit([0.55, 0.83, 0.12]);
    for i in 0..3 {
        assert!((g[3 + i] + dir[i]).abs() < 1e-6, "speed {i}");
    }
    // Joint limits: the active one is pos.y ≥ −0.2 (0.13 away): gradient +1 on pos.y.
    obj.margin_gradient(
        names.iter().position(|n| *n == "joints").unwrap(),
        y,
        &mut g,
    );
    let want = [0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0];
    for i in 0..7 {
        assert!((g[i] - want[i]).abs() < 1e-6, "joints {i}: {}", g[i]);
    }
    // An out-of-range guardrail index leaves the buffer alone.
    g.fill(7.0);
    obj.margin_gradient(99, y, &mut g);
    assert!(g.iter().all(|x| *x == 7.0));
}

#[test]
fn planar_models_see_the_plane_z_equals_zero() {
    // A 2-D point mass has no pos.z: points sit at z = 0.
    let toml = r#"
        bodies = [{ name = "p", points = ["pos"], radius = 0.1 }]
        [[guardrails]]
        kind = "keep_out"
        name = "sphere"
        shape = { type = "sphere", center = [1.0, 0.0, 0.3], radius = 0.5 }
    "#;
    let spec: ObjectiveSpec = toml::from_str(toml).unwrap();
    let obj = spec.compile(&pm(2)).unwrap();
    let mut m = [0.0];
    obj.margins(&[1.0, 0.0, 0.0, 0.0, 0.0], false, &mut m);
    assert!(close(m[0], 0.3 - 0.5 - 0.1, 1e-12), "{}", m[0]);
}

#[test]
fn batched_violations_equal_margins_row_by_row_bit_for_bit() {
    // Every guardrail kind, plus the capsule body against every shape.
    let mut spec = all_guardrails();
    let extra: ObjectiveSpec = toml::from_str(
        r#"
        [[guardrails]]
        kind = "clearance"
        name = "arm_clearance"
        min_distance = 0.05
        bodies = ["arm"]
        obstacles = [
            { type = "box", center = [1.0, 1.0, 0.0], half_extents = [1.0, 0.2, 0.2], rpy = [0.1, 0.2, 0.7] },
            { type = "cylinder", center = [0.0, 0.0, 0.5], radius = 0.5, half_height = 0.3 },
            { type = "capsule", a = [-1.0, 1.0, 0.0], b = [1.0, 1.0, 0.0], radius = 0.2 },
        ]
        "#,
    )
    .unwrap();
    spec.guardrails.extend(extra.guardrails);
    let mut obj = spec.compile(&pm(3)).unwrap();
    let p = obj.readout_dim();
    // Buffers tightened step by step for model error, and relaxed by a
    // current state that sits inside some of them.
    let errors: Vec<Vec<Real>> = (0..p).map(|i| vec![0.01 * i as Real, 0.03]).collect();
    obj.set_readout_errors(&errors).unwrap();
    obj.relax_buffers(&y3([0.35, 1.0, 0.1], [0.2, 0.0, 0.0]));
    let mut rng = crate::rng::Rng::new(5);
    let n = 53;
    let mut y: Vec<Real> = (0..n)
        .flat_map(|_| {
            let mut r = |s: Real| rng.range(-s, s);
            y3([r(3.0), r(3.0), r(1.5)], [r(2.0), r(2.0), r(1.0)])
        })
        .collect();
    let clean = y.clone();
    y[3 * p] = Real::NAN;
    y[7 * p + 4] = Real::INFINITY;
    y[11 * p + 6] = Real::NEG_INFINITY;
    y[12 * p + 2] = Real::NAN;
    let row_by_row = |y: &[Real], t: usize, i: usize| {
        let row = &y[i * p..(i + 1) * p];
        let mut add = if row.iter().all(|x| x.is_finite()) {
            0.0
        } else {
            Real::INFINITY
        };
        let mut m = vec![0.0; obj.num_guardrails()];
        obj.margins_at_step(row, t, &mut m);
        add += m.iter().map(|m| (-m).max(0.0)).sum::<Real>();
        0.25 + if add.is_nan() { Real::INFINITY } else { add }
    };
    // Workspace sized for the rows, and one that grows on first use.
    for mut work in [Margins::new(n), Margins::default()] {
        for (ys, finite) in [(&y, false), (&clean, true), (&clean, false)] {
            for t in 0..3 {
                let mut v = vec![0.25; n];
                obj.add_violations(ys, t, finite, &mut work, &mut v);
                for (i, v) in v.iter().enumerate() {
                    let want = row_by_row(ys, t, i);
                    assert_eq!(
                        v.to_bits(),
                        want.to_bits(),
                        "row {i} step {t}: {v} vs {want}"
                    );
                }
            }
        }
        let mut v = vec![0.0; n];
        obj.add_violations(&y, 0, false, &mut work, &mut v);
        for i in [3, 7, 11, 12] {
            assert_eq!(v[i], Real::INFINITY, "row {i}");
        }
        assert!(v.iter().filter(|v| v.is_finite()).count() > n / 2);
    }
}
