//! The committed header, `include/telic.h`, is what cbindgen generates from
//! the crate today: it never drifts from the functions it declares.
//!
//! cbindgen is the program (`cargo install --locked cbindgen@0.29.4`, which
//! scripts/test runs), not the crate: as a dev-dependency it turns on features of
//! crates the rerun SDK builds on, and tests and programs would then build
//! rerun twice, with two feature sets.
//!
//! `TELIC_BLESS_HEADER=1 cargo test -p telic-c --test header` rewrites it.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

use std::path::Path;
use std::process::Command;

fn generate() -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("cbindgen")
        .arg("--config")
        .arg(dir.join("cbindgen.toml"))
        .arg("--lang")
        .arg("c")
        .arg(dir.join("src/lib.rs"))
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cbindgen did not run ({e}): install it (cargo install --locked cbindgen@0.29.4)"
            )
        });
    assert!(
        out.status.success(),
        "cbindgen failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_committed_header_is_the_generated_one() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("include/telic.h");
    let fresh = generate();
    if std::env::var_os("TELIC_BLESS_HEADER").is_some() {
        std::fs::write(&path, &fresh).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == fresh,
        "{} differs from what cbindgen generates from the crate; regenerate it with \
         `TELIC_BLESS_HEADER=1 cargo test -p telic-c --test header` and commit it",
        path.display()
    );
}

#[test]
fn the_header_declares_every_exported_function() {
    let header = generate();
    let lib = [
        "src/lib.rs",
        "src/error.rs",
        "src/model.rs",
        "src/planner.rs",
        "src/controller.rs",
    ]
    .iter()
    .map(|f| std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(f)).unwrap())
    .collect::<String>();
    let exported: Vec<&str> = lib
        .split("extern \"C\" fn ")
        .skip(1)
        .filter_map(|rest| rest.split('(').next())
        .collect();
    assert!(exported.len() >= 20, "{exported:?}");
    for name in exported {
        assert!(
            header.contains(&format!("{name}(")),
            "{name} is not in the header"
        );
    }
}
