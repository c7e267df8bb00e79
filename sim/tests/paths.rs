//! The program finds scenarios and models of the checkout it runs in, not
//! only of the one it was built from (two checkouts can share one binary
//! through a shared `CARGO_TARGET_DIR`), and resolves the paths a scenario
//! file names against the file's folder.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may unwrap

use std::process::Command;

fn scenes(cwd: &std::path::Path, home: Option<&std::path::Path>) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_telic"));
    cmd.arg("scenes").current_dir(cwd).env_remove("TELIC_HOME");
    if let Some(h) = home {
        cmd.env("TELIC_HOME", h);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn scenarios_come_from_the_checkout_the_program_runs_in() {
    let root = std::env::temp_dir().join(format!("telic-paths-{}", std::process::id()));
    let scenarios = root.join("sim/scenarios");
    std::fs::create_dir_all(&scenarios).unwrap();
    std::fs::create_dir_all(root.join("models")).unwrap();
    std::fs::write(scenarios.join("only_here.toml"), "").unwrap();
    let nested = root.join("some/sub/folder");
    std::fs::create_dir_all(&nested).unwrap();
    // Inside the other checkout (at any depth): its scenarios.
    let listed = scenes(&nested, None);
    assert!(
        listed.contains("only_here") && !listed.contains("reach"),
        "{listed}"
    );
    // Elsewhere, TELIC_HOME names it.
    let listed = scenes(std::path::Path::new("/"), Some(&root));
    assert!(listed.contains("only_here"), "{listed}");
    // Elsewhere without it: the checkout the program was built from.
    let listed = scenes(std::path::Path::new("/"), None);
    assert!(
        listed.contains("reach") && !listed.contains("only_here"),
        "{listed}"
    );
    std::fs::remove_dir_all(&root).unwrap();
}

/// The paths a scenario file names — its robot's URDF, its model bundle —
/// are the file's own folder's, whatever the current folder and wherever
/// the shipped scenes are found: a scene copied elsewhere with what it
/// names beside it runs from anywhere.
#[cfg(feature = "onnx")]
#[test]
fn a_scenario_names_paths_relative_to_its_own_folder() {
    let checkout = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let root = std::env::temp_dir().join(format!("telic-own-paths-{}", std::process::id()));
    let own = root.join("mine");
    std::fs::create_dir_all(own.join("robot")).unwrap();
    std::fs::create_dir_all(own.join("bundle")).unwrap();
    std::fs::copy(
        checkout.join("sim/assets/arm3.urdf"),
        own.join("robot/arm.urdf"),
    )
    .unwrap();
    for entry in std::fs::read_dir(checkout.join("models/reach")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, own.join("bundle").join(path.file_name().unwrap())).unwrap();
    }
    let shipped = std::fs::read_to_string(checkout.join("sim/scenarios/reach.toml")).unwrap();
    let named = shipped
        .replace(
            "# urdf = \"../assets/arm3.urdf\"",
            "urdf = \"robot/arm.urdf\"",
        )
        .replace("max_time = 10.0", "max_time = 0.5");
    assert!(named.contains("urdf = \"robot/arm.urdf\"") && named.contains("max_time = 0.5"));
    std::fs::write(
        own.join("scene.toml"),
        format!("model = \"bundle\"\n{named}"),
    )
    .unwrap();
    let json = root.join("out.json");
    let out = Command::new(env!("CARGO_BIN_EXE_telic"))
        .args(["run", own.join("scene.toml").to_str().unwrap()])
        .args([
            "--episodes",
            "1",
            "--samples",
            "32",
            "--horizon",
            "5",
            "--quiet",
            "--json",
        ])
        .arg(&json)
        .current_dir("/")
        .env_remove("TELIC_HOME")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(
        doc["model"].as_str(),
        Some(own.join("bundle").to_str().unwrap()),
        "{doc}"
    );
    assert_eq!(doc["episodes"].as_array().map(Vec::len), Some(1));
    // Without the robot beside it, the scene does not run (the URDF is not
    // looked for anywhere else).
    std::fs::remove_file(own.join("robot/arm.urdf")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_telic"))
        .args(["run", own.join("scene.toml").to_str().unwrap()])
        .args(["--episodes", "1", "--quiet"])
        .current_dir("/")
        .env_remove("TELIC_HOME")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("arm.urdf"),
        "{stderr}"
    );
    std::fs::remove_dir_all(&root).unwrap();
}
