//! The website channel: parsing, validation and normalization of the three wire formats CROW
//! ingests, into [`Interaction`]s. Pure and synchronous (no I/O, no clock, no threads), so the
//! native server and the Cloudflare Worker call the same functions; [`crate::ingest`] wraps it
//! in the async service that authenticates and stores.
//!
//! The steps, each callable on its own:
//! 1. [`Route::from_path`] picks the format from the path;
//! 2. [`parse_request`] decodes the body (gzip/deflate through a capped reader, PostHog's
//!    `data=` base64 form), checks UTF-8, scans the nesting depth **before** parsing, parses the
//!    JSON once, splits the envelope into events and finds the key and `sentAt`;
//! 3. [`ParsedRequest::normalize`] maps every event into an [`Interaction`] for the
//!    authenticated org: validation (bad events are rejected one by one with the field and the
//!    reason, the good ones kept), ids, clock-skew correction, campaign, user agent, IP, and PII
//!    scrubbing with [`crow_core::privacy::scrub_interaction`].
//!
//! ```
//! use crow_ingest::http::HttpRequest;
//! use crow_ingest::website::{Limits, RequestInfo, Route, parse_request};
//!
//! let req = HttpRequest {
//!     method: "POST".into(),
//!     path: "/api/v1/events".into(),
//!     body: br#"{"k":"wk_demo","b":[{"t":"t","n":"Signed up","a":"v1"},{"t":"t","a":"v2"}]}"#.to_vec(),
//!     ..Default::default()
//! };
//! let route = Route::from_path(&req.path).unwrap();
//! let parsed = parse_request(&req, route, &Limits::default()).unwrap();
//! assert_eq!(parsed.key.as_deref(), Some("wk_demo"));
//! // ... authenticate the key, then:
//! let info = RequestInfo::from_request(&req, false);
//! let batch = parsed.normalize("org_1", b"the org's pseudonym key", &info, &Limits::default(), 1_714_564_800_000);
//! assert_eq!(batch.events[0].name.as_deref(), Some("Signed up"));
//! assert_eq!((batch.rejected[0].index, batch.rejected[0].field.as_str()), (1, "/b/1/n"));
//! ```
//!
//! # Routes
//!
//! | Path (trailing `/` optional) | Format | Body |
//! |---|---|---|
//! | `POST /api/v1/events` | CROW (below) | batch object, single event, or array |
//! | `POST /v1/batch`, `/v1/import` | Segment | `{"batch": [...], "sentAt", "context", "writeKey"}` |
//! | `POST /v1/track`, `/v1/identify`, `/v1/page`, `/v1/screen`, `/v1/group`, `/v1/alias` | Segment | one event; its type comes from the path |
//! | `POST /batch`, `/capture`, `/e`, `/i/v0/e` | PostHog | `{"api_key", "batch": [...], "sent_at"}`, an array, or one event |
//!
//! posthog-js also asks `GET /array/{token}/config` and `POST /flags/` (or `/decide/`) before
//! it captures; [`PostHogEndpoint`] answers them (no flags, `gzip-js` compression supported).
//!
//! # CROW's compact layout (`POST /api/v1/events`)
//!
//! The browser SDK must stay under 1 KiB, so every field has a one- or two-letter name. The
//! long names (Segment's) are accepted too; when both are present the compact one wins. Bodies
//! may be `application/json` or `text/plain` (what `navigator.sendBeacon` sends with a string),
//! optionally gzip-compressed (`Content-Encoding: gzip`, or just gzip bytes: they are sniffed).
//!
//! Envelope (a bare event or a bare array of events is accepted too):
//!
//! | Key | Long name | Type | Meaning |
//! |---|---|---|---|
//! | `k` | `writeKey` | string | Write key. Alternatively `?k=` / `?writeKey=` in the query, or `Authorization: Bearer <key>` / Basic `<key>:` |
//! | `sa` | `sentAt` | ms or ISO 8601 | When the SDK sent the batch, by the browser's clock (used for clock-skew correction) |
//! | `b` | `batch` | array | The events, at most 500 |
//! | `c` | `context` | object | Context shared by all events; an event's own context keys win |
//! | `dr` | `dropped` | integer ≥ 0 | Events the SDK's bounded offline queue dropped since its last delivered batch (`null` or absent: 0). Counted ([`ParsedRequest::client_dropped`], the server's `crow_sdk_dropped_events_total`) when the batch stores at least one new event, so a resent batch does not count twice; anything else is refused (400 `/dr: expected a non-negative integer`) |
//!
//! Event:
//!
//! | Key | Long name | Type | Meaning |
//! |---|---|---|---|
//! | `i` | `messageId` | string, 1–200 chars | Event id, the idempotency key within the org. Optional: without it CROW derives one from a SHA-256 of the org and the event's content, so a resent batch is still stored once |
//! | `t` | `type` | `p` `t` `i` `s` `g` `a`, or `page` `track` `identify` `screen` `group` `alias` | Required |
//! | `n` | `event` or `name` | string | Track: the event name (required). Page/screen: the page name |
//! | `a` | `anonymousId` | string | Browser id. `a` or `u` is required |
//! | `u` | `userId` | string | Known user id (alias: required, the new id) |
//! | `s` | `sessionId` | string | The SDK's session id |
//! | `g` | `groupId` | string | Group: required |
//! | `pi` | `previousId` | string | Alias: required, the old id |
//! | `p` | `properties`, `traits` | object | Properties; for identify and group, the traits |
//! | `ts` | `timestamp` | ms or ISO 8601 | When it happened, by the browser's clock (defaults to when received) |
//! | `sa` | `sentAt` | ms or ISO 8601 | Overrides the envelope's `sa` for this event |
//! | `c` | `context` | object | See below |
//!
//! Context (`c`):
//!
//! | Key | Long name | Type | Meaning |
//! |---|---|---|---|
//! | `u` | `url` or `page.url` | string | Page URL. Path, query and campaign are derived from it |
//! | `r` | `referrer` or `page.referrer` | string | `document.referrer` |
//! | `ti` | `title` or `page.title` | string | `document.title` |
//! | `l` | `locale` | string | `navigator.language` |
//! | `sw` | `screen.width` | number | `screen.width` |
//! | `sh` | `screen.height` | number | `screen.height` |
//! | `tz` | `timezone` | string | IANA zone, `Intl.DateTimeFormat().resolvedOptions().timeZone` |
//! | `ua` | `userAgent` | string | Normally omitted: the request's `User-Agent` header is used |
//! | — | `page.path`, `page.search` | string | Derived from the URL when absent |
//! | — | `campaign` | `{name, source, medium, term, content}` | Derived from the URL's `utm_*` when absent |
//! | — | `library` | `{name, version}` | The SDK |
//! | — | `ip` | string | Normally omitted: the request's address is used |
//!
//! Any other context key is kept (scrubbed) in [`Context::extra`](crow_core::model::Context).
//! A page view as the SDK sends it:
//!
//! ```json
//! {"k":"wk_0123456789abcdef0123456789abcdef","sa":1714564800123,"b":[
//!   {"t":"p","a":"v1x9","ts":1714564800000,
//!    "c":{"u":"https://shop.example/p/42?utm_source=news","r":"https://www.google.com/",
//!         "ti":"Blue shoe","l":"en-US","sw":1440,"sh":900,"tz":"Europe/Paris"}},
//!   {"t":"t","n":"Add to cart","a":"v1x9","ts":1714564801500,"p":{"sku":"42","price":59.9}}]}
//! ```
//!
//! # Segment
//!
//! Segment's [HTTP Tracking API](https://segment.com/docs/connections/sources/catalog/libraries/server/http-api/)
//! as analytics-python and analytics-node send it: write key as the Basic user name (empty
//! password) or a `writeKey` field; `messageId` → id; `userId` with a null `anonymousId` is fine
//! (one of them is required; alias needs `previousId` and `userId`, group `groupId`, track
//! `event`); nulls are treated as absent (analytics-python sends `"anonymousId": null`);
//! `originalTimestamp` (or else `timestamp`) is the client time, corrected with `sentAt`;
//! `context.page`, `context.campaign`, `context.library`, `context.userAgent`, `context.ip`,
//! `context.locale`, `context.timezone`, `context.screen`, `traits` (or `context.traits` for
//! identify) are mapped; a page's `category` is kept as the `category` property.
//!
//! # PostHog
//!
//! PostHog's capture API as posthog-python and posthog-js send it: `api_key` in the body or
//! `token` in the first event's properties; JSON, gzip (`Content-Encoding`, `?compression=gzip-js`
//! or sniffed) or `data=<base64>` forms (`?compression=base64`, or a form content type);
//! `sent_at` in the body or `?sent_at=`/`?_=` (ms) in the query. Mapping:
//!
//! | PostHog | Interaction |
//! |---|---|
//! | `uuid` | `id` |
//! | `$pageview` | page; `$current_url`, `$pathname`, `$referrer` (except `$direct`), `$title` → `context.page` |
//! | `$screen` | screen, name `$screen_name` |
//! | `$identify` | identify: `user_id` = `distinct_id`, `anonymous_id` = `$anon_distinct_id` (or `$device_id`) |
//! | `$set`, `$set_once` | identify with those traits |
//! | `$create_alias` | alias: `previous_id` = `distinct_id`, `user_id` = `properties.alias` |
//! | `$groupidentify` | group: `group_id` = `$group_key`, traits `$group_set`, property `group_type` = `$group_type` |
//! | anything else | track, `name` = `event` |
//! | `distinct_id` (top level or in properties) | `user_id` when `$is_identified` is true (then `$device_id` → `anonymous_id`), else `anonymous_id` |
//! | `$set` / `$set_once` on any event | `traits` |
//! | `$session_id` | `session_id` |
//! | `$raw_user_agent`, else `$browser` `$browser_version` `$os` `$device_type` (only from clients on the visitor's device: `$lib` = `web`, or `$browser`/`$device_type` present, and no `$is_server`; a server SDK's `$os` is the server's and stays a property) | `context.user_agent` |
//! | `$screen_width`, `$screen_height`, `$lib`, `$lib_version`, `$ip`, `$timezone`, `$browser_language`, `utm_*`, click ids | `context` |
//! | `timestamp` + `sent_at`, else `offset` (ms ago), else `$time` | `timestamp` |
//!
//! The `$`-properties mapped above (and `token`, `distinct_id`, `$insert_id`, `$time`, `$host`,
//! `$referring_domain`, `$geoip_disable`, `$is_server`, `$process_person_profile`) are removed
//! from `properties`; every other property is kept.
//!
//! # Rules common to all formats
//!
//! - **Ids**: the client's id when present (a string, or a number as a string; 1–200 chars),
//!   else `h_` + 32 hex chars of a SHA-256 over the org and the event's canonical JSON (keys
//!   sorted; `sentAt`/`sent_at`/`offset` left out since they change when a batch is resent).
//! - **Clock skew**: [`crow_core::time::corrected_timestamp`] with the event's client time and
//!   the `sentAt` of the event or of the batch.
//! - **Campaign**: the client's `campaign` when it sent one, else `utm_*` and the first ad click
//!   id (`gclid`, `fbclid`, `msclkid`, `ttclid`, `li_fat_id`, `twclid`, `dclid`, `wbraid`,
//!   `gbraid`) from the page URL. Only a click id's parameter *name* is kept; its value is
//!   removed from the campaign, the stored URL and the stored query string.
//! - **User agent and IP** come from the event when it has them. Otherwise the request's
//!   `User-Agent` header and address are used **only for browser-originated events**: CROW's own
//!   endpoint, PostHog events with `$lib` = `web` (posthog-js), and Segment events whose
//!   `context.library.name` is `analytics.js` or `analytics-next`. A server library's request
//!   carries the server's user agent and address, not the visitor's, so those are ignored. The
//!   request address is the peer's, or `CF-Connecting-IP` / the first `X-Forwarded-For` entry
//!   when [`RequestInfo::from_request`] is told to trust proxy headers. The user agent is reduced
//!   by [`crow_core::useragent::parse`] and flagged by [`crow_core::useragent::is_bot`] (bots
//!   are flagged, never dropped); the raw string is never stored. IPs are truncated.
//! - **Limits** ([`Limits`]): body ≤ 1 MiB after decompression (413 `body_too_large`); at most
//!   500 events per request (413 `too_many_events`: the request as a whole is too large, split
//!   it); nesting depth of the whole body (envelope included) ≤ 32 (400 `too_deep`); every
//!   string, keys included, ≤ 64 KiB (that event is rejected, naming the field).
//! - **Errors per event** name the field as a JSON pointer into the request body (`/b/3/ts`,
//!   `/batch/3/timestamp`, `/3/event` for a bare array, `/timestamp` for a single event) and the
//!   reason. A batch with some bad events keeps the good ones.

