//! `telic render` writes a PNG frame of a scene's camera, and refuses sizes
//! above the camera's limit with an error naming the key.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may unwrap

use std::process::Command;

fn telic(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_telic"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn render_writes_a_png_and_refuses_huge_sizes() {
    let dir = std::env::temp_dir().join(format!("telic_render_cli_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let png = dir.join("push.png");
    let out = telic(&[
        "render",
        "push",
        "--seed",
        "2",
        "--out",
        png.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("64x64 frame written"), "{stdout}");
    let bytes = std::fs::read(&png).unwrap();
    assert_eq!(&bytes[1..4], b"PNG");
    let out = telic(&[
        "render",
        "navigate",
        "--width",
        "5000",
        "--out",
        png.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("camera.width = 5000 is above its limit of 1024"),
        "{stderr}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
