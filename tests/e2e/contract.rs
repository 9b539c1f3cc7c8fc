//! One contract, two servers: every check here runs against `crow serve` (SQLite, local files)
//! and against the Cloudflare Worker under `wrangler dev --local` (D1, R2, Queues in workerd).
//! The routes come from the served `openapi.json`. A `_worker` test skips (with a message) when
//! the Worker is not built, unless `CROW_REQUIRE_WORKER` is set, as `make test` does.

use crow_e2e::target::{NativeTarget, Target, WorkerTarget};
use crow_e2e::{Org, api_get, client};
use serde_json::{Value, json};

fn post(t: &dyn Target, path: &str, body: &Value) -> (u16, Value) {
    let r = client().post(format!("{}{path}", t.base())).json(body).send().unwrap();
    let status = r.status().as_u16();
    (status, r.json().unwrap_or(Value::Null))
}

/// The CROW, Segment and PostHog ingest routes store events that the REST API lists back.
fn ingest_through_every_family_then_list(t: &dyn Target) {
    let org = t.create_org("Contract Shop");
    let crow = json!({"k": org.write_key, "sa": 1_700_000_000_500i64, "b": [
        {"i": "crow-1", "t": "p", "a": "anon-1", "ts": 1_700_000_000_000i64, "c": {"u": "https://shop.test/home", "ti": "Home"}},
        {"i": "crow-2", "t": "t", "n": "Signup Clicked", "a": "anon-1", "p": {"plan": "pro"}, "ts": 1_700_000_001_000i64}
    ]});
    let (status, body) = post(t, "/api/v1/events", &crow);
    assert_eq!((status, &body["accepted"]), (200, &json!(2)), "{}: {body}", t.name());
    let segment = json!({"writeKey": org.write_key, "batch": [
        {"type": "track", "event": "Order Completed", "userId": "u-1", "messageId": "seg-1", "properties": {"revenue": 10}, "timestamp": "2023-11-14T22:13:21Z"}
    ]});
    let (status, body) = post(t, "/v1/batch", &segment);
    assert_eq!(status, 200, "{}: {body}", t.name());
    let posthog = json!({"api_key": org.write_key, "batch": [
        {"event": "$pageview", "uuid": "ph-1", "distinct_id": "ph-anon", "properties": {"$current_url": "https://shop.test/p"}, "timestamp": "2023-11-14T22:13:22Z"}
    ]});
    let (status, body) = post(t, "/batch/", &posthog);
    assert_eq!(status, 200, "{}: {body}", t.name());

    // The same batch again is acknowledged and stores nothing twice.
    let (status, _) = post(t, "/api/v1/events", &crow);
    assert_eq!(status, 200);

    let (status, page) = api_get(t.base(), &org.api_key, "/api/v1/interactions?limit=100");
    assert_eq!(status, 200, "{}: {page}", t.name());
    let mut ids: Vec<&str> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, ["crow-1", "crow-2", "ph-1", "seg-1"], "{}: {page}", t.name());
    let first = &page["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == "crow-2")
        .unwrap();
    assert_eq!(first["name"], "Signup Clicked", "{}: {first}", t.name());

    // Another org sees none of it.
    let other = t.create_org("Other Shop");
    let (status, page) = api_get(t.base(), &other.api_key, "/api/v1/interactions");
    assert_eq!(
        (status, page["data"].as_array().map(Vec::len)),
        (200, Some(0)),
        "{}",
        t.name()
    );
}

