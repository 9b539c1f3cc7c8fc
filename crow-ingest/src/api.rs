//! The first read API, `GET /api/v1/...`, scoped to the org of a secret API key.
//!
//! | route | answer |
//! |---|---|
//! | `GET /api/v1/interactions?limit&cursor&type&name&since&until&session_id&person_id` | `{"data": [Interaction], "next_cursor": string or null}`, newest first |
//! | `GET /api/v1/interactions/{id}` | one Interaction (`id` is the client-supplied event id) |
//! | `GET /api/v1/sessions?limit&cursor&since&person_id` | `{"data": [Session], "next_cursor": ...}`, newest first |
//! | `GET /api/v1/sessions/{id}` | one Session |
//! | `POST /api/v1/analyze` | sentiment, entities, language, key phrases (and embeddings) of texts; see [`analyze`] |
//! | `GET /api/v1/search?q&index&k&filter` | semantic search in one of the org's vector indexes; see [`search`] |
//!
//! Authentication: `Authorization: Bearer <api_key>`. A missing or unknown key, and a public
//! write key (which may only ingest), get `401`. Another org's ids answer `404`, exactly like ids
//! that do not exist. Timestamps in answers are RFC 3339 strings; `since`/`until` take RFC 3339
//! or milliseconds since the epoch. Errors are RFC 9457 `application/problem+json`.

use serde_json::{Map, Value, json};

use crate::http::{HttpRequest, HttpResponse};
use crow_core::model::{EventType, KeyKind};
use crow_core::ports::{AccountStore, Embedder, EventStore, InteractionQuery, SessionQuery, TextAnalyzer};
use crow_core::time::{format_millis, parse_timestamp};
use crow_core::vector::{IndexKind, MetadataFilter};

use crate::search::Indexes;

/// Path prefix of the API.
pub const PREFIX: &str = "/api/v1/";

/// True when the request is for the read API (and not an ingest route).
pub fn is_api_route(path: &str) -> bool {
    path.starts_with("/api/v1/interactions") || path.starts_with("/api/v1/sessions")
}

/// Handles a read-API request. Returns `None` when the path is not an API route.
pub async fn handle<S: EventStore + AccountStore>(store: &S, req: &HttpRequest) -> Option<HttpResponse> {
    if !is_api_route(&req.path) {
        return None;
    }
    Some(match route(store, req).await {
        Ok(resp) => resp,
        Err(resp) => resp,
    })
}

async fn route<S: EventStore + AccountStore>(store: &S, req: &HttpRequest) -> Result<HttpResponse, HttpResponse> {
    if req.method != "GET" && req.method != "HEAD" {
        return Err(method_not_allowed(req, "GET, HEAD", "the read API answers GET"));
    }
    let org = authenticate(store, req).await?;
    let rest = req.path.trim_start_matches(PREFIX).trim_end_matches('/');
    let mut parts = rest.splitn(2, '/');
    let collection = parts.next().unwrap_or("");
    let id = parts.next().map(percent_decode);
    match (collection, id) {
        ("interactions", None) => {
            let q = interaction_query(req)?;
            let page = store.list_interactions(&org, &q).await.map_err(backend)?;
            let data: Vec<Value> = page.data.iter().map(render).collect();
            Ok(HttpResponse::json(
                200,
                &json!({"data": data, "next_cursor": page.next_cursor}),
            ))
        }
        ("interactions", Some(id)) => {
            let found = store
                .get_interactions(&org, std::slice::from_ref(&id))
                .await
                .map_err(backend)?;
            match found.first() {
                Some(e) => Ok(HttpResponse::json(200, &render(e))),
                None => Err(not_found("interaction", &id)),
            }
        }
        ("sessions", None) => {
            let q = session_query(req)?;
            let page = store.list_sessions(&org, &q).await.map_err(backend)?;
            let data: Vec<Value> = page.data.iter().map(render).collect();
            Ok(HttpResponse::json(
                200,
                &json!({"data": data, "next_cursor": page.next_cursor}),
            ))
        }
        ("sessions", Some(id)) => match store.get_session(&org, &id).await.map_err(backend)? {
            Some(s) => Ok(HttpResponse::json(200, &render(&s))),
            None => Err(not_found("session", &id)),
        },
        _ => Err(HttpResponse::problem(
            404,
            "not_found",
            "Not found",
            format!("no route {}", req.path),
            None,
        )),
    }
}

