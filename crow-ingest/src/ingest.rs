//! The ingest service the shells call: one plain request in, one plain response out.
//!
//! [`IngestService::handle`] routes by path, answers CORS, decodes and parses the body
//! ([`crate::website::parse_request`]), authenticates the presented key with
//! [`AccountStore::authenticate`] (write and secret keys may both ingest), normalizes and scrubs
//! every event ([`crate::website::ParsedRequest::normalize`]), and stores the good ones with
//! [`EventStore::append`] together with two follow-up jobs — `interaction`/[`PROCESS_INTERACTION`]
//! and `processing`/[`ARCHIVE_BATCH`], each with an [`InteractionBatch`] payload — so events and
//! the work after them commit together. The answer is sent only after that durable commit.
//!
//! ```
//! use crow_core::ports::AccountStore;
//! use crow_core::testing::MemoryStore;
//! use crow_ingest::http::HttpRequest;
//! use crow_ingest::ingest::{IngestConfig, IngestService};
//!
//! # futures::executor::block_on(async {
//! let svc = IngestService::new(MemoryStore::new(), IngestConfig::default());
//! let (org, creds, keys) = crow_core::keys::generate("Acme", 0, &[7; crow_core::keys::RANDOM_BYTES]);
//! svc.store().create_org(&org, &keys).await.unwrap();
//!
//! let req = HttpRequest {
//!     method: "POST".into(),
//!     path: "/api/v1/events".into(),
//!     query: Some(format!("k={}", creds.write_key)),
//!     body: br#"{"b":[{"t":"p","a":"v1","c":{"u":"https://shop.example/"}}]}"#.to_vec(),
//!     ..Default::default()
//! };
//! let (resp, report) = svc.handle(&req, 1_714_564_800_000).await;
//! assert_eq!(resp.status, 200);
//! assert_eq!(report.accepted, 1);
//! # });
//! ```
//!
//! # Responses
//!
//! | Status | When | Body |
//! |---|---|---|
//! | 200 | at least one event was good (duplicates count as good) | `{"accepted": n, "duplicates": d, "rejected": [{"index", "field", "reason"}]}` plus `"success": true` on Segment routes and `"status": 1` on PostHog routes |
//! | 204 | CORS preflight (`OPTIONS`) | — |
//! | 400 | `too_deep`, `invalid_utf8`, `bad_json` (names line and column), `bad_encoding`, `bad_request`, `no_valid_events` (with `rejected`) | problem+json |
//! | 401 | `missing_key`, `invalid_key` (never says whether an org exists) | problem+json |
//! | 404 / 405 | not an ingest path / not `POST` | problem+json |
//! | 413 | `body_too_large` (> 1 MiB after decompression), `too_many_events` (> 500) | problem+json |
//! | 415 | `unsupported_encoding` | problem+json |
//! | 503 | the store failed; `Retry-After: 2` | problem+json |
//!
//! `accepted` counts events stored by this request; `duplicates` counts events whose id the org
//! already had (a resent batch answers `accepted: 0` and stores nothing twice). Problem documents
//! carry `type` (`/problems/{code}`), `title`, `status`, `detail`, and also `code` and `message`
//! (what Segment's clients read; PostHog's read `detail`).

use std::collections::HashSet;

use crow_core::model::{Interaction, Millis, Source};
use crow_core::ports::{AccountStore, EventStore, KeyGrant, NewJob, queues};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use tracing::Instrument as _;

use crate::http::{HttpRequest, HttpResponse};
use crate::jobs::{ARCHIVE_BATCH, InteractionBatch, PROCESS_INTERACTION};
use crate::website::{self, Limits, NormalizedBatch, Rejection, RequestError, RequestErrorKind, RequestInfo, Route};

