//! The MCP server through the official MCP Python client (PyPI `mcp`, tests/e2e/mcp_client.py):
//! over streamable HTTP at `/mcp` of a real `crow serve`, and over stdio from `crow mcp`. Every
//! tool is listed and called with valid arguments against ingested data, both resources are
//! read, prompts are filled in, a viewer key is refused `create_export`, a client of the
//! initialize-handshake era is served on both transports, `crow mcp` writes an export itself when
//! no server is the worker, and `/mcp` answers 401 without a key and 429 over the API rate limit.

use crow_e2e::*;
use serde_json::{Value, json};

const PRODUCT: &str = "Trail Runner 42";

fn post_json(url: &str, key: Option<&str>, body: &Value) -> (u16, Value) {
    post_text(url, key, &body.to_string())
}

#[test]
fn the_official_python_client_lists_and_calls_every_tool_over_http_and_stdio() {
    let dir = tempfile::tempdir().unwrap();
    let (org, server) = shop(dir.path(), "MCP Shop");
    let base = server.base.clone();
    let data = dir.path().join("data");
    // Texts with sentiment and the product in them.
    let texts = [
        (
            "fb-1",
            "I love my Trail Runner 42, super comfortable and light. Great shoes!",
        ),
        (
            "fb-2",
            "The Trail Runner 42 fell apart after a week. Terrible quality, very disappointed.",
        ),
        (
            "fb-3",
            "The parcel arrived two weeks late and nobody answered my emails. Awful service.",
        ),
        ("fb-4", "Excellent Storm Jacket, kept me perfectly dry. Happy with it."),
    ];
    let b: Vec<Value> = texts
        .iter()
        .map(|(id, text)| json!({"i": id, "t": "t", "n": "Feedback Submitted", "a": "anon-2", "p": {"feedback": text}}))
        .collect();
    let r = client()
        .post(format!("{base}/api/v1/events"))
        .json(&json!({"k": org.write_key, "b": b}))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    wait_queues_drained(&base);

    // A viewer key, made through the REST API.
    let (s, viewer) = post_json(
        &format!("{base}/api/v1/api-keys"),
        Some(&org.api_key),
        &json!({"role": "viewer", "name": "mcp-viewer"}),
    );
    assert_eq!(s, 201, "{viewer}");
    let viewer_key = viewer["secret"].as_str().unwrap().to_owned();

    // Semantic search needs the embedding model (`make models`); without it `search` must say so.
    let (search, _) = api_get(&base, &org.api_key, "/api/v1/search?q=late");
    let semantic = models_present() || search == 200;
    let tools: Vec<&str> = crow_ingest::api::tools::TOOLS.iter().map(|t| t.name).collect();
    let viewer_tools: Vec<&str> = crow_ingest::api::tools::TOOLS
        .iter()
        .filter(|t| crow_core::access::Role::Viewer.allows(t.permission))
        .map(|t| t.name)
        .collect();
    assert!(!viewer_tools.contains(&"create_export"));
    let config = json!({
        "url": base,
        "owner_key": org.api_key,
        "viewer_key": viewer_key,
        "crow": crow_bin(),
        "data": data,
        "models": models_dir(),
        "tools": tools,
        "viewer_tools": viewer_tools,
        "product": PRODUCT,
        "events": 4 + texts.len(),
        "page_views": 3,
        "texts": texts.len(),
        "semantic": semantic,
    });
    let out = run_python(include_str!("mcp_client.py"), &[&config.to_string()]);
    let lines: Vec<Value> = out
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 7, "{out}\n--- server log ---\n{}", server.log());
    for transport in ["http", "stdio"] {
        let owner = lines
            .iter()
            .find(|l| l["transport"] == transport && l.get("called").is_some())
            .unwrap_or_else(|| panic!("no owner run over {transport}: {out}"));
        assert_eq!(owner["called"].as_array().unwrap().len(), tools.len(), "{owner}");
        let viewer = lines
            .iter()
            .find(|l| l["transport"] == transport && l.get("viewer_tools").is_some())
            .unwrap_or_else(|| panic!("no viewer run over {transport}: {out}"));
        assert_eq!(viewer["viewer_tools"], json!(viewer_tools));
        assert!(
            lines
                .iter()
                .any(|l| l["transport"] == transport && l.get("legacy").is_some()),
            "no legacy (initialize handshake) run over {transport}: {out}"
        );
    }
    // The export asked for over MCP was audited like a REST one, with the key that made it.
    let (s, audit) = api_get(&base, &org.api_key, "/api/v1/audit-log?limit=100");
    assert_eq!(s, 200, "{audit}");
    let exports = audit["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "export.create")
        .count();
    assert_eq!(exports, 2, "one export per transport: {audit}");
    server.stop();

    // Without a server to be the worker, `crow mcp` writes the export itself.
    let mut offline = config.clone();
    offline["offline"] = json!(true);
    let out = run_python(include_str!("mcp_client.py"), &[&offline.to_string()]);
    assert!(out.contains("\"offline_export\": \"succeeded\""), "{out}");
}

#[test]
fn mcp_over_http_needs_a_key_and_counts_against_the_api_rate_limit() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let org = create_org(&data, "Limited");
    let config = data.join("crow.toml");
    std::fs::write(&config, "[limits]\napi = { per_minute = 1, burst = 3 }\n").unwrap();
    let server = ServerProcess::start(&data, 0, &["--config", config.to_str().unwrap()]);
    let url = format!("{}/mcp", server.base);
    let list = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}});

    let (s, body) = post_json(&url, None, &list);
    assert_eq!(s, 401, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("Bearer"), "{body}");

    let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "e2e", "version": "1"}}});
    let (s, body) = post_json(&url, Some(&org.api_key), &initialize);
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["result"]["serverInfo"]["name"], "crow", "{body}");
    assert!(body["result"]["capabilities"]["tools"].is_object(), "{body}");
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(post_json(&url, Some(&org.api_key), &list).0);
    }
    assert!(
        statuses.contains(&429),
        "over the burst of 3 the key is limited: {statuses:?}"
    );
    // Another key of another org is not limited by the first one's use.
    let other = create_org(&data, "Other");
    let (s, body) = post_json(&url, Some(&other.api_key), &initialize);
    assert_eq!(s, 200, "{body}");
    server.stop();
}
