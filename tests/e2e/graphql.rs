//! GraphQL at `/graphql` over real HTTP and a real WebSocket from `crow serve`: queries and
//! mutations with the REST API's keys, roles and validation, the depth and complexity limits,
//! and live subscriptions (graphql-transport-ws) that deliver an org's own events and insights
//! and nobody else's.

use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use crow_e2e::*;
use serde_json::{Value, json};
use tungstenite::client::IntoClientRequest;
use tungstenite::{Message, WebSocket};

/// POSTs a GraphQL request; returns (status, JSON body).
fn gql(base: &str, key: Option<&str>, query: &str, variables: Value) -> (u16, Value) {
    let mut req = client()
        .post(format!("{base}/graphql"))
        .json(&json!({"query": query, "variables": variables}));
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    let resp = req.send().unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}")),
    )
}

/// The data of a GraphQL answer that must have no errors.
fn ok(answer: (u16, Value)) -> Value {
    let (status, body) = answer;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("errors").is_none(), "{body}");
    body["data"].clone()
}

/// The first error of a GraphQL answer that must have one: (code, message).
fn first_error(body: &Value) -> (String, String) {
    let e = &body["errors"][0];
    assert!(e.is_object(), "no error in {body}");
    (
        e["extensions"]["code"].as_str().unwrap_or_default().to_owned(),
        e["message"].as_str().unwrap_or_default().to_owned(),
    )
}

/// Sends one event through the website ingest endpoint with the org's public write key.
fn ingest(base: &str, write_key: &str, id: &str, name: &str) {
    let r = client()
        .post(format!("{base}/api/v1/events"))
        .json(&json!({"k": write_key, "b": [
            {"i": id, "t": "t", "n": name, "a": "anon-gql", "p": {"plan": "pro"},
             "c": {"u": "https://shop.test/pricing", "ti": "Pricing"}}
        ]}))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "{}", r.text().unwrap_or_default());
}

/// A graphql-transport-ws client.
struct Ws {
    ws: WebSocket<TcpStream>,
    /// Messages read while waiting for another subscription's.
    pending: Vec<Value>,
}

/// How a socket ended.
#[derive(Debug)]
enum Closed {
    /// The server closed it: (code, reason).
    Frame(u16, String),
    /// Nothing came before the deadline.
    Timeout,
}

impl Ws {
    /// Opens `/graphql` with the graphql-transport-ws subprotocol and sends `connection_init`.
    fn open(base: &str, header: Option<&str>, init: Value) -> Ws {
        let addr = base.trim_start_matches("http://");
        let mut req = format!("ws://{addr}/graphql").into_client_request().unwrap();
        req.headers_mut()
            .insert("sec-websocket-protocol", "graphql-transport-ws".parse().unwrap());
        if let Some(h) = header {
            req.headers_mut().insert("authorization", h.parse().unwrap());
        }
        let stream = TcpStream::connect(addr).unwrap();
        let (ws, resp) = tungstenite::client(req, stream).unwrap_or_else(|e| panic!("handshake: {e}"));
        assert_eq!(
            resp.headers()
                .get("sec-websocket-protocol")
                .and_then(|v| v.to_str().ok()),
            Some("graphql-transport-ws")
        );
        let mut ws = Ws {
            ws,
            pending: Vec::new(),
        };
        ws.send(json!({"type": "connection_init", "payload": init}));
        ws
    }

    /// Opens and expects `connection_ack`.
    fn connect(base: &str, header: Option<&str>, init: Value) -> Ws {
        let mut ws = Ws::open(base, header, init);
        let ack = ws.read(Instant::now() + Duration::from_secs(10)).unwrap();
        assert_eq!(ack["type"], "connection_ack", "{ack}");
        ws
    }

    fn send(&mut self, v: Value) {
        self.ws.send(Message::text(v.to_string())).unwrap();
    }

    fn subscribe(&mut self, id: &str, query: &str, variables: Value) {
        self.send(json!({"id": id, "type": "subscribe", "payload": {"query": query, "variables": variables}}));
    }

