//! Loading ONNX Runtime from a library file, once per process.
//!
//! The environment itself lives in crow-onnx: ONNX Runtime allows one per process, and crow-nlp's
//! models (in the same process in the CLI and the server) use the same one.

use std::path::{Path, PathBuf};

use ort::environment::Environment;

use crate::error::{Result, VisionError};

/// Where `scripts/models.sh` puts the ONNX Runtime library, relative to the models folder.
pub const ORT_LIBRARY: &str = "onnxruntime/libonnxruntime.so.1.32.0";

/// The ONNX Runtime library to load: `ORT_DYLIB_PATH` when it is set and not empty, else
/// `<models_dir>/onnxruntime/libonnxruntime.so.1.32.0` ([`ORT_LIBRARY`]).
pub fn library_path(models_dir: &Path) -> PathBuf {
    match std::env::var_os("ORT_DYLIB_PATH").filter(|p| !p.is_empty()) {
        Some(p) => PathBuf::from(p),
        None => models_dir.join(ORT_LIBRARY),
    }
}

/// The process's ONNX Runtime environment, loading the library at `lib` on first use.
///
/// Later calls return the same environment whatever `lib` they name (a warning is logged when it
/// differs), also when crow-nlp loaded it first. A missing file is
/// [`VisionError::ModelNotFound`] on every call, even once a library is loaded; a file that does
/// not load (not a library, an ONNX Runtime older than ort needs) is [`VisionError::Runtime`];
/// neither panics.
pub fn environment(lib: &Path) -> Result<&'static Environment> {
    // Checked on every call, so that a wrong path is reported whatever loaded first.
    if !lib.is_file() {
        return Err(VisionError::ModelNotFound(lib.to_path_buf()));
    }
    crow_onnx::environment(lib).map_err(|e| match e {
        crow_onnx::OnnxError::NotFound(p) => VisionError::ModelNotFound(p),
        other => VisionError::Runtime(other.to_string()),
    })
}
