//! The REST API v1: `/api/v1/...`, one crate function from a plain request to a plain response,
//! so the native server and the Worker serve the same contract in a few lines each.
//!
//! - **Routes**: [`routes::ROUTES`] lists every one with the permission it needs and the audit
//!   action it records; the OpenAPI 3.1 document ([`openapi::document`], served at
//!   `/api/v1/openapi.json`) is generated from the handlers' annotations and the model types.
//! - **Authentication** ([`auth`]): `Authorization: Bearer <secret API key>` (a key carries a
//!   role) or `Bearer <JWT>` for a user session (HS256 or EdDSA; the user's role comes from the
//!   store, so a change takes effect at once). Public write keys only ingest: they get `401` here.
//! - **Authorization**: [`crow_core::access::Role::allows`] is the matrix; the router checks it
//!   before a handler runs, and answers `403` naming the permission.
//! - **Org isolation**: every store query takes the principal's org; another org's ids answer
//!   `404`, exactly like ids that do not exist.
//! - **Audit**: every successful mutation appends one row (who, which key or user, what, which
//!   id, from which address) in [`handle`], not in the handlers, so none can forget it.
//! - **Errors**: RFC 9457 `application/problem+json` with a `type`, `title`, `status` and a
//!   `detail` that says what to change.
//! - **Pages**: lists take `limit` (1..=1000, default 50) and `cursor`, and answer
//!   `{"data": [...], "next_cursor": string|null}`.
//!
//! Timestamps in answers are RFC 3339 strings; `since`/`until` take RFC 3339 or milliseconds
//! since the epoch.

use std::sync::Mutex;

use serde_json::{Value, json};

use crate::http::{HttpRequest, HttpResponse};
use crate::search::Indexes;
use crow_core::access::{NewAuditEntry, Principal};
use crow_core::model::{Insight, Millis};
use crow_core::ports::{
    AccountStore, BlobStore, CatalogStore, Embedder, EventStore, JobQueue, Notifier, SocialStore, TextAnalyzer,
    VideoStore,
};

mod accounts;
pub mod auth;
mod catalog;
mod events;
mod exports;
mod insights;
pub mod openapi;
mod persons;
pub mod problem;
pub mod routes;
mod text;
pub mod tools;

pub use auth::AuthConfig;
pub use problem::render;
pub use text::{ANALYZE_MAX_BODY, ANALYZE_MAX_TEXTS, AnalysisLine};

use problem::Problem;
use routes::{Access, Matched, Op};

/// Path prefix of the API.
pub const PREFIX: &str = "/api/v1/";

/// The other ways into the same operations (GraphQL, MCP, A2A JSON-RPC): rate-limited in the
/// API's class, by the caller's key, exactly like `/api/v1/...`.
pub const SURFACES: [&str; 3] = ["/graphql", "/mcp", "/a2a"];

/// The semantic search route.
pub const SEARCH_ROUTE: &str = "/api/v1/search";
/// The text-analysis route.
pub const ANALYZE_ROUTE: &str = "/api/v1/analyze";
/// The CCTV frame events route.
pub const CCTV_EVENTS_ROUTE: &str = "/api/v1/cctv/events";

/// Every store port the API reads and writes, as one object (the SQLite store, the Worker's
/// D1 store and the in-memory test store all implement them all).
pub trait ApiStore:
    EventStore
    + AccountStore
    + CatalogStore
    + SocialStore
    + VideoStore
    + JobQueue
    + crow_core::ports::ExportStore
    + crow_core::ports::PersonStore
    + crow_core::ports::TaskStore
{
}
impl<
    T: EventStore
        + AccountStore
        + CatalogStore
        + SocialStore
        + VideoStore
        + JobQueue
        + crow_core::ports::ExportStore
        + crow_core::ports::PersonStore
        + crow_core::ports::TaskStore
        + ?Sized,
> ApiStore for T
{
}

