//! `ARCHITECTURE.md` names the code it describes; this test keeps the two
//! together. Every backticked name in the document that looks like a place in
//! the tree must exist:
//!
//! - a file or folder path (`sim/src/episode/mod.rs`, `engine/src/planner/`);
//! - a Rust module path of a workspace crate (`telic::planner::rollout`,
//!   `telic_sim::episode`), whose last segment may be an item defined in that
//!   module (`telic_sim::episode::Episode`);
//! - a module of the Python package (`telic.train.trainer`).
//!
//! A renamed or moved module then fails here until the document follows.

use std::fs;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The backticked spans of a Markdown text, code blocks left out.
fn backticked(text: &str) -> Vec<String> {
    let mut spans = Vec::new();
    let mut in_block = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_block = !in_block;
            continue;
        }
        if in_block {
            continue;
        }
        let mut parts = line.split('`');
        parts.next();
        while let (Some(inside), Some(_)) = (parts.next(), parts.next()) {
            spans.push(inside.to_owned());
        }
    }
    spans
}

/// The source folder of a workspace crate, by the name code uses for it.
fn crate_src(name: &str) -> Option<&'static str> {
    match name {
        "telic" => Some("engine/src"),
        "telic_sim" => Some("sim/src"),
        "telic_py" => Some("bindings/src"),
        "telic_tests" => Some("tests/src"),
        _ => None,
    }
}

/// The file of module `segments` below `src`, if it exists.
fn module_file(src: &Path, segments: &[&str]) -> Option<PathBuf> {
    if segments.is_empty() {
        return [src.join("lib.rs"), src.join("main.rs")]
            .into_iter()
            .find(|p| p.is_file());
    }
    let base = segments.iter().fold(src.to_path_buf(), |p, s| p.join(s));
    [base.with_extension("rs"), base.join("mod.rs")]
        .into_iter()
        .find(|p| p.is_file())
}

/// Whether `file` (or, for a `mod.rs`/`lib.rs`, any file of its folder)
/// defines or re-exports an item called `item`.
fn defines(file: &Path, item: &str) -> bool {
    let mut files = vec![file.to_path_buf()];
    let is_folder_module = matches!(
        file.file_name().and_then(|n| n.to_str()),
        Some("mod.rs" | "lib.rs")
    );
    if is_folder_module && let Some(dir) = file.parent() {
        files.extend(
            fs::read_dir(dir)
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "rs")),
        );
    }
    let kinds = [
        "struct", "enum", "trait", "type", "fn", "const", "static", "mod",
    ];
    files.iter().any(|f| {
        let text = fs::read_to_string(f).unwrap_or_default();
        kinds.iter().any(|k| {
            text.contains(&format!("{k} {item}<"))
                || text.contains(&format!("{k} {item} "))
                || text.contains(&format!("{k} {item}("))
                || text.contains(&format!("{k} {item};"))
                || text.contains(&format!("{k} {item}:"))
        }) || reexports(&text, item)
    })
}

fn reexports(text: &str, item: &str) -> bool {
    text.lines()
        .filter(|l| l.trim_start().starts_with("pub use"))
        .any(|l| {
            l.split(|c: char| !(c.is_alphanumeric() || c == '_'))
                .any(|w| w == item)
        })
}

/// Why `span` names nothing in the tree, or `None` when it does (or is not a
/// name of a place at all).
fn missing(span: &str) -> Option<String> {
    let root = root();
    let looks_like_path = span.contains('/')
        && !span.contains(' ')
        && !span.contains("://")
        && (span.ends_with('/')
            || [".rs", ".py", ".md", ".toml", ".sh", ".pyi"]
                .iter()
                .any(|e| span.ends_with(e)));
    if looks_like_path {
        let path = span.split(':').next().unwrap_or(span);
        return (!root.join(path).exists()).then(|| format!("no file or folder `{path}`"));
    }
    if span.contains("::") && !span.contains(' ') && !span.contains('(') {
        let segments: Vec<&str> = span.split("::").collect();
        let src = crate_src(segments[0])?;
        let src = root.join(src);
        let rest = &segments[1..];
        if module_file(&src, rest).is_some() {
            return None;
        }
        let (item, modules) = rest.split_last()?;
        return match module_file(&src, modules) {
            Some(file) if defines(&file, item) => None,
            Some(file) => Some(format!("`{item}` is not defined in {}", file.display())),
            None => Some(format!("no module file for `{span}`")),
        };
    }
    if let Some(rest) = span.strip_prefix("telic.")
        && rest
            .chars()
            .all(|c| c.is_ascii_lowercase() || c == '_' || c == '.')
    {
        return (!python_name_exists(rest)).then(|| format!("no Python module or name `{span}`"));
    }
    None
}

/// Whether `telic.<dotted>` is a module of the Python package, or a name
/// defined in one (`telic.run`: a function of the package).
fn python_name_exists(dotted: &str) -> bool {
    let package = root().join("bindings/python/telic");
    let module = |parts: &[&str]| -> Vec<PathBuf> {
        let base = parts.iter().fold(package.clone(), |p, s| p.join(s));
        let mut files = vec![
            base.with_extension("py"),
            base.with_extension("pyi"),
            base.join("__init__.py"),
        ];
        if parts.is_empty() {
            files.push(package.join("_native.pyi"));
        }
        files.into_iter().filter(|f| f.is_file()).collect()
    };
    let parts: Vec<&str> = dotted.split('.').collect();
    if !module(&parts).is_empty() {
        return true;
    }
    let Some((name, parent)) = parts.split_last() else {
        return false;
    };
    module(parent).iter().any(|f| {
        let text = fs::read_to_string(f).unwrap_or_default();
        text.lines().any(|l| {
            let l = l.trim_start();
            l.starts_with(&format!("def {name}("))
                || l.starts_with(&format!("class {name}("))
                || l.starts_with(&format!("class {name}:"))
                || l.starts_with(&format!("{name} ="))
                || l.starts_with(&format!("{name}:"))
        })
    })
}

#[test]
fn every_place_architecture_md_names_exists() {
    let text = fs::read_to_string(root().join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let spans = backticked(&text);
    let checked = spans
        .iter()
        .filter(|s| s.contains('/') || s.contains("::"))
        .count();
    assert!(
        checked >= 20,
        "only {checked} places named: is the parser broken?"
    );
    let missing: Vec<String> = spans
        .iter()
        .filter_map(|s| missing(s).map(|why| format!("`{s}`: {why}")))
        .collect();
    assert!(
        missing.is_empty(),
        "ARCHITECTURE.md names what does not exist:\n{}",
        missing.join("\n")
    );
}

#[test]
fn the_checker_rejects_what_does_not_exist() {
    assert!(missing("engine/src/no_such_file.rs").is_some());
    assert!(missing("telic::planner::no_such_module").is_some());
    assert!(missing("telic::planner::NoSuchType").is_some());
    assert!(missing("telic.no_such_module").is_some());
    assert!(missing("telic.train.trainer.no_such_function").is_some());
    assert!(missing("telic.train.trainer").is_none());
    assert!(missing("engine/src/lib.rs").is_none());
    assert!(missing("telic::planner").is_none());
    assert!(missing("telic::planner::Planner").is_none());
}
