//! [`TaskStore`] over SQLite: the statements and logic of [`crate::sql::tasks`] on this store's
//! [`Sql`](crate::sql::Sql) executor. An update leaves a finished task alone in the same statement
//! that writes, so a cancel and a completion cannot overwrite each other.

use crow_core::agent::{AgentTask, TaskQuery};
use crow_core::ports::{Page, TaskStore};

use super::SqliteStore;
use crate::sql::tasks;

#[async_trait::async_trait]
impl TaskStore for SqliteStore {
    async fn create_task(&self, org_id: &str, task: &AgentTask) -> crow_core::Result<()> {
        Ok(tasks::create_task(self, org_id, task).await?)
    }

    async fn get_task(&self, org_id: &str, id: &str) -> crow_core::Result<Option<AgentTask>> {
        Ok(tasks::get_task(self, org_id, id).await?)
    }

    async fn list_tasks(&self, org_id: &str, query: &TaskQuery) -> crow_core::Result<Page<AgentTask>> {
        Ok(tasks::list_tasks(self, org_id, query).await?)
    }

    async fn count_tasks(&self, org_id: &str, query: &TaskQuery) -> crow_core::Result<u64> {
        Ok(tasks::count_tasks(self, org_id, query).await?)
    }

    async fn update_task(&self, org_id: &str, task: &AgentTask) -> crow_core::Result<bool> {
        Ok(tasks::update_task(self, org_id, task).await?)
    }
}