mod body;
mod common;
mod posthog;
mod posthog_config;
mod segment;

use crow_core::model::{EventType, Interaction, Millis, Source};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::http::{HttpRequest, HttpResponse};

pub use body::{JsonScan, TooDeep, scan_json};
pub use posthog_config::PostHogEndpoint;

/// Size and shape limits of a request. The defaults are the documented ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Limits {
    /// Maximum body size after decompression, in bytes (default 1 MiB).
    pub max_body_bytes: usize,
    /// Maximum number of events in one request (default 500).
    pub max_batch: usize,
    /// Maximum nesting depth of arrays and objects in the body, envelope included (default 32).
    pub max_depth: usize,
    /// Maximum length of any string, key or value, in bytes (default 64 KiB).
    pub max_string_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 1 << 20,
            max_batch: 500,
            max_depth: 32,
            max_string_bytes: 64 << 10,
        }
    }
}

/// An ingest route: which wire format a path speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Route {
    /// CROW's own `POST /api/v1/events`.
    Crow,
    /// The Segment HTTP Tracking API: `/v1/batch` (`None`) or a single-event route whose path
    /// gives the type.
    Segment(Option<EventType>),
    /// The PostHog capture API.
    PostHog,
}

impl Route {
    /// The route for a path (without query string); a trailing slash is optional.
    pub fn from_path(path: &str) -> Option<Route> {
        let p = if path.len() > 1 {
            path.strip_suffix('/').unwrap_or(path)
        } else {
            path
        };
        Some(match p {
            "/api/v1/events" => Route::Crow,
            "/v1/batch" | "/v1/import" => Route::Segment(None),
            "/v1/track" => Route::Segment(Some(EventType::Track)),
            "/v1/identify" => Route::Segment(Some(EventType::Identify)),
            "/v1/page" => Route::Segment(Some(EventType::Page)),
            "/v1/screen" => Route::Segment(Some(EventType::Screen)),
            "/v1/group" => Route::Segment(Some(EventType::Group)),
            "/v1/alias" => Route::Segment(Some(EventType::Alias)),
            "/batch" | "/capture" | "/e" | "/i/v0/e" => Route::PostHog,
            _ => return None,
        })
    }

