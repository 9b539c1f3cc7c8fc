//! The error every port returns.

/// Errors of crow-core and of the ports it declares.
///
/// Variants separate what a caller did wrong (`Invalid`, `NotFound`, `Unauthorized`,
/// `Conflict`, `TooLarge`) from what broke inside (`Backend`, `Unavailable`), so a shell can
/// map them to 4xx and 5xx answers without looking at messages.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The input is malformed: `field` names the offending field (a JSON pointer-like path).
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// Offending field.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The input exceeds a documented limit.
    #[error("too large: {0}")]
    TooLarge(String),
    /// The thing asked for does not exist (or belongs to another org).
    #[error("not found: {0}")]
    NotFound(String),
    /// Missing or wrong credentials.
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// The request conflicts with stored state (a duplicate unique key, say).
    #[error("conflict: {0}")]
    Conflict(String),
    /// A backend failed (I/O, database, network). Not the caller's fault.
    #[error("backend failure: {0}")]
    Backend(String),
    /// A backend is temporarily unable to serve (shutting down, overloaded); retry later.
    #[error("unavailable: {0}")]
    Unavailable(String),
}

impl Error {
    /// Shorthand for [`Error::Invalid`].
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// Shorthand for [`Error::Backend`].
    pub fn backend(e: impl std::fmt::Display) -> Self {
        Error::Backend(e.to_string())
    }

    /// True when the caller is at fault (maps to a 4xx answer).
    pub fn is_client_error(&self) -> bool {
        matches!(
            self,
            Error::Invalid { .. }
                | Error::TooLarge(_)
                | Error::NotFound(_)
                | Error::Unauthorized(_)
                | Error::Conflict(_)
        )
    }
}

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
