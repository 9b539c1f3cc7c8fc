//! Unit tests of the three mappings and the envelope handling.

use super::*;
use crow_core::model::{DeviceClass, EventType, Source};
use serde_json::json;

const RECV: i64 = 1_714_564_800_000; // 2024-05-01T12:00:00Z

fn req(path: &str, query: Option<&str>, headers: &[(&str, &str)], body: impl Into<Vec<u8>>) -> HttpRequest {
    HttpRequest {
        method: "POST".into(),
        path: path.into(),
        query: query.map(str::to_owned),
        headers: headers
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        body: body.into(),
        peer_ip: Some("203.0.113.77".parse().unwrap()),
    }
}

fn parse(r: &HttpRequest) -> ParsedRequest {
    parse_request(r, Route::from_path(&r.path).unwrap(), &Limits::default()).unwrap()
}

fn run(r: &HttpRequest) -> NormalizedBatch {
    let parsed = parse(r);
    let info = RequestInfo::from_request(r, false);
    parsed.normalize("org_t", b"pseudonym-key", &info, &Limits::default(), RECV)
}

fn json_body(v: Value) -> Vec<u8> {
    serde_json::to_vec(&v).unwrap()
}

const CHROME: &str =
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36";

#[test]
fn routes() {
    assert_eq!(Route::from_path("/api/v1/events"), Some(Route::Crow));
    assert_eq!(Route::from_path("/api/v1/events/"), Some(Route::Crow));
    assert_eq!(Route::from_path("/v1/batch"), Some(Route::Segment(None)));
    assert_eq!(
        Route::from_path("/v1/alias/"),
        Some(Route::Segment(Some(EventType::Alias)))
    );
    for p in ["/batch/", "/batch", "/capture/", "/e/", "/e", "/i/v0/e/", "/i/v0/e"] {
        assert_eq!(Route::from_path(p), Some(Route::PostHog), "{p}");
    }
    assert_eq!(Route::from_path("/"), None);
    assert_eq!(Route::from_path("/api/v1/interactions"), None);
}

#[test]
fn crow_compact_batch_maps_every_field() {
    let body = json!({
        "k": "wk_body", "sa": RECV + 3_600_000 + 500, // client clock 1 h fast
        "b": [
            {"t": "p", "i": "e1", "a": "anon1", "s": "sess1", "ts": RECV + 3_600_000,
             "c": {"u": "https://shop.example/p/42?utm_source=news&utm_medium=email&utm_campaign=spring&gclid=CLICKVALUE#top",
                   "r": "https://www.google.com/", "ti": "Blue shoe", "l": "en-US", "sw": 1440, "sh": 900, "tz": "Europe/Paris"}},
            {"t": "t", "n": "Add to cart", "i": "e2", "u": "user7", "p": {"sku": "42", "price": 59.9}},
            {"t": "i", "i": "e3", "u": "user7", "a": "anon1", "p": {"plan": "pro"}},
            {"type": "group", "i": "e4", "u": "user7", "g": "acme", "p": {"seats": 5}},
            {"t": "a", "i": "e5", "u": "user7", "pi": "anon1"},
        ]
    });
    let r = req(
        "/api/v1/events",
        None,
        &[("user-agent", CHROME), ("content-type", "text/plain")],
        json_body(body),
    );
    assert_eq!(parse(&r).key.as_deref(), Some("wk_body"));
    let out = run(&r);
    assert!(out.rejected.is_empty(), "{:?}", out.rejected);
    let [page, track, identify, group, alias] = &out.events[..] else {
        panic!("{:?}", out.events)
    };

    assert_eq!(
        (page.id.as_str(), page.event_type, page.source),
        ("e1", EventType::Page, Source::Crow)
    );
    assert_eq!(page.org_id, "org_t");
    assert_eq!(page.anonymous_id.as_deref(), Some("anon1"));
    assert_eq!(page.session_id.as_deref(), Some("sess1"));
    // skew: sent 500 ms after the event by a clock 1 h fast → 500 ms before receipt
    assert_eq!(page.timestamp, RECV - 500);
    assert_eq!(page.original_timestamp, Some(RECV + 3_600_000));
    assert_eq!(page.sent_at, Some(RECV + 3_600_500));
    assert_eq!(page.received_at, RECV);
    let p = page.context.page.as_ref().unwrap();
    assert_eq!(
        p.url.as_deref(),
        Some("https://shop.example/p/42?utm_source=news&utm_medium=email&utm_campaign=spring#top")
    );
    assert_eq!(p.path.as_deref(), Some("/p/42"));
    assert_eq!(
        p.search.as_deref(),
        Some("?utm_source=news&utm_medium=email&utm_campaign=spring")
    );
    assert_eq!(p.referrer.as_deref(), Some("https://www.google.com/"));
    assert_eq!(p.title.as_deref(), Some("Blue shoe"));
    let c = page.context.campaign.as_ref().unwrap();
    assert_eq!(
        (c.source.as_deref(), c.medium.as_deref(), c.name.as_deref()),
        (Some("news"), Some("email"), Some("spring"))
    );
    assert_eq!(c.click_id.as_deref(), Some("gclid"));
    assert!(!serde_json::to_string(page).unwrap().contains("CLICKVALUE"));
    assert_eq!(page.context.locale.as_deref(), Some("en-US"));
    assert_eq!(page.context.timezone.as_deref(), Some("Europe/Paris"));
    let s = page.context.screen.unwrap();
    assert_eq!((s.width, s.height), (Some(1440), Some(900)));
    // browser-originated: the request's user agent and address are used, reduced
    let ua = page.context.user_agent.as_ref().unwrap();
    assert_ne!(ua.device, DeviceClass::Bot);
    assert!(!page.is_bot);
    assert!(!serde_json::to_string(page).unwrap().contains("AppleWebKit"));
    let ip = page.context.ip.as_deref().unwrap();
    assert!(ip.starts_with("203.0.113.") && ip != "203.0.113.77", "{ip}");

    assert_eq!(
        (track.event_type, track.name.as_deref()),
        (EventType::Track, Some("Add to cart"))
    );
    assert_eq!(track.properties["sku"], "42");
    assert_eq!(track.user_id.as_deref(), Some("user7"));
    // no ts: the event happened when received (sent_at alone moves nothing)
    assert_eq!(track.timestamp, RECV);

    assert_eq!(identify.event_type, EventType::Identify);
    assert_eq!(identify.traits["plan"], "pro");
    assert!(identify.properties.is_empty());
    assert_eq!(
        (group.event_type, group.group_id.as_deref()),
        (EventType::Group, Some("acme"))
    );
    assert_eq!(group.traits["seats"], 5);
    assert_eq!(
        (alias.event_type, alias.previous_id.as_deref(), alias.user_id.as_deref()),
        (EventType::Alias, Some("anon1"), Some("user7"))
    );
}

