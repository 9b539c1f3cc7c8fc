//! GraphQL at `/graphql` (feature `graphql`, on by default): queries and mutations over
//! `POST /graphql` (JSON), subscriptions over a WebSocket (`GET /graphql`, subprotocol
//! `graphql-transport-ws`, or the legacy `graphql-ws`).
//!
//! A thin surface over the REST API: every query and mutation runs one REST operation
//! in-process through [`crow_ingest::api::tools::invoke`], so it gets the same permission check,
//! the same validation, the same audit row for a mutation and the same live notice for an
//! insight as `/api/v1`; no resolver reads the store. Errors carry
//! `extensions { code, status }` (`FORBIDDEN`, `BAD_USER_INPUT`, `NOT_FOUND`, ...), with the REST
//! problem's detail as the message.
//!
//! - **Authentication**: `Authorization: Bearer <secret API key or session token>`, as REST; a
//!   request without a valid one answers `401` with a JSON error body. Over a WebSocket the key
//!   goes in the `connection_init` payload (`{"authorization": "Bearer ..."}`) or in the upgrade
//!   request's `Authorization` header.
//! - **Rate limits**: each `POST` (and each WebSocket upgrade) counts against the caller's `api`
//!   limit, the same bucket as their REST calls.
//! - **Limits**: a query nested deeper than [`MAX_DEPTH`] or costing more than
//!   [`MAX_COMPLEXITY`] is refused before anything runs, with an error naming the limit
//!   (`QUERY_TOO_DEEP`, `QUERY_TOO_COMPLEX`). Each field costs 1; a list of interactions costs
//!   [`LIST_COST`] more and each insight [`INSIGHT_COST`] more. Introspection stays on; its
//!   `ofType` chains do not count towards the depth, so the standard introspection query fits.
//! - **Subscriptions**: `interactionCreated(orgId)` and `insightGenerated(orgId)` need the
//!   `read_data` permission and the caller's own org id (another org's id is a `FORBIDDEN`
//!   error, not silence). A subscriber that falls more than
//!   [`live::CAPACITY`](crate::live::CAPACITY) notices behind gets one error saying how many it
//!   missed, and goes on.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextValidation};
use async_graphql::futures_util::{Stream, stream};
use async_graphql::http::ALL_WEBSOCKET_PROTOCOLS;
use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{
    BatchRequest, Context, Data, Enum, ErrorExtensions, ID, InputObject, Json, Object, Schema, ServerError,
    SimpleObject, Subscription as SubscriptionMacro, ValidationResult, Variables,
};
use async_graphql_axum::{GraphQLProtocol, GraphQLWebSocket};
use axum::body::Body;
use axum::extract::{ConnectInfo, FromRequestParts, State, WebSocketUpgrade};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Request, Response, StatusCode, header};
use axum::response::IntoResponse;
use crow_core::access::{Permission, Principal};
use crow_core::export::{ExportFormat, ExportResource, ExportStatus};
use crow_core::model::{DeviceClass, EventType, FrameEventKind, ReferrerClass, Source};
use crow_core::ports::{Interval, SentimentSource};
use crow_ingest::api::tools::{self, Failure, Invocation};
use crow_ingest::http::HttpResponse;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::broadcast;

use crate::Backends;
use crate::live::Live;

/// The path GraphQL is served at.
pub const PATH: &str = "/graphql";
/// The deepest a query may nest its selections.
pub const MAX_DEPTH: usize = 10;
/// The most a query may cost: 1 per field, plus [`LIST_COST`] per list of interactions and
/// [`INSIGHT_COST`] per insight computed.
pub const MAX_COMPLEXITY: usize = 500;
/// What a list of interactions costs on top of its fields (it reads up to `limit` rows).
pub const LIST_COST: usize = 10;
/// What an insight costs on top of its fields (it aggregates over a window).
pub const INSIGHT_COST: usize = 20;
/// The largest request body read, in bytes.
pub const MAX_BODY: usize = 1024 * 1024;

/// The schema: [`Query`], [`Mutation`], [`Subscription`].
pub type CrowSchema = Schema<Query, Mutation, Subscription>;

/// The schema, with the depth and complexity limits; resolvers run on `backends`.
pub fn schema(backends: Arc<Backends>) -> CrowSchema {
    builder().data(backends).finish()
}

/// The schema in GraphQL SDL (what introspection describes).
pub fn sdl() -> String {
    builder().finish().sdl()
}

fn builder() -> async_graphql::SchemaBuilder<Query, Mutation, Subscription> {
    Schema::build(Query, Mutation, Subscription).extension(Limits)
}

/// `POST /graphql` (queries and mutations, JSON, also batched) and `GET /graphql` (the
/// WebSocket for subscriptions; a plain `GET` answers a short text).
pub fn router<S: Clone + Send + Sync + 'static>(backends: Arc<Backends>) -> axum::Router<S> {
    let state = Gql {
        schema: schema(backends.clone()),
        backends,
    };
    axum::Router::new()
        .route(PATH, axum::routing::post(post).get(get))
        .with_state(state)
}

#[derive(Clone)]
struct Gql {
    schema: CrowSchema,
    backends: Arc<Backends>,
}

/// The caller's address (for the audit rows of mutations), in the request data.
#[derive(Debug, Clone, Copy)]
struct ClientIp(Option<IpAddr>);

// ---------------------------------------------------------------------------------------------
// Transport

async fn post(State(gql): State<Gql>, req: Request<Body>) -> Response<Body> {
    let started = Instant::now();
    let (parts, body) = req.into_parts();
    let peer = peer_ip(&parts.extensions);
    let authorization = authorization(&parts.headers);
    let span = tracing::info_span!("request", method = "POST", path = PATH);
    let resp = tracing::Instrument::instrument(answer(&gql, peer, authorization, body), span).await;
    gql.backends
        .metrics
        .record_request("graphql", resp.status().as_u16(), started.elapsed().as_secs_f64());
    resp
}

async fn answer(gql: &Gql, peer: Option<IpAddr>, authorization: Option<&str>, body: Body) -> Response<Body> {
    if let Err(resp) = gql.backends.rate_limit(PATH, authorization, peer) {
        return reject(resp);
    }
    let principal = match gql.backends.authenticate(authorization, peer).await {
        Ok(p) => p,
        Err(resp) => return reject(resp),
    };
    let bytes = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(_) => {
            return error_response(
                413,
                "PAYLOAD_TOO_LARGE",
                format!("the request body exceeds {MAX_BODY} bytes"),
                &[],
            );
        }
    };
    let batch: BatchRequest = match serde_json::from_slice(&bytes) {
        Ok(b) => b,
        Err(e) => {
            return error_response(
                400,
                "BAD_REQUEST",
                format!(
                    r#"the body is not a GraphQL request such as {{"query": "{{ organization(id: \"...\") {{ name }} }}"}}: {e}"#
                ),
                &[],
            );
        }
    };
    let batch = batch.data(Arc::new(principal)).data(ClientIp(peer));
    let out = gql.schema.execute_batch(batch).await;
    json_response(200, &out, &[])
}

