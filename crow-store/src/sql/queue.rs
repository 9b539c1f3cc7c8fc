//! [`JobQueue`](crow_core::ports::JobQueue) on the SQL layer: the `jobs` table.
//!
//! A job is `ready` (waiting, or leased while `lease_until` is set) or `dead`. Ids come from
//! `AUTOINCREMENT`, so they are never reused.
//!
//! - [`reserve`] leases the oldest deliverable jobs (`not_before <= now`, no lease or an expired
//!   one) with **one** `UPDATE … RETURNING` whatever `max` is (D1 counts queries per
//!   invocation), counting the delivery in `attempts`.
//! - [`ack`] deletes; acking an unknown or already-acked job is not an error.
//! - [`fail`] clears the lease and pushes `not_before` back by the policy's backoff, or marks the
//!   job dead once it has been delivered `max_attempts` times; on a dead job it answers `true`
//!   and changes nothing, on an unknown job it is `NotFound`. Without interactive transactions it
//!   reads `attempts`, decides in Rust, and writes with `WHERE attempts = ?read AND status =
//!   'ready'`; when a concurrent `reserve` (or `fail`) got in between, nothing changes and it
//!   reads again.

use crow_core::model::Millis;
use crow_core::ports::{Job, NewJob, QueueDepth, RetryPolicy};
use serde::Serialize;

use super::{Row, Sql, Stmt, clamp_limit};
use crate::error::StoreError;

/// A job ready to insert, as one element of the JSON array [`insert_jobs`] binds.
#[derive(Debug, Clone, Serialize)]
pub struct JobRow {
    queue: String,
    kind: String,
    payload: String,
    not_before: Millis,
}

impl JobRow {
    /// Checks and serializes a job; an empty queue name is `Invalid`.
    pub fn new(job: NewJob) -> Result<JobRow, StoreError> {
        if job.queue.is_empty() {
            return Err(StoreError::invalid("queue", "empty queue name"));
        }
        Ok(JobRow {
            payload: serde_json::to_string(&job.payload)?,
            queue: job.queue,
            kind: job.kind,
            not_before: job.not_before.unwrap_or(0),
        })
    }

    /// [`JobRow::new`] over a list.
    pub fn all(jobs: Vec<NewJob>) -> Result<Vec<JobRow>, StoreError> {
        jobs.into_iter().map(JobRow::new).collect()
    }

    /// Roughly the bytes this job adds to the JSON array [`insert_jobs`] binds.
    fn json_size(&self) -> usize {
        // The payload is escaped again inside the array: count it twice to stay on the safe side.
        64 + self.queue.len() + self.kind.len() + 2 * self.payload.len()
    }
}

/// One statement inserting `jobs` (a job without `not_before` is deliverable at once,
/// `not_before = 0`, whatever clock the consumer's `now` comes from). With `only_after_changes`,
/// the jobs are inserted only when the statement just before it in the same batch changed a
/// row (`changes() > 0`): the follow-up of an append that stored something new.
pub fn insert_jobs(jobs: &[JobRow], enqueued_at: Millis, only_after_changes: bool) -> Stmt {
    if only_after_changes {
        insert_jobs_where(jobs, enqueued_at, Some("changes() > 0"))
            .with_local(super::Local::IfChanged(insert_jobs_where(jobs, enqueued_at, None)))
    } else {
        insert_jobs_where(jobs, enqueued_at, None)
    }
}

/// [`insert_jobs`] inserting only when `condition` (SQL) holds. The statement binds the jobs as
/// `?1` and `enqueued_at` as `?2`; the condition's own parameters are `?3` on, bound by the
/// caller after this returns.
pub fn insert_jobs_where(jobs: &[JobRow], enqueued_at: Millis, condition: Option<&str>) -> Stmt {
    let guard = condition.map(|c| format!(" WHERE {c}")).unwrap_or_default();
    Stmt::new(format!(
        "INSERT INTO jobs (queue, kind, payload, status, attempts, not_before, enqueued_at) \
         SELECT j.value ->> '$.queue', j.value ->> '$.kind', j.value ->> '$.payload', 'ready', 0, \
         j.value ->> '$.not_before', ?2 FROM json_each(?1) AS j{guard}"
    ))
    .bind_list(jobs)
    .bind(enqueued_at)
}

/// The most jobs one [`reserve`] leases.
const RESERVE_MAX: usize = 10_000;

/// How many times [`fail`] reads again after a concurrent change beat its write.
const FAIL_TRIES: usize = 8;