    /// The wire protocol recorded on the events.
    pub fn source(self) -> Source {
        match self {
            Route::Crow => Source::Crow,
            Route::Segment(_) => Source::Segment,
            Route::PostHog => Source::Posthog,
        }
    }
}

/// Why a whole request was refused. [`RequestErrorKind::problem_type`] is the RFC 9457 problem
/// `type` (`/problems/{problem_type}`), [`RequestErrorKind::reason`] the reason code counted in
/// metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RequestErrorKind {
    /// The path is not an ingest route (404).
    NotFound,
    /// Only `POST` (and `OPTIONS` for CORS) is allowed (405).
    MethodNotAllowed,
    /// The body exceeds [`Limits::max_body_bytes`] after decompression (413).
    BodyTooLarge,
    /// More than [`Limits::max_batch`] events (413).
    TooManyEvents,
    /// Nesting deeper than [`Limits::max_depth`] (400).
    TooDeep,
    /// The body is not UTF-8 (400).
    InvalidUtf8,
    /// Malformed JSON (400; the detail names line and column).
    BadJson,
    /// A `Content-Encoding` or `compression` CROW does not decode (415).
    UnsupportedEncoding,
    /// A supported encoding whose data is corrupt: bad gzip, bad base64 (400).
    BadEncoding,
    /// Well-formed JSON of the wrong shape (400).
    BadRequest,
    /// No write key was presented (401).
    MissingKey,
    /// The presented key is not valid (401). Says nothing about which orgs exist.
    InvalidKey,
    /// No event of the request was valid (400; the rejected list says why).
    NoValidEvents,
    /// The store could not commit; retry later (503 with `Retry-After`).
    Unavailable,
}

