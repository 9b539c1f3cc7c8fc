//! The REST API v1 over real HTTP from `crow serve`: schemathesis fuzzing against the served
//! OpenAPI document, org isolation on every route the document lists, rate limits, and an audit
//! row for every mutation.

use std::process::Command;

use crow_e2e::target::{NativeTarget, Target, WorkerTarget};
use crow_e2e::*;
use serde_json::{Value, json};

fn send(method: &str, url: &str, key: &str, body: Option<Value>) -> (u16, Value) {
    let c = client();
    let mut req = c
        .request(method.parse().unwrap(), url)
        .header("authorization", format!("Bearer {key}"));
    if let Some(b) = body {
        req = req.header("content-type", "application/json").body(b.to_string());
    }
    let resp = req.send().unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

fn ingest(base: &str, write_key: &str, batch: Value) {
    let resp = client()
        .post(format!("{base}/v1/batch"))
        .basic_auth(write_key, Some(""))
        .json(&json!({ "batch": batch }))
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200, "{}", resp.text().unwrap_or_default());
}

/// Every (method, path) the served OpenAPI document lists.
fn documented_operations(base: &str) -> Vec<(String, String)> {
    let doc: Value = client()
        .get(format!("{base}/api/v1/openapi.json"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in ["get", "post", "patch", "put", "delete"] {
            if item.get(method).is_some() {
                ops.push((method.to_uppercase(), path.clone()));
            }
        }
    }
    assert!(ops.len() >= 40, "{ops:?}");
    ops
}

/// schemathesis, run against the served document with a valid owner key, finds no 5xx and no
/// answer that breaks the document (status codes, content types, bodies).
fn schemathesis_finds_no_server_error_and_no_schema_violation(t: &dyn Target) {
    let dir = tempfile::tempdir().unwrap();
    let org = t.create_org("Fuzzed");
    let base = t.base().to_owned();
    ingest(
        &base,
        &org.write_key,
        json!([
            {"type": "page", "messageId": "e1", "anonymousId": "a1", "properties": {"path": "/pricing"}},
            {"type": "track", "messageId": "e2", "anonymousId": "a1", "event": "Signed Up"},
        ]),
    );
    let out = Command::new(python().with_file_name("schemathesis"))
        .args(["run", &format!("{base}/api/v1/openapi.json")])
        .args(["--header", &format!("Authorization: Bearer {}", org.api_key)])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
        ])
        .args(["--max-examples", "30", "--seed", "1", "--workers", "2", "--no-color"])
        .args(["--phases", "examples,coverage,fuzzing"])
        // `wrangler dev` has no Workers AI and no Vectorize (they run only on Cloudflare), so the
        // Worker's search answers 503 there by design; its adapters are tested with fakes in
        // deploy/worker/test.
        .args(if t.name() == "worker" {
            &["--exclude-path", "/api/v1/search"][..]
        } else {
            &[]
        })
        // its example database goes to the temp dir, not the checkout
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "schemathesis against the {} server failed ({}):\n{stdout}\n{stderr}\n--- server log ---\n{}",
        t.name(),
        out.status,
        t.log()
    );
    // not vacuous: it exercised the operations
    assert!(stdout.contains("passed") || stdout.contains("Passed"), "{stdout}");
}

#[test]
fn schemathesis_finds_no_server_error_and_no_schema_violation_native() {
    schemathesis_finds_no_server_error_and_no_schema_violation(&NativeTarget::unlimited());
}

#[test]
fn schemathesis_finds_no_server_error_and_no_schema_violation_worker() {
    if let Some(t) = WorkerTarget::start() {
        schemathesis_finds_no_server_error_and_no_schema_violation(&t);
    }
}