async fn get(State(gql): State<Gql>, req: Request<Body>) -> Response<Body> {
    let (mut parts, _) = req.into_parts();
    let websocket = parts
        .headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    if !websocket {
        let mut resp = Response::new(Body::from(
            "CROW GraphQL: POST queries and mutations here as JSON ({\"query\": \"...\", \"variables\": {...}}) \
             with Authorization: Bearer <key>; open a WebSocket here (subprotocol graphql-transport-ws) for \
             subscriptions.\n",
        ));
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        return resp;
    }
    let peer = peer_ip(&parts.extensions);
    let header_auth = authorization(&parts.headers).map(str::to_owned);
    if let Err(resp) = gql.backends.rate_limit(PATH, header_auth.as_deref(), peer) {
        return reject(resp);
    }
    let Ok(protocol) = GraphQLProtocol::from_request_parts(&mut parts, &()).await else {
        return error_response(
            400,
            "BAD_REQUEST",
            "ask for the graphql-transport-ws subprotocol (Sec-WebSocket-Protocol: graphql-transport-ws)".into(),
            &[],
        );
    };
    let upgrade = match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
        Ok(u) => u,
        Err(rejection) => return rejection.into_response(),
    };
    gql.backends.metrics.record_request("graphql", 101, 0.0);
    let Gql { schema, backends } = gql;
    upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        .on_upgrade(move |socket| async move {
            GraphQLWebSocket::new(socket, schema, protocol)
                .on_connection_init(move |payload| connection_init(backends, payload, header_auth, peer))
                .serve()
                .await
        })
}

/// Authenticates a WebSocket from its `connection_init` payload (`authorization` or
/// `Authorization`, also under `headers`), else from the upgrade request's header. A refusal
/// closes the socket with code 1002 and a short reason.
async fn connection_init(
    backends: Arc<Backends>,
    payload: Value,
    header_auth: Option<String>,
    peer: Option<IpAddr>,
) -> async_graphql::Result<Data> {
    let find = |v: &Value| {
        ["authorization", "Authorization"]
            .iter()
            .find_map(|k| v.get(k).and_then(Value::as_str).map(str::to_owned))
    };
    let auth = find(&payload)
        .or_else(|| payload.get("headers").and_then(find))
        // A bare key is taken as a bearer credential.
        .map(|a| if a.contains(' ') { a } else { format!("Bearer {a}") })
        .or(header_auth);
    match backends.authenticate(auth.as_deref(), peer).await {
        Ok(principal) => {
            let mut data = Data::default();
            data.insert(Arc::new(principal));
            data.insert(ClientIp(peer));
            data.insert(Credential(auth));
            Ok(data)
        }
        // A close frame's reason holds at most 123 bytes: keep it short.
        Err(_) => Err(async_graphql::Error::new(
            "Unauthorized: send {\"authorization\": \"Bearer <secret key>\"} in connection_init",
        )),
    }
}

fn peer_ip(extensions: &axum::http::Extensions) -> Option<IpAddr> {
    extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip())
}

fn authorization(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok())
}

