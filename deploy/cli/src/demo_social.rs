//! The demo's social listening step: a local fixture server answers in each platform's own
//! format (Mastodon, Bluesky, Reddit, Hacker News, RSS) with posts about the demo shop, and
//! the real channel (adapters, fetcher, pipeline, analyze-social) runs once against it.
//!
//! The posts include what the channel must handle: a boost of a post that is also in the
//! timeline (exact duplicate), the same post cross-posted to Mastodon and Bluesky, a
//! copy-pasted spam post on two platforms, a retweet-style repost (near duplicates), and an
//! e-mail address (scrubbed before storage).

use anyhow::Result;
use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use crow_ingest::social::Platform;
use crow_ingest::social::config::{SocialConfig, SourceConfig};
use crow_ingest::social::runner::SourceReport;
use crow_server::Backends;
use serde_json::{Value, json};

/// (author, text, minutes ago)
type Post = (&'static str, &'static str, i64);

const MASTODON: [Post; 5] = [
    (
        "trailfan@mastodon.example",
        "Just did 20 km in the Trail Runner 42 and my feet feel great. Best trail shoe I have owned. #trailrunner",
        50,
    ),
    (
        "ana@fosstodon.example",
        "The Storm Jacket leaked in the first real rain. Really disappointed, it is not waterproof at all.",
        45,
    ),
    (
        "spam@mastodon.example",
        "WIN a free Trail Runner 42!!! Click the link in bio to claim your prize now",
        40,
    ),
    (
        "kim@mastodon.example",
        "Is the Summit Hiker worth it for a beginner? Any opinions?",
        35,
    ),
    (
        "leo@mastodon.example",
        "Merino Socks from the trail shop are the comfiest socks ever, buying three more pairs",
        30,
    ),
];

const BLUESKY: [Post; 4] = [
    (
        "trailfan.bsky.social",
        "Just did 20 km in the Trail Runner 42 and my feet feel great! Best trail shoe I have owned 🏃 #trailrunner #running",
        49,
    ),
    (
        "spam2.bsky.social",
        "WIN a free Trail Runner 42!!! Click the link in bio to claim your prize now https://spam.example",
        39,
    ),
    (
        "maya.bsky.social",
        "Customer service answered my question about the Day Pack 20L within an hour. Impressed. Write to me at maya.r@example.com for the details",
        25,
    ),
    (
        "tom.bsky.social",
        "The Road Racer 7 sole wore through after two months. Terrible quality for the price.",
        20,
    ),
];

const REDDIT: [Post; 3] = [
    (
        "u_hiker",
        "Summit Hiker review after 300 km: solid grip, a bit heavy, waterproofing still fine",
        60,
    ),
    (
        "u_repost",
        "RT @ana: The Storm Jacket leaked in the first real rain. Really disappointed, it is not waterproof at all.",
        15,
    ),
    (
        "u_runner",
        "Trail shop sale: Steel Bottle half price this week, grabbed two",
        10,
    ),
];

const HACKERNEWS: [Post; 2] = [
    (
        "pg_fan",
        "Show HN: I mapped every trail shop return reason; the Sun Cap is returned for sizing most often",
        90,
    ),
    (
        "dev42",
        "The trail shop checkout is surprisingly fast, nice engineering",
        12,
    ),
];

const RSS: [Post; 2] = [
    (
        "Gear Blog",
        "Review: the Trail Runner 42 is light, grippy and fairly priced, our pick of the season",
        120,
    ),
    (
        "Gear Blog",
        "Five packs compared: the Day Pack 20L wins on comfort but loses on pockets",
        80,
    ),
];

/// A JSON answer (axum's `Json` needs a feature this workspace leaves off).
fn json_answer(v: Value) -> axum::response::Response {
    ([(header::CONTENT_TYPE, "application/json")], v.to_string()).into_response()
}

fn ts(now_ms: i64, minutes_ago: i64) -> i64 {
    now_ms - minutes_ago * 60_000
}

fn iso(ms: i64) -> String {
    crow_core::time::format_millis(ms)
}

fn mastodon(base: &str, now: i64) -> Value {
    let status = |i: usize, (acct, text, ago): Post| {
        json!({
            "id": format!("{}", 113_000_000_000_000_000u64 + i as u64),
            "created_at": iso(ts(now, ago)),
            "content": format!("<p>{}</p>", text.replace('&', "&amp;").replace('<', "&lt;")),
            "url": format!("{base}/@{}/{}", acct.split('@').next().unwrap_or(acct), 113_000_000_000_000_000u64 + i as u64),
            "language": "en",
            "account": { "acct": acct },
            "favourites_count": 3 * i as u64, "reblogs_count": i as u64, "replies_count": 1,
        })
    };
    let mut list: Vec<Value> = MASTODON.iter().enumerate().map(|(i, p)| status(i, *p)).collect();
    // A boost of the first post: the same status again, an exact duplicate.
    let mut boost = status(99, ("booster@mastodon.example", "", 5));
    boost["reblog"] = status(0, MASTODON[0]);
    list.insert(0, boost);
    Value::Array(list)
}

