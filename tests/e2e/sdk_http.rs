//! The website SDK served by `crow serve`, the drops it reports, and posthog-js's config and
//! flags endpoints, over HTTP.

use std::io::Read as _;

use crow_e2e::*;
use crow_ingest::sdk::{CROW_JS, gzipped_len, versioned_path};
use serde_json::{Value, json};

fn gunzip(bytes: &[u8]) -> String {
    let mut out = String::new();
    flate2::read::GzDecoder::new(bytes).read_to_string(&mut out).unwrap();
    out
}

fn header(r: &reqwest::blocking::Response, name: &str) -> Option<String> {
    r.headers().get(name).map(|v| v.to_str().unwrap().to_owned())
}

#[test]
fn sdk_is_served_with_caching_and_compression() {
    let dir = tempfile::tempdir().unwrap();
    let srv = ServerProcess::start(dir.path(), 0, &[]);
    // A client that leaves bodies compressed: the workspace's reqwest may have gzip decoding on.
    let c = reqwest::blocking::Client::builder()
        .no_gzip()
        .no_brotli()
        .no_deflate()
        .build()
        .unwrap();
    let url = format!("{}/sdk/crow.js", srv.base);

    // identity (this client does not decompress on its own)
    let r = c.get(&url).send().unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(
        header(&r, "content-type").as_deref(),
        Some("text/javascript; charset=utf-8")
    );
    assert_eq!(
        header(&r, "cache-control").as_deref(),
        Some("public, max-age=86400, stale-while-revalidate=604800")
    );
    assert_eq!(header(&r, "vary").as_deref(), Some("accept-encoding"));
    assert_eq!(header(&r, "access-control-allow-origin").as_deref(), Some("*"));
    assert_eq!(
        header(&r, "cross-origin-resource-policy").as_deref(),
        Some("cross-origin")
    );
    assert_eq!(header(&r, "x-content-type-options").as_deref(), Some("nosniff"));
    assert_eq!(header(&r, "content-encoding"), None);
    let etag = header(&r, "etag").unwrap();
    assert!(etag.starts_with('"') && etag.len() == 18, "{etag}");
    assert_eq!(r.text().unwrap(), CROW_JS);

    // gzip
    let r = c
        .get(&url)
        .header("accept-encoding", "gzip, deflate, br")
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(header(&r, "content-encoding").as_deref(), Some("gzip"));
    assert_eq!(header(&r, "etag").as_deref(), Some(etag.as_str()));
    let body = r.bytes().unwrap();
    assert_eq!(body.len(), gzipped_len());
    assert_eq!(gunzip(&body), CROW_JS);

    // gzip refused with q=0
    let r = c.get(&url).header("accept-encoding", "gzip;q=0, br").send().unwrap();
    assert_eq!(header(&r, "content-encoding"), None);
    assert_eq!(r.text().unwrap(), CROW_JS);

    // HEAD: the headers a GET gets, no body
    let r = c.head(&url).header("accept-encoding", "gzip").send().unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(header(&r, "etag").as_deref(), Some(etag.as_str()));
    assert_eq!(header(&r, "content-encoding").as_deref(), Some("gzip"));
    assert_eq!(header(&r, "content-length"), Some(gzipped_len().to_string()));
    assert!(r.bytes().unwrap().is_empty());

    // revalidation: 304 for the strong tag, a weak one, or a list holding it
    for inm in [etag.clone(), format!("W/{etag}"), format!("\"stale\", {etag}")] {
        let r = c
            .get(&url)
            .header("if-none-match", &inm)
            .header("accept-encoding", "gzip")
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), 304, "{inm}");
        assert_eq!(header(&r, "etag").as_deref(), Some(etag.as_str()));
        assert!(header(&r, "cache-control").is_some());
        assert_eq!(header(&r, "vary").as_deref(), Some("accept-encoding"));
        assert!(r.bytes().unwrap().is_empty());
    }
    let r = c
        .get(&url)
        .header("if-none-match", "\"0000000000000000\"")
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);

    // the versioned path: same bytes, cached for good
    let pinned = format!("{}{}", srv.base, versioned_path());
    assert_eq!(versioned_path(), format!("/sdk/crow.{}.js", &etag[1..9]));
    let r = c.get(&pinned).send().unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(
        header(&r, "cache-control").as_deref(),
        Some("public, max-age=31536000, immutable")
    );
    assert_eq!(header(&r, "etag").as_deref(), Some(etag.as_str()));
    assert_eq!(r.text().unwrap(), CROW_JS);
    let r = c.get(&pinned).header("if-none-match", &etag).send().unwrap();
    assert_eq!(r.status().as_u16(), 304);
    assert_eq!(
        header(&r, "cache-control").as_deref(),
        Some("public, max-age=31536000, immutable")
    );

    // an older build's path: 404 naming the current one
    let r = c.get(format!("{}/sdk/crow.00000000.js", srv.base)).send().unwrap();
    assert_eq!(r.status().as_u16(), 404);
    let body: Value = r.json().unwrap();
    assert_eq!(body["current"], versioned_path());

    // not GET or HEAD
    let r = c.post(&url).body("x").send().unwrap();
    assert_eq!(r.status().as_u16(), 405);
    assert_eq!(header(&r, "allow").as_deref(), Some("GET, HEAD"));

    let metrics = c.get(format!("{}/metrics", srv.base)).send().unwrap().text().unwrap();
    assert!(
        metrics.contains("crow_http_requests_total{route=\"sdk\",status=\"200\"}"),
        "{metrics}"
    );
}

