//! Ports: the traits through which CROW's logic talks to storage, queues and models.
//!
//! Every port documents its contract: what a caller may rely on (durability, ordering,
//! idempotency) and which [`Error`](crate::Error) variants mean what. The embedded backends live
//! in `crow-store` (SQLite, files), `crow-nlp` and `crow-vision`; the Worker implements the same
//! traits over Cloudflare bindings. In-memory implementations for tests are in
//! [`crate::testing`] (feature `testing`).
//!
//! On `wasm32` the futures are not `Send` (the Worker's bindings are single-threaded), so the
//! traits are declared with `async_trait(?Send)` there and with `async_trait` elsewhere; see
//! [`MaybeSend`].

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Result;
use crate::access::{ApiKey, AuditEntry, AuditQuery, NewApiKey, NewAuditEntry, Role, User};
use crate::model::*;
pub use crate::vector::{IndexInfo, MetadataFilter, VectorMatch, VectorQuery, VectorRecord};

/// `Send + Sync` natively, nothing on wasm32: the bound ports put on their implementors.
#[cfg(not(target_arch = "wasm32"))]
pub trait MaybeSend: Send + Sync {}
#[cfg(not(target_arch = "wasm32"))]
impl<T: Send + Sync + ?Sized> MaybeSend for T {}
/// `Send + Sync` natively, nothing on wasm32: the bound ports put on their implementors.
#[cfg(target_arch = "wasm32")]
pub trait MaybeSend {}
#[cfg(target_arch = "wasm32")]
impl<T: ?Sized> MaybeSend for T {}

/// A page of results with an opaque cursor for the next page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Page<T> {
    /// The items, in the documented order of the query.
    pub data: Vec<T>,
    /// Pass this back as `cursor` to get the next page; `None` on the last page.
    pub next_cursor: Option<String>,
}

/// Filters for [`EventStore::list_interactions`]. Results are newest first (by `timestamp`,
/// then by insertion order).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InteractionQuery {
    /// Maximum number of items (the store clamps it to 1..=1000).
    pub limit: u32,
    /// Cursor from a previous page.
    pub cursor: Option<String>,
    /// Only this type.
    pub event_type: Option<EventType>,
    /// Only this event name.
    pub name: Option<String>,
    /// Only events at or after this time.
    pub since: Option<Millis>,
    /// Only events before this time.
    pub until: Option<Millis>,
    /// Only this session.
    pub session_id: Option<String>,
    /// Only this person (after identity stitching).
    pub person_id: Option<String>,
}

/// Filters for [`EventStore::list_sessions`]. Newest first by `started_at`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionQuery {
    /// Maximum number of items (clamped to 1..=1000).
    pub limit: u32,
    /// Cursor from a previous page.
    pub cursor: Option<String>,
    /// Only sessions started at or after this time.
    pub since: Option<Millis>,
    /// Only this person.
    pub person_id: Option<String>,
}

/// What [`EventStore::append`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppendOutcome {
    /// Events stored now.
    pub inserted: usize,
    /// Events whose id was already stored for the org: not stored again.
    pub duplicates: usize,
    /// The ids of the events stored now, in input order (duplicates left out).
    #[serde(default)]
    pub inserted_ids: Vec<String>,
}

/// A page/step of a conversion funnel: an event type plus an optional name or path prefix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunnelStep {
    /// Label shown in reports.
    pub label: String,
    /// Event type to match.
    pub event_type: EventType,
    /// Track event name (for `track`) or page path (for `page`) to match exactly.
    pub name: Option<String>,
}

impl FunnelStep {
    /// Whether an event matches the step: the same type and, for a named step, the same page path
    /// (`page` steps) or event name (other types).
    pub fn matches(&self, event_type: EventType, name: Option<&str>, path: Option<&str>) -> bool {
        if event_type != self.event_type {
            return false;
        }
        match self.name.as_deref() {
            None => true,
            Some(want) if event_type == EventType::Page => path == Some(want),
            Some(want) => name == Some(want),
        }
    }
}

/// Counts an ordered funnel for [`EventStore::funnel`] implementations: feed each person's events
/// in time order, calling [`next_person`](FunnelCounter::next_person) between people. Step `k`
/// counts when an event matching it comes at or after the event that matched step `k - 1` (one
/// event advances one step).
#[derive(Debug)]
pub struct FunnelCounter<'a> {
    steps: &'a [FunnelStep],
    reached: Vec<u64>,
    next: usize,
}

impl<'a> FunnelCounter<'a> {
    /// A counter for these steps.
    pub fn new(steps: &'a [FunnelStep]) -> Self {
        FunnelCounter {
            steps,
            reached: vec![0; steps.len()],
            next: 0,
        }
    }

    /// The following events belong to another person.
    pub fn next_person(&mut self) {
        self.next = 0;
    }

    /// True when the current person has done every step (their remaining events can be skipped).
    pub fn person_done(&self) -> bool {
        self.next == self.steps.len()
    }

    /// The current person's next event.
    pub fn event(&mut self, event_type: EventType, name: Option<&str>, path: Option<&str>) {
        if let Some(step) = self.steps.get(self.next)
            && step.matches(event_type, name, path)
        {
            self.reached[self.next] += 1;
            self.next += 1;
        }
    }

    /// The report: people per step and the drop-off from the previous step.
    pub fn rows(self) -> Vec<FunnelRow> {
        let reached = self.reached;
        self.steps
            .iter()
            .enumerate()
            .map(|(i, step)| {
                let people = reached[i];
                let drop_off = match i.checked_sub(1).map(|p| reached[p]) {
                    Some(prev) if prev > 0 => 1.0 - people as f64 / prev as f64,
                    _ => 0.0,
                };
                FunnelRow {
                    label: step.label.clone(),
                    people,
                    drop_off,
                }
            })
            .collect()
    }
}

/// One row of a funnel report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunnelRow {
    /// Step label.
    pub label: String,
    /// People who reached this step after all previous ones (in order).
    pub people: u64,
    /// Share of the previous step's people lost at this step (0 for the first step).
    pub drop_off: f64,
}