fn bluesky(now: i64) -> Value {
    let posts: Vec<Value> = BLUESKY
        .iter()
        .enumerate()
        .map(|(i, (handle, text, ago))| {
            json!({
                "uri": format!("at://did:plc:demo{i}/app.bsky.feed.post/3kdemo{i}"),
                "cid": format!("bafydemo{i}"),
                "author": { "did": format!("did:plc:demo{i}"), "handle": handle },
                "record": { "$type": "app.bsky.feed.post", "text": text, "createdAt": iso(ts(now, *ago)), "langs": ["en"] },
                "indexedAt": iso(ts(now, *ago)),
                "likeCount": 2 * i, "repostCount": i, "replyCount": 0,
            })
        })
        .collect();
    json!({ "posts": posts })
}

fn reddit(now: i64) -> Value {
    let children: Vec<Value> = REDDIT
        .iter()
        .enumerate()
        .map(|(i, (author, text, ago))| {
            json!({ "kind": "t3", "data": {
                "name": format!("t3_demo{i}"), "id": format!("demo{i}"), "title": text, "selftext": "",
                "author": author, "permalink": format!("/r/trailrunning/comments/demo{i}/post/"),
                "created_utc": ts(now, *ago) as f64 / 1000.0, "score": 10 + i, "num_comments": i, "over_18": false,
            }})
        })
        .collect();
    json!({ "kind": "Listing", "data": { "after": null, "children": children } })
}

fn hackernews(now: i64) -> Value {
    let hits: Vec<Value> = HACKERNEWS
        .iter()
        .enumerate()
        .map(|(i, (author, text, ago))| {
            json!({
                "objectID": format!("4200000{i}"), "created_at_i": ts(now, *ago) / 1000,
                "created_at": iso(ts(now, *ago)), "author": author, "title": text, "url": null,
                "points": 20 + i, "num_comments": 3, "_tags": ["story"],
            })
        })
        .collect();
    json!({ "hits": hits, "page": 0, "nbPages": 1, "hitsPerPage": 100, "nbHits": HACKERNEWS.len() })
}

fn rss(base: &str, now: i64) -> String {
    let items: String = RSS
        .iter()
        .enumerate()
        .map(|(i, (author, text, ago))| {
            let date = chrono::DateTime::from_timestamp_millis(ts(now, *ago))
                .map(|d| d.to_rfc2822())
                .unwrap_or_default();
            format!(
                "<item><title>{text}</title><link>{base}/blog/{i}</link><guid>{base}/blog/{i}</guid>\
                 <author>{author}</author><pubDate>{date}</pubDate><description>{text}</description></item>"
            )
        })
        .collect();
    format!(
        "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>Gear Blog</title>\
         <link>{base}/blog</link><description>Outdoor gear reviews</description>{items}</channel></rss>"
    )
}

/// Serves the fixtures on 127.0.0.1 (a free port); returns its base URL.
async fn fixture_server(now: i64) -> Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let b = base.clone();
    let app = Router::new()
        .route(
            "/api/v1/timelines/tag/{tag}",
            get(move || async move { json_answer(mastodon(&b, now)) }),
        )
        .route(
            "/xrpc/app.bsky.feed.searchPosts",
            get(move || async move { json_answer(bluesky(now)) }),
        )
        .route("/search.json", get(move || async move { json_answer(reddit(now)) }))
        .route(
            "/api/v1/search_by_date",
            get(move || async move { json_answer(hackernews(now)) }),
        );
    let b = base.clone();
    let app = app.route(
        "/feed.xml",
        get(move || async move { ([(header::CONTENT_TYPE, "application/rss+xml")], rss(&b, now)).into_response() }),
    );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(base)
}

/// Runs the social channel once for `org` against the fixture server.
pub async fn run(b: &Backends, org: &str, now: i64) -> Result<Vec<SourceReport>> {
    let base = fixture_server(now).await?;
    let source = |name: &str, platform: Platform, query: &str, url: String| SourceConfig {
        name: name.into(),
        platform,
        schedule: "@hourly".into(),
        query: (!query.is_empty()).then(|| query.to_owned()),
        url: Some(url),
        mode: None,
        auth_token_env: None,
        rate_limit: None,
        enabled: true,
    };
    let mut config: SocialConfig = toml::from_str(&format!("org = {org:?}\nallow_private_addresses = true"))?;
    // Only clear opinions go on to the model tier (the default also sends every mention that
    // names a catalog product).
    config.prefilter.products = false;
    config.sources = vec![
        source("mastodon-trail", Platform::Mastodon, "trailrunner", base.clone()),
        source("bluesky-trail", Platform::Bluesky, "trail shop", base.clone()),
        source("reddit-trail", Platform::Reddit, "trail shop", base.clone()),
        source("hn-trail", Platform::HackerNews, "trail shop", base.clone()),
        source("gear-blog", Platform::Rss, "", format!("{base}/feed.xml")),
    ];
    let (reports, _) = crate::social::run_once(b, config, None).await?;
    Ok(reports)
}
