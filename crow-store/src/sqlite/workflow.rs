//! [`WorkflowStore`] over SQLite: `workflow_steps`, one row per finished step of a run.

use std::collections::HashMap;

use crow_core::model::Millis;
use crow_core::ports::WorkflowStore;
use rusqlite::params;
use serde_json::Value;

use super::SqliteStore;
use crate::error::StoreError;

#[async_trait::async_trait]
impl WorkflowStore for SqliteStore {
    async fn load_steps(&self, run_id: &str) -> crow_core::Result<HashMap<String, Value>> {
        let run = run_id.to_owned();
        Ok(self.read_point(move |conn| {
            let mut stmt = conn.prepare_cached("SELECT step, output FROM workflow_steps WHERE run_id = ?1")?;
            let mut rows = stmt.query([run])?;
            let mut out = HashMap::new();
            while let Some(r) = rows.next()? {
                let step: String = r.get(0)?;
                let output: Value = serde_json::from_str(r.get_ref(1)?.as_str()?)?;
                out.insert(step, output);
            }
            Ok::<_, StoreError>(out)
        })?)
    }

    async fn save_step(&self, run_id: &str, step: &str, output: &Value, now: Millis) -> crow_core::Result<()> {
        let (run, step) = (run_id.to_owned(), step.to_owned());
        let output = serde_json::to_string(output).map_err(StoreError::from)?;
        Ok(self
            .write(1, move |conn| {
                conn.prepare_cached(
                    "INSERT INTO workflow_steps (run_id, step, output, finished_at) VALUES (?1, ?2, ?3, ?4) \
                     ON CONFLICT (run_id, step) DO UPDATE SET output = excluded.output, finished_at = excluded.finished_at",
                )?
                .execute(params![run, step, output, now])?;
                Ok(())
            })
            .await?)
    }

    async fn finish_run(&self, run_id: &str, _now: Millis) -> crow_core::Result<()> {
        let run = run_id.to_owned();
        Ok(self
            .write(1, move |conn| {
                conn.prepare_cached("DELETE FROM workflow_steps WHERE run_id = ?1")?
                    .execute([run])?;
                Ok(())
            })
            .await?)
    }
}
