//! [`TaskStore`] over SQLite: the `agent_tasks` table (migration 0007). An update leaves a
//! finished task alone in the same statement that writes (`WHERE state NOT IN (...)`), so a
//! cancel and a completion cannot overwrite each other.

use crow_core::agent::{AgentTask, TaskQuery, TaskState};
use crow_core::ports::{Page, TaskStore};
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};

use super::{SqliteStore, clamp_limit, decode_id_cursor, encode_id_cursor};
use crate::error::StoreError;

const COLS: &str =
    "id, org_id, context_id, state, skill, args, actor, status_message, history, artifacts, created_at, updated_at";

/// The states a task may still leave, as an SQL list.
const UNFINISHED: &str = "('submitted', 'working', 'input_required', 'auth_required')";

fn task_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<AgentTask, StoreError>> {
    let id: String = r.get(0)?;
    let org_id: String = r.get(1)?;
    let context_id: String = r.get(2)?;
    let state: String = r.get(3)?;
    let skill: String = r.get(4)?;
    let args: String = r.get(5)?;
    let actor: String = r.get(6)?;
    let status_message: Option<String> = r.get(7)?;
    let history: String = r.get(8)?;
    let artifacts: String = r.get(9)?;
    let (created_at, updated_at) = (r.get(10)?, r.get(11)?);
    Ok((|| {
        Ok(AgentTask {
            id,
            org_id,
            context_id,
            state: TaskState::parse(&state).ok_or_else(|| StoreError::Corrupt {
                path: "agent_tasks".into(),
                reason: format!("unknown state {state:?}"),
            })?,
            skill,
            args: serde_json::from_str(&args)?,
            actor,
            status_message: status_message.as_deref().map(serde_json::from_str).transpose()?,
            history: serde_json::from_str(&history)?,
            artifacts: serde_json::from_str(&artifacts)?,
            created_at,
            updated_at,
        })
    })())
}

fn get(conn: &Connection, org: &str, id: &str) -> Result<Option<AgentTask>, StoreError> {
    conn.prepare_cached(&format!("SELECT {COLS} FROM agent_tasks WHERE org_id = ?1 AND id = ?2"))?
        .query_row(params![org, id], task_row)
        .optional()?
        .transpose()
}

/// The filter of a query after `org_id = ?1`, and its parameters (numbered from `?2`).
fn filters(query: &TaskQuery) -> (String, Vec<SqlValue>) {
    let mut clause = String::new();
    let mut values = Vec::new();
    if let Some(c) = &query.context_id {
        values.push(SqlValue::Text(c.clone()));
        clause.push_str(&format!(" AND context_id = ?{}", values.len() + 1));
    }
    if let Some(s) = query.state {
        values.push(SqlValue::Text(s.as_str().to_owned()));
        clause.push_str(&format!(" AND state = ?{}", values.len() + 1));
    }
    if let Some(at) = query.updated_since {
        values.push(SqlValue::Integer(at));
        clause.push_str(&format!(" AND updated_at >= ?{}", values.len() + 1));
    }
    (clause, values)
}

fn json_text(v: &impl serde::Serialize) -> Result<String, StoreError> {
    Ok(serde_json::to_string(v)?)
}

#[async_trait::async_trait]
impl TaskStore for SqliteStore {
    async fn create_task(&self, org_id: &str, task: &AgentTask) -> crow_core::Result<()> {
        if task.id.is_empty() {
            return Err(StoreError::invalid("id", "empty task id").into());
        }
        let args = json_text(&task.args)?;
        let status = task.status_message.as_ref().map(json_text).transpose()?;
        let history = json_text(&task.history)?;
        let artifacts = json_text(&task.artifacts)?;
        let org = org_id.to_owned();
        let t = task.clone();
        Ok(self
            .write(1, move |conn| {
                if get(conn, &org, &t.id)?.is_some() {
                    return Err(StoreError::Conflict(format!("a task with id {:?} exists", t.id)));
                }
                conn.prepare_cached(
                    "INSERT INTO agent_tasks (org_id, id, context_id, state, skill, args, actor, status_message, \
                     history, artifacts, created_at, updated_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                )?
                .execute(params![
                    org,
                    t.id,
                    t.context_id,
                    t.state.as_str(),
                    t.skill,
                    args,
                    t.actor,
                    status,
                    history,
                    artifacts,
                    t.created_at,
                    t.updated_at,
                ])?;
                Ok(())
            })
            .await?)
    }

    async fn get_task(&self, org_id: &str, id: &str) -> crow_core::Result<Option<AgentTask>> {
        let (org, id) = (org_id.to_owned(), id.to_owned());
        Ok(self.read_point(move |conn| get(conn, &org, &id))?)
    }

    async fn list_tasks(&self, org_id: &str, query: &TaskQuery) -> crow_core::Result<Page<AgentTask>> {
        let limit = clamp_limit(query.limit);
        let after = query.cursor.as_deref().map(decode_id_cursor).transpose()?;
        let (mut clause, mut values) = filters(query);
        values.insert(0, SqlValue::Text(org_id.to_owned()));
        if let Some((t, id)) = after {
            let n = values.len();
            clause.push_str(&format!(
                " AND (created_at < ?{a} OR (created_at = ?{a} AND id < ?{b}))",
                a = n + 1,
                b = n + 2
            ));
            values.push(SqlValue::Integer(t));
            values.push(SqlValue::Text(id));
        }
        values.push(SqlValue::Integer(limit as i64 + 1));
        let sql = format!(
            "SELECT {COLS} FROM agent_tasks WHERE org_id = ?1{clause} ORDER BY created_at DESC, id DESC LIMIT ?{}",
            values.len()
        );
        Ok(self
            .read(move |conn| {
                let data = conn
                    .prepare_cached(&sql)?
                    .query_map(params_from_iter(values), task_row)?
                    .collect::<Result<Vec<_>, _>>()?
                    .into_iter()
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(super::page_of(data, limit, |t| encode_id_cursor(t.created_at, &t.id)))
            })
            .await?)
    }

    async fn count_tasks(&self, org_id: &str, query: &TaskQuery) -> crow_core::Result<u64> {
        let (clause, mut values) = filters(query);
        values.insert(0, SqlValue::Text(org_id.to_owned()));
        let sql = format!("SELECT count(*) FROM agent_tasks WHERE org_id = ?1{clause}");
        Ok(self
            .read(move |conn| {
                let n: i64 = conn
                    .prepare_cached(&sql)?
                    .query_row(params_from_iter(values), |r| r.get(0))?;
                Ok(n.max(0) as u64)
            })
            .await?)
    }

    async fn update_task(&self, org_id: &str, task: &AgentTask) -> crow_core::Result<bool> {
        let status = task.status_message.as_ref().map(json_text).transpose()?;
        let history = json_text(&task.history)?;
        let artifacts = json_text(&task.artifacts)?;
        let org = org_id.to_owned();
        let (id, state, updated_at) = (task.id.clone(), task.state, task.updated_at);
        Ok(self
            .write(1, move |conn| {
                let n = conn
                    .prepare_cached(&format!(
                        "UPDATE agent_tasks SET state = ?3, status_message = ?4, history = ?5, artifacts = ?6, \
                         updated_at = ?7 WHERE org_id = ?1 AND id = ?2 AND state IN {UNFINISHED}"
                    ))?
                    .execute(params![org, id, state.as_str(), status, history, artifacts, updated_at])?;
                Ok(n > 0)
            })
            .await?)
    }
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