/// Traffic summary over a time range.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TrafficSummary {
    /// Events stored.
    pub events: u64,
    /// Distinct people (after stitching), bots excluded.
    pub visitors: u64,
    /// Sessions, bots excluded.
    pub sessions: u64,
    /// Page and screen views, bots excluded.
    pub page_views: u64,
    /// Events flagged as coming from crawlers.
    pub bot_events: u64,
    /// PII values scrubbed at ingest.
    pub pii_scrubbed: u64,
    /// Most viewed page paths with their view counts (bots excluded).
    pub top_pages: Vec<(String, u64)>,
    /// Sessions per referrer class.
    pub referrer_classes: Vec<(String, u64)>,
    /// Sessions per referrer (the referring site), most first (bots excluded).
    #[serde(default)]
    pub top_referrers: Vec<(String, u64)>,
}

/// Which texts [`EventStore::sentiment_series`] and [`EventStore::top_entities`] aggregate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "graphql", derive(async_graphql::Enum))]
#[serde(rename_all = "lowercase")]
pub enum SentimentSource {
    /// Texts carried by interactions (search queries, feedback, reviews), by their analysis label.
    Interactions,
    /// Social mentions, by their analyzed (else lexicon) score: above 0.05 is positive, below
    /// -0.05 negative.
    Mentions,
}

/// The bucket size of a sentiment series (`GET /api/v1/insights/sentiment?interval=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "graphql", derive(async_graphql::Enum))]
#[serde(rename_all = "lowercase")]
pub enum Interval {
    /// One hour.
    Hour,
    /// One day (UTC).
    #[default]
    Day,
    /// One week (seven UTC days).
    Week,
}

impl Interval {
    /// Every interval.
    pub const ALL: [Interval; 3] = [Interval::Hour, Interval::Day, Interval::Week];

    /// The wire name (`hour`, `day`, `week`).
    pub fn as_str(self) -> &'static str {
        match self {
            Interval::Hour => "hour",
            Interval::Day => "day",
            Interval::Week => "week",
        }
    }

    /// The interval named `s`.
    pub fn parse(s: &str) -> Option<Interval> {
        Interval::ALL.into_iter().find(|i| i.as_str() == s)
    }

    /// Its length in milliseconds.
    pub fn millis(self) -> Millis {
        const HOUR: Millis = 3_600_000;
        match self {
            Interval::Hour => HOUR,
            Interval::Day => 24 * HOUR,
            Interval::Week => 7 * 24 * HOUR,
        }
    }
}

impl SentimentSource {
    /// The wire name (`interactions`, `mentions`).
    pub fn as_str(self) -> &'static str {
        match self {
            SentimentSource::Interactions => "interactions",
            SentimentSource::Mentions => "mentions",
        }
    }
}

/// One time bucket of a sentiment series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SentimentBucket {
    /// Bucket start.
    pub start: Millis,
    /// Texts in the bucket.
    pub count: u64,
    /// Positive texts.
    pub positive: u64,
    /// Negative texts.
    pub negative: u64,
    /// Neutral texts.
    pub neutral: u64,
    /// Mean score in [-1, 1].
    pub mean_score: f64,
}

/// Most entities [`EventStore::top_entities`] returns at once.
pub const MAX_TOP_ENTITIES: u32 = 100;

/// What [`EventStore::top_entities`] counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EntityQuery {
    /// Interaction texts (by event time) or analyzed social mentions (by post time).
    pub source: SentimentSource,
    /// Only entities of this kind (`product`, `brand`, `competitor`, ...), compared exactly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Window start (inclusive).
    pub since: Millis,
    /// Window end (exclusive).
    pub until: Millis,
    /// How many entities, `1..=`[`MAX_TOP_ENTITIES`].
    pub limit: u32,
}

/// An entity and the texts that mention it, from [`EventStore::top_entities`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EntityCount {
    /// Kind (`product`, `brand`, `competitor`, `money`, ...).
    pub kind: String,
    /// Its name: the catalog product's name for an entity linked to a product the org's catalog
    /// holds, else the form of the entity found in the most texts (ties: the smallest).
    pub text: String,
    /// The catalog product the entity links to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_id: Option<String>,
    /// Texts in the window that mention it (a text that mentions it twice counts once).
    pub mentions: u64,
    /// Those of the texts whose sentiment is positive.
    pub positive: u64,
    /// Those of the texts whose sentiment is neutral.
    pub neutral: u64,
    /// Those of the texts whose sentiment is negative.
    pub negative: u64,
    /// Mean sentiment score in [-1, 1] of the texts that have one; `None` when none has.
    pub mean_score: Option<f64>,
}

