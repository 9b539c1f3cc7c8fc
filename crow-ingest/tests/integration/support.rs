//! What the API tests share: a clock, a deterministic "CSPRNG", orgs, and plain requests.

use std::sync::atomic::{AtomicU64, Ordering};

use crow_core::keys;
use crow_core::model::{Context, EventType, Interaction, Source};
use crow_core::ports::AccountStore;
use crow_core::testing::{FakeTextAnalyzer, MemoryBlobStore, MemoryStore};
use crow_ingest::api::{Api, AuthConfig};
use crow_ingest::http::HttpRequest;
use serde_json::json;

/// The API's clock in these tests.
pub const NOW: i64 = 1_767_000_000_000;

/// Distinct bytes on every call (keys, ids), reproducible across runs.
pub fn random(buf: &mut [u8]) {
    static N: AtomicU64 = AtomicU64::new(1);
    let n = N.fetch_add(1, Ordering::Relaxed);
    for (i, b) in buf.iter_mut().enumerate() {
        *b = (n.wrapping_mul(131).wrapping_add(i as u64 * 17) % 251) as u8 ^ (n >> (i % 8)) as u8;
    }
}

/// A new org in `store`: its id, the owner's secret key, the public write key.
pub async fn new_org(store: &dyn AccountStore, name: &str) -> (String, String, String) {
    let mut r = [0u8; keys::RANDOM_BYTES];
    random(&mut r);
    let (org, creds, new_keys) = keys::generate(name, NOW, &r);
    store.create_org(&org, &new_keys).await.unwrap();
    (creds.org_id, creds.api_key, creds.write_key)
}

/// A request as a shell builds it; `path` may carry a query string.
pub fn request(method: &str, path: &str, token: Option<&str>, content_type: &str, body: Vec<u8>) -> HttpRequest {
    let (path, query) = match path.split_once('?') {
        Some((p, q)) => (p.to_owned(), Some(q.to_owned())),
        None => (path.to_owned(), None),
    };
    let mut headers = vec![("content-type".to_owned(), content_type.to_owned())];
    if let Some(t) = token {
        headers.push(("authorization".to_owned(), format!("Bearer {t}")));
    }
    HttpRequest {
        method: method.into(),
        path,
        query,
        headers,
        body,
        peer_ip: Some("192.0.2.7".parse().unwrap()),
    }
}

/// Interaction `n` of `org`: a `track` (even `n`) or `page` event named `Searched`, with a
/// search query in its properties, at `n` ms past 10 s before [`NOW`].
pub fn interaction(org: &str, n: i64) -> Interaction {
    let mut properties = serde_json::Map::new();
    properties.insert("query".into(), json!(format!("boots, \"size\" {n}")));
    Interaction {
        id: format!("ev-{n}"),
        org_id: org.into(),
        event_type: if n % 2 == 0 { EventType::Track } else { EventType::Page },
        name: Some("Searched".into()),
        anonymous_id: Some(format!("anon-{n}")),
        user_id: None,
        session_id: None,
        group_id: None,
        previous_id: None,
        properties,
        traits: Default::default(),
        context: Context::default(),
        timestamp: NOW - 10_000 + n,
        original_timestamp: None,
        sent_at: None,
        received_at: NOW,
        source: Source::Crow,
        is_bot: false,
        pii_scrubbed: 0,
        person_id: None,
        referrer_class: None,
        analysis: None,
    }
}

/// The API over the in-memory stores as most tests want it: the fake analyzer, no vector index,
/// no embedder, no notifier, [`NOW`] and [`random`] (change a field with `Api { .., ..api(..) }`).
pub fn api<'a>(store: &'a MemoryStore, blobs: &'a MemoryBlobStore, auth: &'a AuthConfig) -> Api<'a> {
    Api {
        store,
        blobs,
        indexes: None,
        analyzer: Some(&FakeTextAnalyzer),
        embedder: None,
        tier: "lexicon",
        auth,
        now: NOW,
        random: &random,
        notifier: None,
    }
}
