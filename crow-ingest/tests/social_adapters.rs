//! The social adapters and the HTTP runner against a local wiremock server (127.0.0.1 only):
//! field mapping from documented-format fixtures, pagination, cursors, conditional requests,
//! retries, rate-limit waits, malformed answers, and the private-address guard.
#![cfg(all(
    feature = "social-http",
    feature = "social-rss",
    feature = "social-mastodon",
    feature = "social-bluesky",
    feature = "social-reddit",
    feature = "social-hackernews"
))]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crow_core::model::Engagement;
use crow_ingest::social::bluesky::BlueskySource;
use crow_ingest::social::config::{RateLimit, is_public_ip};
use crow_ingest::social::fetch::{Fetcher, FetcherConfig, RunOutput, check_url};
use crow_ingest::social::hackernews::HackerNewsSource;
use crow_ingest::social::mastodon::{MastodonMode, MastodonSource};
use crow_ingest::social::reddit::RedditSource;
use crow_ingest::social::rss::RssSource;
use crow_ingest::social::{Platform, RawMention, SocialError, SocialSource};
use serde_json::Value;
use wiremock::matchers::{header, method, path, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, ResponseTemplate};

// ---------------------------------------------------------------------------------------------
// Helpers

fn fixture(name: &str) -> String {
    let path = format!("{}/tests/data/social/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn fixture_json(name: &str) -> Value {
    serde_json::from_str(&fixture(name)).unwrap()
}

/// Fast settings for tests: private addresses allowed (wiremock is on 127.0.0.1), short
/// timeouts and backoff, generous rate limits.
fn config() -> FetcherConfig {
    FetcherConfig {
        timeout: Duration::from_secs(5),
        connect_timeout: Duration::from_secs(2),
        user_agent: "crow-social-tests/0.1 (+https://example.invalid/crow)".into(),
        allow_private_addresses: true,
        max_pages: 5,
        max_retries: 3,
        backoff_base_ms: 10,
        max_backoff_ms: 50,
        max_wait_ms: 5_000,
        max_body_bytes: 5 * 1024 * 1024,
        rate_limits: Platform::ALL
            .into_iter()
            .map(|p| {
                (
                    p,
                    RateLimit {
                        requests: 1000,
                        per_secs: 1,
                    },
                )
            })
            .collect::<BTreeMap<_, _>>(),
    }
}

fn fetcher() -> Fetcher {
    Fetcher::new(config()).unwrap()
}

fn json(body: impl Into<String>) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(body.into().into_bytes(), "application/json")
}

fn json_value(v: &Value) -> ResponseTemplate {
    json(serde_json::to_string(v).unwrap())
}

async fn received(server: &MockServer) -> usize {
    server.received_requests().await.map_or(0, |r| r.len())
}

fn ids(out: &RunOutput) -> Vec<&str> {
    out.mentions.iter().map(|m| m.platform_id.as_str()).collect()
}

fn find<'a>(out: &'a RunOutput, id: &str) -> &'a RawMention {
    out.mentions
        .iter()
        .find(|m| m.platform_id == id)
        .unwrap_or_else(|| panic!("no mention {id} in {:?}", ids(out)))
}

fn ms(rfc3339: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .unwrap()
        .timestamp_millis()
}

fn engagement(likes: Option<u64>, reposts: Option<u64>, replies: Option<u64>, score: Option<i64>) -> Engagement {
    Engagement {
        likes,
        reposts,
        replies,
        score,
    }
}

fn assert_malformed(result: Result<RunOutput, SocialError>, platform: Platform, what: &str) {
    match result {
        Err(e @ SocialError::Malformed { platform: p, .. }) => {
            assert_eq!(p, platform, "{e}");
            let msg = e.to_string();
            assert!(msg.starts_with(platform.as_str()), "{msg}");
            assert!(msg.contains(what), "{msg:?} should contain {what:?}");
        }
        other => panic!("expected Malformed for {platform}, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Mastodon

const TAG_PATH: &str = "/api/v1/timelines/tag/acme";

#[tokio::test]
async fn mastodon_tag_maps_fields_and_pages_with_max_id() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(TAG_PATH))
        .and(query_param("limit", "3"))
        .and(query_param_is_missing("max_id"))
        .respond_with(json(fixture("mastodon_tag_page1.json")).insert_header(
            "link",
            "<https://social.example/api/v1/timelines/tag/acme?limit=3&max_id=112400000000000001>; rel=\"next\", <https://social.example/api/v1/timelines/tag/acme?limit=3&min_id=112400000000000003>; rel=\"prev\"",
        ))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(TAG_PATH))
        .and(query_param("max_id", "112400000000000001"))
        .respond_with(json(fixture("mastodon_tag_page2.json")))
        .expect(1)
        .mount(&server)
        .await;

    let source = MastodonSource::new(server.uri(), MastodonMode::Tag("#acme".into())).with_limit(3);
    let out = fetcher().run_source(&source, None).await.unwrap();
    assert_eq!((out.pages, out.requests, out.not_modified), (2, 2, false));
    assert_eq!(
        ids(&out),
        [
            "112399999999999990", // the boosted status, not the boost
            "112400000000000002",
            "112400000000000001",
            "112399999999999999",
            "112399999999999998",
        ]
    );
    // The cursor is the newest timeline id (the boost's own id).
    assert_eq!(out.cursor.as_deref(), Some("112400000000000003"));

    let boosted = find(&out, "112399999999999990");
    assert_eq!(boosted.author.as_deref(), Some("dave@fosstodon.org"));
    assert_eq!(boosted.text, "Shipping day! 🚀 #acme v2 is out & it's fast");
    assert_eq!(
        boosted.url.as_deref(),
        Some("https://fosstodon.org/@dave/112399999999999990")
    );
    assert_eq!(boosted.language.as_deref(), Some("en"));
    assert_eq!(boosted.posted_at, ms("2024-05-02T08:00:00Z"));
    assert_eq!(boosted.engagement, engagement(Some(31), Some(12), Some(4), None));

    let ann = find(&out, "112400000000000002");
    // A local account gets the instance's host.
    let host = server.address().ip().to_string();
    assert_eq!(ann.author.as_deref(), Some(format!("ann@{host}").as_str()));
    assert_eq!(
        ann.text,
        "Ich liebe #acme – wirklich! 😍 @bob siehe https://acme.example/blog/v2-release"
    );
    assert_eq!(ann.language.as_deref(), Some("de"));
    assert_eq!(ann.posted_at, ms("2024-05-03T09:30:15.250Z"));
    assert_eq!(ann.engagement, engagement(Some(7), Some(2), Some(1), None));

    let eve = find(&out, "112400000000000001");
    assert_eq!(
        eve.text,
        "acme review\n\nLong-term #acme user here.\nBattery: 3/5\nSupport: 1/5 <sigh>\n\nWould not buy again."
    );
    assert_eq!(eve.language, None);
    // No `url`: the `uri` stands in.
    assert_eq!(
        eve.url.as_deref(),
        Some("https://pleroma.example/objects/4f1c2b1e-2c55-4a4f-9d0e-0f3d2b1a9c77")
    );
    assert_eq!(eve.author.as_deref(), Some("eve@pleroma.example"));

    // Missing optional counts stay unknown.
    let gil = find(&out, "112399999999999998");
    assert_eq!(gil.engagement, Engagement::default());
    assert_eq!(gil.text, "Is #acme down for anyone else? 🤔");
    assert_eq!(gil.posted_at, ms("2024-05-02T20:00:00Z"));
}

