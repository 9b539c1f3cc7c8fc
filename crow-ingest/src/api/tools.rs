//! Tools: CROW's data as a dozen outcome-shaped operations, for the surfaces that are not REST
//! (the MCP server, the A2A agent) and the in-process entry every surface shares ([`invoke`]).
//!
//! Nothing here reads a store. A tool checks and converts its arguments, then runs one REST
//! operation in-process through [`invoke`]: the same route table, the same permission check,
//! the same validation, the same audit row for a mutation and the same live notice for an
//! insight as `/api/v1`. So GraphQL, MCP and A2A cannot drift from REST, or from each other.
//!
//! Each [`Tool`] has a JSON Schema for its arguments (derived from the Rust type that parses
//! them, so the two cannot disagree), enums for closed choices, hints for clients
//! ([`Hints`]: read-only, destructive, idempotent, open world) and the permission it needs.
//! Answers are bounded: a list takes at most [`MAX_LIMIT`] rows and a JSON answer at most
//! [`MAX_OUTPUT`] bytes; a list that would be larger is fetched again with fewer rows, so its
//! `next_cursor` still continues exactly where the answer stops.
//!
//! ```
//! use crow_ingest::api::tools;
//! let search = tools::find("search").unwrap();
//! assert!(search.hints.read_only);
//! assert_eq!(search.input_schema()["required"][0], "query");
//! ```

use std::net::IpAddr;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};
use utoipa::{PartialSchema, ToSchema};

use super::routes::{Access, Matched};
use super::{Api, execute, problem, routes};
use crate::http::HttpRequest;
use crow_core::access::{Permission, Principal};
use crow_core::export::{ExportFormat, ExportResource};
use crow_core::model::{EventType, FrameEventKind};
use crow_core::ports::{Interval, SentimentSource};

/// The most rows a list tool answers at once.
pub const MAX_LIMIT: u32 = 100;
/// The largest answer a tool gives, in bytes of JSON.
pub const MAX_OUTPUT: usize = 64 * 1024;

/// What a client may assume about a tool (MCP's tool annotations).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hints {
    /// It changes nothing.
    pub read_only: bool,
    /// It may delete or overwrite data (meaningful when not read-only).
    pub destructive: bool,
    /// Calling it twice with the same arguments has no further effect.
    pub idempotent: bool,
    /// It reaches beyond CROW's own data (the web, other services).
    pub open_world: bool,
}

const READ: Hints = Hints {
    read_only: true,
    destructive: false,
    idempotent: true,
    open_world: false,
};

/// One tool.
#[derive(Debug)]
pub struct Tool {
    /// Its name (`snake_case`, stable).
    pub name: &'static str,
    /// A short human title.
    pub title: &'static str,
    /// What it answers and when to use it.
    pub description: &'static str,
    /// The permission the caller's role must have.
    pub permission: Permission,
    /// Hints for clients.
    pub hints: Hints,
    /// The REST operation it runs: method and path pattern (its answer is the tool's answer).
    pub route: (&'static str, &'static str),
    schema: fn() -> Value,
    run: Runner,
}

/// A tool's arguments as the REST operation to run, or a reason they are wrong.
type Runner = fn(&Value) -> Result<Plan, Failure>;

/// The REST operation a tool runs, and whether its answer is a page that may be re-asked smaller.
struct Plan {
    inv: Invocation,
    paged: bool,
}

impl Tool {
    /// The JSON Schema (draft 2020-12, as OpenAPI 3.1 writes it) of the arguments: an object.
    pub fn input_schema(&self) -> Value {
        (self.schema)()
    }

    /// The JSON Schema of its answer: the REST operation's success response as the OpenAPI
    /// document describes it, self-contained (components it refers to under `$defs`).
    pub fn output_schema(&self) -> Value {
        output_schema(self.route.0, self.route.1)
    }

    /// Whether a caller may run it.
    pub fn allowed(&self, principal: &Principal) -> bool {
        principal.allows(self.permission)
    }
}

/// A refused or failed call: the REST problem it became.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    /// The HTTP status REST would answer.
    pub status: u16,
    /// The problem's machine-readable code (`invalid_parameter`, `forbidden`, `not_found`, ...).
    pub code: String,
    /// The problem's title.
    pub title: String,
    /// What went wrong and what to change.
    pub detail: String,
    /// The whole RFC 9457 problem document (with `errors` naming fields, where there are).
    pub body: Value,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.title, self.detail)
    }
}

