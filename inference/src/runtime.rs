//! Finding and loading the ONNX Runtime shared library (ort's `load-dynamic`).
//!
//! Search order: `PATROL_ORT_LIB`, then `ORT_DYLIB_PATH` (either, when set, is the only candidate: a wrong path
//! is an error, not a silent fallback), then beside the running executable, then `<workspace>/.onnxruntime/lib/`
//! where `scripts/setup-onnxruntime.sh` puts it.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::error::InferenceError;

/// The ONNX Runtime release this crate is built against (ort API 31).
pub const ORT_VERSION: &str = "1.31.1";

/// File names tried in each directory, most specific first.
const LIBRARY_NAMES: [&str; 3] = ["libonnxruntime.so.1.31.1", "libonnxruntime.so.1", "libonnxruntime.so"];

/// Where `scripts/setup-onnxruntime.sh` installs the library, fixed at compile time.
fn workspace_lib_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(".onnxruntime").join("lib")
}

/// The candidate paths, in search order, given the environment.
fn candidates(
    patrol_ort_lib: Option<OsString>,
    ort_dylib_path: Option<OsString>,
    exe_dir: Option<PathBuf>,
    workspace_dir: PathBuf,
) -> (Vec<PathBuf>, bool) {
    let explicit = patrol_ort_lib.filter(|v| !v.is_empty()).or(ort_dylib_path.filter(|v| !v.is_empty()));
    if let Some(path) = explicit {
        return (vec![PathBuf::from(path)], true);
    }
    let dirs = exe_dir.into_iter().chain(std::iter::once(workspace_dir));
    (dirs.flat_map(|d| LIBRARY_NAMES.map(|n| d.join(n))).collect(), false)
}

/// Finds the ONNX Runtime library.
///
/// # Errors
/// [`InferenceError::RuntimeMissing`], naming `scripts/setup-onnxruntime.sh` and every path tried.
pub fn locate_runtime() -> Result<PathBuf, InferenceError> {
    let exe_dir = std::env::current_exe().ok().and_then(|p| p.parent().map(Path::to_path_buf));
    let (paths, _) = candidates(
        std::env::var_os("PATROL_ORT_LIB"),
        std::env::var_os("ORT_DYLIB_PATH"),
        exe_dir,
        workspace_lib_dir(),
    );
    first_existing(paths)
}

fn first_existing(paths: Vec<PathBuf>) -> Result<PathBuf, InferenceError> {
    match paths.iter().find(|p| p.is_file()) {
        Some(found) => Ok(found.clone()),
        None => Err(InferenceError::RuntimeMissing { version: ORT_VERSION, searched: paths }),
    }
}

/// The process's ONNX Runtime environment. ONNX Runtime (and ort) allow exactly one per process and ort refuses a
/// second `build()` even after the first was dropped, so it is created once and kept for the process's lifetime;
/// this is the one piece of global state in the crate, forced by the runtime. A failed attempt is not cached, so
/// running the setup script and retrying works without a restart.
static ENVIRONMENT: Mutex<Option<ort::environment::Environment>> = Mutex::new(None);

/// Loads the library (once per process; later calls reuse it) and returns the shared ONNX Runtime environment.
///
/// # Errors
/// [`InferenceError::RuntimeMissing`] or [`InferenceError::RuntimeLoad`].
pub(crate) fn environment() -> Result<ort::environment::Environment, InferenceError> {
    let mut slot = ENVIRONMENT.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(env) = slot.as_ref() {
        return Ok(env.clone());
    }
    let path = locate_runtime()?;
    let load_err = |message: String| InferenceError::RuntimeLoad { path: path.clone(), message };
    let env = ort::init_from(&path)
        .map_err(|e| load_err(e.to_string()))?
        .with_name("patrol")
        .with_telemetry(false)
        .build()
        .map_err(|e| load_err(e.to_string()))?;
    *slot = Some(env.clone());
    Ok(env)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_variable_wins_and_is_the_only_candidate() {
        let (paths, explicit) =
            candidates(Some("/opt/ort.so".into()), Some("/other.so".into()), Some("/bin".into()), "/ws".into());
        assert!(explicit);
        assert_eq!(paths, [PathBuf::from("/opt/ort.so")]);
        let (paths, _) = candidates(Some("".into()), Some("/other.so".into()), None, "/ws".into());
        assert_eq!(paths, [PathBuf::from("/other.so")]);
    }

    #[test]
    fn falls_back_to_exe_dir_then_workspace() {
        let (paths, explicit) = candidates(None, None, Some("/bin".into()), "/ws/.onnxruntime/lib".into());
        assert!(!explicit);
        assert_eq!(paths[0], PathBuf::from("/bin/libonnxruntime.so.1.31.1"));
        assert_eq!(paths[3], PathBuf::from("/ws/.onnxruntime/lib/libonnxruntime.so.1.31.1"));
        assert_eq!(paths.len(), 6);
    }

    #[test]
    fn missing_library_is_a_typed_error_naming_the_setup_script() {
        let dir = tempfile::tempdir().unwrap();
        let (paths, _) = candidates(None, None, Some(dir.path().into()), dir.path().join("nope"));
        let err = first_existing(paths).unwrap_err();
        assert!(matches!(&err, InferenceError::RuntimeMissing { searched, .. } if searched.len() == 6));
        assert!(err.to_string().contains("scripts/setup-onnxruntime.sh"), "{err}");
    }

    #[test]
    fn workspace_dir_is_the_repository_root() {
        assert!(workspace_lib_dir().join("../..").join("scripts").join("setup-onnxruntime.sh").exists());
    }
}