/// The relational store of interactions and sessions.
///
/// Contract:
/// - Everything is scoped to an org: no method ever returns another org's rows.
/// - [`append`](EventStore::append) is **durable** when it returns `Ok` (the events survive a
///   crash of the process) and **idempotent** by `(org_id, id)`: an id already stored is
///   counted in `duplicates` and left unchanged. The `follow_up` jobs are enqueued in the same
///   transaction when the backend can, and otherwise after the events commit and before
///   returning, so acknowledged work is never lost. When every event given was a duplicate (a
///   resent batch), the jobs are not enqueued again: the first append enqueued them.
/// - Enrichment, identity links and session refreshes are idempotent: replaying them after a
///   crash leaves the same state.
#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
pub trait EventStore: MaybeSend {
    /// Stores events (validated and scrubbed by the caller) and enqueues `follow_up` jobs.
    async fn append(&self, org_id: &str, events: Vec<Interaction>, follow_up: Vec<NewJob>) -> Result<AppendOutcome>;
    /// Events by id; unknown ids are skipped. Order follows `ids`.
    async fn get_interactions(&self, org_id: &str, ids: &[String]) -> Result<Vec<Interaction>>;
    /// The events as JSON Lines (each line a serialized [`Interaction`] as it was stored at
    /// ingest, before enrichment), in `ids` order, unknown ids skipped; returns the bytes and the
    /// number of lines. For archives and exports: a backend that keeps the JSON returns it as is
    /// instead of decoding and re-encoding every event.
    async fn interactions_ndjson(&self, org_id: &str, ids: &[String]) -> Result<(Vec<u8>, usize)> {
        let events = self.get_interactions(org_id, ids).await?;
        let mut out = Vec::with_capacity(events.len() * 1024);
        for ev in &events {
            serde_json::to_writer(&mut out, ev).map_err(crate::Error::backend)?;
            out.push(b'\n');
        }
        Ok((out, events.len()))
    }
    /// Lists events, newest first.
    async fn list_interactions(&self, org_id: &str, query: &InteractionQuery) -> Result<Page<Interaction>>;
    /// Writes person, session and referrer class onto stored events.
    async fn apply_enrichment(&self, org_id: &str, enrichment: &[Enrichment]) -> Result<()>;
    /// Stores (or replaces) the text analyses of events, keyed by event id. Reads of those
    /// events then carry [`Interaction::analysis`]. Entities marked `pii` must be stored without
    /// their text (callers blank it; stores may rely on that).
    async fn store_texts(&self, org_id: &str, texts: &[InteractionText]) -> Result<()>;
    /// Records that `alias_id` (an anonymous or previous id) is the person `person_id`, and
    /// re-points stored events and sessions of `alias_id` to `person_id`.
    async fn link_identity(&self, org_id: &str, alias_id: &str, person_id: &str, at: Millis) -> Result<()>;
    /// The person an id belongs to after stitching, if a link exists.
    async fn resolve_person(&self, org_id: &str, id: &str) -> Result<Option<String>>;
    /// The person's latest session that started before `at` (or at it).
    async fn latest_session(&self, org_id: &str, person_id: &str, at: Millis) -> Result<Option<Session>>;
    /// Recomputes the aggregates of these sessions from their events (creating rows as needed).
    async fn refresh_sessions(&self, org_id: &str, session_ids: &[String]) -> Result<()>;
    /// One session.
    async fn get_session(&self, org_id: &str, id: &str) -> Result<Option<Session>>;
    /// Lists sessions, newest first.
    async fn list_sessions(&self, org_id: &str, query: &SessionQuery) -> Result<Page<Session>>;
    /// Traffic summary for events in `[since, until)`.
    async fn traffic_summary(&self, org_id: &str, since: Millis, until: Millis, top: usize) -> Result<TrafficSummary>;
    /// An ordered conversion funnel over people (bots excluded) for events in `[since, until)`.
    async fn funnel(&self, org_id: &str, steps: &[FunnelStep], since: Millis, until: Millis) -> Result<Vec<FunnelRow>>;
    /// Sentiment of the org's texts in `[since, until)`, per bucket of `bucket_ms` starting at
    /// `since`, oldest first; buckets without texts are left out.
    async fn sentiment_series(
        &self,
        org_id: &str,
        source: SentimentSource,
        since: Millis,
        until: Millis,
        bucket_ms: i64,
    ) -> Result<Vec<SentimentBucket>>;
    /// The entities most mentioned in the org's texts of `query.source` in `[since, until)`.
    ///
    /// Contract:
    /// - **Never personal data**: an entity marked `pii` is never counted or returned.
    /// - **What counts**: the `entities` of each text's analysis (interaction texts by event
    ///   time; social mentions by post time, only those with an analysis). An entity linked to a
    ///   product is one entity per `(kind, product_id)`; any other is one per `(kind, text)`
    ///   with the text compared ASCII-case-insensitively. An entry without a string `kind` or a
    ///   non-empty string `text` is skipped.
    /// - **Counts**: `mentions` is the number of texts that mention the entity; each of them
    ///   counts once more in `positive`, `neutral` or `negative` when it has a sentiment
    ///   (interaction texts by their label; mentions by their analyzed, else lexicon, score with
    ///   the ±0.05 thresholds of [`SentimentSource::Mentions`]), and `mean_score` averages those
    ///   scores.
    /// - **Order**: `mentions` descending, then `text`, `kind` and `product_id` ascending (byte
    ///   order; an entity without a product before one with); the first `query.limit`.
    /// - `Invalid` naming `limit` when it is outside `1..=`[`MAX_TOP_ENTITIES`]; an empty
    ///   window (`since >= until`) answers no entity.
    async fn top_entities(&self, org_id: &str, query: &EntityQuery) -> Result<Vec<EntityCount>>;
}

/// Organizations and their keys.
///
/// Contract: secret API keys are stored only as hashes and looked up by their public prefix;
/// write keys are public. `authenticate` is cheap enough to call on every request (backends
/// cache).
#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
pub trait AccountStore: MaybeSend {
    /// Creates an org with its keys. `Conflict` if the id exists.
    async fn create_org(&self, org: &Organization, keys: &crate::keys::NewOrgKeys) -> Result<()>;
    /// One org.
    async fn get_org(&self, org_id: &str) -> Result<Option<Organization>>;
    /// All orgs, oldest first.
    async fn list_orgs(&self) -> Result<Vec<Organization>>;
    /// Resolves a presented key (write key or secret API key) to its grant, or `None`.
    async fn authenticate(&self, presented: &str) -> Result<Option<KeyGrant>>;
    /// The ingest (write) grant of an org, for trusted callers that own the store, such as the
    /// CLI's bulk import. `None` for an unknown org. Never exposed over HTTP.
    async fn org_grant(&self, org_id: &str) -> Result<Option<KeyGrant>>;

