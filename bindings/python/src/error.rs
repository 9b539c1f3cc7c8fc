//! The exceptions of `crow`, and the one place where the crates' error enums become them.
//!
//! ```text
//! CrowError
//! ├── ValidationError       the caller's input is wrong (dtype, shape, a bad filter, an unknown org)
//! ├── ModelNotFoundError    a model file or the ONNX Runtime library is missing
//! ├── ModelError            a model or head file exists but cannot be used; inference failed
//! └── StoreError            the store or a vector index failed (I/O, SQLite, a corrupt file)
//!     └── UnavailableError  ...because another process holds it, or it is read-only or busy
//! ```

use pyo3::PyErr;
use pyo3::create_exception;
use pyo3::exceptions::PyException;

create_exception!(crow, CrowError, PyException, "Base class of every error CROW raises.");
create_exception!(
    crow,
    ValidationError,
    CrowError,
    "The input is wrong: a dtype, a shape, a value out of range, an unknown org or index."
);
create_exception!(
    crow,
    ModelNotFoundError,
    CrowError,
    "A model file (or the ONNX Runtime library) is missing: run `make models`, pass `models=DIR` \
     or set CROW_MODELS."
);
create_exception!(
    crow,
    ModelError,
    CrowError,
    "A model or head file exists but cannot be used, or inference failed."
);
create_exception!(
    crow,
    StoreError,
    CrowError,
    "The event store or a vector index failed (I/O, SQLite, a corrupt file)."
);
create_exception!(
    crow,
    UnavailableError,
    StoreError,
    "The store or index is held by another process, open read-only, or busy: retry later."
);

/// Builds a [`ValidationError`].
pub fn invalid(msg: impl Into<String>) -> PyErr {
    ValidationError::new_err(msg.into())
}

/// Converts a crate error into the matching Python exception.
pub trait IntoPyErr {
    /// The exception.
    fn into_py_err(self) -> PyErr;
}

/// `result.map_err(IntoPyErr::into_py_err)`, shorter.
pub trait PyResultExt<T> {
    /// Maps the error into its Python exception.
    fn py(self) -> pyo3::PyResult<T>;
}

impl<T, E: IntoPyErr> PyResultExt<T> for Result<T, E> {
    fn py(self) -> pyo3::PyResult<T> {
        self.map_err(IntoPyErr::into_py_err)
    }
}

impl IntoPyErr for crow_core::Error {
    fn into_py_err(self) -> PyErr {
        use crow_core::Error as E;
        let msg = self.to_string();
        match self {
            E::Invalid { .. } | E::TooLarge(_) | E::Unauthorized(_) => ValidationError::new_err(msg),
            E::Unavailable(_) => UnavailableError::new_err(msg),
            E::NotFound(_) | E::Conflict(_) | E::Backend(_) => StoreError::new_err(msg),
            _ => CrowError::new_err(msg),
        }
    }
}

impl IntoPyErr for crow_store::StoreError {
    fn into_py_err(self) -> PyErr {
        store_error(self, "")
    }
}

/// A store error as its exception, its message after `prefix`.
fn store_error(e: crow_store::StoreError, prefix: &str) -> PyErr {
    use crow_store::StoreError as S;
    let msg = format!("{prefix}{e}");
    match e {
        S::Invalid { .. } => ValidationError::new_err(msg),
        S::Locked(_) | S::Closed(_) => UnavailableError::new_err(msg),
        _ => StoreError::new_err(msg),
    }
}

impl IntoPyErr for crow_nlp::NlpError {
    fn into_py_err(self) -> PyErr {
        use crow_nlp::NlpError as N;
        let msg = self.to_string();
        match self {
            N::ModelNotFound { .. } => ModelNotFoundError::new_err(msg),
            N::InvalidInput(_) => ValidationError::new_err(msg),
            N::Model { .. } | N::Runtime(_) => ModelError::new_err(msg),
            N::Io { .. } => StoreError::new_err(msg),
            _ => CrowError::new_err(msg),
        }
    }
}

impl IntoPyErr for crow_vision::VisionError {
    fn into_py_err(self) -> PyErr {
        use crow_vision::VisionError as V;
        let msg = self.to_string();
        match self {
            V::ModelNotFound(_) => ModelNotFoundError::new_err(msg),
            V::Config { .. } | V::Image { .. } => ValidationError::new_err(msg),
            V::Model { .. } | V::Runtime(_) => ModelError::new_err(msg),
            V::Io { .. } => StoreError::new_err(msg),
            _ => CrowError::new_err(msg),
        }
    }
}

impl IntoPyErr for crow_server::ServerError {
    fn into_py_err(self) -> PyErr {
        match self {
            crow_server::ServerError::Store { path, source } => {
                store_error(source, &format!("cannot open the data directory {}: ", path.display()))
            }
            other => StoreError::new_err(other.to_string()),
        }
    }
}