#[test]
fn crow_keys_from_query_and_headers() {
    let ev = json!([{"t": "p", "a": "x"}]);
    let r = req("/api/v1/events", Some("k=wk_query"), &[], json_body(ev.clone()));
    assert_eq!(parse(&r).key.as_deref(), Some("wk_query"));
    let r = req("/api/v1/events", Some("writeKey=wk_q2"), &[], json_body(ev.clone()));
    assert_eq!(parse(&r).key.as_deref(), Some("wk_q2"));
    let r = req(
        "/api/v1/events",
        None,
        &[("authorization", "Bearer wk_bearer")],
        json_body(ev.clone()),
    );
    assert_eq!(parse(&r).key.as_deref(), Some("wk_bearer"));
    // "wk_basic:" in base64
    let r = req(
        "/api/v1/events",
        None,
        &[("authorization", "Basic d2tfYmFzaWM6")],
        json_body(ev.clone()),
    );
    assert_eq!(parse(&r).key.as_deref(), Some("wk_basic"));
    let r = req("/api/v1/events", None, &[], json_body(ev));
    assert_eq!(parse(&r).key, None);
    // the body wins
    let r = req(
        "/api/v1/events",
        Some("k=wk_query"),
        &[],
        json_body(json!({"writeKey": "wk_long", "batch": []})),
    );
    assert_eq!(parse(&r).key.as_deref(), Some("wk_long"));
}

#[test]
fn crow_single_event_and_long_names() {
    let r = req(
        "/api/v1/events",
        None,
        &[],
        json_body(
            json!({"writeKey": "wk", "type": "track", "event": "Signed up", "userId": 42, "messageId": "m1",
                         "timestamp": "2024-05-01T11:59:00Z", "sentAt": "2024-05-01T11:59:00.000Z",
                         "properties": {"a": 1}, "context": {"page": {"url": "https://x.example/a?b=1"}, "locale": "fr"}}),
        ),
    );
    let out = run(&r);
    let e = &out.events[0];
    assert_eq!(
        (e.id.as_str(), e.name.as_deref(), e.user_id.as_deref()),
        ("m1", Some("Signed up"), Some("42"))
    );
    assert_eq!(e.timestamp, RECV);
    assert_eq!(e.context.page.as_ref().unwrap().path.as_deref(), Some("/a"));
    assert_eq!(e.context.locale.as_deref(), Some("fr"));
}

