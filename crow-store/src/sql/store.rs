//! [`SqlStore`]: the ports over any [`Sql`] executor, each method one call into this layer's
//! module for it.

use crow_core::Result;
use crow_core::access::{ApiKey, AuditEntry, AuditQuery, NewApiKey, NewAuditEntry, Role, User};
use crow_core::model::*;
use crow_core::ports::*;
use serde_json::Value;

use super::Sql;

/// Every storage port of CROW over one [`Sql`] executor (the Worker's D1). Cheap to clone when
/// the executor is.
#[derive(Debug, Clone)]
pub struct SqlStore<S>(pub S);

#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
impl<S: Sql> EventStore for SqlStore<S> {
    async fn append(&self, org_id: &str, events: Vec<Interaction>, follow_up: Vec<NewJob>) -> Result<AppendOutcome> {
        Ok(super::events::append(&self.0, org_id, events, follow_up).await?)
    }

    async fn get_interactions(&self, org_id: &str, ids: &[String]) -> Result<Vec<Interaction>> {
        Ok(super::events::get_interactions(&self.0, org_id, ids).await?)
    }

    async fn interactions_ndjson(&self, org_id: &str, ids: &[String]) -> Result<(Vec<u8>, usize)> {
        Ok(super::events::interactions_ndjson(&self.0, org_id, ids).await?)
    }

    async fn list_interactions(&self, org_id: &str, query: &InteractionQuery) -> Result<Page<Interaction>> {
        Ok(super::events::list_interactions(&self.0, org_id, query).await?)
    }

    async fn apply_enrichment(&self, org_id: &str, enrichment: &[Enrichment]) -> Result<()> {
        Ok(super::events::apply_enrichment(&self.0, org_id, enrichment).await?)
    }

    async fn store_texts(&self, org_id: &str, texts: &[InteractionText]) -> Result<()> {
        Ok(super::events::store_texts(&self.0, org_id, texts).await?)
    }

    async fn link_identity(&self, org_id: &str, alias_id: &str, person_id: &str, at: Millis) -> Result<()> {
        Ok(super::events::link_identity(&self.0, org_id, alias_id, person_id, at).await?)
    }

    async fn resolve_person(&self, org_id: &str, id: &str) -> Result<Option<String>> {
        Ok(super::events::resolve_person(&self.0, org_id, id).await?)
    }

    async fn latest_session(&self, org_id: &str, person_id: &str, at: Millis) -> Result<Option<Session>> {
        Ok(super::events::latest_session(&self.0, org_id, person_id, at).await?)
    }

    async fn refresh_sessions(&self, org_id: &str, session_ids: &[String]) -> Result<()> {
        Ok(super::events::refresh_sessions(&self.0, org_id, session_ids).await?)
    }

    async fn get_session(&self, org_id: &str, id: &str) -> Result<Option<Session>> {
        Ok(super::events::get_session(&self.0, org_id, id).await?)
    }

    async fn list_sessions(&self, org_id: &str, query: &SessionQuery) -> Result<Page<Session>> {
        Ok(super::events::list_sessions(&self.0, org_id, query).await?)
    }

    async fn traffic_summary(&self, org_id: &str, since: Millis, until: Millis, top: usize) -> Result<TrafficSummary> {
        Ok(super::events::traffic_summary(&self.0, org_id, since, until, top).await?)
    }

    async fn funnel(&self, org_id: &str, steps: &[FunnelStep], since: Millis, until: Millis) -> Result<Vec<FunnelRow>> {
        Ok(super::events::funnel(&self.0, org_id, steps, since, until).await?)
    }

    async fn sentiment_series(
        &self,
        org_id: &str,
        source: SentimentSource,
        since: Millis,
        until: Millis,
        bucket_ms: i64,
    ) -> Result<Vec<SentimentBucket>> {
        Ok(super::events::sentiment_series(&self.0, org_id, source, since, until, bucket_ms).await?)
    }

    async fn top_entities(&self, org_id: &str, query: &EntityQuery) -> Result<Vec<EntityCount>> {
        Ok(super::events::top_entities(&self.0, org_id, query).await?)
    }
}

#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
impl<S: Sql> AccountStore for SqlStore<S> {
    async fn create_org(&self, org: &Organization, keys: &crow_core::keys::NewOrgKeys) -> Result<()> {
        Ok(super::accounts::create_org(&self.0, org, keys).await?)
    }

    async fn get_org(&self, org_id: &str) -> Result<Option<Organization>> {
        Ok(super::accounts::get_org(&self.0, org_id).await?)
    }

    async fn list_orgs(&self) -> Result<Vec<Organization>> {
        Ok(super::accounts::list_orgs(&self.0).await?)
    }