/// The columns of a [`Job`], each aliased to a plain distinct name (D1 returns rows keyed by
/// column name), in [`job_from_row`]'s order.
const JOB_COLS: &str = "id AS id, queue AS queue, kind AS kind, payload AS payload, attempts AS attempts, \
                        enqueued_at AS enqueued_at, lease_until AS lease_until";

fn job_from_row(row: &Row) -> Result<Job, StoreError> {
    Ok(Job {
        id: row.i64(0)?,
        queue: row.text(1)?,
        kind: row.text(2)?,
        payload: row.json(3)?,
        attempts: attempts_of(row, 4)?,
        enqueued_at: row.i64(5)?,
        lease_until: row.opt_i64(6)?.unwrap_or(0),
    })
}

fn attempts_of(row: &Row, i: usize) -> Result<u32, StoreError> {
    let n = row.i64(i)?;
    u32::try_from(n).map_err(|_| StoreError::Column {
        index: i,
        reason: format!("attempts {n} out of range"),
    })
}

fn count_of(row: &Row, i: usize) -> Result<u64, StoreError> {
    let n = row.i64(i)?;
    u64::try_from(n).map_err(|_| StoreError::Column {
        index: i,
        reason: format!("count {n} is negative"),
    })
}

/// [`JobQueue::enqueue`](crow_core::ports::JobQueue::enqueue): inserts the jobs, all or none
/// (an empty queue name is `Invalid` and inserts nothing).
pub async fn enqueue<S: Sql + ?Sized>(db: &S, jobs: Vec<NewJob>, now: Millis) -> Result<(), StoreError> {
    if jobs.is_empty() {
        return Ok(());
    }
    let rows = JobRow::all(jobs)?;
    let stmts = enqueue_stmts(&rows, now);
    db.batch(stmts).await?;
    Ok(())
}

/// The statements inserting `rows`: one per `CHUNK_BYTES` of jobs, in order.
fn enqueue_stmts(rows: &[JobRow], now: Millis) -> Vec<Stmt> {
    let mut stmts = Vec::new();
    let mut start = 0;
    let mut size = 0;
    for (i, row) in rows.iter().enumerate() {
        let s = row.json_size();
        if i > start && size + s > super::CHUNK_BYTES {
            stmts.push(insert_jobs(&rows[start..i], now, false));
            start = i;
            size = 0;
        }
        size += s;
    }
    if start < rows.len() {
        stmts.push(insert_jobs(&rows[start..], now, false));
    }
    stmts
}

/// [`JobQueue::reserve`](crow_core::ports::JobQueue::reserve): leases up to `max` (at most
/// 10 000) deliverable jobs of `queue` until `now + lease_ms`, oldest first, in one statement.
pub async fn reserve<S: Sql + ?Sized>(
    db: &S,
    queue: &str,
    max: usize,
    lease_ms: i64,
    now: Millis,
) -> Result<Vec<Job>, StoreError> {
    if max == 0 {
        return Ok(Vec::new());
    }
    let lease_until = now.saturating_add(lease_ms.max(0));
    let stmt = Stmt::new(format!(
        "UPDATE jobs SET lease_until = ?3, attempts = attempts + 1 WHERE id IN (\
         SELECT id FROM jobs WHERE queue = ?1 AND status = 'ready' AND not_before <= ?2 \
         AND (lease_until IS NULL OR lease_until <= ?2) ORDER BY id LIMIT ?4) \
         RETURNING {JOB_COLS}"
    ))
    .bind(queue)
    .bind(now)
    .bind(lease_until)
    .bind(max.min(RESERVE_MAX));
    let done = db.execute(stmt).await?;
    let mut jobs = done.rows.iter().map(job_from_row).collect::<Result<Vec<_>, _>>()?;
    // RETURNING gives no order: oldest first is the contract.
    jobs.sort_by_key(|j| j.id);
    Ok(jobs)
}

/// [`JobQueue::ack`](crow_core::ports::JobQueue::ack): deletes the job; an unknown or
/// already-acked one is not an error.
pub async fn ack<S: Sql + ?Sized>(db: &S, job_id: i64) -> Result<(), StoreError> {
    db.execute(Stmt::new("DELETE FROM jobs WHERE id = ?1").bind(job_id))
        .await?;
    Ok(())
}

/// What [`fail`] does to a job it read as `ready` with `attempts` deliveries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    /// Delivered `max_attempts` times: dead letter.
    Dead,
    /// Retry once `not_before` has passed.
    Retry { not_before: Millis },
}