/// Configuration of the ingest endpoints. Every field has a default, so `{}` is a valid config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngestConfig {
    /// Maximum body size after decompression, in bytes (default 1 MiB).
    pub max_body_bytes: usize,
    /// Maximum events per request (default 500).
    pub max_batch: usize,
    /// Maximum JSON nesting depth of a body (default 32).
    pub max_depth: usize,
    /// Maximum length of any string in an event, in bytes (default 64 KiB).
    pub max_string_bytes: usize,
    /// Take the client address from `CF-Connecting-IP` / `X-Forwarded-For` (default false: only
    /// behind a proxy that sets them, or clients can claim any address).
    pub trust_proxy_headers: bool,
    /// Origins allowed to send from browsers (CORS); `None` (the default) allows any origin.
    pub cors_allowed_origins: Option<Vec<String>>,
}

impl Default for IngestConfig {
    fn default() -> Self {
        let l = Limits::default();
        IngestConfig {
            max_body_bytes: l.max_body_bytes,
            max_batch: l.max_batch,
            max_depth: l.max_depth,
            max_string_bytes: l.max_string_bytes,
            trust_proxy_headers: false,
            cors_allowed_origins: None,
        }
    }
}

impl IngestConfig {
    /// The size and shape limits of this config.
    pub fn limits(&self) -> Limits {
        Limits {
            max_body_bytes: self.max_body_bytes,
            max_batch: self.max_batch,
            max_depth: self.max_depth,
            max_string_bytes: self.max_string_bytes,
        }
    }
}

/// What one request did, for metrics: events stored, duplicates, and rejections by reason code
/// (`invalid_field` per bad event; for a refused request its reason — `body_too_large`,
/// `too_many_events`, `too_deep`, `invalid_utf8`, `bad_json`, `unsupported_encoding`,
/// `bad_encoding`, `bad_request`, `unauthorized`, `unavailable`, `not_found`,
/// `method_not_allowed` — counted as the number of events when known, else 1).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IngestReport {
    /// Events stored by this request.
    pub accepted: u64,
    /// Events already stored (same id in the org), not stored again.
    pub duplicates: u64,
    /// Rejections by reason code.
    pub rejected: Vec<(&'static str, u64)>,
    /// Events the client reported it dropped before it could send them (the CROW envelope's
    /// `dr`: the SDK's bounded offline queue overflowed). Set only when the batch was stored and
    /// held at least one new event, so a resent batch does not count them twice.
    pub client_dropped: u64,
    /// The org the events were stored for (set when the request was authenticated and stored).
    pub org_id: Option<String>,
    /// The ids of the events stored by this request, in request order (duplicates left out):
    /// what live subscribers are told about.
    pub inserted_ids: Vec<String>,
}

impl IngestReport {
    fn refused(reason: &'static str, count: u64) -> Self {
        IngestReport {
            rejected: vec![(reason, count.max(1))],
            ..IngestReport::default()
        }
    }
}

/// What [`IngestService::import`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportOutcome {
    /// Events stored.
    pub inserted: u64,
    /// Events already stored.
    pub duplicates: u64,
    /// Invalid events (index into the given events, field, reason).
    pub rejected: Vec<Rejection>,
}

/// Whom an import is for: a presented key (write or secret), or a grant the caller already
/// resolved (e.g. the CLI, which owns the store).
#[derive(Debug, Clone, Copy)]
pub enum ImportTarget<'a> {
    /// A write key or secret API key, authenticated like a request's.
    Key(&'a str),
    /// An already resolved grant.
    Grant(&'a KeyGrant),
}

impl<'a> From<&'a str> for ImportTarget<'a> {
    fn from(key: &'a str) -> Self {
        ImportTarget::Key(key)
    }
}

impl<'a> From<&'a String> for ImportTarget<'a> {
    fn from(key: &'a String) -> Self {
        ImportTarget::Key(key)
    }
}

impl<'a> From<&'a KeyGrant> for ImportTarget<'a> {
    fn from(grant: &'a KeyGrant) -> Self {
        ImportTarget::Grant(grant)
    }
}

