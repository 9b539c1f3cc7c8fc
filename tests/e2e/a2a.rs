//! The A2A agent through the a2a-sdk Python client (PyPI `a2a-sdk`, tests/e2e/a2a_client.py)
//! against a real `crow serve` on loopback: the 1.0 card and client (SendMessage with DataParts,
//! GetTask, ListTasks, CancelTask, the free-text error, an export followed to its file), a viewer
//! refused a skill, no key refused, and the 0.3 client from the older card. Raw JSON-RPC checks
//! the error codes the SDK does not surface.

use crow_e2e::*;
use serde_json::{Value, json};

const PRODUCT: &str = "Trail Runner 42";

#[test]
fn the_a2a_sdk_client_runs_skills_and_follows_tasks() {
    let dir = tempfile::tempdir().unwrap();
    let (org, server) = shop(dir.path(), "A2A Shop");
    let base = server.base.clone();
    let data = dir.path().join("data");

    // A viewer key, made through the REST API.
    let (s, viewer) = post_text(
        &format!("{base}/api/v1/api-keys"),
        Some(&org.api_key),
        &json!({"role": "viewer", "name": "a2a-viewer"}).to_string(),
    );
    assert_eq!(s, 201, "{viewer}");
    let viewer_key = viewer["secret"].as_str().unwrap().to_owned();

    let skills: Vec<&str> = crow_ingest::api::tools::TOOLS.iter().map(|t| t.name).collect();
    let config = json!({
        "url": base,
        "owner_key": org.api_key,
        "viewer_key": viewer_key,
        "skills": skills,
        "product": PRODUCT,
        "events": 4,
        "page_views": 3,
        "funnel": [3, 1],
    });
    let out = run_python(include_str!("a2a_client.py"), &[&config.to_string()]);
    let line = out
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("no summary line: {out}\n--- server log ---\n{}", server.log()));
    let seen: Value = serde_json::from_str(line).unwrap();
    assert_eq!(
        seen["v1"]["traffic_summary"],
        json!({"events": 4, "page_views": 3}),
        "{seen}"
    );
    assert_eq!(seen["v1"]["funnel"], json!([3, 1]), "{seen}");
    assert_eq!(seen["v1"]["export_rows"], 4, "{seen}");
    assert!(
        seen["viewer_refused"].as_str().unwrap().contains("export permission"),
        "{seen}"
    );

    // The tasks persist in the store: the org's list holds the 1.0 and the 0.3 ones.
    let list = json!({"jsonrpc": "2.0", "id": 1, "method": "ListTasks", "params": {"pageSize": 100}});
    let (s, body) = post_text(&format!("{base}/a2a"), Some(&org.api_key), &list.to_string());
    assert_eq!(s, 200, "{body}");
    let ids: Vec<&str> = body["result"]["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&seen["v03_task"].as_str().unwrap()), "{body}");
    // owner: traffic, funnel, products, failed funnel, two exports, 0.3 traffic; the viewer's
    // list_sessions too.
    assert_eq!(body["result"]["totalSize"], 8, "{body}");
    // Another org sees none of them.
    let other = create_org(&data, "Other");
    let (s, body) = post_text(&format!("{base}/a2a"), Some(&other.api_key), &list.to_string());
    assert_eq!((s, &body["result"]["totalSize"]), (200, &json!(0)), "{body}");
    let get = json!({"jsonrpc": "2.0", "id": 2, "method": "GetTask", "params": {"id": ids[0]}});
    let (_, body) = post_text(&format!("{base}/a2a"), Some(&other.api_key), &get.to_string());
    assert_eq!(body["error"]["code"], -32001, "{body}");

    // What the SDK does not show: the raw error codes.
    let url = format!("{base}/a2a");
    let (s, body) = post_text(&url, Some(&org.api_key), "{oops");
    assert_eq!((s, &body["error"]["code"]), (200, &json!(-32700)), "{body}");
    let (s, body) = post_text(&url, Some(&org.api_key), r#"{"jsonrpc":"2.0","id":3,"method":"Nope"}"#);
    assert_eq!(
        (s, &body["error"]["code"], &body["id"]),
        (200, &json!(-32601), &json!(3)),
        "{body}"
    );
    let (s, body) = post_text(&url, None, &list.to_string());
    assert_eq!((s, &body["error"]["code"]), (401, &json!(-31401)), "{body}");
    let card: Value = client()
        .get(format!("{base}/.well-known/agent-card.json"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(card["supportedInterfaces"][0]["url"], format!("{base}/a2a"));
    server.stop();
}

#[test]
fn a2a_calls_count_against_the_api_rate_limit() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let org = create_org(&data, "Limited");
    let config = data.join("crow.toml");
    std::fs::write(&config, "[limits]\napi = { per_minute = 1, burst = 3 }\n").unwrap();
    let server = ServerProcess::start(&data, 0, &["--config", config.to_str().unwrap()]);
    let url = format!("{}/a2a", server.base);
    let list = json!({"jsonrpc": "2.0", "id": 1, "method": "ListTasks", "params": {}}).to_string();
    let statuses: Vec<u16> = (0..4).map(|_| post_text(&url, Some(&org.api_key), &list).0).collect();
    assert_eq!(statuses[0], 200);
    assert!(
        statuses.contains(&429),
        "over the burst of 3 the key is limited: {statuses:?}"
    );
    // Another org's key has its own bucket; the card is not limited.
    let other = create_org(&data, "Other");
    assert_eq!(post_text(&url, Some(&other.api_key), &list).0, 200);
    for _ in 0..5 {
        let card = client()
            .get(format!("{}/.well-known/agent-card.json", server.base))
            .send()
            .unwrap();
        assert_eq!(card.status().as_u16(), 200);
    }
    server.stop();
}