/// A REST refusal (`401`, `429`) as a GraphQL error body, keeping its status and its headers
/// (`Retry-After`, `WWW-Authenticate`).
fn reject(resp: HttpResponse) -> Response<Body> {
    let detail = serde_json::from_slice::<Value>(&resp.body)
        .ok()
        .and_then(|b| b.get("detail").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_else(|| "request refused".into());
    let headers: Vec<(String, String)> = resp
        .headers
        .into_iter()
        .filter(|(k, _)| !k.eq_ignore_ascii_case("content-type") && !k.eq_ignore_ascii_case("content-length"))
        .collect();
    error_response(resp.status, code_of(resp.status), detail, &headers)
}

fn error_response(status: u16, code: &str, message: String, headers: &[(String, String)]) -> Response<Body> {
    let body = serde_json::json!({
        "errors": [{"message": message, "extensions": {"code": code, "status": status}}]
    });
    json_response(status, &body, headers)
}

fn json_response<T: Serialize>(status: u16, body: &T, headers: &[(String, String)]) -> Response<Body> {
    let mut out = Response::new(Body::from(serde_json::to_vec(body).unwrap_or_default()));
    *out.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = out.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    for (k, v) in headers {
        if let (Ok(k), Ok(v)) = (HeaderName::try_from(k.as_str()), HeaderValue::try_from(v.as_str())) {
            h.append(k, v);
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Errors and limits

/// The GraphQL error code for an HTTP status.
fn code_of(status: u16) -> &'static str {
    match status {
        400 | 413 | 415 | 422 => "BAD_USER_INPUT",
        401 => "UNAUTHENTICATED",
        403 => "FORBIDDEN",
        404 => "NOT_FOUND",
        409 => "CONFLICT",
        429 => "RATE_LIMITED",
        503 => "SERVICE_UNAVAILABLE",
        _ => "INTERNAL_SERVER_ERROR",
    }
}

fn error(status: u16, message: impl Into<String>) -> async_graphql::Error {
    async_graphql::Error::new(message).extend_with(|_, e| {
        e.set("code", code_of(status));
        e.set("status", i32::from(status));
    })
}

/// A REST refusal as a GraphQL error: the problem's detail, its code and status, and the fields
/// at fault where the problem lists them.
fn failure(f: Failure) -> async_graphql::Error {
    let errors = f
        .body
        .get("errors")
        .cloned()
        .and_then(|e| async_graphql::Value::from_json(e).ok());
    let message = if f.detail.is_empty() {
        f.title.clone()
    } else {
        f.detail.clone()
    };
    async_graphql::Error::new(message).extend_with(move |_, e| {
        e.set("code", code_of(f.status));
        e.set("status", i32::from(f.status));
        e.set("problem", f.code.clone());
        if let Some(errors) = errors.clone() {
            e.set("errors", errors);
        }
    })
}

/// Refuses queries deeper than [`MAX_DEPTH`] or costlier than [`MAX_COMPLEXITY`] with an error
/// that names the limit and the query's figure (the schema's own limits say neither).
struct Limits;

impl ExtensionFactory for Limits {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(Limits)
    }
}

fn refused(code: &str, message: String, limit: usize, actual: usize) -> ServerError {
    let mut e = ServerError::new(message, None);
    let mut ext = async_graphql::ErrorExtensionValues::default();
    ext.set("code", code);
    ext.set("limit", limit as u64);
    ext.set("actual", actual as u64);
    e.extensions = Some(ext);
    e
}

#[async_trait::async_trait]
impl Extension for Limits {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> async_graphql::ServerResult<ExecutableDocument> {
        let doc = next.run(ctx, query, variables).await?;
        let depth = depth(&doc);
        if depth > MAX_DEPTH {
            return Err(refused(
                "QUERY_TOO_DEEP",
                format!(
                    "the query nests {depth} levels deep; the depth limit is {MAX_DEPTH}: ask for fewer nested fields"
                ),
                MAX_DEPTH,
                depth,
            ));
        }
        Ok(doc)
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        // Each operation sent over an open WebSocket counts against the key's API rate limit, as
        // each `POST` does (the POST itself was counted before it got here).
        if let (Some(Credential(credential)), Some(backends)) =
            (ctx.data_opt::<Credential>(), ctx.data_opt::<Arc<Backends>>())
            && let Err(resp) = backends.rate_limit(
                PATH,
                credential.as_deref(),
                ctx.data_opt::<ClientIp>().and_then(|c| c.0),
            )
        {
            let detail = resp
                .json_body()
                .and_then(|b| b["detail"].as_str().map(str::to_owned))
                .unwrap_or_else(|| "too many requests".into());
            let mut e = ServerError::new(detail, None);
            let mut ext = async_graphql::ErrorExtensionValues::default();
            ext.set("code", "RATE_LIMITED");
            ext.set("status", 429);
            e.extensions = Some(ext);
            return Err(vec![e]);
        }
        let result = next.run(ctx).await?;
        if result.complexity > MAX_COMPLEXITY {
            return Err(vec![refused(
                "QUERY_TOO_COMPLEX",
                format!(
                    "the query's complexity is {}; the complexity limit is {MAX_COMPLEXITY} (1 per field, \
                     {LIST_COST} more per interactions list, {INSIGHT_COST} more per insight): split it into \
                     smaller queries",
                    result.complexity
                ),
                MAX_COMPLEXITY,
                result.complexity,
            )]);
        }
        Ok(result)
    }
}

/// How deep a document's deepest operation nests its fields, through fragments. Introspection's
/// `ofType` does not count: it unwraps one `LIST` or `NON_NULL` wrapper, a chain that fans out to
/// nothing, and the standard introspection query nests it seven deep.
fn depth(doc: &ExecutableDocument) -> usize {
    let mut known = std::collections::HashMap::new();
    doc.operations
        .iter()
        .map(|(_, op)| set_depth(doc, &op.node.selection_set.node, &mut known, &mut Vec::new()))
        .max()
        .unwrap_or(0)
}

fn set_depth<'d>(
    doc: &'d ExecutableDocument,
    set: &'d SelectionSet,
    known: &mut std::collections::HashMap<&'d str, usize>,
    visiting: &mut Vec<&'d str>,
) -> usize {
    let mut deepest = 0;
    for item in &set.items {
        let d = match &item.node {
            Selection::Field(f) => {
                let inner = set_depth(doc, &f.node.selection_set.node, known, visiting);
                if f.node.name.node == "ofType" { inner } else { inner + 1 }
            }
            Selection::InlineFragment(i) => set_depth(doc, &i.node.selection_set.node, known, visiting),
            Selection::FragmentSpread(s) => {
                let name = s.node.fragment_name.node.as_str();
                match (known.get(name), doc.fragments.get(&s.node.fragment_name.node)) {
                    (Some(d), _) => *d,
                    // A cycle, or an unknown fragment: validation reports both.
                    (None, None) => 0,
                    (None, Some(_)) if visiting.contains(&name) => 0,
                    (None, Some(frag)) => {
                        visiting.push(name);
                        let d = set_depth(doc, &frag.node.selection_set.node, known, visiting);
                        visiting.pop();
                        known.insert(name, d);
                        d
                    }
                }
            }
        };
        deepest = deepest.max(d);
    }
    deepest
}

// ---------------------------------------------------------------------------------------------
// Resolver plumbing

fn principal<'c>(ctx: &Context<'c>) -> async_graphql::Result<&'c Arc<Principal>> {
    ctx.data::<Arc<Principal>>()
        .map_err(|_| error(401, "no credential: send Authorization: Bearer <secret key>"))
}

fn backends<'c>(ctx: &Context<'c>) -> async_graphql::Result<&'c Arc<Backends>> {
    ctx.data::<Arc<Backends>>()
        .map_err(|_| error(503, "the schema runs without backends"))
}

/// Runs one REST operation as the caller.
async fn run(ctx: &Context<'_>, mut inv: Invocation) -> async_graphql::Result<Value> {
    let principal = principal(ctx)?;
    let backends = backends(ctx)?;
    inv.client_ip = ctx.data_opt::<ClientIp>().and_then(|c| c.0);
    let text = backends.text();
    let api = backends.api(&text);
    let out = tools::invoke(&api, principal, &inv).await.map_err(failure)?;
    if inv.method != "GET" {
        // A mutation may have queued work (an export).
        backends.wake.notify_one();
    }
    Ok(out)
}

/// A REST answer as a GraphQL object.
fn decode<T: DeserializeOwned>(v: Value) -> async_graphql::Result<T> {
    serde_json::from_value(v).map_err(|e| error(500, format!("an answer did not have the expected shape: {e}")))
}

async fn fetch<T: DeserializeOwned>(ctx: &Context<'_>, inv: Invocation) -> async_graphql::Result<T> {
    decode(run(ctx, inv).await?)
}

/// The credential a WebSocket was opened with: subscriptions check it again as they deliver,
/// so a revoked key or a demoted user stops receiving.
struct Credential(Option<String>);

/// How often, at most, a subscription checks its credential again (before delivering a notice).
pub const RECHECK: std::time::Duration = std::time::Duration::from_secs(1);

/// What a subscription needs to check its credential again.
struct Watch {
    backends: Arc<Backends>,
    credential: Option<String>,
    peer: Option<IpAddr>,
    org_id: String,
    checked: Instant,
}

impl Watch {
    fn of(ctx: &Context<'_>, principal: &Principal) -> async_graphql::Result<Watch> {
        Ok(Watch {
            backends: backends(ctx)?.clone(),
            credential: ctx.data_opt::<Credential>().and_then(|c| c.0.clone()),
            peer: ctx.data_opt::<ClientIp>().and_then(|c| c.0),
            org_id: principal.org_id.clone(),
            checked: Instant::now(),
        })
    }

