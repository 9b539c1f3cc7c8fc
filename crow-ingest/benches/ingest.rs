//! Benchmark (a) of BENCHMARKS.md: parse + validate + scrub of a 50-event batch, on one core.
//! `cargo bench -p crow-ingest --bench ingest` (the bench script pins it with taskset).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use crow_ingest::http::HttpRequest;
use crow_ingest::website::{Limits, RequestInfo, Route, parse_request};
use serde_json::{Value, json};

/// 50 events as the load generator sends them: e-commerce track events with a page context, a
/// browser user agent, an IP, and PII typed into one property out of ten.
fn batch() -> Vec<u8> {
    let names = [
        "Product Viewed",
        "Product Added",
        "Products Searched",
        "Checkout Started",
        "Order Completed",
    ];
    let events: Vec<Value> = (0..50)
        .map(|i| {
            let props = if i % 10 == 0 {
                json!({"query": "contact me at jane.doe@example.com", "page": 2})
            } else {
                json!({"product_id": format!("SKU-{i}"), "price": i as f64 + 0.99, "currency": "EUR", "position": i})
            };
            json!({
                "type": "track", "event": names[i % names.len()], "anonymousId": format!("anon-{}", i % 7),
                "messageId": format!("bench-{i}"), "timestamp": "2026-12-01T10:00:00.000Z", "properties": props,
                "context": {
                    "page": {"url": format!("https://shop.example/products/SKU-{i}?utm_source=news&utm_medium=email"),
                             "path": format!("/products/SKU-{i}"), "referrer": "https://www.google.com/", "title": "Trail Runner"},
                    "userAgent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
                    "locale": "en-US", "ip": "203.0.113.9", "library": {"name": "analytics.js", "version": "5.2.0"}
                }
            })
        })
        .collect();
    serde_json::to_vec(&json!({"sentAt": "2026-12-01T10:01:00.000Z", "batch": events})).unwrap()
}

fn bench(c: &mut Criterion) {
    let body = batch();
    let req = HttpRequest {
        method: "POST".into(),
        path: "/v1/batch".into(),
        headers: vec![("content-type".into(), "application/json".into())],
        body,
        ..HttpRequest::default()
    };
    let limits = Limits::default();
    let key = [7u8; 32];
    let route = Route::from_path("/v1/batch").unwrap();
    let mut group = c.benchmark_group("ingest");
    group.throughput(Throughput::Elements(50));
    group.bench_function("parse_validate_scrub_50", |b| {
        b.iter(|| {
            let parsed = parse_request(black_box(&req), route, &limits).unwrap();
            let info = RequestInfo::from_request(&req, false);
            let out = parsed.normalize("org_bench", &key, &info, &limits, 1_764_583_260_000);
            assert_eq!(out.events.len(), 50);
            black_box(out)
        })
    });
    group.bench_function("parse_only_50", |b| {
        b.iter(|| black_box(parse_request(black_box(&req), route, &limits).unwrap()))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
