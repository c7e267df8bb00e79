//! Hostile input: every parser and loader of files a user hands Telic is
//! fed mutated copies of valid files, and must answer each with a value or
//! an error, never a panic (or an abort, which would end this process).
//!
//! A small deterministic mutational fuzzer on the stable toolchain: each
//! case starts from one of a target's valid seed files and applies 1–4
//! mutations (bit flips, bytes and tokens that parsers get wrong — huge,
//! negative and non-finite numbers, brackets, quotes —, deleted, repeated
//! and spliced ranges, truncation). Case `i` of a target depends only on
//! the target and `i`, so a failure names the case that reproduces it; its
//! input is kept in the system's temporary folder.
//!
//! `TELIC_FUZZ_CASES` sets the cases per target (default 600: a few
//! seconds in CI; ONNX graphs take a tenth of them, each a session build).
//! `scripts/fuzz` runs a long campaign.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use telic::model::bundle::Manifest;
use telic::model::{OnnxModel, SerialArm, WorldModel};
use telic::rng::Rng;
use telic_sim::scenario::{Scenario, scenario_dir};
use telic_tests::{Scratch, fixture, onnx_runtime};

/// Cases per target.
fn cases() -> usize {
    std::env::var("TELIC_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(600)
}

/// Tokens that parsers get wrong.
const TOKENS: &[&str] = &[
    "1e308",
    "-1e308",
    "1e-320",
    "-1",
    "0",
    "-0.0",
    "nan",
    "inf",
    "-inf",
    "NaN",
    "18446744073709551616",
    "9223372036854775807",
    "-9223372036854775808",
    "4294967296",
    "\"",
    "'",
    "[",
    "]",
    "[[",
    "]]",
    "{",
    "}",
    "=",
    ",",
    "\n",
    "<",
    ">",
    "/>",
    "</",
    "&",
    "true",
    "[]",
    "{}",
    "\"\"",
    "#",
    "\\",
    "\u{0}",
    "é",
    "\u{202e}",
];

/// Mutates a copy of one of `seeds` into a case.
fn mutate(rng: &mut Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut b = seeds[rng.below(seeds.len())].clone();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(b.len() + 1);
        match rng.below(8) {
            0 if at < b.len() => b[at] ^= 1 << rng.below(8),
            1 if at < b.len() => {
                b[at] = [0, 0xff, 0x7f, 0x80, b'9', b'-', b'.', b'e'][rng.below(8)]
            }
            2 => {
                let end = (at + 1 + rng.below(32)).min(b.len());
                b.drain(at.min(end)..end);
            }
            3 => {
                let end = (at + 1 + rng.below(64)).min(b.len());
                let piece = b[at.min(end)..end].to_vec();
                b.splice(
                    at..at,
                    piece
                        .iter()
                        .copied()
                        .cycle()
                        .take(piece.len() * (1 + rng.below(4))),
                );
            }
            4 => {
                let t = TOKENS[rng.below(TOKENS.len())].as_bytes();
                b.splice(at..at, t.iter().copied());
            }
            5 => b.truncate(at),
            6 => {
                // A range of another seed (or this one) spliced in.
                let other = &seeds[rng.below(seeds.len())];
                let from = rng.below(other.len().max(1));
                let end = (from + 1 + rng.below(128)).min(other.len());
                b.splice(at..at, other[from.min(end)..end].iter().copied());
            }
            _ => {
                // A run of digits replaced by a token.
                if let Some(start) = (at..b.len()).find(|&i| b[i].is_ascii_digit()) {
                    let end = (start..b.len())
                        .find(|&i| !b[i].is_ascii_digit() && b[i] != b'.')
                        .unwrap_or(b.len());
                    let t = TOKENS[rng.below(12)].as_bytes();
                    b.splice(start..end, t.iter().copied());
                }
            }
        }
    }
    b
}

/// Feeds `cases` mutated cases of `seeds` to `target`; fails naming every
/// case that panicked (its input kept in the temporary folder).
fn fuzz(name: &str, seeds: &[Vec<u8>], cases: usize, mut target: impl FnMut(&[u8])) {
    assert!(seeds.iter().all(|s| !s.is_empty()), "{name}: empty seed");
    let mut panics = Vec::new();
    for i in 0..cases {
        let mut rng = Rng::stream(0xF022 ^ name.len() as u64, i);
        let input = mutate(&mut rng, seeds);
        if catch_unwind(AssertUnwindSafe(|| target(&input))).is_err() {
            let kept = std::env::temp_dir().join(format!("telic-fuzz-{name}-{i}.bin"));
            std::fs::write(&kept, &input).unwrap();
            panics.push(format!("case {i} ({})", kept.display()));
        }
    }
    eprintln!("fuzz {name}: {cases} inputs, {} panics", panics.len());
    assert!(
        panics.is_empty(),
        "{name}: panicked on {}",
        panics.join(", ")
    );
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn models_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../models")
}