    /// Renames an org; `NotFound` when it does not exist.
    async fn update_org(&self, org_id: &str, name: &str) -> Result<Organization>;
    /// Stores a new key of the org (its secret only as the hash). `Conflict` if the prefix exists.
    async fn create_api_key(&self, org_id: &str, key: &NewApiKey) -> Result<ApiKey>;
    /// The org's keys (revoked ones too), newest first, paged by an opaque cursor.
    async fn list_api_keys(&self, org_id: &str, limit: u32, cursor: Option<&str>) -> Result<Page<ApiKey>>;
    /// One key of the org by prefix; `None` when it is not the org's.
    async fn get_api_key(&self, org_id: &str, prefix: &str) -> Result<Option<ApiKey>>;
    /// Revokes one key of the org; `authenticate` refuses it from then on. Returns the key as
    /// revoked, or `None` when the org has no such key (an already revoked key is returned as is).
    async fn revoke_api_key(&self, org_id: &str, prefix: &str, now: Millis) -> Result<Option<ApiKey>>;
    /// Adds a user. `Conflict` when the email is taken in the org.
    async fn create_user(&self, org_id: &str, user: &User) -> Result<()>;
    /// The org's users, by email, paged by an opaque cursor.
    async fn list_users(&self, org_id: &str, limit: u32, cursor: Option<&str>) -> Result<Page<User>>;
    /// One user of the org.
    async fn get_user(&self, org_id: &str, user_id: &str) -> Result<Option<User>>;
    /// Changes a user's name and/or role; `None` when the org has no such user.
    async fn update_user(
        &self,
        org_id: &str,
        user_id: &str,
        name: Option<Option<String>>,
        role: Option<Role>,
    ) -> Result<Option<User>>;
    /// Removes a user; false when the org has no such user.
    async fn delete_user(&self, org_id: &str, user_id: &str) -> Result<bool>;
    /// Appends audit rows. The log is append-only: no port method changes or removes a row.
    async fn append_audit(&self, entries: &[NewAuditEntry]) -> Result<()>;
    /// The org's audit rows, newest first.
    async fn list_audit(&self, org_id: &str, query: &AuditQuery) -> Result<Page<AuditEntry>>;
}

/// What a valid key grants.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyGrant {
    /// The org.
    pub org_id: String,
    /// Write (ingest only) or secret.
    pub kind: KeyKind,
    /// The key's public lookup prefix (the whole key for a write key).
    pub prefix: String,
    /// The role a secret key acts with (write keys: ignored).
    pub role: Role,
    /// The org's secret for keyed pseudonyms (HMAC-SHA256).
    pub pseudonym_key: Vec<u8>,
}

impl std::fmt::Debug for KeyGrant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyGrant")
            .field("org_id", &self.org_id)
            .field("kind", &self.kind)
            .field("pseudonym_key", &"<redacted>")
            .finish()
    }
}

/// The product catalog.
#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
pub trait CatalogStore: MaybeSend {
    /// Inserts or updates products by `(org_id, sku)`; returns how many were inserted or changed.
    async fn upsert_products(&self, org_id: &str, products: &[Product]) -> Result<usize>;
    /// Lists products by sku.
    async fn list_products(&self, org_id: &str, limit: u32, cursor: Option<&str>) -> Result<Page<Product>>;
    /// Adds brand or competitor names (duplicates are ignored); returns how many were new.
    /// Errors with `Invalid` on an unknown kind or an empty name.
    async fn add_terms(&self, org_id: &str, terms: &[CatalogTerm], now: Millis) -> Result<usize>;
    /// The org's brand and competitor names, by kind then name.
    async fn list_terms(&self, org_id: &str) -> Result<Vec<CatalogTerm>>;
    /// A value that changes whenever the org's products or terms change (for caches built from
    /// the catalog, such as the entity gazetteer).
    async fn catalog_version(&self, org_id: &str) -> Result<String>;

    /// One product by id; `None` when the org has none with this id.
    async fn get_product(&self, org_id: &str, id: &str) -> Result<Option<Product>>;
    /// Lists products with filters, by sku (an opaque cursor; a malformed one is `Invalid`).
    async fn query_products(&self, org_id: &str, query: &crate::catalog::ProductQuery) -> Result<Page<Product>>;
    /// Stores a new product under `org_id` (its own `org_id` is ignored). `Conflict` when the
    /// org has a product with this sku. Creates its category when missing.
    async fn create_product(&self, org_id: &str, product: &Product) -> Result<()>;
    /// Replaces every field of the org's product with `product.id` (the sku too, which must then
    /// not belong to another product: `Conflict`); `false` when the org has no such product.
    /// Creates the category when missing.
    async fn replace_product(&self, org_id: &str, product: &Product) -> Result<bool>;
    /// Deletes a product by id; `false` when the org has none.
    async fn delete_product(&self, org_id: &str, id: &str) -> Result<bool>;
    /// Upserts products by sku like [`upsert_products`](CatalogStore::upsert_products), in
    /// one transaction (all or nothing), and says which were new, changed or the same.
    async fn import_products(&self, org_id: &str, products: &[Product]) -> Result<crate::catalog::ImportOutcome>;
    /// Creates a category. `Conflict` when the name exists in the org; `Invalid` (field
    /// `parent`) when the parent does not exist.
    async fn create_category(&self, org_id: &str, category: &crate::catalog::Category) -> Result<()>;
    /// One category by name.
    async fn get_category(&self, org_id: &str, name: &str) -> Result<Option<crate::catalog::Category>>;
    /// The org's categories by name (an opaque cursor; a malformed one is `Invalid`).
    async fn list_categories(
        &self,
        org_id: &str,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<Page<crate::catalog::Category>>;
    /// Moves a category under `parent` (or to the top with `None`); `None` when the org has no
    /// such category. `Invalid` (field `parent`) when the parent does not exist, is the
    /// category itself or one of its descendants (a cycle).
    async fn set_category_parent(
        &self,
        org_id: &str,
        name: &str,
        parent: Option<&str>,
    ) -> Result<Option<crate::catalog::Category>>;
    /// Deletes a category; `false` when the org has none. `Conflict` while subcategories or
    /// products name it.
    async fn delete_category(&self, org_id: &str, name: &str) -> Result<bool>;
}

/// Where one configured social source stands between runs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SourceState {
    /// The adapter's cursor: what the last run saw, so the next fetches only what is new
    /// (opaque to the store; each adapter documents its own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    /// When the last run started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run_at: Option<Millis>,
    /// When the last run that succeeded started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_success_at: Option<Millis>,
    /// The last run's error, `None` after a success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// Filters for [`SocialStore::list_mentions`]. Results are newest first (by `posted_at`, then
/// by id).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MentionQuery {
    /// Page size, `1..=1000`.
    pub limit: u32,
    /// From the previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// Only this platform.
    pub platform: Option<String>,
    /// Only this configured source.
    pub source: Option<String>,
    /// Only mentions the pre-filter selected (`true`) or passed over (`false`).
    pub selected: Option<bool>,
    /// Posted at or after.
    pub since: Option<Millis>,
    /// Posted before.
    pub until: Option<Millis>,
}