/// What the API runs on: the store, the object store, the vector indexes and the text models
/// (each optional where the API degrades to a clear `503` without it), and the auth settings.
#[derive(Clone, Copy)]
pub struct Api<'a> {
    /// The relational store.
    pub store: &'a dyn ApiStore,
    /// The object store (exports, raw batches).
    pub blobs: &'a dyn BlobStore,
    /// The vector indexes (semantic search, erasure).
    pub indexes: Option<&'a Indexes>,
    /// Text analysis (`POST /api/v1/analyze`).
    pub analyzer: Option<&'a dyn TextAnalyzer>,
    /// Sentence embeddings (search, `embed: true`).
    pub embedder: Option<&'a dyn Embedder>,
    /// The analyzer's tier name (`model` or `lexicon`).
    pub tier: &'a str,
    /// Token and link settings.
    pub auth: &'a AuthConfig,
    /// The server's clock.
    pub now: Millis,
    /// The platform's CSPRNG (new keys, user and export ids); crow-ingest draws no randomness itself.
    pub random: &'a (dyn Fn(&mut [u8]) + Send + Sync),
    /// Live notices (GraphQL subscriptions): told of every insight computed.
    pub notifier: Option<&'a dyn Notifier>,
}

impl Api<'_> {
    /// `N` random bytes from [`Api::random`].
    pub fn random_bytes<const N: usize>(&self) -> [u8; N] {
        let mut b = [0u8; N];
        (self.random)(&mut b);
        b
    }
}

impl std::fmt::Debug for Api<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api")
            .field("indexes", &self.indexes.is_some())
            .field("analyzer", &self.analyzer.is_some())
            .field("embedder", &self.embedder.is_some())
            .field("now", &self.now)
            .finish_non_exhaustive()
    }
}

/// One authorized call: the request, the caller, the path parameters, and what the audit row
/// of a mutation should say.
pub struct Call<'a> {
    /// The request.
    pub req: &'a HttpRequest,
    /// The caller (`None` only on public and signed-link routes).
    principal: Option<Principal>,
    params: Vec<(&'static str, String)>,
    note: Mutex<AuditNote>,
}

#[derive(Debug, Default)]
struct AuditNote {
    target: Option<String>,
    detail: Option<Value>,
}

impl std::fmt::Debug for Call<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Call")
            .field("method", &self.req.method)
            .field("path", &self.req.path)
            .field("principal", &self.principal)
            .finish_non_exhaustive()
    }
}

impl<'a> Call<'a> {
    /// A call as the router builds it (tests build their own).
    pub fn new(req: &'a HttpRequest, principal: Option<Principal>, params: Vec<(&'static str, String)>) -> Self {
        Call {
            req,
            principal,
            params,
            note: Mutex::new(AuditNote::default()),
        }
    }

    /// The caller. Panics on a public route, whose handlers must not ask.
    pub fn principal(&self) -> &Principal {
        self.principal.as_ref().expect("an authenticated route")
    }

    /// The caller's org: every store query of the call takes it.
    pub fn org(&self) -> &str {
        &self.principal().org_id
    }

    /// A path parameter (`{id}`), percent-decoded.
    pub fn param(&self, name: &str) -> &str {
        self.params
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    }

    /// A query parameter.
    pub fn query(&self, name: &str) -> Option<String> {
        self.req.query_param(name)
    }

    /// Names the id a mutation acted on, for its audit row (default: the `{id}` path parameter).
    pub fn audit_target(&self, target: impl Into<String>) {
        if let Ok(mut n) = self.note.lock() {
            n.target = Some(target.into());
        }
    }

    /// Adds action-specific details (counts, changed fields; never personal data) to the audit row.
    pub fn audit_detail(&self, detail: Value) {
        if let Ok(mut n) = self.note.lock() {
            n.detail = Some(detail);
        }
    }
}

