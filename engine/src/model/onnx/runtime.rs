//! Finding ONNX Runtime and starting it once per process.
//!
//! `ort` is built with `load-dynamic`: nothing is linked or downloaded at build
//! time, and the shared library is opened on first use. It comes from the
//! `onnxruntime` wheel on PyPI, so a newcomer only needs
//! `python3 -m pip install onnxruntime==1.31.1`.

use crate::error::ModelError;
use ort::environment::Environment;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock, PoisonError};

/// The ONNX Runtime release Telic is built and tested against.
pub const ONNXRUNTIME_VERSION: &str = "1.31.1";

/// Environment variable naming the ONNX Runtime shared library to load.
pub const ORT_DYLIB_PATH: &str = "ORT_DYLIB_PATH";

static ENVIRONMENT: OnceLock<Environment> = OnceLock::new();
/// Serialises first-time initialisation; a failed attempt is not cached, so a
/// caller may fix the installation and try again in the same process.
static INIT: Mutex<()> = Mutex::new(());

fn fix_it() -> String {
    format!(
        "install ONNX Runtime with `python3 -m pip install onnxruntime=={ONNXRUNTIME_VERSION}` \
         (Telic finds the library inside the wheel), or set {ORT_DYLIB_PATH} to the path \
         of the ONNX Runtime shared library ({}onnxruntime{}, version {ONNXRUNTIME_VERSION} \
         or newer)",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    )
}

/// The process-wide ONNX Runtime environment, created on first call.
pub(crate) fn environment() -> Result<&'static Environment, ModelError> {
    if let Some(env) = ENVIRONMENT.get() {
        return Ok(env);
    }
    let _guard = INIT.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(env) = ENVIRONMENT.get() {
        return Ok(env);
    }
    let path = find_onnx_runtime()?;
    let builder = ort::init_from(&path).map_err(|e| {
        ModelError::Backend(format!(
            "ONNX Runtime at {} could not be loaded: {e}; {}",
            path.display(),
            fix_it()
        ))
    })?;
    let env = builder
        .with_name("telic")
        .with_telemetry(false)
        .build()
        .map_err(|e| ModelError::Backend(format!("ONNX Runtime environment: {e}")))?;
    Ok(ENVIRONMENT.get_or_init(|| env))
}

/// The ONNX Runtime shared library this process would load: the one named by
/// `ORT_DYLIB_PATH` when set, else the one inside the `onnxruntime` wheel of
/// `python3` (then `python`), else one found in the usual site-packages
/// folders (virtualenv, conda, user, pyenv and system installs).
///
/// The error says how to install it.
pub fn find_onnx_runtime() -> Result<PathBuf, ModelError> {
    if let Some(path) = std::env::var_os(ORT_DYLIB_PATH).filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(ModelError::Backend(format!(
                "{ORT_DYLIB_PATH}={} is not a file; {}",
                path.display(),
                fix_it()
            )))
        };
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
        fix_it()
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

    #[test]
    fn fix_it_names_both_remedies() {
        let m = fix_it();
        assert!(m.contains("pip install onnxruntime==1.31.1") && m.contains(ORT_DYLIB_PATH));
    }
}