/// What [`SocialStore::store_mentions`] did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MentionOutcome {
    /// Mentions stored by this call.
    pub stored: usize,
    /// Mentions and duplicate links whose id was already stored, left unchanged.
    pub existing: usize,
    /// Duplicate links stored by this call.
    pub duplicates: usize,
}

/// Social mentions, their duplicate links and the state of each configured source.
///
/// Contract: every call is scoped to an org. A mention's id (`platform:platform_id`) is stored
/// at most once per org, as a mention or as a duplicate link: storing it again changes
/// nothing (a re-run or a crash-and-retry stores nothing twice). Mentions, links and the
/// follow-up jobs commit together.
#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
pub trait SocialStore: MaybeSend {
    /// Which of `ids` the org already has, as mentions or as duplicate links.
    async fn known_mentions(&self, org_id: &str, ids: &[String]) -> Result<Vec<String>>;
    /// Stores new mentions and duplicate links, and enqueues `follow_up` (the `analyze-social`
    /// jobs), in one transaction. Errors with `Invalid` when a mention's `org_id` differs.
    async fn store_mentions(
        &self,
        org_id: &str,
        mentions: &[SocialMention],
        duplicates: &[MentionDuplicate],
        follow_up: Vec<NewJob>,
        now: Millis,
    ) -> Result<MentionOutcome>;
    /// `(id, simhash)` of the org's stored mentions posted at or after `since`, oldest first:
    /// what the near-duplicate index is rebuilt from.
    async fn mention_simhashes(&self, org_id: &str, since: Millis) -> Result<Vec<(String, u64)>>;
    /// Mentions by id (unknown ids are skipped), in the order asked.
    async fn get_mentions(&self, org_id: &str, ids: &[String]) -> Result<Vec<SocialMention>>;
    /// Lists mentions with filters and cursor pagination.
    async fn list_mentions(&self, org_id: &str, query: &MentionQuery) -> Result<Page<SocialMention>>;
    /// Duplicate links, newest first; of one original when `original_id` is given.
    async fn list_duplicates(
        &self,
        org_id: &str,
        original_id: Option<&str>,
        limit: u32,
    ) -> Result<Vec<MentionDuplicate>>;
    /// Records the `analyze-social` result on a stored mention (model sentiment in [-1, 1],
    /// and the analysis). Errors with `NotFound` for an unknown id.
    async fn set_mention_analysis(
        &self,
        org_id: &str,
        id: &str,
        sentiment: Option<f32>,
        analysis: &Value,
    ) -> Result<()>;
    /// A source's state, `None` before its first run.
    async fn source_state(&self, org_id: &str, source: &str) -> Result<Option<SourceState>>;
    /// Replaces a source's state.
    async fn set_source_state(&self, org_id: &str, source: &str, state: &SourceState) -> Result<()>;
}

/// The seed's queues.
pub mod queues {
    /// Website events and processed CCTV frames.
    pub const INTERACTION: &str = "interaction";
    /// Social media mentions.
    pub const SOCIAL: &str = "social";
    /// AI processing tasks (and the raw-batch archive copy).
    pub const PROCESSING: &str = "processing";
    /// Report generation.
    pub const EXPORT: &str = "export";
    /// All of them.
    pub const ALL: [&str; 4] = [INTERACTION, SOCIAL, PROCESSING, EXPORT];
}

/// A job to enqueue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewJob {
    /// Queue name (see [`queues`]).
    pub queue: String,
    /// Message type: names the workflow the trigger starts (e.g. `interaction`, `archive-batch`).
    pub kind: String,
    /// JSON payload.
    pub payload: Value,
    /// Earliest time to deliver, when delayed.
    pub not_before: Option<Millis>,
}

impl NewJob {
    /// A job for immediate delivery.
    pub fn new(queue: &str, kind: &str, payload: Value) -> Self {
        NewJob {
            queue: queue.to_owned(),
            kind: kind.to_owned(),
            payload,
            not_before: None,
        }
    }
}

/// A delivered job, leased until `lease_until`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// Job id, unique in the queue backend.
    pub id: i64,
    /// Queue name.
    pub queue: String,
    /// Message type.
    pub kind: String,
    /// JSON payload.
    pub payload: Value,
    /// Deliveries so far, including this one.
    pub attempts: u32,
    /// When the job was first enqueued.
    pub enqueued_at: Millis,
    /// The lease expires then; the job is delivered again unless acked.
    pub lease_until: Millis,
}

/// Retry policy of a queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryPolicy {
    /// Deliveries before a failing job goes to the dead-letter state.
    pub max_attempts: u32,
    /// First retry delay; doubled per attempt.
    pub base_delay_ms: i64,
    /// Retry delay cap.
    pub max_delay_ms: i64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 8,
            base_delay_ms: 1_000,
            max_delay_ms: 5 * 60_000,
        }
    }
}

impl RetryPolicy {
    /// Delay before the next delivery after `attempts` failed ones: exponential backoff with
    /// "full jitter" (a uniform value in `[d/2, d]` where `d = min(cap, base * 2^(attempts-1))`).
    /// `jitter` is a uniform sample in `[0, 1)` supplied by the caller.
    pub fn backoff(&self, attempts: u32, jitter: f64) -> i64 {
        let exp = attempts.saturating_sub(1).min(30);
        let d = (self.base_delay_ms.saturating_mul(1i64 << exp)).min(self.max_delay_ms);
        let half = d / 2;
        half + ((d - half) as f64 * jitter.clamp(0.0, 1.0)) as i64
    }
}