fn decide(attempts: u32, policy: &RetryPolicy, now: Millis, jitter: f64) -> Failure {
    if attempts >= policy.max_attempts {
        Failure::Dead
    } else {
        Failure::Retry {
            not_before: now.saturating_add(policy.backoff(attempts, jitter)),
        }
    }
}

/// [`JobQueue::fail`](crow_core::ports::JobQueue::fail): schedules a retry by `policy`'s backoff,
/// or dead-letters the job after `max_attempts` deliveries; `true` when the job is dead. A dead
/// job answers `true` and changes nothing; an unknown job is `NotFound`.
pub async fn fail<S: Sql + ?Sized>(
    db: &S,
    job_id: i64,
    error: &str,
    policy: &RetryPolicy,
    now: Millis,
    jitter: f64,
) -> Result<bool, StoreError> {
    for _ in 0..FAIL_TRIES {
        let row = db
            .query_one(Stmt::new("SELECT attempts, status FROM jobs WHERE id = ?1").bind(job_id))
            .await?;
        let Some(row) = row else {
            return Err(StoreError::NotFound(format!("job {job_id}")));
        };
        let attempts = attempts_of(&row, 0)?;
        if row.text(1)? == "dead" {
            return Ok(true);
        }
        let failure = decide(attempts, policy, now, jitter);
        // Written only if the job is still as read: a reserve in between bumped `attempts`.
        let stmt = match failure {
            Failure::Dead => Stmt::new(
                "UPDATE jobs SET status = 'dead', last_error = ?2 \
                 WHERE id = ?1 AND attempts = ?3 AND status = 'ready'",
            )
            .bind(job_id)
            .bind(error)
            .bind(attempts),
            Failure::Retry { not_before } => Stmt::new(
                "UPDATE jobs SET lease_until = NULL, not_before = ?2, last_error = ?3 \
                 WHERE id = ?1 AND attempts = ?4 AND status = 'ready'",
            )
            .bind(job_id)
            .bind(not_before)
            .bind(error)
            .bind(attempts),
        };
        if db.execute(stmt).await?.changes > 0 {
            return Ok(failure == Failure::Dead);
        }
    }
    Err(StoreError::Conflict(format!(
        "job {job_id} kept changing while it was failed; try again"
    )))
}

/// [`JobQueue::depth`](crow_core::ports::JobQueue::depth): ready, in-flight and dead counts of
/// `queue`.
pub async fn depth<S: Sql + ?Sized>(db: &S, queue: &str) -> Result<QueueDepth, StoreError> {
    let rows = db
        .query(
            Stmt::new(
                "SELECT coalesce(sum(status = 'ready' AND lease_until IS NULL), 0) AS ready, \
                 coalesce(sum(status = 'ready' AND lease_until IS NOT NULL), 0) AS in_flight, \
                 coalesce(sum(status = 'dead'), 0) AS dead FROM jobs WHERE queue = ?1",
            )
            .bind(queue),
        )
        .await?;
    let Some(row) = rows.first() else {
        return Ok(QueueDepth::default());
    };
    Ok(QueueDepth {
        ready: count_of(row, 0)?,
        in_flight: count_of(row, 1)?,
        dead: count_of(row, 2)?,
    })
}

/// [`JobQueue::dead_letters`](crow_core::ports::JobQueue::dead_letters): the dead jobs of `queue`,
/// oldest (lowest id) first; `limit` 0 means 50, at most 1000.
pub async fn dead_letters<S: Sql + ?Sized>(db: &S, queue: &str, limit: u32) -> Result<Vec<Job>, StoreError> {
    let rows = db
        .query(
            Stmt::new(format!(
                "SELECT {JOB_COLS} FROM jobs WHERE queue = ?1 AND status = 'dead' ORDER BY id LIMIT ?2"
            ))
            .bind(queue)
            .bind(clamp_limit(limit)),
        )
        .await?;
    rows.iter().map(job_from_row).collect()
}

/// [`JobQueue::release_leases`](crow_core::ports::JobQueue::release_leases): ends every lease of
/// `queue`; how many.
pub async fn release_leases<S: Sql + ?Sized>(db: &S, queue: &str) -> Result<u64, StoreError> {
    let done = db
        .execute(
            Stmt::new(
                "UPDATE jobs SET lease_until = NULL \
                 WHERE queue = ?1 AND status = 'ready' AND lease_until IS NOT NULL",
            )
            .bind(queue),
        )
        .await?;
    Ok(done.changes)
}

