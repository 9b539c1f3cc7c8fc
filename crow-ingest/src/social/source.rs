//! The [`SocialSource`] trait every adapter implements, and the plain request and answer types
//! it works with.
//!
//! An adapter is sans-IO. For one configured source (a query on one platform):
//! 1. [`SocialSource::first_request`] builds the first request of a run from the stored cursor;
//! 2. whoever does the I/O makes it, and hands a 2xx answer to [`SocialSource::parse`], which
//!    returns the posts, the next page's request (or `None` when the run has reached what the
//!    cursor says was already seen, or the last page) and the cursor to store once the run is
//!    over;
//! 3. repeat 2 with `next` until it is `None` or the runner's page cap is reached.
//!
//! Non-2xx answers (429, 5xx, HTML error pages) are the runner's business: it retries or
//! reports them; `parse` only ever sees 2xx answers, and refuses anything that is not the
//! platform's documented format with [`SocialError::Malformed`](super::SocialError::Malformed).

use std::fmt;

use crow_core::model::{Engagement, Millis};
use serde::{Deserialize, Serialize};

use super::SocialError;

/// The platforms CROW has adapters for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    /// RSS 0.9x/2.0, Atom 1.0 and JSON Feed, through feed-rs.
    Rss,
    /// Mastodon (any instance): public tag timeline and search.
    Mastodon,
    /// Bluesky: `app.bsky.feed.searchPosts`.
    Bluesky,
    /// Reddit: public search JSON.
    Reddit,
    /// Hacker News: the Algolia search API.
    HackerNews,
}

impl Platform {
    /// Every platform, in documentation order.
    pub const ALL: [Platform; 5] = [
        Platform::Rss,
        Platform::Mastodon,
        Platform::Bluesky,
        Platform::Reddit,
        Platform::HackerNews,
    ];

    /// The name used in configs, ids (`platform:platform_id`) and the store.
    pub fn as_str(self) -> &'static str {
        match self {
            Platform::Rss => "rss",
            Platform::Mastodon => "mastodon",
            Platform::Bluesky => "bluesky",
            Platform::Reddit => "reddit",
            Platform::HackerNews => "hackernews",
        }
    }

    /// Parses [`as_str`](Self::as_str)'s names.
    pub fn parse(name: &str) -> Option<Platform> {
        Platform::ALL.into_iter().find(|p| p.as_str() == name)
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A GET request an adapter wants made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchRequest {
    /// Absolute http(s) URL, query string included.
    pub url: String,
    /// Extra headers (lowercase names), e.g. `accept`, `if-none-match`, `authorization`.
    pub headers: Vec<(String, String)>,
}

impl FetchRequest {
    /// A request for `url` with no extra header.
    pub fn get(url: impl Into<String>) -> Self {
        FetchRequest {
            url: url.into(),
            headers: Vec::new(),
        }
    }
}

/// An answer, as the runner received it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FetchResponse {
    /// Status code.
    pub status: u16,
    /// Headers with lowercase names.
    pub headers: Vec<(String, String)>,
    /// The body, decompressed.
    pub body: Vec<u8>,
}

impl FetchResponse {
    /// First header value with this (lowercase) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A post as the platform gave it, before privacy, dedupe and scoring.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawMention {
    /// The platform's id for the post (unique on the platform).
    pub platform_id: String,
    /// The author's handle as the platform shows it (pseudonymized by the pipeline).
    pub author: Option<String>,
    /// The post's text as plain text (HTML stripped, entities decoded).
    pub text: String,
    /// Permalink.
    pub url: Option<String>,
    /// Language the platform reports, if any (ISO 639-1).
    pub language: Option<String>,
    /// When it was published (ms since the epoch).
    pub posted_at: Millis,
    /// Likes, reposts, replies, score.
    pub engagement: Engagement,
}

/// What one answer held.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SourcePage {
    /// The posts on this page that are new (after the cursor), newest first.
    pub mentions: Vec<RawMention>,
    /// The next page's request; `None` when the run is done.
    pub next: Option<FetchRequest>,
    /// The cursor to store when the run ends (the newest position seen so far in this run;
    /// the runner keeps the one from the first page that returns one).
    pub cursor: Option<String>,
}

/// One configured source of mentions: a query (or feed) on one platform.
pub trait SocialSource: Send + Sync {
    /// The platform.
    fn platform(&self) -> Platform;
    /// The first request of a run; `cursor` is what the previous run stored (`None` at first).
    fn first_request(&self, cursor: Option<&str>) -> Result<FetchRequest, SocialError>;
    /// Parses a 2xx answer to a request of this run.
    fn parse(&self, response: &FetchResponse, cursor: Option<&str>) -> Result<SourcePage, SocialError>;
}

/// What one run of one source produced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunOutput {
    /// New posts, deduplicated by `platform_id`, in page order (newest first).
    pub mentions: Vec<RawMention>,
    /// The cursor to store for the next run (the stored one when nothing moved it).
    pub cursor: Option<String>,
    /// Answers parsed.
    pub pages: u32,
    /// HTTP requests made, retries included.
    pub requests: u32,
    /// The server answered `304 Not Modified`: nothing new, the cursor is the stored one.
    pub not_modified: bool,
}

/// Sends a source's requests: the native fetcher (rate limits, retries, the address guard) or the
/// Worker's `fetch`.
#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
pub trait PageGetter: crow_core::ports::MaybeSend {
    /// Makes one request, counting each HTTP request it sends (retries included) in `requests`.
    async fn get(&self, request: &FetchRequest, requests: &mut u32) -> Result<FetchResponse, SocialError>;
}

/// Runs a source through its pages: the first request from `cursor`, then each page's `next`,
/// up to `max_pages` answers; posts are deduplicated by `platform_id`, in page order. An error
/// of `getter` ends the run; a `304 Not Modified` ends it too. The cursor to store is the first
/// page's, else the stored one. The native fetcher and the Worker's both run this.
pub async fn run_pages(
    source: &dyn SocialSource,
    cursor: Option<&str>,
    max_pages: u32,
    getter: &dyn PageGetter,
) -> Result<RunOutput, SocialError> {
    let mut out = RunOutput::default();
    let mut seen = std::collections::HashSet::new();
    let mut request = source.first_request(cursor)?;
    loop {
        let response = getter.get(&request, &mut out.requests).await?;
        if response.status == 304 {
            out.not_modified = out.pages == 0;
            break;
        }
        let page = source.parse(&response, cursor)?;
        out.pages += 1;
        if out.cursor.is_none() {
            out.cursor = page.cursor;
        }
        out.mentions
            .extend(page.mentions.into_iter().filter(|m| seen.insert(m.platform_id.clone())));
        match page.next {
            Some(next) if out.pages < max_pages => request = next,
            Some(_) => {
                tracing::debug!(platform = %source.platform(), pages = out.pages, "social run stopped at the page cap");
                break;
            }
            None => break,
        }
    }
    if out.cursor.is_none() {
        out.cursor = cursor.map(str::to_string);
    }
    Ok(out)
}