impl RequestErrorKind {
    /// HTTP status.
    pub fn status(self) -> u16 {
        use RequestErrorKind::*;
        match self {
            NotFound => 404,
            MethodNotAllowed => 405,
            BodyTooLarge | TooManyEvents => 413,
            UnsupportedEncoding => 415,
            MissingKey | InvalidKey => 401,
            Unavailable => 503,
            TooDeep | InvalidUtf8 | BadJson | BadEncoding | BadRequest | NoValidEvents => 400,
        }
    }

    /// The problem type's last segment (`/problems/{this}`).
    pub fn problem_type(self) -> &'static str {
        use RequestErrorKind::*;
        match self {
            NotFound => "not_found",
            MethodNotAllowed => "method_not_allowed",
            BodyTooLarge => "body_too_large",
            TooManyEvents => "too_many_events",
            TooDeep => "too_deep",
            InvalidUtf8 => "invalid_utf8",
            BadJson => "bad_json",
            UnsupportedEncoding => "unsupported_encoding",
            BadEncoding => "bad_encoding",
            BadRequest => "bad_request",
            MissingKey => "missing_key",
            InvalidKey => "invalid_key",
            NoValidEvents => "no_valid_events",
            Unavailable => "unavailable",
        }
    }

    /// The reason code for metrics (`unauthorized` for both key errors, `invalid_field` when
    /// every event was rejected).
    pub fn reason(self) -> &'static str {
        use RequestErrorKind::*;
        match self {
            MissingKey | InvalidKey => "unauthorized",
            NoValidEvents => "invalid_field",
            other => other.problem_type(),
        }
    }

    /// Short human title.
    pub fn title(self) -> &'static str {
        use RequestErrorKind::*;
        match self {
            NotFound => "Not an ingest route",
            MethodNotAllowed => "Method not allowed",
            BodyTooLarge => "Body too large",
            TooManyEvents => "Too many events in one request",
            TooDeep => "JSON nested too deeply",
            InvalidUtf8 => "Body is not UTF-8",
            BadJson => "Malformed JSON",
            UnsupportedEncoding => "Unsupported content encoding",
            BadEncoding => "Body cannot be decoded",
            BadRequest => "Unexpected body shape",
            MissingKey => "Missing write key",
            InvalidKey => "Invalid write key",
            NoValidEvents => "No valid event",
            Unavailable => "Storage temporarily unavailable",
        }
    }
}