    /// `Err` once the credential no longer authenticates, or no longer may watch the org.
    async fn still_allowed(&mut self) -> async_graphql::Result<()> {
        if self.checked.elapsed() < RECHECK {
            return Ok(());
        }
        let now = self.backends.authenticate(self.credential.as_deref(), self.peer).await;
        match now {
            Ok(p) if p.org_id == self.org_id && p.allows(Permission::ReadData) => {
                self.checked = Instant::now();
                Ok(())
            }
            Ok(p) => Err(error(
                403,
                format!(
                    "the {} role no longer has the read_data permission; the subscription ends",
                    p.role.as_str()
                ),
            )),
            Err(_) => Err(error(
                401,
                "the credential was revoked or expired; the subscription ends",
            )),
        }
    }
}

/// The caller, when they may watch `org_id`'s live notices.
fn subscriber(ctx: &Context<'_>, org_id: &ID) -> async_graphql::Result<Arc<Principal>> {
    let principal = principal(ctx)?;
    if !principal.allows(Permission::ReadData) {
        return Err(error(
            403,
            format!(
                "the {} role lacks the read_data permission that subscriptions need",
                principal.role.as_str()
            ),
        ));
    }
    if org_id.as_str() != principal.org_id {
        return Err(error(
            403,
            format!(
                "this credential belongs to organization {}; it cannot subscribe to {}",
                principal.org_id,
                org_id.as_str()
            ),
        ));
    }
    Ok(principal.clone())
}

/// The org's notices that `pick` keeps, from now on. A subscriber that fell behind gets one
/// error saying how many notices it missed, then the stream goes on. Before each notice the
/// credential is checked again (at most every [`RECHECK`]): once it is revoked or demoted, one
/// error says so and the stream ends.
fn live_stream<T: Send + 'static>(
    rx: broadcast::Receiver<Arc<Live>>,
    watch: Watch,
    pick: fn(&Live) -> Option<async_graphql::Result<T>>,
) -> impl Stream<Item = async_graphql::Result<T>> + Send + 'static {
    stream::unfold(Some((rx, watch)), move |state| async move {
        let (mut rx, mut watch) = state?;
        loop {
            match rx.recv().await {
                Ok(live) if live.org_id() == watch.org_id => {
                    if let Some(item) = pick(&live) {
                        return match watch.still_allowed().await {
                            Ok(()) => Some((item, Some((rx, watch)))),
                            Err(e) => Some((Err(e), None)),
                        };
                    }
                }
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "a GraphQL subscriber fell behind");
                    let e = error(
                        503,
                        format!("this subscriber fell behind and missed {n} notices; the stream goes on"),
                    );
                    return Some((Err(e), Some((rx, watch))));
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    })
}

// ---------------------------------------------------------------------------------------------
// Root types

/// Reads.
#[derive(Debug, Default, Clone, Copy)]
pub struct Query;

#[Object]
impl Query {
    /// The caller's organization. Any other id is `null` with a `NOT_FOUND` error, exactly like
    /// an id that does not exist.
    async fn organization(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<Organization>> {
        if id.as_str() != principal(ctx)?.org_id {
            return Err(error(404, format!("no organization {:?}", id.as_str())));
        }
        fetch(ctx, Invocation::get("/api/v1/organization")).await.map(Some)
    }

    /// Website and app interactions, newest first (`GET /api/v1/interactions`).
    #[graphql(complexity = "LIST_COST + child_complexity")]
    async fn interactions(
        &self,
        ctx: &Context<'_>,
        filter: Option<InteractionFilter>,
        #[graphql(desc = "Rows per page, 1 to 1000 (default 50).")] limit: Option<i32>,
        #[graphql(desc = "The `nextCursor` of the previous page.")] cursor: Option<String>,
    ) -> async_graphql::Result<InteractionConnection> {
        let f = filter.unwrap_or_default();
        let inv = Invocation::get("/api/v1/interactions")
            .param("type", f.event_type.map(EventType::as_str))
            .param("name", f.name)
            .param("session_id", f.session_id)
            .param("person_id", f.person_id)
            .param("since", f.since)
            .param("until", f.until)
            .param("limit", limit)
            .param("cursor", cursor);
        fetch(ctx, inv).await
    }

    /// Aggregates over a window (default: the last 30 days): pick the insights to compute.
    /// Each one computed is also published to `insightGenerated`.
    async fn insights(&self, date_range: Option<DateRange>) -> Insights {
        Insights {
            range: date_range.unwrap_or_default(),
        }
    }
}

/// Changes. Each runs the REST operation and records its audit row.
#[derive(Debug, Default, Clone, Copy)]
pub struct Mutation;

#[Object]
impl Mutation {
    /// Adds a product to the catalog (`POST /api/v1/products`; needs `write_catalog`).
    async fn create_product(&self, ctx: &Context<'_>, input: ProductInput) -> async_graphql::Result<Product> {
        fetch(ctx, Invocation::post("/api/v1/products", decode_input(&input)?)).await
    }

