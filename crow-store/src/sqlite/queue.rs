//! [`JobQueue`] over SQLite: the statements and logic of [`crate::sql::queue`] on this store's
//! [`Sql`](crate::sql::Sql) executor.

use crow_core::model::Millis;
use crow_core::ports::{Job, JobQueue, NewJob, QueueDepth, RetryPolicy};

use super::SqliteStore;
use crate::error::StoreError;
use crate::sql::queue;

impl SqliteStore {
    /// [`JobQueue::enqueue`] with this crate's error type.
    pub async fn enqueue_jobs(&self, jobs: Vec<NewJob>, now: Millis) -> Result<(), StoreError> {
        queue::enqueue(self, jobs, now).await
    }

    /// The last error recorded for a job (by [`JobQueue::fail`]), if the job exists.
    pub async fn job_last_error(&self, job_id: i64) -> Result<Option<String>, StoreError> {
        queue::job_last_error(self, job_id).await
    }
}

#[async_trait::async_trait]
impl JobQueue for SqliteStore {
    async fn enqueue(&self, jobs: Vec<NewJob>, now: Millis) -> crow_core::Result<()> {
        Ok(queue::enqueue(self, jobs, now).await?)
    }

    async fn reserve(&self, queue: &str, max: usize, lease_ms: i64, now: Millis) -> crow_core::Result<Vec<Job>> {
        Ok(queue::reserve(self, queue, max, lease_ms, now).await?)
    }

    async fn ack(&self, job_id: i64) -> crow_core::Result<()> {
        Ok(queue::ack(self, job_id).await?)
    }

    async fn fail(
        &self,
        job_id: i64,
        error: &str,
        policy: &RetryPolicy,
        now: Millis,
        jitter: f64,
    ) -> crow_core::Result<bool> {
        Ok(queue::fail(self, job_id, error, policy, now, jitter).await?)
    }

    async fn depth(&self, queue: &str) -> crow_core::Result<QueueDepth> {
        Ok(queue::depth(self, queue).await?)
    }

    async fn dead_letters(&self, queue: &str, limit: u32) -> crow_core::Result<Vec<Job>> {
        Ok(queue::dead_letters(self, queue, limit).await?)
    }

    async fn release_leases(&self, queue: &str) -> crow_core::Result<u64> {
        Ok(queue::release_leases(self, queue).await?)
    }
}