#[tokio::test]
async fn mastodon_second_run_returns_only_newer_statuses() {
    let server = MockServer::start().await;
    // The first run: one page (3 statuses < limit 40).
    Mock::given(method("GET"))
        .and(path(TAG_PATH))
        .and(query_param_is_missing("since_id"))
        .respond_with(json(fixture("mastodon_tag_page1.json")))
        .expect(1)
        .mount(&server)
        .await;
    // The second run asks since the cursor. This server ignores `since_id` and answers with
    // one new status and the old ones: the adapter drops the old ones itself.
    let mut page: Vec<Value> = serde_json::from_str(&fixture("mastodon_tag_page1.json")).unwrap();
    let mut newer = page[1].clone();
    newer["id"] = "112400000000000099".into();
    newer["created_at"] = "2024-05-03T11:00:00.000Z".into();
    newer["content"] = "<p>New: <b>acme</b> 2.1</p>".into();
    page.insert(0, newer);
    Mock::given(method("GET"))
        .and(path(TAG_PATH))
        .and(query_param("since_id", "112400000000000003"))
        .respond_with(json_value(&Value::Array(page)))
        .expect(1)
        .mount(&server)
        .await;

    let source = MastodonSource::new(server.uri(), MastodonMode::Tag("acme".into()));
    let f = fetcher();
    let first = f.run_source(&source, None).await.unwrap();
    assert_eq!(first.mentions.len(), 3);
    let second = f.run_source(&source, first.cursor.as_deref()).await.unwrap();
    assert_eq!(ids(&second), ["112400000000000099"]);
    assert_eq!(second.mentions[0].text, "New: acme 2.1");
    assert_eq!(second.cursor.as_deref(), Some("112400000000000099"));
    assert_eq!(second.requests, 1);

    // A run with nothing new keeps the cursor.
    Mock::given(method("GET"))
        .and(path(TAG_PATH))
        .and(query_param("since_id", "112400000000000099"))
        .respond_with(json("[]"))
        .expect(1)
        .mount(&server)
        .await;
    let third = f.run_source(&source, second.cursor.as_deref()).await.unwrap();
    assert!(third.mentions.is_empty());
    assert_eq!(third.cursor.as_deref(), Some("112400000000000099"));
}

#[tokio::test]
async fn mastodon_search_sends_token_and_maps_statuses() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v2/search"))
        .and(query_param("q", "acme widget"))
        .and(query_param("type", "statuses"))
        .and(query_param("limit", "40"))
        .and(header("authorization", "Bearer secret-token"))
        .respond_with(json(fixture("mastodon_search.json")))
        .expect(1)
        .mount(&server)
        .await;
    let source =
        MastodonSource::new(server.uri(), MastodonMode::Search("acme widget".into())).with_token("secret-token");
    let out = fetcher().run_source(&source, None).await.unwrap();
    assert_eq!(ids(&out), ["112400000000000010", "112400000000000008"]);
    let ines = find(&out, "112400000000000008");
    assert_eq!(ines.text, "Le support d'Acme m'a répondu en 5 min. Bravo !");
    assert_eq!(ines.language.as_deref(), Some("fr"));
    assert_eq!(ines.author.as_deref(), Some("ines@masto.example"));
    assert_eq!(out.cursor.as_deref(), Some("112400000000000010"));

    // The next run filters with min_id.
    let req = source.first_request(out.cursor.as_deref()).unwrap();
    assert!(req.url.contains("min_id=112400000000000010"), "{}", req.url);
}

// ---------------------------------------------------------------------------------------------
// Bluesky

const BSKY_PATH: &str = "/xrpc/app.bsky.feed.searchPosts";

