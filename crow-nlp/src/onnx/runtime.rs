//! Loading ONNX Runtime from a library file, once per process (through crow-onnx, which holds
//! the process's one environment for every crate that runs models).

use std::path::Path;

use ort::environment::Environment;

use crate::error::{NlpError, Result};

/// The process's ONNX Runtime environment, loading the library at `lib` on first use.
///
/// ONNX Runtime can be loaded once per process: later calls return the environment of the first
/// library loaded, whatever `lib` they name (a warning is logged when it differs). A missing file
/// is [`NlpError::ModelNotFound`], a library that fails to load (wrong version, not a library) is
/// [`NlpError::Runtime`]; neither panics.
pub fn environment(lib: &Path) -> Result<&'static Environment> {
    crow_onnx::environment(lib).map_err(|e| match e {
        crow_onnx::OnnxError::NotFound(p) => NlpError::missing(p),
        other => NlpError::Runtime(other.to_string()),
    })
}