/// What [`IngestService::dispatch`] did with a request.
#[derive(Debug)]
pub enum Routed {
    /// An ingest endpoint answered; the report says what was stored and rejected.
    Ingest(HttpResponse, IngestReport),
    /// A fixed resource answered, the same for every org and without a store lookup: the
    /// website SDK ([`crate::sdk`]) or posthog-js's remote config and flags
    /// ([`website::PostHogEndpoint`]).
    Static(HttpResponse),
}

/// The ingest service over a store that keeps events and accounts.
#[derive(Debug)]
pub struct IngestService<S> {
    store: S,
    config: IngestConfig,
    limits: Limits,
}

/// Presented keys longer than this are refused without a lookup.
const MAX_KEY_LEN: usize = 256;

impl<S: EventStore + AccountStore> IngestService<S> {
    /// A service over `store`.
    pub fn new(store: S, config: IngestConfig) -> Self {
        let limits = config.limits();
        IngestService { store, config, limits }
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The configuration.
    pub fn config(&self) -> &IngestConfig {
        &self.config
    }

    /// Whether `(method, path)` is one of the ingest routes: `POST` on an ingest path, or the
    /// CORS preflight `OPTIONS` for one.
    pub fn is_ingest_route(method: &str, path: &str) -> bool {
        (method.eq_ignore_ascii_case("POST") || method.eq_ignore_ascii_case("OPTIONS"))
            && Route::from_path(path).is_some()
    }

    /// Routes a request to the ingest endpoints, the website SDK ([`crate::sdk`]) or posthog-js's
    /// config and flags ([`website::PostHogEndpoint`], with CORS); `None` for any other path
    /// (the REST API, [`crate::api::handle`], and the shell's own routes such as health and
    /// metrics). `now` is the server's clock.
    pub async fn dispatch(&self, req: &HttpRequest, now: Millis) -> Option<Routed> {
        // A host configured with a trailing slash (`https://crow.example/`) makes clients send
        // to `//api/v1/events`: collapse the leading slashes rather than lose events to a 404.
        let collapsed;
        let req = if req.path.starts_with("//") {
            collapsed = HttpRequest {
                path: format!("/{}", req.path.trim_start_matches('/')),
                ..req.clone()
            };
            &collapsed
        } else {
            req
        };
        if let Some(resp) = crate::sdk::serve(req) {
            return Some(Routed::Static(resp));
        }
        if let Some(endpoint) = website::PostHogEndpoint::from_path(&req.path) {
            return Some(Routed::Static(self.posthog_endpoint(req, &endpoint)));
        }
        if Self::is_ingest_route(&req.method, &req.path) {
            let (resp, report) = self.handle(req, now).await;
            return Some(Routed::Ingest(resp, report));
        }
        None
    }

    /// Handles one ingest request. `received_at` is the server's clock when the request arrived.
    /// Returns only after the accepted events are durably stored.
    pub async fn handle(&self, req: &HttpRequest, received_at: Millis) -> (HttpResponse, IngestReport) {
        let Some(route) = Route::from_path(&req.path) else {
            let e = RequestError::new(
                RequestErrorKind::NotFound,
                format!("`{}` is not an ingest route", short(&req.path)),
            );
            return (e.to_response(), IngestReport::refused("not_found", 1));
        };
        let cors = self.cors_origin(req);
        if req.method.eq_ignore_ascii_case("OPTIONS") {
            return (self.preflight(req, cors, "POST, OPTIONS"), IngestReport::default());
        }
        let (resp, report) = if req.method.eq_ignore_ascii_case("POST") {
            let span = tracing::debug_span!("ingest", path = %req.path, source = route.source().as_str());
            self.ingest(req, route, received_at).instrument(span).await
        } else {
            let e = RequestError::new(RequestErrorKind::MethodNotAllowed, "ingest routes accept POST");
            (e.to_response(), IngestReport::refused("method_not_allowed", 1))
        };
        (with_cors(resp, cors), report)
    }

    /// posthog-js's config and flags, with the ingest routes' CORS (and preflight).
    fn posthog_endpoint(&self, req: &HttpRequest, endpoint: &website::PostHogEndpoint) -> HttpResponse {
        let cors = self.cors_origin(req);
        if req.method.eq_ignore_ascii_case("OPTIONS") {
            let methods = format!("{}, OPTIONS", endpoint.method());
            return self.preflight(req, cors, &methods);
        }
        with_cors(endpoint.respond(req), cors)
    }

    async fn ingest(&self, req: &HttpRequest, route: Route, received_at: Millis) -> (HttpResponse, IngestReport) {
        let parsed = match website::parse_request(req, route, &self.limits) {
            Ok(p) => p,
            Err(e) => return refuse(e, 1),
        };
        let n = parsed.len() as u64;
        let client_dropped = parsed.client_dropped;
        let grant = match self.authenticate(parsed.key.as_deref()).await {
            Ok(g) => g,
            Err(e) => return refuse(e, n),
        };
        let info = RequestInfo::from_request(req, self.config.trust_proxy_headers);
        let batch = parsed.normalize(&grant.org_id, &grant.pseudonym_key, &info, &self.limits, received_at);
        if batch.events.is_empty() {
            let mut e = if batch.rejected.is_empty() {
                RequestError::new(RequestErrorKind::BadRequest, "the request holds no event")
            } else {
                RequestError::new(
                    RequestErrorKind::NoValidEvents,
                    format!("all {} events were rejected; see `rejected`", batch.rejected.len()),
                )
            };
            e.rejected = batch.rejected;
            return refuse(e, n);
        }
        let rejected = batch.rejected.len() as u64;
        match self
            .store_batch(&grant.org_id, batch.events, received_at, route.source())
            .await
        {
            Ok((inserted, duplicates, inserted_ids)) => {
                let mut body = Map::new();
                body.insert("accepted".into(), Value::from(inserted));
                body.insert("duplicates".into(), Value::from(duplicates));
                body.insert("rejected".into(), website::rejections_json(&batch.rejected));
                match route {
                    Route::Segment(_) => {
                        body.insert("success".into(), Value::Bool(true));
                    }
                    Route::PostHog => {
                        body.insert("status".into(), Value::from(1));
                    }
                    Route::Crow => {}
                }
                let mut report = IngestReport {
                    accepted: inserted,
                    duplicates,
                    rejected: Vec::new(),
                    // A resent batch (nothing new) already reported its drops.
                    client_dropped: if inserted > 0 { client_dropped } else { 0 },
                    org_id: Some(grant.org_id.clone()),
                    inserted_ids,
                };
                if rejected > 0 {
                    report.rejected.push(("invalid_field", rejected));
                }
                if report.client_dropped > 0 {
                    tracing::info!(
                        org = %grant.org_id,
                        dropped = report.client_dropped,
                        "a browser's offline queue dropped events before they could be sent"
                    );
                }
                tracing::debug!(org = %grant.org_id, inserted, duplicates, rejected, "ingested");
                (HttpResponse::json(200, &Value::Object(body)), report)
            }
            Err(e) => {
                let stored = n - rejected;
                let mut report = IngestReport::refused(e.kind.reason(), stored);
                if rejected > 0 {
                    report.rejected.push(("invalid_field", rejected));
                }
                (e.to_response(), report)
            }
        }
    }

    /// Resolves a presented key. Unknown and malformed keys get the same answer, so nothing is
    /// learned about which orgs exist.
    async fn authenticate(&self, key: Option<&str>) -> Result<KeyGrant, RequestError> {
        let Some(key) = key else {
            return Err(RequestError::new(
                RequestErrorKind::MissingKey,
                "no write key: send it in the body (`writeKey`, `k`, `api_key`), the query (`?writeKey=`, `?k=`) or an Authorization header",
            ));
        };
        let invalid = || RequestError::new(RequestErrorKind::InvalidKey, "the write key is not valid");
        if key.len() > MAX_KEY_LEN {
            return Err(invalid());
        }
        match self.store.authenticate(key).await {
            Ok(Some(grant)) => Ok(grant),
            Ok(None) => Err(invalid()),
            Err(e) => {
                tracing::warn!(error = %e, "key lookup failed");
                Err(RequestError::new(
                    RequestErrorKind::Unavailable,
                    "the key store is temporarily unavailable; retry later",
                ))
            }
        }
    }

    /// Stores events with their follow-up jobs in one append; returns (inserted, duplicates, the
    /// inserted ids), counting repeats of an id within the batch as duplicates.
    async fn store_batch(
        &self,
        org_id: &str,
        mut events: Vec<Interaction>,
        received_at: Millis,
        source: Source,
    ) -> Result<(u64, u64, Vec<String>), RequestError> {
        let mut event_ids: Vec<String> = events.iter().map(|e| e.id.clone()).collect();
        let mut in_batch_dups = 0u64;
        if events.len() > 1 {
            let mut seen = HashSet::with_capacity(event_ids.len());
            let repeated: Vec<bool> = event_ids.iter().map(|id| !seen.insert(id.as_str())).collect();
            drop(seen);
            if repeated.contains(&true) {
                in_batch_dups = repeated.iter().filter(|r| **r).count() as u64;
                let mut keep = repeated.iter().map(|r| !r);
                events.retain(|_| keep.next().unwrap_or(true));
                let mut keep = repeated.iter().map(|r| !r);
                event_ids.retain(|_| keep.next().unwrap_or(true));
            }
        }
        let payload = InteractionBatch {
            org_id: org_id.to_owned(),
            batch_id: batch_id(org_id, &event_ids),
            event_ids,
            received_at,
        };
        let payload = serde_json::to_value(&payload).unwrap_or(Value::Null);
        let follow_up = vec![
            NewJob::new(queues::INTERACTION, PROCESS_INTERACTION, payload.clone()),
            NewJob::new(queues::PROCESSING, ARCHIVE_BATCH, payload),
        ];
        match self.store.append(org_id, events, follow_up).await {
            Ok(out) => Ok((
                out.inserted as u64,
                out.duplicates as u64 + in_batch_dups,
                out.inserted_ids,
            )),
            Err(e) => {
                tracing::warn!(org = %org_id, source = source.as_str(), error = %e, "append failed");
                Err(match e {
                    crow_core::Error::Invalid { field, reason } => {
                        RequestError::new(RequestErrorKind::BadRequest, format!("invalid {field}: {reason}"))
                    }
                    crow_core::Error::TooLarge(m) => RequestError::new(RequestErrorKind::BodyTooLarge, m),
                    _ => RequestError::new(
                        RequestErrorKind::Unavailable,
                        "the event store is temporarily unavailable; retry later",
                    ),
                })
            }
        }
    }

    /// Bulk import (`crow ingest FILE.jsonl`): events as JSON values in Segment's or CROW's long
    /// layout, for the org of `target`, validated, scrubbed and stored like ingested events,
    /// with [`Source::Import`], in chunks of the configured batch size. Invalid events are
    /// returned in `rejected` (their `index` is the position in `events`), the others stored.
    ///
    /// Errors: `Unauthorized` for an unknown key; the store's errors as they are.
    pub async fn import<'a>(
        &self,
        target: impl Into<ImportTarget<'a>>,
        events: Vec<Value>,
        received_at: Millis,
    ) -> Result<ImportOutcome, crow_core::Error> {
        let owned;
        let grant = match target.into() {
            ImportTarget::Grant(g) => g,
            ImportTarget::Key(key) => {
                owned = self
                    .store
                    .authenticate(key)
                    .await?
                    .ok_or_else(|| crow_core::Error::Unauthorized("the key is not valid".into()))?;
                &owned
            }
        };
        let mut outcome = ImportOutcome::default();
        let chunk = self.limits.max_batch.max(1);
        let mut events = events.into_iter();
        let mut offset = 0usize;
        loop {
            let part: Vec<Value> = events.by_ref().take(chunk).collect();
            if part.is_empty() {
                break;
            }
            let len = part.len();
            let NormalizedBatch { events: good, rejected } = website::normalize_import_from(
                part,
                offset,
                &grant.org_id,
                &grant.pseudonym_key,
                &self.limits,
                received_at,
            );
            outcome.rejected.extend(rejected);
            if !good.is_empty() {
                let (inserted, duplicates, _) = self
                    .store_batch(&grant.org_id, good, received_at, Source::Import)
                    .await
                    .map_err(|e| crow_core::Error::Unavailable(e.detail))?;
                outcome.inserted += inserted;
                outcome.duplicates += duplicates;
            }
            offset += len;
        }
        Ok(outcome)
    }

