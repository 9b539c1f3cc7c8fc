//! The MCP server: CROW's tools, two resources and a few prompt templates for AI assistants,
//! over the official Rust SDK ([`rmcp`]).
//!
//! An adapter and nothing more: the tools are [`tools::TOOLS`] and every call runs
//! [`tools::call`], which runs one REST operation in-process (the same permission check,
//! validation, audit row and size bound as `/api/v1`). Two transports:
//!
//! - **stdio** (`crow mcp`, [`serve_stdio`]): one caller for the whole process, the principal
//!   of the API key the command was given.
//! - **streamable HTTP** at `/mcp` ([`route`]), stateless (no MCP session to keep; any
//!   instance answers any request) with plain JSON answers. Every request carries
//!   `Authorization: Bearer <secret API key or session token>`; without a valid one the answer
//!   is a `401` problem (with `WWW-Authenticate: Bearer`) before MCP sees the request. Each
//!   request counts against the key's REST API rate limit.
//!
//! Both speak every protocol revision rmcp knows, 2024-11-05 to 2026-07-28: the Python client
//! `mcp` 2.x discovers and uses 2026-07-28 (no handshake, metadata on each request); older
//! clients (and `mode="legacy"`) use the `initialize` handshake. The end-to-end test drives both.
//!
//! What a caller sees:
//! - `tools/list` lists only the tools the caller's role allows (a viewer sees no
//!   `create_export`), each with its input schema, title and annotations (`readOnlyHint`,
//!   `destructiveHint`, `idempotentHint`, `openWorldHint`).
//! - `tools/call` answers the tool's JSON as structured content (and as text). A refused or
//!   failed call (bad arguments, a missing permission, an unknown id) is a tool result with
//!   `isError: true` whose text is the problem's title and detail (naming the field) and
//!   whose structured content is the RFC 9457 problem; only an unknown tool name is a
//!   protocol error (`-32602`).
//! - Answers are bounded to [`MAX_OUTPUT_BYTES`] of JSON; an answer over it is cut (its longest
//!   lists shortened) and says so in a second text block and in `_meta["crow/truncated"]`.
//! - Resources: [`SCHEMA_URI`] (the org, the caller's role and tools, the data model and its
//!   counts) and [`INSIGHTS_URI`] (traffic, sentiment and top entities of the last 7 days),
//!   both `application/json`, computed through the tools on every read.
//! - Prompts: `weekly_report`, `investigate_sentiment(product)`, `funnel_review(steps)` and
//!   `store_footfall`, each a user message that says which tools to call with which arguments.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::request::Parts;
use axum::http::{Request, Response, header};
use crow_core::access::Principal;
use crow_ingest::api::tools::{self, Failure, Invocation};
use rmcp::model::{
    CacheScope, CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Extensions,
    GetPromptRequestParams, GetPromptResponse, GetPromptResult, Implementation, JsonObject, ListPromptsResult,
    ListResourcesResult, ListToolsResult, MetaObject, PaginatedRequestParams, Prompt, PromptArgument, PromptMessage,
    ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult, Resource, ResourceContents,
    ServerCapabilities, ServerConfig, ToolAnnotations,
};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler, ServiceExt as _};
use serde_json::{Map, Value, json};
use tokio::sync::watch;

use crate::{Backends, ServerError, now_millis, to_axum};

/// The most bytes of JSON a tool answer or a resource carries ([`tools::MAX_OUTPUT`]).
pub const MAX_OUTPUT_BYTES: usize = tools::MAX_OUTPUT;
/// The org's data model: what the tools read, with counts.
pub const SCHEMA_URI: &str = "crow://org/schema";
/// Where `crow serve` answers MCP (streamable HTTP).
pub const PATH: &str = "/mcp";
/// Traffic, sentiment and the most mentioned entities of the last 7 days.
pub const INSIGHTS_URI: &str = "crow://insights/latest";
const DAY_MS: i64 = 86_400_000;
/// The window of the counts in [`SCHEMA_URI`], in days (insights take at most 1100).
const COUNTS_DAYS: i64 = 1095;

const INSTRUCTIONS: &str = "CROW is customer-interaction intelligence for one organization: website and app \
events and sessions, what customers wrote (feedback, reviews, searches, chats) with its sentiment and \
entities, social media mentions, store camera people counts, the product catalog. Every tool answers \
JSON about this organization only. Times are RFC 3339 (or epoch milliseconds); windows default to the \
last 30 days. Lists are paged: pass `next_cursor` back as `cursor`. Start with the resource \
crow://insights/latest for the last week, or crow://org/schema for what there is.";

/// The MCP server handler: who calls ([`CrowMcp::for_principal`] for stdio,
/// [`CrowMcp::per_request`] for HTTP) and the backends the tools run on.
#[derive(Debug, Clone)]
pub struct CrowMcp {
    backends: Arc<Backends>,
    caller: Caller,
    run_jobs: bool,
}

#[derive(Debug, Clone)]
enum Caller {
    /// One principal for the whole connection (stdio).
    Fixed(Principal),
    /// Each HTTP request's own, authenticated by [`route`] and carried in its extensions.
    PerRequest,
}