    /// Asks for an export file (`POST /api/v1/exports`; needs `export`): answers at once with
    /// the queued export; poll it over REST until it `succeeded`.
    async fn trigger_export(&self, ctx: &Context<'_>, config: ExportConfig) -> async_graphql::Result<Export> {
        fetch(ctx, Invocation::post("/api/v1/exports", decode_input(&config)?)).await
    }
}

fn decode_input<T: Serialize>(input: &T) -> async_graphql::Result<Value> {
    serde_json::to_value(input).map_err(|e| error(400, e.to_string()))
}

/// Live notices, over the WebSocket.
#[derive(Debug, Default, Clone, Copy)]
pub struct Subscription;

#[SubscriptionMacro]
impl Subscription {
    /// Each interaction the org's ingest endpoints store from now on, as stored (scrubbed; before
    /// sessionization and text analysis, which run later).
    async fn interaction_created(
        &self,
        ctx: &Context<'_>,
        org_id: ID,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<Interaction>> + use<>> {
        let principal = subscriber(ctx, &org_id)?;
        let rx = backends(ctx)?.live.subscribe();
        Ok(live_stream(rx, Watch::of(ctx, &principal)?, |live| match live {
            Live::InteractionCreated { interaction, .. } => Some(decode(crow_ingest::api::render(interaction))),
            _ => None,
        }))
    }

    /// Each insight computed for the org from now on (a REST, GraphQL or tool call of traffic,
    /// funnel, sentiment or entities).
    async fn insight_generated(
        &self,
        ctx: &Context<'_>,
        org_id: ID,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<Insight>> + use<>> {
        let principal = subscriber(ctx, &org_id)?;
        let rx = backends(ctx)?.live.subscribe();
        Ok(live_stream(rx, Watch::of(ctx, &principal)?, |live| match live {
            Live::InsightGenerated(insight) => Some(Ok(Insight::from_model(insight))),
            _ => None,
        }))
    }
}

// ---------------------------------------------------------------------------------------------
// Inputs

/// Which interactions.
#[derive(Debug, Default, InputObject)]
pub struct InteractionFilter {
    /// Only this type.
    #[graphql(name = "type")]
    pub event_type: Option<EventType>,
    /// Only this event name (track) or page name.
    pub name: Option<String>,
    /// Only this session.
    pub session_id: Option<String>,
    /// Only this person (after identity stitching).
    pub person_id: Option<String>,
    /// From this time (RFC 3339 or epoch milliseconds).
    pub since: Option<String>,
    /// Before this time (RFC 3339 or epoch milliseconds).
    pub until: Option<String>,
}

/// A time window: `since` (inclusive) to `until` (exclusive), RFC 3339 or epoch milliseconds.
/// Defaults: `until` now, `since` 30 days before `until`; at most 1100 days.
#[derive(Debug, Default, Clone, InputObject)]
pub struct DateRange {
    /// Window start.
    pub since: Option<String>,
    /// Window end.
    pub until: Option<String>,
}

/// A new product.
#[derive(Debug, InputObject, Serialize)]
pub struct ProductInput {
    /// Stock keeping unit, unique in the org (1 to 200 characters).
    pub sku: String,
    /// Display name (1 to 500 characters).
    pub name: String,
    /// Brand.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub brand: Option<String>,
    /// Category name; created when it does not exist.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// Price in minor units (cents), 0 or more.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub price_cents: Option<i64>,
    /// ISO 4217 currency code (three uppercase letters).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    /// Product page: an http or https URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Description (at most 10 000 characters).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// What to export. The filters besides `since`/`until` apply to the resources that have the
/// field (`eventType`, `name`, `sessionId`, `personId`: interactions; `personId`: sessions;
/// `platform`, `source`: mentions; `category`, `brand`: products; `cameraId`, `kind`, `zone`:
/// frame events); another resource refuses them.
#[derive(Debug, InputObject, Serialize)]
pub struct ExportConfig {
    /// What to export.
    pub resource: ExportResource,
    /// The file format.
    #[graphql(default_with = "ExportFormat::Csv")]
    pub format: ExportFormat,
    /// Rows at or after this time (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// Rows before this time (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    /// Interactions of this type.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_type: Option<EventType>,
    /// Interactions with this event name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Interactions of this session.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// Interactions or sessions of this person.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub person_id: Option<String>,
    /// Mentions from this platform.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    /// Mentions from this configured source.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Frame events of this camera.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub camera_id: Option<String>,
    /// Frame events of this kind.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<FrameEventKind>,
    /// Frame events of this zone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    /// Products of this category.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// Products of this brand.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub brand: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Enums

/// What an insight is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InsightKind {
    /// Traffic: visitors, sessions, page views, top pages and referrers.
    Traffic,
    /// A conversion funnel.
    Funnel,
    /// Sentiment over time.
    Sentiment,
    /// The entities mentioned most.
    Entities,
    /// A kind this schema does not describe yet (see `data`).
    #[serde(other)]
    Other,
}

// ---------------------------------------------------------------------------------------------
// Objects (deserialized from the REST answers, whose field names they share in camelCase)

/// A customer of CROW.
#[derive(Debug, SimpleObject, Deserialize)]
pub struct Organization {
    /// Org id (`org_...`).
    pub id: ID,
    /// Display name.
    pub name: String,
    /// Creation time (RFC 3339).
    pub created_at: String,
}

/// A page of interactions.
#[derive(Debug, SimpleObject, Deserialize)]
pub struct InteractionConnection {
    /// The interactions, newest first.
    #[serde(rename = "data")]
    pub nodes: Vec<Interaction>,
    /// Pass as `cursor` for the next page; `null` on the last.
    pub next_cursor: Option<String>,
}

/// One website or app interaction, after validation and scrubbing.
#[derive(Debug, SimpleObject, Deserialize)]
pub struct Interaction {
    /// The client-supplied event id, unique within the org.
    pub id: ID,
    /// Kind of interaction.
    #[serde(rename = "type")]
    #[graphql(name = "type")]
    pub event_type: EventType,
    /// Event name (track) or page/screen name.
    #[serde(default)]
    pub name: Option<String>,
    /// Anonymous device/browser id (pseudonymized when it contained PII).
    #[serde(default)]
    pub anonymous_id: Option<String>,
    /// Known user id (pseudonymized when it contained PII).
    #[serde(default)]
    pub user_id: Option<String>,
    /// Session id.
    #[serde(default)]
    pub session_id: Option<String>,
    /// Group id (group events).
    #[serde(default)]
    pub group_id: Option<String>,
    /// Previous id (alias events).
    #[serde(default)]
    pub previous_id: Option<String>,
    /// Free-form properties (scrubbed).
    #[serde(default)]
    pub properties: Json<serde_json::Map<String, Value>>,
    /// User or group traits (scrubbed).
    #[serde(default)]
    pub traits: Json<serde_json::Map<String, Value>>,
    /// Context: page, device, campaign.
    #[serde(default)]
    pub context: InteractionContext,
    /// When the event happened (RFC 3339), corrected for client clock skew.
    pub timestamp: String,
    /// The client's own timestamp, uncorrected.
    #[serde(default)]
    pub original_timestamp: Option<String>,
    /// When the client sent the batch, by the client's clock.
    #[serde(default)]
    pub sent_at: Option<String>,
    /// When CROW received it.
    pub received_at: String,
    /// Wire protocol.
    pub source: Source,
    /// True when the user agent is a known crawler.
    #[serde(default)]
    pub is_bot: bool,
    /// How many PII values were scrubbed out of this event at ingest.
    #[serde(default)]
    pub pii_scrubbed: u32,
    /// The person after identity stitching.
    #[serde(default)]
    pub person_id: Option<String>,
    /// Referrer class.
    #[serde(default)]
    pub referrer_class: Option<ReferrerClass>,
    /// Sentiment, entities and language of the event's text.
    #[serde(default)]
    pub analysis: Option<TextAnalysis>,
}

/// Where and on what an interaction happened.
#[derive(Debug, Default, SimpleObject, Deserialize)]
pub struct InteractionContext {
    /// The page.
    #[serde(default)]
    pub page: Option<PageContext>,
    /// The reduced user agent.
    #[serde(default)]
    pub user_agent: Option<UserAgent>,
    /// e.g. `en-US`.
    #[serde(default)]
    pub locale: Option<String>,
    /// IANA time zone.
    #[serde(default)]
    pub timezone: Option<String>,
    /// Screen size.
    #[serde(default)]
    pub screen: Option<Screen>,
    /// UTM campaign.
    #[serde(default)]
    pub campaign: Option<Campaign>,
    /// Client IP, truncated (IPv4 /24, IPv6 /48).
    #[serde(default)]
    pub ip: Option<String>,
    /// Sending library.
    #[serde(default)]
    pub library: Option<Library>,
    /// Any other context keys the client sent, scrubbed.
    #[serde(default)]
    pub extra: Json<serde_json::Map<String, Value>>,
}

/// The page an event happened on.
#[derive(Debug, SimpleObject, Deserialize)]
pub struct PageContext {
    /// Full URL (scrubbed).
    #[serde(default)]
    pub url: Option<String>,
    /// URL path.
    #[serde(default)]
    pub path: Option<String>,
    /// The referring URL.
    #[serde(default)]
    pub referrer: Option<String>,
    /// Document title.
    #[serde(default)]
    pub title: Option<String>,
    /// The query string, scrubbed.
    #[serde(default)]
    pub search: Option<String>,
}

/// What CROW keeps of a user agent.
#[derive(Debug, SimpleObject, Deserialize)]
pub struct UserAgent {
    /// Browser family.
    #[serde(default)]
    pub browser: Option<String>,
    /// Major browser version.
    #[serde(default)]
    pub browser_version: Option<String>,
    /// Operating system family.
    #[serde(default)]
    pub os: Option<String>,
    /// Device class.
    pub device: DeviceClass,
}

/// Screen dimensions.
#[derive(Debug, SimpleObject, Deserialize)]
pub struct Screen {
    /// Width in CSS pixels.
    #[serde(default)]
    pub width: Option<u32>,
    /// Height in CSS pixels.
    #[serde(default)]
    pub height: Option<u32>,
    /// Device pixel ratio.
    #[serde(default)]
    pub density: Option<f64>,
}

/// Marketing campaign.
#[derive(Debug, SimpleObject, Deserialize)]
pub struct Campaign {
    /// `utm_campaign`.
    #[serde(default)]
    pub name: Option<String>,
    /// `utm_source`.
    #[serde(default)]
    pub source: Option<String>,
    /// `utm_medium`.
    #[serde(default)]
    pub medium: Option<String>,
    /// `utm_term`.
    #[serde(default)]
    pub term: Option<String>,
    /// `utm_content`.
    #[serde(default)]
    pub content: Option<String>,
    /// The name of an ad click id parameter present on the landing URL.
    #[serde(default)]
    pub click_id: Option<String>,
}

/// The library that sent an event.
#[derive(Debug, SimpleObject, Deserialize)]
pub struct Library {
    /// e.g. `analytics-python`.
    pub name: String,
    /// Its version.
    #[serde(default)]
    pub version: Option<String>,
}

/// Sentiment, entities and language of a text.
#[derive(Debug, SimpleObject, Deserialize)]
pub struct TextAnalysis {
    /// Detected language (ISO 639-1).
    #[serde(default)]
    pub language: Option<String>,
    /// Sentiment.
    #[serde(default)]
    pub sentiment: Option<Sentiment>,
    /// Entities, by start offset.
    #[serde(default)]
    pub entities: Vec<Entity>,
    /// Key phrases, best first.
    #[serde(default)]
    pub key_phrases: Vec<String>,
}

/// A text's sentiment.
#[derive(Debug, SimpleObject, Deserialize)]
pub struct Sentiment {
    /// `positive`, `negative` or `neutral`.
    pub label: String,
    /// Score in [-1, 1].
    pub score: f64,
    /// Which tier produced it (`lexicon`, `model`).
    pub tier: String,
}

/// An entity found in a text.
#[derive(Debug, SimpleObject, Deserialize)]
pub struct Entity {
    /// Kind (`product`, `brand`, `money`, ...).
    pub kind: String,
    /// The matched text.
    pub text: String,
    /// Start byte offset.
    pub start: u64,
    /// End byte offset.
    pub end: u64,
    /// Catalog product, when matched.
    #[serde(default)]
    pub product_id: Option<String>,
    /// True when the entity is personal data.
    #[serde(default)]
    pub pii: bool,
}

/// A catalog product.
#[derive(Debug, SimpleObject, Deserialize)]
pub struct Product {
    /// CROW id.
    pub id: ID,
    /// Stock keeping unit.
    pub sku: String,
    /// Display name.
    pub name: String,
    /// Brand.
    #[serde(default)]
    pub brand: Option<String>,
    /// Category name.
    #[serde(default)]
    pub category: Option<String>,
    /// Price in minor units (cents).
    #[serde(default)]
    pub price_cents: Option<i64>,
    /// ISO 4217 currency code.
    #[serde(default)]
    pub currency: Option<String>,
    /// Product page URL.
    #[serde(default)]
    pub url: Option<String>,
    /// Description.
    #[serde(default)]
    pub description: Option<String>,
    /// Last change (RFC 3339).
    pub updated_at: String,
}

/// An export and where it stands.
#[derive(Debug, SimpleObject, Deserialize)]
pub struct Export {
    /// Export id.
    pub id: ID,
    /// What it contains.
    pub resource: ExportResource,
    /// The file format.
    pub format: ExportFormat,
    /// Where it stands.
    pub status: ExportStatus,
    /// The filters it was asked with.
    #[serde(default)]
    pub filters: Json<serde_json::Map<String, Value>>,
    /// When it was asked for (RFC 3339).
    pub created_at: String,
    /// When the worker started writing it.
    #[serde(default)]
    pub started_at: Option<String>,
    /// When it succeeded or failed.
    #[serde(default)]
    pub finished_at: Option<String>,
    /// Rows written.
    #[serde(default)]
    pub rows: Option<u64>,
    /// File size in bytes.
    #[serde(default)]
    pub bytes: Option<u64>,
    /// Why it failed.
    #[serde(default)]
    pub error: Option<String>,
    /// A signed link to the file (succeeded), valid until `downloadExpiresAt`.
    #[serde(default)]
    pub download_url: Option<String>,
    /// When `downloadUrl` stops working.
    #[serde(default)]
    pub download_expires_at: Option<String>,
}

/// The insights of one window; each field computes one (and publishes it to `insightGenerated`).
#[derive(Debug)]
pub struct Insights {
    range: DateRange,
}

impl Insights {
    fn get(&self, path: &str) -> Invocation {
        Invocation::get(path)
            .param("since", self.range.since.clone())
            .param("until", self.range.until.clone())
    }
}

#[Object]
impl Insights {
    /// The window start as asked (`null`: 30 days before `until`).
    async fn since(&self) -> Option<&str> {
        self.range.since.as_deref()
    }

    /// The window end as asked (`null`: now).
    async fn until(&self) -> Option<&str> {
        self.range.until.as_deref()
    }

    /// Traffic: events, visitors, sessions, page views, top pages and referrers.
    #[graphql(complexity = "INSIGHT_COST + child_complexity")]
    async fn traffic(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "How many top pages and referrers, 1 to 100 (default 10).")] top: Option<i32>,
    ) -> async_graphql::Result<Traffic> {
        fetch(ctx, self.get("/api/v1/insights/traffic").param("top", top)).await
    }

    /// Sentiment over time of the org's texts or social mentions.
    #[graphql(complexity = "INSIGHT_COST + child_complexity")]
    async fn sentiment(
        &self,
        ctx: &Context<'_>,
        source: Option<SentimentSource>,
        interval: Option<Interval>,
    ) -> async_graphql::Result<SentimentSeries> {
        let inv = self
            .get("/api/v1/insights/sentiment")
            .param("source", source.map(SentimentSource::as_str))
            .param("interval", interval.map(Interval::as_str));
        fetch(ctx, inv).await
    }

    /// An ordered conversion funnel over people.
    #[graphql(complexity = "INSIGHT_COST + child_complexity")]
    async fn funnel(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "2 to 10 steps in order: `page:/pricing`, `track:Signed Up`, `identify`.")] steps: Vec<String>,
    ) -> async_graphql::Result<Funnel> {
        let mut inv = self.get("/api/v1/insights/funnel");
        for s in steps {
            inv = inv.param("step", Some(s));
        }
        fetch(ctx, inv).await
    }

