//! The social channel end to end, against real components: [`Runner`] over a [`SocialConfig`]
//! parsed from TOML, the real [`Fetcher`](crow_ingest::social::fetch::Fetcher) and adapters
//! talking to wiremock servers on 127.0.0.1 (`allow_private_addresses = true`), the real
//! [`Pipeline`](crow_ingest::social::pipeline::Pipeline), [`MemoryStore`] as the social store,
//! account store and queue, [`FakeTextAnalyzer`] as the lexicon tier, and the workflow trigger
//! running the `analyze-social` jobs.
//!
//! Answers are the documented-format fixtures of `tests/data/social/fixtures/` (see its README),
//! or variants of them built here by changing a few fields of a fixture entry.
#![cfg(all(
    feature = "social-http",
    feature = "social-rss",
    feature = "social-mastodon",
    feature = "social-bluesky",
    feature = "social-reddit",
    feature = "social-hackernews"
))]

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crow_core::keys::{self, RANDOM_BYTES};
use crow_core::model::{MentionDuplicate, Millis, SocialMention};
use crow_core::ports::{
    AccountStore, JobQueue, MentionQuery, SocialStore, SourceState, TextAnalysis, TextAnalyzer, VectorIndex, queues,
};
use crow_core::testing::{BruteForceIndex, FakeTextAnalyzer, HashEmbedder, MemoryBlobStore, MemoryStore};
use crow_core::vector::IndexKind;
use crow_ingest::jobs::{ANALYZE_SOCIAL, MentionBatch};
use crow_ingest::search::{Indexes, SearchRequest, search};
use crow_ingest::social::config::SocialConfig;
use crow_ingest::social::pipeline::MENTIONS_PER_JOB;
use crow_ingest::social::runner::{Runner, SocialPorts, SourceReport};
use crow_ingest::social::simhash::{hamming, simhash};
use crow_ingest::social::{Platform, SocialError};
use crow_ingest::workflows::{PortRefs, WithText};
use serde_json::{Value, json};
use wiremock::matchers::{method, path, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, ResponseTemplate};

// ---------------------------------------------------------------------------------------------
// Helpers

/// The runs' clock: 2024-05-04T00:00:00Z, a day after the fixtures' posts (so they fall in the
/// 30-day near-duplicate window).
const NOW: Millis = 1_714_780_800_000;

fn now() -> Millis {
    NOW
}

fn wall_clock() -> Millis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

const TAG_PATH: &str = "/api/v1/timelines/tag/acme";
const BLUESKY_PATH: &str = "/xrpc/app.bsky.feed.searchPosts";
const REDDIT_PATH: &str = "/search.json";
const HN_PATH: &str = "/api/v1/search_by_date";

fn fixture_json(name: &str) -> Value {
    let path = format!("{}/tests/data/social/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn json_response(v: &Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(serde_json::to_vec(v).unwrap(), "application/json")
}

/// Serves `body` for every GET of `p`.
async fn serve(server: &MockServer, p: &str, body: &Value) {
    Mock::given(method("GET"))
        .and(path(p))
        .respond_with(json_response(body))
        .mount(server)
        .await;
}

/// Serves `first` for GETs of `p` without the `param` query parameter, and `second` for those
/// with `param = value` (a two-page answer).
async fn serve_pages(server: &MockServer, p: &str, param: &str, value: &str, first: &Value, second: &Value) {
    Mock::given(method("GET"))
        .and(path(p))
        .and(query_param_is_missing(param))
        .respond_with(json_response(first))
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path(p))
        .and(query_param(param, value))
        .respond_with(json_response(second))
        .mount(server)
        .await;
}

fn has_param(request: &wiremock::Request, name: &str, value: &str) -> bool {
    request.url.query_pairs().any(|(k, v)| k == name && v == value)
}

async fn received(server: &MockServer) -> usize {
    server.received_requests().await.map_or(0, |r| r.len())
}

/// A store with one org; returns the store, the org id and its pseudonym key.
async fn store_with_org() -> (MemoryStore, String, Vec<u8>) {
    let store = MemoryStore::new();
    let (org, _credentials, keys) = keys::generate("Acme", 0, &[7u8; RANDOM_BYTES]);
    store.create_org(&org, &keys).await.unwrap();
    (store, org.id, keys.pseudonym_key)
}

/// The stored id of a Bluesky post: its AT-URI with the DID replaced by its pseudonym.
fn bluesky_id(key: &[u8], did: &str, rkey: &str) -> String {
    format!(
        "bluesky:at://{}/app.bsky.feed.post/{rkey}",
        crow_core::privacy::pseudonymize(key, did)
    )
}

fn ports<'a>(store: &'a MemoryStore, lexicon: &'a FakeTextAnalyzer) -> SocialPorts<'a> {
    SocialPorts {
        social: store,
        accounts: store,
        lexicon,
    }
}

/// One `[[sources]]` table.
fn source(name: &str, platform: &str, url: &str, query: &str) -> String {
    format!(
        "[[sources]]\nname = \"{name}\"\nplatform = \"{platform}\"\nschedule = \"*/15 * * * *\"\n\
         url = \"{url}\"\nquery = \"{query}\"\n\n"
    )
}

