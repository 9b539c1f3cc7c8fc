//! End-to-end tests of `IngestService::handle` and `import` against crow-core's in-memory store.

use crow_core::access::{ApiKey, AuditEntry, AuditQuery, NewApiKey, NewAuditEntry, Role, User};
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

use base64::Engine as _;
use crow_core::keys::{self, NewOrgKeys};
use crow_core::model::*;
use crow_core::ports::*;
use crow_core::testing::MemoryStore;
use crow_ingest::http::{HttpRequest, HttpResponse};
use crow_ingest::ingest::{IngestConfig, IngestReport, IngestService};
use crow_ingest::jobs::InteractionBatch;
use futures::executor::block_on;
use serde_json::{Value, json};

const NOW: i64 = 1_714_564_800_000;

/// A store whose `append` can be made to fail (to see the 503), delegating to [`MemoryStore`].
#[derive(Debug, Default)]
struct Flaky {
    inner: MemoryStore,
    fail: AtomicBool,
}

#[async_trait::async_trait]
impl EventStore for Flaky {
    async fn append(
        &self,
        org_id: &str,
        events: Vec<Interaction>,
        follow_up: Vec<NewJob>,
    ) -> crow_core::Result<AppendOutcome> {
        if self.fail.load(Ordering::SeqCst) {
            return Err(crow_core::Error::Unavailable("disk on fire".into()));
        }
        self.inner.append(org_id, events, follow_up).await
    }
    async fn get_interactions(&self, org_id: &str, ids: &[String]) -> crow_core::Result<Vec<Interaction>> {
        self.inner.get_interactions(org_id, ids).await
    }
    async fn list_interactions(&self, org_id: &str, query: &InteractionQuery) -> crow_core::Result<Page<Interaction>> {
        self.inner.list_interactions(org_id, query).await
    }
    async fn store_texts(&self, org_id: &str, texts: &[crow_core::model::InteractionText]) -> crow_core::Result<()> {
        self.inner.store_texts(org_id, texts).await
    }
    async fn apply_enrichment(&self, org_id: &str, enrichment: &[Enrichment]) -> crow_core::Result<()> {
        self.inner.apply_enrichment(org_id, enrichment).await
    }
    async fn link_identity(&self, org_id: &str, alias_id: &str, person_id: &str, at: Millis) -> crow_core::Result<()> {
        self.inner.link_identity(org_id, alias_id, person_id, at).await
    }
    async fn resolve_person(&self, org_id: &str, id: &str) -> crow_core::Result<Option<String>> {
        self.inner.resolve_person(org_id, id).await
    }
    async fn latest_session(&self, org_id: &str, person_id: &str, at: Millis) -> crow_core::Result<Option<Session>> {
        self.inner.latest_session(org_id, person_id, at).await
    }
    async fn refresh_sessions(&self, org_id: &str, session_ids: &[String]) -> crow_core::Result<()> {
        self.inner.refresh_sessions(org_id, session_ids).await
    }
    async fn get_session(&self, org_id: &str, id: &str) -> crow_core::Result<Option<Session>> {
        self.inner.get_session(org_id, id).await
    }
    async fn list_sessions(&self, org_id: &str, query: &SessionQuery) -> crow_core::Result<Page<Session>> {
        self.inner.list_sessions(org_id, query).await
    }
    async fn traffic_summary(
        &self,
        org_id: &str,
        since: Millis,
        until: Millis,
        top: usize,
    ) -> crow_core::Result<TrafficSummary> {
        self.inner.traffic_summary(org_id, since, until, top).await
    }
    async fn funnel(
        &self,
        org_id: &str,
        steps: &[FunnelStep],
        since: Millis,
        until: Millis,
    ) -> crow_core::Result<Vec<FunnelRow>> {
        self.inner.funnel(org_id, steps, since, until).await
    }
    async fn sentiment_series(
        &self,
        org_id: &str,
        source: crow_core::ports::SentimentSource,
        since: Millis,
        until: Millis,
        bucket_ms: i64,
    ) -> crow_core::Result<Vec<crow_core::ports::SentimentBucket>> {
        self.inner
            .sentiment_series(org_id, source, since, until, bucket_ms)
            .await
    }
    async fn top_entities(
        &self,
        org_id: &str,
        query: &crow_core::ports::EntityQuery,
    ) -> crow_core::Result<Vec<crow_core::ports::EntityCount>> {
        self.inner.top_entities(org_id, query).await
    }
}