/// Another org's ids answer 404 and leak nothing, on every route with an id in the served
/// document: a new route without an id mapping here fails the test.
fn another_orgs_ids_answer_404_on_every_route(t: &dyn Target) {
    let a = t.create_org("Alpha");
    let b = t.create_org("Bravo");
    let base = t.base().to_owned();
    let api = |p: &str| format!("{base}{p}");
    // B's data, with markers that must never reach A
    ingest(
        &base,
        &b.write_key,
        json!([
            {"type": "page", "messageId": "bravo-evt-1", "anonymousId": "bravo-anon-1",
             "properties": {"path": "/bravo-secret-page"}},
            {"type": "identify", "messageId": "bravo-evt-2", "anonymousId": "bravo-anon-1",
             "userId": "bravo-user-1", "traits": {"plan": "bravo-plan"}},
        ]),
    );
    wait_for(60, "B's session", || {
        let (_, v) = api_get(&base, &b.api_key, "/api/v1/sessions");
        v["data"].as_array().is_some_and(|d| !d.is_empty())
    });
    let (_, sessions) = api_get(&base, &b.api_key, "/api/v1/sessions");
    let session_id = sessions["data"][0]["id"].as_str().unwrap().to_owned();
    let (s, product) = send(
        "POST",
        &api("/api/v1/products"),
        &b.api_key,
        Some(json!({"sku": "BRAVO-SKU", "name": "Bravo Secret Widget", "price_cents": 1299, "currency": "EUR"})),
    );
    assert_eq!(s, 201, "{product}");
    let product_id = product["id"].as_str().unwrap().to_owned();
    let (s, cat) = send(
        "POST",
        &api("/api/v1/categories"),
        &b.api_key,
        Some(json!({"name": "bravo-cat"})),
    );
    assert_eq!(s, 201, "{cat}");
    let (s, user) = send(
        "POST",
        &api("/api/v1/users"),
        &b.api_key,
        Some(json!({"email": "bravo@bravo.example", "role": "viewer"})),
    );
    assert_eq!(s, 201, "{user}");
    let user_id = user["id"].as_str().unwrap().to_owned();
    let (s, key) = send(
        "POST",
        &api("/api/v1/api-keys"),
        &b.api_key,
        Some(json!({"role": "viewer"})),
    );
    assert_eq!(s, 201, "{key}");
    let key_prefix = key["prefix"].as_str().unwrap().to_owned();
    let (s, export) = send(
        "POST",
        &api("/api/v1/exports"),
        &b.api_key,
        Some(json!({"resource": "interactions", "format": "json"})),
    );
    assert_eq!(s, 202, "{export}");
    let export_id = export["id"].as_str().unwrap().to_owned();
    let ids: Vec<(&str, String)> = vec![
        ("/api/v1/interactions/{id}", "bravo-evt-1".into()),
        ("/api/v1/sessions/{id}", session_id),
        ("/api/v1/mentions/{id}", "rss:bravo-mention".into()),
        ("/api/v1/products/{id}", product_id.clone()),
        ("/api/v1/categories/{id}", "bravo-cat".into()),
        ("/api/v1/users/{id}", user_id.clone()),
        ("/api/v1/api-keys/{id}", key_prefix.clone()),
        ("/api/v1/exports/{id}", export_id.clone()),
        ("/api/v1/exports/{id}/download", export_id.clone()),
        ("/api/v1/persons/{id}", "bravo-anon-1".into()),
        ("/api/v1/persons/{id}/export", "bravo-user-1".into()),
    ];
    let markers = [
        "bravo-secret-page",
        "bravo-plan",
        "Bravo Secret Widget",
        "bravo@bravo.example",
        "bravo-evt-2",
    ];
    let bodies = |method: &str, path: &str| -> Option<Value> {
        match (method, path) {
            ("PATCH", "/api/v1/products/{id}") => Some(json!({"name": "hijacked"})),
            ("PATCH", "/api/v1/categories/{id}") => Some(json!({"parent": null})),
            ("PATCH", "/api/v1/users/{id}") => Some(json!({"role": "viewer"})),
            _ => None,
        }
    };
    let mut checked = 0;
    for (method, path) in documented_operations(&base) {
        let url_path = if path.contains('{') {
            let Some((_, id)) = ids.iter().find(|(p, _)| *p == path) else {
                panic!("{method} {path} takes an id but this test has no other-org id for it: add one");
            };
            path.replace("{id}", id)
        } else if method == "GET" {
            path.clone()
        } else {
            continue; // creations and imports act on the caller's own org only
        };
        let (status, body) = send(&method, &api(&url_path), &a.api_key, bodies(&method, &path));
        let text = body.to_string();
        for m in markers {
            assert!(!text.contains(m), "{method} {url_path} leaked {m:?}: {text}");
        }
        if path.contains('{') {
            let expected = if path.ends_with("/download") { 403 } else { 404 };
            assert_eq!(status, expected, "{method} {url_path} with A's key: {text}");
        } else {
            assert!(status < 500, "{method} {url_path}: {status} {text}");
        }
        checked += 1;
    }
    assert!(checked >= 30, "{checked}");
    // B's things are untouched
    let (s, p) = api_get(&base, &b.api_key, &format!("/api/v1/products/{product_id}"));
    assert_eq!((s, p["name"].as_str()), (200, Some("Bravo Secret Widget")));
    let (s, _) = api_get(&base, &b.api_key, &format!("/api/v1/users/{user_id}"));
    assert_eq!(s, 200);
    let (_, k) = api_get(&base, &b.api_key, &format!("/api/v1/api-keys/{key_prefix}"));
    assert!(k["revoked_at"].is_null(), "{k}");
    let (s, _) = api_get(&base, &b.api_key, "/api/v1/interactions/bravo-evt-1");
    assert_eq!(s, 200, "B's person was not erased by A");
}