    /// The next protocol message, answering pings.
    fn read(&mut self, deadline: Instant) -> Result<Value, Closed> {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Closed::Timeout);
            }
            self.ws.get_ref().set_read_timeout(Some(left)).unwrap();
            match self.ws.read() {
                Ok(Message::Text(t)) => {
                    let v: Value = serde_json::from_str(t.as_str()).unwrap();
                    if v["type"] == "ping" {
                        self.send(json!({"type": "pong"}));
                        continue;
                    }
                    return Ok(v);
                }
                Ok(Message::Close(frame)) => {
                    let (code, reason) = frame
                        .map(|f| (u16::from(f.code), f.reason.to_string()))
                        .unwrap_or((1005, String::new()));
                    return Err(Closed::Frame(code, reason));
                }
                Ok(_) => {}
                Err(tungstenite::Error::Io(e))
                    if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
                Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                    return Err(Closed::Frame(1006, String::new()));
                }
                Err(e) => panic!("websocket: {e}"),
            }
        }
    }

    /// The next message of subscription `id` (`next`, `error` or `complete`), keeping the others.
    fn next_for(&mut self, id: &str, deadline: Instant) -> Result<Value, Closed> {
        if let Some(i) = self.pending.iter().position(|m| m["id"] == id) {
            return Ok(self.pending.remove(i));
        }
        loop {
            let m = self.read(deadline)?;
            if m["id"] == id {
                return Ok(m);
            }
            self.pending.push(m);
        }
    }
}

const INTERACTION_CREATED: &str = "subscription($org: ID!) { interactionCreated(orgId: $org) {
    id type name properties source context { page { url title } } } }";

/// Ingests events (a new id each time) until subscription `sub` delivers one of them: the
/// subscription is live once the server has polled it, which the protocol does not announce.
/// Returns the ids sent and the first interaction received.
fn ingest_until_received(base: &str, write_key: &str, ws: &mut Ws, sub: &str, prefix: &str) -> (Vec<String>, Value) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut sent = Vec::new();
    for attempt in 0.. {
        let id = format!("{prefix}-{attempt}");
        ingest(base, write_key, &id, "Live Test");
        sent.push(id);
        let wait = (Instant::now() + Duration::from_millis(500)).min(deadline);
        match ws.next_for(sub, wait) {
            Ok(m) => {
                assert_eq!(m["type"], "next", "{m}");
                let i = m["payload"]["data"]["interactionCreated"].clone();
                return (sent, i);
            }
            Err(Closed::Timeout) if Instant::now() < deadline => {}
            Err(e) => panic!("no interaction within 10 s on subscription {sub}: {e:?}"),
        }
    }
    unreachable!()
}

