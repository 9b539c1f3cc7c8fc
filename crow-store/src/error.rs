//! The one error enum of crow-store, and its mapping into [`crow_core::Error`].

#[cfg(feature = "sqlite")]
use rusqlite::ErrorCode;

/// Errors of crow-store.
///
/// Variants say what the caller did wrong ([`Invalid`](StoreError::Invalid),
/// [`Conflict`](StoreError::Conflict), [`NotFound`](StoreError::NotFound)) apart from what broke
/// inside (the others). [`From<StoreError> for crow_core::Error`](crow_core::Error) keeps that
/// split: SQLite constraint violations become `Conflict`, a busy or closed store `Unavailable`,
/// the rest `Backend`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The input is malformed (a bad cursor, a blob key with `..`, an event of another org).
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// Offending field.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The input conflicts with stored state (an org id that exists, say).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The thing asked for does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// SQLite failed (I/O, constraint, busy, ...).
    #[cfg(feature = "sqlite")]
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A [`Sql`](crate::sql::Sql) executor other than SQLite (D1) failed; `constraint` when the
    /// database reported a constraint violation (UNIQUE, CHECK, a trigger's `RAISE(ABORT)`).
    #[error("sql: {message}")]
    Sql {
        /// What the database said.
        message: String,
        /// A constraint violation, which maps to `Conflict` like SQLite's.
        constraint: bool,
    },
    /// A stored value has another type than the statement's reader expects.
    #[error("column {index}: {reason}")]
    Column {
        /// The column's position in the row.
        index: usize,
        /// What was found instead.
        reason: String,
    },
    /// A migration failed to apply.
    #[cfg(feature = "sqlite")]
    #[error("migration {name} failed: {source}")]
    Migration {
        /// The migration's file name.
        name: String,
        /// What SQLite said.
        source: rusqlite::Error,
    },
    /// The database was migrated by a newer build of CROW than this one.
    #[error("database schema version {found} is newer than this build supports ({supported})")]
    SchemaTooNew {
        /// Version recorded in the database.
        found: i64,
        /// Latest version this build knows.
        supported: i64,
    },
    /// Stored JSON could not be (de)serialized.
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
    /// A file-system operation failed.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// The object store failed.
    #[cfg(feature = "sqlite")]
    #[error("object store: {0}")]
    ObjectStore(#[from] object_store::Error),
    /// A file of the store cannot be read back (truncated, garbled, from another program).
    #[error("corrupt file {path}: {reason}")]
    Corrupt {
        /// The file or directory.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Another process owns the directory (holds its lock).
    #[error("{0} is in use by another process")]
    Locked(String),
    /// The operating system's random number generator failed.
    #[error("random number generator: {0}")]
    Random(String),
    /// This backend cannot serve the operation (yet): the Worker's D1 store for a port it does
    /// not implement. Maps to `Unavailable` (HTTP 503).
    #[error("{0}")]
    Unavailable(String),
    /// The store is shut down (its writer thread is gone, its read pool closed).
    #[error("store closed: {0}")]
    Closed(String),
    /// Something broke inside crow-store (a panicking request, a transaction SQLite rolled
    /// back on its own, a failed background task).
    #[error("internal error: {0}")]
    Internal(String),
}

impl StoreError {
    /// Shorthand for [`StoreError::Invalid`].
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        StoreError::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// True when SQLite reported a constraint violation (UNIQUE, CHECK, FOREIGN KEY, ...).
    pub fn is_constraint_violation(&self) -> bool {
        #[cfg(feature = "sqlite")]
        if self.sqlite_code() == Some(ErrorCode::ConstraintViolation) {
            return true;
        }
        matches!(self, StoreError::Sql { constraint: true, .. })
    }

    #[cfg(feature = "sqlite")]
    fn sqlite_code(&self) -> Option<ErrorCode> {
        match self {
            StoreError::Sqlite(e) | StoreError::Migration { source: e, .. } => e.sqlite_error_code(),
            _ => None,
        }
    }

    /// A copy of this error for every request of a failed group commit. `rusqlite::Error` is
    /// not `Clone`: SQLite failures keep their code, anything else keeps its message.
    #[cfg(feature = "sqlite")]
    pub(crate) fn duplicate(&self) -> StoreError {
        match self {
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(code, msg)) => {
                StoreError::Sqlite(rusqlite::Error::SqliteFailure(*code, msg.clone()))
            }
            StoreError::Invalid { field, reason } => StoreError::invalid(field.clone(), reason.clone()),
            StoreError::Conflict(m) => StoreError::Conflict(m.clone()),
            StoreError::NotFound(m) => StoreError::NotFound(m.clone()),
            StoreError::Closed(m) => StoreError::Closed(m.clone()),
            other => StoreError::Internal(format!("write transaction failed: {other}")),
        }
    }
}

#[cfg(feature = "sqlite")]
impl From<rusqlite::types::FromSqlError> for StoreError {
    fn from(e: rusqlite::types::FromSqlError) -> Self {
        StoreError::Sqlite(e.into())
    }
}

impl From<StoreError> for crow_core::Error {
    fn from(e: StoreError) -> Self {
        use crow_core::Error as E;
        if e.is_constraint_violation() {
            return E::Conflict(e.to_string());
        }
        #[cfg(feature = "sqlite")]
        if matches!(
            e.sqlite_code(),
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
        ) {
            return E::Unavailable(e.to_string());
        }
        match e {
            StoreError::Invalid { field, reason } => E::Invalid { field, reason },
            StoreError::Conflict(m) => E::Conflict(m),
            StoreError::NotFound(m) => E::NotFound(m),
            StoreError::Closed(_) | StoreError::Locked(_) | StoreError::Unavailable(_) => E::Unavailable(e.to_string()),
            other => E::Backend(other.to_string()),
        }
    }
}

#[cfg(all(test, feature = "sqlite"))]
mod tests {
    use super::*;

    #[test]
    fn constraint_violations_map_to_conflict() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (a INTEGER PRIMARY KEY); INSERT INTO t VALUES (1);")
            .unwrap();
        let err = StoreError::from(conn.execute("INSERT INTO t VALUES (1)", []).unwrap_err());
        assert!(err.is_constraint_violation());
        assert!(matches!(err.duplicate(), StoreError::Sqlite(_)));
        assert!(matches!(crow_core::Error::from(err), crow_core::Error::Conflict(_)));
        let invalid = crow_core::Error::from(StoreError::invalid("cursor", "bad"));
        assert!(invalid.is_client_error());
        let closed = crow_core::Error::from(StoreError::Closed("gone".into()));
        assert!(matches!(closed, crow_core::Error::Unavailable(_)));
    }
}
