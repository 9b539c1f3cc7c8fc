//! crow-nlp's error.

use std::path::PathBuf;

/// Errors of crow-nlp.
///
/// `ModelNotFound` and `InvalidInput` are the caller's to fix; `Runtime` and `Model` say that
/// ONNX Runtime or a model file misbehaved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NlpError {
    /// A model file (or the ONNX Runtime library) is missing.
    #[error("model file not found: {path} ({hint})")]
    ModelNotFound {
        /// The path that was looked for.
        path: PathBuf,
        /// What to do about it (usually: run `make models`, or point the config at a model).
        hint: String,
    },
    /// A model or head file exists but cannot be used (wrong shape, bad JSON, wrong labels).
    #[error("invalid model {path}: {reason}")]
    Model {
        /// The offending file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// ONNX Runtime or the tokenizer failed while running.
    #[error("inference failed: {0}")]
    Runtime(String),
    /// The input cannot be analyzed or trained on (no examples, one label only, mismatched lengths).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

impl NlpError {
    /// A missing file, with the standard hint.
    pub fn missing(path: impl Into<PathBuf>) -> Self {
        NlpError::ModelNotFound {
            path: path.into(),
            hint: "run `make models`, or point CROW at a model directory (`--models DIR` / CROW_MODELS)".into(),
        }
    }
}

impl From<NlpError> for crow_core::Error {
    fn from(e: NlpError) -> Self {
        match e {
            NlpError::InvalidInput(reason) => crow_core::Error::Invalid {
                field: "text".into(),
                reason,
            },
            NlpError::ModelNotFound { .. } => crow_core::Error::Unavailable(e.to_string()),
            other => crow_core::Error::Backend(other.to_string()),
        }
    }
}

/// crow-nlp's result.
pub type Result<T, E = NlpError> = std::result::Result<T, E>;