/// Counts of a queue.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueDepth {
    /// Waiting for delivery (including delayed retries).
    pub ready: u64,
    /// Delivered and leased.
    pub in_flight: u64,
    /// Failed `max_attempts` times.
    pub dead: u64,
}

/// A durable at-least-once job queue.
///
/// Contract:
/// - `enqueue` is durable when it returns.
/// - `reserve` leases up to `max` ready jobs of one queue for `lease_ms`, oldest first; a job not
///   acked before its lease expires is delivered again (at-least-once: handlers must be idempotent).
/// - `ack` removes a job; acking an unknown or already-acked job is not an error.
/// - `fail` schedules a retry with [`RetryPolicy::backoff`], or moves the job to the dead-letter
///   state after `max_attempts` deliveries. Returns `true` when the job is dead.
/// - Times are passed in by the caller (`now`), so behaviour is testable.
#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
pub trait JobQueue: MaybeSend {
    /// Enqueues jobs.
    async fn enqueue(&self, jobs: Vec<NewJob>, now: Millis) -> Result<()>;
    /// Leases ready jobs.
    async fn reserve(&self, queue: &str, max: usize, lease_ms: i64, now: Millis) -> Result<Vec<Job>>;
    /// Completes a job.
    async fn ack(&self, job_id: i64) -> Result<()>;
    /// Fails a delivery; returns true when the job went to dead-letter.
    async fn fail(&self, job_id: i64, error: &str, policy: &RetryPolicy, now: Millis, jitter: f64) -> Result<bool>;
    /// Counts of a queue.
    async fn depth(&self, queue: &str) -> Result<QueueDepth>;
    /// Dead-lettered jobs of a queue, oldest first.
    async fn dead_letters(&self, queue: &str, limit: u32) -> Result<Vec<Job>>;
    /// Ends every lease of a queue, so leased jobs are delivered again at once; returns how
    /// many. Only for a consumer that knows no other consumer is alive (the native server calls
    /// it at start-up while holding the data directory's worker lock, so jobs leased by a process
    /// that was killed do not wait for their leases to expire).
    async fn release_leases(&self, queue: &str) -> Result<u64>;
}

/// Durable record of finished workflow steps, so a crashed workflow resumes instead of
/// repeating finished steps.
///
/// Contract: `save_step` is durable when it returns; `load_steps` returns every step saved for
/// the run (name → output).
#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
pub trait WorkflowStore: MaybeSend {
    /// Outputs of the finished steps of a run.
    async fn load_steps(&self, run_id: &str) -> Result<std::collections::HashMap<String, Value>>;
    /// Records a finished step and its output.
    async fn save_step(&self, run_id: &str, step: &str, output: &Value, now: Millis) -> Result<()>;
    /// Marks the run complete (its step records may be dropped).
    async fn finish_run(&self, run_id: &str, now: Millis) -> Result<()>;
}

/// Live notices for subscribers (GraphQL subscriptions, dashboards): what just happened, pushed
/// as it happens.
///
/// Contract: best effort and non-blocking. A notifier never fails or slows its caller; a notice
/// with no subscriber is dropped; nothing durable depends on it (subscribers that need every
/// event read the store). Notices carry the org, and a notifier delivers a notice only to that
/// org's subscribers.
pub trait Notifier: MaybeSend {
    /// An insight was computed (a REST insights aggregate, whichever surface asked for it).
    fn insight(&self, insight: &Insight);
}

/// An object store (the seed's R2 buckets: raw-interactions, cctv-frames, exports, assets).
///
/// Contract: `put` is atomic (a reader sees the old or the new object, never a part) and
/// durable when it returns; keys are `/`-separated paths without leading `/` or `..`.
#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
pub trait BlobStore: MaybeSend {
    /// Writes an object.
    async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<()>;
    /// Reads an object.
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>>;
    /// Keys under a prefix, sorted.
    async fn list(&self, prefix: &str) -> Result<Vec<String>>;
    /// Deletes an object; deleting a missing key is not an error.
    async fn delete(&self, key: &str) -> Result<()>;
}

/// Sentiment of a text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Sentiment {
    /// `positive`, `negative` or `neutral`.
    pub label: String,
    /// Score in [-1, 1].
    pub score: f32,
    /// Which tier produced it (`lexicon`, `model`).
    pub tier: String,
}

/// An entity found in a text (byte offsets).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Entity {
    /// Kind (`product`, `brand`, `money`, `email`, ...).
    pub kind: String,
    /// The matched text.
    pub text: String,
    /// Start byte offset.
    pub start: usize,
    /// End byte offset.
    pub end: usize,
    /// Catalog product, when matched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_id: Option<String>,
    /// True when the entity is personal data (an email, a phone number): never store its text.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pii: bool,
}

/// What a [`TextAnalyzer`] says of one text.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TextAnalysis {
    /// Detected language (ISO 639-1), if any.
    pub language: Option<String>,
    /// Sentiment, if computed.
    pub sentiment: Option<Sentiment>,
    /// Entities, ordered by start offset, not overlapping.
    pub entities: Vec<Entity>,
    /// Key phrases, best first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub key_phrases: Vec<String>,
}

/// Sentiment, entities and language of texts.
///
/// Contract: one result per input text, in order; an empty text gives a neutral result, not an
/// error.
#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
pub trait TextAnalyzer: MaybeSend {
    /// Analyzes texts for an org (the org selects its catalog gazetteer).
    async fn analyze(&self, org_id: &str, texts: &[String]) -> Result<Vec<TextAnalysis>>;
}

/// Sentence embeddings.
///
/// Contract: one vector of length [`dim`](Embedder::dim) per text, in order, L2-normalized.
#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
pub trait Embedder: MaybeSend {
    /// Vector length.
    fn dim(&self) -> usize;
    /// Embeds texts.
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>>;
}

