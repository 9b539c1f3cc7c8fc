//! The crate's error type.

use std::path::{Path, PathBuf};

/// Errors of crow-vision.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VisionError {
    /// An image could not be read or decoded (corrupt, truncated, unknown format).
    #[error("cannot read image {path}: {reason}")]
    Image {
        /// The file (or `<memory>`).
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A frame source failed: ffmpeg missing or exiting with an error, a stream refusing the
    /// connection, a video that is not a video.
    #[error("frame source {source_name}: {reason}")]
    Source {
        /// The file or URL (credentials removed).
        source_name: String,
        /// Why.
        reason: String,
    },
    /// A live source delivered no frame for too long.
    #[error("frame source {source_name}: no frames for {secs} s")]
    Stalled {
        /// The file or URL (credentials removed).
        source_name: String,
        /// Seconds without a frame.
        secs: u64,
    },
    /// A model file is missing.
    #[error("model not found: {0} (run `make models`, or pass the path to your own model)")]
    ModelNotFound(PathBuf),
    /// A model is not what the loader expects (wrong inputs or outputs).
    #[error("model {path}: {reason}")]
    Model {
        /// The model file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// ONNX Runtime failed (loading the library, running a model).
    #[error("onnx runtime: {0}")]
    Runtime(String),
    /// A configuration value is wrong; `field` names it.
    #[error("invalid {field}: {reason}")]
    Config {
        /// Offending field.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Encoding an image failed.
    #[error("encoding {format}: {reason}")]
    Encode {
        /// The format.
        format: String,
        /// Why.
        reason: String,
    },
    /// An I/O error with its path.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

impl VisionError {
    /// Shorthand for [`VisionError::Config`].
    pub fn config(field: impl Into<String>, reason: impl Into<String>) -> Self {
        VisionError::Config {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// Shorthand for [`VisionError::Image`].
    pub fn image(path: impl AsRef<Path>, reason: impl std::fmt::Display) -> Self {
        VisionError::Image {
            path: path.as_ref().to_path_buf(),
            reason: reason.to_string(),
        }
    }

    /// Shorthand for [`VisionError::Io`].
    pub fn io(path: impl AsRef<Path>, source: std::io::Error) -> Self {
        VisionError::Io {
            path: path.as_ref().to_path_buf(),
            source,
        }
    }
}

impl From<VisionError> for crow_core::Error {
    fn from(e: VisionError) -> Self {
        match e {
            VisionError::Config { field, reason } => crow_core::Error::Invalid { field, reason },
            e @ VisionError::Image { .. } => crow_core::Error::invalid("image", e.to_string()),
            e @ VisionError::Stalled { .. } => crow_core::Error::Unavailable(e.to_string()),
            e @ VisionError::Source { .. } => crow_core::Error::Unavailable(e.to_string()),
            e => crow_core::Error::Backend(e.to_string()),
        }
    }
}

/// Result with [`VisionError`].
pub type Result<T, E = VisionError> = std::result::Result<T, E>;
