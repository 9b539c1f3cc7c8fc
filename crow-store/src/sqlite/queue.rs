//! [`JobQueue`] over SQLite: the `jobs` table.
//!
//! A job is `ready` (waiting, or leased while `lease_until` is set) or `dead`. `reserve` leases
//! the oldest deliverable jobs (`not_before <= now`, no lease or an expired one) with one
//! `UPDATE ... RETURNING`, counting the delivery in `attempts`; `ack` deletes; `fail` clears the
//! lease and pushes `not_before` back by the policy's backoff, or marks the job dead once it has
//! been delivered `max_attempts` times. Ids come from `AUTOINCREMENT`, so they are never reused.

use crow_core::model::Millis;
use crow_core::ports::{Job, JobQueue, NewJob, QueueDepth, RetryPolicy};
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{SqliteStore, clamp_limit};
use crate::error::StoreError;

/// A job ready to insert (payload serialized by the caller's task).
pub(crate) struct JobRow {
    queue: String,
    kind: String,
    payload: String,
    not_before: Option<Millis>,
}

impl JobRow {
    pub(crate) fn new(job: NewJob) -> Result<JobRow, StoreError> {
        if job.queue.is_empty() {
            return Err(StoreError::invalid("queue", "empty queue name"));
        }
        Ok(JobRow {
            payload: serde_json::to_string(&job.payload)?,
            queue: job.queue,
            kind: job.kind,
            not_before: job.not_before,
        })
    }
}

/// Inserts jobs; a job without `not_before` is deliverable at once (`not_before = 0`), whatever
/// clock the consumer's `now` comes from.
pub(crate) fn insert_jobs(conn: &Connection, jobs: &[JobRow], enqueued_at: Millis) -> Result<(), StoreError> {
    if jobs.is_empty() {
        return Ok(());
    }
    let mut stmt = conn.prepare_cached(
        "INSERT INTO jobs (queue, kind, payload, status, attempts, not_before, enqueued_at) \
         VALUES (?1, ?2, ?3, 'ready', 0, ?4, ?5)",
    )?;
    for j in jobs {
        stmt.execute(params![
            j.queue,
            j.kind,
            j.payload,
            j.not_before.unwrap_or(0),
            enqueued_at
        ])?;
    }
    Ok(())
}

const JOB_COLS: &str = "id, queue, kind, payload, attempts, enqueued_at, lease_until";

fn job_from_row(row: &Row<'_>) -> rusqlite::Result<Result<Job, StoreError>> {
    let payload = row.get_ref(3)?.as_str()?;
    let payload = match serde_json::from_str(payload) {
        Ok(p) => p,
        Err(e) => return Ok(Err(e.into())),
    };
    Ok(Ok(Job {
        id: row.get(0)?,
        queue: row.get(1)?,
        kind: row.get(2)?,
        payload,
        attempts: row.get(4)?,
        enqueued_at: row.get(5)?,
        lease_until: row.get::<_, Option<i64>>(6)?.unwrap_or(0),
    }))
}

impl SqliteStore {
    /// [`JobQueue::enqueue`] with this crate's error type.
    pub async fn enqueue_jobs(&self, jobs: Vec<NewJob>, now: Millis) -> Result<(), StoreError> {
        if jobs.is_empty() {
            return Ok(());
        }
        let rows = jobs.into_iter().map(JobRow::new).collect::<Result<Vec<_>, _>>()?;
        self.write(rows.len(), move |conn| insert_jobs(conn, &rows, now)).await
    }
}

#[async_trait::async_trait]
impl JobQueue for SqliteStore {
    async fn enqueue(&self, jobs: Vec<NewJob>, now: Millis) -> crow_core::Result<()> {
        Ok(self.enqueue_jobs(jobs, now).await?)
    }