#[test]
fn another_orgs_ids_answer_404_on_every_route_native() {
    another_orgs_ids_answer_404_on_every_route(&NativeTarget::unlimited());
}

#[test]
fn another_orgs_ids_answer_404_on_every_route_worker() {
    if let Some(t) = WorkerTarget::start() {
        another_orgs_ids_answer_404_on_every_route(&t);
    }
}

/// Over its limit a key gets 429 with Retry-After; other keys and ingest have their own buckets.
#[test]
fn rate_limits_answer_429_with_retry_after_per_key_and_class() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let a = create_org(&data, "Alpha");
    let b = create_org(&data, "Bravo");
    let config = data.join("crow.toml");
    std::fs::write(
        &config,
        "[limits]\ningest = { per_minute = 60, burst = 20 }\napi = { per_minute = 6, burst = 3 }\n",
    )
    .unwrap();
    let server = ServerProcess::start(&data, 0, &["--config", config.to_str().unwrap()]);
    let base = server.base.clone();
    let statuses: Vec<(u16, Option<String>, Value)> = (0..8)
        .map(|_| {
            let resp = client()
                .get(format!("{base}/api/v1/organization"))
                .bearer_auth(&a.api_key)
                .send()
                .unwrap();
            let retry = resp
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_owned());
            let status = resp.status().as_u16();
            (status, retry, resp.json().unwrap_or(Value::Null))
        })
        .collect();
    let ok = statuses.iter().filter(|(s, _, _)| *s == 200).count();
    let limited: Vec<_> = statuses.iter().filter(|(s, _, _)| *s == 429).collect();
    assert!((3..=4).contains(&ok), "{statuses:?}");
    assert!(!limited.is_empty(), "{statuses:?}");
    for (_, retry, body) in &limited {
        let secs: u64 = retry.as_deref().expect("Retry-After").parse().unwrap();
        assert!((1..=60).contains(&secs), "{secs}");
        assert_eq!(body["status"], 429, "{body}");
        assert!(body["detail"].as_str().unwrap().contains("rate limit"), "{body}");
    }
    // another key is not limited by A's burst, and ingest counts apart from the API
    let (s, _) = api_get(&base, &b.api_key, "/api/v1/organization");
    assert_eq!(s, 200);
    ingest(
        &base,
        &a.write_key,
        json!([{"type": "track", "messageId": "x1", "anonymousId": "z", "event": "E"}]),
    );
    server.stop();
}