#[test]
fn bad_events_are_rejected_with_field_and_reason_good_ones_kept() {
    let long = "x".repeat(70_000);
    let body = json!({"k": "wk", "b": [
        {"t": "p", "a": "ok0"},
        {"a": "no-type"},
        {"t": "zzz", "a": "x"},
        {"t": "t", "a": "x"},
        {"t": "p"},
        {"t": "g", "a": "x"},
        {"t": "a", "u": "x"},
        {"t": "p", "a": "x", "ts": "yesterday"},
        {"t": "p", "a": "x", "i": "i".repeat(201)},
        {"t": "p", "a": "x", "p": {"note": long}},
        {"t": "p", "a": "x", "c": {"sw": "wide"}},
        "not an object",
        {"t": "p", "a": "ok12", "p": {"fine": true}},
    ]});
    let out = run(&req("/api/v1/events", None, &[], json_body(body)));
    assert_eq!(out.events.len(), 2);
    let got: Vec<(usize, &str)> = out.rejected.iter().map(|r| (r.index, r.field.as_str())).collect();
    assert_eq!(
        got,
        vec![
            (1, "/b/1/t"),
            (2, "/b/2/t"),
            (3, "/b/3/n"),
            (4, "/b/4/u"),
            (5, "/b/5/g"),
            (6, "/b/6/pi"),
            (7, "/b/7/ts"),
            (8, "/b/8/i"),
            (9, "/b/9/p/note"),
            (10, "/b/10/c/sw"),
            (11, "/b/11"),
        ]
    );
    assert!(
        out.rejected[6].reason.contains("timestamp"),
        "{}",
        out.rejected[6].reason
    );
    assert!(out.rejected[8].reason.contains("65536"), "{}", out.rejected[8].reason);
    // long names when the client uses them
    let out = run(&req(
        "/api/v1/events",
        None,
        &[],
        json_body(json!({"batch": [{"type": "track", "anonymousId": "a"}]})),
    ));
    assert_eq!(out.rejected[0].field, "/batch/0/event");
}

#[test]
fn ids_derived_from_content_are_stable_across_resends() {
    let mk = |sa: i64| {
        json_body(
            json!({"k": "wk", "sa": sa, "b": [{"t": "p", "a": "x", "ts": RECV - 10}, {"t": "p", "a": "x", "ts": RECV - 5}]}),
        )
    };
    let a = run(&req("/api/v1/events", None, &[], mk(RECV)));
    let b = run(&req("/api/v1/events", None, &[], mk(RECV + 2_000)));
    assert_eq!(a.events[0].id, b.events[0].id);
    assert_eq!(a.events[1].id, b.events[1].id);
    assert_ne!(a.events[0].id, a.events[1].id);
    assert!(a.events[0].id.starts_with("h_"));
}

#[test]
fn too_many_events_is_refused_as_a_whole() {
    let events: Vec<Value> = (0..501).map(|i| json!({"t": "p", "a": format!("a{i}")})).collect();
    let r = req("/api/v1/events", None, &[], json_body(json!({"k": "wk", "b": events})));
    let e = parse_request(&r, Route::Crow, &Limits::default()).unwrap_err();
    assert_eq!((e.kind, e.kind.status()), (RequestErrorKind::TooManyEvents, 413));
    let resp = e.to_response();
    assert_eq!(resp.json_body().unwrap()["type"], "/problems/too_many_events");
}

#[test]
fn bad_shapes() {
    for (path, body) in [
        ("/api/v1/events", json!("hello")),
        ("/api/v1/events", json!({"b": {"t": "p"}})),
        ("/v1/batch", json!({"writeKey": "x"})),
        ("/v1/track", json!([1])),
        ("/api/v1/events", json!({"b": [], "sa": "soon"})),
    ] {
        let e = parse_request(
            &req(path, None, &[], json_body(body.clone())),
            Route::from_path(path).unwrap(),
            &Limits::default(),
        )
        .unwrap_err();
        assert_eq!(e.kind, RequestErrorKind::BadRequest, "{body}");
    }
}