/// A refused request.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestError {
    /// What went wrong.
    pub kind: RequestErrorKind,
    /// Human-readable detail (becomes the problem's `detail`).
    pub detail: String,
    /// Rejected events, for [`RequestErrorKind::NoValidEvents`].
    pub rejected: Vec<Rejection>,
    /// Extra members of the problem document (`line`, `column`, `max_depth`, ...).
    pub extra: Option<Value>,
}

impl RequestError {
    /// A new error.
    pub fn new(kind: RequestErrorKind, detail: impl Into<String>) -> Self {
        RequestError {
            kind,
            detail: detail.into(),
            rejected: Vec::new(),
            extra: None,
        }
    }

    /// With extra problem members (an object).
    pub fn with_extra(mut self, extra: Value) -> Self {
        self.extra = Some(extra);
        self
    }

    /// The `application/problem+json` response. Besides RFC 9457's members it carries `code`
    /// and `message` (what Segment's clients log) and, when events were rejected, `rejected`.
    pub fn to_response(&self) -> HttpResponse {
        let mut extra = Map::new();
        extra.insert("code".into(), Value::from(self.kind.problem_type()));
        extra.insert("message".into(), Value::from(self.detail.as_str()));
        if let Some(Value::Object(more)) = &self.extra {
            extra.extend(more.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        if !self.rejected.is_empty() || self.kind == RequestErrorKind::NoValidEvents {
            extra.insert("rejected".into(), rejections_json(&self.rejected));
        }
        let mut resp = HttpResponse::problem(
            self.kind.status(),
            self.kind.problem_type(),
            self.kind.title(),
            self.detail.clone(),
            Some(Value::Object(extra)),
        );
        match self.kind {
            RequestErrorKind::MissingKey | RequestErrorKind::InvalidKey => {
                resp = resp.with_header("www-authenticate", "Bearer realm=\"crow\"");
            }
            RequestErrorKind::MethodNotAllowed => resp = resp.with_header("allow", "POST, OPTIONS"),
            RequestErrorKind::Unavailable => resp = resp.with_header("retry-after", "2"),
            _ => {}
        }
        resp
    }
}

impl std::fmt::Display for RequestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.kind.problem_type(), self.detail)
    }
}

impl std::error::Error for RequestError {}

/// One rejected event: its position in the request, the offending field as a JSON pointer into
/// the request body, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejection {
    /// Position of the event in the request's batch (0 for a single event).
    pub index: usize,
    /// JSON pointer of the field, e.g. `/batch/3/timestamp` or `/b/3/ts`.
    pub field: String,
    /// What is wrong with it.
    pub reason: String,
}

/// `[{"index", "field", "reason"}, ...]`.
pub fn rejections_json(rejected: &[Rejection]) -> Value {
    Value::Array(
        rejected
            .iter()
            .map(|r| {
                let mut m = Map::new();
                m.insert("index".into(), Value::from(r.index));
                m.insert("field".into(), Value::from(r.field.as_str()));
                m.insert("reason".into(), Value::from(r.reason.as_str()));
                Value::Object(m)
            })
            .collect(),
    )
}

/// Where the request came from, for browser-originated events.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestInfo<'a> {
    /// The request's `User-Agent` header.
    pub user_agent: Option<&'a str>,
    /// The client address (peer, or from proxy headers when trusted), untruncated.
    pub client_ip: Option<String>,
}