    /// The `Access-Control-Allow-Origin` value for this request, if any.
    fn cors_origin(&self, req: &HttpRequest) -> Option<String> {
        let origin = req.header("origin").map(str::trim).filter(|o| !o.is_empty());
        match (&self.config.cors_allowed_origins, origin) {
            (None, Some(o)) => Some(o.to_owned()),
            (None, None) => Some("*".to_owned()),
            (Some(allowed), Some(o)) => allowed
                .iter()
                .any(|a| a == "*" || a.eq_ignore_ascii_case(o))
                .then(|| o.to_owned()),
            (Some(_), None) => None,
        }
    }

    fn preflight(&self, req: &HttpRequest, cors: Option<String>, methods: &str) -> HttpResponse {
        let resp = HttpResponse {
            status: 204,
            headers: Vec::new(),
            body: Vec::new(),
        };
        let Some(origin) = cors else {
            // Origin not allowed: no CORS headers, the browser blocks the request.
            return resp.with_header("vary", "Origin");
        };
        let headers = req
            .header("access-control-request-headers")
            .map(str::trim)
            .filter(|h| !h.is_empty() && h.len() <= 1024)
            .unwrap_or("content-type, content-encoding, authorization")
            .to_owned();
        with_cors(resp, Some(origin))
            .with_header("access-control-allow-methods", methods)
            .with_header("access-control-allow-headers", headers)
            .with_header("access-control-max-age", "86400")
    }
}