    /// The entities the org's texts or mentions name most, with their sentiment.
    #[graphql(complexity = "INSIGHT_COST + child_complexity")]
    async fn entities(
        &self,
        ctx: &Context<'_>,
        source: Option<SentimentSource>,
        #[graphql(desc = "Only this kind: `product`, `brand`, `competitor`, ...")] kind: Option<String>,
        #[graphql(desc = "How many, 1 to 100 (default 20).")] limit: Option<i32>,
    ) -> async_graphql::Result<Entities> {
        let inv = self
            .get("/api/v1/insights/entities")
            .param("source", source.map(SentimentSource::as_str))
            .param("kind", kind)
            .param("limit", limit);
        fetch(ctx, inv).await
    }
}

/// A page path and its views.
#[derive(Debug, SimpleObject, Deserialize)]
pub struct PathCount {
    /// Page path.
    pub path: String,
    /// Page views.
    pub views: u64,
}

/// A referrer (or referrer class) and its sessions.
#[derive(Debug, SimpleObject, Deserialize)]
pub struct ReferrerCount {
    /// Referring site, or class.
    pub referrer: String,
    /// Sessions it started.
    pub sessions: u64,
}

/// Traffic in a window.
#[derive(Debug, SimpleObject, Deserialize)]
pub struct Traffic {
    /// Window start (inclusive, RFC 3339).
    pub since: String,
    /// Window end (exclusive).
    pub until: String,
    /// Events stored.
    pub events: u64,
    /// Distinct people, bots excluded.
    pub visitors: u64,
    /// Sessions, bots excluded.
    pub sessions: u64,
    /// Page and screen views, bots excluded.
    pub page_views: u64,
    /// Events from crawlers.
    pub bot_events: u64,
    /// PII values scrubbed at ingest.
    pub pii_scrubbed: u64,
    /// Most viewed pages.
    pub top_pages: Vec<PathCount>,
    /// Sessions per referring site.
    pub top_referrers: Vec<ReferrerCount>,
    /// Sessions per referrer class.
    pub referrer_classes: Vec<ReferrerCount>,
}