#[tokio::test]
async fn bluesky_maps_fields_and_pages_with_cursor() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(BSKY_PATH))
        .and(query_param("q", "acme"))
        .and(query_param("sort", "latest"))
        .and(query_param("limit", "100"))
        .and(query_param_is_missing("cursor"))
        .respond_with(json(fixture("bluesky_search_page1.json")))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(BSKY_PATH))
        .and(query_param("cursor", "3"))
        .respond_with(json(fixture("bluesky_search_page2.json")))
        .expect(1)
        .mount(&server)
        .await;

    let source = BlueskySource::new(server.uri(), "acme");
    let out = fetcher().run_source(&source, None).await.unwrap();
    assert_eq!((out.pages, out.requests), (2, 2));
    assert_eq!(out.mentions.len(), 5);

    let ann = find(
        &out,
        "at://did:plc:ann4ywf3vbcqmjgwkkrhmrf2/app.bsky.feed.post/3ksvq2pfmbk2a",
    );
    assert_eq!(ann.author.as_deref(), Some("ann.bsky.social"));
    assert_eq!(ann.text, "Just got my Acme Widget Pro and it's 🔥 #acme");
    assert_eq!(
        ann.url.as_deref(),
        Some("https://bsky.app/profile/ann.bsky.social/post/3ksvq2pfmbk2a")
    );
    assert_eq!(ann.language.as_deref(), Some("en"));
    assert_eq!(ann.posted_at, ms("2024-05-03T10:00:00Z"));
    assert_eq!(ann.engagement, engagement(Some(10), Some(2), Some(1), None));

    let bob = find(
        &out,
        "at://did:plc:bob7kq5ks2nxb3hzpdyxfdlx/app.bsky.feed.post/3ksvmxt5d3s2b",
    );
    assert_eq!(bob.language.as_deref(), Some("en"));
    assert_eq!(bob.engagement, engagement(Some(22), Some(5), Some(0), None));

    // handle.invalid: the DID stands in; no langs, no counts.
    let carol = find(
        &out,
        "at://did:plc:carolz5mqh2kjgxctfirdjzn/app.bsky.feed.post/3ksvk7w2aaa2c",
    );
    assert_eq!(carol.author.as_deref(), Some("did:plc:carolz5mqh2kjgxctfirdjzn"));
    assert_eq!(
        carol.url.as_deref(),
        Some("https://bsky.app/profile/did%3Aplc%3Acarolz5mqh2kjgxctfirdjzn/post/3ksvk7w2aaa2c")
    );
    assert_eq!(carol.language, None);
    assert_eq!(carol.engagement, Engagement::default());
    assert_eq!(carol.posted_at, ms("2024-05-03T08:30:00Z"));

    let eli = find(
        &out,
        "at://did:plc:eli2bq7ww7jv5hbdtrhczxmv/app.bsky.feed.post/3ksvfffff2e2e",
    );
    assert_eq!(eli.language.as_deref(), Some("pt"));
    assert_eq!(eli.text, "Comprei um Acme ontem. Até agora tudo bem!");

    let cursor: Value = serde_json::from_str(out.cursor.as_deref().unwrap()).unwrap();
    assert_eq!(cursor["since"], "2024-05-03T10:00:00.000Z");
    // The cursor keeps hashes of the URIs, never the URIs (they name their author's DID).
    let key = cursor["uris"][0].as_str().unwrap();
    assert!(key.len() == 16 && key.bytes().all(|b| b.is_ascii_hexdigit()), "{key}");
    assert!(!out.cursor.as_deref().unwrap().contains("did:"));
}

#[tokio::test]
async fn bluesky_second_run_sends_since_and_drops_seen_posts() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(BSKY_PATH))
        .and(query_param_is_missing("since"))
        .respond_with(json(fixture("bluesky_search_page2.json")))
        .expect(1)
        .mount(&server)
        .await;
    // `since` is inclusive: the newest post of the first run comes back with a new one.
    let mut page = fixture_json("bluesky_search_page2.json");
    let seen = page["posts"][0].clone();
    let mut newer = seen.clone();
    newer["uri"] = "at://did:plc:dai3xjw6qf3hcq4shgwtycgr/app.bsky.feed.post/3ksvzzzzzzz2z".into();
    newer["record"]["createdAt"] = "2024-05-03T12:00:00.000Z".into();
    newer["record"]["text"] = "acme again".into();
    newer["indexedAt"] = "2024-05-03T12:00:00.100Z".into();
    page["posts"] = Value::Array(vec![newer, seen]);
    page["cursor"] = "2".into();
    Mock::given(method("GET"))
        .and(path(BSKY_PATH))
        .and(query_param("since", "2024-05-03T07:00:00.000Z"))
        .respond_with(json_value(&page))
        .expect(1)
        .mount(&server)
        .await;

    let source = BlueskySource::new(server.uri(), "acme");
    let f = fetcher();
    let first = f.run_source(&source, None).await.unwrap();
    assert_eq!(first.mentions.len(), 2);
    let second = f.run_source(&source, first.cursor.as_deref()).await.unwrap();
    assert_eq!(
        ids(&second),
        ["at://did:plc:dai3xjw6qf3hcq4shgwtycgr/app.bsky.feed.post/3ksvzzzzzzz2z"]
    );
    // It reached what it had seen: no second page despite the answer's cursor.
    assert_eq!(second.requests, 1);
    assert!(second.cursor.unwrap().contains("2024-05-03T12:00:00.000Z"));
}

// ---------------------------------------------------------------------------------------------
// Reddit