impl<'a> RequestInfo<'a> {
    /// From a request. With `trust_proxy_headers`, `CF-Connecting-IP` and then the first
    /// `X-Forwarded-For` entry win over the peer address (only turn that on behind a proxy that
    /// sets them, or clients can claim any address).
    pub fn from_request(req: &'a HttpRequest, trust_proxy_headers: bool) -> Self {
        let mut client_ip = None;
        if trust_proxy_headers {
            client_ip = req
                .header("cf-connecting-ip")
                .map(str::trim)
                .or_else(|| {
                    req.header("x-forwarded-for")
                        .and_then(|v| v.split(',').next())
                        .map(str::trim)
                })
                .filter(|s| !s.is_empty())
                .map(str::to_owned);
        }
        if client_ip.is_none() {
            client_ip = req.peer_ip.map(|ip| ip.to_string());
        }
        RequestInfo {
            user_agent: req.header("user-agent").filter(|s| !s.trim().is_empty()),
            client_ip,
        }
    }
}

/// The result of normalizing a batch: the good events, ready to store, and the bad ones.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NormalizedBatch {
    /// Validated, normalized and scrubbed events, in request order.
    pub events: Vec<Interaction>,
    /// Rejected events, in request order.
    pub rejected: Vec<Rejection>,
}

/// A decoded request: its events still as JSON, the key it presented and its `sentAt`.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedRequest {
    /// The route it came in on.
    pub route: Route,
    /// The presented write key (from the body, the query or the `Authorization` header, in
    /// that order of preference), if any.
    pub key: Option<String>,
    /// The batch's `sentAt` (client clock).
    pub sent_at: Option<Millis>,
    /// Events the client dropped before it could send them (the CROW envelope's `dr`), else 0.
    pub client_dropped: u64,
    events: Vec<Value>,
    batch_context: Option<Map<String, Value>>,
    /// JSON pointer of the events array (`None` for a single-event body).
    prefix: Option<&'static str>,
    /// The envelope used CROW's compact names.
    compact: bool,
    /// The body's longest string, from the pre-parse scan.
    max_string_bytes: usize,
}

impl ParsedRequest {
    /// Number of events in the request.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// True when the request carries no event.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Validates and normalizes every event for the authenticated org, and scrubs PII with the
    /// org's pseudonym key. Never fails as a whole: bad events land in `rejected`.
    pub fn normalize(
        self,
        org_id: &str,
        pseudonym_key: &[u8],
        info: &RequestInfo<'_>,
        limits: &Limits,
        received_at: Millis,
    ) -> NormalizedBatch {
        let cx = common::EventCx {
            org_id,
            pseudonym_key,
            received_at,
            sent_at: self.sent_at,
            source: self.route.source(),
            request_ua: info.user_agent,
            request_ip: info.client_ip.as_deref(),
            batch_context: self.batch_context.as_ref(),
            forced_type: match self.route {
                Route::Segment(t) => t,
                _ => None,
            },
            max_string_bytes: limits.max_string_bytes,
            check_strings: self.max_string_bytes > limits.max_string_bytes,
            compact: self.compact,
            ua_cache: Default::default(),
        };
        let posthog = self.route == Route::PostHog;
        normalize_all(self.events, &cx, self.prefix, posthog, 0)
    }
}

fn normalize_all(
    events: Vec<Value>,
    cx: &common::EventCx<'_>,
    prefix: Option<&'static str>,
    posthog: bool,
    first_index: usize,
) -> NormalizedBatch {
    let mut out = NormalizedBatch {
        events: Vec::with_capacity(events.len()),
        rejected: Vec::new(),
    };
    for (i, event) in events.into_iter().enumerate() {
        let index = first_index + i;
        let result = if posthog {
            posthog::event(event, cx)
        } else {
            segment::event(event, cx)
        };
        match result {
            Ok(e) => out.events.push(e),
            Err(bad) => out.rejected.push(Rejection {
                index,
                field: match prefix {
                    Some(p) => format!("{p}/{index}{}", bad.field),
                    None => bad.field.into_owned(),
                },
                reason: bad.reason.into_owned(),
            }),
        }
    }
    out
}