impl std::error::Error for Failure {}

impl Failure {
    fn new(status: u16, code: &str, title: &str, detail: impl Into<String>) -> Self {
        let detail = detail.into();
        Failure {
            status,
            code: code.to_owned(),
            title: title.to_owned(),
            body: json!({"type": format!("https://crow.dev/problems/{code}"), "title": title, "status": status, "detail": detail}),
            detail,
        }
    }

    fn from_problem(status: u16, body: &[u8]) -> Self {
        let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let text = |k: &str| body.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
        let code = text("type");
        Failure {
            status,
            code: code.rsplit('/').next().unwrap_or_default().to_owned(),
            title: text("title"),
            detail: text("detail"),
            body,
        }
    }

    fn invalid_arguments(reason: impl Into<String>) -> Self {
        Failure::new(400, "invalid_arguments", "Invalid arguments", reason)
    }
}

/// One REST operation to run in-process.
#[derive(Debug, Clone, PartialEq)]
pub struct Invocation {
    /// `GET`, `POST`, `PATCH` or `DELETE`.
    pub method: &'static str,
    /// The path, e.g. `/api/v1/interactions` (ids percent-encoded where they need it).
    pub path: String,
    /// Query parameters (a name may repeat).
    pub query: Vec<(String, String)>,
    /// The JSON body.
    pub body: Option<Value>,
    /// The caller's address, for the audit row of a mutation.
    pub client_ip: Option<IpAddr>,
}

impl Invocation {
    /// A `GET` of `path` with no parameters.
    pub fn get(path: impl Into<String>) -> Self {
        Invocation {
            method: "GET",
            path: path.into(),
            query: Vec::new(),
            body: None,
            client_ip: None,
        }
    }

    /// A `POST` of `body` to `path`.
    pub fn post(path: impl Into<String>, body: Value) -> Self {
        Invocation {
            method: "POST",
            body: Some(body),
            ..Invocation::get(path)
        }
    }

    /// Adds a query parameter when it has a value.
    pub fn param(mut self, name: &str, value: Option<impl ToString>) -> Self {
        if let Some(v) = value {
            self.query.push((name.to_owned(), v.to_string()));
        }
        self
    }

    fn request(&self) -> HttpRequest {
        let query = (!self.query.is_empty()).then(|| {
            form_urlencoded::Serializer::new(String::new())
                .extend_pairs(&self.query)
                .finish()
        });
        let body = match &self.body {
            Some(b) => serde_json::to_vec(b).unwrap_or_default(),
            None => Vec::new(),
        };
        let mut headers = vec![("x-crow-surface".to_owned(), "in-process".to_owned())];
        if self.body.is_some() {
            headers.push(("content-type".to_owned(), "application/json".to_owned()));
        }
        HttpRequest {
            method: self.method.to_owned(),
            path: self.path.clone(),
            query,
            headers,
            body,
            peer_ip: self.client_ip,
        }
    }
}

/// Runs one REST operation as `principal`, in-process: the route's permission is checked (a
/// `403` [`Failure`] naming it), its handler validates exactly as over HTTP, a successful
/// mutation writes its audit row and an insight its live notice. Answers the JSON body
/// (`null` for `204 No Content`). Public and signed-link routes are not reachable this way.
pub async fn invoke(api: &Api<'_>, principal: &Principal, inv: &Invocation) -> Result<Value, Failure> {
    let req = inv.request();
    let (route, params) = match routes::find(inv.method, &inv.path) {
        Matched::Route(route, params) => (route, params),
        Matched::WrongMethod(_) | Matched::NotFound => {
            return Err(Failure::new(
                404,
                "not_found",
                "Not found",
                format!("no operation {} {}", inv.method, inv.path),
            ));
        }
    };
    let Access::Role(permission) = route.access else {
        return Err(Failure::new(
            404,
            "not_found",
            "Not found",
            format!("{} {} is not an operation for a caller", inv.method, inv.path),
        ));
    };
    if !principal.allows(permission) {
        let resp = problem::forbidden(principal, permission);
        return Err(Failure::from_problem(resp.status, &resp.body));
    }
    let resp = execute(api, &req, route, params, Some(principal.clone())).await;
    if !(200..300).contains(&resp.status) {
        return Err(Failure::from_problem(resp.status, &resp.body));
    }
    if resp.body.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_slice(&resp.body).map_err(|e| {
        Failure::new(
            500,
            "internal",
            "Internal error",
            format!("{} {} answered something that is not JSON: {e}", inv.method, inv.path),
        )
    })
}

