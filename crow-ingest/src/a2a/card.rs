//! The agent card: who the agent is, where it answers, how to authenticate, and its skills (one
//! per tool of [`crate::api::tools::TOOLS`]). Served in the A2A 1.0 shape and, for 0.2/0.3
//! clients, in the older shape.

use serde_json::{Value, json};

use crate::api::tools::{TOOLS, Tool};
use crate::http::HttpRequest;

use super::RPC_PATH;

const NAME: &str = "CROW";
const DESCRIPTION: &str = "Customer data of an organization in CROW: website and app events, sessions, funnels, \
    social media mentions, sentiment, the product catalog, store cameras' people counts, and \
    exports. Each skill runs one CROW tool on the data of the caller's organization: send a \
    message with a DataPart {\"skill\": \"<skill id>\", \"args\": {...}}; the answer is a task \
    whose artifact holds the tool's JSON. Free text is not understood yet.";
const MEDIA: &str = "application/json";
const BEARER_FORMAT: &str = "CROW secret API key (sk_...) or user session JWT";
const BEARER_DESCRIPTION: &str = "Authorization: Bearer <secret API key or session token>. The \
    key's role (or the user's) decides which skills may run.";

/// `scheme://host` of the request: the `Host` header (else `localhost`) and `x-forwarded-proto`
/// (else `http`). A host with characters a host cannot have is replaced by `localhost`.
pub(crate) fn base_url(req: &HttpRequest) -> String {
    let host = req
        .header("host")
        .map(str::trim)
        .filter(|h| {
            !h.is_empty()
                && h.len() <= 255
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']' | b'_'))
        })
        .unwrap_or("localhost");
    let proto = match req
        .header("x-forwarded-proto")
        .and_then(|p| p.split(',').next())
        .map(|p| p.trim().to_ascii_lowercase())
    {
        Some(p) if p == "https" => "https",
        _ => "http",
    };
    format!("{proto}://{host}")
}

/// Tags of a skill: what it is about, the permission it needs, and whether it writes.
fn tags(tool: &Tool) -> Vec<String> {
    let topic: &[&str] = match tool.name {
        "search" => &["search", "text"],
        "sentiment_breakdown" => &["insights", "sentiment"],
        "top_entities" => &["insights", "entities"],
        "funnel" => &["insights", "funnel"],
        "traffic_summary" => &["insights", "traffic"],
        "list_sessions" => &["website", "sessions"],
        "list_interactions" => &["website", "events"],
        "list_mentions" => &["social", "mentions"],
        "find_products" => &["catalog", "products"],
        "people_counts" => &["cctv", "people"],
        "analyze_text" => &["nlp", "sentiment"],
        "create_export" | "get_export" => &["export"],
        _ => &[],
    };
    let mut out: Vec<String> = topic.iter().map(|t| (*t).to_owned()).collect();
    if let Some(p) = serde_json::to_value(tool.permission)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
    {
        out.push(format!("permission:{p}"));
    }
    out.push(if tool.hints.read_only { "read-only" } else { "writes" }.to_owned());
    out
}

/// Example arguments of a skill: hand-written for the known tools, else one value per
/// required property of its schema.
pub(crate) fn example_args(tool: &Tool) -> Value {
    match tool.name {
        "search" => json!({"query": "delivery was late", "source": "mentions", "limit": 5}),
        "sentiment_breakdown" => json!({"source": "mentions", "interval": "day", "since": "2025-01-01T00:00:00Z"}),
        "top_entities" => json!({"kind": "product", "limit": 10}),
        "funnel" => json!({"steps": ["page:/pricing", "track:Signed Up"], "since": "2025-01-01T00:00:00Z"}),
        "traffic_summary" => json!({"since": "2025-01-01T00:00:00Z", "top": 5}),
        "list_sessions" => json!({"limit": 10}),
        "list_interactions" => json!({"type": "track", "name": "Signed Up", "limit": 10}),
        "list_mentions" => json!({"platform": "mastodon", "limit": 10}),
        "find_products" => json!({"name_prefix": "boot", "limit": 10}),
        "people_counts" => json!({"kind": "line_in", "limit": 10}),
        "analyze_text" => json!({"texts": ["The boots are great but delivery took two weeks"]}),
        "create_export" => json!({"resource": "interactions", "format": "csv", "since": "2025-01-01T00:00:00Z"}),
        "get_export" => json!({"id": "exp_0123456789abcdef01234567"}),
        _ => schema_example(&tool.input_schema()),
    }
}

fn schema_example(schema: &Value) -> Value {
    let mut args = serde_json::Map::new();
    let required = schema
        .get("required")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for name in required.iter().filter_map(Value::as_str) {
        let prop = &schema["properties"][name];
        let v = if let Some(first) = prop.get("enum").and_then(|e| e.get(0)) {
            first.clone()
        } else {
            match prop.get("type").and_then(Value::as_str) {
                Some("integer" | "number") => json!(prop.get("minimum").cloned().unwrap_or(json!(1))),
                Some("boolean") => json!(true),
                Some("array") => json!([]),
                Some("object") => json!({}),
                _ => json!("..."),
            }
        };
        args.insert(name.to_owned(), v);
    }
    Value::Object(args)
}