/// Normalizes events given as JSON values in Segment's or CROW's long layout (compact names are
/// accepted too) for bulk import: validated, id'd and scrubbed like ingested events, with
/// [`Source::Import`], each event's own `sentAt` for skew correction, and no request user agent
/// or address. Field paths are `/{index}/...`.
pub fn normalize_import(
    events: Vec<Value>,
    org_id: &str,
    pseudonym_key: &[u8],
    limits: &Limits,
    received_at: Millis,
) -> NormalizedBatch {
    normalize_import_from(events, 0, org_id, pseudonym_key, limits, received_at)
}

/// [`normalize_import`] for events that start at `first_index` of a larger import.
pub(crate) fn normalize_import_from(
    events: Vec<Value>,
    first_index: usize,
    org_id: &str,
    pseudonym_key: &[u8],
    limits: &Limits,
    received_at: Millis,
) -> NormalizedBatch {
    let check_strings = events
        .iter()
        .any(|e| common::longest_string(e) > limits.max_string_bytes);
    let cx = common::EventCx {
        org_id,
        pseudonym_key,
        received_at,
        sent_at: None,
        source: Source::Import,
        request_ua: None,
        request_ip: None,
        batch_context: None,
        forced_type: None,
        max_string_bytes: limits.max_string_bytes,
        check_strings,
        compact: false,
        ua_cache: Default::default(),
    };
    normalize_all(events, &cx, Some(""), false, first_index)
}

/// Decodes a request body and splits it into events (see the module docs for each route).
/// Refuses the whole request for body-level problems: size, encoding, UTF-8, depth, JSON
/// syntax, shape, too many events.
pub fn parse_request(req: &HttpRequest, route: Route, limits: &Limits) -> Result<ParsedRequest, RequestError> {
    let (body, scan) = body::decode(req, route, limits)?;
    let mut parsed = match route {
        Route::Crow => envelope(
            body,
            route,
            &["k", "writeKey"],
            &["sa", "sentAt"],
            &[("b", true), ("batch", false)],
            &["c", "context"],
        )?,
        Route::Segment(None) => envelope(
            body,
            route,
            &["writeKey"],
            &["sentAt"],
            &[("batch", false)],
            &["context"],
        )?,
        Route::Segment(Some(_)) => match body {
            Value::Object(mut m) => {
                let key = take_key(&mut m, &["writeKey"]);
                ParsedRequest {
                    route,
                    key,
                    sent_at: None, // the event's own `sentAt` is read per event
                    client_dropped: 0,
                    events: vec![Value::Object(m)],
                    batch_context: None,
                    prefix: None,
                    compact: false,
                    max_string_bytes: 0,
                }
            }
            _ => {
                return Err(RequestError::new(
                    RequestErrorKind::BadRequest,
                    "expected a JSON object: one Segment event",
                ));
            }
        },
        Route::PostHog => envelope(
            body,
            route,
            &["api_key"],
            &["sent_at"],
            &[("batch", false), ("data", false)],
            &[],
        )?,
    };
    parsed.max_string_bytes = scan.max_string_bytes;
    if parsed.events.len() > limits.max_batch {
        return Err(RequestError::new(
            RequestErrorKind::TooManyEvents,
            format!(
                "{} events in one request, more than the limit of {}; split the batch",
                parsed.events.len(),
                limits.max_batch
            ),
        )
        .with_extra(serde_json::json!({ "max_batch": limits.max_batch })));
    }
    if route == Route::PostHog {
        if parsed.key.is_none() {
            parsed.key = posthog::token(&parsed.events);
        }
        if parsed.sent_at.is_none() {
            parsed.sent_at = req
                .query_param("sent_at")
                .or_else(|| req.query_param("_"))
                .and_then(|s| crow_core::time::parse_timestamp(&s));
        }
    }
    if parsed.key.is_none() {
        parsed.key = key_from_query_or_header(req, route);
    }
    Ok(parsed)
}