#[tokio::test]
async fn reddit_maps_fields_pages_with_after_and_skips_nsfw() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/search.json"))
        .and(query_param("q", "acme"))
        .and(query_param("sort", "new"))
        .and(query_param("raw_json", "1"))
        .and(query_param("limit", "100"))
        .and(query_param_is_missing("after"))
        .respond_with(json(fixture("reddit_search_page1.json")))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/search.json"))
        .and(query_param("after", "t3_1cja002"))
        .respond_with(json(fixture("reddit_search_page2.json")))
        .expect(1)
        .mount(&server)
        .await;

    let source = RedditSource::new(server.uri(), "acme", None);
    let out = fetcher().run_source(&source, None).await.unwrap();
    assert_eq!((out.pages, out.requests), (2, 2));
    assert_eq!(ids(&out), ["t3_1cja004", "t3_1cja003", "t3_1cja001", "t3_1cja000"]);

    let review = find(&out, "t3_1cja004");
    assert_eq!(review.author.as_deref(), Some("widget_fan"));
    assert_eq!(
        review.text,
        "Acme Widget Pro review – 3 months in\n\nThree months with the Acme Widget Pro:\n\n* battery > 2 days\n* app is meh 😕\n\nWould buy again & recommend."
    );
    assert_eq!(
        review.url.as_deref(),
        Some("https://www.reddit.com/r/gadgets/comments/1cja004/acme_widget_pro_review_3_months_in/")
    );
    assert_eq!(review.language, None);
    assert_eq!(review.posted_at, 1_714_730_400_000);
    assert_eq!(review.engagement, engagement(None, None, Some(23), Some(57)));

    let deleted = find(&out, "t3_1cja003");
    assert_eq!(deleted.author, None);
    assert_eq!(deleted.text, "Acme recalls 10,000 widgets over overheating");

    let kettle = find(&out, "t3_1cja001");
    assert_eq!(kettle.engagement.score, Some(-2));
    assert_eq!(kettle.posted_at, 1_714_719_600_500);

    let cursor: Value = serde_json::from_str(out.cursor.as_deref().unwrap()).unwrap();
    assert_eq!(
        cursor,
        serde_json::json!({"created_utc": 1714730400, "name": "t3_1cja004"})
    );

    // NSFW can be opted into.
    let with_nsfw = RedditSource::new(server.uri(), "acme", None).include_nsfw(true);
    let page = with_nsfw
        .parse(
            &crow_ingest::social::FetchResponse {
                status: 200,
                headers: vec![],
                body: fixture("reddit_search_page1.json").into_bytes(),
            },
            None,
        )
        .unwrap();
    assert_eq!(page.mentions.len(), 3);
}

#[tokio::test]
async fn reddit_second_run_stops_at_the_cursor_and_sends_the_token() {
    let server = MockServer::start().await;
    let mut page = fixture_json("reddit_search_page1.json");
    let mut newer = page["data"]["children"][0].clone();
    newer["data"]["name"] = "t3_1cja010".into();
    newer["data"]["id"] = "1cja010".into();
    newer["data"]["title"] = "Acme 2.0 is here".into();
    newer["data"]["selftext"] = "".into();
    newer["data"]["created_utc"] = 1_714_740_000.0.into();
    page["data"]["children"].as_array_mut().unwrap().insert(0, newer);
    Mock::given(method("GET"))
        .and(path("/search.json"))
        .and(header("authorization", "Bearer oauth-token"))
        .respond_with(json_value(&page))
        .expect(1)
        .mount(&server)
        .await;
    let source = RedditSource::new(server.uri(), "acme", Some("oauth-token".into()));
    let cursor = r#"{"created_utc":1714730400,"name":"t3_1cja004"}"#;
    let out = fetcher().run_source(&source, Some(cursor)).await.unwrap();
    // Only the new post; the answer's `after` is not followed past the cursor.
    assert_eq!(ids(&out), ["t3_1cja010"]);
    assert_eq!(out.mentions[0].text, "Acme 2.0 is here");
    assert_eq!(out.requests, 1);
    assert!(out.cursor.unwrap().contains("t3_1cja010"));
}

// ---------------------------------------------------------------------------------------------
// Hacker News

const HN_PATH: &str = "/api/v1/search_by_date";

#[tokio::test]
async fn hackernews_maps_fields_and_pages() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(HN_PATH))
        .and(query_param("query", "acme"))
        .and(query_param("tags", "(story,comment)"))
        .and(query_param("hitsPerPage", "3"))
        .and(query_param_is_missing("page"))
        .respond_with(json(fixture("hackernews_page0.json")))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(HN_PATH))
        .and(query_param("page", "1"))
        .respond_with(json(fixture("hackernews_page1.json")))
        .expect(1)
        .mount(&server)
        .await;

    let source = HackerNewsSource::new(server.uri(), "acme").with_limit(3);
    let out = fetcher().run_source(&source, None).await.unwrap();
    assert_eq!((out.pages, out.requests), (2, 2));
    assert_eq!(ids(&out), ["40200005", "40200003", "40200001", "40199995", "40199990"]);

    let comment = find(&out, "40200005");
    assert_eq!(comment.author.as_deref(), Some("tptacek"));
    assert_eq!(
        comment.text,
        "I've used Acme for years.\n\nTheir API is fine, but the docs & SDKs lag: https://acme.example/docs"
    );
    assert_eq!(
        comment.url.as_deref(),
        Some("https://news.ycombinator.com/item?id=40200005")
    );
    assert_eq!(comment.posted_at, 1_714_730_400_000);
    assert_eq!(comment.engagement, Engagement::default());

    let story = find(&out, "40200003");
    assert_eq!(story.text, "Acme raises $10M to build better widgets");
    assert_eq!(story.engagement, engagement(None, None, Some(42), Some(128)));

    let ask = find(&out, "40200001");
    assert_eq!(
        ask.text,
        "Ask HN: Acme in production?\n\nIs anyone using Acme in production? We're seeing p99 latency > 2s / request. 🐢"
    );
    assert_eq!(ask.language, None);

    let cursor: Value = serde_json::from_str(out.cursor.as_deref().unwrap()).unwrap();
    assert_eq!(
        cursor,
        serde_json::json!({"created_at_i": 1714730400, "ids": ["40200005"]})
    );
}