#[test]
fn dropped_events_reported_by_the_sdk_reach_the_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let org = create_org(dir.path(), "Acme");
    let srv = ServerProcess::start(dir.path(), 0, &[]);
    let c = client();
    let base = &srv.base;
    let metrics = || c.get(format!("{base}/metrics")).send().unwrap().text().unwrap();
    assert!(metrics().contains("\ncrow_sdk_dropped_events_total 0\n"));

    // as crow.js sends it after its offline queue overflowed: sendBeacon-style text/plain body
    let batch = json!({"k": org.write_key, "sa": 1_700_000_000_500i64, "dr": 3, "c": {"l": "en-US"}, "b": [
        {"i": "sdk-dr-1", "t": "t", "n": "Back Online", "a": "anon-dr", "u": null, "ts": 1_700_000_000_000i64}
    ]})
    .to_string();
    let post = || {
        c.post(format!("{base}/api/v1/events"))
            .header("content-type", "text/plain;charset=UTF-8")
            .body(batch.clone())
            .send()
            .unwrap()
    };
    let r = post();
    assert_eq!(r.status().as_u16(), 200);
    let body: Value = r.json().unwrap();
    assert_eq!(body["accepted"], 1, "{body}");
    let m = metrics();
    assert!(m.contains("\ncrow_sdk_dropped_events_total 3\n"), "{m}");
    assert!(m.contains("# HELP crow_sdk_dropped_events_total "), "{m}");
    assert!(m.contains("# TYPE crow_sdk_dropped_events_total counter"), "{m}");

    // the same batch resent: stored once, its drops counted once
    let r = post();
    assert_eq!(r.status().as_u16(), 200);
    assert!(metrics().contains("\ncrow_sdk_dropped_events_total 3\n"));

    // not an integer: the request is refused
    let r = c
        .post(format!("{base}/api/v1/events"))
        .json(&json!({"k": org.write_key, "dr": "3", "b": [{"t": "t", "n": "X", "a": "a"}]}))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let body: Value = r.json().unwrap();
    assert_eq!(body["detail"], "/dr: expected a non-negative integer");

    let log = srv.log();
    assert!(
        log.lines()
            .any(|l| l.contains("dropped") && l.contains(&org.org_id) && l.contains("3")),
        "{log}"
    );
}

#[test]
fn posthog_js_config_and_flags_answer_cross_origin() {
    let dir = tempfile::tempdir().unwrap();
    let org = create_org(dir.path(), "Acme");
    let srv = ServerProcess::start(dir.path(), 0, &[]);
    let c = client();
    let base = &srv.base;
    let origin = "https://shop.test";

    let r = c
        .get(format!("{base}/array/{}/config", org.write_key))
        .header("origin", origin)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(header(&r, "access-control-allow-origin").as_deref(), Some(origin));
    assert_eq!(header(&r, "content-type").as_deref(), Some("application/json"));
    let body: Value = r.json().unwrap();
    assert_eq!(
        body,
        json!({"token": org.write_key, "supportedCompression": ["gzip-js", "base64"], "hasFeatureFlags": false,
               "sessionRecording": false, "heatmaps": false, "surveys": false, "siteApps": [],
               "capturePerformance": false, "autocaptureExceptions": false, "defaultIdentifiedOnly": true})
    );
    for suffix in ["config/", "config.json"] {
        let r = c
            .get(format!("{base}/array/{}/{suffix}", org.write_key))
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), 200, "{suffix}");
    }

    // the preflight posthog-js's JSON POST needs, then the POST
    let r = c
        .request(reqwest::Method::OPTIONS, format!("{base}/flags/?v=2"))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);
    assert_eq!(header(&r, "access-control-allow-origin").as_deref(), Some(origin));
    assert_eq!(
        header(&r, "access-control-allow-methods").as_deref(),
        Some("POST, OPTIONS")
    );
    assert_eq!(
        header(&r, "access-control-allow-headers").as_deref(),
        Some("content-type")
    );

    let r = c
        .post(format!("{base}/flags/?v=2&config=true"))
        .header("origin", origin)
        .json(&json!({"token": org.write_key, "distinct_id": "anon-1", "groups": {}}))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(header(&r, "access-control-allow-origin").as_deref(), Some(origin));
    assert_eq!(header(&r, "access-control-allow-credentials").as_deref(), Some("true"));
    let body: Value = r.json().unwrap();
    assert_eq!(
        body,
        json!({"flags": {}, "featureFlags": {}, "featureFlagPayloads": {}, "errorsWhileComputingFlags": false,
               "supportedCompression": ["gzip-js", "base64"], "sessionRecording": false})
    );
    let r = c
        .post(format!("{base}/decide/?v=3"))
        .body("data=e30%3D")
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
}