/// Runs the tool `name` with `args` (a JSON object) as `principal`.
///
/// Errors: an unknown tool is a `404` `unknown_tool`; arguments that do not fit the tool's
/// schema a `400` `invalid_arguments` naming the field; then whatever REST answers (`403`
/// naming the permission, `404` for another org's ids, `503` without a model, ...).
pub async fn call(
    api: &Api<'_>,
    principal: &Principal,
    name: &str,
    args: &Value,
    client_ip: Option<IpAddr>,
) -> Result<Value, Failure> {
    let tool = find(name).ok_or_else(|| {
        let names: Vec<&str> = TOOLS.iter().map(|t| t.name).collect();
        Failure::new(
            404,
            "unknown_tool",
            "Unknown tool",
            format!("no tool {name:?}; the tools are {}", names.join(", ")),
        )
    })?;
    if !tool.allowed(principal) {
        let resp = problem::forbidden(principal, tool.permission);
        return Err(Failure::from_problem(resp.status, &resp.body));
    }
    let args = match args {
        Value::Null => Value::Object(Map::new()),
        Value::Object(_) => args.clone(),
        _ => return Err(Failure::invalid_arguments("the arguments must be a JSON object")),
    };
    let Plan { mut inv, paged } = (tool.run)(&args)?;
    inv.client_ip = client_ip;
    loop {
        let out = invoke(api, principal, &inv).await?;
        let size = serde_json::to_vec(&out).map(|v| v.len()).unwrap_or(usize::MAX);
        if size <= MAX_OUTPUT {
            return Ok(out);
        }
        // A page too large to answer: ask again for half as many rows, so `next_cursor` stays exact.
        let rows = out.get("data").and_then(Value::as_array).map_or(0, Vec::len);
        if !paged || rows <= 1 {
            return Err(Failure::new(
                413,
                "output_too_large",
                "Answer too large",
                format!("the answer is {size} bytes, over the {MAX_OUTPUT}-byte bound of a tool; narrow the arguments"),
            ));
        }
        let smaller = (rows / 2).max(1);
        inv.query.retain(|(k, _)| k != "limit");
        inv.query.push(("limit".to_owned(), smaller.to_string()));
    }
}

/// The tool called `name`.
pub fn find(name: &str) -> Option<&'static Tool> {
    TOOLS.iter().find(|t| t.name == name)
}