/// Every successful mutation the document lists leaves exactly one audit row naming the action,
/// the key and the client address; reading the log needs owner or admin.
fn every_mutation_leaves_an_audit_row(t: &dyn Target) {
    let org = t.create_org("Audited");
    let base = t.base().to_owned();
    let api = |p: &str| format!("{base}{p}");
    ingest(
        &base,
        &org.write_key,
        json!([{"type": "page", "messageId": "p1", "anonymousId": "erase-me", "properties": {"path": "/x"}}]),
    );
    wait_queues_drained(&base);
    let prefix = org.api_key.split('_').nth(1).unwrap().to_owned();
    let count = || -> usize {
        let mut n = 0;
        let mut cursor: Option<String> = None;
        loop {
            let q = cursor.as_ref().map(|c| format!("&cursor={c}")).unwrap_or_default();
            let (s, page) = api_get(&base, &org.api_key, &format!("/api/v1/audit-log?limit=1000{q}"));
            assert_eq!(s, 200, "{page}");
            n += page["data"].as_array().unwrap().len();
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => return n,
            }
        }
    };
    // (method, documented path, concrete path, body, expected action)
    let mut steps: Vec<(&str, &str, String, Option<Value>, &str)> = vec![
        (
            "PATCH",
            "/api/v1/organization",
            "/api/v1/organization".into(),
            Some(json!({"name": "Audited Inc"})),
            "organization.update",
        ),
        (
            "POST",
            "/api/v1/users",
            "/api/v1/users".into(),
            Some(json!({"email": "u@a.example", "role": "analyst"})),
            "user.create",
        ),
        (
            "POST",
            "/api/v1/api-keys",
            "/api/v1/api-keys".into(),
            Some(json!({"role": "viewer", "name": "ci"})),
            "api_key.create",
        ),
        (
            "POST",
            "/api/v1/categories",
            "/api/v1/categories".into(),
            Some(json!({"name": "shoes"})),
            "category.create",
        ),
        (
            "POST",
            "/api/v1/products",
            "/api/v1/products".into(),
            Some(json!({"sku": "S1", "name": "Shoe", "category": "shoes"})),
            "product.create",
        ),
        (
            "POST",
            "/api/v1/products/import",
            "/api/v1/products/import".into(),
            Some(json!([{"sku": "S2", "name": "Boot"}])),
            "product.import",
        ),
        (
            "POST",
            "/api/v1/exports",
            "/api/v1/exports".into(),
            Some(json!({"resource": "products", "format": "csv"})),
            "export.create",
        ),
    ];
    let mut done = std::collections::HashSet::new();
    let mut created: std::collections::HashMap<&str, Value> = Default::default();
    for (method, doc_path, path, body, action) in steps.drain(..) {
        let before = count();
        let (s, answer) = send(method, &api(&path), &org.api_key, body);
        assert!((200..300).contains(&s), "{method} {path}: {s} {answer}");
        assert_eq!(count(), before + 1, "{method} {path} left no audit row");
        let (_, top) = api_get(&base, &org.api_key, "/api/v1/audit-log?limit=1");
        let row = &top["data"][0];
        assert_eq!(row["action"], action, "{row}");
        assert_eq!(row["actor"], format!("key:{prefix}"), "{row}");
        assert_eq!(row["ip"], "127.0.0.1", "{row}");
        created.insert(action, answer);
        done.insert((method.to_owned(), doc_path.to_owned()));
    }
    let user = created["user.create"]["id"].as_str().unwrap().to_owned();
    let key = created["api_key.create"]["prefix"].as_str().unwrap().to_owned();
    let product = created["product.create"]["id"].as_str().unwrap().to_owned();
    let later: Vec<(&str, &str, String, Option<Value>, &str)> = vec![
        (
            "PATCH",
            "/api/v1/users/{id}",
            format!("/api/v1/users/{user}"),
            Some(json!({"role": "viewer"})),
            "user.update",
        ),
        (
            "DELETE",
            "/api/v1/users/{id}",
            format!("/api/v1/users/{user}"),
            None,
            "user.delete",
        ),
        (
            "DELETE",
            "/api/v1/api-keys/{id}",
            format!("/api/v1/api-keys/{key}"),
            None,
            "api_key.revoke",
        ),
        (
            "PATCH",
            "/api/v1/products/{id}",
            format!("/api/v1/products/{product}"),
            Some(json!({"price_cents": 500})),
            "product.update",
        ),
        (
            "DELETE",
            "/api/v1/products/{id}",
            format!("/api/v1/products/{product}"),
            None,
            "product.delete",
        ),
        (
            "POST",
            "/api/v1/categories",
            "/api/v1/categories".into(),
            Some(json!({"name": "boots"})),
            "category.create",
        ),
        (
            "PATCH",
            "/api/v1/categories/{id}",
            "/api/v1/categories/boots".into(),
            Some(json!({"parent": "shoes"})),
            "category.update",
        ),
        (
            "DELETE",
            "/api/v1/categories/{id}",
            "/api/v1/categories/boots".into(),
            None,
            "category.delete",
        ),
        (
            "GET",
            "/api/v1/persons/{id}/export",
            "/api/v1/persons/erase-me/export".into(),
            None,
            "person.export",
        ),
        (
            "DELETE",
            "/api/v1/persons/{id}",
            "/api/v1/persons/erase-me".into(),
            None,
            "person.erase",
        ),
    ];
    for (method, doc_path, path, body, action) in later {
        let before = count();
        let (s, answer) = send(method, &api(&path), &org.api_key, body);
        assert!((200..300).contains(&s), "{method} {path}: {s} {answer}");
        assert_eq!(count(), before + 1, "{method} {path} left no audit row");
        let (_, top) = api_get(&base, &org.api_key, "/api/v1/audit-log?limit=1");
        assert_eq!(top["data"][0]["action"], action, "{top}");
        if action.starts_with("person.") {
            // the person appears only as a keyed pseudonym
            assert!(!top.to_string().contains("erase-me"), "{top}");
        }
        done.insert((method.to_owned(), doc_path.to_owned()));
    }
    // every mutation the document lists was exercised (analysis stores nothing)
    for (method, path) in documented_operations(&base) {
        if method != "GET" && path != "/api/v1/analyze" {
            assert!(
                done.contains(&(method.clone(), path.clone())),
                "{method} {path} is not covered: add it"
            );
        }
    }
    // the log is append-only, even for someone holding the database file (the same triggers
    // are in D1, from the same migrations)
    if let Some(data) = t.data_dir() {
        let db = rusqlite::Connection::open(data.join("crow.db")).unwrap();
        assert!(db.execute("UPDATE audit_log SET action = 'x'", []).is_err());
        assert!(db.execute("DELETE FROM audit_log", []).is_err());
    }
}

