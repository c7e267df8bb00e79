//! Recordings: a `reach` episode recorded to an .rrd file, then checked
//! headlessly with the rerun command-line tool from the `rerun-sdk` wheel
//! (`rerun rrd verify`, `rerun rrd print`): the expected entities exist, the
//! plan and the rollouts have an entry per control step, and the recorded
//! guardrail margins are the validator's values.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may unwrap

use std::path::PathBuf;
use std::process::Command;
use telic::{ModelSpec, ObjectiveSpec, Plan, Real};
use telic_sim::World;
use telic_sim::episode::{EpisodeObserver, EpisodeResult, Validator, run_observed};
use telic_sim::record::{RecordOptions, Recorder, Sink};
use telic_sim::scenario::{ModelChoice, Scenario};
use telic_tests::{print_rrd, rerun_bin};

/// Forwards everything to the recorder and keeps the margins it was given
/// at each plan and at the end: what the recording must hold.
struct Tee<'a> {
    recorder: &'a mut Recorder,
    names: Vec<String>,
    current: Vec<Real>,
    per_step: Vec<Vec<Real>>,
}

impl EpisodeObserver for Tee<'_> {
    fn on_reset(&mut self, scene: &dyn World, objective: &telic::Objective, seed: u64) {
        self.recorder.on_reset(scene, objective, seed);
    }
    fn on_start(
        &mut self,
        scene: &dyn World,
        spec: &ObjectiveSpec,
        model: &ModelSpec,
        v: &Validator,
    ) {
        self.names = v.names().to_vec();
        self.current = v.margins().to_vec();
        self.recorder.on_start(scene, spec, model, v);
    }
    fn on_plan(&mut self, scene: &dyn World, obs: &[Real], plan: &Plan, step: usize) {
        self.per_step.push(self.current.clone());
        self.recorder.on_plan(scene, obs, plan, step);
    }
    fn on_physics_step(&mut self, scene: &dyn World, truth: &[Real], margins: &[Real]) {
        self.current = margins.to_vec();
        self.recorder.on_physics_step(scene, truth, margins);
    }
    fn on_finish(&mut self, scene: &dyn World, result: &EpisodeResult) {
        self.per_step.push(self.current.clone());
        self.recorder.on_finish(scene, result);
    }
}

#[test]
fn a_recorded_reach_episode_reads_back() {
    let bin = rerun_bin();
    let dir = std::env::temp_dir().join(format!("telic-record-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let rrd = dir.join("reach.rrd");
    let mut scenario = Scenario::load("reach").unwrap();
    scenario.model = ModelChoice::Analytic;
    scenario.episode.max_time = 2.0;
    let options = RecordOptions { rollouts: 4 };
    scenario.planner.keep_rollouts = options.rollouts;
    let mut recorder = Recorder::open(&Sink::File(rrd.clone()), options).unwrap();
    let mut tee = Tee {
        recorder: &mut recorder,
        names: Vec::new(),
        current: Vec::new(),
        per_step: Vec::new(),
    };
    let results = run_observed(&scenario, 1, 3, &mut tee, &|_| {}).unwrap();
    let (names, per_step) = (tee.names.clone(), tee.per_step.clone());
    recorder.finish().unwrap();
    let steps = results[0].control_steps;
    assert!(steps > 3, "{:?}", results[0]);

    let verify = Command::new(&bin)
        .args(["rrd", "verify"])
        .arg(&rrd)
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "rerun rrd verify: {}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );

    let text = print_rrd(&bin, &rrd);
    let table = rows_by_entity(&text);
    for entity in [
        "/world/scene/goal",
        "/world/robot/link2",
        "/world/plan/tool",
        "/world/rollouts",
        "/world/executed/tool",
        "/costs/total",
        "/costs/goal",
        "/plan/latency_ms",
        "/plan/worst_margin",
        "/log",
    ] {
        assert!(
            table.contains_key(entity),
            "no entity {entity} in the recording; it has {:?}",
            table.keys().collect::<Vec<_>>()
        );
    }
    for g in &names {
        let entity = format!("/margins/{g}");
        assert!(table.contains_key(&entity), "no {entity}");
    }
    // One plan and one set of rollouts per control step.
    assert_eq!(table["/world/plan/tool"].len(), steps, "plan entries");
    assert_eq!(table["/world/rollouts"].len(), steps, "rollout entries");
    // The margin series: the validator's values at every step and at the end.
    for (k, g) in names.iter().enumerate() {
        let recorded = &table[&format!("/margins/{g}")];
        let expected: Vec<Real> = per_step.iter().map(|m| m[k]).collect();
        assert_eq!(recorded.len(), expected.len(), "{g}: entries");
        for (step, (r, e)) in recorded.iter().zip(&expected).enumerate() {
            let r: Real = r.1.parse().unwrap_or(Real::NAN);
            assert!(
                (r - e).abs() <= 1e-9 * e.abs().max(1.0),
                "{g} at step {step}: recorded {r}, validator {e}"
            );
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_unwritable_path_or_absent_viewer_is_a_clear_error() {
    let e = Recorder::open(
        &Sink::File(PathBuf::from("/nonexistent-dir/telic/out.rrd")),
        RecordOptions::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("/nonexistent-dir/telic/out.rrd"), "{e}");
    // Nothing listens on port 9 (discard) here.
    let e = Recorder::open(
        &Sink::Connect(Some("rerun+http://127.0.0.1:9/proxy".into())),
        RecordOptions::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("no viewer answers"), "{e}");
}

/// Rows of every entity in `rerun rrd print -vvv` output, in step order:
/// `(step, last data cell)` (for a scalar series, its value).
fn rows_by_entity(text: &str) -> std::collections::BTreeMap<String, Vec<(i64, String)>> {
    let mut out: std::collections::BTreeMap<String, Vec<(i64, String)>> = Default::default();
    let mut entity: Option<String> = None;
    let mut step_col: Option<usize> = None;
    let cells = |line: &str| -> Vec<String> {
        line.trim_matches(|c: char| c == '│' || c.is_whitespace())
            .split('┆')
            .map(|c| {
                c.trim_matches(|c: char| c == '│' || c.is_whitespace())
                    .to_string()
            })
            .collect()
    };
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("Chunk(") {
            // "Chunk(id) with N rows (size) - /entity/path - data columns: …"
            entity = rest.split(" - ").nth(1).map(|e| e.trim().to_string());
            step_col = None;
        } else if line.contains("RowId") {
            step_col = cells(line).iter().position(|c| c == "step");
        } else if line.trim_start_matches(['│', ' ']).starts_with("row_") {
            let (Some(e), Some(k)) = (&entity, step_col) else {
                continue;
            };
            let c = cells(line);
            let Some(step) = c.get(k).and_then(|s| s.parse::<i64>().ok()) else {
                continue;
            };
            let last = c
                .last()
                .map(|s| s.trim_matches(['[', ']']).to_string())
                .unwrap_or_default();
            out.entry(e.clone()).or_default().push((step, last));
        }
    }
    for rows in out.values_mut() {
        rows.sort_by_key(|r| r.0);
    }
    out
}