/// Every tool.
pub static TOOLS: &[Tool] = &[
    Tool {
        name: "search",
        title: "Search what customers said",
        description: "Semantic search (sentence embeddings) over website and app texts (feedback, \
            reviews, search queries, chat), social media mentions, or the product catalog. Answers \
            the best hits first, each with its id, similarity score and a snippet. Use it to find \
            what customers say about a topic in their own words.",
        permission: Permission::ReadData,
        hints: READ,
        route: ("GET", "/api/v1/search"),
        schema: schema::<SearchArgs>,
        run: |a| {
            let a: SearchArgs = parse(a)?;
            let index = match a.source.unwrap_or(SearchSource::Interactions) {
                SearchSource::Interactions => "interactions",
                SearchSource::Mentions => "social",
                SearchSource::Products => "products",
            };
            let inv = Invocation::get("/api/v1/search")
                .param("q", Some(a.query))
                .param("index", Some(index))
                .param("k", a.limit);
            Ok(Plan { inv, paged: false })
        },
    },
    Tool {
        name: "sentiment_breakdown",
        title: "Sentiment over time",
        description: "How positive or negative customers were, per hour, day or week: for each \
            period the number of texts, the mean score and the positive, neutral and negative \
            counts. Source: website and app texts, or social media mentions.",
        permission: Permission::ReadData,
        hints: READ,
        route: ("GET", "/api/v1/insights/sentiment"),
        schema: schema::<SentimentArgs>,
        run: |a| {
            let a: SentimentArgs = parse(a)?;
            let inv = Invocation::get("/api/v1/insights/sentiment")
                .param("source", a.source.map(SentimentSource::as_str))
                .param("interval", a.interval.map(Interval::as_str))
                .param("since", a.since)
                .param("until", a.until);
            Ok(Plan { inv, paged: false })
        },
    },
    Tool {
        name: "top_entities",
        title: "Most mentioned products, brands and entities",
        description: "The products, brands, competitors and other entities customers mention most \
            in a time window, with how often and how positively. Personal data (emails, phone \
            numbers) is never counted.",
        permission: Permission::ReadData,
        hints: READ,
        route: ("GET", "/api/v1/insights/entities"),
        schema: schema::<EntitiesArgs>,
        run: |a| {
            let a: EntitiesArgs = parse(a)?;
            let inv = Invocation::get("/api/v1/insights/entities")
                .param("source", a.source.map(SentimentSource::as_str))
                .param("kind", a.kind)
                .param("since", a.since)
                .param("until", a.until)
                .param("limit", a.limit);
            Ok(Plan { inv, paged: false })
        },
    },
    Tool {
        name: "funnel",
        title: "Conversion funnel",
        description: "How many people went through each step of a funnel, in order, within a time \
            window: the count per step, the drop-off and the overall conversion. A step is \
            `page:/path-prefix`, `track:Event Name`, `screen:Name` or a bare event type such as \
            `identify`.",
        permission: Permission::ReadData,
        hints: READ,
        route: ("GET", "/api/v1/insights/funnel"),
        schema: schema::<FunnelArgs>,
        run: |a| {
            let a: FunnelArgs = parse(a)?;
            if !(2..=10).contains(&a.steps.len()) {
                return Err(Failure::invalid_arguments(format!(
                    "steps: a funnel has 2 to 10 steps, not {}",
                    a.steps.len()
                )));
            }
            let mut inv = Invocation::get("/api/v1/insights/funnel");
            for s in a.steps {
                inv = inv.param("step", Some(s));
            }
            Ok(Plan {
                inv: inv.param("since", a.since).param("until", a.until),
                paged: false,
            })
        },
    },
    Tool {
        name: "traffic_summary",
        title: "Website traffic",
        description: "Website and app traffic in a time window: events, unique visitors, sessions, \
            page views, bounce and duration figures, the top pages and the top referrers.",
        permission: Permission::ReadData,
        hints: READ,
        route: ("GET", "/api/v1/insights/traffic"),
        schema: schema::<TrafficArgs>,
        run: |a| {
            let a: TrafficArgs = parse(a)?;
            let inv = Invocation::get("/api/v1/insights/traffic")
                .param("since", a.since)
                .param("until", a.until)
                .param("top", a.top);
            Ok(Plan { inv, paged: false })
        },
    },
    Tool {
        name: "list_sessions",
        title: "Visitor sessions",
        description: "Sessions (a visitor's run of events with no 30-minute gap), newest first: \
            start, end, duration, page views, entry and exit pages, referrer, device. Optionally \
            one person's. Paged: pass `next_cursor` back as `cursor`.",
        permission: Permission::ReadData,
        hints: READ,
        route: ("GET", "/api/v1/sessions"),
        schema: schema::<SessionsArgs>,
        run: |a| {
            let a: SessionsArgs = parse(a)?;
            let inv = Invocation::get("/api/v1/sessions")
                .param("person_id", a.person_id)
                .param("since", a.since)
                .param("limit", Some(a.limit.unwrap_or(20)))
                .param("cursor", a.cursor);
            Ok(Plan { inv, paged: true })
        },
    },
    Tool {
        name: "list_interactions",
        title: "Website and app events",
        description: "What visitors did (page views, tracked events, identifies...), newest first, \
            filtered by type, event name, session, person and time. Paged: pass `next_cursor` back \
            as `cursor`.",
        permission: Permission::ReadData,
        hints: READ,
        route: ("GET", "/api/v1/interactions"),
        schema: schema::<InteractionsArgs>,
        run: |a| {
            let a: InteractionsArgs = parse(a)?;
            let inv = Invocation::get("/api/v1/interactions")
                .param("type", a.r#type.map(EventType::as_str))
                .param("name", a.name)
                .param("session_id", a.session_id)
                .param("person_id", a.person_id)
                .param("since", a.since)
                .param("until", a.until)
                .param("limit", Some(a.limit.unwrap_or(20)))
                .param("cursor", a.cursor);
            Ok(Plan { inv, paged: true })
        },
    },
    Tool {
        name: "list_mentions",
        title: "Social media mentions",
        description: "Public social media posts that mention the organization (RSS, Mastodon, \
            Bluesky, Reddit, Hacker News), newest first, with their sentiment; filtered by \
            platform, source and time. Paged: pass `next_cursor` back as `cursor`.",
        permission: Permission::ReadData,
        hints: READ,
        route: ("GET", "/api/v1/mentions"),
        schema: schema::<MentionsArgs>,
        run: |a| {
            let a: MentionsArgs = parse(a)?;
            let inv = Invocation::get("/api/v1/mentions")
                .param("platform", a.platform.map(Platform::as_str))
                .param("source", a.source)
                .param("since", a.since)
                .param("until", a.until)
                .param("limit", Some(a.limit.unwrap_or(20)))
                .param("cursor", a.cursor);
            Ok(Plan { inv, paged: true })
        },
    },
    Tool {
        name: "find_products",
        title: "Product catalog",
        description: "Products of the catalog by name prefix, category or brand, with price, \
            availability and attributes. Paged: pass `next_cursor` back as `cursor`.",
        permission: Permission::ReadData,
        hints: READ,
        route: ("GET", "/api/v1/products"),
        schema: schema::<ProductsArgs>,
        run: |a| {
            let a: ProductsArgs = parse(a)?;
            let inv = Invocation::get("/api/v1/products")
                .param("q", a.name_prefix)
                .param("category", a.category)
                .param("brand", a.brand)
                .param("limit", Some(a.limit.unwrap_or(20)))
                .param("cursor", a.cursor);
            Ok(Plan { inv, paged: true })
        },
    },
    Tool {
        name: "people_counts",
        title: "Store cameras: people and motion",
        description: "CCTV frame events, newest first: people entering and leaving through a line, \
            occupancy and dwell per zone, motion; filtered by camera, kind, zone and time. No \
            image or face is ever part of an event. Paged: pass `next_cursor` back as `cursor`.",
        permission: Permission::ReadData,
        hints: READ,
        route: ("GET", "/api/v1/cctv/events"),
        schema: schema::<FrameEventsArgs>,
        run: |a| {
            let a: FrameEventsArgs = parse(a)?;
            let inv = Invocation::get("/api/v1/cctv/events")
                .param("camera", a.camera)
                .param("kind", a.kind.map(wire))
                .param("zone", a.zone)
                .param("since", a.since)
                .param("until", a.until)
                .param("limit", Some(a.limit.unwrap_or(20)))
                .param("cursor", a.cursor);
            Ok(Plan { inv, paged: true })
        },
    },
    Tool {
        name: "analyze_text",
        title: "Analyze texts",
        description: "Sentiment, entities (matched against the catalog), language and key phrases \
            of up to 20 texts, in order. Stores nothing.",
        permission: Permission::Analyze,
        hints: READ,
        route: ("POST", "/api/v1/analyze"),
        schema: schema::<AnalyzeArgs>,
        run: |a| {
            let a: AnalyzeArgs = parse(a)?;
            if !(1..=20).contains(&a.texts.len()) {
                return Err(Failure::invalid_arguments(format!(
                    "texts: 1 to 20 texts, not {}",
                    a.texts.len()
                )));
            }
            Ok(Plan {
                inv: Invocation::post("/api/v1/analyze", json!({"texts": a.texts})),
                paged: false,
            })
        },
    },
    Tool {
        name: "create_export",
        title: "Export data to a file",
        description: "Starts an export of interactions, sessions, mentions, products or frame events \
            (optionally within a time window) to CSV, NDJSON or Parquet. Answers the export's id \
            and status at once; the file is written in the background: call `get_export` until \
            its status is `succeeded`, then download from its `download_url` (valid 15 minutes).",
        permission: Permission::Export,
        hints: Hints {
            read_only: false,
            destructive: false,
            idempotent: false,
            open_world: false,
        },
        route: ("POST", "/api/v1/exports"),
        schema: schema::<ExportArgs>,
        run: |a| {
            let a: ExportArgs = parse(a)?;
            let mut body = json!({"resource": a.resource, "format": a.format.unwrap_or(ExportFormat::Csv)});
            for (k, v) in [("since", a.since), ("until", a.until)] {
                if let Some(v) = v {
                    body[k] = Value::String(v);
                }
            }
            Ok(Plan {
                inv: Invocation::post("/api/v1/exports", body),
                paged: false,
            })
        },
    },
    Tool {
        name: "get_export",
        title: "Export status and download link",
        description: "Where an export stands (`queued`, `running`, `succeeded`, `failed`), its row \
            count and size, and, once it succeeded, a signed download link valid 15 minutes.",
        permission: Permission::Export,
        hints: READ,
        route: ("GET", "/api/v1/exports/{id}"),
        schema: schema::<ExportIdArgs>,
        run: |a| {
            let a: ExportIdArgs = parse(a)?;
            if a.id.is_empty()
                || !a
                    .id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            {
                return Err(Failure::invalid_arguments("id: an export id such as exp_0a1b2c..."));
            }
            Ok(Plan {
                inv: Invocation::get(format!("/api/v1/exports/{}", a.id)),
                paged: false,
            })
        },
    },
];

/// The success response schema of `method path` in the OpenAPI document, with the components
/// it reaches copied under `$defs` (and its `$ref`s pointing there), so it stands alone.
fn output_schema(method: &str, path: &str) -> Value {
    static DOC: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    let doc = DOC.get_or_init(|| serde_json::to_value(super::openapi::document()).unwrap_or(Value::Null));
    let op = &doc["paths"][path][method.to_ascii_lowercase()];
    let schema = ["200", "201", "202"]
        .iter()
        .map(|s| &op["responses"][*s]["content"]["application/json"]["schema"])
        .find(|s| !s.is_null())
        .cloned()
        .unwrap_or_else(|| json!({"type": "object"}));
    let components = &doc["components"]["schemas"];
    let mut defs = Map::new();
    let mut todo = Vec::new();
    refs(&schema, &mut todo);
    while let Some(name) = todo.pop() {
        if defs.contains_key(&name) {
            continue;
        }
        let def = components[&name].clone();
        refs(&def, &mut todo);
        defs.insert(name, def);
    }
    // MCP wants an object schema at the top, not a reference to one.
    let mut out = match schema["$ref"]
        .as_str()
        .and_then(|r| r.strip_prefix("#/components/schemas/"))
    {
        Some(name) => components[name].clone(),
        None => schema,
    };
    if !defs.is_empty()
        && let Value::Object(o) = &mut out
    {
        o.insert("$defs".into(), Value::Object(defs));
    }
    let text = out.to_string().replace("#/components/schemas/", "#/$defs/");
    serde_json::from_str(&text).unwrap_or(out)
}

/// The component names `v` refers to.
fn refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(o) => {
            if let Some(Value::String(r)) = o.get("$ref")
                && let Some(name) = r.strip_prefix("#/components/schemas/")
            {
                out.push(name.to_owned());
            }
            o.values().for_each(|v| refs(v, out));
        }
        Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

/// A value's wire name (its serde string).
fn wire<T: serde::Serialize>(v: T) -> String {
    match serde_json::to_value(v) {
        Ok(Value::String(s)) => s,
        _ => String::new(),
    }
}

fn schema<T: PartialSchema>() -> Value {
    serde_json::to_value(T::schema()).unwrap_or_else(|_| json!({"type": "object"}))
}

/// The arguments as `T`; a mismatch names the argument at fault (`interval: unknown variant ...`).
fn parse<T: DeserializeOwned>(args: &Value) -> Result<T, Failure> {
    serde_path_to_error::deserialize(args).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        Failure::invalid_arguments(match path.as_str() {
            "." | "" => inner.to_string(),
            p => format!("{p}: {inner}"),
        })
    })
}