    async fn reserve(&self, queue: &str, max: usize, lease_ms: i64, now: Millis) -> crow_core::Result<Vec<Job>> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let queue = queue.to_owned();
        let max = max.min(10_000) as i64;
        let lease_until = now.saturating_add(lease_ms.max(0));
        Ok(self
            .write(1, move |conn| {
                let mut stmt = conn.prepare_cached(&format!(
                    "UPDATE jobs SET lease_until = ?3, attempts = attempts + 1 WHERE id IN (\
                     SELECT id FROM jobs WHERE queue = ?1 AND status = 'ready' AND not_before <= ?2 \
                     AND (lease_until IS NULL OR lease_until <= ?2) ORDER BY id LIMIT ?4) \
                     RETURNING {JOB_COLS}"
                ))?;
                let mut jobs = stmt
                    .query_map(params![queue, now, lease_until, max], job_from_row)?
                    .collect::<Result<Result<Vec<Job>, StoreError>, rusqlite::Error>>()??;
                // RETURNING gives no order: oldest first is the contract.
                jobs.sort_by_key(|j| j.id);
                Ok(jobs)
            })
            .await?)
    }

    async fn ack(&self, job_id: i64) -> crow_core::Result<()> {
        Ok(self
            .write(1, move |conn| {
                conn.prepare_cached("DELETE FROM jobs WHERE id = ?1")?
                    .execute([job_id])?;
                Ok(())
            })
            .await?)
    }

    async fn release_leases(&self, queue: &str) -> crow_core::Result<u64> {
        let queue = queue.to_owned();
        Ok(self
            .write(1, move |conn| {
                let n = conn
                    .prepare_cached(
                        "UPDATE jobs SET lease_until = NULL \
                         WHERE queue = ?1 AND status = 'ready' AND lease_until IS NOT NULL",
                    )?
                    .execute([queue])?;
                Ok(n as u64)
            })
            .await?)
    }

    async fn fail(
        &self,
        job_id: i64,
        error: &str,
        policy: &RetryPolicy,
        now: Millis,
        jitter: f64,
    ) -> crow_core::Result<bool> {
        let error = error.to_owned();
        let policy = *policy;
        Ok(self
            .write(1, move |conn| {
                let row: Option<(u32, String)> = conn
                    .prepare_cached("SELECT attempts, status FROM jobs WHERE id = ?1")?
                    .query_row([job_id], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()?;
                let Some((attempts, status)) = row else {
                    return Err(StoreError::NotFound(format!("job {job_id}")));
                };
                if status == "dead" {
                    return Ok(true);
                }
                if attempts >= policy.max_attempts {
                    conn.prepare_cached("UPDATE jobs SET status = 'dead', last_error = ?2 WHERE id = ?1")?
                        .execute(params![job_id, error])?;
                    return Ok(true);
                }
                let not_before = now.saturating_add(policy.backoff(attempts, jitter));
                conn.prepare_cached(
                    "UPDATE jobs SET lease_until = NULL, not_before = ?2, last_error = ?3 WHERE id = ?1",
                )?
                .execute(params![job_id, not_before, error])?;
                Ok(false)
            })
            .await?)
    }

    async fn depth(&self, queue: &str) -> crow_core::Result<QueueDepth> {
        let queue = queue.to_owned();
        Ok(self
            .read(move |conn| {
                Ok(conn
                    .prepare_cached(
                        "SELECT coalesce(sum(status = 'ready' AND lease_until IS NULL), 0), \
                         coalesce(sum(status = 'ready' AND lease_until IS NOT NULL), 0), \
                         coalesce(sum(status = 'dead'), 0) FROM jobs WHERE queue = ?1",
                    )?
                    .query_row([queue], |r| {
                        Ok(QueueDepth {
                            ready: r.get(0)?,
                            in_flight: r.get(1)?,
                            dead: r.get(2)?,
                        })
                    })?)
            })
            .await?)
    }

    async fn dead_letters(&self, queue: &str, limit: u32) -> crow_core::Result<Vec<Job>> {
        let queue = queue.to_owned();
        let limit = clamp_limit(limit) as i64;
        Ok(self
            .read(move |conn| {
                conn.prepare_cached(&format!(
                    "SELECT {JOB_COLS} FROM jobs WHERE queue = ?1 AND status = 'dead' ORDER BY id LIMIT ?2"
                ))?
                .query_map(params![queue, limit], job_from_row)?
                .collect::<Result<Result<Vec<Job>, StoreError>, rusqlite::Error>>()?
            })
            .await?)
    }
}

impl SqliteStore {
    /// The last error recorded for a job (by [`JobQueue::fail`]), if the job exists.
    pub async fn job_last_error(&self, job_id: i64) -> Result<Option<String>, StoreError> {
        self.read(move |conn| {
            Ok(conn
                .prepare_cached("SELECT last_error FROM jobs WHERE id = ?1")?
                .query_row([job_id], |r| r.get::<_, Option<String>>(0))
                .optional()?
                .flatten())
        })
        .await
    }
}
