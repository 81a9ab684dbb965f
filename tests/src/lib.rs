//! Harness for the end-to-end tests: finding the Python interop peers and the workspace.

use std::path::PathBuf;

/// The workspace root (the parent of this package).
pub fn workspace_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map_or(manifest.clone(), std::path::Path::to_path_buf)
}

/// The Python interpreter of the test virtual environment that holds pymavlink and MAVSDK.
///
/// `PATROL_TEST_PYTHON` overrides it.
///
/// # Panics
/// When it is missing: the message says to run `scripts/setup-test-deps.sh`. A missing peer fails the test
/// rather than skipping it silently.
pub fn python() -> PathBuf {
    if let Some(path) = std::env::var_os("PATROL_TEST_PYTHON") {
        return PathBuf::from(path);
    }
    let path = workspace_root().join(".venv-test/bin/python");
    assert!(
        path.exists(),
        "{} is missing: run scripts/setup-test-deps.sh (it installs pymavlink and MAVSDK for the interop tests)",
        path.display()
    );
    path
}

/// A path under `tests/peers/` (the Python peer scripts).
pub fn peer_script(name: &str) -> PathBuf {
    workspace_root().join("tests/peers").join(name)
}
