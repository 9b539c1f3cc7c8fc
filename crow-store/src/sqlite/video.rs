//! [`VideoStore`] over SQLite: the statements and logic of [`crate::sql::video`] on this store's
//! [`Sql`](crate::sql::Sql) executor.

use crow_core::model::FrameEvent;
use crow_core::ports::{Page, VideoStore};
use crow_core::video::{ArchiveEntry, ArchiveUsage, FrameEventQuery};

use super::SqliteStore;
use crate::sql::video as sql;

#[async_trait::async_trait]
impl VideoStore for SqliteStore {
    async fn store_frame_events(&self, org_id: &str, events: &[FrameEvent]) -> crow_core::Result<usize> {
        Ok(sql::store_frame_events(self, org_id, events).await?)
    }

    async fn list_frame_events(&self, org_id: &str, query: &FrameEventQuery) -> crow_core::Result<Page<FrameEvent>> {
        Ok(sql::list_frame_events(self, org_id, query).await?)
    }

    async fn record_archive(&self, org_id: &str, entries: &[ArchiveEntry]) -> crow_core::Result<()> {
        Ok(sql::record_archive(self, org_id, entries).await?)
    }

    async fn archive_usage(&self, org_id: &str) -> crow_core::Result<ArchiveUsage> {
        Ok(sql::archive_usage(self, org_id).await?)
    }

    async fn oldest_archive(&self, org_id: &str, limit: u32) -> crow_core::Result<Vec<ArchiveEntry>> {
        Ok(sql::oldest_archive(self, org_id, limit).await?)
    }

    async fn remove_archive(&self, org_id: &str, keys: &[String]) -> crow_core::Result<usize> {
        Ok(sql::remove_archive(self, org_id, keys).await?)
    }
}