#[test]
fn crow_dropped_count_from_the_envelope() {
    for (body, want) in [
        (json!({"dr": 3, "b": [{"t": "p", "a": "v"}]}), 3),
        (json!({"dr": 0, "b": [{"t": "p", "a": "v"}]}), 0),
        (json!({"dr": null, "b": [{"t": "p", "a": "v"}]}), 0),
        (json!({"b": [{"t": "p", "a": "v"}]}), 0),
        (
            json!({"dropped": 12, "batch": [{"type": "page", "anonymousId": "v"}]}),
            12,
        ),
        (json!({"dr": 2, "dropped": 9, "b": [{"t": "p", "a": "v"}]}), 2),
        (json!({"dr": null, "dropped": 9, "b": [{"t": "p", "a": "v"}]}), 9),
        (json!({"dr": u64::MAX, "b": []}), u64::MAX),
    ] {
        let r = req("/api/v1/events", None, &[], json_body(body.clone()));
        assert_eq!(parse(&r).client_dropped, want, "{body}");
    }
    for (body, field) in [
        (json!({"dr": -1, "b": []}), "dr"),
        (json!({"dr": 1.5, "b": []}), "dr"),
        (json!({"dr": "3", "b": []}), "dr"),
        (json!({"dr": true, "b": []}), "dr"),
        (json!({"dr": [3], "b": []}), "dr"),
        (json!({"dropped": {}, "batch": []}), "dropped"),
    ] {
        let r = req("/api/v1/events", None, &[], json_body(body.clone()));
        let e = parse_request(&r, Route::Crow, &Limits::default()).unwrap_err();
        assert_eq!(e.kind, RequestErrorKind::BadRequest, "{body}");
        assert_eq!(e.detail, format!("/{field}: expected a non-negative integer"));
    }
    // Only CROW's envelope has it: elsewhere it is not read.
    let r = req("/v1/batch", None, &[], json_body(json!({"dr": 4, "batch": []})));
    assert_eq!(parse(&r).client_dropped, 0);
}

#[test]
fn crow_null_user_id_is_absent() {
    // What crow.js sends for a visitor it does not know yet.
    let r = req(
        "/api/v1/events",
        None,
        &[("user-agent", CHROME)],
        json_body(json!({"k": "wk", "sa": RECV, "dr": 0, "b": [
            {"i": "e-1", "t": "p", "a": "v1", "u": null, "ts": RECV, "c": {"u": "https://shop.example/"}},
            {"i": "e-2", "t": "t", "n": "Clicked", "a": "v1", "u": null, "s": null, "ts": RECV}
        ], "c": {"l": "en-US"}})),
    );
    assert_eq!(parse(&r).client_dropped, 0);
    let out = run(&r);
    assert!(out.rejected.is_empty(), "{:?}", out.rejected);
    assert_eq!(out.events.len(), 2);
    for e in &out.events {
        assert_eq!(e.user_id, None);
        assert_eq!(e.anonymous_id.as_deref(), Some("v1"));
    }
    // A null user id does not stand in for the required anonymous one.
    let r = req(
        "/api/v1/events",
        None,
        &[],
        json_body(json!({"b": [{"t": "p", "u": null}]})),
    );
    assert_eq!(run(&r).rejected.len(), 1);
}

#[test]
fn posthog_js_config_and_flags_endpoints() {
    let get = |path: &str| HttpRequest {
        method: "GET".into(),
        path: path.into(),
        ..HttpRequest::default()
    };
    for path in [
        "/array/phc_Abc-1.x/config",
        "/array/phc_Abc-1.x/config/",
        "/array/phc_Abc-1.x/config.json",
    ] {
        let ep = PostHogEndpoint::from_path(path).unwrap();
        assert_eq!(
            ep,
            PostHogEndpoint::Config {
                token: "phc_Abc-1.x".into()
            },
            "{path}"
        );
        let resp = ep.respond(&get(path));
        assert_eq!(resp.status, 200);
        assert_eq!(
            resp.json_body().unwrap(),
            json!({"token": "phc_Abc-1.x", "supportedCompression": ["gzip-js", "base64"], "hasFeatureFlags": false,
                   "sessionRecording": false, "heatmaps": false, "surveys": false, "siteApps": [],
                   "capturePerformance": false, "autocaptureExceptions": false, "defaultIdentifiedOnly": true})
        );
        assert!(
            resp.headers
                .contains(&("content-type".into(), "application/json".into()))
        );
    }
    for path in ["/flags", "/flags/", "/decide", "/decide/"] {
        assert_eq!(PostHogEndpoint::from_path(path), Some(PostHogEndpoint::Flags), "{path}");
        // posthog-js posts gzip or base64 bodies with `?v=2&compression=...`: never read
        let mut r = req(
            path,
            Some("v=2&config=true&compression=gzip-js"),
            &[],
            b"\x1f\x8b junk".to_vec(),
        );
        let resp = PostHogEndpoint::Flags.respond(&r);
        assert_eq!(resp.status, 200);
        assert_eq!(
            resp.json_body().unwrap(),
            json!({"flags": {}, "featureFlags": {}, "featureFlagPayloads": {}, "errorsWhileComputingFlags": false,
                   "supportedCompression": ["gzip-js", "base64"], "sessionRecording": false})
        );
        r.method = "GET".into();
        let resp = PostHogEndpoint::Flags.respond(&r);
        assert_eq!(resp.status, 405);
        assert!(resp.headers.contains(&("allow".into(), "POST, OPTIONS".into())));
    }
    // The script form sets window._POSTHOG_REMOTE_CONFIG[token] to the same config.
    let ep = PostHogEndpoint::from_path("/array/wk_1/config.js").unwrap();
    assert_eq!(ep, PostHogEndpoint::ConfigScript { token: "wk_1".into() });
    let resp = ep.respond(&get("/array/wk_1/config.js"));
    assert_eq!(resp.status, 200);
    assert!(
        resp.headers
            .contains(&("content-type".into(), "text/javascript; charset=utf-8".into()))
    );
    let script = String::from_utf8(resp.body).unwrap();
    let prefix = r#"(window._POSTHOG_REMOTE_CONFIG=window._POSTHOG_REMOTE_CONFIG||{})["wk_1"]="#;
    let value: serde_json::Value =
        serde_json::from_str(script.strip_prefix(prefix).unwrap().strip_suffix(';').unwrap()).unwrap();
    assert_eq!(value["config"]["supportedCompression"][0], "gzip-js");
    assert_eq!(value["siteApps"], json!([]));
    let mut r = get("/array/wk/config");
    r.method = "POST".into();
    assert_eq!(PostHogEndpoint::from_path(&r.path).unwrap().respond(&r).status, 405);
    for path in [
        "/array//config",
        "/array/wk/settings",
        "/array/w k/config",
        "/array/wk/x/config",
        "/array/wk",
        "/flags/x",
        "/decide/v3",
        "/batch/",
    ] {
        assert_eq!(PostHogEndpoint::from_path(path), None, "{path}");
    }
    let long = format!("/array/{}/config", "a".repeat(257));
    assert_eq!(PostHogEndpoint::from_path(&long), None);
}

