//! # crow-store
//!
//! CROW's storage backends of the [`crow_core::ports`]:
//!
//! - [`sql`]: every storage port written once, as SQLite-dialect statements and the logic
//!   between them, over a [`Sql`] executor. [`SqliteStore`] is one executor; the Cloudflare
//!   Worker's D1 binding is the other (`SqlStore<D1>` in deploy/worker), so the integration tests
//!   of `SqliteStore` exercise the very SQL the Worker runs. Statements keep to D1's rules (no
//!   interactive transactions: one atomic batch per write; at most 100 parameters; lists as
//!   one JSON parameter). Without the default `sqlite` feature this module is all there is, and it
//!   compiles to `wasm32-unknown-unknown`.
//! - [`SqliteStore`]: one SQLite database (`DIR/crow.db`, WAL) implementing
//!   [`EventStore`](crow_core::ports::EventStore), [`AccountStore`](crow_core::ports::AccountStore),
//!   [`CatalogStore`](crow_core::ports::CatalogStore), [`SocialStore`](crow_core::ports::SocialStore),
//!   [`VideoStore`](crow_core::ports::VideoStore) (CCTV frame events and the archive ledger),
//!   [`JobQueue`](crow_core::ports::JobQueue) and [`WorkflowStore`](crow_core::ports::WorkflowStore). The schema lives in plain SQL
//!   [`MIGRATIONS`] (`crow-store/migrations/*.sql`) kept Cloudflare D1-compatible, so the
//!   Worker applies the same files to D1.
//! - [`LocalBlobStore`]: a [`BlobStore`](crow_core::ports::BlobStore) of files, on the
//!   `object_store` crate; [`BlobStoreConfig`] is the seam where S3/R2 will plug in.
//!
//! ## Writes: one writer thread, group commit
//!
//! SQLite allows one writer at a time. Rather than let connections fight over the lock
//! (`SQLITE_BUSY`), every write goes to one thread that owns the only write connection. It
//! takes all the requests that are pending, runs them in **one** transaction (each in its own
//! savepoint, so a failing request rolls back alone), commits once, then answers each. Many
//! concurrent `append`s thus share one commit, which is what makes durable ingest fast;
//! [`SqliteStore::commit_count`] shows it. Reads use a small pool of read-only connections on
//! tokio's blocking pool, concurrent with the writer thanks to WAL.
//!
//! Durability is [`Durability::Normal`] by default (a committed write survives a crash of the
//! process) or [`Durability::Full`] (it also survives power loss).
//!
//! ## Choices the port contracts leave open
//!
//! The same as `crow_core::testing::MemoryStore`'s, so a test written against one holds for the
//! other, except where noted:
//!
//! - `append` stores events under its `org_id` argument (an event's own `org_id` is
//!   overwritten) and enqueues the follow-up jobs in the same transaction, with `enqueued_at` =
//!   the latest `received_at` of the events (0 without events). A job without `not_before` is
//!   deliverable at once.
//! - Reads return the `person_id`, `session_id` and `referrer_class` written by enrichment and
//!   identity links; every other field comes back exactly as appended.
//! - The page path of an event is `context.page.path`, else the path of `context.page.url`.
//! - Sessions: `started_at`/`ended_at` are the first/last event times, `entry_path`/`exit_path`
//!   the first/last view's path (the screen name for screens); `referrer`, `referrer_class`,
//!   `campaign` ([`Campaign::key`](crow_core::model::Campaign::key)) and `device` come from the
//!   first event; `is_bot` when any event is a bot's. `refresh_sessions` deletes the row of a
//!   session that has no events left.
//! - Reports count a person as the event's stitched `person_id`, else its user or anonymous id
//!   resolved through identity links. `traffic_summary` counts sessions (and their referrer
//!   classes) by `started_at`; `top_pages` counts page events. The funnel walks each person's
//!   events in time order (ties in insertion order); one event advances one step.
//! - Identity links stay flat (every alias points at a root person), so `resolve_person` is one
//!   lookup. `list_interactions`' `person_id` filter matches the stored (stitched) `person_id`.
//! - `fail` on a dead job answers `true` and changes nothing; on an unknown job it is
//!   `NotFound`. Job ids are never reused.
//! - `limit` 0 means 50 (MemoryStore: 1); cursors are opaque and specific to this store.
//! - `upsert_products` counts a product as changed only when its content differs: a re-crawl
//!   that only moves `updated_at` reports 0 and leaves the row as it was (MemoryStore counts
//!   any difference).
//! - `store_mentions` checks every mention's `org_id` first (`Invalid`, nothing stored), then
//!   stores the mentions and then the duplicate links in the order given; an id stored before,
//!   in either table, or earlier in the same call, counts as `existing`. A link's
//!   `original_id` is not checked. The follow-up jobs go in the same transaction with
//!   `enqueued_at = now`, except when every mention and link given already existed (a re-run).
//!   `set_mention_analysis` reaches mentions only (a duplicate link's id is `NotFound`).
//! - `known_mentions` answers each known id once, in the order asked; `list_duplicates` is
//!   newest first by `fetched_at`, then id; `mention_simhashes` oldest first by `posted_at`,
//!   then id. Engagement counts above `i64::MAX` are stored as `i64::MAX`.
//! - `store_frame_events` checks every event first (`org_id` and a finite `value`; `Invalid`,
//!   nothing stored); an id stored before is left as it was. `list_frame_events` and
//!   `oldest_archive` take a `limit` of `1..=1000` (else `Invalid`). `record_archive` replaces the
//!   entry of a key recorded again (the object was rewritten).
//!
//! ## Example
//!
//! ```
//! use crow_core::model::{EventType, Interaction};
//! use crow_core::ports::{EventStore, InteractionQuery};
//! use crow_store::{SqliteStore, StoreConfig};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let rt = tokio::runtime::Runtime::new().unwrap();
//! rt.block_on(async {
//!     let store = SqliteStore::open(dir.path(), StoreConfig::default()).unwrap();
//!     let creds = store.create_org("Acme", 1_700_000_000_000).await.unwrap();
//!     let event: Interaction = serde_json::from_value(serde_json::json!({
//!         "id": "evt-1", "org_id": creds.org_id, "type": "page",
//!         "context": {"page": {"path": "/pricing"}},
//!         "timestamp": 1_700_000_000_000i64, "received_at": 1_700_000_000_100i64,
//!     }))
//!     .unwrap();
//!     let outcome = store.append(&creds.org_id, vec![event.clone()], vec![]).await.unwrap();
//!     assert_eq!(outcome.inserted, 1);
//!     // the same id again is a duplicate, not a second row
//!     let again = store.append(&creds.org_id, vec![event], vec![]).await.unwrap();
//!     assert_eq!(again.duplicates, 1);
//!     let page = store.list_interactions(&creds.org_id, &InteractionQuery::default()).await.unwrap();
//!     assert_eq!(page.data[0].event_type, EventType::Page);
//! });
//! ```
#![warn(missing_docs)]

#[cfg(feature = "sqlite")]
pub mod blob;
pub mod error;
pub mod sql;
#[cfg(feature = "sqlite")]
pub mod sqlite;
#[cfg(feature = "hnsw")]
pub mod vector;

#[cfg(feature = "sqlite")]
pub use blob::{BlobBackend, BlobStoreConfig, LocalBlobStore, ObjectBlobStore};
pub use error::StoreError;
pub use sql::{Sql, SqlStore};
#[cfg(feature = "sqlite")]
pub use sqlite::{DB_FILE, Durability, MIGRATIONS, Migration, SqliteStore, StoreConfig};