#[tokio::test]
async fn hackernews_second_run_filters_by_time_and_drops_seen_items() {
    let server = MockServer::start().await;
    let mut page = fixture_json("hackernews_page0.json");
    let mut newer = page["hits"][0].clone();
    newer["objectID"] = "40200100".into();
    newer["created_at_i"] = 1_714_730_400.into(); // the same second as the cursor
    newer["comment_text"] = "Acme <i>again</i>".into();
    let hits = page["hits"].as_array_mut().unwrap();
    hits.truncate(1);
    hits.insert(0, newer);
    page["nbPages"] = 1.into();
    Mock::given(method("GET"))
        .and(path(HN_PATH))
        .and(query_param("numericFilters", "created_at_i>=1714730400"))
        .respond_with(json_value(&page))
        .expect(1)
        .mount(&server)
        .await;
    let source = HackerNewsSource::new(server.uri(), "acme");
    let out = fetcher()
        .run_source(&source, Some(r#"{"created_at_i":1714730400,"ids":["40200005"]}"#))
        .await
        .unwrap();
    assert_eq!(ids(&out), ["40200100"]);
    assert_eq!(out.mentions[0].text, "Acme again");
    let cursor: Value = serde_json::from_str(out.cursor.as_deref().unwrap()).unwrap();
    assert_eq!(cursor["ids"], serde_json::json!(["40200005", "40200100"]));
}

// ---------------------------------------------------------------------------------------------
// RSS / Atom

#[tokio::test]
async fn rss2_maps_entries_and_etag_gives_not_modified() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/feed.xml"))
        .and(header("if-none-match", "\"rss-v1\""))
        .respond_with(ResponseTemplate::new(304).insert_header("etag", "\"rss-v1\""))
        .with_priority(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/feed.xml"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(fixture("rss2.xml").into_bytes(), "application/rss+xml; charset=utf-8")
                .insert_header("etag", "\"rss-v1\"")
                .insert_header("last-modified", "Fri, 03 May 2024 10:05:00 GMT"),
        )
        .with_priority(5)
        .expect(1)
        .mount(&server)
        .await;

    let source = RssSource::new(format!("{}/feed.xml", server.uri()), None);
    let f = fetcher();
    let first = f.run_source(&source, None).await.unwrap();
    assert_eq!(
        ids(&first),
        [
            "https://widgets.example/2024/05/acme-widget-pro-review",
            "https://widgets.example/?p=1234",
            "https://widgets.example/2024/05/globex-gizmo",
        ]
    );
    let review = &first.mentions[0];
    assert_eq!(review.author.as_deref(), Some("Jane Doe"));
    assert_eq!(
        review.text,
        "Acme Widget Pro review: fast & quiet\n\nWe tested the Acme Widget Pro for a month & loved it 👍"
    );
    assert_eq!(
        review.url.as_deref(),
        Some("https://widgets.example/2024/05/acme-widget-pro-review")
    );
    assert_eq!(review.language.as_deref(), Some("en"));
    assert_eq!(review.posted_at, ms("2024-05-03T10:00:00Z"));
    assert_eq!(review.engagement, Engagement::default());
    let five = &first.mentions[1];
    assert_eq!(
        five.text,
        "Five widgets we’re watching\n\nGlobex Gizmo\nInitech Stapler\n\nNot one from ACME this time."
    );
    assert_eq!(five.author, None);
    // A guid that is not a URL: the link is the id.
    assert_eq!(
        first.mentions[2].url.as_deref(),
        Some("https://widgets.example/2024/05/globex-gizmo")
    );

    let cursor: Value = serde_json::from_str(first.cursor.as_deref().unwrap()).unwrap();
    assert_eq!(cursor["etag"], "\"rss-v1\"");
    assert_eq!(cursor["last_modified"], "Fri, 03 May 2024 10:05:00 GMT");
    assert_eq!(cursor["seen"], ms("2024-05-03T10:00:00Z"));

    // The second run sends If-None-Match and gets a 304.
    let second = f.run_source(&source, first.cursor.as_deref()).await.unwrap();
    assert!(second.not_modified);
    assert!(second.mentions.is_empty());
    assert_eq!((second.pages, second.requests), (0, 1));
    assert_eq!(second.cursor, first.cursor);
    let requests = server.received_requests().await.unwrap();
    assert_eq!(
        requests[1]
            .headers
            .get("if-modified-since")
            .map(|v| v.to_str().unwrap()),
        Some("Fri, 03 May 2024 10:05:00 GMT")
    );
}

#[tokio::test]
async fn rss_feed_that_ignores_etag_yields_only_new_entries() {
    let server = MockServer::start().await;
    let feed = fixture("rss2.xml");
    let newer = feed.replacen(
        "<item>",
        "<item><title>Acme 2.1 released</title><link>https://widgets.example/2024/05/acme-21</link><pubDate>Sat, 04 May 2024 09:00:00 GMT</pubDate></item>\n    <item>",
        1,
    );
    Mock::given(method("GET"))
        .and(path("/feed.xml"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(feed.into_bytes(), "application/rss+xml"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/feed.xml"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(newer.into_bytes(), "application/rss+xml"))
        .with_priority(5)
        .mount(&server)
        .await;
    let source = RssSource::new(format!("{}/feed.xml", server.uri()), Some("ACME".into()));
    let f = fetcher();
    let first = f.run_source(&source, None).await.unwrap();
    // The query filter is case-insensitive: "Acme" and "ACME" both match; Globex does not.
    assert_eq!(first.mentions.len(), 2);
    let second = f.run_source(&source, first.cursor.as_deref()).await.unwrap();
    assert!(!second.not_modified);
    assert_eq!(ids(&second), ["https://widgets.example/2024/05/acme-21"]);
}

#[tokio::test]
async fn atom_maps_entries_with_query_filter() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/feed.atom"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(fixture("atom.xml").into_bytes(), "application/atom+xml"))
        .mount(&server)
        .await;
    let url = format!("{}/feed.atom", server.uri());
    let f = fetcher();

    let all = f.run_source(&RssSource::new(&url, None), None).await.unwrap();
    assert_eq!(all.mentions.len(), 3);
    let sdk = find(&all, "urn:uuid:1225c695-cfb8-4ebb-aaaa-80da344efa6a");
    assert_eq!(
        sdk.text,
        "Widget SDK 2.0\n\nThe Widget SDK 2.0 is out. Upgrade notes are here."
    );
    assert_eq!(sdk.posted_at, ms("2024-05-02T09:00:00Z")); // only `updated`
    assert_eq!(sdk.author, None);

    let filtered = f
        .run_source(&RssSource::new(&url, Some("acme".into())), None)
        .await
        .unwrap();
    assert_eq!(ids(&filtered), ["tag:status.acme.example,2024-05-03:/incidents/1"]);
    let incident = &filtered.mentions[0];
    assert_eq!(
        incident.text,
        "Incident: API latency > 2s resolved\n\nBetween 07:10 and 08:05 UTC the Acme API was slow.\nAll fixed ✅"
    );
    assert_eq!(incident.author.as_deref(), Some("Priya On-Call"));
    assert_eq!(incident.posted_at, ms("2024-05-03T08:30:00Z")); // published, +02:00
    assert_eq!(incident.language.as_deref(), Some("en"));
    assert_eq!(
        incident.url.as_deref(),
        Some("https://status.acme.example/incidents/2024-05-03")
    );
}

// ---------------------------------------------------------------------------------------------
// Retries, rate limits, errors

fn hn_source(server: &MockServer) -> HackerNewsSource {
    HackerNewsSource::new(server.uri(), "acme")
}

fn hn_single_page() -> String {
    let mut page = fixture_json("hackernews_page0.json");
    page["nbPages"] = 1.into();
    serde_json::to_string(&page).unwrap()
}

#[tokio::test]
async fn retry_after_429_is_honored() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(HN_PATH))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "1"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(HN_PATH))
        .respond_with(json(hn_single_page()))
        .with_priority(5)
        .mount(&server)
        .await;
    let started = Instant::now();
    let out = fetcher().run_source(&hn_source(&server), None).await.unwrap();
    let elapsed = started.elapsed();
    assert_eq!(out.mentions.len(), 3);
    assert_eq!(out.requests, 2);
    assert!(elapsed >= Duration::from_millis(950), "waited only {elapsed:?}");
    assert_eq!(received(&server).await, 2);
}