#[async_trait::async_trait]
impl AccountStore for Flaky {
    async fn create_org(&self, org: &Organization, keys: &NewOrgKeys) -> crow_core::Result<()> {
        self.inner.create_org(org, keys).await
    }
    async fn get_org(&self, org_id: &str) -> crow_core::Result<Option<Organization>> {
        self.inner.get_org(org_id).await
    }
    async fn list_orgs(&self) -> crow_core::Result<Vec<Organization>> {
        self.inner.list_orgs().await
    }
    async fn authenticate(&self, presented: &str) -> crow_core::Result<Option<KeyGrant>> {
        self.inner.authenticate(presented).await
    }
    async fn org_grant(&self, org_id: &str) -> crow_core::Result<Option<KeyGrant>> {
        self.inner.org_grant(org_id).await
    }
    async fn update_org(&self, org_id: &str, name: &str) -> crow_core::Result<Organization> {
        self.inner.update_org(org_id, name).await
    }
    async fn create_api_key(&self, org_id: &str, key: &NewApiKey) -> crow_core::Result<ApiKey> {
        self.inner.create_api_key(org_id, key).await
    }
    async fn list_api_keys(&self, org_id: &str, limit: u32, cursor: Option<&str>) -> crow_core::Result<Page<ApiKey>> {
        self.inner.list_api_keys(org_id, limit, cursor).await
    }
    async fn get_api_key(&self, org_id: &str, prefix: &str) -> crow_core::Result<Option<ApiKey>> {
        self.inner.get_api_key(org_id, prefix).await
    }
    async fn revoke_api_key(&self, org_id: &str, prefix: &str, now: Millis) -> crow_core::Result<Option<ApiKey>> {
        self.inner.revoke_api_key(org_id, prefix, now).await
    }
    async fn create_user(&self, org_id: &str, user: &User) -> crow_core::Result<()> {
        self.inner.create_user(org_id, user).await
    }
    async fn list_users(&self, org_id: &str, limit: u32, cursor: Option<&str>) -> crow_core::Result<Page<User>> {
        self.inner.list_users(org_id, limit, cursor).await
    }
    async fn get_user(&self, org_id: &str, user_id: &str) -> crow_core::Result<Option<User>> {
        self.inner.get_user(org_id, user_id).await
    }
    async fn update_user(
        &self,
        org_id: &str,
        user_id: &str,
        name: Option<Option<String>>,
        role: Option<Role>,
    ) -> crow_core::Result<Option<User>> {
        self.inner.update_user(org_id, user_id, name, role).await
    }
    async fn delete_user(&self, org_id: &str, user_id: &str) -> crow_core::Result<bool> {
        self.inner.delete_user(org_id, user_id).await
    }
    async fn append_audit(&self, entries: &[NewAuditEntry]) -> crow_core::Result<()> {
        self.inner.append_audit(entries).await
    }
    async fn list_audit(&self, org_id: &str, query: &AuditQuery) -> crow_core::Result<Page<AuditEntry>> {
        self.inner.list_audit(org_id, query).await
    }
}

struct Fixture {
    svc: IngestService<Flaky>,
    creds: OrgCredentials,
}

fn fixture_with(config: IngestConfig) -> Fixture {
    let svc = IngestService::new(Flaky::default(), config);
    let creds = add_org(&svc, 7);
    Fixture { svc, creds }
}

fn fixture() -> Fixture {
    fixture_with(IngestConfig::default())
}

fn add_org(svc: &IngestService<Flaky>, seed: u8) -> OrgCredentials {
    let random: [u8; keys::RANDOM_BYTES] = std::array::from_fn(|i| (i as u8).wrapping_mul(31).wrapping_add(seed));
    let (org, creds, keys) = keys::generate("Acme", NOW, &random);
    block_on(svc.store().create_org(&org, &keys)).unwrap();
    creds
}

fn post(path: &str, query: Option<&str>, headers: &[(&str, &str)], body: impl Into<Vec<u8>>) -> HttpRequest {
    HttpRequest {
        method: "POST".into(),
        path: path.into(),
        query: query.map(str::to_owned),
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), (*v).to_owned()))
            .collect(),
        body: body.into(),
        peer_ip: Some("198.51.100.200".parse().unwrap()),
    }
}

impl Fixture {
    fn send(&self, req: &HttpRequest) -> (HttpResponse, Value, IngestReport) {
        let (resp, report) = block_on(self.svc.handle(req, NOW));
        let body = resp.json_body().unwrap_or(Value::Null);
        (resp, body, report)
    }

    fn stored(&self) -> Vec<Interaction> {
        let q = InteractionQuery {
            limit: 1000,
            ..Default::default()
        };
        block_on(self.svc.store().list_interactions(&self.creds.org_id, &q))
            .unwrap()
            .data
    }

    fn crow(&self, body: Value) -> HttpRequest {
        let mut body = body;
        body["k"] = Value::from(self.creds.write_key.clone());
        post(
            "/api/v1/events",
            None,
            &[("content-type", "text/plain")],
            serde_json::to_vec(&body).unwrap(),
        )
    }
}