/// A vector index with Cloudflare Vectorize's semantics (see [`crate::vector`]): string ids,
/// JSON metadata with filters, namespaces, cosine / euclidean / dot-product.
///
/// Contract:
/// - **Org isolation is the index's job**: every call takes the org, a record is only ever seen,
///   replaced, returned or deleted through its own org, and one org's records never crowd out
///   another's hits (a small org in a large shared index still gets its `top_k`).
/// - `upsert` validates every record first ([`IndexInfo::validate_record`]) and stores none on
///   [`Error::Invalid`](crate::Error::Invalid); it replaces a record with the same
///   `(org, namespace, id)`. Once it returns `Ok`, the records survive a crash.
/// - `query` never returns deleted or replaced records, only records matching the namespace and
///   the filter, best first under the metric, at most `top_k`. An approximate index may miss a
///   true neighbour (recall < 1) but never returns a non-match.
/// - `delete` of unknown ids is not an error; it returns how many records it removed.
#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
pub trait VectorIndex: MaybeSend {
    /// Name, dimensions, metric.
    fn info(&self) -> &IndexInfo;
    /// Inserts or replaces records; returns how many were written.
    async fn upsert(&self, org_id: &str, records: Vec<VectorRecord>) -> Result<usize>;
    /// Deletes records by id (in any namespace of the org); returns how many were removed.
    async fn delete(&self, org_id: &str, ids: &[String]) -> Result<usize>;
    /// The org's records with these ids, in the order asked (unknown ids are skipped).
    async fn get(&self, org_id: &str, ids: &[String]) -> Result<Vec<VectorRecord>>;
    /// Top-`k` records of the org matching the namespace and filter.
    async fn query(&self, org_id: &str, query: &VectorQuery) -> Result<Vec<VectorMatch>>;
    /// Number of the org's live records.
    async fn count(&self, org_id: &str) -> Result<usize>;
    /// Makes everything written so far durable in the compact form (a snapshot, for the
    /// embedded index); remote backends may do nothing.
    async fn persist(&self) -> Result<()> {
        Ok(())
    }
    /// Purges deleted and replaced records from the index's memory and from every file it
    /// keeps, and makes the result durable, so nothing of a deleted record remains (a GDPR
    /// erasure calls it after `delete`). Backends whose deletes already leave nothing behind
    /// do nothing (the default).
    async fn compact(&self) -> Result<()> {
        Ok(())
    }
}

/// An RGB frame (8 bits per channel, row-major, no padding).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Frame time.
    pub timestamp: Millis,
    /// `width * height * 3` bytes.
    pub rgb: Vec<u8>,
}

/// A box in pixel coordinates.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BoundingBox {
    /// Left.
    pub x: f32,
    /// Top.
    pub y: f32,
    /// Width.
    pub w: f32,
    /// Height.
    pub h: f32,
    /// Detector confidence in [0, 1].
    pub score: f32,
}

/// What a [`FrameAnalyzer`] found in a frame.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FrameAnalysis {
    /// Faces (to be masked before anything is stored).
    pub faces: Vec<BoundingBox>,
    /// People.
    pub people: Vec<BoundingBox>,
}

/// A source of frames (video file, stream, image folder).
///
/// Contract: frames in time order; `Ok(None)` at the end of a finite source; a stream that
/// stalls reports `Unavailable` instead of blocking forever.
#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
pub trait FrameSource: MaybeSend {
    /// The next frame.
    async fn next_frame(&mut self) -> Result<Option<Frame>>;
}

/// Face and person detection on frames.
///
/// Contract: boxes are in the frame's pixel coordinates; an empty analysis means nothing found.
#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
pub trait FrameAnalyzer: MaybeSend {
    /// Analyzes one frame.
    async fn analyze(&self, frame: &Frame) -> Result<FrameAnalysis>;
}

/// Per-camera processing of frames: motion gating, detection (through a [`FrameAnalyzer`]),
/// tracking, masking and people analytics.
///
/// Contract: frames are passed in time order; the returned frame is masked wherever a face was
/// detected or is still carried by the tracker; a processor keeps state between frames (the
/// background model, the tracks, the zones' occupancy), so one processor serves one camera.
#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
pub trait FrameProcessor: MaybeSend {
    /// Processes the next frame.
    async fn process(&mut self, frame: Frame) -> Result<crate::video::ProcessedFrame>;
    /// Observations due when the source ends at `at` (dwell times of people still present,
    /// occupancy back to zero).
    async fn finish(&mut self, at: Millis) -> Result<Vec<crate::video::FrameObservation>>;
    /// The heatmap of where people were since the last call (an encoded image), and resets it;
    /// `None` when nobody was seen.
    async fn take_heatmap(&mut self) -> Result<Option<crate::video::EncodedImage>>;
}

/// Encodes masked frames for the archive. Takes only [`MaskedFrame`](crate::video::MaskedFrame)s.
pub trait ImageEncoder: MaybeSend {
    /// Encodes a frame.
    fn encode(&self, frame: &crate::video::MaskedFrame) -> Result<crate::video::EncodedImage>;
}

/// Storage of CCTV results: frame events and the archive ledger.
///
/// Contract:
/// - `store_frame_events` is idempotent by event id (a redelivered job stores nothing twice) and
///   returns how many were new.
/// - The archive ledger records the objects the channel wrote to the `cctv-frames` bucket, so
///   retention deletes oldest first from the ledger alone.
/// - Every call is scoped to the org.
/// - Bad input stores nothing: an event of another org, or a non-finite `value`, is `Invalid`
///   naming `events[i]...`; a `limit` outside `1..=1000` or a malformed cursor is `Invalid`.
/// - `record_archive` replaces the entry of a key recorded again (the object was rewritten);
///   `remove_archive` counts each removed key once and skips unknown keys.
#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
pub trait VideoStore: MaybeSend {
    /// Stores frame events; returns how many were new.
    async fn store_frame_events(&self, org_id: &str, events: &[FrameEvent]) -> Result<usize>;
    /// Frame events, oldest first.
    async fn list_frame_events(&self, org_id: &str, query: &crate::video::FrameEventQuery) -> Result<Page<FrameEvent>>;
    /// Records archived objects.
    async fn record_archive(&self, org_id: &str, entries: &[crate::video::ArchiveEntry]) -> Result<()>;
    /// Totals of the org's archive.
    async fn archive_usage(&self, org_id: &str) -> Result<crate::video::ArchiveUsage>;
    /// The oldest recorded objects, oldest first.
    async fn oldest_archive(&self, org_id: &str, limit: u32) -> Result<Vec<crate::video::ArchiveEntry>>;
    /// Forgets recorded objects; returns how many were removed.
    async fn remove_archive(&self, org_id: &str, keys: &[String]) -> Result<usize>;
}