/// A `social.toml` for `org` with loopback URLs allowed, `prefilter` (a `[prefilter]` table or
/// nothing) and `sources`.
fn config(org: &str, prefilter: &str, sources: &[String]) -> SocialConfig {
    let text = format!(
        "org = \"{org}\"\nallow_private_addresses = true\ntimeout_secs = 5\n\n{prefilter}\n{}",
        sources.concat()
    );
    toml::from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

fn runner(config: SocialConfig) -> Runner {
    Runner::new(config, |_| None).unwrap()
}

async fn all_mentions(store: &MemoryStore, org: &str) -> Vec<SocialMention> {
    let query = MentionQuery {
        limit: 1000,
        ..MentionQuery::default()
    };
    let page = store.list_mentions(org, &query).await.unwrap();
    assert!(page.next_cursor.is_none());
    page.data
}

async fn mentions_where(store: &MemoryStore, org: &str, selected: bool) -> Vec<SocialMention> {
    let query = MentionQuery {
        limit: 1000,
        selected: Some(selected),
        ..MentionQuery::default()
    };
    store.list_mentions(org, &query).await.unwrap().data
}

async fn duplicates(store: &MemoryStore, org: &str) -> Vec<MentionDuplicate> {
    store.list_duplicates(org, None, 1000).await.unwrap()
}

async fn state(store: &MemoryStore, org: &str, source: &str) -> SourceState {
    store
        .source_state(org, source)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no state for {source}"))
}

fn report<'a>(reports: &'a [SourceReport], name: &str) -> &'a SourceReport {
    reports
        .iter()
        .find(|r| r.source == name)
        .unwrap_or_else(|| panic!("no report for {name} in {reports:?}"))
}

fn by_id<'a>(mentions: &'a [SocialMention], id: &str) -> &'a SocialMention {
    mentions.iter().find(|m| m.id == id).unwrap_or_else(|| {
        let ids: Vec<&str> = mentions.iter().map(|m| m.id.as_str()).collect();
        panic!("no mention {id} in {ids:?}")
    })
}

fn rfc3339(ms: Millis) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn ms(rfc3339: &str) -> Millis {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .unwrap()
        .timestamp_millis()
}

// Fixture variants: one entry of a fixture with its identifying fields and text replaced.

/// A Mastodon status (the fixture's second status, which is a plain local status).
fn mastodon_status(id: &str, at: Millis, acct: &str, content_html: &str) -> Value {
    let mut s = fixture_json("mastodon_tag_page1.json")[1].clone();
    s["id"] = json!(id);
    s["created_at"] = json!(rfc3339(at));
    s["language"] = json!("en");
    s["content"] = json!(content_html);
    s["url"] = json!(format!("https://social.example/@{acct}/{id}"));
    s["uri"] = json!(format!("https://social.example/users/{acct}/statuses/{id}"));
    s["account"]["acct"] = json!(acct);
    s["account"]["username"] = json!(acct);
    s["mentions"] = json!([]);
    s
}

/// A Bluesky post (the fixture's first post, facets dropped since the text changes).
fn bluesky_post(rkey: &str, at: Millis, handle: &str, text: &str) -> Value {
    let mut p = fixture_json("bluesky_search_page1.json")["posts"][0].clone();
    let did = format!("did:plc:{rkey}");
    p["uri"] = json!(format!("at://{did}/app.bsky.feed.post/{rkey}"));
    p["author"]["did"] = json!(did);
    p["author"]["handle"] = json!(handle);
    p["record"]["text"] = json!(text);
    p["record"]["createdAt"] = json!(rfc3339(at));
    p["indexedAt"] = json!(rfc3339(at + 500));
    p["record"].as_object_mut().unwrap().remove("facets");
    p
}

/// A Hacker News story hit (the fixture's link story).
fn hn_story(id: u64, at: Millis, author: &str, title: &str) -> Value {
    let mut h = fixture_json("hackernews_page0.json")["hits"][1].clone();
    h["objectID"] = json!(id.to_string());
    h["created_at_i"] = json!(at / 1000);
    h["created_at"] = json!(rfc3339(at));
    h["author"] = json!(author);
    h["title"] = json!(title);
    h["story_id"] = json!(id);
    h["_tags"] = json!(["story", format!("author_{author}"), format!("story_{id}")]);
    h.as_object_mut().unwrap().remove("_highlightResult");
    h
}

fn hn_page(hits: Vec<Value>) -> Value {
    let mut page = fixture_json("hackernews_page1.json");
    page["nbHits"] = json!(hits.len());
    page["hitsPerPage"] = json!(100);
    page["page"] = json!(0);
    page["nbPages"] = json!(1);
    page["hits"] = json!(hits);
    page
}

/// A Reddit self post (the fixture's first post).
fn reddit_post(id36: &str, at: Millis, author: &str, title: &str, selftext: &str) -> Value {
    let mut c = fixture_json("reddit_search_page1.json")["data"]["children"][0].clone();
    let d = &mut c["data"];
    d["id"] = json!(id36);
    d["name"] = json!(format!("t3_{id36}"));
    d["author"] = json!(author);
    d["title"] = json!(title);
    d["selftext"] = json!(selftext);
    d["created"] = json!(at / 1000);
    d["created_utc"] = json!(at / 1000);
    d["permalink"] = json!(format!("/r/gadgets/comments/{id36}/post/"));
    d["url"] = json!(format!("https://www.reddit.com/r/gadgets/comments/{id36}/post/"));
    c
}

fn reddit_page(children: Vec<Value>) -> Value {
    let mut page = fixture_json("reddit_search_page2.json");
    page["data"]["dist"] = json!(children.len());
    page["data"]["children"] = json!(children);
    page
}

/// Serves the fixtures of a platform (both pages where there are two).
async fn serve_fixtures(server: &MockServer, platform: Platform) {
    match platform {
        Platform::Mastodon => serve(server, TAG_PATH, &fixture_json("mastodon_tag_page1.json")).await,
        Platform::Bluesky => {
            serve_pages(
                server,
                BLUESKY_PATH,
                "cursor",
                "3",
                &fixture_json("bluesky_search_page1.json"),
                &fixture_json("bluesky_search_page2.json"),
            )
            .await
        }
        Platform::Reddit => {
            serve_pages(
                server,
                REDDIT_PATH,
                "after",
                "t3_1cja002",
                &fixture_json("reddit_search_page1.json"),
                &fixture_json("reddit_search_page2.json"),
            )
            .await
        }
        Platform::HackerNews => {
            serve_pages(
                server,
                HN_PATH,
                "page",
                "1",
                &fixture_json("hackernews_page0.json"),
                &fixture_json("hackernews_page1.json"),
            )
            .await
        }
        Platform::Rss => unreachable!("no RSS source here"),
    }
}