    async fn authenticate(&self, presented: &str) -> Result<Option<KeyGrant>> {
        Ok(super::accounts::authenticate(&self.0, presented).await?)
    }

    async fn org_grant(&self, org_id: &str) -> Result<Option<KeyGrant>> {
        Ok(super::accounts::org_grant(&self.0, org_id).await?)
    }

    async fn update_org(&self, org_id: &str, name: &str) -> Result<Organization> {
        Ok(super::accounts::update_org(&self.0, org_id, name).await?)
    }

    async fn create_api_key(&self, org_id: &str, key: &NewApiKey) -> Result<ApiKey> {
        Ok(super::accounts::create_api_key(&self.0, org_id, key).await?)
    }

    async fn list_api_keys(&self, org_id: &str, limit: u32, cursor: Option<&str>) -> Result<Page<ApiKey>> {
        Ok(super::accounts::list_api_keys(&self.0, org_id, limit, cursor).await?)
    }

    async fn get_api_key(&self, org_id: &str, prefix: &str) -> Result<Option<ApiKey>> {
        Ok(super::accounts::get_api_key(&self.0, org_id, prefix).await?)
    }

    async fn revoke_api_key(&self, org_id: &str, prefix: &str, now: Millis) -> Result<Option<ApiKey>> {
        Ok(super::accounts::revoke_api_key(&self.0, org_id, prefix, now).await?)
    }

    async fn create_user(&self, org_id: &str, user: &User) -> Result<()> {
        Ok(super::accounts::create_user(&self.0, org_id, user).await?)
    }

    async fn list_users(&self, org_id: &str, limit: u32, cursor: Option<&str>) -> Result<Page<User>> {
        Ok(super::accounts::list_users(&self.0, org_id, limit, cursor).await?)
    }

    async fn get_user(&self, org_id: &str, user_id: &str) -> Result<Option<User>> {
        Ok(super::accounts::get_user(&self.0, org_id, user_id).await?)
    }

    async fn update_user(
        &self,
        org_id: &str,
        user_id: &str,
        name: Option<Option<String>>,
        role: Option<Role>,
    ) -> Result<Option<User>> {
        Ok(super::accounts::update_user(&self.0, org_id, user_id, name, role).await?)
    }

    async fn delete_user(&self, org_id: &str, user_id: &str) -> Result<bool> {
        Ok(super::accounts::delete_user(&self.0, org_id, user_id).await?)
    }

    async fn append_audit(&self, entries: &[NewAuditEntry]) -> Result<()> {
        Ok(super::accounts::append_audit(&self.0, entries).await?)
    }

    async fn list_audit(&self, org_id: &str, query: &AuditQuery) -> Result<Page<AuditEntry>> {
        Ok(super::accounts::list_audit(&self.0, org_id, query).await?)
    }
}

#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
impl<S: Sql> CatalogStore for SqlStore<S> {
    async fn upsert_products(&self, org_id: &str, products: &[Product]) -> Result<usize> {
        Ok(super::catalog::upsert_products(&self.0, org_id, products).await?)
    }

    async fn list_products(&self, org_id: &str, limit: u32, cursor: Option<&str>) -> Result<Page<Product>> {
        Ok(super::catalog::list_products(&self.0, org_id, limit, cursor).await?)
    }

    async fn add_terms(&self, org_id: &str, terms: &[CatalogTerm], now: Millis) -> Result<usize> {
        Ok(super::catalog::add_terms(&self.0, org_id, terms, now).await?)
    }

    async fn list_terms(&self, org_id: &str) -> Result<Vec<CatalogTerm>> {
        Ok(super::catalog::list_terms(&self.0, org_id).await?)
    }

    async fn catalog_version(&self, org_id: &str) -> Result<String> {
        Ok(super::catalog::catalog_version(&self.0, org_id).await?)
    }

    async fn get_product(&self, org_id: &str, id: &str) -> Result<Option<Product>> {
        Ok(super::catalog::get_product(&self.0, org_id, id).await?)
    }

    async fn query_products(&self, org_id: &str, query: &crow_core::catalog::ProductQuery) -> Result<Page<Product>> {
        Ok(super::catalog::query_products(&self.0, org_id, query).await?)
    }

    async fn create_product(&self, org_id: &str, product: &Product) -> Result<()> {
        Ok(super::catalog::create_product(&self.0, org_id, product).await?)
    }

    async fn replace_product(&self, org_id: &str, product: &Product) -> Result<bool> {
        Ok(super::catalog::replace_product(&self.0, org_id, product).await?)
    }

    async fn delete_product(&self, org_id: &str, id: &str) -> Result<bool> {
        Ok(super::catalog::delete_product(&self.0, org_id, id).await?)
    }