fn with_cors(resp: HttpResponse, origin: Option<String>) -> HttpResponse {
    match origin {
        None => resp,
        Some(o) if o == "*" => resp.with_header("access-control-allow-origin", o),
        // Echo the origin (with credentials allowed: sendBeacon always sends them) and vary on it.
        Some(o) => resp
            .with_header("access-control-allow-origin", o)
            .with_header("access-control-allow-credentials", "true")
            .with_header("vary", "Origin"),
    }
}

fn refuse(e: RequestError, events: u64) -> (HttpResponse, IngestReport) {
    let count = if e.kind == RequestErrorKind::NoValidEvents {
        e.rejected.len() as u64
    } else {
        events
    };
    tracing::debug!(code = e.kind.problem_type(), detail = %e.detail, "ingest request refused");
    (e.to_response(), IngestReport::refused(e.kind.reason(), count))
}

/// `b_` + 32 hex chars of SHA-256 over the org and the batch's event ids.
fn batch_id(org_id: &str, event_ids: &[String]) -> String {
    let mut h = Sha256::new();
    h.update(org_id.as_bytes());
    for id in event_ids {
        h.update([0u8]);
        h.update(id.as_bytes());
    }
    format!("b_{}", hex::encode(&h.finalize()[..16]))
}

fn short(s: &str) -> String {
    s.chars().take(100).collect()
}