/// One funnel step's result.
#[derive(Debug, SimpleObject, Deserialize)]
pub struct FunnelStep {
    /// The step as given.
    pub label: String,
    /// People who reached it after every earlier step, in order.
    pub people: u64,
    /// Share of the previous step's people lost here.
    pub drop_off: f64,
    /// Share of the first step's people who got here.
    pub conversion: f64,
}

/// A conversion funnel.
#[derive(Debug, SimpleObject, Deserialize)]
pub struct Funnel {
    /// Window start (inclusive).
    pub since: String,
    /// Window end (exclusive).
    pub until: String,
    /// The steps, in order.
    pub steps: Vec<FunnelStep>,
}

/// One bucket of a sentiment series.
#[derive(Debug, SimpleObject, Deserialize)]
pub struct SentimentPoint {
    /// Bucket start (RFC 3339).
    pub start: String,
    /// Texts analyzed.
    pub count: u64,
    /// Positive texts.
    pub positive: u64,
    /// Negative texts.
    pub negative: u64,
    /// Neutral texts.
    pub neutral: u64,
    /// Mean sentiment score in [-1, 1].
    pub mean_score: f64,
}

/// Sentiment over time.
#[derive(Debug, SimpleObject, Deserialize)]
pub struct SentimentSeries {
    /// Which texts.
    pub source: SentimentSource,
    /// Bucket size.
    pub interval: Interval,
    /// Window start (inclusive).
    pub since: String,
    /// Window end (exclusive).
    pub until: String,
    /// Buckets with at least one text, oldest first.
    #[serde(rename = "data")]
    pub points: Vec<SentimentPoint>,
}

/// An entity and the texts that mention it.
#[derive(Debug, SimpleObject, Deserialize)]
pub struct EntityCount {
    /// Kind (`product`, `brand`, `competitor`, ...).
    pub kind: String,
    /// Its name.
    pub text: String,
    /// The catalog product it links to.
    #[serde(default)]
    pub product_id: Option<String>,
    /// Texts in the window that mention it.
    pub mentions: u64,
    /// Of those, positive.
    pub positive: u64,
    /// Of those, neutral.
    pub neutral: u64,
    /// Of those, negative.
    pub negative: u64,
    /// Mean sentiment score of the texts that have one.
    #[serde(default)]
    pub mean_score: Option<f64>,
}