/// Splits a batch envelope (`{key, sentAt, batch: [...], context}`), a bare array, or a single
/// event.
fn envelope(
    body: Value,
    route: Route,
    key_names: &[&str],
    sent_at_names: &[&str],
    batch_names: &[(&'static str, bool)],
    context_names: &[&str],
) -> Result<ParsedRequest, RequestError> {
    let mut parsed = ParsedRequest {
        route,
        key: None,
        sent_at: None,
        client_dropped: 0,
        events: Vec::new(),
        batch_context: None,
        prefix: None,
        compact: false,
        max_string_bytes: 0,
    };
    match body {
        Value::Array(events) => {
            parsed.prefix = Some("");
            parsed.events = events;
            if route == Route::PostHog
                && let Some(Value::Object(first)) = parsed.events.first()
            {
                parsed.key = first.get("api_key").and_then(Value::as_str).map(str::to_owned);
            }
        }
        Value::Object(mut m) => {
            parsed.key = take_key(&mut m, key_names);
            let batch = batch_names
                .iter()
                .find(|(name, _)| m.get(*name).is_some_and(Value::is_array))
                .copied();
            match batch {
                Some((name, compact)) => {
                    let Some(Value::Array(events)) = m.remove(name) else {
                        unreachable!()
                    };
                    parsed.events = events;
                    parsed.prefix = Some(match name {
                        "b" => "/b",
                        "data" => "/data",
                        _ => "/batch",
                    });
                    parsed.compact = compact;
                    for name in sent_at_names {
                        if let Some(v) = m.remove(*name).filter(|v| !v.is_null()) {
                            parsed.sent_at = Some(crow_core::time::timestamp_from_json(&v).ok_or_else(|| {
                                RequestError::new(
                                    RequestErrorKind::BadRequest,
                                    format!(
                                        "/{name}: not a timestamp (expected ISO 8601 or milliseconds since the epoch)"
                                    ),
                                )
                            })?);
                            break;
                        }
                    }
                    if route == Route::Crow {
                        parsed.client_dropped = client_dropped(&mut m)?;
                    }
                    for name in context_names {
                        match m.remove(*name) {
                            Some(Value::Object(c)) if !c.is_empty() => {
                                parsed.batch_context = Some(c);
                                break;
                            }
                            Some(Value::Object(_)) | Some(Value::Null) | None => {}
                            Some(_) => {
                                return Err(RequestError::new(
                                    RequestErrorKind::BadRequest,
                                    format!("/{name}: expected an object"),
                                ));
                            }
                        }
                    }
                }
                None => {
                    if let Some((name, _)) = batch_names
                        .iter()
                        .find(|(name, _)| m.get(*name).is_some_and(|v| !v.is_null()))
                    {
                        return Err(RequestError::new(
                            RequestErrorKind::BadRequest,
                            format!("/{name}: expected an array of events"),
                        ));
                    }
                    if route == Route::Segment(None) {
                        return Err(RequestError::new(
                            RequestErrorKind::BadRequest,
                            "missing `batch`: expected {\"batch\": [events...]}",
                        ));
                    }
                    // A single event; its `sentAt` is read per event.
                    parsed.events.push(Value::Object(m));
                }
            }
        }
        _ => {
            return Err(RequestError::new(
                RequestErrorKind::BadRequest,
                "expected a JSON object (a batch or one event) or an array of events",
            ));
        }
    }
    Ok(parsed)
}

/// The CROW envelope's `dr` (or `dropped`): a non-negative integer; `null` or absent is 0.
fn client_dropped(m: &mut Map<String, Value>) -> Result<u64, RequestError> {
    for name in ["dr", "dropped"] {
        match m.remove(name) {
            None | Some(Value::Null) => {}
            Some(v) => {
                return v.as_u64().ok_or_else(|| {
                    RequestError::new(
                        RequestErrorKind::BadRequest,
                        format!("/{name}: expected a non-negative integer"),
                    )
                });
            }
        }
    }
    Ok(0)
}

fn take_key(m: &mut Map<String, Value>, names: &[&str]) -> Option<String> {
    for name in names {
        if let Some(Value::String(s)) = m.remove(*name)
            && !s.trim().is_empty()
        {
            return Some(s.trim().to_owned());
        }
    }
    None
}

pub(crate) fn key_from_query_or_header(req: &HttpRequest, route: Route) -> Option<String> {
    let query_names: &[&str] = match route {
        Route::Crow => &["k", "writeKey"],
        Route::Segment(_) => &["writeKey"],
        Route::PostHog => &["token", "api_key"],
    };
    for name in query_names {
        if let Some(k) = req.query_param(name).filter(|k| !k.trim().is_empty()) {
            return Some(k.trim().to_owned());
        }
    }
    let auth = req.header("authorization")?.trim();
    let (scheme, rest) = auth.split_once(' ')?;
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        return (!rest.is_empty()).then(|| rest.to_owned());
    }
    if scheme.eq_ignore_ascii_case("basic") {
        use base64::Engine as _;
        let decoded = base64::engine::general_purpose::STANDARD.decode(rest).ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let (user, pass) = text.split_once(':').unwrap_or((text.as_str(), ""));
        let key = if user.is_empty() { pass } else { user };
        return (!key.is_empty()).then(|| key.to_owned());
    }
    None
}

#[cfg(test)]
mod tests;
