//! Loading ONNX Runtime from a library file, once per process.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use ort::environment::Environment;

use crate::error::{NlpError, Result};

static ENV: OnceLock<(PathBuf, Environment)> = OnceLock::new();
static INIT: Mutex<()> = Mutex::new(());

/// The process's ONNX Runtime environment, loading the library at `lib` on first use.
///
/// ONNX Runtime can be loaded once per process: later calls return the environment of the first
/// library loaded, whatever `lib` they name (a warning is logged when it differs). A missing file
/// is [`NlpError::ModelNotFound`], a library that fails to load (wrong version, not a library) is
/// [`NlpError::Runtime`]; neither panics.
pub fn environment(lib: &Path) -> Result<&'static Environment> {
    if let Some((loaded, env)) = ENV.get() {
        warn_if_other(loaded, lib);
        return Ok(env);
    }
    let _guard = INIT.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((loaded, env)) = ENV.get() {
        warn_if_other(loaded, lib);
        return Ok(env);
    }
    if !lib.is_file() {
        return Err(NlpError::missing(lib));
    }
    let builder = ort::init_from(lib).map_err(|e| NlpError::Runtime(format!("loading {}: {e}", lib.display())))?;
    let env = builder
        .with_name("crow")
        .with_telemetry(false)
        .build()
        .map_err(|e| NlpError::Runtime(format!("starting ONNX Runtime from {}: {e}", lib.display())))?;
    let _ = ENV.set((lib.to_path_buf(), env));
    Ok(&ENV.get().expect("just set").1)
}

fn warn_if_other(loaded: &Path, asked: &Path) {
    if loaded != asked {
        tracing::warn!(
            loaded = %loaded.display(),
            asked = %asked.display(),
            "ONNX Runtime is already loaded from another file; using it"
        );
    }
}

/// The environment crow-nlp loaded, if any, with its library path. ONNX Runtime allows one
/// environment per process, so a shell that also runs other ONNX models (crow-vision's face
/// detector) hands this one over to them.
pub fn loaded() -> Option<(&'static Path, &'static Environment)> {
    ENV.get().map(|(p, e)| (p.as_path(), e))
}

/// Uses an environment another crate of the process built (see [`loaded`]); returns false when
/// crow-nlp already has one.
pub fn adopt(lib: &Path, env: Environment) -> bool {
    ENV.set((lib.to_path_buf(), env)).is_ok()
}