#[test]
fn segment_python_batch_works_unmodified() {
    // What analytics-python 2.x posts (nulls included), with Basic auth "wk_seg:".
    let body = json!({
        "batch": [
            {"integrations": {}, "anonymousId": null, "properties": {"plan": "pro"}, "timestamp": "2024-05-01T11:58:00.000+00:00",
             "context": {"library": {"name": "analytics-python", "version": "2.4.0"}}, "userId": "u1", "type": "track",
             "event": "Upgraded", "messageId": "5f1b4c1e-1b7a-4a77-9f0f-0cbbfd0f1a11"},
            {"integrations": {}, "anonymousId": null, "timestamp": "2024-05-01T11:58:00.000+00:00",
             "context": {"library": {"name": "analytics-python", "version": "2.4.0"}, "ip": "198.51.100.23", "userAgent": CHROME,
                         "traits": {"name": "Ada"}},
             "type": "identify", "userId": "u1", "traits": {}, "messageId": "m-2"},
            {"integrations": {}, "anonymousId": "a1", "properties": {"url": "https://s.example/docs?x=1", "title": "Docs"}, "timestamp": "2024-05-01T11:58:00.000+00:00",
             "category": "Docs", "context": {"library": {"name": "analytics-python", "version": "2.4.0"}}, "userId": null, "type": "page",
             "name": "Docs", "messageId": "m-3"},
            {"type": "alias", "previousId": "a1", "userId": "u1", "messageId": "m-4", "context": {}, "integrations": {}, "timestamp": "2024-05-01T11:58:00.000+00:00"},
            {"type": "group", "groupId": "g1", "userId": "u1", "traits": {"name": "Acme"}, "messageId": "m-5", "context": {}, "integrations": {}, "timestamp": "2024-05-01T11:58:00.000+00:00"},
        ],
        "sentAt": "2024-05-01T11:58:00.000000+00:00",
        "writeKey": "wk_seg",
    });
    let r = req(
        "/v1/batch",
        None,
        &[
            ("authorization", "Basic d2tfc2VnOg=="),
            ("user-agent", "analytics-python/2.4.0"),
        ],
        json_body(body),
    );
    assert_eq!(parse(&r).key.as_deref(), Some("wk_seg"));
    let out = run(&r);
    assert!(out.rejected.is_empty(), "{:?}", out.rejected);
    let [track, identify, page, alias, group] = &out.events[..] else {
        panic!()
    };
    assert_eq!(
        (track.id.as_str(), track.name.as_deref(), track.source),
        (
            "5f1b4c1e-1b7a-4a77-9f0f-0cbbfd0f1a11",
            Some("Upgraded"),
            Source::Segment
        )
    );
    assert_eq!(
        (track.user_id.as_deref(), track.anonymous_id.as_deref()),
        (Some("u1"), None)
    );
    assert_eq!(track.timestamp, RECV, "sent and happened at the same client time");
    assert_eq!(track.context.library.as_ref().unwrap().name, "analytics-python");
    // a server library: its own user agent and address are not the visitor's
    assert!(track.context.user_agent.is_none() && track.context.ip.is_none());
    // ... but what the event says is used
    assert!(identify.context.user_agent.is_some());
    assert!(identify.context.ip.as_deref().is_some_and(|ip| ip != "198.51.100.23"));
    assert_eq!(identify.traits["name"], "Ada");
    assert!(!identify.context.extra.contains_key("integrations"));
    let p = page.context.page.as_ref().unwrap();
    assert_eq!(
        (p.url.as_deref(), p.path.as_deref(), p.title.as_deref()),
        (Some("https://s.example/docs?x=1"), Some("/docs"), Some("Docs"))
    );
    assert_eq!(page.properties["category"], "Docs");
    assert_eq!(page.name.as_deref(), Some("Docs"));
    assert_eq!(
        (alias.previous_id.as_deref(), alias.user_id.as_deref()),
        (Some("a1"), Some("u1"))
    );
    assert_eq!(group.group_id.as_deref(), Some("g1"));
}