/// Where to search.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
enum SearchSource {
    /// Website and app texts.
    Interactions,
    /// Social media mentions.
    Mentions,
    /// The product catalog.
    Products,
}

/// Arguments of `search`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct SearchArgs {
    /// What to look for, in plain words.
    #[schema(min_length = 1, max_length = 500)]
    query: String,
    /// Where to search (default `interactions`).
    #[schema(inline)]
    source: Option<SearchSource>,
    /// How many hits (1 to 50, default 10).
    #[schema(minimum = 1, maximum = 50)]
    limit: Option<u32>,
}

/// Arguments of `sentiment_breakdown`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct SentimentArgs {
    /// Website and app texts (default) or social media mentions.
    #[schema(inline)]
    source: Option<SentimentSource>,
    /// Bucket size (default `day`).
    #[schema(inline)]
    interval: Option<Interval>,
    /// Window start: RFC 3339 or epoch milliseconds (default 30 days before `until`).
    since: Option<String>,
    /// Window end (default now).
    until: Option<String>,
}

/// Arguments of `top_entities`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct EntitiesArgs {
    /// Website and app texts (default) or social media mentions.
    #[schema(inline)]
    source: Option<SentimentSource>,
    /// Only this kind of entity (`product`, `brand`, `competitor`, `organization`, `location`...).
    #[schema(max_length = 40)]
    kind: Option<String>,
    /// Window start: RFC 3339 or epoch milliseconds (default 30 days before `until`).
    since: Option<String>,
    /// Window end (default now).
    until: Option<String>,
    /// How many entities (1 to 100, default 20).
    #[schema(minimum = 1, maximum = 100)]
    limit: Option<u32>,
}

