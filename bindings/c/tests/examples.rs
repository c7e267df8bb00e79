//! The C and C++ examples (`examples/c/`), compiled with the system's `cc`
//! and `c++` against the header and the library this crate builds, run:
//! their actions are the Rust planner's bit for bit, and valgrind finds no
//! error and no leak in them.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use telic::model::Unicycle;
use telic_sim::scenario::PlanningSections;

/// The repository's root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn settings_path() -> PathBuf {
    root().join("examples/c/navigate.toml")
}

/// The folder holding `libtelic_c.so` and `libtelic_c.a`: the profile folder
/// of the target directory, two above this test's executable (`deps/`).
fn lib_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(Path::parent).unwrap().to_path_buf();
    assert!(
        dir.join("libtelic_c.so").is_file(),
        "no libtelic_c.so in {}",
        dir.display()
    );
    dir
}

fn out_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("telic-c-examples");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs `cmd`, failing the test with its output when it fails.
fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The two example programs, linked against the shared library (compiled
/// once per test run).
struct Programs {
    c: PathBuf,
    cpp: PathBuf,
}

fn programs() -> &'static Programs {
    static PROGRAMS: OnceLock<Programs> = OnceLock::new();
    PROGRAMS.get_or_init(|| {
        let (lib, out, root) = (lib_dir(), out_dir(), root());
        let include = Path::new(env!("CARGO_MANIFEST_DIR")).join("include");
        let link = |cmd: &mut Command| {
            cmd.arg("-I")
                .arg(&include)
                .arg("-L")
                .arg(&lib)
                .arg("-ltelic_c")
                .arg(format!("-Wl,-rpath,{}", lib.display()))
                .arg("-lm");
        };
        let c = out.join("navigate");
        let mut cc = Command::new("cc");
        cc.args([
            "-std=c11",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-pedantic",
            "-g",
            "-O1",
        ])
        .arg(root.join("examples/c/navigate.c"))
        .arg("-o")
        .arg(&c);
        link(&mut cc);
        run(&mut cc);
        let cpp = out.join("navigate_node");
        let mut cxx = Command::new("c++");
        cxx.args(["-std=c++17", "-Wall", "-Wextra", "-Werror", "-g", "-O1"])
            .arg(root.join("examples/c/navigate_node.cpp"))
            .arg("-o")
            .arg(&cpp);
        link(&mut cxx);
        run(&mut cxx);
        Programs { c, cpp }
    })
}

/// Each planning step the C example printed: the observation and the plan.
fn parse_trace(stdout: &str) -> Vec<(Vec<f64>, Vec<f64>)> {
    let numbers = |line: &str, tag: &str| -> Option<Vec<f64>> {
        let rest = line.strip_prefix(tag)?.strip_prefix(' ')?;
        Some(rest.split(' ').map(|x| x.parse().unwrap()).collect())
    };
    let mut steps = Vec::new();
    let mut obs = None;
    for line in stdout.lines() {
        if let Some(o) = numbers(line, "obs") {
            obs = Some(o);
        } else if let Some(a) = numbers(line, "actions") {
            steps.push((obs.take().expect("an obs line before each plan"), a));
        }
    }
    steps
}

#[test]
fn the_c_examples_actions_are_bit_identical_to_the_rust_planners() {
    let out = run(Command::new(&programs().c)
        .arg(settings_path())
        .arg("--trace")
        .current_dir(root()));
    let steps = parse_trace(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(steps.len(), 30, "the example plans 30 steps");

    // The same problem in Rust: model, sections of the same file, seed, goal.
    let model = Unicycle::new(0.1, 1.0, 2.0, 0.2).unwrap();
    let text = std::fs::read_to_string(settings_path()).unwrap();
    let sections = PlanningSections::from_toml(&text, "navigate.toml", &root()).unwrap();
    let objective = sections
        .objective
        .compile(telic::WorldModel::spec(&model))
        .unwrap();
    let mut planner = telic::build(model, objective, sections.planner).unwrap();
    planner
        .objective_mut()
        .set_target("goal", &[4.0, 0.0])
        .unwrap();

    let mut moved = false;
    for (t, (obs, c_actions)) in steps.iter().enumerate() {
        let plan = planner.plan(obs).unwrap();
        assert_eq!(plan.actions.len(), c_actions.len(), "step {t}");
        for (i, (r, c)) in plan.actions.iter().zip(c_actions).enumerate() {
            assert_eq!(
                r.to_bits(),
                c.to_bits(),
                "step {t}, value {i}: Rust {r:e}, C {c:e}"
            );
        }
        moved |= obs[0] > 0.5;
    }
    assert!(moved, "the robot made progress towards the goal");
}

#[test]
fn the_cpp_example_runs_its_controller_loop() {
    let out = run(Command::new(&programs().cpp)
        .arg(settings_path())
        .current_dir(root()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("refused as expected: model: parameters of analytic model 'unicycle'"),
        "{stdout}"
    );
    assert!(stdout.contains("node: "), "{stdout}");
}

#[test]
fn the_c_example_links_against_the_static_library_too() {
    let (lib, out) = (lib_dir(), out_dir());
    let exe = out.join("navigate_static");
    run(Command::new("cc")
        .args(["-std=c11", "-O1", "-I"])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("include"))
        .arg(root().join("examples/c/navigate.c"))
        .arg(lib.join("libtelic_c.a"))
        .args([
            "-lgcc_s",
            "-lutil",
            "-lrt",
            "-lpthread",
            "-lm",
            "-ldl",
            "-lc",
        ])
        .arg("-o")
        .arg(&exe));
    let ran = run(Command::new(&exe).arg(settings_path()).current_dir(root()));
    assert!(String::from_utf8_lossy(&ran.stdout).contains("controller: "));
}

/// Runs `program` under valgrind's memcheck: any error or leak fails.
fn memcheck(program: &Path) {
    let valgrind = Command::new("valgrind").arg("--version").output();
    assert!(
        valgrind.is_ok_and(|o| o.status.success()),
        "valgrind is required by this test and was not found: install it \
         (Debian/Ubuntu: apt-get install -y valgrind; scripts/test does)"
    );
    let out = run(Command::new("valgrind")
        .args([
            "--error-exitcode=1",
            "--leak-check=full",
            "--show-leak-kinds=definite,indirect,possible",
            "--errors-for-leak-kinds=definite,indirect,possible",
            "--track-origins=yes",
        ])
        .arg(program)
        .arg(settings_path())
        .current_dir(root()));
    let report = String::from_utf8_lossy(&out.stderr);
    assert!(
        report.contains("ERROR SUMMARY: 0 errors"),
        "{}:\n{report}",
        program.display()
    );
}

#[test]
fn the_c_example_is_clean_under_valgrind() {
    memcheck(&programs().c);
}

#[test]
fn the_cpp_example_is_clean_under_valgrind() {
    memcheck(&programs().cpp);
}