#[test]
fn segment_single_routes_take_the_type_from_the_path() {
    let r = req(
        "/v1/page",
        None,
        &[],
        json_body(json!({"writeKey": "wk", "anonymousId": "a", "name": "Home",
        "context": {"library": {"name": "analytics.js", "version": "5"}, "page": {"url": "https://a.example/"}, "campaign": {"source": "ads", "medium": "cpc"}},
        "sentAt": "2024-05-01T12:00:00Z", "originalTimestamp": "2024-05-01T11:59:59Z"})),
    );
    assert_eq!(parse(&r).key.as_deref(), Some("wk"));
    let out = run(&r);
    let e = &out.events[0];
    assert_eq!((e.event_type, e.name.as_deref()), (EventType::Page, Some("Home")));
    assert_eq!(e.timestamp, RECV - 1000);
    assert_eq!(e.context.campaign.as_ref().unwrap().medium.as_deref(), Some("cpc"));
    // analytics.js is a browser library: no context.ip → the request's
    assert!(e.context.ip.is_some());
    let out = run(&req("/v1/track", None, &[], json_body(json!({"userId": "u"}))));
    assert_eq!(out.rejected[0].field, "/event");
    let out = run(&req("/v1/alias", None, &[], json_body(json!({"userId": "u"}))));
    assert_eq!(out.rejected[0].field, "/previousId");
    let out = run(&req("/v1/group", None, &[], json_body(json!({"userId": "u"}))));
    assert_eq!(out.rejected[0].field, "/groupId");
    let out = run(&req("/v1/identify", None, &[], json_body(json!({"traits": {}}))));
    assert_eq!(out.rejected[0].field, "/userId");
}

#[test]
fn posthog_python_batch() {
    // What posthog-python 7.x posts to /batch/.
    let body = json!({
        "batch": [
            {"properties": {"plan": "pro", "$python_runtime": "CPython", "$python_version": "3.11.7", "$os": "Linux", "$os_version": "12",
                            "$lib": "posthog-python", "$lib_version": "7.9.1", "$geoip_disable": true, "$is_server": true},
             "timestamp": "2024-05-01T11:59:59+00:00", "distinct_id": "user-1", "event": "upgraded", "uuid": "0b0e7c4e-6b0e-4c39-bf5e-6b6f5d2bb001"},
            {"timestamp": "2024-05-01T11:59:59+00:00", "distinct_id": "user-1", "$set": {"plan": "pro"}, "event": "$set",
             "uuid": "0b0e7c4e-6b0e-4c39-bf5e-6b6f5d2bb002", "properties": {"$lib": "posthog-python"}},
            {"properties": {"distinct_id": "old-id", "alias": "user-1", "$lib": "posthog-python"}, "timestamp": "2024-05-01T11:59:59+00:00",
             "event": "$create_alias", "distinct_id": "old-id", "uuid": "0b0e7c4e-6b0e-4c39-bf5e-6b6f5d2bb003"},
            {"event": "$groupidentify", "properties": {"$group_type": "company", "$group_key": "acme", "$group_set": {"employees": 11}, "$lib": "posthog-python"},
             "distinct_id": "$company_acme", "timestamp": "2024-05-01T11:59:59+00:00", "uuid": "0b0e7c4e-6b0e-4c39-bf5e-6b6f5d2bb004"},
        ],
        "historical_migration": false,
        "sent_at": "2024-05-01T12:00:00.000000+00:00",
        "api_key": "wk_ph",
    });
    let r = req(
        "/batch/",
        None,
        &[("user-agent", "posthog-python/7.9.1")],
        json_body(body),
    );
    assert_eq!(parse(&r).key.as_deref(), Some("wk_ph"));
    let out = run(&r);
    assert!(out.rejected.is_empty(), "{:?}", out.rejected);
    let [track, set, alias, group] = &out.events[..] else {
        panic!()
    };
    assert_eq!(
        (track.event_type, track.name.as_deref(), track.source),
        (EventType::Track, Some("upgraded"), Source::Posthog)
    );
    assert_eq!(track.id, "0b0e7c4e-6b0e-4c39-bf5e-6b6f5d2bb001");
    assert_eq!(
        (track.anonymous_id.as_deref(), track.user_id.as_deref()),
        (Some("user-1"), None)
    );
    assert_eq!(track.timestamp, RECV - 1000);
    assert_eq!(track.context.library.as_ref().unwrap().name, "posthog-python");
    // the server's OS is not the visitor's: kept as a property, not mapped into the user agent
    let mut keys: Vec<&String> = track.properties.keys().collect();
    keys.sort();
    assert_eq!(
        keys,
        vec!["$os", "$os_version", "$python_runtime", "$python_version", "plan"]
    );
    assert!(track.context.user_agent.is_none() && track.context.ip.is_none());
    assert_eq!(
        (set.event_type, &set.traits["plan"]),
        (EventType::Identify, &json!("pro"))
    );
    assert_eq!(
        (alias.event_type, alias.previous_id.as_deref(), alias.user_id.as_deref()),
        (EventType::Alias, Some("old-id"), Some("user-1"))
    );
    assert_eq!(
        (group.event_type, group.group_id.as_deref()),
        (EventType::Group, Some("acme"))
    );
    assert_eq!(group.traits["employees"], 11);
    assert_eq!(group.properties["group_type"], "company");
}

