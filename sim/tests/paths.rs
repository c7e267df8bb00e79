//! The program finds scenarios and models of the checkout it runs in, not
//! only of the one it was built from (two checkouts can share one binary
//! through a shared `CARGO_TARGET_DIR`).

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