impl CrowMcp {
    /// A server for one caller (stdio). After a tool that changes something (an export), it
    /// runs the queued jobs itself unless another process (`crow serve`) is the worker.
    pub fn for_principal(backends: Arc<Backends>, principal: Principal) -> Self {
        CrowMcp {
            backends,
            caller: Caller::Fixed(principal),
            run_jobs: true,
        }
    }

    /// A server whose caller is each HTTP request's principal, put in the request's extensions
    /// by [`route`].
    pub fn per_request(backends: Arc<Backends>) -> Self {
        CrowMcp {
            backends,
            caller: Caller::PerRequest,
            run_jobs: false,
        }
    }

    /// The caller and their address, from the connection or the HTTP request.
    fn caller(&self, extensions: &Extensions) -> Result<(Principal, Option<IpAddr>), McpError> {
        match &self.caller {
            Caller::Fixed(p) => Ok((p.clone(), None)),
            Caller::PerRequest => {
                let parts = extensions.get::<Parts>();
                let principal = parts.and_then(|p| p.extensions.get::<Principal>()).cloned();
                let ip = parts
                    .and_then(|p| p.extensions.get::<ConnectInfo<SocketAddr>>())
                    .map(|c| c.0.ip());
                match principal {
                    Some(p) => Ok((p, ip)),
                    None => Err(McpError::invalid_request(
                        "no credential: send `Authorization: Bearer <secret API key>`",
                        None,
                    )),
                }
            }
        }
    }

    /// Runs the tool `name` as `principal`: its JSON as structured content, a [`Failure`] as an
    /// `isError` result, an unknown name as a protocol error.
    pub async fn call_as(
        &self,
        principal: &Principal,
        client_ip: Option<IpAddr>,
        name: &str,
        arguments: Option<JsonObject>,
    ) -> Result<CallToolResult, McpError> {
        let Some(tool) = tools::find(name) else {
            let names: Vec<&str> = tools::TOOLS.iter().map(|t| t.name).collect();
            return Err(McpError::invalid_params(
                format!("unknown tool {name:?}; the tools are {}", names.join(", ")),
                None,
            ));
        };
        let args = Value::Object(arguments.unwrap_or_default());
        let text = self.backends.text();
        let api = self.backends.api(&text);
        let out = tools::call(&api, principal, tool.name, &args, client_ip).await;
        match out {
            Ok(value) => {
                if !tool.hints.read_only {
                    self.after_mutation();
                }
                Ok(answer(value))
            }
            Err(f) => Ok(failure(&f)),
        }
    }

    /// A mutation may have queued work (an export): wake the server's worker, or for stdio run
    /// the jobs here unless another process is the worker.
    fn after_mutation(&self) {
        self.backends.wake.notify_one();
        if self.run_jobs {
            let backends = self.backends.clone();
            tokio::spawn(async move {
                if let Err(e) = backends.drain_if_worker().await {
                    tracing::warn!(error = %e, "could not run the queued jobs");
                }
            });
        }
    }

    /// Reads the resource `uri` as `principal`.
    pub async fn read_as(
        &self,
        principal: &Principal,
        client_ip: Option<IpAddr>,
        uri: &str,
    ) -> Result<ReadResourceResult, McpError> {
        let value = match uri {
            SCHEMA_URI => self.org_schema(principal, client_ip).await,
            INSIGHTS_URI => self.latest_insights(principal, client_ip).await,
            _ => {
                return Err(McpError::resource_not_found(
                    format!("no resource {uri:?}; the resources are {SCHEMA_URI} and {INSIGHTS_URI}"),
                    None,
                ));
            }
        };
        let (mut value, note) = bound(value, MAX_OUTPUT_BYTES);
        if let (Some(note), Value::Object(m)) = (note, &mut value) {
            m.insert("truncated".into(), Value::String(note));
        }
        let text = serde_json::to_string(&value).unwrap_or_default();
        Ok(ReadResourceResult::new(vec![
            ResourceContents::text(text, uri).with_mime_type("application/json"),
        ]))
    }

    /// `crow://org/schema`: the org, the caller's role and tools, what each kind of record
    /// holds (from the OpenAPI components) and how many there are.
    async fn org_schema(&self, principal: &Principal, ip: Option<IpAddr>) -> Value {
        let text = self.backends.text();
        let api = self.backends.api(&text);
        let org = tools::invoke(&api, principal, &Invocation::get("/api/v1/organization"))
            .await
            .unwrap_or_else(|f| problem(&f));
        // Counts over the longest window the insights take (three years).
        let since = crow_core::time::format_millis(now_millis() - COUNTS_DAYS * DAY_MS);
        let args = json!({"since": since, "top": 1});
        let traffic = tools::call(&api, principal, "traffic_summary", &args, ip).await;
        let counts = match traffic {
            Ok(t) => json!({
                "since": t.get("since"),
                "events": t.get("events"),
                "visitors": t.get("visitors"),
                "sessions": t.get("sessions"),
                "page_views": t.get("page_views"),
                "bot_events": t.get("bot_events"),
                "pii_scrubbed": t.get("pii_scrubbed"),
            }),
            Err(f) => problem(&f),
        };
        let tools: Vec<Value> = tools::TOOLS
            .iter()
            .filter(|t| t.allowed(principal))
            .map(|t| json!({"name": t.name, "title": t.title, "read_only": t.hints.read_only}))
            .collect();
        json!({
            "org": org,
            "role": principal.role.as_str(),
            "tools": tools,
            "records": records(),
            "counts": counts,
            "conventions": {
                "times": "RFC 3339 strings in answers; `since`/`until` take RFC 3339 or epoch milliseconds",
                "windows": "insights default to the 30 days before `until` (default now)",
                "pages": "lists answer {\"data\": [...], \"next_cursor\": string|null}; pass next_cursor back as cursor",
                "privacy": "emails, phone numbers and other personal data are scrubbed before anything is stored",
            },
        })
    }