#[tokio::test]
async fn two_500s_then_success() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(HN_PATH))
        .respond_with(ResponseTemplate::new(500).set_body_string("upstream hiccup"))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(HN_PATH))
        .respond_with(json(hn_single_page()))
        .with_priority(5)
        .mount(&server)
        .await;
    let out = fetcher().run_source(&hn_source(&server), None).await.unwrap();
    assert_eq!(out.mentions.len(), 3);
    assert_eq!(out.requests, 3);
    assert_eq!(received(&server).await, 3);
}

#[tokio::test]
async fn persistent_500_fails_after_max_retries() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(HN_PATH))
        .respond_with(ResponseTemplate::new(503).set_body_string("<html><body>Service Unavailable</body></html>"))
        .mount(&server)
        .await;
    let f = Fetcher::new(FetcherConfig {
        max_retries: 2,
        ..config()
    })
    .unwrap();
    let err = f.run_source(&hn_source(&server), None).await.unwrap_err();
    match &err {
        SocialError::Http {
            platform,
            status,
            detail,
        } => {
            assert_eq!((*platform, *status), (Platform::HackerNews, 503));
            assert!(detail.contains("Service Unavailable"), "{detail}");
        }
        other => panic!("expected Http, got {other:?}"),
    }
    assert_eq!(received(&server).await, 3); // 1 + 2 retries
}

#[tokio::test]
async fn other_4xx_fail_at_once() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v2/search"))
        .respond_with(ResponseTemplate::new(401).set_body_string(r#"{"error":"The access token is invalid"}"#))
        .mount(&server)
        .await;
    let source = MastodonSource::new(server.uri(), MastodonMode::Search("acme".into()));
    let err = fetcher().run_source(&source, None).await.unwrap_err();
    assert!(
        matches!(&err, SocialError::Http { status: 401, platform: Platform::Mastodon, detail } if detail.contains("access token")),
        "{err:?}"
    );
    assert_eq!(received(&server).await, 1);
}

#[tokio::test]
async fn ratelimit_remaining_zero_waits_for_reset() {
    let server = MockServer::start().await;
    // Reddit's headers: a float remaining, seconds until the reset.
    Mock::given(method("GET"))
        .and(path("/search.json"))
        .and(query_param_is_missing("after"))
        .respond_with(
            json(fixture("reddit_search_page1.json"))
                .insert_header("x-ratelimit-remaining", "0.0")
                .insert_header("x-ratelimit-used", "100")
                .insert_header("x-ratelimit-reset", "1"),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/search.json"))
        .and(query_param("after", "t3_1cja002"))
        .respond_with(json(fixture("reddit_search_page2.json")))
        .mount(&server)
        .await;
    let started = Instant::now();
    let out = fetcher()
        .run_source(&RedditSource::new(server.uri(), "acme", None), None)
        .await
        .unwrap();
    assert_eq!(out.pages, 2);
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn token_bucket_spaces_requests() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(HN_PATH))
        .and(query_param_is_missing("page"))
        .respond_with(json(fixture("hackernews_page0.json")))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(HN_PATH))
        .and(query_param("page", "1"))
        .respond_with(json(fixture("hackernews_page1.json")))
        .mount(&server)
        .await;
    let mut cfg = config();
    cfg.rate_limits.insert(
        Platform::HackerNews,
        RateLimit {
            requests: 1,
            per_secs: 1,
        },
    );
    let started = Instant::now();
    let out = Fetcher::new(cfg)
        .unwrap()
        .run_source(&hn_source(&server), None)
        .await
        .unwrap();
    assert_eq!(out.pages, 2);
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn page_cap_and_dedupe_within_a_run() {
    let server = MockServer::start().await;
    // Page 1 of the HN answer says there are 2 pages; page 2 repeats page 1's hits.
    let mut again = fixture_json("hackernews_page0.json");
    again["page"] = 1.into();
    Mock::given(method("GET"))
        .and(path(HN_PATH))
        .and(query_param_is_missing("page"))
        .respond_with(json(fixture("hackernews_page0.json")))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(HN_PATH))
        .and(query_param("page", "1"))
        .respond_with(json_value(&again))
        .mount(&server)
        .await;
    let out = fetcher()
        .run_source(&hn_source(&server).with_limit(3), None)
        .await
        .unwrap();
    assert_eq!(out.pages, 2);
    assert_eq!(out.mentions.len(), 3);

    let capped = Fetcher::new(FetcherConfig {
        max_pages: 1,
        ..config()
    })
    .unwrap()
    .run_source(&hn_source(&server), None)
    .await
    .unwrap();
    assert_eq!((capped.pages, capped.requests), (1, 1));
}