/// The last error recorded for a job (by [`fail`]), if the job exists.
pub async fn job_last_error<S: Sql + ?Sized>(db: &S, job_id: i64) -> Result<Option<String>, StoreError> {
    match db
        .query_one(Stmt::new("SELECT last_error FROM jobs WHERE id = ?1").bind(job_id))
        .await?
    {
        Some(row) => row.opt_text(0),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fail_decides_dead_after_max_attempts_else_backs_off() {
        let policy = RetryPolicy {
            max_attempts: 3,
            base_delay_ms: 100,
            max_delay_ms: 10_000,
        };
        assert_eq!(decide(1, &policy, 1_000, 1.0), Failure::Retry { not_before: 1_100 });
        assert_eq!(decide(2, &policy, 1_000, 0.0), Failure::Retry { not_before: 1_100 });
        assert_eq!(decide(3, &policy, 1_000, 0.5), Failure::Dead);
        assert_eq!(
            decide(1, &policy, i64::MAX, 1.0),
            Failure::Retry { not_before: i64::MAX }
        );
    }

    #[test]
    fn a_large_enqueue_splits_into_statements_of_bounded_size() {
        let big = |n: i64| {
            JobRow::new(NewJob::new(
                "q",
                "k",
                serde_json::json!({ "n": n, "pad": "x".repeat(100_000) }),
            ))
            .unwrap()
        };
        let rows: Vec<JobRow> = (0..12).map(big).collect();
        let stmts = enqueue_stmts(&rows, 7);
        assert!(stmts.len() > 1, "{}", stmts.len());
        let mut seen = Vec::new();
        for stmt in &stmts {
            let super::super::SqlValue::Text(json) = &stmt.params()[0] else {
                panic!()
            };
            assert!(json.len() <= crate::sql::CHUNK_BYTES, "{}", json.len());
            let jobs: Vec<serde_json::Value> = serde_json::from_str(json).unwrap();
            for j in jobs {
                let payload: serde_json::Value = serde_json::from_str(j["payload"].as_str().unwrap()).unwrap();
                seen.push(payload["n"].as_i64().unwrap());
            }
        }
        assert_eq!(seen, (0..12).collect::<Vec<_>>(), "every job once, in order");
        assert_eq!(enqueue_stmts(&rows[..1], 7).len(), 1);
        assert!(enqueue_stmts(&[], 7).is_empty());
    }

    /// An executor that lets a "reserve" in between `fail`'s read and its write, once.
    #[cfg(feature = "sqlite")]
    struct Racy {
        inner: crate::SqliteStore,
        raced: std::sync::atomic::AtomicBool,
    }

    #[cfg(feature = "sqlite")]
    #[async_trait::async_trait]
    impl Sql for Racy {
        async fn query(&self, stmt: Stmt) -> Result<Vec<Row>, StoreError> {
            self.inner.query(stmt).await
        }

        async fn batch(&self, stmts: Vec<Stmt>) -> Result<Vec<super::super::Done>, StoreError> {
            let failing = stmts.iter().any(|s| s.sql().contains("AND attempts = "));
            if failing && !self.raced.swap(true, std::sync::atomic::Ordering::SeqCst) {
                self.inner
                    .execute(Stmt::new("UPDATE jobs SET attempts = attempts + 1"))
                    .await?;
            }
            self.inner.batch(stmts).await
        }
    }

    #[cfg(feature = "sqlite")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn fail_reads_again_when_a_delivery_got_in_between() {
        let dir = tempfile::tempdir().unwrap();
        let db = Racy {
            inner: crate::SqliteStore::open(dir.path(), crate::StoreConfig::default()).unwrap(),
            raced: false.into(),
        };
        let policy = RetryPolicy {
            max_attempts: 2,
            base_delay_ms: 100,
            max_delay_ms: 10_000,
        };
        enqueue(&db, vec![NewJob::new("q", "k", serde_json::json!(1))], 0)
            .await
            .unwrap();
        let got = reserve(&db, "q", 1, 50, 0).await.unwrap();
        assert_eq!(got[0].attempts, 1);
        // Read with 1 delivery (a retry), but a second delivery came first: now it is dead.
        assert!(fail(&db, got[0].id, "boom", &policy, 0, 0.0).await.unwrap());
        let dead = dead_letters(&db, "q", 0).await.unwrap();
        assert_eq!(dead.len(), 1);
        assert_eq!(dead[0].attempts, 2);
        assert_eq!(job_last_error(&db, got[0].id).await.unwrap().as_deref(), Some("boom"));
        assert_eq!(depth(&db, "q").await.unwrap().dead, 1);
        assert_eq!(
            release_leases(&db, "q").await.unwrap(),
            0,
            "a dead job holds no lease to release"
        );
    }
}