#[test]
fn scenario_files() {
    let seeds: Vec<Vec<u8>> = ["reach", "navigate", "push", "push_pixels", "reach_realtime"]
        .iter()
        .map(|n| read(&scenario_dir().join(format!("{n}.toml"))))
        .collect();
    fuzz("scenario", &seeds, cases(), |b| {
        if let Ok(s) = Scenario::from_toml(&text(b), "fuzz", &scenario_dir()) {
            // A scenario that parses builds its scene or says why not.
            let _ = s.scene.build(&s.base_dir);
        }
    });
}

#[test]
fn bundle_manifests() {
    let seeds: Vec<Vec<u8>> = ["reach", "navigate", "push", "push_pixels", "pendulum_mlp"]
        .iter()
        .map(|n| read(&models_dir().join(n).join("manifest.toml")))
        .collect();
    fuzz("manifest", &seeds, cases(), |b| {
        let _ = Manifest::from_toml(&text(b));
    });
}

#[test]
fn urdf_files() {
    let urdf = scenario_dir().join("../assets/arm3.urdf");
    let seeds = vec![read(&urdf)];
    let dir = std::env::temp_dir().join(format!("telic-fuzz-urdf-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("arm.urdf");
    let scenario = format!("[scene]\nkind = \"reach\"\nurdf = \"{}\"\n", file.display());
    let scenario = Scenario::from_toml(&scenario, "fuzz", &dir).unwrap();
    fuzz("urdf", &seeds, cases(), |b| {
        let _ = SerialArm::from_urdf_str(&text(b), "tool", 0.05, Some(1.2), 0.1);
        // The scene loads it with rapier's URDF loader too, and steps it.
        std::fs::write(&file, b).unwrap();
        if let Ok(mut world) = scenario.scene.build(&scenario.base_dir)
            && world.reset(1).is_ok()
        {
            world.apply(&[1.0, -1.0, 1.0]);
            for _ in 0..3 {
                world.step();
            }
        }
    });
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn npy_headers() {
    use telic_sim::collect::npy::{Dtype, encode_header, f32_bytes, read_header};
    // Files as `telic collect` writes them: a header, then the data.
    let seeds: Vec<Vec<u8>> = [vec![3, 2], vec![5], vec![2, 3, 64, 64]]
        .iter()
        .map(|shape| {
            let mut file = encode_header(Dtype::F32, shape);
            file.extend(f32_bytes(&[1.5; 6]));
            file
        })
        .collect();
    fuzz("npy", &seeds, cases(), |b| {
        if let Ok((header, start)) = read_header(b) {
            let _ = (header.len(), b.get(start..));
        }
    });
}

#[test]
fn onnx_graphs() {
    onnx_runtime();
    let bundle = fixture("pixels_v2");
    let scratch = Scratch::of(&bundle, "fuzz-onnx");
    let seeds: Vec<Vec<u8>> = ["encode.onnx", "predict.onnx", "readout.onnx"]
        .iter()
        .map(|f| read(&bundle.join(f)))
        .collect();
    fuzz("onnx", &seeds, cases().div_ceil(10), |b| {
        // Replace one graph of the bundle with the case (chosen by the
        // case alone, so that a case reproduces by its index).
        let victim = ["encode.onnx", "predict.onnx", "readout.onnx"][b.len() % 3];
        for f in ["encode.onnx", "predict.onnx", "readout.onnx"] {
            std::fs::copy(bundle.join(f), scratch.0.join(f)).unwrap();
        }
        std::fs::write(scratch.0.join(victim), b).unwrap();
        if let Ok(mut model) = OnnxModel::load(&scratch.0) {
            let spec = model.spec().clone();
            let obs = vec![0.0; spec.obs_dim()];
            let mut z = vec![0.0; spec.latent_dim];
            let _ = model.encode(&obs, &mut z);
        }
    });
}