/// An export request runs in the background (the native queue worker; on the Worker an
/// instance of the `export-report` Workflow) and its file downloads through the signed link.
fn exports_run_in_the_background_and_download(t: &dyn Target) {
    let org = t.create_org("Exporter");
    let batch = json!({"k": org.write_key, "b": [
        {"i": "exp-1", "t": "t", "n": "Bought", "a": "anon-1", "ts": 1_700_000_000_000i64},
        {"i": "exp-2", "t": "p", "a": "anon-2", "ts": 1_700_000_001_000i64, "c": {"u": "https://shop.test/p"}}
    ]});
    assert_eq!(post(t, "/api/v1/events", &batch).0, 200);
    let r = client()
        .post(format!("{}/api/v1/exports", t.base()))
        .bearer_auth(&org.api_key)
        .json(&json!({"resource": "interactions", "format": "json"}))
        .send()
        .unwrap();
    let status = r.status().as_u16();
    let created: Value = r.json().unwrap();
    assert_eq!(status, 202, "{}: {created}", t.name());
    let id = created["id"].as_str().unwrap().to_owned();
    let mut done = Value::Null;
    crow_e2e::wait_for(90, &format!("{}: export {id} to finish", t.name()), || {
        done = api_get(t.base(), &org.api_key, &format!("/api/v1/exports/{id}")).1;
        matches!(done["status"].as_str(), Some("succeeded" | "failed"))
    });
    assert_eq!(done["status"], "succeeded", "{}: {done}", t.name());
    assert_eq!(done["rows"], 2, "{}: {done}", t.name());
    let url = done["download_url"].as_str().unwrap();
    let url = if url.starts_with("http") {
        url.to_owned()
    } else {
        format!("{}{url}", t.base())
    };
    let file = client().get(url).send().unwrap();
    assert_eq!(file.status().as_u16(), 200, "{}", t.name());
    let text = file.text().unwrap();
    assert!(text.contains("exp-1") && text.contains("exp-2"), "{}: {text}", t.name());
}

/// Keys are checked the same way: none, an unknown one, or a write key on the API is 401 with
/// a JSON problem; bad ingest input is a 4xx with a JSON error and stores nothing.
fn refusals_are_precise_and_lose_nothing(t: &dyn Target) {
    let org = t.create_org("Refusals");
    for key in ["", "sk_live_000000000000_nope", org.write_key.as_str()] {
        let (status, body) = api_get(t.base(), key, "/api/v1/interactions");
        assert_eq!(status, 401, "{} with key {key:?}: {body}", t.name());
        assert!(body["detail"].is_string(), "{}: {body}", t.name());
    }
    let r = client()
        .post(format!("{}/api/v1/events", t.base()))
        .header("content-type", "application/json")
        .body(format!("{{\"k\": \"{}\", \"b\": [tru", org.write_key))
        .send()
        .unwrap();
    let status = r.status().as_u16();
    let body: Value = r.json().unwrap();
    assert_eq!(status, 400, "{}: {body}", t.name());
    assert!(body.is_object(), "{}: {body}", t.name());
    let (status, _) = post(
        t,
        "/api/v1/events",
        &json!({"k": "wk_unknown", "b": [{"i": "x", "t": "p", "a": "a"}]}),
    );
    assert_eq!(status, 401, "{}", t.name());
    let (_, page) = api_get(t.base(), &org.api_key, "/api/v1/interactions");
    assert_eq!(page["data"], json!([]), "{}", t.name());
}

/// Every documented GET answers: never a server fault; a 503 only as a JSON problem naming
/// what this backend cannot serve yet (the Worker, for ports not on D1).
fn every_documented_get_answers(t: &dyn Target, org: &Org) {
    let doc: Value = client()
        .get(format!("{}/api/v1/openapi.json", t.base()))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        if item.get("get").is_none() || path.contains("/stream") {
            continue;
        }
        let concrete: String = path
            .split('/')
            .map(|seg| if seg.starts_with('{') { "contract-x" } else { seg })
            .collect::<Vec<_>>()
            .join("/");
        let r = client()
            .get(format!("{}{concrete}", t.base()))
            .bearer_auth(&org.api_key)
            .send()
            .unwrap();
        let status = r.status().as_u16();
        let body = r.text().unwrap();
        if status == 503 && t.name() == "worker" {
            let problem: Value = serde_json::from_str(&body).unwrap();
            assert!(problem["detail"].is_string(), "GET {concrete}: {body}");
        } else {
            assert!(status < 500, "{}: GET {concrete} answered {status}: {body}", t.name());
        }
        checked += 1;
    }
    assert!(checked >= 20, "{checked} GET routes");
}

