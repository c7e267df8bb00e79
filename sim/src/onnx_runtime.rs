//! Finding the ONNX Runtime shared library for the engine.
//!
//! The engine loads ONNX Runtime at run time but does not look for it: a
//! program names it (`ORT_DYLIB_PATH`, or [`telic::model::use_onnx_runtime`]).
//! The `telic` program and the sim library find it here, in the
//! `onnxruntime` wheel on PyPI, so a newcomer only needs
//! `python3 -m pip install onnxruntime==1.31.1`.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use telic::ModelError;
use telic::model::onnx::{ORT_DYLIB_PATH, install_hint, onnx_runtime_path, use_onnx_runtime};

/// Makes sure the engine can load ONNX Runtime: when neither `ORT_DYLIB_PATH`
/// nor an earlier call named the library, finds it ([`find_onnx_runtime`])
/// and hands it to the engine. Called before a bundle is loaded; cheap after
/// the first success (`python3` runs at most until the library is found).
///
/// The error says what was searched and how to install it.
pub fn locate() -> Result<(), ModelError> {
    if onnx_runtime_path().is_ok() {
        return Ok(());
    }
    use_onnx_runtime(find_onnx_runtime()?);
    Ok(())
}

/// The ONNX Runtime shared library this process would load: the one named by
/// `ORT_DYLIB_PATH` when set, else the one inside the `onnxruntime` wheel of
/// `python3` (then `python`), else one found in the usual site-packages
/// folders (virtualenv, conda, user, pyenv and system installs).
///
/// The error says how to install it.
pub fn find_onnx_runtime() -> Result<PathBuf, ModelError> {
    if std::env::var_os(ORT_DYLIB_PATH).is_some_and(|p| !p.is_empty()) {
        // The engine's own rule for the variable (it must name a file).
        return onnx_runtime_path();
    }
    let mut searched = Vec::new();
    for python in ["python3", "python"] {
        if let Some(pkg) = python_package_dir(python) {
            if let Some(lib) = library_in(&pkg.join("capi")) {
                return Ok(lib);
            }
            searched.push(pkg.join("capi"));
        }
    }
    for site in site_packages() {
        let capi = site.join("onnxruntime").join("capi");
        if let Some(lib) = library_in(&capi) {
            return Ok(lib);
        }
        searched.push(capi);
    }
    let searched: Vec<String> = searched.iter().map(|p| p.display().to_string()).collect();
    Err(ModelError::Backend(format!(
        "ONNX Runtime was not found (searched {ORT_DYLIB_PATH}, `python3 -c 'import onnxruntime'` \
         and {} site-packages folders{}); {}",
        searched.len(),
        if searched.is_empty() {
            String::new()
        } else {
            format!(": {}", searched.join(", "))
        },
        install_hint()
    )))
}

/// Folder of the `onnxruntime` Python package as `python` sees it.
fn python_package_dir(python: &str) -> Option<PathBuf> {
    let out = Command::new(python)
        .args([
            "-c",
            "import onnxruntime, os; print(os.path.dirname(onnxruntime.__file__))",
        ])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let dir = PathBuf::from(String::from_utf8(out.stdout).ok()?.trim());
    dir.is_dir().then_some(dir)
}

/// The ONNX Runtime library in `dir` (`libonnxruntime.so.1.31.1`,
/// `libonnxruntime.1.31.1.dylib`, `onnxruntime.dll`), not its provider plugins.
fn library_in(dir: &Path) -> Option<PathBuf> {
    let stem = format!("{}onnxruntime", std::env::consts::DLL_PREFIX);
    let suffix = std::env::consts::DLL_SUFFIX;
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name().and_then(OsStr::to_str).is_some_and(|n| {
                n.strip_prefix(&stem)
                    .is_some_and(|rest| rest.starts_with('.') && n.contains(suffix))
            }) && p.is_file()
        })
        .collect();
    // Newest version first when a folder holds several.
    found.sort();
    found.pop()
}

/// Usual site-packages folders, most specific first.
fn site_packages() -> Vec<PathBuf> {
    let mut roots: Vec<PathBuf> = Vec::new();
    for var in ["VIRTUAL_ENV", "CONDA_PREFIX"] {
        if let Some(p) = std::env::var_os(var).filter(|p| !p.is_empty()) {
            roots.push(PathBuf::from(p));
        }
    }
    let home = std::env::var_os("HOME").map(PathBuf::from);
    if let Some(home) = &home {
        roots.push(home.join(".local"));
        if let Ok(versions) = std::fs::read_dir(home.join(".pyenv").join("versions")) {
            let mut v: Vec<PathBuf> = versions.filter_map(|e| e.ok().map(|e| e.path())).collect();
            v.sort();
            roots.extend(v.into_iter().rev());
        }
    }
    roots.extend(["/usr/local", "/usr", "/opt/conda"].map(PathBuf::from));
    let mut sites = Vec::new();
    for root in roots {
        // Windows virtualenvs and installs: <root>/Lib/site-packages.
        sites.push(root.join("Lib").join("site-packages"));
        let Ok(libs) = std::fs::read_dir(root.join("lib")) else {
            continue;
        };
        let mut pythons: Vec<PathBuf> = libs
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .and_then(OsStr::to_str)
                    .is_some_and(|n| n.starts_with("python3"))
            })
            .collect();
        pythons.sort();
        for py in pythons.into_iter().rev() {
            sites.push(py.join("site-packages"));
            sites.push(py.join("dist-packages"));
        }
    }
    sites.push(PathBuf::from("/usr/lib/python3/dist-packages"));
    let mut seen = std::collections::BTreeSet::new();
    sites.retain(|p| p.is_dir() && seen.insert(p.clone()));
    sites
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_runtime_not_its_plugins() {
        let dir = std::env::temp_dir().join(format!("telic-ort-scan-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (pre, suf) = (std::env::consts::DLL_PREFIX, std::env::consts::DLL_SUFFIX);
        assert_eq!(library_in(&dir), None);
        for name in [
            format!("{pre}onnxruntime_providers_shared{suf}"),
            "__init__.py".to_string(),
        ] {
            std::fs::write(dir.join(name), b"").unwrap();
        }
        assert_eq!(library_in(&dir), None);
        let lib = dir.join(format!("{pre}onnxruntime{suf}.1.31.1"));
        std::fs::write(&lib, b"").unwrap();
        if cfg!(target_os = "linux") {
            assert_eq!(library_in(&dir), Some(lib));
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