#[test]
fn every_mutation_leaves_an_audit_row_native() {
    every_mutation_leaves_an_audit_row(&NativeTarget::unlimited());
}

#[test]
fn every_mutation_leaves_an_audit_row_worker() {
    if let Some(t) = WorkerTarget::start() {
        every_mutation_leaves_an_audit_row(&t);
    }
}

/// `crow token` signs a session for a user made through the API; the server takes it with the
/// user's role, and refuses it once the user is gone.
#[test]
fn user_session_tokens_from_crow_token_work_against_crow_serve() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let org = create_org(&data, "Sessions");
    let config = data.join("crow.toml");
    std::fs::write(&config, "[auth]\njwt_secret = \"an-hs256-secret-of-32-bytes-ok!!\"\n").unwrap();
    let server = ServerProcess::start(&data, 0, &["--config", config.to_str().unwrap()]);
    let base = server.base.clone();
    let (s, user) = send(
        "POST",
        &format!("{base}/api/v1/users"),
        &org.api_key,
        Some(json!({"email": "ana@example.com", "role": "viewer"})),
    );
    assert_eq!(s, 201, "{user}");
    let id = user["id"].as_str().unwrap();
    let token = crow(
        &data,
        &[
            "token",
            "--org",
            &org.org_id,
            "--user",
            id,
            "--config",
            config.to_str().unwrap(),
        ],
    );
    let token = token.trim();
    assert_eq!(token.matches('.').count(), 2, "{token}");
    let (s, body) = api_get(&base, token, "/api/v1/interactions");
    assert_eq!(s, 200, "{body}");
    let (s, body) = api_get(&base, token, "/api/v1/audit-log");
    assert_eq!(s, 403, "a viewer does not read the audit log: {body}");
    let (s, _) = send("DELETE", &format!("{base}/api/v1/users/{id}"), &org.api_key, None);
    assert_eq!(s, 204);
    let (s, _) = api_get(&base, token, "/api/v1/interactions");
    assert_eq!(s, 401);
    server.stop();
}