#[tokio::test]
async fn malformed_answers_are_refused_naming_the_platform() {
    let server = MockServer::start().await;
    let html = "<!DOCTYPE html><html><head><title>Oops</title></head><body>We're down</body></html>";
    let sources: Vec<(Arc<dyn SocialSource>, &str, Platform)> = vec![
        (
            Arc::new(MastodonSource::new(
                format!("{}/html", server.uri()),
                MastodonMode::Tag("acme".into()),
            )),
            "/html/api/v1/timelines/tag/acme",
            Platform::Mastodon,
        ),
        (
            Arc::new(BlueskySource::new(format!("{}/html", server.uri()), "acme")),
            "/html/xrpc/app.bsky.feed.searchPosts",
            Platform::Bluesky,
        ),
        (
            Arc::new(RedditSource::new(format!("{}/html", server.uri()), "acme", None)),
            "/html/search.json",
            Platform::Reddit,
        ),
        (
            Arc::new(HackerNewsSource::new(format!("{}/html", server.uri()), "acme")),
            "/html/api/v1/search_by_date",
            Platform::HackerNews,
        ),
        (
            Arc::new(RssSource::new(format!("{}/html/feed", server.uri()), None)),
            "/html/feed",
            Platform::Rss,
        ),
    ];
    for (_, p, _) in &sources {
        Mock::given(method("GET"))
            .and(path(*p))
            .respond_with(ResponseTemplate::new(200).set_body_raw(html, "text/html"))
            .mount(&server)
            .await;
    }
    let f = fetcher();
    for (source, _, platform) in &sources {
        let what = if *platform == Platform::Rss {
            "not an RSS"
        } else {
            "HTML"
        };
        assert_malformed(f.run_source(source.as_ref(), None).await, *platform, what);
    }

    // Truncated JSON and the wrong shape.
    let truncated = &fixture("bluesky_search_page1.json")[..300];
    Mock::given(method("GET"))
        .and(path("/truncated/xrpc/app.bsky.feed.searchPosts"))
        .respond_with(json(truncated))
        .mount(&server)
        .await;
    let bsky = BlueskySource::new(format!("{}/truncated", server.uri()), "acme");
    assert_malformed(f.run_source(&bsky, None).await, Platform::Bluesky, "EOF");

    Mock::given(method("GET"))
        .and(path("/shape/api/v1/timelines/tag/acme"))
        .respond_with(json(r#"{"error":"This method requires an authenticated user"}"#))
        .mount(&server)
        .await;
    let masto = MastodonSource::new(format!("{}/shape", server.uri()), MastodonMode::Tag("acme".into()));
    assert_malformed(
        f.run_source(&masto, None).await,
        Platform::Mastodon,
        "expected a sequence",
    );

    Mock::given(method("GET"))
        .and(path("/shape/search.json"))
        .respond_with(json(r#"{"kind":"Listing","data":{"after":null,"children":[{"kind":"t3","data":{"name":"t3_x","title":"no permalink","created_utc":1}}]}}"#))
        .mount(&server)
        .await;
    let reddit = RedditSource::new(format!("{}/shape", server.uri()), "acme", None);
    assert_malformed(
        f.run_source(&reddit, None).await,
        Platform::Reddit,
        "data.children[0].data",
    );

    Mock::given(method("GET"))
        .and(path("/shape/api/v1/search_by_date"))
        .respond_with(json(r#"{"hits":"nope","page":0,"nbPages":1}"#))
        .mount(&server)
        .await;
    let hn = HackerNewsSource::new(format!("{}/shape", server.uri()), "acme");
    assert_malformed(f.run_source(&hn, None).await, Platform::HackerNews, "hits");

    // A body over the runner's limit.
    let small = Fetcher::new(FetcherConfig {
        max_body_bytes: 1000,
        ..config()
    })
    .unwrap();
    Mock::given(method("GET"))
        .and(path("/big/xrpc/app.bsky.feed.searchPosts"))
        .respond_with(json(fixture("bluesky_search_page1.json")))
        .mount(&server)
        .await;
    let big = BlueskySource::new(format!("{}/big", server.uri()), "acme");
    assert_malformed(small.run_source(&big, None).await, Platform::Bluesky, "limit");
}

#[tokio::test]
async fn run_all_isolates_a_failing_source() {
    let good = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(HN_PATH))
        .respond_with(json(hn_single_page()))
        .mount(&good)
        .await;
    let bad = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&bad)
        .await;
    Mock::given(method("GET"))
        .and(path("/xrpc/app.bsky.feed.searchPosts"))
        .respond_with(ResponseTemplate::new(200).set_body_raw("<html>maintenance</html>", "text/html"))
        .with_priority(1)
        .mount(&bad)
        .await;
    let f = Fetcher::new(FetcherConfig {
        max_retries: 1,
        ..config()
    })
    .unwrap();
    let results = f
        .run_all(vec![
            (
                "reddit-acme".into(),
                Arc::new(RedditSource::new(bad.uri(), "acme", None)) as Arc<dyn SocialSource>,
                None,
            ),
            ("hn-acme".into(), Arc::new(hn_source(&good)), None),
            (
                "bsky-acme".into(),
                Arc::new(BlueskySource::new(bad.uri(), "acme")),
                Some(r#"{"since":"2024-05-01T00:00:00.000Z"}"#.into()),
            ),
            (
                "rss-refused".into(),
                Arc::new(RssSource::new("ftp://feeds.example/acme.xml", None)),
                None,
            ),
        ])
        .await;
    let names: Vec<&str> = results.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["reddit-acme", "hn-acme", "bsky-acme", "rss-refused"]);
    assert!(
        matches!(&results[0].1, Err(SocialError::Http { status: 500, .. })),
        "{:?}",
        results[0].1
    );
    let hn = results[1].1.as_ref().unwrap();
    assert_eq!(hn.mentions.len(), 3);
    assert!(matches!(
        &results[2].1,
        Err(SocialError::Malformed {
            platform: Platform::Bluesky,
            ..
        })
    ));
    assert!(results[3].1.is_err());
}

// ---------------------------------------------------------------------------------------------
// The private-address guard

#[tokio::test]
async fn check_url_refuses_non_public_and_non_http_urls() {
    for url in [
        "http://127.0.0.1:9/",
        "http://10.0.0.1/",
        "http://172.16.5.4/feed",
        "http://192.168.1.1/",
        "http://[::1]/",
        "http://[fd00::1]/",
        "http://[fe80::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://169.254.169.254/latest/meta-data/",
        "http://100.64.0.1/",
        "http://0.0.0.0/",
        "http://255.255.255.255/",
        "http://2130706433/", // 127.0.0.1 as a number
        "http://localhost/",
        "http://api.localhost:8080/",
        "file:///etc/passwd",
        "ftp://ftp.example.com/feed.xml",
        "gopher://example.com/",
        "not a url",
    ] {
        match check_url(url, false).await {
            Err(SocialError::RefusedUrl { url: u, reason }) => {
                assert_eq!(u, url);
                assert!(!reason.is_empty());
            }
            other => panic!("{url}: expected RefusedUrl, got {other:?}"),
        }
    }
    // Schemes are refused even when private addresses are allowed.
    assert!(check_url("file:///etc/passwd", true).await.is_err());
    assert!(check_url("http://127.0.0.1:9/", true).await.is_ok());
    assert!(is_public_ip("8.8.8.8".parse().unwrap()));
    assert!(!is_public_ip("::ffff:169.254.169.254".parse().unwrap()));
}

#[tokio::test]
async fn guarded_fetcher_sends_nothing_to_private_addresses() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(json(hn_single_page()))
        .mount(&server)
        .await;
    let f = Fetcher::new(FetcherConfig {
        allow_private_addresses: false,
        ..config()
    })
    .unwrap();
    let sources: Vec<Arc<dyn SocialSource>> = vec![
        Arc::new(hn_source(&server)),
        Arc::new(RssSource::new(format!("{}/feed.xml", server.uri()), None)),
        Arc::new(RssSource::new(
            format!("http://localhost:{}/feed.xml", server.address().port()),
            None,
        )),
        Arc::new(MastodonSource::new(
            format!("http://[::1]:{}", server.address().port()),
            MastodonMode::Tag("acme".into()),
        )),
    ];
    for source in sources {
        let err = f.run_source(source.as_ref(), None).await.unwrap_err();
        assert!(matches!(err, SocialError::RefusedUrl { .. }), "{err:?}");
    }
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn redirects_to_other_schemes_and_loops_are_refused() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/moved.xml"))
        .respond_with(ResponseTemplate::new(302).insert_header("location", "file:///etc/passwd"))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/loop.xml"))
        .respond_with(ResponseTemplate::new(302).insert_header("location", "/loop.xml"))
        .mount(&server)
        .await;
    let f = fetcher();
    let moved = RssSource::new(format!("{}/moved.xml", server.uri()), None);
    let err = f.run_source(&moved, None).await.unwrap_err();
    assert!(
        matches!(&err, SocialError::RefusedUrl { reason, .. } if reason.contains("file")),
        "{err:?}"
    );
    let looping = RssSource::new(format!("{}/loop.xml", server.uri()), None);
    let err = f.run_source(&looping, None).await.unwrap_err();
    assert!(
        matches!(&err, SocialError::RefusedUrl { reason, .. } if reason.contains("redirects")),
        "{err:?}"
    );
    // 1 + 5 redirects followed, then refused.
    let loops = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path() == "/loop.xml")
        .count();
    assert_eq!(loops, 6);
}

#[tokio::test]
async fn adapters_refuse_bad_configuration() {
    let bad_base = MastodonSource::new("ftp://mastodon.example", MastodonMode::Tag("acme".into()));
    assert!(matches!(bad_base.first_request(None), Err(SocialError::Config(_))));
    let empty = BlueskySource::new("https://public.api.bsky.app", "  ");
    assert!(matches!(empty.first_request(None), Err(SocialError::Config(_))));
    let reddit = RedditSource::new("https://www.reddit.com", "acme", None);
    assert!(matches!(
        reddit.first_request(Some("not json")),
        Err(SocialError::Config(_))
    ));
    let masto = MastodonSource::new("https://mastodon.example", MastodonMode::Tag("acme".into()));
    assert!(matches!(
        masto.first_request(Some("1; DROP")),
        Err(SocialError::Config(_))
    ));
    let rss = RssSource::new("file:///etc/passwd", None);
    assert!(matches!(rss.first_request(None), Err(SocialError::Config(_))));
}