/// The path to write in logs: for a REST route, its pattern (`/api/v1/persons/{id}`), so ids
/// (a person's, say) never reach a log line; other paths as they are.
pub fn log_path<'a>(method: &str, path: &'a str) -> std::borrow::Cow<'a, str> {
    match routes::find(method, path) {
        Matched::Route(route, params) if !params.is_empty() => std::borrow::Cow::Borrowed(route.path),
        _ => std::borrow::Cow::Borrowed(path),
    }
}

/// A handler's answer: the response, or a problem response.
pub type Answer = Result<HttpResponse, HttpResponse>;

/// Handles a REST request. Returns `None` when the path is not under `/api/v1/` (ingest
/// routes are the caller's: [`crate::ingest::IngestService::dispatch`] takes them first).
pub async fn handle(api: &Api<'_>, req: &HttpRequest) -> Option<HttpResponse> {
    if !req.path.starts_with(PREFIX) && req.path != "/api/v1" {
        return None;
    }
    let (route, params) = match routes::find(&req.method, &req.path) {
        Matched::Route(route, params) => (route, params),
        Matched::WrongMethod(allowed) => {
            return Some(
                Problem::new(
                    405,
                    "method_not_allowed",
                    "Method not allowed",
                    format!(
                        "{} is not allowed on {}; it answers {}",
                        req.method,
                        req.path,
                        allowed.join(", ")
                    ),
                )
                .response()
                .with_header("allow", allowed.join(", ")),
            );
        }
        Matched::NotFound => {
            return Some(
                Problem::new(
                    404,
                    "not_found",
                    "Not found",
                    format!(
                        "no route {} {}; the routes are listed at /api/v1/openapi.json",
                        req.method, req.path
                    ),
                )
                .response(),
            );
        }
    };
    let principal = match route.access {
        Access::Role(permission) => {
            let principal = match auth::authenticate(api, req).await {
                Ok(p) => p,
                Err(resp) => return Some(resp),
            };
            if !principal.allows(permission) {
                return Some(problem::forbidden(&principal, permission));
            }
            Some(principal)
        }
        Access::Public | Access::SignedLink => None,
    };
    Some(execute(api, req, route, params, principal).await)
}