/// The JSON pointers where `a` and `b` differ, with both values (at most 20).
fn json_differences(at: &str, a: &Value, b: &Value) -> Vec<String> {
    let mut out = Vec::new();
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for k in x.keys().chain(y.keys().filter(|k| !x.contains_key(*k))) {
                let here = format!("{at}/{}", k.replace('~', "~0").replace('/', "~1"));
                match (x.get(k), y.get(k)) {
                    (Some(p), Some(q)) => out.extend(json_differences(&here, p, q)),
                    (p, q) => out.push(format!("{here}: {p:?} vs {q:?}")),
                }
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (p, q)) in x.iter().zip(y).enumerate() {
                out.extend(json_differences(&format!("{at}/{i}"), p, q));
            }
        }
        _ if a != b => out.push(format!("{at}: {a} vs {b}")),
        _ => {}
    }
    out.truncate(20);
    out
}

#[test]
fn ingest_through_every_family_then_list_native() {
    ingest_through_every_family_then_list(&NativeTarget::start());
}

#[test]
fn ingest_through_every_family_then_list_worker() {
    if let Some(t) = WorkerTarget::start() {
        ingest_through_every_family_then_list(&t);
    }
}

#[test]
fn exports_run_in_the_background_and_download_native() {
    exports_run_in_the_background_and_download(&NativeTarget::start());
}

#[test]
fn exports_run_in_the_background_and_download_worker() {
    if let Some(t) = WorkerTarget::start() {
        exports_run_in_the_background_and_download(&t);
    }
}

#[test]
fn refusals_are_precise_and_lose_nothing_native() {
    refusals_are_precise_and_lose_nothing(&NativeTarget::start());
}

#[test]
fn refusals_are_precise_and_lose_nothing_worker() {
    if let Some(t) = WorkerTarget::start() {
        refusals_are_precise_and_lose_nothing(&t);
    }
}

/// `crow org create --d1` writes an org into the Worker's D1 database (through `wrangler d1
/// execute`, with the statements the embedded store runs); the Worker then takes its keys.
#[test]
fn an_org_created_by_the_cli_on_d1_works_on_the_worker() {
    let mut org: Option<Org> = None;
    let started = WorkerTarget::start_with(|state| {
        let config = crow_e2e::target::worker_dir().join("wrangler.toml");
        let out = crow_e2e::crow(
            state,
            &[
                "org",
                "create",
                "Cloud Shop",
                "--json",
                "--d1",
                "crow",
                "--local",
                "--env",
                "test",
                "--persist-to",
                state.to_str().unwrap(),
                "--wrangler-config",
                config.to_str().unwrap(),
            ],
        );
        let v: Value = serde_json::from_str(out.trim()).unwrap();
        org = Some(Org {
            org_id: v["org_id"].as_str().unwrap().to_owned(),
            write_key: v["write_key"].as_str().unwrap().to_owned(),
            api_key: v["api_key"].as_str().unwrap().to_owned(),
        });
    });
    let Some(t) = started else { return };
    let org = org.unwrap();
    let batch = json!({"k": org.write_key, "b": [{"i": "cli-1", "t": "t", "n": "Hello", "a": "anon-1"}]});
    let (status, body) = post(&t, "/api/v1/events", &batch);
    assert_eq!(status, 200, "{body}");
    let (status, page) = api_get(t.base(), &org.api_key, "/api/v1/interactions");
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["data"][0]["id"], "cli-1", "{page}");
    let (status, me) = api_get(t.base(), &org.api_key, "/api/v1/organization");
    assert_eq!((status, me["name"].as_str()), (200, Some("Cloud Shop")), "{me}");
}

/// Both servers serve the same OpenAPI document, and every GET in it answers on both.
#[test]
fn same_document_and_every_get_answers_on_both() {
    let native = NativeTarget::start();
    let doc = |t: &dyn Target| -> Value {
        client()
            .get(format!("{}/api/v1/openapi.json", t.base()))
            .send()
            .unwrap()
            .json()
            .unwrap()
    };
    let org = native.create_org("Routes");
    every_documented_get_answers(&native, &org);
    if let Some(worker) = WorkerTarget::start() {
        let differences = json_differences("", &doc(&native), &doc(&worker));
        assert!(
            differences.is_empty(),
            "the two servers document different APIs (native vs worker):\n{}",
            differences.join("\n")
        );
        let org = worker.create_org("Routes");
        every_documented_get_answers(&worker, &org);
    }
}
