//! [`WorkflowStore`] over SQLite: the statements of [`crate::sql::workflow`] on this store's
//! [`Sql`](crate::sql::Sql) executor.

use std::collections::HashMap;

use crow_core::model::Millis;
use crow_core::ports::WorkflowStore;
use serde_json::Value;

use super::SqliteStore;
use crate::sql::workflow;

#[async_trait::async_trait]
impl WorkflowStore for SqliteStore {
    async fn load_steps(&self, run_id: &str) -> crow_core::Result<HashMap<String, Value>> {
        Ok(workflow::load_steps(self, run_id).await?)
    }

    async fn save_step(&self, run_id: &str, step: &str, output: &Value, now: Millis) -> crow_core::Result<()> {
        Ok(workflow::save_step(self, run_id, step, output, now).await?)
    }

    async fn finish_run(&self, run_id: &str, now: Millis) -> crow_core::Result<()> {
        Ok(workflow::finish_run(self, run_id, now).await?)
    }
}
