//! [`SocialStore`] over SQLite: the statements and logic of [`crate::sql::social`] on this
//! store's [`Sql`](crate::sql::Sql) executor.

use crow_core::model::{MentionDuplicate, Millis, SocialMention};
use crow_core::ports::{MentionOutcome, MentionQuery, NewJob, Page, SocialStore, SourceState};
use serde_json::Value;

use super::SqliteStore;
use crate::sql::social as sql;

#[async_trait::async_trait]
impl SocialStore for SqliteStore {
    async fn known_mentions(&self, org_id: &str, ids: &[String]) -> crow_core::Result<Vec<String>> {
        Ok(sql::known_mentions(self, org_id, ids).await?)
    }

    async fn store_mentions(
        &self,
        org_id: &str,
        mentions: &[SocialMention],
        duplicates: &[MentionDuplicate],
        follow_up: Vec<NewJob>,
        now: Millis,
    ) -> crow_core::Result<MentionOutcome> {
        Ok(sql::store_mentions(self, org_id, mentions, duplicates, follow_up, now).await?)
    }

    async fn mention_simhashes(&self, org_id: &str, since: Millis) -> crow_core::Result<Vec<(String, u64)>> {
        Ok(sql::mention_simhashes(self, org_id, since).await?)
    }

    async fn get_mentions(&self, org_id: &str, ids: &[String]) -> crow_core::Result<Vec<SocialMention>> {
        Ok(sql::get_mentions(self, org_id, ids).await?)
    }

    async fn list_mentions(&self, org_id: &str, query: &MentionQuery) -> crow_core::Result<Page<SocialMention>> {
        Ok(sql::list_mentions(self, org_id, query).await?)
    }

    async fn list_duplicates(
        &self,
        org_id: &str,
        original_id: Option<&str>,
        limit: u32,
    ) -> crow_core::Result<Vec<MentionDuplicate>> {
        Ok(sql::list_duplicates(self, org_id, original_id, limit).await?)
    }

    async fn set_mention_analysis(
        &self,
        org_id: &str,
        id: &str,
        sentiment: Option<f32>,
        analysis: &Value,
    ) -> crow_core::Result<()> {
        Ok(sql::set_mention_analysis(self, org_id, id, sentiment, analysis).await?)
    }

    async fn source_state(&self, org_id: &str, source: &str) -> crow_core::Result<Option<SourceState>> {
        Ok(sql::source_state(self, org_id, source).await?)
    }

    async fn set_source_state(&self, org_id: &str, source: &str, state: &SourceState) -> crow_core::Result<()> {
        Ok(sql::set_source_state(self, org_id, source, state).await?)
    }
}
