//! Loading ONNX Runtime from a library file, once per process.
//!
//! ONNX Runtime is loaded with `dlopen` from a path (ort's `load-dynamic`), so a build of CROW
//! without models needs no ONNX Runtime at all. A process loads one library and ort allows one
//! [`Environment`] per process, reachable only from the code that built it. A shell that also
//! runs crow-nlp's models therefore hands the environment over: `crow_nlp::onnx::runtime::loaded()`
//! gives it, [`adopt`] takes it (and crow-nlp's `adopt` works the other way round).

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use ort::environment::Environment;

use crate::error::{Result, VisionError};

/// Where `scripts/models.sh` puts the ONNX Runtime library, relative to the models folder.
pub const ORT_LIBRARY: &str = "onnxruntime/libonnxruntime.so.1.32.0";

static ENV: OnceLock<(PathBuf, Environment)> = OnceLock::new();
static INIT: Mutex<()> = Mutex::new(());

/// The ONNX Runtime library to load: `ORT_DYLIB_PATH` when it is set and not empty, else
/// `<models_dir>/onnxruntime/libonnxruntime.so.1.32.0` ([`ORT_LIBRARY`]).
pub fn library_path(models_dir: &Path) -> PathBuf {
    match std::env::var_os("ORT_DYLIB_PATH").filter(|p| !p.is_empty()) {
        Some(p) => PathBuf::from(p),
        None => models_dir.join(ORT_LIBRARY),
    }
}

/// The process's ONNX Runtime environment for crow-vision, loading the library at `lib` on first
/// use.
///
/// Later calls return the same environment whatever `lib` they name (a warning is logged when it
/// differs). When another crate of the process loaded ONNX Runtime first, that library is used
/// (see the [module docs](self)). A missing file is [`VisionError::ModelNotFound`] on every
/// call, even once a library is loaded; a file that does not load (not a library, an ONNX
/// Runtime older than ort needs) is [`VisionError::Runtime`]; neither panics.
pub fn environment(lib: &Path) -> Result<&'static Environment> {
    // Checked on every call, so that a wrong path is reported whatever loaded first.
    if !lib.is_file() {
        return Err(VisionError::ModelNotFound(lib.to_path_buf()));
    }
    if let Some((loaded, env)) = ENV.get() {
        warn_if_other(loaded, lib);
        return Ok(env);
    }
    let _guard = INIT.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((loaded, env)) = ENV.get() {
        warn_if_other(loaded, lib);
        return Ok(env);
    }
    let builder = ort::init_from(lib).map_err(|e| VisionError::Runtime(format!("loading {}: {e}", lib.display())))?;
    let env = builder
        .with_name("crow-vision")
        .with_telemetry(false)
        .build()
        .map_err(|e| VisionError::Runtime(format!("starting ONNX Runtime from {}: {e}", lib.display())))?;
    let _ = ENV.set((lib.to_path_buf(), env));
    Ok(&ENV.get().expect("just set").1)
}

/// Uses an environment another crate of the process built (ONNX Runtime allows one per
/// process); returns false when crow-vision already has one.
pub fn adopt(lib: &Path, env: Environment) -> bool {
    ENV.set((lib.to_path_buf(), env)).is_ok()
}

/// The environment crow-vision loaded, if any, with its library path.
pub fn loaded() -> Option<(&'static Path, &'static Environment)> {
    ENV.get().map(|(p, e)| (p.as_path(), e))
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
