//! `telic inspect` on a bundle of format version 2, whose encoder sees a
//! camera image: it shows the image and checks the graphs against the flat
//! observations (pixels, then vector entries) of `reference.json`.
//!
//! Needs ONNX Runtime (`python3 -m pip install onnxruntime==1.31.1`).

#![cfg(feature = "onnx")]
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may unwrap

use std::path::{Path, PathBuf};
use std::process::Command;

fn pixels_v2() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/pixels_v2")
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
fn inspect_checks_a_bundle_that_sees_an_image() {
    let (ok, text) = inspect(&pixels_v2());
    assert!(ok, "{text}");
    for line in [
        "name         pixels_v2 (format 2)",
        "image        3×16×16 uint8 rgb, layout chw",
        "observations 2 [vel.x, vel.y]",
        "reference    3 rows",
        "parity       ok",
    ] {
        assert!(text.contains(line), "{line}: {text}");
    }
    // A reference whose latents the graphs do not give fails.
    let dir = std::env::temp_dir().join(format!("telic-inspect-v2-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for entry in std::fs::read_dir(pixels_v2()).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
    }
    let text = std::fs::read_to_string(dir.join("reference.json")).unwrap();
    let mut r: serde_json::Value = serde_json::from_str(&text).unwrap();
    let z0 = r["z"][0].as_f64().unwrap();
    r["z"][0] = serde_json::json!(z0 + 0.01);
    std::fs::write(dir.join("reference.json"), r.to_string()).unwrap();
    let (ok, text) = inspect(&dir);
    assert!(!ok && text.contains("differ from its reference"), "{text}");
    std::fs::remove_dir_all(&dir).unwrap();
}