    async fn import_products(&self, org_id: &str, products: &[Product]) -> Result<crow_core::catalog::ImportOutcome> {
        Ok(super::catalog::import_products(&self.0, org_id, products).await?)
    }

    async fn create_category(&self, org_id: &str, category: &crow_core::catalog::Category) -> Result<()> {
        Ok(super::catalog::create_category(&self.0, org_id, category).await?)
    }

    async fn get_category(&self, org_id: &str, name: &str) -> Result<Option<crow_core::catalog::Category>> {
        Ok(super::catalog::get_category(&self.0, org_id, name).await?)
    }

    async fn list_categories(
        &self,
        org_id: &str,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<Page<crow_core::catalog::Category>> {
        Ok(super::catalog::list_categories(&self.0, org_id, limit, cursor).await?)
    }

    async fn set_category_parent(
        &self,
        org_id: &str,
        name: &str,
        parent: Option<&str>,
    ) -> Result<Option<crow_core::catalog::Category>> {
        Ok(super::catalog::set_category_parent(&self.0, org_id, name, parent).await?)
    }

    async fn delete_category(&self, org_id: &str, name: &str) -> Result<bool> {
        Ok(super::catalog::delete_category(&self.0, org_id, name).await?)
    }
}

#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
impl<S: Sql> SocialStore for SqlStore<S> {
    async fn known_mentions(&self, org_id: &str, ids: &[String]) -> Result<Vec<String>> {
        Ok(super::social::known_mentions(&self.0, org_id, ids).await?)
    }

    async fn store_mentions(
        &self,
        org_id: &str,
        mentions: &[SocialMention],
        duplicates: &[MentionDuplicate],
        follow_up: Vec<NewJob>,
        now: Millis,
    ) -> Result<MentionOutcome> {
        Ok(super::social::store_mentions(&self.0, org_id, mentions, duplicates, follow_up, now).await?)
    }

    async fn mention_simhashes(&self, org_id: &str, since: Millis) -> Result<Vec<(String, u64)>> {
        Ok(super::social::mention_simhashes(&self.0, org_id, since).await?)
    }

    async fn get_mentions(&self, org_id: &str, ids: &[String]) -> Result<Vec<SocialMention>> {
        Ok(super::social::get_mentions(&self.0, org_id, ids).await?)
    }

    async fn list_mentions(&self, org_id: &str, query: &MentionQuery) -> Result<Page<SocialMention>> {
        Ok(super::social::list_mentions(&self.0, org_id, query).await?)
    }

    async fn list_duplicates(
        &self,
        org_id: &str,
        original_id: Option<&str>,
        limit: u32,
    ) -> Result<Vec<MentionDuplicate>> {
        Ok(super::social::list_duplicates(&self.0, org_id, original_id, limit).await?)
    }

    async fn set_mention_analysis(
        &self,
        org_id: &str,
        id: &str,
        sentiment: Option<f32>,
        analysis: &Value,
    ) -> Result<()> {
        Ok(super::social::set_mention_analysis(&self.0, org_id, id, sentiment, analysis).await?)
    }

    async fn source_state(&self, org_id: &str, source: &str) -> Result<Option<SourceState>> {
        Ok(super::social::source_state(&self.0, org_id, source).await?)
    }

    async fn set_source_state(&self, org_id: &str, source: &str, state: &SourceState) -> Result<()> {
        Ok(super::social::set_source_state(&self.0, org_id, source, state).await?)
    }
}

#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
impl<S: Sql> VideoStore for SqlStore<S> {
    async fn store_frame_events(&self, org_id: &str, events: &[FrameEvent]) -> Result<usize> {
        Ok(super::video::store_frame_events(&self.0, org_id, events).await?)
    }

    async fn list_frame_events(
        &self,
        org_id: &str,
        query: &crow_core::video::FrameEventQuery,
    ) -> Result<Page<FrameEvent>> {
        Ok(super::video::list_frame_events(&self.0, org_id, query).await?)
    }

    async fn record_archive(&self, org_id: &str, entries: &[crow_core::video::ArchiveEntry]) -> Result<()> {
        Ok(super::video::record_archive(&self.0, org_id, entries).await?)
    }

    async fn archive_usage(&self, org_id: &str) -> Result<crow_core::video::ArchiveUsage> {
        Ok(super::video::archive_usage(&self.0, org_id).await?)
    }

    async fn oldest_archive(&self, org_id: &str, limit: u32) -> Result<Vec<crow_core::video::ArchiveEntry>> {
        Ok(super::video::oldest_archive(&self.0, org_id, limit).await?)
    }