/// Resolves the bearer key to its org; only secret keys may read.
async fn authenticate<S: AccountStore>(store: &S, req: &HttpRequest) -> Result<String, HttpResponse> {
    let unauthorized = |detail: &str| {
        HttpResponse::problem(401, "unauthorized", "Unauthorized", detail, None)
            .with_header("www-authenticate", "Bearer realm=\"crow\"")
    };
    let key = req
        .header("authorization")
        .and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")))
        .map(str::trim)
        .ok_or_else(|| unauthorized("send the org's secret API key as `Authorization: Bearer <api_key>`"))?;
    match store.authenticate(key).await.map_err(backend)? {
        Some(grant) if grant.kind == KeyKind::Secret => Ok(grant.org_id),
        Some(_) => Err(unauthorized(
            "a public write key can only ingest events; reading needs the secret API key",
        )),
        None => Err(unauthorized("unknown or revoked API key")),
    }
}

fn interaction_query(req: &HttpRequest) -> Result<InteractionQuery, HttpResponse> {
    let event_type = match req.query_param("type") {
        Some(t) => Some(EventType::parse(&t).filter(|_| t.len() > 1).ok_or_else(|| {
            bad_param(
                "type",
                &format!("unknown type {t:?}; expected page, track, identify, screen, group or alias"),
            )
        })?),
        None => None,
    };
    Ok(InteractionQuery {
        limit: limit(req)?,
        cursor: req.query_param("cursor"),
        event_type,
        name: req.query_param("name"),
        since: time_param(req, "since")?,
        until: time_param(req, "until")?,
        session_id: req.query_param("session_id"),
        person_id: req.query_param("person_id"),
    })
}

fn session_query(req: &HttpRequest) -> Result<SessionQuery, HttpResponse> {
    Ok(SessionQuery {
        limit: limit(req)?,
        cursor: req.query_param("cursor"),
        since: time_param(req, "since")?,
        person_id: req.query_param("person_id"),
    })
}

fn limit(req: &HttpRequest) -> Result<u32, HttpResponse> {
    match req.query_param("limit") {
        None => Ok(50),
        Some(s) => match s.parse::<u32>() {
            Ok(n) if (1..=1000).contains(&n) => Ok(n),
            _ => Err(bad_param("limit", "must be an integer from 1 to 1000")),
        },
    }
}

fn time_param(req: &HttpRequest, name: &str) -> Result<Option<i64>, HttpResponse> {
    match req.query_param(name) {
        None => Ok(None),
        Some(s) => parse_timestamp(&s)
            .map(Some)
            .ok_or_else(|| bad_param(name, "must be an RFC 3339 time or milliseconds since the epoch")),
    }
}

/// A 405 naming the method, the path and what to send instead, with the `allow` header.
fn method_not_allowed(req: &HttpRequest, allow: &str, hint: &str) -> HttpResponse {
    HttpResponse::problem(
        405,
        "method_not_allowed",
        "Method not allowed",
        format!("{} is not allowed on {}; {hint}", req.method, req.path),
        None,
    )
    .with_header("allow", allow)
}

fn bad_param(name: &str, reason: &str) -> HttpResponse {
    HttpResponse::problem(
        400,
        "invalid_parameter",
        "Invalid query parameter",
        format!("{name}: {reason}"),
        Some(json!({"errors": [{"field": name, "reason": reason}]})),
    )
}

fn not_found(what: &str, id: &str) -> HttpResponse {
    HttpResponse::problem(404, "not_found", "Not found", format!("no {what} with id {id:?}"), None)
}