/// Arguments of `funnel`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct FunnelArgs {
    /// 2 to 10 steps in order: `page:/pricing`, `track:Signed Up`, `identify`.
    #[schema(min_items = 2, max_items = 10)]
    steps: Vec<String>,
    /// Window start: RFC 3339 or epoch milliseconds (default 30 days before `until`).
    since: Option<String>,
    /// Window end (default now).
    until: Option<String>,
}

/// Arguments of `traffic_summary`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct TrafficArgs {
    /// Window start: RFC 3339 or epoch milliseconds (default 30 days before `until`).
    since: Option<String>,
    /// Window end (default now).
    until: Option<String>,
    /// How many top pages and referrers (1 to 100, default 10).
    #[schema(minimum = 1, maximum = 100)]
    top: Option<u32>,
}

/// Arguments of `list_sessions`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct SessionsArgs {
    /// Only this person's sessions.
    person_id: Option<String>,
    /// Sessions started at or after (RFC 3339 or epoch milliseconds).
    since: Option<String>,
    /// Rows per page (1 to 100, default 20).
    #[schema(minimum = 1, maximum = 100)]
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// Arguments of `list_interactions`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct InteractionsArgs {
    /// Only this type.
    #[schema(inline)]
    r#type: Option<EventType>,
    /// Only this event name (tracked events) or page name.
    name: Option<String>,
    /// Only this session.
    session_id: Option<String>,
    /// Only this person.
    person_id: Option<String>,
    /// From this time (RFC 3339 or epoch milliseconds).
    since: Option<String>,
    /// Before this time.
    until: Option<String>,
    /// Rows per page (1 to 100, default 20).
    #[schema(minimum = 1, maximum = 100)]
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// A social platform.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
enum Platform {
    /// RSS and Atom feeds.
    Rss,
    /// Mastodon.
    Mastodon,
    /// Bluesky.
    Bluesky,
    /// Reddit.
    Reddit,
    /// Hacker News.
    Hackernews,
}

