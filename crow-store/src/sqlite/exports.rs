//! [`ExportStore`] over SQLite: the statements and logic of [`crate::sql::exports`] on this
//! store's [`Sql`](crate::sql::Sql) executor. A new export and its `export-report` job commit in
//! one batch.

use crow_core::export::Export;
use crow_core::ports::{ExportStore, NewJob, Page};

use super::SqliteStore;
use crate::sql::exports;

#[async_trait::async_trait]
impl ExportStore for SqliteStore {
    async fn create_export(&self, org_id: &str, export: &Export, follow_up: Vec<NewJob>) -> crow_core::Result<()> {
        Ok(exports::create_export(self, org_id, export, follow_up).await?)
    }

    async fn get_export(&self, org_id: &str, id: &str) -> crow_core::Result<Option<Export>> {
        Ok(exports::get_export(self, org_id, id).await?)
    }

    async fn list_exports(&self, org_id: &str, limit: u32, cursor: Option<&str>) -> crow_core::Result<Page<Export>> {
        Ok(exports::list_exports(self, org_id, limit, cursor).await?)
    }

    async fn update_export(&self, org_id: &str, export: &Export) -> crow_core::Result<bool> {
        Ok(exports::update_export(self, org_id, export).await?)
    }
}