#[test]
fn queries_and_mutations_answer_with_the_rest_keys_roles_and_validation() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let org = create_org(&data, "Graph Co");
    let server = ServerProcess::start(&data, 0, &[]);
    let base = server.base.clone();
    let key = Some(org.api_key.as_str());
    ingest(&base, &org.write_key, "gql-1", "Signup Clicked");
    ingest(&base, &org.write_key, "gql-2", "Signup Clicked");

    // organization: the caller's own; any other id is null with NOT_FOUND
    let d = ok(gql(
        &base,
        key,
        "query($id: ID!) { organization(id: $id) { id name createdAt } }",
        json!({"id": org.org_id}),
    ));
    assert_eq!(d["organization"]["name"], "Graph Co", "{d}");
    assert!(d["organization"]["createdAt"].as_str().unwrap().contains('T'), "{d}");
    let (s, body) = gql(
        &base,
        key,
        "{ organization(id: \"org_someone_else\") { name } }",
        json!({}),
    );
    assert_eq!(s, 200);
    assert!(body["data"]["organization"].is_null(), "{body}");
    assert_eq!(first_error(&body).0, "NOT_FOUND", "{body}");

    // interactions: typed, filtered and paged like REST
    let q = "query($after: String) { interactions(filter: {type: TRACK, name: \"Signup Clicked\"}, limit: 1, cursor: $after) {
        nodes { id type name source properties context { page { url title } } timestamp } nextCursor } }";
    let d = ok(gql(&base, key, q, json!({})));
    let page = &d["interactions"];
    assert_eq!(page["nodes"].as_array().unwrap().len(), 1, "{d}");
    let first = &page["nodes"][0];
    assert_eq!(
        (&first["type"], &first["name"], &first["source"]),
        (&json!("TRACK"), &json!("Signup Clicked"), &json!("CROW")),
        "{d}"
    );
    assert_eq!(first["properties"]["plan"], "pro", "{d}");
    assert_eq!(first["context"]["page"]["title"], "Pricing", "{d}");
    let cursor = page["nextCursor"].as_str().expect("a second page").to_owned();
    let d = ok(gql(&base, key, q, json!({"after": cursor})));
    let second = &d["interactions"]["nodes"][0];
    assert_ne!(second["id"], first["id"], "{d}");
    let ids: Vec<&str> = [first, second].iter().map(|n| n["id"].as_str().unwrap()).collect();
    assert!(ids.contains(&"gql-1") && ids.contains(&"gql-2"), "{ids:?}");

    // REST's validation, as BAD_USER_INPUT naming the parameter
    let (_, body) = gql(&base, key, "{ interactions(limit: 0) { nextCursor } }", json!({}));
    let (code, message) = first_error(&body);
    assert_eq!(code, "BAD_USER_INPUT", "{body}");
    assert!(message.contains("limit"), "{body}");
    assert_eq!(body["errors"][0]["extensions"]["status"], 400, "{body}");

    // insights: each selected one is computed
    let day_ago = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        - 86_400_000;
    let d = ok(gql(
        &base,
        key,
        "query($since: String) { insights(dateRange: {since: $since}) {
            since
            traffic { events topPages { path views } }
            sentiment(interval: DAY) { source interval points { count } }
            entities { source entities { text mentions } } } }",
        json!({"since": day_ago.to_string()}),
    ));
    let insights = &d["insights"];
    assert!(insights["traffic"]["events"].as_u64().unwrap() >= 2, "{d}");
    assert_eq!(
        (&insights["sentiment"]["source"], &insights["sentiment"]["interval"]),
        (&json!("INTERACTIONS"), &json!("DAY")),
        "{d}"
    );
    assert!(insights["entities"]["entities"].is_array(), "{d}");
    let (_, body) = gql(
        &base,
        key,
        "{ insights(dateRange: {since: \"2030-01-01T00:00:00Z\", until: \"2020-01-01T00:00:00Z\"}) { traffic { events } } }",
        json!({}),
    );
    assert_eq!(first_error(&body).0, "BAD_USER_INPUT", "{body}");

    // mutations with the owner key: stored, visible over REST, audited
    let d = ok(gql(
        &base,
        key,
        "mutation($p: ProductInput!) { createProduct(input: $p) { id sku name priceCents currency updatedAt } }",
        json!({"p": {"sku": "GQL-1", "name": "Graph Widget", "priceCents": 1299, "currency": "EUR"}}),
    ));
    let product = &d["createProduct"];
    assert_eq!(
        (&product["sku"], &product["priceCents"]),
        (&json!("GQL-1"), &json!(1299)),
        "{d}"
    );
    let id = product["id"].as_str().unwrap();
    let (s, rest) = api_get(&base, &org.api_key, &format!("/api/v1/products/{id}"));
    assert_eq!((s, &rest["name"]), (200, &json!("Graph Widget")), "{rest}");
    let (_, body) = gql(
        &base,
        key,
        "mutation { createProduct(input: {sku: \"GQL-2\", name: \"Bad\", currency: \"euro\"}) { id } }",
        json!({}),
    );
    let (code, message) = first_error(&body);
    assert_eq!(code, "BAD_USER_INPUT", "{body}");
    assert!(
        message.contains("currency") || body.to_string().contains("currency"),
        "{body}"
    );
    let d = ok(gql(
        &base,
        key,
        "mutation { triggerExport(config: {resource: INTERACTIONS, format: JSON, eventType: TRACK}) { id resource format status filters createdAt } }",
        json!({}),
    ));
    let export = &d["triggerExport"];
    assert_eq!(
        (&export["resource"], &export["format"]),
        (&json!("INTERACTIONS"), &json!("JSON")),
        "{d}"
    );
    assert_eq!(export["filters"]["event_type"], "track", "{d}");
    let export_id = export["id"].as_str().unwrap().to_owned();
    wait_for(30, "the export to succeed", || {
        api_get(&base, &org.api_key, &format!("/api/v1/exports/{export_id}")).1["status"] == "succeeded"
    });
    let (_, audit) = api_get(&base, &org.api_key, "/api/v1/audit-log?limit=100");
    let actions: Vec<&str> = audit["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["action"].as_str())
        .collect();
    assert!(
        actions.contains(&"product.create") && actions.contains(&"export.create"),
        "{actions:?}"
    );

    // a viewer key reads, but both mutations are FORBIDDEN with REST's reason
    let resp = client()
        .post(format!("{base}/api/v1/api-keys"))
        .bearer_auth(&org.api_key)
        .json(&json!({"role": "viewer", "name": "gql viewer"}))
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    let viewer: Value = resp.json().unwrap();
    let viewer = viewer["secret"].as_str().unwrap().to_owned();
    ok(gql(
        &base,
        Some(&viewer),
        "{ interactions { nodes { id } } }",
        json!({}),
    ));
    for m in [
        "mutation { createProduct(input: {sku: \"V-1\", name: \"Nope\"}) { id } }",
        "mutation { triggerExport(config: {resource: PRODUCTS}) { id } }",
    ] {
        let (s, body) = gql(&base, Some(&viewer), m, json!({}));
        assert_eq!(s, 200);
        let (code, message) = first_error(&body);
        assert_eq!(code, "FORBIDDEN", "{body}");
        assert_eq!(body["errors"][0]["extensions"]["status"], 403, "{body}");
        assert!(message.contains("viewer"), "{body}");
        assert!(body["data"].is_null(), "{body}");
    }
    let (_, rest) = api_get(&base, &org.api_key, "/api/v1/products?limit=100");
    assert!(!rest.to_string().contains("V-1"), "{rest}");

    // no key, a wrong key, a public write key: 401 with a JSON error
    for k in [None, Some("crow_sk_not_a_key"), Some(org.write_key.as_str())] {
        let (s, body) = gql(&base, k, "{ __typename }", json!({}));
        assert_eq!(s, 401, "{body}");
        assert_eq!(first_error(&body).0, "UNAUTHENTICATED", "{body}");
    }

    // the limits, named in the errors; introspection works
    let deep = format!(
        "{{ __schema {{ types {{ {} name {} }} }} }}",
        "fields { type { ".repeat(4),
        "} } ".repeat(4)
    );
    let (s, body) = gql(&base, key, &deep, json!({}));
    assert_eq!(s, 200);
    let (code, message) = first_error(&body);
    assert_eq!(code, "QUERY_TOO_DEEP", "{body}");
    assert!(message.contains("depth limit is 10"), "{message}");
    assert_eq!(body["errors"][0]["extensions"]["limit"], 10, "{body}");
    let wide: String = (0..30)
        .map(|i| format!("t{i}: insights {{ traffic {{ events }} }} "))
        .collect();
    let (_, body) = gql(&base, key, &format!("{{ {wide} }}"), json!({}));
    let (code, message) = first_error(&body);
    assert_eq!(code, "QUERY_TOO_COMPLEX", "{body}");
    assert!(message.contains("complexity limit is 500"), "{message}");
    let d = ok(gql(
        &base,
        key,
        "{ __schema { queryType { name } subscriptionType { fields { name } } } }",
        json!({}),
    ));
    assert_eq!(d["__schema"]["queryType"]["name"], "Query", "{d}");

    // a plain GET says what the endpoint is
    let r = client().get(format!("{base}/graphql")).send().unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.text().unwrap().contains("graphql-transport-ws"));
    server.stop();
}

