//! # crow-ingest
//!
//! CROW's channels and workflows, written against crow-core's ports only, so the same code runs
//! in the native server and in the Cloudflare Worker.
//!
//! - [`website`] (feature `website`): CROW's own endpoint, the Segment HTTP Tracking API and
//!   PostHog capture — parse, validate, scrub, normalize; [`ingest::IngestService`] adds keys,
//!   CORS and the durable append, from a plain [`http::HttpRequest`] to a plain
//!   [`http::HttpResponse`].
//! - [`api`]: the REST API v1 (`/api/v1/...`): routes, authentication (API keys, JWT sessions),
//!   role-based authorization, audit, and the generated OpenAPI document; and [`api::tools`],
//!   the outcome-shaped tools (search, sentiment, top entities, funnel, sessions, exports...)
//!   that GraphQL, the MCP server and the A2A agent run through the same REST operations.
//! - [`gdpr`]: a person's export and erasure across the store, the vector index and the
//!   raw-batch archives (`/api/v1/persons/{id}`).
//! - [`sdk`]: the website SDK, `crow.js`, with its caching headers (`GET /sdk/crow.js`).
//! - [`social`] (feature `social`; adapters behind `social-rss`, `social-mastodon`,
//!   `social-bluesky`, `social-reddit`, `social-hackernews`; the native fetcher and runner
//!   behind `social-http`): the social listening channel.
//! - [`catalog`]: product catalogs from CSV or JSON.
//! - [`workflows`]: `process-interaction` (identity stitching, referrer class, sessions) and
//!   `archive-batch` (and `analyze-social` for the social channel), with a step log so a crash resumes them, and the [`workflows::Trigger`]
//!   that runs them from the durable queue.
//!
//! ```
//! # futures::executor::block_on(async {
//! use crow_core::ports::AccountStore;
//! use crow_core::testing::MemoryStore;
//! use crow_ingest::http::HttpRequest;
//! use crow_ingest::ingest::{IngestConfig, IngestService};
//!
//! let store = MemoryStore::new();
//! let (org, creds, keys) = crow_core::keys::generate("Acme", 0, &[1; crow_core::keys::RANDOM_BYTES]);
//! store.create_org(&org, &keys).await.unwrap();
//! let ingest = IngestService::new(store, IngestConfig::default());
//! let req = HttpRequest {
//!     method: "POST".into(),
//!     path: "/v1/track".into(),
//!     headers: vec![("content-type".into(), "application/json".into())],
//!     body: format!(r#"{{"writeKey":"{}","event":"Signed Up","userId":"u-1","messageId":"m-1"}}"#, creds.write_key).into_bytes(),
//!     ..HttpRequest::default()
//! };
//! let (resp, report) = ingest.handle(&req, 1_700_000_000_000).await;
//! assert_eq!((resp.status, report.accepted), (200, 1));
//! # });
//! ```
#![warn(missing_docs)]

pub mod a2a;
pub mod api;
pub mod catalog;
pub mod catalog_import;
#[cfg(feature = "cctv")]
pub mod cctv;
pub mod enrich;
pub mod gdpr;
pub mod http;
#[cfg(feature = "website")]
pub mod ingest;
pub mod jobs;
#[cfg(feature = "ratelimit")]
pub mod limits;
pub mod sdk;
pub mod search;
#[cfg(feature = "social")]
pub mod social;
#[cfg(feature = "website")]
pub mod website;
pub mod workflows;