    /// `crow://insights/latest`: the last 7 days, through the tools.
    async fn latest_insights(&self, principal: &Principal, ip: Option<IpAddr>) -> Value {
        let text = self.backends.text();
        let api = self.backends.api(&text);
        let now = now_millis();
        let since = crow_core::time::format_millis(now - 7 * DAY_MS);
        let until = crow_core::time::format_millis(now);
        let window = json!({"since": since, "until": until});
        let mut out = Map::new();
        out.insert("window".into(), window.clone());
        for (key, tool, mut args) in [
            ("traffic", "traffic_summary", json!({"top": 5})),
            ("sentiment", "sentiment_breakdown", json!({"interval": "day"})),
            (
                "mention_sentiment",
                "sentiment_breakdown",
                json!({"interval": "day", "source": "mentions"}),
            ),
            ("top_entities", "top_entities", json!({"limit": 10})),
        ] {
            args["since"] = window["since"].clone();
            args["until"] = window["until"].clone();
            let v = tools::call(&api, principal, tool, &args, ip)
                .await
                .unwrap_or_else(|f| problem(&f));
            out.insert(key.into(), v);
        }
        Value::Object(out)
    }
}

/// A tool's JSON as a result: structured content plus the same JSON as text, bounded.
fn answer(value: Value) -> CallToolResult {
    let (value, note) = bound(value, MAX_OUTPUT_BYTES);
    let mut result = CallToolResult::structured(value);
    if let Some(note) = note {
        result.content.push(ContentBlock::text(note.clone()));
        let mut meta = MetaObject::new();
        meta.0.insert("crow/truncated".into(), Value::String(note));
        result.meta = Some(meta);
    }
    result
}

/// A refused or failed call as an `isError` result: the detail as text, the problem as
/// structured content.
fn failure(f: &Failure) -> CallToolResult {
    let mut result = CallToolResult::error(vec![ContentBlock::text(format!("{}: {}", f.title, f.detail))]);
    result.structured_content = Some(f.body.clone());
    result
}

/// A failure inside a resource: the problem in place of the part it spoils.
fn problem(f: &Failure) -> Value {
    json!({"error": {"status": f.status, "title": f.title, "detail": f.detail}})
}

