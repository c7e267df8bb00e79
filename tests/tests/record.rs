//! Recordings: `reach` and `push` episodes recorded to .rrd files, then
//! checked headlessly with the rerun command-line tool from the `rerun-sdk`
//! wheel (`rerun rrd verify`, `rerun rrd print`): the expected entities
//! exist, the plan and the rollouts have an entry per control step, the
//! recorded guardrail margins are the validator's values, the camera image
//! has the configured size, and what the model decoded is recorded beside
//! the truth.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may unwrap

use std::path::PathBuf;
use std::process::Command;
use telic::{ModelSpec, ObjectiveSpec, Plan, Real};
use telic_sim::World;
use telic_sim::episode::{EpisodeObserver, EpisodeResult, Validator, run_observed};
use telic_sim::record::{RecordOptions, Recorder, Sink};
use telic_sim::scenario::{ModelChoice, Scenario};
use telic_sim::scene::camera::ImageSize;
use telic_tests::{print_rrd, rerun_bin};

/// Forwards everything to the recorder and keeps the margins it was given
/// at each plan and at the end, and the decoded and true readouts at each
/// plan: what the recording must hold.
struct Tee<'a> {
    recorder: &'a mut Recorder,
    names: Vec<String>,
    current: Vec<Real>,
    per_step: Vec<Vec<Real>>,
    truth: Vec<Real>,
    truth_names: Vec<String>,
    /// Per plan: the model's decoded readouts and the true readouts.
    decoded: Vec<Vec<Real>>,
    true_values: Vec<Vec<Real>>,
    model: Option<ModelSpec>,
}

impl<'a> Tee<'a> {
    fn new(recorder: &'a mut Recorder) -> Self {
        Self {
            recorder,
            names: Vec::new(),
            current: Vec::new(),
            per_step: Vec::new(),
            truth: Vec::new(),
            truth_names: Vec::new(),
            decoded: Vec::new(),
            true_values: Vec::new(),
            model: None,
        }
    }
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
        self.truth = v.truth().to_vec();
        self.truth_names = scene.truth_readouts().to_vec();
        self.model = Some(model.clone());
        self.recorder.on_start(scene, spec, model, v);
    }
    fn on_plan(&mut self, scene: &dyn World, obs: &[Real], plan: &Plan, step: usize) {
        self.per_step.push(self.current.clone());
        self.decoded.push(plan.decoded.clone());
        self.true_values.push(self.truth.clone());
        self.recorder.on_plan(scene, obs, plan, step);
    }
    fn on_physics_step(&mut self, scene: &dyn World, truth: &[Real], margins: &[Real]) {
        self.current = margins.to_vec();
        self.truth = truth.to_vec();
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
    let options = RecordOptions {
        rollouts: 4,
        ..RecordOptions::default()
    };
    scenario.planner.keep_rollouts = options.rollouts;
    let mut recorder = Recorder::open(&Sink::File(rrd.clone()), options).unwrap();
    let mut tee = Tee::new(&mut recorder);
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
fn a_recorded_push_episode_shows_the_camera_and_what_the_model_believed() {
    telic_tests::onnx_runtime();
    let bin = rerun_bin();
    let dir = std::env::temp_dir().join(format!("telic-record-push-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let rrd = dir.join("push.rrd");
    let mut scenario = Scenario::load("push").unwrap();
    // The learned bundle: what it decodes differs a little from the truth.
    scenario.model = ModelChoice::Bundle(telic_tests::root().join("models").join("push"));
    scenario.episode.max_time = 0.8;
    scenario.planner.samples = 32;
    scenario.planner.iterations = 1;
    let options = RecordOptions {
        rollouts: 0,
        camera: ImageSize::new(40, 24),
    };
    let mut recorder = Recorder::open(&Sink::File(rrd.clone()), options).unwrap();
    let mut tee = Tee::new(&mut recorder);
    let results = run_observed(&scenario, 1, 5, &mut tee, &|_| {}).unwrap();
    let (decoded, true_values) = (tee.decoded.clone(), tee.true_values.clone());
    let (model, truth_names) = (tee.model.clone().unwrap(), tee.truth_names.clone());
    recorder.finish().unwrap();
    let steps = results[0].control_steps;
    assert!(steps >= 5 && decoded.len() == steps, "{:?}", results[0]);

    let text = print_rrd(&bin, &rrd);
    let table = rows_by_entity(&text);
    for entity in [
        "/camera/image",
        "/world/belief/box",
        "/world/belief/pusher",
        "/world/belief/shapes/box",
        "/world/truth/box",
        "/world/truth/pusher",
        "/belief/box.x",
        "/truth/box.x",
        "/belief/box.cos",
        "/truth/offset.y",
    ] {
        assert!(
            table.contains_key(entity),
            "no entity {entity} in the recording; it has {:?}",
            table.keys().collect::<Vec<_>>()
        );
    }
    // One image per plan and one at the end, each of the configured size.
    assert_eq!(table["/camera/image"].len(), steps + 1, "images");
    let formats = text.matches("width: 40, height: 24").count();
    assert!(formats >= 1, "no 40x24 image format in the recording");
    assert!(
        !text.contains("width: 64, height: 64"),
        "an image of the default size"
    );
    // The belief series is the model's decoded readout, the truth series
    // the scene's, at every plan; and they differ (a learned model).
    let m = model.readout_index("box.x").unwrap();
    let t = truth_names.iter().position(|n| n == "box.x").unwrap();
    let series = |entity: &str| -> Vec<Real> {
        table[entity]
            .iter()
            .map(|r| r.1.parse().unwrap_or(Real::NAN))
            .collect()
    };
    let (belief, truth) = (series("/belief/box.x"), series("/truth/box.x"));
    assert_eq!(belief.len(), steps, "one belief per plan");
    assert_eq!(truth.len(), steps + 1, "one truth per plan and at the end");
    let mut differ = false;
    for step in 0..steps {
        let (b, tv) = (decoded[step][m], true_values[step][t]);
        assert!(
            (belief[step] - b).abs() <= 1e-9,
            "belief at {step}: {} vs {b}",
            belief[step]
        );
        assert!(
            (truth[step] - tv).abs() <= 1e-9,
            "truth at {step}: {} vs {tv}",
            truth[step]
        );
        differ |= (b - tv).abs() > 1e-6;
    }
    assert!(
        differ,
        "belief equals truth at every step: is it the truth?"
    );
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