/// The entities mentioned most.
#[derive(Debug, SimpleObject, Deserialize)]
pub struct Entities {
    /// Which texts.
    pub source: SentimentSource,
    /// Window start (inclusive).
    pub since: String,
    /// Window end (exclusive).
    pub until: String,
    /// Most mentioned first.
    #[serde(rename = "data")]
    pub entities: Vec<EntityCount>,
}

/// An insight as computed: its kind, window and data; the typed field of its kind is set.
#[derive(Debug, SimpleObject)]
pub struct Insight {
    /// Insight id.
    pub id: ID,
    /// What it is.
    pub kind: InsightKind,
    /// Window start (RFC 3339).
    pub period_start: String,
    /// Window end (RFC 3339).
    pub period_end: String,
    /// When it was computed (RFC 3339).
    pub created_at: String,
    /// The answer as REST gives it.
    pub data: Json<Value>,
    /// Set when `kind` is `TRAFFIC`.
    pub traffic: Option<Traffic>,
    /// Set when `kind` is `SENTIMENT`.
    pub sentiment: Option<SentimentSeries>,
    /// Set when `kind` is `FUNNEL`.
    pub funnel: Option<Funnel>,
    /// Set when `kind` is `ENTITIES`.
    pub entities: Option<Entities>,
}

impl Insight {
    fn from_model(i: &crow_core::model::Insight) -> Self {
        use crow_core::time::format_millis;
        let kind = serde_json::from_value(Value::String(i.kind.clone())).unwrap_or(InsightKind::Other);
        let typed = |k: InsightKind| (kind == k).then(|| i.data.clone());
        Insight {
            id: ID(i.id.clone()),
            kind,
            period_start: format_millis(i.period_start),
            period_end: format_millis(i.period_end),
            created_at: format_millis(i.created_at),
            data: Json(i.data.clone()),
            traffic: typed(InsightKind::Traffic).and_then(|d| serde_json::from_value(d).ok()),
            sentiment: typed(InsightKind::Sentiment).and_then(|d| serde_json::from_value(d).ok()),
            funnel: typed(InsightKind::Funnel).and_then(|d| serde_json::from_value(d).ok()),
            entities: typed(InsightKind::Entities).and_then(|d| serde_json::from_value(d).ok()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_sync(query: &str) -> async_graphql::Response {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(builder().finish().execute(query))
    }

    #[test]
    fn the_standard_introspection_query_fits_the_limits() {
        // What GraphiQL, Apollo and graphql-js's getIntrospectionQuery() send.
        let q = r#"query IntrospectionQuery { __schema { queryType { name } mutationType { name }
            subscriptionType { name } types { ...FullType } directives { name description locations
            args { ...InputValue } } } }
            fragment FullType on __Type { kind name description
              fields(includeDeprecated: true) { name description args { ...InputValue } type { ...TypeRef }
                isDeprecated deprecationReason }
              inputFields { ...InputValue } interfaces { ...TypeRef }
              enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
              possibleTypes { ...TypeRef } }
            fragment InputValue on __InputValue { name description type { ...TypeRef } defaultValue }
            fragment TypeRef on __Type { kind name ofType { kind name ofType { kind name ofType { kind name
              ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } } }"#;
        let r = run_sync(q);
        assert!(r.errors.is_empty(), "{:?}", r.errors);
    }

    #[test]
    fn deep_and_costly_queries_are_refused_naming_the_limit() {
        // Each `fields { type { ... } }` level multiplies the answer: the attack depth limits stop.
        let deep = format!(
            "{{ __schema {{ types {{ {} name {} }} }} }}",
            "fields { type { ".repeat(4),
            "} } ".repeat(4)
        );
        let r = run_sync(&deep);
        assert_eq!(r.errors.len(), 1, "{:?}", r.errors);
        let e = &r.errors[0];
        assert!(e.message.contains(&format!("limit is {MAX_DEPTH}")), "{}", e.message);
        let ext = serde_json::to_value(&e.extensions).unwrap();
        assert_eq!(ext["code"], "QUERY_TOO_DEEP");

        let wide: String = (0..40)
            .map(|i| format!("a{i}: insights {{ traffic {{ events }} }} "))
            .collect();
        let r = run_sync(&format!("{{ {wide} }}"));
        assert_eq!(r.errors.len(), 1, "{:?}", r.errors);
        let e = &r.errors[0];
        assert!(
            e.message.contains(&format!("limit is {MAX_COMPLEXITY}")),
            "{}",
            e.message
        );
        let ext = serde_json::to_value(&e.extensions).unwrap();
        assert_eq!(ext["code"], "QUERY_TOO_COMPLEX");
    }

    #[test]
    fn failures_keep_the_rest_problem_detail_code_and_status() {
        let f = Failure {
            status: 403,
            code: "forbidden".into(),
            title: "Forbidden".into(),
            detail: "the viewer role lacks write_catalog".into(),
            body: serde_json::json!({"detail": "the viewer role lacks write_catalog"}),
        };
        let e = failure(f).into_server_error(async_graphql::Pos::default());
        assert_eq!(e.message, "the viewer role lacks write_catalog");
        let ext = serde_json::to_value(&e.extensions).unwrap();
        assert_eq!(
            (ext["code"].as_str(), ext["status"].as_i64()),
            (Some("FORBIDDEN"), Some(403))
        );
    }

    #[test]
    fn the_schema_has_the_operations_of_the_issue() {
        let sdl = sdl();
        for needle in [
            "organization(id: ID!): Organization",
            "filter: InteractionFilter,",
            "): InteractionConnection!",
            "insights(dateRange: DateRange): Insights!",
            "createProduct(input: ProductInput!): Product!",
            "triggerExport(config: ExportConfig!): Export!",
            "interactionCreated(orgId: ID!): Interaction!",
            "insightGenerated(orgId: ID!): Insight!",
        ] {
            assert!(sdl.contains(needle), "{needle} is missing from:\n{sdl}");
        }
    }

    #[test]
    fn insights_from_the_bus_get_their_typed_field() {
        let i = crow_core::model::Insight {
            id: "ins_1".into(),
            org_id: "org_1".into(),
            kind: "sentiment".into(),
            period_start: 0,
            period_end: 86_400_000,
            data: serde_json::json!({"source": "interactions", "interval": "day", "since": "1970-01-01T00:00:00Z",
                "until": "1970-01-02T00:00:00Z", "data": []}),
            created_at: 1,
        };
        let g = Insight::from_model(&i);
        assert_eq!(g.kind, InsightKind::Sentiment);
        assert!(g.sentiment.is_some() && g.traffic.is_none());
        let other = crow_core::model::Insight {
            kind: "anomaly".into(),
            ..i
        };
        assert_eq!(Insight::from_model(&other).kind, InsightKind::Other);
    }
}