impl Platform {
    fn as_str(self) -> &'static str {
        match self {
            Platform::Rss => "rss",
            Platform::Mastodon => "mastodon",
            Platform::Bluesky => "bluesky",
            Platform::Reddit => "reddit",
            Platform::Hackernews => "hackernews",
        }
    }
}

/// Arguments of `list_mentions`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct MentionsArgs {
    /// Only this platform.
    #[schema(inline)]
    platform: Option<Platform>,
    /// Only this configured source.
    source: Option<String>,
    /// Posted at or after (RFC 3339 or epoch milliseconds).
    since: Option<String>,
    /// Posted before.
    until: Option<String>,
    /// Rows per page (1 to 100, default 20).
    #[schema(minimum = 1, maximum = 100)]
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// Arguments of `find_products`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ProductsArgs {
    /// Only names starting with this (case-insensitive).
    name_prefix: Option<String>,
    /// Only this category (exact name).
    category: Option<String>,
    /// Only this brand (exact).
    brand: Option<String>,
    /// Rows per page (1 to 100, default 20).
    #[schema(minimum = 1, maximum = 100)]
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// Arguments of `people_counts`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct FrameEventsArgs {
    /// Only this camera.
    camera: Option<String>,
    /// Only this kind of event.
    #[schema(inline)]
    kind: Option<FrameEventKind>,
    /// Only this zone or line.
    zone: Option<String>,
    /// From this time (RFC 3339 or epoch milliseconds).
    since: Option<String>,
    /// Before this time.
    until: Option<String>,
    /// Rows per page (1 to 100, default 20).
    #[schema(minimum = 1, maximum = 100)]
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// Arguments of `analyze_text`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct AnalyzeArgs {
    /// 1 to 20 texts.
    #[schema(min_items = 1, max_items = 20)]
    texts: Vec<String>,
}