/// GDPR: what the relational store holds about one person (an export, article 15) and its
/// erasure (article 17). Types in [`crate::person`].
///
/// Contract:
/// - **Who**: `id` is any id of the person (an anonymous id, a previous id, the user id). It
///   resolves to the root person ([`EventStore::resolve_person`], else `id` itself), and the
///   person is that root with every alias linked to it.
/// - **What is theirs**: the interactions whose stitched person, user id or anonymous id is
///   one of those ids; the sessions of those ids and those their interactions belong to; the
///   identity links of those ids; the text analyses of their interactions.
/// - `person_data` only reads; `None` when nothing of the above exists for `id`.
/// - `erase_person` deletes all of the above **in one transaction**, removes the erased event
///   ids from the payloads of queued and dead-lettered jobs of the org (a job left naming no
///   event is deleted), and drops the step records of unfinished workflow runs that name the
///   person or their events. A backend that keeps files makes sure no erased byte is left in
///   them when it returns (crow-store: `secure_delete` and a truncating WAL checkpoint).
///   `None` when nothing is held about `id`: erasing twice answers `None` the second time.
/// - Everything is scoped to the org: another org's person with the same id is untouched.
/// - Copies outside the store (vectors, raw-batch archives) are the caller's: the returned
///   [`Erasure`](crate::person::Erasure) names the erased event ids and person ids for that.
#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
pub trait PersonStore: MaybeSend {
    /// Everything held about the person `id` belongs to.
    async fn person_data(&self, org_id: &str, id: &str) -> Result<Option<crate::person::PersonData>>;
    /// Erases the person `id` belongs to; `now` is the caller's clock.
    async fn erase_person(&self, org_id: &str, id: &str, now: Millis) -> Result<Option<crate::person::Erasure>>;
}

/// Export records: what was asked, and where the `export-report` workflow stands.
///
/// Contract:
/// - Every call is scoped to the org: another org's export is never seen or changed.
/// - `create_export` stores the record and enqueues `follow_up` (the `export-report` job) in
///   one transaction when the backend can, and otherwise enqueues after the record commits and
///   before returning. `Conflict` when the org has an export with this id.
/// - `list_exports` is newest first (by `created_at`, then id, both descending).
/// - `update_export` replaces the progress fields (`status`, `started_at`, `finished_at`,
///   `rows`, `bytes`, `error`, `key`) of the stored export with the same id; what was asked
///   (`resource`, `format`, `filters`, `created_at`) never changes.
#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
pub trait ExportStore: MaybeSend {
    /// Stores a new export and enqueues its job.
    async fn create_export(&self, org_id: &str, export: &crate::export::Export, follow_up: Vec<NewJob>) -> Result<()>;
    /// One export.
    async fn get_export(&self, org_id: &str, id: &str) -> Result<Option<crate::export::Export>>;
    /// The org's exports, newest first (an opaque cursor; a malformed one is `Invalid`).
    async fn list_exports(&self, org_id: &str, limit: u32, cursor: Option<&str>)
    -> Result<Page<crate::export::Export>>;
    /// Records progress; `false` when the org has no such export.
    async fn update_export(&self, org_id: &str, export: &crate::export::Export) -> Result<bool>;
}

/// Agent tasks: what the A2A agent was asked to do and where it stands. Types in
/// [`crate::agent`].
///
/// Contract:
/// - Every call is scoped to the org: another org's task is never seen, counted or changed, even
///   with the same id.
/// - `create_task` stores the task as given (its `org_id` is set to `org_id`). `Conflict` when
///   the org has a task with this id; `Invalid` naming `id` for an empty id.
/// - `list_tasks` is newest first (by `created_at`, then id, both descending), filtered by the
///   query's `context_id`, `state` and `updated_since`; an opaque cursor, a malformed one is `Invalid` naming
///   `cursor`. `count_tasks` counts what the same filters match across all pages.
/// - `update_task` replaces what changes as a task runs (`state`, `status_message`, `history`,
///   `artifacts`, `updated_at`) of the stored task with the same id; what was asked (`skill`,
///   `args`, `context_id`, `actor`, `created_at`) never changes. A finished task
///   ([`TaskState::is_terminal`](crate::agent::TaskState::is_terminal)) is never changed: the
///   check and the write are atomic, so a cancel cannot overwrite a completion or the reverse.
///   Returns `false` (and changes nothing) when the org has no such task or it is finished.
#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
pub trait TaskStore: MaybeSend {
    /// Stores a new task.
    async fn create_task(&self, org_id: &str, task: &crate::agent::AgentTask) -> Result<()>;
    /// One task.
    async fn get_task(&self, org_id: &str, id: &str) -> Result<Option<crate::agent::AgentTask>>;
    /// The org's tasks, newest first.
    async fn list_tasks(&self, org_id: &str, query: &crate::agent::TaskQuery) -> Result<Page<crate::agent::AgentTask>>;
    /// How many tasks the query's filters match.
    async fn count_tasks(&self, org_id: &str, query: &crate::agent::TaskQuery) -> Result<u64>;
    /// Records progress of an unfinished task; `false` when there is none with this id.
    async fn update_task(&self, org_id: &str, task: &crate::agent::AgentTask) -> Result<bool>;
}