fn backend(e: crow_core::Error) -> HttpResponse {
    if e.is_client_error() {
        return HttpResponse::problem(400, "invalid_request", "Invalid request", e.to_string(), None);
    }
    tracing::error!(error = %e, "read API backend failure");
    HttpResponse::problem(
        503,
        "unavailable",
        "Storage unavailable",
        "the store could not answer; retry shortly",
        None,
    )
    .with_header("retry-after", "1")
}

fn percent_decode(s: &str) -> String {
    form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// Timestamp fields rendered as RFC 3339 in answers.
const TIME_FIELDS: [&str; 6] = [
    "timestamp",
    "original_timestamp",
    "sent_at",
    "received_at",
    "started_at",
    "ended_at",
];

/// Serializes a model value for the API, with RFC 3339 timestamps.
pub fn render<T: serde::Serialize>(item: &T) -> Value {
    let mut v = serde_json::to_value(item).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut v {
        iso_times(map);
    }
    v
}

fn iso_times(map: &mut Map<String, Value>) {
    for f in TIME_FIELDS {
        if let Some(ms) = map.get(f).and_then(Value::as_i64) {
            map.insert(f.to_owned(), Value::String(format_millis(ms)));
        }
    }
}

/// The CCTV frame events route: `GET /api/v1/cctv/events?camera=&kind=&zone=&since=&until=&limit=&cursor=`.
pub const CCTV_EVENTS_ROUTE: &str = "/api/v1/cctv/events";

/// `GET /api/v1/cctv/events`: the org's frame events (motion, presence, line crossings,
/// occupancy, dwell), oldest first, paged. Events carry counts and the object-store key of a
/// masked keyframe, never an image.
pub async fn frame_events<S: AccountStore + crow_core::ports::VideoStore>(
    store: &S,
    req: &HttpRequest,
) -> HttpResponse {
    let answer = async {
        if req.method != "GET" && req.method != "HEAD" {
            return Err(method_not_allowed(req, "GET, HEAD", "the read API answers GET"));
        }
        let org = authenticate(store, req).await?;
        let kind = match req.query_param("kind") {
            Some(k) => Some(serde_json::from_value(Value::String(k.clone())).map_err(|_| {
                bad_param(
                    "kind",
                    &format!("unknown kind {k:?}; expected motion, presence, line_in, line_out, occupancy or dwell"),
                )
            })?),
            None => None,
        };
        let q = crow_core::video::FrameEventQuery {
            limit: limit(req)?,
            cursor: req.query_param("cursor"),
            camera_id: req.query_param("camera"),
            kind,
            zone: req.query_param("zone"),
            since: time_param(req, "since")?,
            until: time_param(req, "until")?,
        };
        let page = store.list_frame_events(&org, &q).await.map_err(backend)?;
        let data: Vec<Value> = page.data.iter().map(render).collect();
        Ok(HttpResponse::json(
            200,
            &json!({"data": data, "next_cursor": page.next_cursor}),
        ))
    };
    match answer.await {
        Ok(r) | Err(r) => r,
    }
}

/// The semantic search route.
pub const SEARCH_ROUTE: &str = "/api/v1/search";

/// `GET /api/v1/search`: the org's records nearest in meaning to a text.
///
/// Parameters: `q` (the text, required), `index` (`interactions` (default), `products` or
/// `social`), `k` (1..=100, default 10), `filter` (repeatable, ANDed: `key=value`,
/// `key!=value`, `key>=v`, `key<v`, `key=[a,b]`, or a whole filter in Vectorize's JSON syntax).
/// Answers `{"index", "query", "k", "data": [{"id", "score", "snippet", "metadata"}]}`, best
/// first. A bad parameter is a 400 naming it; no embedding model is a 503. Authentication as for
/// the read API; the org comes from the key, and the index itself keeps orgs apart.
pub async fn search<S: AccountStore>(
    store: &S,
    indexes: Option<&Indexes>,
    embedder: Option<&dyn Embedder>,
    req: &HttpRequest,
) -> HttpResponse {
    match search_inner(store, indexes, embedder, req).await {
        Ok(r) | Err(r) => r,
    }
}

async fn search_inner<S: AccountStore>(
    store: &S,
    indexes: Option<&Indexes>,
    embedder: Option<&dyn Embedder>,
    req: &HttpRequest,
) -> Result<HttpResponse, HttpResponse> {
    if req.method != "GET" && req.method != "HEAD" {
        return Err(method_not_allowed(req, "GET, HEAD", "send GET"));
    }
    let org = authenticate(store, req).await?;
    let query = req
        .query_param("q")
        .ok_or_else(|| bad_param("q", "the text to search for is required"))?;
    let index = match req.query_param("index") {
        Some(i) => i.parse::<IndexKind>().map_err(|e| bad_param("index", &e.to_string()))?,
        None => IndexKind::Interactions,
    };
    let k = match req.query_param("k") {
        Some(k) => k
            .parse::<usize>()
            .ok()
            .filter(|k| (1..=crow_core::vector::MAX_TOP_K).contains(k))
            .ok_or_else(|| bad_param("k", "expected an integer in 1..=100"))?,
        None => 10,
    };
    let filter =
        MetadataFilter::parse_exprs(req.query_params("filter")).map_err(|e| bad_param("filter", &e.to_string()))?;
    let (Some(indexes), Some(embedder)) = (indexes, embedder) else {
        return Err(HttpResponse::problem(
            503,
            "search_unavailable",
            "Semantic search unavailable",
            "semantic search needs the embedding model; the server runs without it (run `make models` \
             and restart with --models)",
            None,
        ));
    };
    let request = crate::search::SearchRequest {
        query: query.clone(),
        index,
        k,
        filter,
    };
    let hits = crate::search::search(indexes, embedder, &org, &request)
        .await
        .map_err(|e| match e {
            crow_core::Error::Invalid { field, reason } => bad_param(&field, &reason),
            other => backend(other),
        })?;
    Ok(HttpResponse::json(
        200,
        &json!({"index": index, "query": query, "k": k, "data": hits}),
    ))
}

/// The text-analysis route.
pub const ANALYZE_ROUTE: &str = "/api/v1/analyze";
/// Texts per `POST /api/v1/analyze` request.
pub const ANALYZE_MAX_TEXTS: usize = 100;
/// Body size of `POST /api/v1/analyze` (a 1 MiB text fits, with JSON escaping to spare).
pub const ANALYZE_MAX_BODY: usize = 2 << 20;

/// `POST /api/v1/analyze`: sentiment, entities (with the key's org catalog), language and key
/// phrases of texts; with `"embed": true` also their sentence embeddings.
///
/// Body: `{"texts": ["...", ...], "embed": false}` (or `{"text": "..."}`), at most
/// [`ANALYZE_MAX_TEXTS`] texts and [`ANALYZE_MAX_BODY`] bytes; answers
/// `{"tier": "model"|"lexicon", "data": [{"language", "sentiment": {label, score, tier},
/// "entities": [...], "key_phrases": [...], "embedding"?}]}` in input order. A body that is not
/// UTF-8 or not such JSON is a 400 naming the problem; `embed` without an embedding model is a 503.
/// Nothing is stored. Authentication as for the read API (the secret API key).
pub async fn analyze<S: AccountStore>(
    store: &S,
    analyzer: &dyn TextAnalyzer,
    embedder: Option<&dyn Embedder>,
    tier: &str,
    req: &HttpRequest,
) -> HttpResponse {
    match analyze_inner(store, analyzer, embedder, tier, req).await {
        Ok(r) | Err(r) => r,
    }
}

async fn analyze_inner<S: AccountStore>(
    store: &S,
    analyzer: &dyn TextAnalyzer,
    embedder: Option<&dyn Embedder>,
    tier: &str,
    req: &HttpRequest,
) -> Result<HttpResponse, HttpResponse> {
    if req.method != "POST" {
        return Err(method_not_allowed(req, "POST", "send POST"));
    }
    let org = authenticate(store, req).await?;
    let invalid = |detail: String| HttpResponse::problem(400, "invalid_body", "Invalid body", detail, None);
    if req.body.len() > ANALYZE_MAX_BODY {
        return Err(HttpResponse::problem(
            413,
            "payload_too_large",
            "Payload too large",
            format!(
                "the body is {} bytes; at most {ANALYZE_MAX_BODY} are accepted",
                req.body.len()
            ),
            None,
        ));
    }
    let text = std::str::from_utf8(&req.body).map_err(|e| {
        HttpResponse::problem(
            400,
            "invalid_utf8",
            "Body is not UTF-8",
            format!(
                "the body is not valid UTF-8 (first bad byte at offset {})",
                e.valid_up_to()
            ),
            None,
        )
    })?;
    let body: Value = serde_json::from_str(text).map_err(|e| invalid(format!("the body is not JSON: {e}")))?;
    let Value::Object(body) = body else {
        return Err(invalid("expected an object like {\"texts\": [\"...\"]}".into()));
    };
    if let Some(k) = body.keys().find(|k| !["texts", "text", "embed"].contains(&k.as_str())) {
        return Err(invalid(format!(
            "unknown field `{k}`; expected `texts`, `text` or `embed`"
        )));
    }
    let texts: Vec<String> = match (body.get("texts"), body.get("text")) {
        (Some(Value::Array(items)), None) => items
            .iter()
            .enumerate()
            .map(|(i, v)| {
                v.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| invalid(format!("texts[{i}] must be a string")))
            })
            .collect::<Result<_, _>>()?,
        (None, Some(Value::String(t))) => vec![t.clone()],
        (Some(_), Some(_)) => return Err(invalid("send either `texts` or `text`, not both".into())),
        _ => {
            return Err(invalid(
                "`texts` must be an array of strings (or `text` a string)".into(),
            ));
        }
    };
    if texts.is_empty() || texts.len() > ANALYZE_MAX_TEXTS {
        return Err(invalid(format!(
            "send 1 to {ANALYZE_MAX_TEXTS} texts (got {})",
            texts.len()
        )));
    }
    let embed = match body.get("embed") {
        None | Some(Value::Bool(false)) => false,
        Some(Value::Bool(true)) => true,
        Some(_) => return Err(invalid("`embed` must be true or false".into())),
    };
    let embeddings = match (embed, embedder) {
        (false, _) => None,
        (true, Some(e)) => Some(e.embed(&texts).await.map_err(backend)?),
        (true, None) => {
            return Err(HttpResponse::problem(
                503,
                "model_unavailable",
                "Embedding model unavailable",
                "this server runs the lexicon tier only: no embedding model is installed (run `make models`)",
                None,
            ));
        }
    };
    let analyses = analyzer.analyze(&org, &texts).await.map_err(backend)?;
    let data: Vec<AnalysisLine<'_>> = analyses
        .iter()
        .enumerate()
        .map(|(i, analysis)| AnalysisLine {
            analysis,
            embedding: embeddings.as_ref().map(|e| e[i].as_slice()),
            heads: None,
        })
        .collect();
    Ok(HttpResponse::json(200, &json!({"tier": tier, "data": data})))
}

/// One text's analysis as `crow analyze` and `POST /api/v1/analyze` print it: `language`,
/// `sentiment`, `entities`, `key_phrases` (in that order), then `embedding` when asked for.
#[derive(Debug, serde::Serialize)]
pub struct AnalysisLine<'a> {
    /// The analysis.
    #[serde(flatten)]
    pub analysis: &'a crow_core::ports::TextAnalysis,
    /// The sentence embedding.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub embedding: Option<&'a [f32]>,
    /// Verdicts of user-trained heads, by task (`crow analyze --head`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub heads: Option<Value>,
}