#[test]
fn posthog_js_events() {
    let events = json!([
        {"uuid": "01890000-0000-7000-8000-000000000001", "event": "$pageview", "timestamp": "2024-05-01T12:59:59.000Z",
         "properties": {"token": "wk_js", "distinct_id": "user-9", "$device_id": "dev-1", "$is_identified": true,
                        "$current_url": "https://shop.example/sale?utm_source=fb&fbclid=SECRETCLICK", "$host": "shop.example",
                        "$pathname": "/sale", "$referrer": "$direct", "$referring_domain": "$direct",
                        "$os": "Mac OS X", "$browser": "Chrome", "$browser_version": 124.0, "$device_type": "Desktop",
                        "$screen_width": 1728, "$screen_height": 1117, "$lib": "web", "$lib_version": "1.130.0",
                        "$timezone": "Europe/Berlin", "$browser_language": "de-DE", "$session_id": "s-1", "$window_id": "w-1",
                        "utm_source": "fb", "fbclid": "SECRETCLICK", "$insert_id": "ins1", "$time": 1714568399.0,
                        "$raw_user_agent": CHROME, "custom": 1},
         "$set_once": {"$initial_referrer": "$direct"}},
        {"uuid": "01890000-0000-7000-8000-000000000002", "event": "$identify", "offset": 1500,
         "properties": {"distinct_id": "user-9", "$anon_distinct_id": "anon-9", "$lib": "web"},
         "$set": {"plan": "pro"}},
        {"event": "clicked", "properties": {"distinct_id": "anon-3", "$lib": "web", "$insert_id": "ins3"}},
    ]);
    // posthog-js with sendBeacon: base64 form, sent_at in the query
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(serde_json::to_vec(&events).unwrap());
    let body = format!(
        "data={}",
        form_urlencoded::byte_serialize(b64.as_bytes()).collect::<String>()
    );
    let sent = (RECV + 3_600_000).to_string();
    let query = format!("ip=1&_={sent}&ver=1.130.0&compression=base64");
    let r = req(
        "/e/",
        Some(&query),
        &[
            ("content-type", "application/x-www-form-urlencoded"),
            ("user-agent", "Googlebot/2.1"),
        ],
        body,
    );
    let parsed = parse(&r);
    assert_eq!(parsed.key.as_deref(), Some("wk_js"));
    assert_eq!(parsed.sent_at, Some(RECV + 3_600_000));
    let out = run(&r);
    assert!(out.rejected.is_empty(), "{:?}", out.rejected);
    let [pv, identify, clicked] = &out.events[..] else {
        panic!()
    };
    assert_eq!(pv.event_type, EventType::Page);
    assert_eq!(
        (pv.user_id.as_deref(), pv.anonymous_id.as_deref()),
        (Some("user-9"), Some("dev-1"))
    );
    assert_eq!(pv.timestamp, RECV - 1000, "skew-corrected with ?_=");
    let page = pv.context.page.as_ref().unwrap();
    assert_eq!(page.url.as_deref(), Some("https://shop.example/sale?utm_source=fb"));
    assert_eq!((page.path.as_deref(), page.referrer.as_deref()), (Some("/sale"), None));
    let c = pv.context.campaign.as_ref().unwrap();
    assert_eq!(
        (c.source.as_deref(), c.click_id.as_deref()),
        (Some("fb"), Some("fbclid"))
    );
    assert_eq!(pv.session_id.as_deref(), Some("s-1"));
    assert_eq!(pv.context.timezone.as_deref(), Some("Europe/Berlin"));
    assert_eq!(pv.context.locale.as_deref(), Some("de-DE"));
    assert_eq!(pv.context.screen.unwrap().width, Some(1728));
    assert_eq!(pv.context.library.as_ref().unwrap().version.as_deref(), Some("1.130.0"));
    // the raw UA of the event wins over the request header
    assert!(!pv.is_bot);
    assert!(
        pv.context.ip.is_some(),
        "posthog-js is a browser: the request address is used"
    );
    let mut keys: Vec<&String> = pv.properties.keys().collect();
    keys.sort();
    assert_eq!(keys, vec!["$window_id", "custom"]);
    assert_eq!(pv.traits["$initial_referrer"], "$direct");
    let text = serde_json::to_string(pv).unwrap();
    assert!(!text.contains("SECRETCLICK") && !text.contains("AppleWebKit"), "{text}");

    assert_eq!(identify.event_type, EventType::Identify);
    assert_eq!(
        (identify.user_id.as_deref(), identify.anonymous_id.as_deref()),
        (Some("user-9"), Some("anon-9"))
    );
    assert_eq!(identify.traits["plan"], "pro");
    assert_eq!(identify.timestamp, RECV - 1500, "offset");
    // no uuid: $insert_id; not identified: distinct_id is anonymous; request UA → bot
    assert_eq!(clicked.id, "ins3");
    assert_eq!(
        (clicked.anonymous_id.as_deref(), clicked.user_id.as_deref()),
        (Some("anon-3"), None)
    );
    assert!(clicked.is_bot, "Googlebot request header on a posthog-js event");
}

