//! Each endpoint family over HTTP: CROW, Segment, PostHog, the read API, health and metrics.

use std::io::Write as _;

use base64::Engine as _;
use crow_e2e::*;
use serde_json::{Value, json};

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

#[test]
fn every_endpoint_family_stores_events() {
    let dir = tempfile::tempdir().unwrap();
    let org = create_org(dir.path(), "Acme");
    let srv = ServerProcess::start(dir.path(), 0, &[]);
    let c = client();
    let base = &srv.base;

    // CROW compact layout, as the SDK posts it with fetch
    let r = c
        .post(format!("{base}/api/v1/events"))
        .json(&json!({"k": org.write_key, "sa": 1_700_000_000_500i64, "b": [
            {"i": "crow-1", "t": "p", "a": "anon-1", "ts": 1_700_000_000_000i64, "c": {"u": "https://shop.test/home?utm_source=news&utm_medium=email", "r": "https://www.google.com/", "ti": "Home"}},
            {"i": "crow-2", "t": "t", "n": "Signup Clicked", "a": "anon-1", "p": {"plan": "pro"}, "ts": 1_700_000_001_000i64}
        ]}))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let body: Value = r.json().unwrap();
    assert_eq!(body["accepted"], 2, "{body}");

    // sendBeacon: text/plain body, key in the query string
    let r = c
        .post(format!("{base}/api/v1/events?k={}", org.write_key))
        .header("content-type", "text/plain;charset=UTF-8")
        .body(json!({"b": [{"i": "crow-3", "t": "t", "n": "Page Left", "a": "anon-1"}]}).to_string())
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "{}", r.text().unwrap());

    // gzip body
    let r = c
        .post(format!("{base}/api/v1/events"))
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .body(gzip(
            json!({"k": org.write_key, "b": [{"i": "crow-4", "t": "t", "n": "Zipped", "a": "anon-2"}]})
                .to_string()
                .as_bytes(),
        ))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "{}", r.text().unwrap());

    // CORS preflight
    let r = c
        .request(reqwest::Method::OPTIONS, format!("{base}/api/v1/events"))
        .header("origin", "https://shop.test")
        .header("access-control-request-method", "POST")
        .send()
        .unwrap();
    assert!(r.status().is_success());
    assert!(r.headers().get("access-control-allow-origin").is_some());

    // Segment: batch with Basic auth, and each single-event route
    let r = c
        .post(format!("{base}/v1/batch"))
        .basic_auth(&org.write_key, Some(""))
        .json(&json!({"batch": [
            {"type": "track", "event": "Order Completed", "userId": "u-1", "anonymousId": null, "messageId": "seg-1", "properties": {"revenue": 10}},
            {"type": "identify", "userId": "u-1", "messageId": "seg-2", "traits": {"plan": "pro"}}
        ], "sentAt": "2023-11-14T22:13:20.000Z"}))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "{}", r.text().unwrap());
    for (i, (route, extra)) in [
        ("track", json!({"event": "Clicked"})),
        ("identify", json!({"traits": {"plan": "free"}})),
        ("page", json!({"name": "Pricing"})),
        ("screen", json!({"name": "Home"})),
        ("group", json!({"groupId": "g-1"})),
        ("alias", json!({"previousId": "anon-9"})),
    ]
    .into_iter()
    .enumerate()
    {
        let mut ev = json!({"userId": "u-2", "messageId": format!("seg-single-{i}"), "writeKey": org.write_key});
        ev.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        let r = c.post(format!("{base}/v1/{route}")).json(&ev).send().unwrap();
        assert_eq!(r.status().as_u16(), 200, "/v1/{route}: {}", r.text().unwrap());
    }

    // PostHog: /batch/ JSON, /e/ gzip, /i/v0/e/ base64 form, /capture/ single
    let r = c
        .post(format!("{base}/batch/"))
        .json(&json!({"api_key": org.write_key, "batch": [
            {"event": "$pageview", "uuid": "ph-1", "distinct_id": "ph-anon", "properties": {"$current_url": "https://shop.test/p", "$pathname": "/p"}, "timestamp": "2023-11-14T22:13:20Z"},
            {"event": "clicked", "uuid": "ph-2", "properties": {"distinct_id": "ph-anon"}}
        ]}))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "{}", r.text().unwrap());
    let r = c
        .post(format!("{base}/e/?compression=gzip-js"))
        .body(gzip(json!([{"event": "zipped", "uuid": "ph-3", "properties": {"distinct_id": "ph-anon", "token": org.write_key}}]).to_string().as_bytes()))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "{}", r.text().unwrap());
    let data = base64::engine::general_purpose::STANDARD.encode(
        json!({"event": "formed", "uuid": "ph-4", "properties": {"distinct_id": "ph-anon", "token": org.write_key}})
            .to_string(),
    );
    let r = c
        .post(format!("{base}/i/v0/e/?compression=base64"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("data={}", urlencode(&data)))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "{}", r.text().unwrap());
    let r = c
        .post(format!("{base}/capture/"))
        .json(&json!({"api_key": org.write_key, "event": "single", "uuid": "ph-5", "distinct_id": "ph-anon"}))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "{}", r.text().unwrap());

    // Everything is readable with the secret key; ids are the client-supplied ones.
    let all = all_interactions(base, &org.api_key);
    let ids: std::collections::HashSet<&str> = all.iter().map(|e| e["id"].as_str().unwrap()).collect();
    for id in [
        "crow-1",
        "crow-2",
        "crow-3",
        "crow-4",
        "seg-1",
        "seg-2",
        "seg-single-0",
        "seg-single-5",
        "ph-1",
        "ph-2",
        "ph-3",
        "ph-4",
        "ph-5",
    ] {
        assert!(ids.contains(id), "{id} missing from {ids:?}");
    }
    assert_eq!(all.len(), 17, "{ids:?}");
    let (status, one) = api_get(base, &org.api_key, "/api/v1/interactions/seg-1");
    assert_eq!(status, 200);
    assert_eq!(one["type"], "track");
    assert_eq!(one["name"], "Order Completed");
    let (status, filtered) = api_get(base, &org.api_key, "/api/v1/interactions?type=page&limit=10");
    assert_eq!(status, 200);
    assert!(filtered["data"].as_array().unwrap().iter().all(|e| e["type"] == "page"));

    // Pagination returns every event exactly once.
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let (s, page) = api_get(base, &org.api_key, &format!("/api/v1/interactions?limit=4{cursor}"));
        assert_eq!(s, 200);
        seen.extend(
            page["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["id"].as_str().unwrap().to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => break,
        }
    }
    seen.sort();
    let before = seen.len();
    seen.dedup();
    assert_eq!(before, seen.len());
    assert_eq!(seen.len(), 17);

    // Sessions appear once the workflow ran.
    wait_queues_drained(base);
    let (status, sessions) = api_get(base, &org.api_key, "/api/v1/sessions");
    assert_eq!(status, 200);
    assert!(!sessions["data"].as_array().unwrap().is_empty(), "{sessions}");
    let (status, e) = api_get(base, &org.api_key, "/api/v1/interactions/crow-1");
    assert_eq!(status, 200);
    assert!(e["session_id"].as_str().is_some(), "{e}");
    assert_eq!(
        e["referrer_class"], "email",
        "utm_medium=email wins over the search referrer: {e}"
    );

    // Auth: no key, a write key and a wrong key cannot read.
    let r = c.get(format!("{base}/api/v1/interactions")).send().unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/problem+json")
    );
    assert_eq!(api_get(base, &org.write_key, "/api/v1/interactions").0, 401);
    assert_eq!(api_get(base, "sk_000000000000_nope", "/api/v1/interactions").0, 401);

    // Org isolation: another org sees nothing and gets 404 for the first org's ids.
    let other = create_org(dir.path(), "Other");
    let (status, page) = api_get(base, &other.api_key, "/api/v1/interactions");
    assert_eq!(status, 200);
    assert!(page["data"].as_array().unwrap().is_empty());
    assert_eq!(api_get(base, &other.api_key, "/api/v1/interactions/seg-1").0, 404);

    // Health and metrics.
    let r = c.get(format!("{base}/healthz")).send().unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let metrics = c.get(format!("{base}/metrics")).send().unwrap().text().unwrap();
    assert!(metrics.contains("crow_events_accepted_total 17"), "{metrics}");
    assert!(
        metrics.contains("crow_queue_depth{queue=\"interaction\",state=\"ready\"} 0"),
        "{metrics}"
    );
    assert!(
        metrics.contains("crow_http_request_duration_seconds_bucket"),
        "{metrics}"
    );
    srv.stop();
}

#[test]
fn resent_batches_store_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let org = create_org(dir.path(), "Acme");
    let srv = ServerProcess::start(dir.path(), 0, &[]);
    let c = client();
    let batch = json!({"writeKey": org.write_key, "batch": [
        {"type": "track", "event": "A", "anonymousId": "x", "messageId": "m-1"},
        {"type": "track", "event": "B", "anonymousId": "x", "messageId": "m-2"},
        // no id: CROW derives one from the content, so a resend is still recognized
        {"type": "track", "event": "C", "anonymousId": "x", "timestamp": "2024-01-01T00:00:00Z"}
    ]});
    for round in 0..3 {
        let r: Value = c
            .post(format!("{}/v1/batch", srv.base))
            .json(&batch)
            .send()
            .unwrap()
            .json()
            .unwrap();
        if round == 0 {
            assert_eq!(r["accepted"], 3, "{r}");
        } else {
            assert_eq!(r["duplicates"], 3, "{r}");
        }
    }
    assert_eq!(all_interactions(&srv.base, &org.api_key).len(), 3);
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
