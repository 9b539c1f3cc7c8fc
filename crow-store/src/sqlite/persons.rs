//! [`PersonStore`] over SQLite: the statements and logic of [`crate::sql::persons`] on this
//! store's [`Sql`](crate::sql::Sql) executor, plus what only a file needs.
//!
//! No byte of an erased person may stay in the files. Every connection runs with
//! `PRAGMA secure_delete = ON` (see [`super::SqliteStore::open`]), so SQLite overwrites deleted
//! cells and freed pages with zeros; what is left is the write-ahead log, which still holds the
//! pages as they were before the erase (and, after a passive checkpoint, keeps old frames past its
//! write position). So the erase ends with `PRAGMA wal_checkpoint(TRUNCATE)`: every page goes to
//! the main file in its erased form and the log is cut to zero bytes. It runs even when the person
//! is unknown, so a retried erase also finishes a checkpoint that an earlier one could not.

use std::time::Duration;

use crow_core::model::Millis;
use crow_core::person::{Erasure, PersonData};
use crow_core::ports::PersonStore;
use rusqlite::{Connection, OpenFlags};

use super::{SqliteStore, configure};
use crate::error::StoreError;
use crate::sql::persons;

/// Attempts at a truncating checkpoint before giving up (each waits up to the busy timeout).
const CHECKPOINT_ATTEMPTS: u32 = 5;

impl SqliteStore {
    /// Copies every page of the write-ahead log into the main file and truncates the log to zero
    /// bytes (`PRAGMA wal_checkpoint(TRUNCATE)`), on a connection of its own. Waits for readers
    /// and the writer to let it (the busy timeout, a few times); `Unavailable` when they never do.
    ///
    /// With `secure_delete` on (it always is), deleted rows are zeros in the main file, so after
    /// this no deleted byte is left in the database's files.
    pub async fn truncate_wal(&self) -> Result<(), StoreError> {
        let path = self.inner.path.clone();
        let config = self.inner.config.clone();
        tokio::task::spawn_blocking(move || {
            let conn = Connection::open_with_flags(
                &path,
                OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )?;
            configure(&conn, &config)?;
            for attempt in 1..=CHECKPOINT_ATTEMPTS {
                let (busy, log, done): (i64, i64, i64) =
                    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                    })?;
                if busy == 0 {
                    tracing::debug!(log, done, attempt, "write-ahead log truncated");
                    return Ok(());
                }
                std::thread::sleep(Duration::from_millis(50 * u64::from(attempt)));
            }
            Err(StoreError::Closed(
                "the write-ahead log could not be truncated: readers or the writer kept it busy; retry".into(),
            ))
        })
        .await
        .map_err(|e| StoreError::Internal(format!("checkpoint task failed: {e}")))?
    }

    /// [`PersonStore::erase_person`] with this crate's error type.
    pub async fn erase_person_now(&self, org_id: &str, id: &str) -> Result<Option<Erasure>, StoreError> {
        self.erase_at(org_id, id, super::wall_clock_ms()).await
    }

    /// Erases (one batch of [`persons::erase_person`]), then truncates the write-ahead log.
    async fn erase_at(&self, org_id: &str, id: &str, now: Millis) -> Result<Option<Erasure>, StoreError> {
        let erased = persons::erase_person(self, org_id, id, now).await?;
        // Also when nothing was found: a retry finishes what a failed checkpoint left.
        self.truncate_wal().await?;
        if let Some(e) = &erased {
            tracing::debug!(
                interactions = e.counts.interactions,
                sessions = e.counts.sessions,
                identities = e.counts.identities,
                texts = e.counts.texts,
                jobs = e.counts.jobs,
                workflow_runs = e.counts.workflow_runs,
                "person erased"
            );
        }
        Ok(erased)
    }
}

#[async_trait::async_trait]
impl PersonStore for SqliteStore {
    async fn person_data(&self, org_id: &str, id: &str) -> crow_core::Result<Option<PersonData>> {
        Ok(persons::person_data(self, org_id, id).await?)
    }

    async fn erase_person(&self, org_id: &str, id: &str, now: Millis) -> crow_core::Result<Option<Erasure>> {
        Ok(self.erase_at(org_id, id, now).await?)
    }
}
