//! The process's one ONNX Runtime environment.
//!
//! ONNX Runtime is loaded with `dlopen` from a file (ort's `load-dynamic`), so a build of CROW
//! without models needs no ONNX Runtime at all. ONNX Runtime allows one environment per
//! process and ort hands it only to the code that built it, so every crate that runs models
//! (crow-nlp's embedder and NER, crow-vision's face and person detectors) gets it here: the first
//! call loads the library and builds the environment, later calls return the same one.
//!
//! ```no_run
//! let env = crow_onnx::environment(std::path::Path::new("models/onnxruntime/libonnxruntime.so.1.32.0"))?;
//! let session = ort::session::Session::builder(env);
//! # let _ = session;
//! # Ok::<(), crow_onnx::OnnxError>(())
//! ```

#![warn(missing_docs)]

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

pub use ort::environment::Environment;

static ENV: OnceLock<(PathBuf, Environment)> = OnceLock::new();
static INIT: Mutex<()> = Mutex::new(());

/// Why ONNX Runtime could not be started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OnnxError {
    /// The library file does not exist.
    #[error("ONNX Runtime library not found: {0}")]
    NotFound(PathBuf),
    /// The file is not a loadable ONNX Runtime (not a library, a version ort cannot use).
    #[error("loading {path}: {reason}")]
    Load {
        /// The library file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The library loaded but the environment could not be created.
    #[error("starting ONNX Runtime from {path}: {reason}")]
    Start {
        /// The library file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// The process's environment, loading the library at `lib` on first use.
///
/// Later calls return the environment of the first library loaded, whatever `lib` they name (a
/// warning is logged when it differs); a missing `lib` is only an error before anything is
/// loaded. Never panics.
pub fn environment(lib: &Path) -> Result<&'static Environment, OnnxError> {
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
        return Err(OnnxError::NotFound(lib.to_path_buf()));
    }
    let builder = ort::init_from(lib).map_err(|e| OnnxError::Load {
        path: lib.to_path_buf(),
        reason: e.to_string(),
    })?;
    let env = builder
        .with_name("crow")
        .with_telemetry(false)
        .build()
        .map_err(|e| OnnxError::Start {
            path: lib.to_path_buf(),
            reason: e.to_string(),
        })?;
    let _ = ENV.set((lib.to_path_buf(), env));
    Ok(&ENV.get().expect("just set").1)
}

/// The library the environment was loaded from, once it is.
pub fn loaded_from() -> Option<&'static Path> {
    ENV.get().map(|(p, _)| p.as_path())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_library_is_a_clear_error_not_a_panic() {
        if loaded_from().is_some() {
            return;
        }
        let err = environment(Path::new("/nonexistent/libonnxruntime.so")).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/libonnxruntime.so"), "{err}");
        let not_a_lib = std::env::temp_dir().join(format!("crow-onnx-{}.so", std::process::id()));
        std::fs::write(&not_a_lib, b"not a library").unwrap();
        let err = environment(&not_a_lib).unwrap_err();
        assert!(matches!(err, OnnxError::Load { .. }), "{err}");
        let _ = std::fs::remove_file(&not_a_lib);
    }
}
