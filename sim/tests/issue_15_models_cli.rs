//! Issue 15, on the `telic` program: `inspect` fails on a bundle whose graphs
//! return NaN (a NaN difference used to vanish from the parity check), and
//! `run` says why the robot fell back when a model predicts NaN.
//!
//! These tests need ONNX Runtime (`python3 -m pip install onnxruntime==1.31.1`).

#![cfg(feature = "onnx")]
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may unwrap

use std::path::{Path, PathBuf};
use std::process::Command;
use telic::WorldModel;
use telic::model::OnnxModel;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn fixture(name: &str) -> PathBuf {
    root().join("tests").join("fixtures").join(name)
}

/// A scratch copy of a bundle folder, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn of(bundle: &Path, test: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("telic-i15cli-{}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for entry in std::fs::read_dir(bundle).unwrap() {
            let path = entry.unwrap().path();
            if path.is_file() {
                std::fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
            }
        }
        Scratch(dir)
    }
    fn nan(&self, graph: &str) {
        std::fs::copy(fixture("nan_graphs").join(graph), self.0.join(graph)).unwrap();
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Writes `reference.json` into the 2D point-mass bundle `dir`: its own
/// graphs' outputs on three rows.
fn write_reference(dir: &Path) {
    telic_sim::onnx_runtime::locate().unwrap();
    let mut model = OnnxModel::load(dir).unwrap();
    let obs = [
        0.1, 0.2, 0.3, 0.4, -0.5, 0.6, -0.7, 0.8, 1.0, -1.0, 0.0, 0.5,
    ];
    let u = [0.5, -0.5, 1.0, 0.0, -1.0, 0.25];
    let (mut z, mut z_next, mut y) = (vec![0.0; 12], vec![0.0; 12], vec![0.0; 15]);
    model.encode(&obs, &mut z).unwrap();
    model.predict(&z, &u, &mut z_next).unwrap();
    model.readout(&z, &mut y).unwrap();
    let doc = serde_json::json!({"obs": obs, "u": u, "z": z, "z_next": z_next, "y": y});
    std::fs::write(dir.join("reference.json"), doc.to_string()).unwrap();
}

fn inspect(dir: &Path) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_telic"))
        .arg("inspect")
        .arg(dir)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[test]
fn inspect_fails_on_a_graph_that_returns_nan() {
    let good = Scratch::of(&fixture("point_mass_2d"), "inspect_good");
    write_reference(&good.0);
    let (ok, text) = inspect(&good.0);
    assert!(ok && text.contains("parity       ok"), "{text}");
    for graph in ["encode.onnx", "predict.onnx", "readout.onnx"] {
        let b = Scratch::of(&good.0, "inspect_nan");
        b.nan(graph);
        let (ok, text) = inspect(&b.0);
        assert!(!ok, "{graph}: inspect passed: {text}");
        assert!(
            text.contains(graph)
                && text.contains("NaN")
                && text.contains(&b.0.display().to_string()),
            "{graph}: {text}"
        );
        assert!(!text.contains("parity       ok"), "{graph}: {text}");
    }
}

#[test]
fn run_says_why_a_model_predicting_nan_fell_back() {
    let b = Scratch::of(&root().join("models").join("navigate"), "run_nan");
    b.nan("predict.onnx");
    let scenario = b.0.join("short.toml");
    let text = std::fs::read_to_string(root().join("sim/scenarios/navigate.toml"))
        .unwrap()
        .replace("max_time = 25.0", "max_time = 0.5")
        .replace("samples = 256", "samples = 32");
    std::fs::write(&scenario, text).unwrap();
    let json = b.0.join("out.json");
    let out = Command::new(env!("CARGO_BIN_EXE_telic"))
        .arg("run")
        .arg(&scenario)
        .args(["--episodes", "1", "--jobs", "1", "--quiet", "--model"])
        .arg(&b.0)
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout
        .lines()
        .find(|l| l.contains("fallback reasons"))
        .unwrap_or_else(|| panic!("no fallback reasons in:\n{stdout}"));
    assert!(line.contains("predicted readouts not finite"), "{line}");
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let reasons = &doc["summary"]["fallback_reasons"];
    let steps = doc["summary"]["fallback_steps"].as_u64().unwrap();
    assert!(steps > 0, "{doc}");
    assert_eq!(reasons[0][1].as_u64(), Some(steps), "{reasons}");
    assert!(
        reasons[0][0]
            .as_str()
            .unwrap()
            .contains("predicted readouts not finite"),
        "{reasons}"
    );
}