fn header<'a>(resp: &'a HttpResponse, name: &str) -> Option<&'a str> {
    resp.headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn ten_with_two_bad() -> Value {
    let mut events: Vec<Value> = (0..10)
        .map(|i| json!({"i": format!("evt-{i}"), "t": "t", "n": "Viewed", "a": format!("anon-{i}"), "ts": NOW - 1000 + i}))
        .collect();
    events[3] = json!({"i": "evt-3", "t": "t", "a": "anon-3"}); // no name
    events[7] = json!({"i": "evt-7", "t": "p", "a": "anon-7", "ts": "last tuesday"});
    json!({"sa": NOW, "b": events})
}

#[test]
fn partial_batch_is_accepted_and_a_resend_stores_nothing_twice() {
    let f = fixture();
    let req = f.crow(ten_with_two_bad());
    let (resp, body, report) = f.send(&req);
    assert_eq!(resp.status, 200, "{body}");
    assert_eq!(body["accepted"], 8);
    assert_eq!(body["duplicates"], 0);
    let rejected = body["rejected"].as_array().unwrap();
    assert_eq!(rejected.len(), 2);
    assert_eq!(
        rejected[0],
        json!({"index": 3, "field": "/b/3/n", "reason": rejected[0]["reason"]})
    );
    assert_eq!(rejected[1]["field"], "/b/7/ts");
    assert_eq!(report.inserted_ids.len(), 8, "the ids stored, for live subscribers");
    assert_eq!(
        report,
        IngestReport {
            accepted: 8,
            duplicates: 0,
            rejected: vec![("invalid_field", 2)],
            client_dropped: 0,
            org_id: Some(f.creds.org_id.clone()),
            inserted_ids: report.inserted_ids.clone(),
        }
    );
    assert_eq!(f.svc.store().inner.event_count(&f.creds.org_id), 8);
    // the follow-up jobs were enqueued with the events
    let jobs = block_on(f.svc.store().inner.reserve(queues::INTERACTION, 10, 60_000, NOW)).unwrap();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].kind, crow_ingest::jobs::PROCESS_INTERACTION);
    let batch: InteractionBatch = serde_json::from_value(jobs[0].payload.clone()).unwrap();
    assert_eq!(batch.event_ids.len(), 8);
    assert_eq!(batch.org_id, f.creds.org_id);
    let archive = block_on(f.svc.store().inner.reserve(queues::PROCESSING, 10, 60_000, NOW)).unwrap();
    assert_eq!(archive[0].kind, crow_ingest::jobs::ARCHIVE_BATCH);
    assert_eq!(archive[0].payload, jobs[0].payload);

    let (resp, body, report) = f.send(&req);
    assert_eq!(resp.status, 200);
    assert_eq!(
        (body["accepted"].as_u64(), body["duplicates"].as_u64()),
        (Some(0), Some(8))
    );
    assert_eq!((report.accepted, report.duplicates), (0, 8));
    assert_eq!(f.svc.store().inner.event_count(&f.creds.org_id), 8);
}

#[test]
fn id_less_events_are_deduplicated_by_content() {
    let f = fixture();
    let body = json!({"b": [{"t": "p", "a": "x", "ts": NOW - 5}, {"t": "p", "a": "x", "ts": NOW - 4}, {"t": "p", "a": "x", "ts": NOW - 5}]});
    let (_, b, _) = f.send(&f.crow(body.clone()));
    assert_eq!((b["accepted"].as_u64(), b["duplicates"].as_u64()), (Some(2), Some(1)));
    let mut again = body;
    again["sa"] = json!(NOW + 10); // a resend carries a new sentAt
    let (_, b, _) = f.send(&f.crow(again));
    assert_eq!((b["accepted"].as_u64(), b["duplicates"].as_u64()), (Some(0), Some(3)));
}

#[test]
fn all_bad_is_400_with_the_rejected_list() {
    let f = fixture();
    let (resp, body, report) = f.send(&f.crow(json!({"b": [{"t": "p"}, {"t": "nope", "a": "x"}]})));
    assert_eq!(resp.status, 400);
    assert_eq!(header(&resp, "content-type"), Some("application/problem+json"));
    assert_eq!(body["type"], "/problems/no_valid_events");
    assert_eq!(body["rejected"].as_array().unwrap().len(), 2);
    assert_eq!(body["rejected"][1]["field"], "/b/1/t");
    assert_eq!(report.rejected, vec![("invalid_field", 2)]);
}

