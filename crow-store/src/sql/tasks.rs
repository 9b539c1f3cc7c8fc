//! [`TaskStore`](crow_core::ports::TaskStore) on the SQL layer: the `agent_tasks` table
//! (migration 0007). An update leaves a finished task alone in the same statement that writes
//! (`WHERE state IN (…unfinished…)`), so a cancel and a completion cannot overwrite each other.

use crow_core::agent::{AgentTask, TaskQuery, TaskState};
use crow_core::ports::Page;

use super::{Row, Sql, SqlValue, Stmt, clamp_limit, decode_id_cursor, encode_id_cursor, page_of};
use crate::error::StoreError;

/// The columns [`task_of`] reads, in order, each under a plain distinct name.
const COLS: &str = "id AS id, org_id AS org_id, context_id AS context_id, state AS state, skill AS skill, \
                    args AS args, actor AS actor, status_message AS status_message, history AS history, \
                    artifacts AS artifacts, created_at AS created_at, updated_at AS updated_at";

/// The states a task may still leave, as an SQL list.
const UNFINISHED: &str = "('submitted', 'working', 'input_required', 'auth_required')";

/// A task read with [`COLS`].
fn task_of(r: &Row) -> Result<AgentTask, StoreError> {
    let state = r.text(3)?;
    Ok(AgentTask {
        id: r.text(0)?,
        org_id: r.text(1)?,
        context_id: r.text(2)?,
        state: TaskState::parse(&state).ok_or_else(|| StoreError::Corrupt {
            path: "agent_tasks".into(),
            reason: format!("unknown state {state:?}"),
        })?,
        skill: r.text(4)?,
        args: r.json(5)?,
        actor: r.text(6)?,
        status_message: r.opt_text(7)?.as_deref().map(serde_json::from_str).transpose()?,
        history: r.json(8)?,
        artifacts: r.json(9)?,
        created_at: r.i64(10)?,
        updated_at: r.i64(11)?,
    })
}

fn get_stmt(org_id: &str, id: &str) -> Stmt {
    Stmt::new(format!("SELECT {COLS} FROM agent_tasks WHERE org_id = ?1 AND id = ?2"))
        .bind(org_id)
        .bind(id)
}

/// `WHERE org_id = ?` and the query's filters (plain `?` placeholders), with their parameters.
fn filters(org_id: &str, query: &TaskQuery) -> (String, Vec<SqlValue>) {
    let mut clause = String::from("org_id = ?");
    let mut values = vec![SqlValue::from(org_id)];
    if let Some(c) = &query.context_id {
        clause.push_str(" AND context_id = ?");
        values.push(c.into());
    }
    if let Some(s) = query.state {
        clause.push_str(" AND state = ?");
        values.push(s.as_str().into());
    }
    if let Some(at) = query.updated_since {
        clause.push_str(" AND updated_at >= ?");
        values.push(at.into());
    }
    (clause, values)
}

fn json_text(v: &impl serde::Serialize) -> Result<String, StoreError> {
    Ok(serde_json::to_string(v)?)
}