/// The social queue's jobs, leased and released again (so the trigger still gets them).
async fn social_jobs(store: &MemoryStore) -> Vec<MentionBatch> {
    let jobs = store.reserve(queues::SOCIAL, 1000, 60_000, NOW).await.unwrap();
    store.release_leases(queues::SOCIAL).await.unwrap();
    jobs.into_iter()
        .map(|j| {
            assert_eq!(j.kind, ANALYZE_SOCIAL);
            assert_eq!(j.queue, queues::SOCIAL);
            serde_json::from_value(j.payload).unwrap()
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// 1. A run over four platforms: stored, pseudonymized, scrubbed, states recorded.

#[tokio::test]
async fn run_once_stores_pseudonymized_scrubbed_mentions_and_records_source_states() {
    let (store, org, pseudonym_key) = store_with_org().await;
    let (mastodon, bluesky, reddit, hn) = (
        MockServer::start().await,
        MockServer::start().await,
        MockServer::start().await,
        MockServer::start().await,
    );
    serve_fixtures(&mastodon, Platform::Mastodon).await;
    serve_fixtures(&bluesky, Platform::Bluesky).await;
    serve_fixtures(&hn, Platform::HackerNews).await;
    // A variant of the Reddit fixture whose first post carries an email and a phone number.
    let mut reddit_page1 = fixture_json("reddit_search_page1.json");
    reddit_page1["data"]["children"][0]["data"]["selftext"] = json!(
        "Three months with the Acme Widget Pro. Questions? Mail me at jane.doe@example.com \
         or call 415-555-2671, happy to help."
    );
    serve_pages(
        &reddit,
        REDDIT_PATH,
        "after",
        "t3_1cja002",
        &reddit_page1,
        &fixture_json("reddit_search_page2.json"),
    )
    .await;

    let config = config(
        &org,
        "",
        &[
            source("acme-mastodon", "mastodon", &mastodon.uri(), "acme"),
            source("acme-bluesky", "bluesky", &bluesky.uri(), "acme"),
            source("acme-reddit", "reddit", &reddit.uri(), "acme"),
            source("acme-hn", "hackernews", &hn.uri(), "acme"),
        ],
    );
    let mut runner = runner(config);
    let lexicon = FakeTextAnalyzer::new();
    let reports = runner.run_once(ports(&store, &lexicon), None, &now).await.unwrap();

    // Every source ran without error, in config order, and fetched every page.
    let names: Vec<&str> = reports.iter().map(|r| r.source.as_str()).collect();
    assert_eq!(names, ["acme-mastodon", "acme-bluesky", "acme-reddit", "acme-hn"]);
    for r in &reports {
        assert_eq!(r.error, None, "{r:?}");
        assert_eq!(
            r.pass.stored + r.pass.near_duplicates + r.pass.exact_duplicates,
            r.pass.fetched,
            "{r:?}"
        );
    }
    // (3 statuses) (3 + 2 posts) (2 + 2 posts, the NSFW one skipped) (3 + 2 hits).
    let fetched: Vec<(usize, u32)> = reports.iter().map(|r| (r.pass.fetched, r.pages)).collect();
    assert_eq!(fetched, [(3, 1), (5, 2), (4, 2), (5, 2)]);
    assert_eq!(received(&mastodon).await, 1);
    assert_eq!(received(&bluesky).await, 2);
    assert_eq!(received(&reddit).await, 2);
    assert_eq!(received(&hn).await, 2);

    let stored = all_mentions(&store, &org).await;
    let total: usize = reports.iter().map(|r| r.pass.stored).sum();
    assert_eq!(stored.len(), total);
    assert_eq!(total, 17, "the fixtures hold no near-duplicates: {reports:?}");
    for platform in ["mastodon", "bluesky", "reddit", "hackernews"] {
        assert!(
            stored.iter().any(|m| m.platform == platform),
            "no {platform} mention stored"
        );
    }

    // Authors are keyed pseudonyms: the same as pseudonymizing `platform:handle` with the org's
    // key, and the raw handles are nowhere in what was stored.
    let handles = [
        "dave@fosstodon.org",
        "eve@pleroma.example",
        "ann.bsky.social",
        "bob.example.com",
        "widget_fan",
        "kettle_hater",
        "teardown_tim",
        "tptacek",
        "throwaway42",
        "acmefounder",
    ];
    let dave = by_id(&stored, "mastodon:112399999999999990");
    assert_eq!(
        dave.author.as_deref(),
        Some(crow_core::privacy::pseudonymize(&pseudonym_key, "mastodon:dave@fosstodon.org").as_str())
    );
    let host = mastodon.address().ip().to_string();
    let ann = by_id(&stored, "mastodon:112400000000000002");
    assert_eq!(
        ann.author.as_deref(),
        Some(crow_core::privacy::pseudonymize(&pseudonym_key, &format!("mastodon:ann@{host}")).as_str())
    );
    // `[deleted]` has no author; everyone else has a pseudonym.
    assert_eq!(by_id(&stored, "reddit:t3_1cja003").author, None);
    for m in &stored {
        if m.id == "reddit:t3_1cja003" {
            continue;
        }
        let author = m.author.as_deref().unwrap_or_else(|| panic!("{} has no author", m.id));
        assert!(
            author.starts_with("psn_") && author.len() == 36 && author[4..].bytes().all(|b| b.is_ascii_hexdigit()),
            "{}: {author}",
            m.id
        );
        // The permalink is left out: Mastodon and Bluesky permalinks name the author
        // (`https://social.example/@ann/…`, `https://bsky.app/profile/{handle}/post/…`). And
        // Bluesky DIDs are not in the list: a post's id is its `at://{author DID}/…` URI.
        let mut without_url = m.clone();
        without_url.url = None;
        let serialized = serde_json::to_string(&without_url).unwrap();
        for h in handles.iter().copied().chain([format!("ann@{host}").as_str()]) {
            assert!(!serialized.contains(h), "{} stores the handle {h}: {serialized}", m.id);
        }
    }

    // PII in the text is scrubbed before storage.
    let pii = by_id(&stored, "reddit:t3_1cja004");
    assert!(
        pii.text.contains("[email]") && pii.text.contains("[phone]"),
        "{}",
        pii.text
    );
    let everything = serde_json::to_string(&stored).unwrap();
    for raw in ["jane.doe", "example.com or", "555-2671", "4155552671"] {
        assert!(!everything.contains(raw), "{raw:?} stored");
    }

    // The other fields come through.
    let m = by_id(&stored, "hackernews:40200003");
    assert_eq!(m.text, "Acme raises $10M to build better widgets");
    assert_eq!(m.source, "acme-hn");
    assert_eq!(m.query.as_deref(), Some("acme"));
    assert_eq!(m.fetched_at, NOW);
    assert_eq!(m.posted_at, ms("2024-05-03T09:00:00Z"));
    assert_eq!(m.engagement.score, Some(128));
    assert!(m.simhash.is_some() && m.lexicon_score.is_some());
    assert!(m.analysis.is_none() && m.sentiment.is_none());

    // Every source's state: cursor, last run and last success at the run's start, no error.
    for r in &reports {
        let s = state(&store, &org, &r.source).await;
        assert_eq!(
            (s.last_run_at, s.last_success_at, s.last_error.as_deref()),
            (Some(NOW), Some(NOW), None),
            "{}",
            r.source
        );
        assert!(s.cursor.is_some(), "{}: no cursor", r.source);
    }
    let cursor = |s: SourceState| s.cursor.unwrap();
    assert_eq!(cursor(state(&store, &org, "acme-mastodon").await), "112400000000000003");
    assert!(cursor(state(&store, &org, "acme-hn").await).contains("1714730400"));
    assert!(cursor(state(&store, &org, "acme-reddit").await).contains("t3_1cja004"));
    assert!(cursor(state(&store, &org, "acme-bluesky").await).contains("2024-05-03T10:00:00.000Z"));
}

// ---------------------------------------------------------------------------------------------
// 2. A post cross-posted on two platforms is stored once.

const GLOW: &str = "The Acme Glow flickers at low brightness which gives me a headache within an hour. Returning it.";

/// The cross-post of [`GLOW`] on Mastodon: a repost prefix, a trailing hashtag and a link.
fn glow_crosspost_html() -> String {
    "<p>RT @lampfan: The Acme Glow flickers at low brightness which gives me a headache within an \
     hour. Returning it! <a href=\"https://social.example/tags/acme\" class=\"mention hashtag\" \
     rel=\"tag\">#<span>acme</span></a> <a href=\"https://t.co/x1\">https://t.co/x1</a></p>"
        .into()
}

const T_GLOW: &str = "2024-05-03T08:00:00.000Z";
const T_CROSSPOST: &str = "2024-05-03T09:15:00.000Z";

/// Serves the original on Bluesky and the cross-post on Mastodon, each with an unrelated post.
async fn serve_crosspost(bluesky: &MockServer, mastodon: &MockServer) {
    let posts = json!({"posts": [
        bluesky_post("3glow2", ms("2024-05-03T10:00:00.000Z"), "kim.bsky.social",
            "Acme support replaced my charger in two days, no questions asked."),
        bluesky_post("3glow1", ms(T_GLOW), "lampfan.bsky.social", GLOW),
    ]});
    serve(bluesky, BLUESKY_PATH, &posts).await;
    let statuses = json!([
        mastodon_status("112500000000000002", ms(T_CROSSPOST), "lampfan", &glow_crosspost_html()),
        mastodon_status(
            "112500000000000001",
            ms("2024-05-03T07:00:00.000Z"),
            "joe",
            "<p>Anyone tried the <a href=\"https://social.example/tags/acme\" class=\"mention hashtag\" \
             rel=\"tag\">#<span>acme</span></a> Glow with a smart home hub yet?</p>",
        ),
    ]);
    serve(mastodon, TAG_PATH, &statuses).await;
}

#[tokio::test]
async fn a_crosspost_is_stored_once_and_linked_to_the_earliest_post() {
    let crosspost_text = "RT @lampfan: The Acme Glow flickers at low brightness which gives me a headache \
                          within an hour. Returning it! #acme https://t.co/x1";
    assert!(hamming(simhash(GLOW), simhash(crosspost_text)) <= 3);
    let (store, org, key) = store_with_org().await;
    let (bluesky, mastodon) = (MockServer::start().await, MockServer::start().await);
    serve_crosspost(&bluesky, &mastodon).await;
    let mut runner = runner(config(
        &org,
        "",
        &[
            source("acme-bluesky", "bluesky", &bluesky.uri(), "acme"),
            source("acme-mastodon", "mastodon", &mastodon.uri(), "acme"),
        ],
    ));
    let lexicon = FakeTextAnalyzer::new();
    let reports = runner.run_once(ports(&store, &lexicon), None, &now).await.unwrap();

    // The DID in a Bluesky id is replaced by its keyed pseudonym.
    let original_id = &bluesky_id(&key, "did:plc:3glow1", "3glow1");
    let original_id = original_id.as_str();
    let copy_id = "mastodon:112500000000000002";
    let b = report(&reports, "acme-bluesky");
    assert_eq!(
        (b.pass.fetched, b.pass.stored, b.pass.near_duplicates),
        (2, 2, 0),
        "{b:?}"
    );
    let m = report(&reports, "acme-mastodon");
    assert_eq!(
        (m.pass.fetched, m.pass.stored, m.pass.near_duplicates),
        (2, 1, 1),
        "{m:?}"
    );

    let stored = all_mentions(&store, &org).await;
    assert_eq!(stored.len(), 3);
    assert!(stored.iter().all(|m| m.id != copy_id));
    assert_eq!(by_id(&stored, original_id).text, GLOW);

    let dups = duplicates(&store, &org).await;
    assert_eq!(dups.len(), 1, "{dups:?}");
    let d = &dups[0];
    assert_eq!(
        (d.id.as_str(), d.original_id.as_str(), d.platform.as_str()),
        (copy_id, original_id, "mastodon")
    );
    assert!(d.distance <= 3, "{d:?}");
    assert_eq!(d.fetched_at, NOW);
    // The permalink names the author (`/@lampfan/`), so it is not kept: it would undo the
    // pseudonym.
    assert_eq!(d.url, None);
    assert_eq!(store.list_duplicates(&org, Some(original_id), 10).await.unwrap(), dups);
}

/// The same two posts, but the source holding the later copy runs first.
///
/// Fails today: the runner hands each source's posts to the pipeline separately, in config
/// order, so "oldest first" only holds within one source, and the Bluesky original (08:00)
/// becomes a duplicate of the Mastodon copy (09:15).
#[tokio::test]
async fn a_crosspost_is_linked_to_the_earliest_post_whichever_source_runs_first() {
    let (store, org, key) = store_with_org().await;
    let (bluesky, mastodon) = (MockServer::start().await, MockServer::start().await);
    serve_crosspost(&bluesky, &mastodon).await;
    let mut runner = runner(config(
        &org,
        "",
        &[
            source("acme-mastodon", "mastodon", &mastodon.uri(), "acme"),
            source("acme-bluesky", "bluesky", &bluesky.uri(), "acme"),
        ],
    ));
    let lexicon = FakeTextAnalyzer::new();
    let reports = runner.run_once(ports(&store, &lexicon), None, &now).await.unwrap();
    let total: usize = reports.iter().map(|r| r.pass.near_duplicates).sum();
    assert_eq!(total, 1, "{reports:?}");
    let dups = duplicates(&store, &org).await;
    assert_eq!(dups.len(), 1, "{dups:?}");
    // The original is the earliest post (Bluesky, 08:00), not the first one processed
    // (Mastodon's copy, 09:15).
    assert_eq!(
        (dups[0].id.as_str(), dups[0].original_id.as_str()),
        (
            "mastodon:112500000000000002",
            bluesky_id(&key, "did:plc:3glow1", "3glow1").as_str()
        ),
        "{dups:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// 3. Re-runs store nothing; the near-duplicate index outlives the runner.

#[tokio::test]
async fn a_second_run_stores_nothing_and_a_new_runner_still_finds_near_duplicates() {
    let (store, org, _) = store_with_org().await;
    let (mastodon, hn, reddit) = (
        MockServer::start().await,
        MockServer::start().await,
        MockServer::start().await,
    );
    serve_fixtures(&mastodon, Platform::Mastodon).await;
    serve_fixtures(&hn, Platform::HackerNews).await;
    let sources = [
        source("acme-mastodon", "mastodon", &mastodon.uri(), "acme"),
        source("acme-hn", "hackernews", &hn.uri(), "acme"),
    ];
    let mut first = runner(config(&org, "", &sources));
    let lexicon = FakeTextAnalyzer::new();
    let reports = first.run_once(ports(&store, &lexicon), None, &now).await.unwrap();
    let stored: usize = reports.iter().map(|r| r.pass.stored).sum();
    assert_eq!(stored, 8, "{reports:?}");
    let before = all_mentions(&store, &org).await;
    let jobs_before = store.depth(queues::SOCIAL).await.unwrap();

    // Same runner, same answers: the cursors skip what was seen, and whatever still comes
    // back is an exact duplicate.
    let later = NOW + 60_000;
    let again = first.run_once(ports(&store, &lexicon), None, &|| later).await.unwrap();
    for r in &again {
        assert_eq!(r.error, None, "{r:?}");
        assert_eq!((r.pass.stored, r.pass.near_duplicates), (0, 0), "{r:?}");
        assert_eq!(r.pass.exact_duplicates, r.pass.fetched, "{r:?}");
        let s = state(&store, &org, &r.source).await;
        assert_eq!((s.last_run_at, s.last_success_at), (Some(later), Some(later)));
    }
    // Mastodon asked only for statuses after the cursor.
    let requests = mastodon.received_requests().await.unwrap();
    assert_eq!(requests.len(), 2);
    assert!(
        has_param(&requests[1], "since_id", "112400000000000003"),
        "{}",
        requests[1].url
    );
    assert_eq!(all_mentions(&store, &org).await, before);
    assert!(duplicates(&store, &org).await.is_empty());
    assert_eq!(store.depth(queues::SOCIAL).await.unwrap(), jobs_before);

    // A new runner (an empty in-memory index) with one more source, on Reddit, holding a
    // near-duplicate of the Ask HN story stored above.
    let original = by_id(&before, "hackernews:40200001");
    let copy_title = "Ask HN: Acme in production?";
    let copy_body = "Is anyone using Acme in production? We're seeing p99 latency > 2s / request. #acme";
    let copy_text = format!("{copy_title}\n\n{copy_body}");
    assert!(hamming(original.simhash.unwrap(), simhash(&copy_text)) <= 3);
    let page = reddit_page(vec![
        reddit_post("1czz002", ms("2024-05-03T12:00:00Z"), "copycat", copy_title, copy_body),
        reddit_post(
            "1czz001",
            ms("2024-05-03T11:00:00Z"),
            "rosa",
            "Acme Widget Pro vs. the Zeta One",
            "Which one has the better battery?",
        ),
    ]);
    serve(&reddit, REDDIT_PATH, &page).await;
    let mut sources = sources.to_vec();
    sources.push(source("acme-reddit", "reddit", &reddit.uri(), "acme"));
    let mut second = runner(config(&org, "", &sources));
    let last = NOW + 120_000;
    let reports = second.run_once(ports(&store, &lexicon), None, &|| last).await.unwrap();
    for r in &reports {
        assert_eq!(r.error, None, "{r:?}");
    }
    let r = report(&reports, "acme-reddit");
    assert_eq!(
        (r.pass.fetched, r.pass.stored, r.pass.near_duplicates),
        (2, 1, 1),
        "{r:?}"
    );
    for name in ["acme-mastodon", "acme-hn"] {
        assert_eq!(report(&reports, name).pass.stored, 0);
    }
    let dups = duplicates(&store, &org).await;
    assert_eq!(dups.len(), 1, "{dups:?}");
    assert_eq!(
        (dups[0].id.as_str(), dups[0].original_id.as_str()),
        ("reddit:t3_1czz002", "hackernews:40200001")
    );
    assert_eq!(dups[0].fetched_at, last);
    assert_eq!(all_mentions(&store, &org).await.len(), before.len() + 1);
}

// ---------------------------------------------------------------------------------------------
// 4. Pre-filter, jobs, and the analyze-social workflow through the trigger.

/// [`FakeTextAnalyzer`], with the `@handle` entities it finds marked as personal data (it marks
/// none), so that the workflow's clearing of PII entity texts is observable.
struct PiiHandles;

#[async_trait::async_trait]
impl TextAnalyzer for PiiHandles {
    async fn analyze(&self, org_id: &str, texts: &[String]) -> crow_core::Result<Vec<TextAnalysis>> {
        let mut out = FakeTextAnalyzer::new().analyze(org_id, texts).await?;
        for a in &mut out {
            for e in a.entities.iter_mut().filter(|e| e.kind == "handle") {
                e.pii = true;
            }
        }
        Ok(out)
    }
}

#[tokio::test]
async fn selected_mentions_get_one_job_per_32_and_the_workflow_analyzes_and_indexes_them() {
    let (store, org, _) = store_with_org().await;
    let hn = MockServer::start().await;
    // Short texts (fewer than 5 words are hashed exactly, so none is a near-duplicate of
    // another). FakeTextAnalyzer: +1 per positive word, -1 per negative, averaged.
    let t0 = ms("2024-05-03T00:00:00Z");
    let mut hits = Vec::new();
    let mut expect_selected = BTreeSet::new();
    let mut expect_unselected = BTreeSet::new();
    let mut id = 41_000_000u64;
    let mut add = |title: String, selected: bool, hits: &mut Vec<Value>| {
        id += 1;
        hits.push(hn_story(id, t0 + (id as i64 - 41_000_000) * 60_000, "poster", &title));
        let mention_id = format!("hackernews:{id}");
        if selected {
            expect_selected.insert(mention_id);
        } else {
            expect_unselected.insert(mention_id);
        }
    };
    // 34 strongly positive (score 1.0 ≥ 0.5).
    for i in 0..34 {
        add(format!("great unit{i} acme"), true, &mut hits);
    }
    // 3 neutral with the keyword, one naming a handle.
    for i in 0..3 {
        add(format!("acme recall @acmehelp batch{i}"), true, &mut hits);
    }
    // 5 neutral without the keyword; "recalled" is not the word "recall".
    for i in 0..5 {
        add(format!("acme recalled meetup room{i}"), false, &mut hits);
    }
    // 2 with a weak score: (2 - 1) / 3 = 0.33, selected by the default 0.3 but not by 0.5.
    for i in 0..2 {
        add(format!("great good slow z{i}"), false, &mut hits);
    }
    hits.reverse(); // newest first, as Algolia answers
    serve(&hn, HN_PATH, &hn_page(hits)).await;

    let prefilter = "[prefilter]\nmin_abs_score = 0.5\nkeywords = [\"recall\"]\n";
    let mut runner = runner(config(
        &org,
        prefilter,
        &[source("acme-hn", "hackernews", &hn.uri(), "acme")],
    ));
    let lexicon = FakeTextAnalyzer::new();
    let reports = runner.run_once(ports(&store, &lexicon), None, &now).await.unwrap();
    let r = report(&reports, "acme-hn");
    assert_eq!(r.error, None);
    assert_eq!((r.pass.fetched, r.pass.stored, r.pass.selected), (44, 44, 37), "{r:?}");
    assert_eq!(
        (
            r.pass.sentiment.positive,
            r.pass.sentiment.neutral,
            r.pass.sentiment.negative
        ),
        (36, 8, 0),
        "{r:?}"
    );

    let selected = mentions_where(&store, &org, true).await;
    let unselected = mentions_where(&store, &org, false).await;
    let ids = |ms: &[SocialMention]| ms.iter().map(|m| m.id.clone()).collect::<BTreeSet<_>>();
    assert_eq!(ids(&selected), expect_selected);
    assert_eq!(ids(&unselected), expect_unselected);
    assert!(
        selected
            .iter()
            .all(|m| m.selected && m.analysis.is_none() && m.sentiment.is_none())
    );
    assert_eq!(by_id(&selected, "hackernews:41000001").lexicon_score, Some(1.0));

    // One job per 32 selected mentions, covering each selected mention once and no other.
    let jobs = social_jobs(&store).await;
    assert_eq!(jobs.len(), 37usize.div_ceil(MENTIONS_PER_JOB));
    let mut sizes: Vec<usize> = jobs.iter().map(|j| j.mention_ids.len()).collect();
    sizes.sort_unstable();
    assert_eq!(sizes, [5, 32]);
    let mut covered = BTreeSet::new();
    for job in &jobs {
        assert_eq!(job.org_id, org);
        for id in &job.mention_ids {
            assert!(covered.insert(id.clone()), "{id} in two jobs");
        }
    }
    assert_eq!(covered, expect_selected);

    // The trigger runs the jobs: analysis, sentiment and an embedding for each selected mention.
    let blobs = MemoryBlobStore::new();
    let embedder = HashEmbedder::new(16);
    let social_index = Arc::new(BruteForceIndex::new(16));
    let indexes = Indexes::new(
        Arc::new(BruteForceIndex::new(16)),
        Arc::new(BruteForceIndex::new(16)),
        social_index.clone(),
    );
    let analyzer = PiiHandles;
    let workflow_ports = WithText {
        ports: PortRefs::shared(&store, &blobs),
        analyzer: &analyzer,
        embedder: Some(&embedder),
        indexes: Some(&indexes),
        social: Some(&store),
        video: None,
    };
    let tick = crow_ingest::workflows::run_once(&workflow_ports, queues::SOCIAL, 100, NOW + 1_000, 0.5)
        .await
        .unwrap();
    assert_eq!((tick.processed, tick.failed, tick.dead), (2, 0, 0), "{tick:?}");
    let depth = store.depth(queues::SOCIAL).await.unwrap();
    assert_eq!((depth.ready, depth.in_flight, depth.dead), (0, 0, 0));

    let selected = mentions_where(&store, &org, true).await;
    for m in &selected {
        let analysis = m.analysis.as_ref().unwrap_or_else(|| panic!("{} not analyzed", m.id));
        let expected = FakeTextAnalyzer::analyze_one(&m.text).sentiment.unwrap().score;
        assert_eq!(m.sentiment, Some(expected), "{}", m.id);
        assert_eq!(
            analysis["sentiment"]["score"].as_f64(),
            Some(f64::from(expected)),
            "{}",
            m.id
        );
    }
    // The PII entity (the handle) is kept without its text.
    let recall = by_id(&selected, "hackernews:41000035");
    assert!(recall.text.contains("@acmehelp"));
    let entities = recall.analysis.as_ref().unwrap()["entities"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(entities.len(), 1, "{entities:?}");
    assert_eq!(
        (
            entities[0]["kind"].as_str(),
            entities[0]["text"].as_str(),
            entities[0]["pii"].as_bool()
        ),
        (Some("handle"), Some(""), Some(true))
    );
    assert!(
        !serde_json::to_string(&selected)
            .unwrap()
            .contains("\"text\":\"@acmehelp\"")
    );
    // The passed-over mentions were not analyzed.
    for m in mentions_where(&store, &org, false).await {
        assert!(m.analysis.is_none() && m.sentiment.is_none(), "{}", m.id);
    }

    // The social index holds exactly the selected mentions, and search finds them.
    assert_eq!(social_index.count(&org).await.unwrap(), 37);
    let all_unselected: Vec<String> = expect_unselected.iter().cloned().collect();
    assert!(social_index.get(&org, &all_unselected).await.unwrap().is_empty());
    let hits = search(
        &indexes,
        &embedder,
        &org,
        &SearchRequest::new("great unit7 acme", IndexKind::Social),
    )
    .await
    .unwrap();
    let top = &hits[0];
    assert_eq!(top.id, "hackernews:41000008");
    assert_eq!(top.snippet.as_deref(), Some("great unit7 acme"));
    assert_eq!(top.metadata["platform"], "hackernews");
    assert_eq!(top.metadata["source"], "acme-hn");
    assert_eq!(top.metadata["label"], "positive");
    assert!(top.metadata["author"].as_str().unwrap().starts_with("psn_"));
    assert_eq!(indexes.get(IndexKind::Interactions).count(&org).await.unwrap(), 0);
}

// ---------------------------------------------------------------------------------------------
// 5–6. A failing source, or a missing org, is reported; the others go on.

#[tokio::test]
async fn a_failing_source_is_reported_and_does_not_block_the_others() {
    let (store, org, _) = store_with_org().await;
    let (mastodon, bluesky, broken) = (
        MockServer::start().await,
        MockServer::start().await,
        MockServer::start().await,
    );
    serve_fixtures(&mastodon, Platform::Mastodon).await;
    serve_fixtures(&bluesky, Platform::Bluesky).await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(500).set_body_string("<html>upstream exploded</html>"))
        .mount(&broken)
        .await;
    // The failing source ran before: its cursor must survive the failure.
    let before = SourceState {
        cursor: Some(r#"{"created_at_i":1714000000,"ids":["40100000"]}"#.into()),
        last_run_at: Some(NOW - 3_600_000),
        last_success_at: Some(NOW - 3_600_000),
        last_error: None,
    };
    store.set_source_state(&org, "acme-hn", &before).await.unwrap();

    let mut runner = runner(config(
        &org,
        "",
        &[
            source("acme-hn", "hackernews", &broken.uri(), "acme"),
            source("acme-mastodon", "mastodon", &mastodon.uri(), "acme"),
            source("acme-bluesky", "bluesky", &bluesky.uri(), "acme"),
        ],
    ));
    let lexicon = FakeTextAnalyzer::new();
    let started = Instant::now();
    let reports = runner.run_once(ports(&store, &lexicon), None, &now).await.unwrap();
    let elapsed = started.elapsed();
    // Retries use FetcherConfig's defaults (3 retries, 500 ms doubling, jittered): 1.75–3.5 s.
    eprintln!("the failing source's retries took {elapsed:?}");
    assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");

    let failed = report(&reports, "acme-hn");
    let error = failed.error.as_deref().unwrap();
    assert!(
        error.contains("hackernews: HTTP 500") && error.contains("upstream exploded"),
        "{error}"
    );
    assert_eq!(failed.pass.stored, 0);
    assert_eq!(received(&broken).await, 4, "one request and three retries");
    let s = state(&store, &org, "acme-hn").await;
    assert_eq!(s.last_error.as_deref(), Some(error));
    assert_eq!(s.cursor, before.cursor);
    assert_eq!(s.last_success_at, before.last_success_at);
    assert_eq!(s.last_run_at, Some(NOW));

    for name in ["acme-mastodon", "acme-bluesky"] {
        let r = report(&reports, name);
        assert_eq!(r.error, None, "{r:?}");
        assert!(r.pass.stored > 0, "{r:?}");
        let s = state(&store, &org, name).await;
        assert_eq!((s.last_success_at, s.last_error.as_deref()), (Some(NOW), None));
    }
    let stored = all_mentions(&store, &org).await;
    assert_eq!(stored.len(), 8);
    assert!(stored.iter().all(|m| m.platform != "hackernews"));

    // The next run, with the platform back, starts from the kept cursor.
    broken.reset().await;
    serve(&broken, HN_PATH, &hn_page(vec![])).await;
    let reports = runner
        .run_once(ports(&store, &lexicon), Some("acme-hn"), &|| NOW + 1)
        .await
        .unwrap();
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].error, None);
    let requests = broken.received_requests().await.unwrap();
    assert!(
        has_param(&requests[0], "numericFilters", "created_at_i>=1714000000"),
        "{}",
        requests[0].url
    );
    let s = state(&store, &org, "acme-hn").await;
    assert_eq!(
        (s.last_error, s.last_success_at, s.cursor),
        (None, Some(NOW + 1), before.cursor)
    );
}

#[tokio::test]
async fn a_run_for_an_org_that_does_not_exist_fails_clearly_without_a_request() {
    let (store, _org, _) = store_with_org().await;
    let mastodon = MockServer::start().await;
    serve_fixtures(&mastodon, Platform::Mastodon).await;
    let mut runner = runner(config(
        "org_missing",
        "",
        &[source("acme-mastodon", "mastodon", &mastodon.uri(), "acme")],
    ));
    let lexicon = FakeTextAnalyzer::new();
    let error = runner.run_once(ports(&store, &lexicon), None, &now).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "invalid social config: org \"org_missing\" does not exist"
    );
    assert!(mastodon.received_requests().await.unwrap_or_default().is_empty());
    assert!(all_mentions(&store, "org_missing").await.is_empty());
}

// ---------------------------------------------------------------------------------------------
// 7–8. Config errors.

#[tokio::test]
async fn running_an_unknown_source_names_the_known_ones() {
    let (store, org, _) = store_with_org().await;
    let server = MockServer::start().await;
    let mut runner = runner(config(
        &org,
        "",
        &[
            source("acme-hn", "hackernews", &server.uri(), "acme"),
            source("acme-mastodon", "mastodon", &server.uri(), "acme"),
        ],
    ));
    let lexicon = FakeTextAnalyzer::new();
    let err = runner
        .run_once(ports(&store, &lexicon), Some("unknown-name"), &now)
        .await
        .unwrap_err();
    let SocialError::Config(msg) = &err else {
        panic!("expected a config error, got {err:?}");
    };
    for name in ["unknown-name", "acme-hn", "acme-mastodon"] {
        assert!(msg.contains(name), "{msg}");
    }
    assert_eq!(received(&server).await, 0);
    assert!(store.source_state(&org, "acme-hn").await.unwrap().is_none());
}

#[tokio::test]
async fn loopback_source_urls_are_refused_unless_private_addresses_are_allowed() {
    let (_store, org, _) = store_with_org().await;
    let server = MockServer::start().await;
    serve_fixtures(&server, Platform::Mastodon).await;
    let port = server.address().port();
    for url in [
        server.uri(),
        format!("http://localhost:{port}"),
        format!("http://[::1]:{port}"),
    ] {
        let mut config = config(
            &org,
            "",
            &[
                source("acme-hn", "hackernews", "https://hn.algolia.com", "acme"),
                source("acme-mastodon", "mastodon", &url, "acme"),
            ],
        );
        config.allow_private_addresses = false;
        let err = Runner::new(config.clone(), |_| None).unwrap_err();
        let SocialError::Config(msg) = &err else {
            panic!("expected a config error, got {err:?}");
        };
        assert!(msg.starts_with("sources[1].url: "), "{msg}");
        assert!(msg.contains("allow_private_addresses"), "{msg}");
        // The same config with private addresses allowed is fine.
        config.allow_private_addresses = true;
        Runner::new(config, |_| None).unwrap();
    }
    assert_eq!(received(&server).await, 0);
}

// ---------------------------------------------------------------------------------------------
// Scheduled runs.

#[tokio::test]
async fn run_scheduled_runs_due_sources_on_their_schedule_until_shutdown() {
    let (store, org, _) = store_with_org().await;
    let (hn, reddit) = (MockServer::start().await, MockServer::start().await);
    let t = wall_clock();
    serve(
        &hn,
        HN_PATH,
        &hn_page(vec![hn_story(42_000_001, t - 60_000, "poster", "Acme every second")]),
    )
    .await;
    serve_fixtures(&reddit, Platform::Reddit).await;

    // An hourly schedule whose minute is half an hour away, so it cannot fire during the test;
    // the source ran a minute ago.
    let minute = (t / 60_000 + 30) % 60;
    let mut sources = vec![source("every-second", "hackernews", &hn.uri(), "acme")];
    sources.push(format!(
        "[[sources]]\nname = \"hourly\"\nplatform = \"reddit\"\nschedule = \"0 {minute} * * * *\"\n\
         url = \"{}\"\nquery = \"acme\"\n",
        reddit.uri()
    ));
    let mut config = config(&org, "", &sources);
    config.sources[0].schedule = "* * * * * *".into();
    let mut runner = runner(config);
    let hourly_state = SourceState {
        cursor: Some(r#"{"created_utc":1714000000,"name":"t3_1c00000"}"#.into()),
        last_run_at: Some(t - 60_000),
        last_success_at: Some(t - 60_000),
        last_error: None,
    };
    store.set_source_state(&org, "hourly", &hourly_state).await.unwrap();

    let lexicon = FakeTextAnalyzer::new();
    let mut runs: Vec<Vec<String>> = Vec::new();
    let started = wall_clock();
    runner
        .run_scheduled(
            ports(&store, &lexicon),
            &wall_clock,
            tokio::time::sleep(Duration::from_millis(2_500)),
            |reports| runs.push(reports.iter().map(|r| r.source.clone()).collect()),
        )
        .await
        .unwrap();

    assert!(runs.len() >= 2, "{runs:?}");
    assert!(runs.iter().all(|r| r == &["every-second"]), "{runs:?}");
    assert!(received(&hn).await >= 2);
    let s = state(&store, &org, "every-second").await;
    assert!(s.last_run_at.unwrap() > started, "{s:?}");
    assert_eq!(s.last_error, None);
    assert_eq!(all_mentions(&store, &org).await.len(), 1);

    // The hourly source ran a minute ago and its schedule has not fired since: not run.
    assert_eq!(received(&reddit).await, 0);
    assert_eq!(state(&store, &org, "hourly").await, hourly_state);
}