#[test]
fn subscriptions_deliver_an_orgs_own_interactions_and_insights_live() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let a = create_org(&data, "Alpha Live");
    let b = create_org(&data, "Bravo Live");
    let server = ServerProcess::start(&data, 0, &[]);
    let base = server.base.clone();

    // A authenticates in connection_init; B with the upgrade request's header
    let mut ws_a = Ws::connect(&base, None, json!({"authorization": format!("Bearer {}", a.api_key)}));
    let mut ws_b = Ws::connect(&base, Some(&format!("Bearer {}", b.api_key)), json!({}));
    ws_a.subscribe("a", INTERACTION_CREATED, json!({"org": a.org_id}));
    ws_b.subscribe("b", INTERACTION_CREATED, json!({"org": b.org_id}));

    // another org's id is an error, not silence
    ws_a.subscribe("spy", INTERACTION_CREATED, json!({"org": b.org_id}));
    let m = ws_a.next_for("spy", Instant::now() + Duration::from_secs(10)).unwrap();
    assert_eq!(m["type"], "next", "{m}");
    assert_eq!(m["payload"]["errors"][0]["extensions"]["code"], "FORBIDDEN", "{m}");
    let m = ws_a.next_for("spy", Instant::now() + Duration::from_secs(10)).unwrap();
    assert_eq!(m["type"], "complete", "{m}");

    // an event ingested over HTTP arrives on its org's subscription
    let (sent_b, got) = ingest_until_received(&base, &b.write_key, &mut ws_b, "b", "bravo-live");
    assert!(sent_b.iter().any(|id| got["id"] == *id), "{got} not in {sent_b:?}");
    let (sent_a, got) = ingest_until_received(&base, &a.write_key, &mut ws_a, "a", "alpha-live");
    assert!(sent_a.iter().any(|id| got["id"] == *id), "{got} not in {sent_a:?}");
    assert_eq!(
        (&got["type"], &got["name"], &got["source"]),
        (&json!("TRACK"), &json!("Live Test"), &json!("CROW")),
        "{got}"
    );
    assert_eq!(got["properties"]["plan"], "pro", "{got}");
    assert_eq!(got["context"]["page"]["title"], "Pricing", "{got}");

    // Both are live now. The bus is ordered: B's marker goes out after A's events and A's marker
    // after B's, so a subscriber that saw the other org's events would see them first.
    ingest(&base, &b.write_key, "bravo-final", "Final");
    ingest(&base, &a.write_key, "alpha-final", "Final");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen_b = Vec::new();
    loop {
        let m = ws_b.next_for("b", deadline).unwrap();
        let id = m["payload"]["data"]["interactionCreated"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(!id.starts_with("alpha"), "B received A's event {id}");
        if id == "bravo-final" {
            break;
        }
        assert!(sent_b.contains(&id), "{id}");
        seen_b.push(id);
    }
    loop {
        let m = ws_a.next_for("a", deadline).unwrap();
        let id = m["payload"]["data"]["interactionCreated"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(!id.starts_with("bravo"), "A received B's event {id}");
        if id == "alpha-final" {
            break;
        }
        assert!(sent_a.contains(&id), "{id}");
    }

    // insightGenerated fires when an insight is computed, here by a GraphQL query
    ws_a.subscribe(
        "ins",
        "subscription($org: ID!) { insightGenerated(orgId: $org) { id kind periodStart periodEnd traffic { events } data } }",
        json!({"org": a.org_id}),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let insight = loop {
        ok(gql(
            &base,
            Some(&a.api_key),
            "{ insights { traffic { events } } }",
            json!({}),
        ));
        match ws_a.next_for("ins", (Instant::now() + Duration::from_millis(500)).min(deadline)) {
            Ok(m) => break m,
            Err(Closed::Timeout) if Instant::now() < deadline => {}
            Err(e) => panic!("no insight within 10 s: {e:?}"),
        }
    };
    let i = &insight["payload"]["data"]["insightGenerated"];
    assert_eq!(i["kind"], "TRAFFIC", "{insight}");
    assert!(i["traffic"]["events"].as_u64().unwrap() >= 2, "{insight}");
    assert_eq!(i["data"]["events"], i["traffic"]["events"], "{insight}");
    // and by a REST call, on the same subscription
    let (s, _) = api_get(&base, &a.api_key, "/api/v1/insights/sentiment");
    assert_eq!(s, 200);
    loop {
        let m = ws_a.next_for("ins", Instant::now() + Duration::from_secs(10)).unwrap();
        if m["payload"]["data"]["insightGenerated"]["kind"] == "SENTIMENT" {
            break;
        }
    }

    // a revoked key stops receiving: one error says so, and the subscription completes
    let resp = client()
        .post(format!("{base}/api/v1/api-keys"))
        .bearer_auth(&a.api_key)
        .json(&json!({"role": "analyst", "name": "gql watcher"}))
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    let watcher: Value = resp.json().unwrap();
    let (secret, prefix) = (watcher["secret"].as_str().unwrap(), watcher["prefix"].as_str().unwrap());
    let mut ws_w = Ws::connect(&base, None, json!({"authorization": format!("Bearer {secret}")}));
    ws_w.subscribe("w", INTERACTION_CREATED, json!({"org": a.org_id}));
    ingest_until_received(&base, &a.write_key, &mut ws_w, "w", "watch");
    let resp = client()
        .delete(format!("{base}/api/v1/api-keys/{prefix}"))
        .bearer_auth(&a.api_key)
        .send()
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.status());
    // a subscription checks its credential again at most every second (crow_server::graphql::RECHECK)
    std::thread::sleep(Duration::from_millis(1200));
    ingest(&base, &a.write_key, "after-revoke", "Live Test");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut m = ws_w.next_for("w", deadline).unwrap();
    // events stored before the revocation may still be in flight
    while m["type"] == "next" && m["payload"]["errors"].is_null() {
        assert_ne!(m["payload"]["data"]["interactionCreated"]["id"], "after-revoke", "{m}");
        m = ws_w.next_for("w", deadline).unwrap();
    }
    let message = m["payload"]["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("revoked"), "{m}");
    assert_eq!(ws_w.next_for("w", deadline).unwrap()["type"], "complete");

    // a socket without a valid key is closed at connection_init
    let mut bad = Ws::open(&base, None, json!({"authorization": "Bearer crow_sk_wrong"}));
    match bad.read(Instant::now() + Duration::from_secs(10)) {
        Err(Closed::Frame(code, reason)) => {
            assert_ne!(code, 1000, "{reason}");
            assert!(reason.contains("Unauthorized"), "{code} {reason}");
        }
        other => panic!("expected a close, got {other:?}"),
    }
    drop((ws_a, ws_b, ws_w));
    server.stop();
}

#[test]
fn graphql_counts_against_the_callers_api_rate_limit() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let org = create_org(&data, "Limited");
    let config: &Path = &data.join("crow.toml");
    std::fs::write(config, "[limits]\napi = { per_minute = 1, burst = 2 }\n").unwrap();
    let server = ServerProcess::start(&data, 0, &["--config", config.to_str().unwrap()]);
    let base = server.base.clone();
    let (s, _) = api_get(&base, &org.api_key, "/api/v1/organization");
    assert_eq!(s, 200);
    ok(gql(&base, Some(&org.api_key), "{ __typename }", json!({})));
    let resp = client()
        .post(format!("{base}/graphql"))
        .bearer_auth(&org.api_key)
        .json(&json!({"query": "{ __typename }"}))
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 429);
    assert!(resp.headers().get("retry-after").is_some());
    let body: Value = resp.json().unwrap();
    assert_eq!(first_error(&body).0, "RATE_LIMITED", "{body}");
    server.stop();
}

#[test]
fn operations_over_an_open_websocket_count_against_the_rate_limit_too() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let org = create_org(&data, "Chatty");
    let config: &Path = &data.join("crow.toml");
    std::fs::write(config, "[limits]\napi = { per_minute = 1, burst = 2 }\n").unwrap();
    let server = ServerProcess::start(&data, 0, &["--config", config.to_str().unwrap()]);
    // the key travels in connection_init (the upgrade counts for the client's address): the
    // key's burst of 2 serves two operations, the third is refused
    let mut ws = Ws::connect(
        &server.base,
        None,
        json!({"authorization": format!("Bearer {}", org.api_key)}),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    for id in ["1", "2"] {
        ws.subscribe(id, "{ __typename }", json!({}));
        let m = ws.next_for(id, deadline).unwrap();
        assert_eq!(m["payload"]["data"]["__typename"], "Query", "{m}");
    }
    ws.subscribe("3", "{ __typename }", json!({}));
    let third = ws.next_for("3", deadline).unwrap();
    let error = &third["payload"]["errors"][0];
    assert_eq!(error["extensions"]["code"], "RATE_LIMITED", "{third}");
    assert!(error["message"].as_str().unwrap().contains("retry"), "{third}");
    drop(ws);
    server.stop();
}