/// Arguments of `create_export`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ExportArgs {
    /// What to export.
    #[schema(inline)]
    resource: ExportResource,
    /// The file format (default `csv`).
    #[schema(inline)]
    format: Option<ExportFormat>,
    /// Rows at or after this time (RFC 3339).
    since: Option<String>,
    /// Rows before this time (RFC 3339).
    until: Option<String>,
}

/// Arguments of `get_export`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ExportIdArgs {
    /// The export id `create_export` answered.
    #[schema(min_length = 1, max_length = 64)]
    id: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_snake_case_and_schemas_are_self_contained_objects() {
        let mut names = std::collections::BTreeSet::new();
        for t in TOOLS {
            assert!(names.insert(t.name), "{} twice", t.name);
            assert!(
                t.name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{}",
                t.name
            );
            let s = t.input_schema();
            assert_eq!(s["type"], "object", "{}: {s}", t.name);
            assert!(s["properties"].is_object(), "{}: {s}", t.name);
            assert!(
                !s.to_string().contains("$ref"),
                "{}: a schema must not refer to components: {s}",
                t.name
            );
            assert!(t.description.len() > 40, "{}", t.name);
        }
        assert!((5..=15).contains(&TOOLS.len()));
    }

    #[test]
    fn closed_choices_are_enums() {
        let s = find("search").unwrap().input_schema();
        let e = &s["properties"]["source"];
        assert!(e.to_string().contains("\"mentions\""), "{e}");
        let s = find("create_export").unwrap().input_schema();
        assert!(s["properties"]["format"].to_string().contains("parquet"), "{s}");
        assert!(s["properties"]["resource"].to_string().contains("frame_events"), "{s}");
        assert_eq!(s["required"], json!(["resource"]));
    }

    #[test]
    fn every_tool_runs_a_route_that_checks_the_same_permission() {
        let sample = |name: &str| match name {
            "search" => json!({"query": "x"}),
            "funnel" => json!({"steps": ["page:/", "identify"]}),
            "analyze_text" => json!({"texts": ["x"]}),
            "create_export" => json!({"resource": "interactions"}),
            "get_export" => json!({"id": "exp_1"}),
            _ => json!({}),
        };
        for t in TOOLS {
            let plan = (t.run)(&sample(t.name)).unwrap_or_else(|e| panic!("{}: {e}", t.name));
            let Matched::Route(route, _) = routes::find(plan.inv.method, &plan.inv.path) else {
                panic!("{}: no route {} {}", t.name, plan.inv.method, plan.inv.path)
            };
            assert_eq!(route.access, Access::Role(t.permission), "{}", t.name);
            assert_eq!((route.method, route.path), t.route, "{}", t.name);
            let out = t.output_schema();
            let text = out.to_string();
            assert!(!text.contains("#/components/"), "{}: {text}", t.name);
            for name in text.split("#/$defs/").skip(1).map(|r| r.split('"').next().unwrap()) {
                assert!(out["$defs"][name].is_object(), "{}: {name} is not in $defs", t.name);
            }
            assert_eq!(out["type"], "object", "{}: {out}", t.name);
            assert_eq!(t.hints.read_only, route.audit.is_none(), "{}", t.name);
        }
    }

    #[test]
    fn arguments_are_checked_and_the_field_is_named() {
        let e = (find("search").unwrap().run)(&json!({"query": "x", "sauce": 1}))
            .err()
            .unwrap();
        assert_eq!(e.status, 400);
        assert!(e.detail.contains("sauce"), "{}", e.detail);
        let e = (find("sentiment_breakdown").unwrap().run)(&json!({"interval": "fortnight"}))
            .err()
            .unwrap();
        assert!(e.detail.starts_with("interval: "), "{}", e.detail);
        assert!(
            e.detail.contains("fortnight") && e.detail.contains("week"),
            "{}",
            e.detail
        );
        let e = (find("funnel").unwrap().run)(&json!({"steps": ["page:/", 7]}))
            .err()
            .unwrap();
        assert!(e.detail.starts_with("steps[1]: "), "{}", e.detail);
        let e = (find("funnel").unwrap().run)(&json!({"steps": ["page:/"]}))
            .err()
            .unwrap();
        assert!(e.detail.starts_with("steps"), "{}", e.detail);
        let e = (find("get_export").unwrap().run)(&json!({"id": "../x"})).err().unwrap();
        assert!(e.detail.starts_with("id"), "{}", e.detail);
    }
}
