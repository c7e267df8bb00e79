//! End-to-end tests across crates live in `tests/tests/`; this library holds
//! the fixtures they share.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test fixtures may unwrap

use std::path::{Path, PathBuf};
use telic::model::OnnxModel;

/// The workspace's root folder.
#[must_use]
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A file or bundle of `tests/fixtures/` (written by
/// `scripts/make_test_bundles.py`).
#[must_use]
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

/// Hands the engine the ONNX Runtime library (`ORT_DYLIB_PATH`, else the
/// one in the `onnxruntime` wheel), as the `telic` program does before it
/// loads a bundle. A test that loads bundles calls it first; without ONNX
/// Runtime it fails with the instruction to install it.
pub fn onnx_runtime() {
    if let Err(e) = telic_sim::onnx_runtime::locate() {
        panic!("{e}");
    }
}

/// The error loading the bundle `dir` gives; it must fail.
#[must_use]
pub fn load_err(dir: &Path) -> String {
    onnx_runtime();
    match OnnxModel::load(dir) {
        Ok(_) => panic!("{} loaded but is broken", dir.display()),
        Err(e) => e.to_string(),
    }
}

/// The `rerun` program: `$RERUN_BIN`, or `rerun` on the PATH.
#[must_use]
pub fn rerun_bin() -> PathBuf {
    let bin = std::env::var_os("RERUN_BIN").map_or_else(|| PathBuf::from("rerun"), PathBuf::from);
    let ok = std::process::Command::new(&bin)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "the `rerun` program is needed to check recordings: python3 -m pip install rerun-sdk==0.36.3 (scripts/test does)"
    );
    bin
}

/// What `rerun rrd print -vvv` prints of the recording `rrd`, run by the
/// `rerun` program `bin` ([`rerun_bin`]); it must succeed.
#[must_use]
pub fn print_rrd(bin: &Path, rrd: &Path) -> String {
    let out = std::process::Command::new(bin)
        .args(["rrd", "print", "-vvv"])
        .arg(rrd)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A scratch copy of a bundle folder (its files), removed on drop.
#[derive(Debug)]
pub struct Scratch(pub PathBuf);

impl Scratch {
    /// Copies the files of `bundle` into a fresh folder named after `test`.
    #[must_use]
    pub fn of(bundle: &Path, test: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("telic-scratch-{}-{test}", std::process::id()));
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

    /// The path of the copy's file `name`.
    #[must_use]
    pub fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// Replaces `graph` by the graph of the same name that returns NaN.
    pub fn nan(&self, graph: &str) {
        std::fs::copy(fixture("nan_graphs").join(graph), self.file(graph)).unwrap();
    }

    /// Replaces the first `old` of the copy's `manifest.toml` by `new`
    /// (`old` must be there).
    pub fn edit_manifest(&self, old: &str, new: &str) {
        let path = self.file("manifest.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(old), "{old}");
        std::fs::write(path, text.replacen(old, new, 1)).unwrap();
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