/// Cuts `value` to at most `max` bytes of JSON by shortening its longest lists (the largest
/// first, keeping their first items); answers the value and, when it was cut, a note saying
/// what was dropped. A value that is too large even with every list emptied becomes a short
/// object that says so.
pub fn bound(mut value: Value, max: usize) -> (Value, Option<String>) {
    let size = |v: &Value| serde_json::to_vec(v).map_or(usize::MAX, |b| b.len());
    let original = size(&value);
    if original <= max {
        return (value, None);
    }
    let mut cuts: Vec<String> = Vec::new();
    // Each round shortens the largest list still holding items, as little as needed.
    for _ in 0..64 {
        if size(&value) <= max {
            break;
        }
        let mut lists = Vec::new();
        arrays(&value, String::new(), &mut lists);
        let Some((path, len, _)) = lists
            .into_iter()
            .filter(|(_, len, _)| *len > 0)
            .max_by_key(|(_, _, bytes)| *bytes)
        else {
            break;
        };
        // The most items that fit (binary search; zero if none does).
        let (mut lo, mut hi) = (0usize, len);
        while lo < hi {
            let mid = (lo + hi).div_ceil(2);
            let mut probe = value.clone();
            truncate_at(&mut probe, &path, mid);
            if size(&probe) <= max {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        truncate_at(&mut value, &path, lo);
        let name = if path.is_empty() {
            "the answer".to_owned()
        } else {
            format!("`{path}`")
        };
        cuts.push(format!("{name} keeps {lo} of {len} items"));
    }
    if size(&value) > max {
        let note = format!(
            "the answer is {original} bytes, over the {max}-byte bound, even with its lists cut; narrow the arguments"
        );
        return (json!({"truncated": note}), Some(note));
    }
    let note = format!(
        "Truncated to fit {max} bytes ({original} bytes in full): {}. Ask for fewer rows (`limit`) or a narrower window.",
        cuts.join(", ")
    );
    (value, Some(note))
}

/// Every list in `v` as (JSON-pointer-like path with `.` between keys, items, bytes).
fn arrays(v: &Value, path: String, out: &mut Vec<(String, usize, usize)>) {
    match v {
        Value::Array(items) => {
            let bytes = serde_json::to_vec(v).map_or(0, |b| b.len());
            out.push((path.clone(), items.len(), bytes));
            for (i, item) in items.iter().enumerate() {
                arrays(item, join(&path, &i.to_string()), out);
            }
        }
        Value::Object(m) => {
            for (k, item) in m {
                arrays(item, join(&path, k), out);
            }
        }
        _ => {}
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

fn truncate_at(v: &mut Value, path: &str, len: usize) {
    let mut at = v;
    if !path.is_empty() {
        for key in path.split('.') {
            let next = match at {
                Value::Object(m) => m.get_mut(key),
                Value::Array(items) => key.parse::<usize>().ok().and_then(|i| items.get_mut(i)),
                _ => None,
            };
            match next {
                Some(n) => at = n,
                None => return,
            }
        }
    }
    if let Value::Array(items) = at {
        items.truncate(len);
    }
}

/// The MCP tools `principal` may call, in [`tools::TOOLS`] order.
pub fn tools_for(principal: &Principal) -> Vec<rmcp::model::Tool> {
    tools::TOOLS
        .iter()
        .filter(|t| t.allowed(principal))
        .map(mcp_tool)
        .collect()
}

/// One tool as MCP describes it.
pub fn mcp_tool(t: &tools::Tool) -> rmcp::model::Tool {
    let schema = match t.input_schema() {
        Value::Object(m) => m,
        _ => Map::from_iter([("type".to_owned(), Value::String("object".into()))]),
    };
    let annotations = ToolAnnotations::with_title(t.title)
        .read_only(t.hints.read_only)
        .destructive(t.hints.destructive)
        .idempotent(t.hints.idempotent)
        .open_world(t.hints.open_world);
    let tool = rmcp::model::Tool::new(t.name, t.description, Arc::new(schema))
        .with_title(t.title)
        .with_annotations(annotations);
    // The REST answer's schema: clients may check every structured result against it.
    match t.output_schema() {
        Value::Object(m) => tool.with_raw_output_schema(Arc::new(m)),
        _ => tool,
    }
}

/// What each kind of record holds: the OpenAPI component of its answer, where there is one.
fn records() -> Value {
    let doc: Value = serde_json::from_slice(crow_ingest::api::openapi::json()).unwrap_or(Value::Null);
    let schemas = &doc["components"]["schemas"];
    let kinds = [
        (
            "interactions",
            "What visitors did on the website and in apps: page views, tracked events, identifies; texts carry sentiment and entities",
            &["Interaction"][..],
            "list_interactions, search, sentiment_breakdown, top_entities",
        ),
        (
            "sessions",
            "A visitor's run of events with no 30-minute gap",
            &["Session"][..],
            "list_sessions, traffic_summary, funnel",
        ),
        (
            "mentions",
            "Public social media posts about the organization, with sentiment",
            &["SocialMention"][..],
            "list_mentions, search (source mentions), sentiment_breakdown (source mentions)",
        ),
        (
            "products",
            "The product catalog",
            &["Product"][..],
            "find_products, search (source products), top_entities",
        ),
        (
            "frame_events",
            "Store camera events: line crossings, occupancy, dwell, motion (never images or faces)",
            &["FrameEvent"][..],
            "people_counts",
        ),
        (
            "exports",
            "Files of records written in the background",
            &["ExportView"][..],
            "create_export, get_export",
        ),
    ];
    let mut out = Map::new();
    for (name, about, components, tools) in kinds {
        let fields = components
            .iter()
            .find_map(|c| schemas.get(*c).filter(|s| !s.is_null()))
            .map(summarize)
            .unwrap_or(Value::Null);
        out.insert(name.into(), json!({"about": about, "tools": tools, "fields": fields}));
    }
    Value::Object(out)
}

/// A component schema as `{field: "type: description"}`.
fn summarize(schema: &Value) -> Value {
    let Some(props) = schema.get("properties").and_then(Value::as_object) else {
        return Value::Null;
    };
    let fields = props.iter().map(|(k, p)| {
        let ty = match p.get("type") {
            Some(Value::String(t)) => t.clone(),
            Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect::<Vec<_>>().join("|"),
            _ if p.get("$ref").is_some() || p.get("allOf").is_some() || p.get("oneOf").is_some() => "object".into(),
            _ => "any".into(),
        };
        let about = p.get("description").and_then(Value::as_str).unwrap_or_default();
        let text = if about.is_empty() { ty } else { format!("{ty}: {about}") };
        (k.clone(), Value::String(text))
    });
    Value::Object(fields.collect())
}

/// The resources every caller may read.
pub fn resources() -> Vec<Resource> {
    vec![
        Resource::new(SCHEMA_URI, "org_schema")
            .with_title("The organization's data model")
            .with_description(
                "The org, your role and the tools it allows, what each kind of record holds and how many there are.",
            )
            .with_mime_type("application/json"),
        Resource::new(INSIGHTS_URI, "latest_insights")
            .with_title("The last 7 days")
            .with_description(
                "Traffic, sentiment per day (texts and social mentions) and the most mentioned entities of the last 7 days.",
            )
            .with_mime_type("application/json"),
    ]
}

/// The prompt templates.
pub fn prompts() -> Vec<Prompt> {
    let days = || {
        PromptArgument::new("days")
            .with_description("How many days back to look (1 to 90; default 7)")
            .with_required(false)
    };
    vec![
        Prompt::new(
            "weekly_report",
            Some("A report of the last week: traffic, sentiment, what customers talked about, social mentions"),
            Some(vec![
                days(),
                PromptArgument::new("focus")
                    .with_description("A topic to pay special attention to, e.g. delivery or checkout")
                    .with_required(false),
            ]),
        )
        .with_title("Weekly report"),
        Prompt::new(
            "investigate_sentiment",
            Some("Why customers feel as they do about one product: the texts and mentions behind its sentiment"),
            Some(vec![
                PromptArgument::new("product")
                    .with_description("The product (its name as customers write it)")
                    .with_required(true),
                days(),
            ]),
        )
        .with_title("Investigate sentiment about a product"),
        Prompt::new(
            "funnel_review",
            Some("Where people drop out of a funnel, and what they said there"),
            Some(vec![
                PromptArgument::new("steps")
                    .with_description(
                        "2 to 10 steps in order, separated by commas: page:/path, track:Event Name, screen:Name or identify",
                    )
                    .with_required(true),
                days(),
            ]),
        )
        .with_title("Review a conversion funnel"),
        Prompt::new(
            "store_footfall",
            Some("How many people came into the store, when, and how long they stayed"),
            Some(vec![
                PromptArgument::new("camera")
                    .with_description("Only this camera (default: all)")
                    .with_required(false),
                days(),
            ]),
        )
        .with_title("Store footfall"),
    ]
}

/// The prompt `name` filled in with `args`.
pub fn prompt(name: &str, args: &JsonObject, now: i64) -> Result<GetPromptResult, McpError> {
    let arg = |k: &str| {
        args.get(k)
            .and_then(|v| match v {
                Value::String(s) => Some(s.trim().to_owned()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
            .filter(|s| !s.is_empty())
    };
    let days =
        match arg("days") {
            None => 7,
            Some(d) => d.parse::<i64>().ok().filter(|d| (1..=90).contains(d)).ok_or_else(|| {
                McpError::invalid_params(format!("days: a whole number from 1 to 90, not {d:?}"), None)
            })?,
        };
    let since = crow_core::time::format_millis(now - days * DAY_MS);
    let window = format!("since \"{since}\" (the last {days} days)");
    let (description, text) = match name {
        "weekly_report" => {
            let focus = arg("focus")
                .map(|f| {
                    format!(
                        "\n5. Pay special attention to {f:?}: call `search` with query {f:?} (source interactions, \
                         then mentions) and quote what customers said."
                    )
                })
                .unwrap_or_default();
            (
                "A report of the last week".to_owned(),
                format!(
                    "Write a short report on how the business went, {window}.\n\
                     1. Call `traffic_summary` with since {since:?}: visitors, sessions, page views, top pages and referrers.\n\
                     2. Call `sentiment_breakdown` with since {since:?} and interval \"day\" (and again with source \
                     \"mentions\"): how positive customers were each day; point out the worst day.\n\
                     3. Call `top_entities` with since {since:?}: the products, brands and competitors customers \
                     mentioned most, and how positively.\n\
                     4. Call `list_mentions` with since {since:?} for notable social media posts.{focus}\n\
                     End with three concrete recommendations. Cite record ids for every claim about a specific text."
                ),
            )
        }
        "investigate_sentiment" => {
            let product = arg("product")
                .ok_or_else(|| McpError::invalid_params("product: the product to investigate is required", None))?;
            (
                format!("Why customers feel as they do about {product}"),
                format!(
                    "Investigate how customers feel about {product:?}, {window}.\n\
                     1. Call `find_products` with name_prefix {product:?} to identify the product.\n\
                     2. Call `top_entities` with since {since:?} and kind \"product\": where {product:?} ranks and its sentiment.\n\
                     3. Call `search` with query {product:?} (source \"interactions\", then \"mentions\") for what \
                     customers wrote about it.\n\
                     4. Call `sentiment_breakdown` with since {since:?} to see whether the mood changed over time.\n\
                     Group the complaints and the praise into themes, quote two texts for each theme (with their \
                     ids), and say what should be fixed first."
                ),
            )
        }
        "funnel_review" => {
            let raw = arg("steps").ok_or_else(|| {
                McpError::invalid_params("steps: 2 to 10 funnel steps, separated by commas, are required", None)
            })?;
            let steps: Vec<&str> = raw.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
            if !(2..=10).contains(&steps.len()) {
                return Err(McpError::invalid_params(
                    format!("steps: a funnel has 2 to 10 steps, not {}", steps.len()),
                    None,
                ));
            }
            let list = serde_json::to_string(&steps).unwrap_or_default();
            (
                format!("Review of the funnel {}", steps.join(" → ")),
                format!(
                    "Review the conversion funnel {list}, {window}.\n\
                     1. Call `funnel` with steps {list} and since {since:?}: people per step, drop-off, conversion.\n\
                     2. Find the step that loses the most people.\n\
                     3. Call `list_sessions` with since {since:?} and `list_interactions` around that step to see \
                     what people did instead.\n\
                     4. Call `search` for complaints about that step (e.g. its page or event name) and quote them \
                     with their ids.\n\
                     Propose two changes that would lift conversion at that step, and how to measure them."
                ),
            )
        }
        "store_footfall" => {
            let camera = arg("camera");
            let which = camera
                .as_deref()
                .map(|c| format!(" with camera {c:?}"))
                .unwrap_or_default();
            (
                "Store footfall".to_owned(),
                format!(
                    "Describe the store's footfall, {window}.\n\
                     1. Call `people_counts`{which} with since {since:?} and kind \"line_in\" (and \"line_out\"): \
                     people entering and leaving; page through with `cursor` if needed.\n\
                     2. Call it again with kind \"occupancy\" and \"dwell\": how full each zone was and how long \
                     people stayed.\n\
                     3. Compare with `traffic_summary` (since {since:?}) of the website.\n\
                     Name the busiest hours and days, and say where staff would help most."
                ),
            )
        }
        _ => {
            return Err(McpError::invalid_params(
                format!(
                    "no prompt {name:?}; the prompts are weekly_report, investigate_sentiment, funnel_review, store_footfall"
                ),
                None,
            ));
        }
    };
    Ok(
        GetPromptResult::new(vec![PromptMessage::new_text(rmcp::model::Role::User, text)])
            .with_description(description),
    )
}

impl ServerHandler for CrowMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_resources()
                .enable_prompts()
                .build(),
        )
        .with_server_info(
            Implementation::new("crow", env!("CARGO_PKG_VERSION"))
                .with_title("CROW")
                .with_description("Customer-interaction intelligence: events, sentiment, mentions, footfall, exports"),
        )
        .with_instructions(INSTRUCTIONS)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        let (principal, _) = self.caller(&context.extensions)?;
        // The list depends on the caller's role: no shared cache may serve it to another.
        Ok(ListToolsResult::with_all_items(tools_for(&principal)).with_cache_scope(CacheScope::Private))
    }

    fn get_tool(&self, name: &str) -> Option<rmcp::model::Tool> {
        tools::find(name).map(mcp_tool)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let (principal, ip) = self.caller(&context.extensions)?;
        let result = self.call_as(&principal, ip, &request.name, request.arguments).await?;
        Ok(result.into())
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        self.caller(&context.extensions)?;
        Ok(ListResourcesResult::with_all_items(resources()))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        let (principal, ip) = self.caller(&context.extensions)?;
        Ok(self.read_as(&principal, ip, &request.uri).await?.into())
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, McpError> {
        self.caller(&context.extensions)?;
        Ok(ListPromptsResult::with_all_items(prompts()))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, McpError> {
        self.caller(&context.extensions)?;
        let args = request.arguments.unwrap_or_default();
        Ok(prompt(&request.name, &args, now_millis())?.into())
    }
}

/// Serves MCP over standard input and output as `principal` until the client closes stdin.
/// Nothing else may write to stdout meanwhile (logs go to stderr).
pub async fn serve_stdio(backends: Arc<Backends>, principal: Principal) -> Result<(), ServerError> {
    let io = |e: String| ServerError::Io(std::io::Error::other(e));
    let running = CrowMcp::for_principal(backends, principal)
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|e| io(format!("MCP over stdio: {e}")))?;
    running
        .waiting()
        .await
        .map_err(|e| io(format!("MCP over stdio: {e}")))?;
    Ok(())
}

/// The state of the `/mcp` route.
struct Http {
    backends: Arc<Backends>,
    service: StreamableHttpService<CrowMcp, NeverSessionManager>,
}

/// The `/mcp` route: streamable HTTP, stateless, JSON answers. Rate-limits and authenticates
/// every request before MCP sees it; stops answering when `shutdown` turns true.
pub fn route<S: Clone + Send + Sync + 'static>(
    backends: Arc<Backends>,
    mut shutdown: watch::Receiver<bool>,
) -> axum::routing::MethodRouter<S> {
    // Every request must carry a valid key, so a page a browser was tricked into (DNS
    // rebinding) gets nothing: the Host check, loopback names only by default, would just lock
    // out a server that listens on a public address.
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true)
        .with_sse_keep_alive(None)
        .disable_allowed_hosts();
    let stop = config.cancellation_token.clone();
    tokio::spawn(async move {
        let _ = shutdown.wait_for(|s| *s).await;
        stop.cancel();
    });
    let factory = backends.clone();
    let service = StreamableHttpService::new(
        move || Ok(CrowMcp::per_request(factory.clone())),
        Arc::new(NeverSessionManager::default()),
        config,
    );
    axum::routing::any(handle).with_state(Arc::new(Http { backends, service }))
}

async fn handle(State(http): State<Arc<Http>>, req: Request<Body>) -> Response<Body> {
    let started = Instant::now();
    let method = req.method().clone();
    let span = tracing::info_span!("request", method = %method, path = PATH);
    let resp = tracing::Instrument::instrument(serve_http(&http, req), span).await;
    let status = resp.status().as_u16();
    http.backends
        .metrics
        .record_request("mcp", status, started.elapsed().as_secs_f64());
    if status >= 500 {
        tracing::warn!(%method, path = PATH, status, "request failed");
    } else {
        tracing::debug!(%method, path = PATH, status, "request");
    }
    resp
}

/// Rate limit, authenticate, then MCP.
async fn serve_http(http: &Http, mut req: Request<Body>) -> Response<Body> {
    let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    let authorization = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if let Err(resp) = http.backends.rate_limit(PATH, authorization.as_deref(), peer) {
        return to_axum(resp);
    }
    match http.backends.authenticate(authorization.as_deref(), peer).await {
        Ok(principal) => {
            req.extensions_mut().insert(principal);
            http.service.handle(req).await.map(Body::new)
        }
        Err(resp) => {
            let challenged = resp
                .headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("www-authenticate"));
            if challenged {
                to_axum(resp)
            } else {
                to_axum(resp.with_header("www-authenticate", "Bearer realm=\"crow\""))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crow_core::access::Role;

    use crate::ServerConfig as CrowConfig;

    /// Backends on a fresh data directory (lexicon tier, no vector indexes) and an owner of a new org.
    async fn setup(dir: &std::path::Path) -> (Arc<Backends>, Principal) {
        let mut config = CrowConfig::new(dir, "127.0.0.1:0".parse().unwrap());
        config.nlp.use_models = false;
        let backends = Arc::new(Backends::open(&config).unwrap());
        let creds = backends.store().create_org("Acme", now_millis()).await.unwrap();
        let owner = backends
            .authenticate(Some(&format!("Bearer {}", creds.api_key)), None)
            .await
            .unwrap();
        (backends, owner)
    }

    fn as_role(p: &Principal, role: Role) -> Principal {
        Principal { role, ..p.clone() }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn tools_listed_are_the_ones_the_role_allows_with_annotations_and_schemas() {
        let dir = tempfile::tempdir().unwrap();
        let (_, owner) = setup(dir.path()).await;
        for role in Role::ALL {
            let p = as_role(&owner, role);
            let listed: Vec<String> = tools_for(&p).iter().map(|t| t.name.to_string()).collect();
            let expected: Vec<&str> = tools::TOOLS
                .iter()
                .filter(|t| role.allows(t.permission))
                .map(|t| t.name)
                .collect();
            assert_eq!(listed, expected, "{role}");
        }
        let viewer: Vec<String> = tools_for(&as_role(&owner, Role::Viewer))
            .iter()
            .map(|t| t.name.to_string())
            .collect();
        assert!(!viewer.contains(&"create_export".to_owned()), "{viewer:?}");
        assert!(viewer.contains(&"search".to_owned()), "{viewer:?}");
        for t in tools_for(&owner) {
            let crow = tools::find(&t.name).unwrap();
            let a = t.annotations.as_ref().unwrap();
            assert_eq!(a.read_only_hint, Some(crow.hints.read_only), "{}", t.name);
            assert_eq!(a.destructive_hint, Some(crow.hints.destructive), "{}", t.name);
            assert_eq!(a.idempotent_hint, Some(crow.hints.idempotent), "{}", t.name);
            assert_eq!(a.open_world_hint, Some(crow.hints.open_world), "{}", t.name);
            assert_eq!(t.input_schema.get("type"), Some(&json!("object")), "{}", t.name);
            assert!(t.title.is_some() && t.description.is_some(), "{}", t.name);
            // What goes on the wire is camelCase, as clients read it.
            let wire = serde_json::to_value(&t).unwrap();
            assert!(wire["annotations"]["readOnlyHint"].is_boolean(), "{wire}");
            assert!(wire["inputSchema"]["properties"].is_object(), "{wire}");
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn calls_answer_structured_json_and_failures_are_tool_errors_naming_the_field() {
        let dir = tempfile::tempdir().unwrap();
        let (backends, owner) = setup(dir.path()).await;
        let mcp = CrowMcp::per_request(backends);
        let ok = mcp
            .call_as(&owner, None, "traffic_summary", Some(JsonObject::new()))
            .await
            .unwrap();
        assert_eq!(ok.is_error, Some(false));
        let v = ok.structured_content.as_ref().unwrap();
        assert_eq!(v["events"], 0, "{v}");
        // The text block carries the same JSON, for clients that read only text.
        let text = ok.content[0].as_text().unwrap().text.clone();
        assert_eq!(&serde_json::from_str::<Value>(&text).unwrap(), v);

        let bad = mcp
            .call_as(
                &owner,
                None,
                "sentiment_breakdown",
                Some(json!({"interval": "fortnight"}).as_object().unwrap().clone()),
            )
            .await
            .unwrap();
        assert_eq!(bad.is_error, Some(true));
        let text = &bad.content[0].as_text().unwrap().text;
        assert!(text.contains("interval") || text.contains("fortnight"), "{text}");
        assert_eq!(bad.structured_content.as_ref().unwrap()["status"], 400);

        let unknown = json!({"nope": 1}).as_object().unwrap().clone();
        let bad = mcp.call_as(&owner, None, "search", Some(unknown)).await.unwrap();
        assert_eq!(bad.is_error, Some(true));
        assert!(bad.content[0].as_text().unwrap().text.contains("nope"), "{bad:?}");

        // A viewer asking for a tool its role lacks: a tool error naming the permission.
        let viewer = as_role(&owner, Role::Viewer);
        let args = json!({"resource": "interactions"}).as_object().unwrap().clone();
        let denied = mcp.call_as(&viewer, None, "create_export", Some(args)).await.unwrap();
        assert_eq!(denied.is_error, Some(true));
        assert_eq!(denied.structured_content.as_ref().unwrap()["status"], 403);

        // An unknown tool is a protocol error.
        let err = mcp.call_as(&owner, None, "drop_tables", None).await.unwrap_err();
        assert_eq!(err.code, rmcp::model::ErrorCode::INVALID_PARAMS);
        assert!(err.message.contains("drop_tables"), "{}", err.message);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn resources_are_json_and_unknown_ones_are_not_found() {
        let dir = tempfile::tempdir().unwrap();
        let (backends, owner) = setup(dir.path()).await;
        let mcp = CrowMcp::per_request(backends);
        for uri in [SCHEMA_URI, INSIGHTS_URI] {
            let r = mcp.read_as(&owner, None, uri).await.unwrap();
            let ResourceContents::TextResourceContents { text, mime_type, .. } = &r.contents[0] else {
                panic!("{uri}: not text")
            };
            assert_eq!(mime_type.as_deref(), Some("application/json"));
            let v: Value = serde_json::from_str(text).unwrap();
            assert!(
                text.len() <= MAX_OUTPUT_BYTES && v.get("truncated").is_none(),
                "{uri}: {} bytes",
                text.len()
            );
            if uri == SCHEMA_URI {
                assert_eq!(v["role"], "owner", "{v}");
                assert_eq!(v["org"]["name"], "Acme", "{v}");
                assert_eq!(v["tools"].as_array().unwrap().len(), tools::TOOLS.len(), "{v}");
                assert_eq!(v["counts"]["events"], 0, "{v}");
                for (kind, r) in v["records"].as_object().unwrap() {
                    assert!(r["fields"].is_object(), "{kind}: no fields: {r}");
                }
            } else {
                assert!(v["traffic"]["events"].is_number(), "{v}");
                assert!(v["sentiment"].get("error").is_none(), "{v}");
            }
        }
        let err = mcp.read_as(&owner, None, "crow://nope").await.unwrap_err();
        assert!(err.message.contains("crow://nope"), "{}", err.message);
    }

    #[test]
    fn prompts_name_real_tools_and_check_their_arguments() {
        let now = 1_700_000_000_000;
        let args = |v: Value| v.as_object().unwrap().clone();
        let all = [
            ("weekly_report", json!({})),
            ("investigate_sentiment", json!({"product": "Trail Runner"})),
            ("funnel_review", json!({"steps": "page:/pricing, track:Signed Up"})),
            ("store_footfall", json!({"days": "3"})),
        ];
        assert_eq!(prompts().len(), all.len());
        for (name, a) in all {
            assert!(prompts().iter().any(|p| p.name == name), "{name}");
            let r = prompt(name, &args(a), now).unwrap();
            let text = serde_json::to_value(&r.messages).unwrap().to_string();
            // Every `tool` the text names is a real tool.
            for quoted in text.split('`').skip(1).step_by(2) {
                if quoted.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') && quoted.contains('_')
                    || ["funnel", "search"].contains(&quoted)
                {
                    assert!(
                        tools::find(quoted).is_some() || ["name_prefix", "next_cursor"].contains(&quoted),
                        "{name} names `{quoted}`"
                    );
                }
            }
        }
        assert!(prompt("investigate_sentiment", &args(json!({})), now).is_err());
        let e = prompt("funnel_review", &args(json!({"steps": "page:/"})), now).unwrap_err();
        assert!(e.message.starts_with("steps"), "{}", e.message);
        let e = prompt("weekly_report", &args(json!({"days": "365"})), now).unwrap_err();
        assert!(e.message.starts_with("days"), "{}", e.message);
        assert!(prompt("nope", &JsonObject::new(), now).is_err());
    }

    #[test]
    fn answers_over_the_bound_are_cut_and_say_so() {
        let small = json!({"data": [1, 2, 3], "next_cursor": null});
        assert_eq!(bound(small.clone(), 1000), (small, None));
        let rows: Vec<Value> = (0..500)
            .map(|i| json!({"id": format!("row-{i:04}"), "text": "x".repeat(100)}))
            .collect();
        let big = json!({"data": rows, "next_cursor": "c1", "since": "2026-01-01T00:00:00Z"});
        let (cut, note) = bound(big, 10_000);
        assert!(serde_json::to_vec(&cut).unwrap().len() <= 10_000);
        let kept = cut["data"].as_array().unwrap();
        assert!(kept.len() > 50 && kept.len() < 500, "{}", kept.len());
        assert_eq!(kept[0]["id"], "row-0000", "the first rows are kept");
        assert_eq!(cut["since"], "2026-01-01T00:00:00Z");
        let note = note.unwrap();
        assert!(note.contains("`data` keeps") && note.contains("of 500"), "{note}");
        let r = answer(json!({"blob": "y".repeat(MAX_OUTPUT_BYTES + 10)}));
        assert!(r.structured_content.as_ref().unwrap()["truncated"].is_string());
        assert!(r.meta.is_some());
    }
}