/// [`TaskStore::create_task`](crow_core::ports::TaskStore::create_task): stores the task under
/// `org_id`. `Invalid` naming `id` for an empty id; `Conflict` ("a task with id "X" exists")
/// when the org has one with this id.
pub async fn create_task<S: Sql + ?Sized>(db: &S, org_id: &str, task: &AgentTask) -> Result<(), StoreError> {
    if task.id.is_empty() {
        return Err(StoreError::invalid("id", "empty task id"));
    }
    let t = task;
    let stmt = Stmt::new(
        "INSERT INTO agent_tasks (org_id, id, context_id, state, skill, args, actor, status_message, \
         history, artifacts, created_at, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )
    .bind(org_id)
    .bind(&t.id)
    .bind(&t.context_id)
    .bind(t.state.as_str())
    .bind(&t.skill)
    .bind(json_text(&t.args)?)
    .bind(&t.actor)
    .bind(t.status_message.as_ref().map(json_text).transpose()?)
    .bind(json_text(&t.history)?)
    .bind(json_text(&t.artifacts)?)
    .bind(t.created_at)
    .bind(t.updated_at);
    match db.execute(stmt).await {
        Ok(_) => Ok(()),
        Err(err) if err.is_constraint_violation() => {
            if db.query_one(get_stmt(org_id, &t.id)).await?.is_some() {
                Err(StoreError::Conflict(format!("a task with id {:?} exists", t.id)))
            } else {
                Err(err)
            }
        }
        Err(err) => Err(err),
    }
}

/// [`TaskStore::get_task`](crow_core::ports::TaskStore::get_task): one task of the org.
pub async fn get_task<S: Sql + ?Sized>(db: &S, org_id: &str, id: &str) -> Result<Option<AgentTask>, StoreError> {
    db.query_one(get_stmt(org_id, id))
        .await?
        .as_ref()
        .map(task_of)
        .transpose()
}

/// [`TaskStore::list_tasks`](crow_core::ports::TaskStore::list_tasks): newest first (`created_at`,
/// then id, both descending), filtered by context, state and `updated_since`; the cursor is the
/// `(created_at, id)` of the last task of the previous page (anything else is `Invalid` naming
/// `cursor`).
pub async fn list_tasks<S: Sql + ?Sized>(
    db: &S,
    org_id: &str,
    query: &TaskQuery,
) -> Result<Page<AgentTask>, StoreError> {
    let limit = clamp_limit(query.limit);
    let after = query.cursor.as_deref().map(decode_id_cursor).transpose()?;
    let (mut clause, mut values) = filters(org_id, query);
    if let Some((t, id)) = after {
        clause.push_str(" AND (created_at < ? OR (created_at = ? AND id < ?))");
        values.extend([t.into(), t.into(), id.into()]);
    }
    values.push((limit + 1).into());
    let stmt = values.into_iter().fold(
        Stmt::new(format!(
            "SELECT {COLS} FROM agent_tasks WHERE {clause} ORDER BY created_at DESC, id DESC LIMIT ?"
        )),
        Stmt::bind,
    );
    let data = db
        .query(stmt)
        .await?
        .iter()
        .map(task_of)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(page_of(data, limit, |t| encode_id_cursor(t.created_at, &t.id)))
}

/// [`TaskStore::count_tasks`](crow_core::ports::TaskStore::count_tasks): how many tasks of the
/// org the query's filters match (limit and cursor ignored).
pub async fn count_tasks<S: Sql + ?Sized>(db: &S, org_id: &str, query: &TaskQuery) -> Result<u64, StoreError> {
    let (clause, values) = filters(org_id, query);
    let stmt = values.into_iter().fold(
        Stmt::new(format!("SELECT count(*) AS n FROM agent_tasks WHERE {clause}")),
        Stmt::bind,
    );
    match db.query(stmt).await?.first() {
        Some(row) => Ok(row.i64(0)?.max(0) as u64),
        None => Ok(0),
    }
}

/// [`TaskStore::update_task`](crow_core::ports::TaskStore::update_task): replaces the progress
/// fields (`state`, `status_message`, `history`, `artifacts`, `updated_at`) of the org's task,
/// only while it is unfinished (checked by the writing statement itself); `false` when there is
/// no such task or it is finished.
pub async fn update_task<S: Sql + ?Sized>(db: &S, org_id: &str, task: &AgentTask) -> Result<bool, StoreError> {
    let done = db
        .execute(
            Stmt::new(format!(
                "UPDATE agent_tasks SET state = ?3, status_message = ?4, history = ?5, artifacts = ?6, \
                 updated_at = ?7 WHERE org_id = ?1 AND id = ?2 AND state IN {UNFINISHED}"
            ))
            .bind(org_id)
            .bind(&task.id)
            .bind(task.state.as_str())
            .bind(task.status_message.as_ref().map(json_text).transpose()?)
            .bind(json_text(&task.history)?)
            .bind(json_text(&task.artifacts)?)
            .bind(task.updated_at),
        )
        .await?;
    Ok(done.changes > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unfinished_lists_exactly_the_states_that_are_not_terminal() {
        let listed: Vec<&str> = UNFINISHED
            .trim_matches(|c| c == '(' || c == ')')
            .split(", ")
            .map(|s| s.trim_matches('\''))
            .collect();
        let expected: Vec<&str> = TaskState::ALL
            .into_iter()
            .filter(|s| !s.is_terminal())
            .map(TaskState::as_str)
            .collect();
        assert_eq!(listed, expected);
    }
}