#[test]
fn posthog_single_event_and_rejections() {
    let r = req(
        "/capture/",
        None,
        &[],
        json_body(json!({"api_key": "wk", "event": "x", "distinct_id": "d", "properties": {}})),
    );
    assert_eq!(parse(&r).key.as_deref(), Some("wk"));
    assert_eq!(run(&r).events.len(), 1);
    let r = req(
        "/i/v0/e/",
        None,
        &[],
        json_body(json!({"api_key": "wk", "batch": [
        {"event": "x"}, {"distinct_id": "d"}, {"event": "$create_alias", "distinct_id": "d"}, {"event": "$groupidentify", "distinct_id": "d"},
        {"event": "x", "distinct_id": "d", "timestamp": "nope"}, {"event": "x", "distinct_id": "d", "properties": {"$current_url": 5}}]})),
    );
    let out = run(&r);
    let got: Vec<&str> = out.rejected.iter().map(|r| r.field.as_str()).collect();
    assert_eq!(
        got,
        vec![
            "/batch/0/distinct_id",
            "/batch/1/event",
            "/batch/2/properties/alias",
            "/batch/3/properties/$group_key",
            "/batch/4/timestamp",
            "/batch/5/properties/$current_url"
        ]
    );
}

#[test]
fn import_uses_long_layout_and_import_source() {
    let events = vec![
        json!({"type": "track", "event": "Bought", "userId": "u", "timestamp": "2024-04-01T00:00:00Z", "messageId": "imp-1"}),
        json!({"type": "page", "anonymousId": "a", "context": {"page": {"url": "https://a.example/x"}}}),
        json!({"type": "track", "userId": "u"}),
    ];
    let out = normalize_import(events, "org_t", b"k", &Limits::default(), RECV);
    assert_eq!(out.events.len(), 2);
    assert_eq!(out.events[0].source, Source::Import);
    assert_eq!(out.events[0].timestamp, 1_711_929_600_000, "historical time kept as is");
    assert_eq!(out.rejected[0].field, "/2/event");
}

#[test]
fn proxy_headers_only_when_trusted() {
    let mut r = req(
        "/api/v1/events",
        None,
        &[
            ("x-forwarded-for", "192.0.2.1, 10.0.0.1"),
            ("cf-connecting-ip", "192.0.2.9"),
        ],
        "{}",
    );
    assert_eq!(
        RequestInfo::from_request(&r, false).client_ip.as_deref(),
        Some("203.0.113.77")
    );
    assert_eq!(
        RequestInfo::from_request(&r, true).client_ip.as_deref(),
        Some("192.0.2.9")
    );
    r.headers.retain(|(k, _)| k != "cf-connecting-ip");
    assert_eq!(
        RequestInfo::from_request(&r, true).client_ip.as_deref(),
        Some("192.0.2.1")
    );
}
