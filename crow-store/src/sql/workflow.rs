//! [`WorkflowStore`](crow_core::ports::WorkflowStore) on the SQL layer: the `workflow_steps` table,
//! one row per finished step of a run (a replayed step overwrites its row).

use std::collections::HashMap;

use crow_core::model::Millis;
use serde_json::Value;

use super::{Sql, Stmt};
use crate::error::StoreError;

/// [`WorkflowStore::load_steps`](crow_core::ports::WorkflowStore::load_steps): the outputs of the
/// finished steps of `run_id`, by step name.
pub async fn load_steps<S: Sql + ?Sized>(db: &S, run_id: &str) -> Result<HashMap<String, Value>, StoreError> {
    let rows = db
        .query_point(Stmt::new("SELECT step, output FROM workflow_steps WHERE run_id = ?1").bind(run_id))
        .await?;
    rows.iter().map(|r| Ok((r.text(0)?, r.json(1)?))).collect()
}

/// [`WorkflowStore::save_step`](crow_core::ports::WorkflowStore::save_step): records a finished
/// step and its output, replacing an earlier record of the same step.
pub async fn save_step<S: Sql + ?Sized>(
    db: &S,
    run_id: &str,
    step: &str,
    output: &Value,
    now: Millis,
) -> Result<(), StoreError> {
    let output = serde_json::to_string(output)?;
    db.execute(
        Stmt::new(
            "INSERT INTO workflow_steps (run_id, step, output, finished_at) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (run_id, step) DO UPDATE SET output = excluded.output, finished_at = excluded.finished_at",
        )
        .bind(run_id)
        .bind(step)
        .bind(output)
        .bind(now),
    )
    .await?;
    Ok(())
}

/// [`WorkflowStore::finish_run`](crow_core::ports::WorkflowStore::finish_run): drops the step
/// records of `run_id`.
pub async fn finish_run<S: Sql + ?Sized>(db: &S, run_id: &str, _now: Millis) -> Result<(), StoreError> {
    db.execute(Stmt::new("DELETE FROM workflow_steps WHERE run_id = ?1").bind(run_id))
        .await?;
    Ok(())
}