/// The skill's description, with the arguments its DataPart takes.
fn skill_description(tool: &Tool) -> String {
    let schema = tool.input_schema();
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut args: Vec<String> = schema
        .get("properties")
        .and_then(Value::as_object)
        .map(|p| {
            p.keys()
                .map(|k| {
                    if required.contains(&k.as_str()) {
                        format!("{k} (required)")
                    } else {
                        k.clone()
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    // Required arguments first.
    args.sort_by_key(|a| !a.ends_with("(required)"));
    if args.is_empty() {
        args.push("none".into());
    }
    format!("{} Arguments: {}.", tool.description, args.join(", "))
}

fn skills() -> Vec<Value> {
    TOOLS
        .iter()
        .map(|tool| {
            let example = json!({"skill": tool.name, "args": example_args(tool)}).to_string();
            json!({
                "id": tool.name,
                "name": tool.title,
                "description": skill_description(tool),
                "tags": tags(tool),
                "examples": [example],
                "inputModes": [MEDIA],
                "outputModes": [MEDIA],
            })
        })
        .collect()
}

/// The A2A 1.0 card (`/.well-known/agent-card.json`): one JSON-RPC interface at `/a2a` that
/// speaks 1.0 and 0.3.
pub(crate) fn card(base: &str) -> Value {
    let url = format!("{base}{RPC_PATH}");
    json!({
        "name": NAME,
        "description": DESCRIPTION,
        "supportedInterfaces": [
            {"url": url, "protocolBinding": "JSONRPC", "protocolVersion": "1.0"},
            {"url": url, "protocolBinding": "JSONRPC", "protocolVersion": "0.3"},
        ],
        "provider": {"organization": NAME, "url": base},
        "version": env!("CARGO_PKG_VERSION"),
        "documentationUrl": format!("{base}/api/v1/openapi.json"),
        "capabilities": {"streaming": false, "pushNotifications": false, "extendedAgentCard": false},
        "securitySchemes": {
            "bearer": {"httpAuthSecurityScheme": {
                "scheme": "Bearer",
                "bearerFormat": BEARER_FORMAT,
                "description": BEARER_DESCRIPTION,
            }},
        },
        "securityRequirements": [{"schemes": {"bearer": {"list": []}}}],
        "defaultInputModes": [MEDIA],
        "defaultOutputModes": [MEDIA],
        "skills": skills(),
    })
}

/// The older card (`/.well-known/agent.json`, A2A 0.2 and 0.3): `url`, `protocolVersion`,
/// OpenAPI-style security schemes.
pub(crate) fn legacy_card(base: &str) -> Value {
    json!({
        "protocolVersion": "0.3.0",
        "name": NAME,
        "description": DESCRIPTION,
        "url": format!("{base}{RPC_PATH}"),
        "preferredTransport": "JSONRPC",
        "provider": {"organization": NAME, "url": base},
        "version": env!("CARGO_PKG_VERSION"),
        "documentationUrl": format!("{base}/api/v1/openapi.json"),
        "capabilities": {"streaming": false, "pushNotifications": false, "stateTransitionHistory": false},
        "securitySchemes": {
            "bearer": {
                "type": "http",
                "scheme": "bearer",
                "bearerFormat": BEARER_FORMAT,
                "description": BEARER_DESCRIPTION,
            },
        },
        "security": [{"bearer": []}],
        "defaultInputModes": [MEDIA],
        "defaultOutputModes": [MEDIA],
        "supportsAuthenticatedExtendedCard": false,
        "skills": skills(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(headers: &[(&str, &str)]) -> HttpRequest {
        HttpRequest {
            method: "GET".into(),
            path: "/.well-known/agent-card.json".into(),
            headers: headers.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn the_base_url_comes_from_host_and_forwarded_proto() {
        assert_eq!(
            base_url(&req(&[("host", "crow.example:8080")])),
            "http://crow.example:8080"
        );
        assert_eq!(
            base_url(&req(&[("host", "crow.example"), ("x-forwarded-proto", "https")])),
            "https://crow.example"
        );
        assert_eq!(
            base_url(&req(&[("host", "crow.example"), ("x-forwarded-proto", "HTTPS, http")])),
            "https://crow.example"
        );
        assert_eq!(base_url(&req(&[("host", "[::1]:9")])), "http://[::1]:9");
        assert_eq!(base_url(&req(&[])), "http://localhost");
        assert_eq!(base_url(&req(&[("host", "evil\"/x")])), "http://localhost");
        assert_eq!(
            base_url(&req(&[("host", "a"), ("x-forwarded-proto", "javascript")])),
            "http://a"
        );
    }

    #[test]
    fn every_tool_is_a_skill_with_a_data_part_example() {
        let card = card("http://h");
        let skills = card["skills"].as_array().unwrap();
        assert_eq!(skills.len(), TOOLS.len());
        for (skill, tool) in skills.iter().zip(TOOLS) {
            assert_eq!(skill["id"], tool.name);
            assert_eq!(skill["name"], tool.title);
            let example: Value = serde_json::from_str(skill["examples"][0].as_str().unwrap()).unwrap();
            assert_eq!(example["skill"], tool.name);
            assert!(example["args"].is_object());
            assert!(
                skill["tags"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|t| t == "read-only" || t == "writes")
            );
        }
        assert_eq!(card["supportedInterfaces"][0]["url"], "http://h/a2a");
        assert_eq!(legacy_card("http://h")["url"], "http://h/a2a");
    }
}