fn problem(f: &Fixture, req: &HttpRequest) -> (u16, String, Value) {
    let (resp, body, _) = f.send(req);
    assert_eq!(
        header(&resp, "content-type"),
        Some("application/problem+json"),
        "{body}"
    );
    (resp.status, body["type"].as_str().unwrap_or_default().to_owned(), body)
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

#[test]
fn every_limit_has_its_own_error() {
    let f = fixture();
    let wk = f.creds.write_key.clone();
    let q = format!("k={wk}");
    let q = Some(q.as_str());

    // body > 1 MiB
    let one = json!({"t": "p", "a": "x", "p": {"pad": "y".repeat(60_000)}});
    let big = json!({"b": vec![one; 20]});
    let (s, t, _) = problem(&f, &post("/api/v1/events", q, &[], serde_json::to_vec(&big).unwrap()));
    assert_eq!((s, t.as_str()), (413, "/problems/body_too_large"));

    // gzip bomb: 100 MB of zeros
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let chunk = vec![0u8; 1 << 20];
    for _ in 0..100 {
        enc.write_all(&chunk).unwrap();
    }
    let bomb = enc.finish().unwrap();
    let started = std::time::Instant::now();
    let (s, t, _) = problem(&f, &post("/api/v1/events", q, &[("content-encoding", "gzip")], bomb));
    assert_eq!((s, t.as_str()), (413, "/problems/body_too_large"));
    assert!(started.elapsed().as_secs() < 5);

    // > 500 events
    let many: Vec<Value> = (0..501).map(|i| json!({"t": "p", "a": format!("a{i}")})).collect();
    let (s, t, _) = problem(
        &f,
        &post(
            "/api/v1/events",
            q,
            &[],
            serde_json::to_vec(&json!({"b": many})).unwrap(),
        ),
    );
    assert_eq!((s, t.as_str()), (413, "/problems/too_many_events"));

    // nesting 100k deep: refused before the parser recurses
    let deep = format!(
        "{{\"b\":[{{\"t\":\"p\",\"a\":\"x\",\"p\":{{\"x\":{}{}}}}}]}}",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let (s, t, body) = problem(&f, &post("/api/v1/events", q, &[], deep));
    assert_eq!((s, t.as_str()), (400, "/problems/too_deep"));
    assert_eq!(body["max_depth"], 32);

    // a string > 64 KiB: that event is rejected, the other kept
    let long = json!({"b": [{"t": "p", "a": "x", "p": {"essay": "z".repeat(65_537)}}, {"t": "p", "a": "y"}]});
    let (resp, body, _) = f.send(&post("/api/v1/events", q, &[], serde_json::to_vec(&long).unwrap()));
    assert_eq!(resp.status, 200);
    assert_eq!(body["accepted"], 1);
    assert_eq!(body["rejected"][0]["field"], "/b/0/p/essay");

    // invalid UTF-8
    let (s, t, _) = problem(
        &f,
        &post(
            "/api/v1/events",
            q,
            &[],
            b"{\"b\":[{\"t\":\"p\",\"a\":\"\xc3\x28\"}]}".to_vec(),
        ),
    );
    assert_eq!((s, t.as_str()), (400, "/problems/invalid_utf8"));

    // malformed JSON names line and column
    let (s, t, body) = problem(
        &f,
        &post("/api/v1/events", q, &[], "{\"b\": [\n  {\"t\": \"p\",, }\n]}"),
    );
    assert_eq!((s, t.as_str()), (400, "/problems/bad_json"));
    assert_eq!((body["line"].as_u64(), body["column"].as_u64()), (Some(2), Some(13)));
    assert!(body["detail"].as_str().unwrap().contains("line 2, column 13"), "{body}");

    // unknown content encoding
    let (s, t, _) = problem(&f, &post("/api/v1/events", q, &[("content-encoding", "br")], "{}"));
    assert_eq!((s, t.as_str()), (415, "/problems/unsupported_encoding"));

    // corrupt gzip
    let (s, t, _) = problem(
        &f,
        &post("/api/v1/events", q, &[("content-encoding", "gzip")], "not gzip"),
    );
    assert_eq!((s, t.as_str()), (400, "/problems/bad_encoding"));

    // the service is still fine afterwards, gzip works
    let ok = gzip(&serde_json::to_vec(&json!({"b": [{"t": "p", "a": "z"}]})).unwrap());
    let (resp, body, _) = f.send(&post("/api/v1/events", q, &[("content-encoding", "gzip")], ok));
    assert_eq!((resp.status, body["accepted"].as_u64()), (200, Some(1)));
}

#[test]
fn keys_missing_unknown_and_secret() {
    let f = fixture();
    let other = add_org(&f.svc, 99);
    let body = serde_json::to_vec(&json!({"b": [{"t": "p", "a": "x"}]})).unwrap();

    let (s, t, resp_body) = problem(&f, &post("/api/v1/events", None, &[], body.clone()));
    assert_eq!((s, t.as_str()), (401, "/problems/missing_key"));
    assert!(resp_body["detail"].as_str().unwrap().contains("writeKey"));

    // an unknown key of the right shape and garbage get the same answer
    let (s1, t1, b1) = problem(
        &f,
        &post(
            "/api/v1/events",
            Some("k=wk_00000000000000000000000000000000"),
            &[],
            body.clone(),
        ),
    );
    let (s2, t2, b2) = problem(&f, &post("/api/v1/events", Some("k=nonsense"), &[], body.clone()));
    assert_eq!((s1, t1.as_str()), (401, "/problems/invalid_key"));
    assert_eq!((s1, &t1, &b1["detail"]), (s2, &t2, &b2["detail"]));
    let (_, _, report) = f.send(&post("/api/v1/events", Some("k=nonsense"), &[], body.clone()));
    assert_eq!(report.rejected, vec![("unauthorized", 1)]);

    // the secret API key may ingest too
    let (resp, _, _) = f.send(&post(
        "/api/v1/events",
        None,
        &[("authorization", &format!("Bearer {}", f.creds.api_key))],
        body.clone(),
    ));
    assert_eq!(resp.status, 200);
    // another org's key stores into that org only
    let (resp, _, _) = f.send(&post(
        "/api/v1/events",
        Some(&format!("writeKey={}", other.write_key)),
        &[],
        body,
    ));
    assert_eq!(resp.status, 200);
    assert_eq!(f.svc.store().inner.event_count(&other.org_id), 1);
    assert_eq!(f.svc.store().inner.event_count(&f.creds.org_id), 1);
}

#[test]
fn segment_basic_auth_batch_as_analytics_python_sends_it() {
    let f = fixture();
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{}:", f.creds.write_key));
    let body = json!({
        "batch": [
            {"integrations": {}, "anonymousId": null, "properties": {"plan": "pro"}, "timestamp": "2024-05-01T11:59:59.000+00:00",
             "context": {"library": {"name": "analytics-python", "version": "2.4.0"}}, "userId": "user-1", "type": "track",
             "event": "Upgraded", "messageId": "9a4f1f4e-0000-4000-8000-000000000001"},
            {"integrations": {}, "anonymousId": null, "timestamp": "2024-05-01T11:59:59.000+00:00",
             "context": {"library": {"name": "analytics-python", "version": "2.4.0"}}, "type": "identify", "userId": "user-1",
             "traits": {"plan": "pro"}, "messageId": "9a4f1f4e-0000-4000-8000-000000000002"}
        ],
        "sentAt": "2024-05-01T12:00:00.000000+00:00",
    });
    let gz = gzip(&serde_json::to_vec(&body).unwrap());
    let req = post(
        "/v1/batch",
        None,
        &[
            ("Content-Type", "application/json"),
            ("Content-Encoding", "gzip"),
            ("Authorization", &format!("Basic {basic}")),
            ("User-Agent", "analytics-python/2.4.0"),
        ],
        gz,
    );
    let (resp, body, _) = f.send(&req);
    assert_eq!(resp.status, 200, "{body}");
    assert_eq!(body["success"], true);
    assert_eq!(body["accepted"], 2);
    let stored = f.stored();
    let ev = stored
        .iter()
        .find(|e| e.id == "9a4f1f4e-0000-4000-8000-000000000001")
        .unwrap();
    assert_eq!(
        (ev.source, ev.user_id.as_deref(), ev.anonymous_id.as_deref()),
        (Source::Segment, Some("user-1"), None)
    );
    assert_eq!(ev.timestamp, NOW - 1000);
    assert!(
        ev.context.ip.is_none(),
        "a server library's address is not the visitor's"
    );

    // a single-event route with the key in the body
    let req = post(
        "/v1/track",
        None,
        &[],
        serde_json::to_vec(&json!({"writeKey": f.creds.write_key, "userId": "u2", "event": "Ping"})).unwrap(),
    );
    let (resp, body, _) = f.send(&req);
    assert_eq!((resp.status, body["accepted"].as_u64()), (200, Some(1)));
    // Basic auth with a wrong key
    let bad = base64::engine::general_purpose::STANDARD.encode("wk_wrong:");
    let req = post(
        "/v1/track",
        None,
        &[("authorization", &format!("Basic {bad}"))],
        serde_json::to_vec(&json!({"userId": "u2", "event": "Ping"})).unwrap(),
    );
    let (resp, body, _) = f.send(&req);
    assert_eq!(resp.status, 401);
    assert_eq!(body["code"], "invalid_key");
    assert!(body["message"].is_string(), "Segment's clients read code and message");
}

#[test]
fn posthog_base64_form_and_gzip() {
    let f = fixture();
    let events = json!([
        {"uuid": "01890000-0000-7000-8000-0000000000a1", "event": "$pageview", "timestamp": "2024-05-01T11:59:59.000Z",
         "properties": {"token": f.creds.write_key, "distinct_id": "d-1", "$current_url": "https://shop.example/a", "$lib": "web", "$lib_version": "1.130.0"}},
        {"uuid": "01890000-0000-7000-8000-0000000000a2", "event": "add_to_cart",
         "properties": {"token": f.creds.write_key, "distinct_id": "d-1", "$lib": "web", "sku": "42"}},
    ]);
    let b64 = base64::engine::general_purpose::STANDARD.encode(serde_json::to_vec(&events).unwrap());
    let body = format!(
        "data={}",
        form_urlencoded::byte_serialize(b64.as_bytes()).collect::<String>()
    );
    let req = post(
        "/e/",
        Some(&format!("ip=1&_={NOW}&ver=1.130.0&compression=base64")),
        &[
            ("content-type", "application/x-www-form-urlencoded"),
            ("origin", "https://shop.example"),
            (
                "user-agent",
                "Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/125.0",
            ),
        ],
        body,
    );
    let (resp, body, _) = f.send(&req);
    assert_eq!(resp.status, 200, "{body}");
    assert_eq!(body["status"], 1);
    assert_eq!(body["accepted"], 2);
    assert_eq!(
        header(&resp, "access-control-allow-origin"),
        Some("https://shop.example")
    );
    let stored = f.stored();
    let pv = stored.iter().find(|e| e.event_type == EventType::Page).unwrap();
    assert_eq!(pv.source, Source::Posthog);
    assert_eq!(pv.context.page.as_ref().unwrap().path.as_deref(), Some("/a"));
    assert!(
        pv.context.user_agent.is_some(),
        "posthog-js: the request's user agent is parsed"
    );

    // posthog-python: JSON batch, gzip, api_key
    let body = json!({"api_key": f.creds.write_key, "sent_at": "2024-05-01T12:00:00+00:00", "historical_migration": false, "batch": [
        {"event": "server_event", "distinct_id": "d-2", "uuid": "01890000-0000-7000-8000-0000000000a3", "timestamp": "2024-05-01T12:00:00+00:00",
         "properties": {"$lib": "posthog-python", "$lib_version": "7.9.1"}}]});
    let req = post(
        "/batch/",
        None,
        &[("content-type", "application/json"), ("content-encoding", "gzip")],
        gzip(&serde_json::to_vec(&body).unwrap()),
    );
    let (resp, body, _) = f.send(&req);
    assert_eq!((resp.status, body["accepted"].as_u64()), (200, Some(1)), "{body}");
}

#[test]
fn pii_is_scrubbed_before_storage() {
    let f = fixture();
    let raw = [
        "jane.doe@example.com",
        "+44 20 7946 0958",
        "4111 1111 1111 1111",
        "DE89370400440532013000",
        "secret-token-value-123",
        "john.smith@example.org",
        "192.0.2.55",
    ];
    let body = json!({"b": [
        {"i": "pii-1", "t": "t", "n": "Contact form", "u": "jane.doe@example.com",
         "p": {"message": "call me on +44 20 7946 0958 or mail jane.doe@example.com", "card": "4111 1111 1111 1111", "iban": "DE89370400440532013000",
               "nested": {"list": ["john.smith@example.org"]}},
         "c": {"u": "https://shop.example/checkout?email=john.smith%40example.org&token=secret-token-value-123", "ip": "192.0.2.55"}},
    ]});
    let (resp, b, _) = f.send(&f.crow(body));
    assert_eq!(resp.status, 200, "{b}");
    let stored = f.stored();
    assert_eq!(stored.len(), 1);
    let text = serde_json::to_string(&stored[0]).unwrap();
    for value in raw {
        assert!(!text.contains(value), "{value} survived: {text}");
    }
    assert!(!text.contains("john.smith%40example.org"), "{text}");
    assert!(stored[0].pii_scrubbed > 0);
    // the id is pseudonymized, the same way every time
    let user = stored[0].user_id.clone().unwrap();
    let (_, _, _) = f.send(&f.crow(json!({"b": [{"i": "pii-2", "t": "p", "u": "jane.doe@example.com"}]})));
    let again = f.stored().into_iter().find(|e| e.id == "pii-2").unwrap();
    assert_eq!(again.user_id.as_deref(), Some(user.as_str()));
}

#[test]
fn bots_are_flagged_not_dropped() {
    let f = fixture();
    let mut req = f.crow(json!({"b": [{"t": "p", "a": "crawler", "c": {"u": "https://shop.example/"}}]}));
    req.headers.push((
        "user-agent".into(),
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)".into(),
    ));
    let (resp, _, _) = f.send(&req);
    assert_eq!(resp.status, 200);
    let stored = f.stored();
    assert!(stored[0].is_bot);
    assert!(!serde_json::to_string(&stored[0]).unwrap().contains("Googlebot/2.1"));
}

#[test]
fn cors_preflight_and_allowed_origins() {
    let f = fixture();
    let mut req = post(
        "/api/v1/events",
        None,
        &[
            ("origin", "https://a.example"),
            ("access-control-request-headers", "content-type"),
        ],
        "",
    );
    req.method = "OPTIONS".into();
    let (resp, _, report) = f.send(&req);
    assert_eq!(resp.status, 204);
    assert_eq!(header(&resp, "access-control-allow-origin"), Some("https://a.example"));
    assert_eq!(header(&resp, "access-control-allow-methods"), Some("POST, OPTIONS"));
    assert_eq!(header(&resp, "access-control-allow-headers"), Some("content-type"));
    assert!(header(&resp, "access-control-max-age").is_some());
    assert_eq!(report, IngestReport::default());

    let f = fixture_with(IngestConfig {
        cors_allowed_origins: Some(vec!["https://shop.example".into()]),
        ..IngestConfig::default()
    });
    let (resp, _, _) = f.send(&req);
    assert_eq!(resp.status, 204);
    assert_eq!(header(&resp, "access-control-allow-origin"), None);
    req.headers[0].1 = "https://shop.example".into();
    let (resp, _, _) = f.send(&req);
    assert_eq!(
        header(&resp, "access-control-allow-origin"),
        Some("https://shop.example")
    );
    // a simple request carries Allow-Origin, errors included
    let mut post_req = f.crow(json!({"b": []}));
    post_req.headers.push(("origin".into(), "https://shop.example".into()));
    let (resp, _, _) = f.send(&post_req);
    assert_eq!(resp.status, 400);
    assert_eq!(
        header(&resp, "access-control-allow-origin"),
        Some("https://shop.example")
    );
}

#[test]
fn routing() {
    type S = IngestService<Flaky>;
    assert!(S::is_ingest_route("POST", "/v1/batch"));
    assert!(S::is_ingest_route("OPTIONS", "/api/v1/events"));
    assert!(S::is_ingest_route("POST", "/i/v0/e/"));
    assert!(!S::is_ingest_route("GET", "/api/v1/events"));
    assert!(!S::is_ingest_route("POST", "/api/v1/interactions"));
    let f = fixture();
    let mut req = f.crow(json!({"b": []}));
    req.method = "GET".into();
    let (s, t, _) = problem(&f, &req);
    assert_eq!((s, t.as_str()), (405, "/problems/method_not_allowed"));
    req.method = "POST".into();
    req.path = "/nope".into();
    let (s, _, _) = problem(&f, &req);
    assert_eq!(s, 404);
}

#[test]
fn client_dropped_is_reported_once_the_batch_is_stored() {
    let f = fixture();
    let batch = json!({"dr": 3, "b": [{"i": "dr-1", "t": "t", "n": "Back online", "a": "anon-dr"}]});
    let (resp, _, report) = f.send(&f.crow(batch.clone()));
    assert_eq!(resp.status, 200);
    assert_eq!((report.accepted, report.client_dropped), (1, 3));
    // the same batch resent (its answer was lost): stored once, its drops counted once
    let (resp, body, report) = f.send(&f.crow(batch.clone()));
    assert_eq!(resp.status, 200);
    assert_eq!(body["duplicates"], 1);
    assert_eq!(report.client_dropped, 0);
    // nothing stored: not counted
    f.svc.store().fail.store(true, Ordering::SeqCst);
    let (resp, _, report) = f.send(&f.crow(json!({"dr": 5, "b": [{"i": "dr-2", "t": "t", "n": "X", "a": "a"}]})));
    assert_eq!(resp.status, 503);
    assert_eq!(report.client_dropped, 0);
    f.svc.store().fail.store(false, Ordering::SeqCst);
    let (_, body, report) = f.send(&f.crow(json!({"dr": -1, "b": [{"i": "dr-3", "t": "t", "n": "X", "a": "a"}]})));
    assert_eq!(body["detail"], "/dr: expected a non-negative integer");
    assert_eq!(report.client_dropped, 0);
}

#[test]
fn a_host_with_a_trailing_slash_still_reaches_the_endpoint() {
    use crow_ingest::ingest::Routed;
    let f = fixture();
    let mut req = f.crow(json!({"b": [{"i": "slash-1", "t": "t", "n": "X", "a": "anon-slash"}]}));
    req.path = "//api/v1/events".into();
    match block_on(f.svc.dispatch(&req, NOW)) {
        Some(Routed::Ingest(resp, report)) => {
            assert_eq!(resp.status, 200);
            assert_eq!(report.accepted, 1);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn dispatch_serves_the_sdk_and_posthog_js_config_and_flags_with_cors() {
    use crow_ingest::ingest::Routed;
    let f = fixture();
    let dispatch = |req: &HttpRequest| match block_on(f.svc.dispatch(req, NOW)) {
        Some(Routed::Static(resp)) => resp,
        other => panic!("{} {}: {other:?}", req.method, req.path),
    };
    let mut get = post("/sdk/crow.js", None, &[], "");
    get.method = "GET".into();
    let resp = dispatch(&get);
    assert_eq!(resp.status, 200);
    assert_eq!(resp.body, crow_ingest::sdk::CROW_JS.as_bytes());
    get.path = crow_ingest::sdk::versioned_path().into();
    assert_eq!(dispatch(&get).status, 200);

    get.path = format!("/array/{}/config", f.creds.write_key);
    get.headers.push(("origin".into(), "https://shop.example".into()));
    let resp = dispatch(&get);
    assert_eq!(resp.status, 200);
    let body = resp.json_body().unwrap();
    assert_eq!(body["token"], f.creds.write_key.as_str());
    assert_eq!(body["supportedCompression"], json!(["gzip-js", "base64"]));
    assert_eq!(
        header(&resp, "access-control-allow-origin"),
        Some("https://shop.example")
    );
    assert_eq!(header(&resp, "access-control-allow-credentials"), Some("true"));

    let mut flags = post(
        "/flags/",
        Some("v=2&config=true"),
        &[("origin", "https://shop.example")],
        "{}",
    );
    let resp = dispatch(&flags);
    assert_eq!(resp.status, 200);
    assert_eq!(resp.json_body().unwrap()["flags"], json!({}));
    assert_eq!(
        header(&resp, "access-control-allow-origin"),
        Some("https://shop.example")
    );
    flags.method = "OPTIONS".into();
    let resp = dispatch(&flags);
    assert_eq!(resp.status, 204);
    assert_eq!(header(&resp, "access-control-allow-methods"), Some("POST, OPTIONS"));
    assert_eq!(
        header(&resp, "access-control-allow-origin"),
        Some("https://shop.example")
    );
    get.method = "OPTIONS".into();
    let resp = dispatch(&get);
    assert_eq!(header(&resp, "access-control-allow-methods"), Some("GET, OPTIONS"));
    get.method = "DELETE".into();
    let resp = dispatch(&get);
    assert_eq!(resp.status, 405);
    assert_eq!(header(&resp, "allow"), Some("GET, OPTIONS"));
    assert_eq!(
        header(&resp, "access-control-allow-origin"),
        Some("https://shop.example")
    );

    // an origin the config does not allow gets no CORS headers
    let f = fixture_with(IngestConfig {
        cors_allowed_origins: Some(vec!["https://other.example".into()]),
        ..IngestConfig::default()
    });
    get.method = "GET".into();
    let Some(Routed::Static(resp)) = block_on(f.svc.dispatch(&get, NOW)) else {
        panic!()
    };
    assert_eq!(resp.status, 200);
    assert_eq!(header(&resp, "access-control-allow-origin"), None);
}

#[test]
fn store_failure_is_503_with_retry_after() {
    let f = fixture();
    f.svc.store().fail.store(true, Ordering::SeqCst);
    let (resp, body, report) = f.send(&f.crow(json!({"b": [{"t": "p", "a": "x"}]})));
    assert_eq!(resp.status, 503);
    assert_eq!(header(&resp, "retry-after"), Some("2"));
    assert_eq!(body["type"], "/problems/unavailable");
    assert_eq!(report.rejected, vec![("unavailable", 1)]);
    f.svc.store().fail.store(false, Ordering::SeqCst);
    let (resp, _, _) = f.send(&f.crow(json!({"b": [{"t": "p", "a": "x"}]})));
    assert_eq!(resp.status, 200);
}

#[test]
fn import_with_key_or_grant() {
    let f = fixture();
    let events: Vec<Value> = (0..1203)
        .map(|i| {
            if i == 1001 {
                json!({"type": "track", "userId": "u"})
            } else {
                json!({"type": "track", "event": "Imported", "userId": "u", "messageId": format!("imp-{i}"), "timestamp": "2024-04-01T00:00:00Z"})
            }
        })
        .collect();
    let out = block_on(f.svc.import(f.creds.write_key.as_str(), events.clone(), NOW)).unwrap();
    assert_eq!((out.inserted, out.duplicates), (1202, 0));
    assert_eq!(out.rejected.len(), 1);
    assert_eq!(
        (out.rejected[0].index, out.rejected[0].field.as_str()),
        (1001, "/1001/event")
    );
    let stored = f.stored();
    assert!(stored.iter().all(|e| e.source == Source::Import));
    let grant = block_on(f.svc.store().authenticate(&f.creds.write_key))
        .unwrap()
        .unwrap();
    let again = block_on(f.svc.import(&grant, events, NOW)).unwrap();
    assert_eq!((again.inserted, again.duplicates), (0, 1202));
    let err = block_on(f.svc.import("wk_nope", vec![json!({})], NOW)).unwrap_err();
    assert!(matches!(err, crow_core::Error::Unauthorized(_)));
}

#[test]
fn handle_and_import_futures_are_send() {
    // axum needs Send futures natively.
    fn is_send<T: Send>(_: &T) {}
    let f = fixture();
    let req = f.crow(json!({"b": []}));
    let fut = f.svc.handle(&req, NOW);
    is_send(&fut);
    let fut = f.svc.import("wk", Vec::new(), NOW);
    is_send(&fut);
}

#[test]
fn config_parses_with_defaults() {
    let c: IngestConfig = serde_json::from_str("{}").unwrap();
    assert_eq!(c, IngestConfig::default());
    assert_eq!(
        (c.max_body_bytes, c.max_batch, c.max_depth, c.max_string_bytes),
        (1 << 20, 500, 32, 64 << 10)
    );
    let c: IngestConfig =
        serde_json::from_value(json!({"trust_proxy_headers": true, "cors_allowed_origins": ["https://a.example"]}))
            .unwrap();
    assert!(c.trust_proxy_headers);
    assert_eq!(c.max_batch, 500);
}
