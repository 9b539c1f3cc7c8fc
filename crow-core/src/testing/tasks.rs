//! [`TaskStore`] for [`MemoryStore`].

use super::{MemoryStore, decode_id_cursor, id_page, lock};
use crate::agent::{AgentTask, TaskQuery};
use crate::ports::{Page, TaskStore};
use crate::{Error, Result};

fn matches(t: &AgentTask, q: &TaskQuery) -> bool {
    q.context_id.as_deref().is_none_or(|c| t.context_id == c)
        && q.state.is_none_or(|s| t.state == s)
        && q.updated_since.is_none_or(|at| t.updated_at >= at)
}

#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
impl TaskStore for MemoryStore {
    async fn create_task(&self, org_id: &str, task: &AgentTask) -> Result<()> {
        if task.id.is_empty() {
            return Err(Error::invalid("id", "empty task id"));
        }
        let mut inner = lock(&self.inner);
        let data = inner.data.entry(org_id.to_owned()).or_default();
        if data.tasks.contains_key(&task.id) {
            return Err(Error::Conflict(format!("a task with id {:?} exists", task.id)));
        }
        let mut t = task.clone();
        t.org_id = org_id.to_owned();
        data.tasks.insert(t.id.clone(), t);
        Ok(())
    }

    async fn get_task(&self, org_id: &str, id: &str) -> Result<Option<AgentTask>> {
        Ok(lock(&self.inner)
            .data
            .get(org_id)
            .and_then(|d| d.tasks.get(id))
            .cloned())
    }

    async fn list_tasks(&self, org_id: &str, query: &TaskQuery) -> Result<Page<AgentTask>> {
        let limit = if query.limit == 0 {
            50
        } else {
            query.limit.clamp(1, 1000) as usize
        };
        let after = query.cursor.as_deref().map(decode_id_cursor).transpose()?;
        let inner = lock(&self.inner);
        let Some(data) = inner.data.get(org_id) else {
            return Ok(Page {
                data: Vec::new(),
                next_cursor: None,
            });
        };
        let mut rows: Vec<&AgentTask> = data
            .tasks
            .values()
            .filter(|t| matches(t, query))
            .filter(|t| {
                after
                    .as_ref()
                    .is_none_or(|(at, id)| (t.created_at, t.id.as_str()) < (*at, id.as_str()))
            })
            .collect();
        rows.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
        Ok(id_page(rows, limit, |t| (t.created_at, t.id.as_str())))
    }

    async fn count_tasks(&self, org_id: &str, query: &TaskQuery) -> Result<u64> {
        Ok(lock(&self.inner)
            .data
            .get(org_id)
            .map_or(0, |d| d.tasks.values().filter(|t| matches(t, query)).count() as u64))
    }

    async fn update_task(&self, org_id: &str, task: &AgentTask) -> Result<bool> {
        let mut inner = lock(&self.inner);
        let Some(stored) = inner.data.get_mut(org_id).and_then(|d| d.tasks.get_mut(&task.id)) else {
            return Ok(false);
        };
        if stored.state.is_terminal() {
            return Ok(false);
        }
        stored.state = task.state;
        stored.status_message = task.status_message.clone();
        stored.history = task.history.clone();
        stored.artifacts = task.artifacts.clone();
        stored.updated_at = task.updated_at;
        Ok(true)
    }
}