    async fn remove_archive(&self, org_id: &str, keys: &[String]) -> Result<usize> {
        Ok(super::video::remove_archive(&self.0, org_id, keys).await?)
    }
}

#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
impl<S: Sql> JobQueue for SqlStore<S> {
    async fn enqueue(&self, jobs: Vec<NewJob>, now: Millis) -> Result<()> {
        Ok(super::queue::enqueue(&self.0, jobs, now).await?)
    }

    async fn reserve(&self, queue: &str, max: usize, lease_ms: i64, now: Millis) -> Result<Vec<Job>> {
        Ok(super::queue::reserve(&self.0, queue, max, lease_ms, now).await?)
    }

    async fn ack(&self, job_id: i64) -> Result<()> {
        Ok(super::queue::ack(&self.0, job_id).await?)
    }

    async fn fail(&self, job_id: i64, error: &str, policy: &RetryPolicy, now: Millis, jitter: f64) -> Result<bool> {
        Ok(super::queue::fail(&self.0, job_id, error, policy, now, jitter).await?)
    }

    async fn depth(&self, queue: &str) -> Result<QueueDepth> {
        Ok(super::queue::depth(&self.0, queue).await?)
    }

    async fn dead_letters(&self, queue: &str, limit: u32) -> Result<Vec<Job>> {
        Ok(super::queue::dead_letters(&self.0, queue, limit).await?)
    }

    async fn release_leases(&self, queue: &str) -> Result<u64> {
        Ok(super::queue::release_leases(&self.0, queue).await?)
    }
}

#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
impl<S: Sql> ExportStore for SqlStore<S> {
    async fn create_export(
        &self,
        org_id: &str,
        export: &crow_core::export::Export,
        follow_up: Vec<NewJob>,
    ) -> Result<()> {
        Ok(super::exports::create_export(&self.0, org_id, export, follow_up).await?)
    }

    async fn get_export(&self, org_id: &str, id: &str) -> Result<Option<crow_core::export::Export>> {
        Ok(super::exports::get_export(&self.0, org_id, id).await?)
    }

    async fn list_exports(
        &self,
        org_id: &str,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<Page<crow_core::export::Export>> {
        Ok(super::exports::list_exports(&self.0, org_id, limit, cursor).await?)
    }

    async fn update_export(&self, org_id: &str, export: &crow_core::export::Export) -> Result<bool> {
        Ok(super::exports::update_export(&self.0, org_id, export).await?)
    }
}

#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
impl<S: Sql> PersonStore for SqlStore<S> {
    async fn person_data(&self, org_id: &str, id: &str) -> Result<Option<crow_core::person::PersonData>> {
        Ok(super::persons::person_data(&self.0, org_id, id).await?)
    }

    async fn erase_person(&self, org_id: &str, id: &str, now: Millis) -> Result<Option<crow_core::person::Erasure>> {
        Ok(super::persons::erase_person(&self.0, org_id, id, now).await?)
    }
}

#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
impl<S: Sql> TaskStore for SqlStore<S> {
    async fn create_task(&self, org_id: &str, task: &crow_core::agent::AgentTask) -> Result<()> {
        Ok(super::tasks::create_task(&self.0, org_id, task).await?)
    }

    async fn get_task(&self, org_id: &str, id: &str) -> Result<Option<crow_core::agent::AgentTask>> {
        Ok(super::tasks::get_task(&self.0, org_id, id).await?)
    }

    async fn list_tasks(
        &self,
        org_id: &str,
        query: &crow_core::agent::TaskQuery,
    ) -> Result<Page<crow_core::agent::AgentTask>> {
        Ok(super::tasks::list_tasks(&self.0, org_id, query).await?)
    }

    async fn count_tasks(&self, org_id: &str, query: &crow_core::agent::TaskQuery) -> Result<u64> {
        Ok(super::tasks::count_tasks(&self.0, org_id, query).await?)
    }

    async fn update_task(&self, org_id: &str, task: &crow_core::agent::AgentTask) -> Result<bool> {
        Ok(super::tasks::update_task(&self.0, org_id, task).await?)
    }
}

#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
impl<S: Sql> WorkflowStore for SqlStore<S> {
    async fn load_steps(&self, run_id: &str) -> Result<std::collections::HashMap<String, Value>> {
        Ok(super::workflow::load_steps(&self.0, run_id).await?)
    }

    async fn save_step(&self, run_id: &str, step: &str, output: &Value, now: Millis) -> Result<()> {
        Ok(super::workflow::save_step(&self.0, run_id, step, output, now).await?)
    }

    async fn finish_run(&self, run_id: &str, now: Millis) -> Result<()> {
        Ok(super::workflow::finish_run(&self.0, run_id, now).await?)
    }
}