/// Runs a matched, authorized route: the handler, then the audit row of a successful mutation
/// and the live notice of a computed insight. [`handle`] and [`tools::invoke`] both end here.
async fn execute(
    api: &Api<'_>,
    req: &HttpRequest,
    route: &routes::Route,
    params: Vec<(&'static str, String)>,
    principal: Option<Principal>,
) -> HttpResponse {
    let call = Call::new(req, principal, params);
    let mut resp = match dispatch(api, &call, route.op).await {
        Ok(r) | Err(r) => r,
    };
    if let (Some(action), true) = (route.audit, (200..300).contains(&resp.status)) {
        let note = call
            .note
            .lock()
            .map(|mut n| std::mem::take(&mut *n))
            .unwrap_or_default();
        let principal = call.principal();
        let mut detail = json!({"method": req.method, "route": route.path, "status": resp.status});
        if let (Some(Value::Object(extra)), Value::Object(d)) = (note.detail, &mut detail) {
            d.extend(extra);
        }
        let entry = NewAuditEntry {
            org_id: principal.org_id.clone(),
            at: api.now,
            actor: principal.actor.label(),
            action: action.to_owned(),
            target: note.target.or_else(|| {
                let id = call.param("id");
                (!id.is_empty()).then(|| id.to_owned())
            }),
            ip: auth::client_ip(req),
            detail,
        };
        if let Err(e) = api.store.append_audit(std::slice::from_ref(&entry)).await {
            // The mutation is done and cannot be taken back; say so loudly rather than lie
            // with a 5xx that invites a retry.
            tracing::error!(error = %e, action, "audit row not written");
            resp = resp.with_header("x-crow-audit", "failed");
        }
    }
    if let (Some(notifier), Some(principal), 200) = (api.notifier, call.principal.as_ref(), resp.status)
        && let Some(kind) = route.path.strip_prefix("/api/v1/insights/")
    {
        notifier.insight(&insight_of(api, &principal.org_id, kind, &resp.body));
    }
    if req.method.eq_ignore_ascii_case("HEAD") {
        resp.body.clear();
    }
    resp
}

/// The [`Insight`] an insights answer makes: its kind (`traffic`, `funnel`, ...), its window
/// and its data.
fn insight_of(api: &Api<'_>, org_id: &str, kind: &str, body: &[u8]) -> Insight {
    let data: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let time = |name: &str| {
        data.get(name)
            .and_then(Value::as_str)
            .and_then(crow_core::time::parse_timestamp)
    };
    let period_end = time("until").unwrap_or(api.now);
    Insight {
        id: format!("ins_{}", hex::encode(api.random_bytes::<8>())),
        org_id: org_id.to_owned(),
        kind: kind.to_owned(),
        period_start: time("since").unwrap_or(period_end),
        period_end,
        data,
        created_at: api.now,
    }
}

async fn dispatch(api: &Api<'_>, call: &Call<'_>, op: Op) -> Answer {
    match op {
        Op::OpenApi => Ok(openapi::serve()),
        Op::GetOrg => accounts::get_org(api, call).await,
        Op::UpdateOrg => accounts::update_org(api, call).await,
        Op::ListUsers => accounts::list_users(api, call).await,
        Op::CreateUser => accounts::create_user(api, call).await,
        Op::GetUser => accounts::get_user(api, call).await,
        Op::UpdateUser => accounts::update_user(api, call).await,
        Op::DeleteUser => accounts::delete_user(api, call).await,
        Op::ListApiKeys => accounts::list_api_keys(api, call).await,
        Op::CreateApiKey => accounts::create_api_key(api, call).await,
        Op::GetApiKey => accounts::get_api_key(api, call).await,
        Op::RevokeApiKey => accounts::revoke_api_key(api, call).await,
        Op::ListAudit => accounts::list_audit(api, call).await,
        Op::ListProducts => catalog::list_products(api, call).await,
        Op::CreateProduct => catalog::create_product(api, call).await,
        Op::ImportProducts => catalog::import_products(api, call).await,
        Op::GetProduct => catalog::get_product(api, call).await,
        Op::UpdateProduct => catalog::update_product(api, call).await,
        Op::DeleteProduct => catalog::delete_product(api, call).await,
        Op::ListCategories => catalog::list_categories(api, call).await,
        Op::CreateCategory => catalog::create_category(api, call).await,
        Op::GetCategory => catalog::get_category(api, call).await,
        Op::UpdateCategory => catalog::update_category(api, call).await,
        Op::DeleteCategory => catalog::delete_category(api, call).await,
        Op::ListInteractions => events::list_interactions(api, call).await,
        Op::GetInteraction => events::get_interaction(api, call).await,
        Op::ListSessions => events::list_sessions(api, call).await,
        Op::GetSession => events::get_session(api, call).await,
        Op::ListMentions => events::list_mentions(api, call).await,
        Op::GetMention => events::get_mention(api, call).await,
        Op::ListFrameEvents => events::list_frame_events(api, call).await,
        Op::TrafficInsights => insights::traffic(api, call).await,
        Op::FunnelInsights => insights::funnel(api, call).await,
        Op::SentimentInsights => insights::sentiment(api, call).await,
        Op::EntityInsights => insights::entities(api, call).await,
        Op::Search => text::search(api, call).await,
        Op::Analyze => text::analyze(api, call).await,
        Op::ListExports => exports::list_exports(api, call).await,
        Op::CreateExport => exports::create_export(api, call).await,
        Op::GetExport => exports::get_export(api, call).await,
        Op::DownloadExport => exports::download_export(api, call).await,
        Op::ExportPerson => persons::export_person(api, call).await,
        Op::ErasePerson => persons::erase_person(api, call).await,
    }
}
