//! RFC 9457 problem responses and the request-reading helpers every handler shares: page size,
//! cursor, times, JSON bodies, and model values rendered with RFC 3339 timestamps.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use crate::http::{HttpRequest, HttpResponse};
use crow_core::access::{Permission, Principal};
use crow_core::ports::Page;
use crow_core::time::{format_millis, parse_timestamp};

/// Largest JSON body the API reads (bulk imports: 16 MiB).
pub const MAX_BODY: usize = 16 << 20;

/// A problem (RFC 9457) about to become a response.
#[derive(Debug, Clone)]
pub struct Problem {
    status: u16,
    kind: &'static str,
    title: &'static str,
    detail: String,
    extra: Option<Value>,
}

impl Problem {
    /// A problem with a status, a machine-readable kind, a title and a detail that says what to do.
    pub fn new(status: u16, kind: &'static str, title: &'static str, detail: impl Into<String>) -> Self {
        Problem {
            status,
            kind,
            title,
            detail: detail.into(),
            extra: None,
        }
    }

    /// Extra members (such as `errors`).
    pub fn with(mut self, extra: Value) -> Self {
        self.extra = Some(extra);
        self
    }

    /// The response.
    pub fn response(self) -> HttpResponse {
        HttpResponse::problem(self.status, self.kind, self.title, self.detail, self.extra)
    }
}

impl From<Problem> for HttpResponse {
    fn from(p: Problem) -> Self {
        p.response()
    }
}

/// `400`: a query parameter is wrong.
pub fn bad_param(name: &str, reason: &str) -> HttpResponse {
    Problem::new(
        400,
        "invalid_parameter",
        "Invalid query parameter",
        format!("{name}: {reason}"),
    )
    .with(json!({"errors": [{"field": name, "reason": reason}]}))
    .response()
}

/// `400`: the body is wrong; `field` names the member when one is at fault.
pub fn invalid_body(field: Option<&str>, reason: impl Into<String>) -> HttpResponse {
    let reason = reason.into();
    let p = Problem::new(
        400,
        "invalid_body",
        "Invalid body",
        match field {
            Some(f) => format!("{f}: {reason}"),
            None => reason.clone(),
        },
    );
    match field {
        Some(f) => p.with(json!({"errors": [{"field": f, "reason": reason}]})).response(),
        None => p.response(),
    }
}

/// `404`: no such `what` in the caller's org (another org's ids answer exactly this too).
pub fn not_found(what: &str, id: &str) -> HttpResponse {
    Problem::new(404, "not_found", "Not found", format!("no {what} with id {id:?}")).response()
}

/// `403`: the caller's role lacks a permission.
pub fn forbidden(principal: &Principal, permission: Permission) -> HttpResponse {
    let needed = serde_json::to_value(permission)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    let roles: Vec<&str> = crow_core::access::Role::ALL
        .into_iter()
        .filter(|r| r.allows(permission))
        .map(|r| r.as_str())
        .collect();
    Problem::new(
        403,
        "forbidden",
        "Forbidden",
        format!(
            "this needs the {needed} permission, which the {} role lacks; it is granted to {}",
            principal.role,
            roles.join(", ")
        ),
    )
    .with(json!({"permission": needed, "role": principal.role}))
    .response()
}

/// `409`: the request conflicts with what is stored.
pub fn conflict(detail: impl Into<String>) -> HttpResponse {
    Problem::new(409, "conflict", "Conflict", detail).response()
}

/// Maps a store error: a client error is a `400` (or `409`/`404`), anything else a logged `503`.
pub fn backend(e: crow_core::Error) -> HttpResponse {
    match e {
        crow_core::Error::Invalid { field, reason } => invalid_body(Some(&field), reason),
        crow_core::Error::Conflict(detail) => conflict(detail),
        crow_core::Error::NotFound(detail) => Problem::new(404, "not_found", "Not found", detail).response(),
        e if e.is_client_error() => Problem::new(400, "invalid_request", "Invalid request", e.to_string()).response(),
        e => {
            tracing::error!(error = %e, "API backend failure");
            Problem::new(
                503,
                "unavailable",
                "Storage unavailable",
                "the store could not answer; retry shortly",
            )
            .response()
            .with_header("retry-after", "1")
        }
    }
}

/// The `limit` parameter: 1..=1000, default 50.
pub fn limit(req: &HttpRequest) -> Result<u32, HttpResponse> {
    match req.query_param("limit") {
        None => Ok(50),
        Some(s) => match s.parse::<u32>() {
            Ok(n) if (1..=1000).contains(&n) => Ok(n),
            _ => Err(bad_param("limit", "must be an integer from 1 to 1000")),
        },
    }
}

/// A time parameter: RFC 3339 or milliseconds since the epoch.
pub fn time_param(req: &HttpRequest, name: &str) -> Result<Option<i64>, HttpResponse> {
    match req.query_param(name) {
        None => Ok(None),
        Some(s) => parse_timestamp(&s)
            .map(Some)
            .ok_or_else(|| bad_param(name, "must be an RFC 3339 time or milliseconds since the epoch")),
    }
}

/// Reads a JSON body into `T` (declare `T` with `deny_unknown_fields` so a typo is a 400, not
/// a silently ignored member).
pub fn json_body<T: DeserializeOwned>(req: &HttpRequest) -> Result<T, HttpResponse> {
    if req.body.len() > MAX_BODY {
        return Err(Problem::new(
            413,
            "payload_too_large",
            "Payload too large",
            format!("the body is {} bytes; at most {MAX_BODY} are accepted", req.body.len()),
        )
        .response());
    }
    if req.body.is_empty() {
        return Err(invalid_body(None, "the body is empty; send a JSON object"));
    }
    serde_json::from_slice(&req.body).map_err(|e| invalid_body(None, format!("the body is not the expected JSON: {e}")))
}

/// Timestamp fields rendered as RFC 3339 in answers.
const TIME_FIELDS: [&str; 14] = [
    "timestamp",
    "original_timestamp",
    "sent_at",
    "received_at",
    "started_at",
    "ended_at",
    "created_at",
    "updated_at",
    "revoked_at",
    "finished_at",
    "expires_at",
    "at",
    "posted_at",
    "fetched_at",
];

/// Serializes a model value for the API, with RFC 3339 timestamps.
pub fn render<T: Serialize>(item: &T) -> Value {
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

/// `200` with `{"data": [...], "next_cursor": ...}`, items rendered by [`render`].
pub fn page<T: Serialize>(page: &Page<T>) -> HttpResponse {
    let data: Vec<Value> = page.data.iter().map(render).collect();
    HttpResponse::json(200, &json!({"data": data, "next_cursor": page.next_cursor}))
}

/// `200` with one rendered item.
pub fn one<T: Serialize>(item: &T) -> HttpResponse {
    HttpResponse::json(200, &render(item))
}

/// `403` with a specific reason (a role rule other than the route's permission).
pub fn forbidden_detail(detail: impl Into<String>) -> HttpResponse {
    Problem::new(403, "forbidden", "Forbidden", detail).response()
}
