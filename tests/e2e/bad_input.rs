//! Bad input: each limit and each malformed kind gets its 4xx with a problem+json body naming
//! the problem, and the server stays healthy and keeps storing good events.

use std::io::Write as _;

use crow_e2e::*;
use serde_json::{Value, json};

fn post(base: &str, path: &str, headers: &[(&str, &str)], body: Vec<u8>) -> (u16, String, Value) {
    let mut rb = client().post(format!("{base}{path}"));
    for (k, v) in headers {
        rb = rb.header(*k, *v);
    }
    let r = rb.body(body).send().unwrap();
    let status = r.status().as_u16();
    let ct = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, ct, r.json().unwrap_or(Value::Null))
}

#[test]
fn every_limit_has_its_own_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let org = create_org(dir.path(), "Limits");
    let srv = ServerProcess::start(dir.path(), 0, &[]);
    let base = &srv.base;
    let key = org.write_key.as_str();
    let json_ct = [("content-type", "application/json")];
    let ev = |id: &str| json!({"type": "track", "event": "E", "anonymousId": "a", "messageId": id});

    let mut problems: Vec<(u16, Value)> = Vec::new();
    let mut check = |what: &str, (status, ct, body): (u16, String, Value), want: u16| {
        assert_eq!(status, want, "{what}: {body}");
        assert!(ct.starts_with("application/problem+json"), "{what}: content-type {ct}");
        assert!(body["type"].is_string() && body["detail"].is_string(), "{what}: {body}");
        problems.push((status, body));
    };

    // body over 1 MiB
    let big = json!({"writeKey": key, "batch": [{"type": "track", "event": "E", "anonymousId": "a", "properties": {"x": "y".repeat(1_100_000)}}]});
    check(
        "big body",
        post(base, "/v1/batch", &json_ct, big.to_string().into_bytes()),
        413,
    );
    // gzip bomb: 200 MB of zeros compressed to ~200 KB
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![b' '; 1 << 20];
    for _ in 0..200 {
        e.write_all(&zeros).unwrap();
    }
    let bomb = e.finish().unwrap();
    check(
        "gzip bomb",
        post(
            base,
            "/v1/batch",
            &[("content-type", "application/json"), ("content-encoding", "gzip")],
            bomb,
        ),
        413,
    );
    // more than 500 events
    let many: Vec<_> = (0..501).map(|i| ev(&format!("m{i}"))).collect();
    let (status, ct, body) = post(
        base,
        "/v1/batch",
        &json_ct,
        json!({"writeKey": key, "batch": many}).to_string().into_bytes(),
    );
    assert!(status == 400 || status == 413, "{body}");
    check("501 events", (status, ct, body), status);
    // nesting deeper than 32, and far deeper (must not overflow the stack)
    for depth in [40usize, 200_000] {
        let deep = format!(
            "{{\"writeKey\":\"{key}\",\"batch\":[{{\"type\":\"track\",\"event\":\"E\",\"anonymousId\":\"a\",\"properties\":{{\"x\":{}1{}}}}}]}}",
            "[".repeat(depth),
            "]".repeat(depth)
        );
        check("deep", post(base, "/v1/batch", &json_ct, deep.into_bytes()), 400);
    }
    // invalid UTF-8
    let mut bad = format!("{{\"writeKey\":\"{key}\",\"batch\":[{{\"type\":\"track\",\"event\":\"").into_bytes();
    bad.extend_from_slice(&[0xff, 0xfe]);
    bad.extend_from_slice(b"\",\"anonymousId\":\"a\"}]}");
    check("utf-8", post(base, "/v1/batch", &json_ct, bad), 400);
    // malformed JSON
    check(
        "json",
        post(base, "/v1/batch", &json_ct, b"{\"batch\": [".to_vec()),
        400,
    );
    // missing and unknown keys
    check(
        "no key",
        post(
            base,
            "/v1/batch",
            &json_ct,
            json!({"batch": [ev("k1")]}).to_string().into_bytes(),
        ),
        401,
    );
    check(
        "bad key",
        post(
            base,
            "/v1/batch",
            &json_ct,
            json!({"writeKey": "wk_00000000000000000000000000000000", "batch": [ev("k2")]})
                .to_string()
                .into_bytes(),
        ),
        401,
    );
    // a batch where every event is bad
    check(
        "all bad",
        post(
            base,
            "/v1/batch",
            &json_ct,
            json!({"writeKey": key, "batch": [{"type": "nope"}, {"type": "track"}]})
                .to_string()
                .into_bytes(),
        ),
        400,
    );

    // distinct problem types for distinct failures
    let mut kinds: Vec<String> = problems
        .iter()
        .map(|(_, b)| b["type"].as_str().unwrap().to_owned())
        .collect();
    kinds.sort();
    kinds.dedup();
    assert!(kinds.len() >= 7, "problem types are not distinct enough: {kinds:?}");

    // a string over 64 KiB rejects that event, naming the field; the good one is stored
    let r = post(base, "/v1/batch", &json_ct, json!({"writeKey": key, "batch": [
        {"type": "track", "event": "E", "anonymousId": "a", "messageId": "long", "properties": {"essay": "z".repeat(70_000)}},
        ev("fine")
    ]}).to_string().into_bytes());
    assert_eq!(r.0, 200, "{}", r.2);
    assert_eq!(r.2["accepted"], 1);
    let rejected = &r.2["rejected"][0];
    assert_eq!(rejected["index"], 0);
    assert!(rejected["field"].as_str().unwrap().contains("essay"), "{rejected}");

    // partial batch: good events kept, bad ones listed
    let r = post(base, "/v1/batch", &json_ct, json!({"writeKey": key, "batch": [
        ev("g1"), {"type": "track", "anonymousId": "a", "messageId": "no-event-name"}, ev("g2"),
        {"type": "track", "event": "E", "messageId": "no-ids"}, {"type": "track", "event": "E", "anonymousId": "a", "timestamp": "not a time"}
    ]}).to_string().into_bytes());
    assert_eq!(r.0, 200, "{}", r.2);
    assert_eq!(r.2["accepted"], 2, "{}", r.2);
    let idx: Vec<u64> = r.2["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["index"].as_u64().unwrap())
        .collect();
    assert_eq!(idx, vec![1, 3, 4], "{}", r.2);

    // still healthy, still storing
    assert_eq!(
        client()
            .get(format!("{base}/healthz"))
            .send()
            .unwrap()
            .status()
            .as_u16(),
        200
    );
    let ids: Vec<String> = all_interactions(base, &org.api_key)
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    for id in ["fine", "g1", "g2"] {
        assert!(ids.contains(&id.to_owned()), "{id} not stored: {ids:?}");
    }
    let metrics = client().get(format!("{base}/metrics")).send().unwrap().text().unwrap();
    assert!(metrics.contains("crow_events_rejected_total{reason="), "{metrics}");
}
