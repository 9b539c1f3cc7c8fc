//! Reddit: site-wide search, `GET /search.json?q=…&sort=new&limit=100&raw_json=1`
//! (<https://www.reddit.com/dev/api/#GET_search>).
//!
//! The answer is a `Listing`: `{"kind": "Listing", "data": {"after", "children": [{"kind":
//! "t3", "data": {…}}]}}`, newest first; the next page repeats the request with
//! `after={data.after}`. `raw_json=1` makes Reddit send `title` and `selftext` without HTML
//! entity escaping.
//!
//! Unauthenticated, the base URL is `https://www.reddit.com` and Reddit allows about 10
//! requests a minute per IP. With an OAuth bearer token ([`RedditSource::new`]'s `token`,
//! e.g. from the application-only `client_credentials` grant) use `https://oauth.reddit.com`
//! (100 requests a minute per client). Reddit wants a descriptive `User-Agent`
//! (`<platform>:<app id>:<version> (by /u/<username>)`) and throttles or blocks generic ones:
//! the runner sets it (`fetch::FetcherConfig::user_agent`, feature `social-http`).
//!
//! The stored cursor is JSON, `{"created_utc": <seconds>, "name": "t3_…"}`, the newest post seen;
//! a run stops at the first post at or older than it (ordered by `created_utc`, then by the
//! base-36 id, which Reddit assigns in order).
//!
//! NSFW posts (`over_18`) are skipped unless [`RedditSource::include_nsfw`] is set: they are
//! rarely about a brand, and analysts should not meet them by surprise. Posts by `[deleted]`
//! have no author. Reddit reports no language.
//!
//! Each post maps to a [`RawMention`]: `name` (the `t3_` fullname) as the id, `author`,
//! `title` and `selftext` (markdown) as the text, `https://www.reddit.com{permalink}`,
//! `created_utc`, and `score`, `num_comments`.
//!
//! ```
//! use crow_ingest::social::reddit::RedditSource;
//! use crow_ingest::social::{FetchResponse, SocialSource};
//!
//! let source = RedditSource::new("https://www.reddit.com", "acme", None);
//! let req = source.first_request(None).unwrap();
//! assert_eq!(
//!     req.url,
//!     "https://www.reddit.com/search.json?q=acme&sort=new&limit=100&raw_json=1&type=link"
//! );
//! let body = r#"{"kind":"Listing","data":{"after":null,"children":[{"kind":"t3","data":{"name":"t3_1abc","id":"1abc","title":"Acme & me","selftext":"works","author":"ann","permalink":"/r/acme/comments/1abc/acme_me/","created_utc":1714557600.0,"score":5,"num_comments":2,"over_18":false}}]}}"#;
//! let page = source
//!     .parse(&FetchResponse { status: 200, headers: vec![], body: body.into() }, None)
//!     .unwrap();
//! let m = &page.mentions[0];
//! assert_eq!(m.text, "Acme & me\n\nworks");
//! assert_eq!(m.posted_at, 1_714_557_600_000);
//! assert_eq!(m.engagement.score, Some(5));
//! ```

// Shared with the other adapters.
use super::adapter_util as util;

use crow_core::model::Engagement;
use serde::{Deserialize, Serialize};

use super::{FetchRequest, FetchResponse, Platform, RawMention, SocialError, SocialSource, SourcePage};

/// The most posts Reddit returns per page.
pub const MAX_LIMIT: u32 = 100;

/// A Reddit search source.
#[derive(Debug, Clone)]
pub struct RedditSource {
    base_url: String,
    query: String,
    token: Option<String>,
    limit: u32,
    include_nsfw: bool,
}

impl RedditSource {
    /// A search for `query` on `base_url` (`https://www.reddit.com`, or
    /// `https://oauth.reddit.com` with an OAuth bearer `token`).
    pub fn new(base_url: impl Into<String>, query: impl Into<String>, token: Option<String>) -> Self {
        RedditSource {
            base_url: base_url.into(),
            query: query.into().trim().to_string(),
            token,
            limit: MAX_LIMIT,
            include_nsfw: false,
        }
    }

    /// Posts per page (1..=100; default 100).
    pub fn with_limit(mut self, limit: u32) -> Self {
        self.limit = limit.clamp(1, MAX_LIMIT);
        self
    }

    /// Keep posts marked NSFW (`over_18`); they are skipped by default.
    pub fn include_nsfw(mut self, include: bool) -> Self {
        self.include_nsfw = include;
        self
    }

    fn request(&self, after: Option<&str>) -> Result<FetchRequest, SocialError> {
        let base = util::base_url(Platform::Reddit, &self.base_url)?;
        if self.query.is_empty() {
            return Err(SocialError::Config("reddit: empty query".into()));
        }
        let limit = self.limit.to_string();
        let mut pairs = vec![
            ("q", self.query.as_str()),
            ("sort", "new"),
            ("limit", &limit),
            ("raw_json", "1"),
            ("type", "link"),
        ];
        if let Some(a) = after {
            pairs.push(("after", a));
        }
        let mut req = FetchRequest::get(format!("{base}/search.json?{}", util::query_string(&pairs)));
        req.headers.push(("accept".into(), "application/json".into()));
        if let Some(t) = &self.token {
            req.headers.push(("authorization".into(), format!("Bearer {t}")));
        }
        Ok(req)
    }
}

/// The stored cursor: the newest post seen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Cursor {
    created_utc: i64,
    name: String,
}

impl Cursor {
    fn load(s: Option<&str>) -> Result<Option<Cursor>, SocialError> {
        match s.map(str::trim).filter(|s| !s.is_empty()) {
            None => Ok(None),
            Some(s) => serde_json::from_str(s)
                .map(Some)
                .map_err(|e| SocialError::Config(format!("reddit: bad cursor {s:?}: {e}"))),
        }
    }

    /// `(created_utc, base-36 id)`: the order Reddit's `sort=new` follows.
    fn key(&self) -> (i64, u64) {
        (self.created_utc, id36(&self.name))
    }
}

/// The number in a fullname (`t3_1abc` → 0x…), 0 when it is not base 36.
fn id36(name: &str) -> u64 {
    let id = name.split_once('_').map_or(name, |(_, id)| id);
    u64::from_str_radix(id, 36).unwrap_or(0)
}

#[derive(Debug, Deserialize)]
struct Listing {
    kind: String,
    data: ListingData,
}

#[derive(Debug, Deserialize)]
struct ListingData {
    #[serde(default)]
    after: Option<String>,
    children: Vec<Thing>,
}

#[derive(Debug, Deserialize)]
struct Thing {
    kind: String,
    data: serde_json::Value,
}

#[derive(Debug, Deserialize)]
struct Link {
    name: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    selftext: String,
    #[serde(default)]
    author: Option<String>,
    permalink: String,
    created_utc: f64,
    #[serde(default)]
    score: Option<i64>,
    #[serde(default)]
    num_comments: Option<u64>,
    #[serde(default)]
    over_18: bool,
}

impl Link {
    fn to_mention(&self) -> RawMention {
        let mut text = self.title.trim().to_string();
        let body = self.selftext.trim();
        if !body.is_empty() {
            text.push_str("\n\n");
            text.push_str(body);
        }
        let author = self
            .author
            .as_deref()
            .map(str::trim)
            .filter(|a| !a.is_empty() && *a != "[deleted]" && *a != "[removed]")
            .map(str::to_string);
        RawMention {
            platform_id: self.name.clone(),
            author,
            text,
            url: Some(format!("https://www.reddit.com{}", self.permalink)),
            language: None,
            posted_at: (self.created_utc * 1000.0).round() as i64,
            engagement: Engagement {
                likes: None,
                reposts: None,
                replies: self.num_comments,
                score: self.score,
            },
        }
    }
}

impl SocialSource for RedditSource {
    fn platform(&self) -> Platform {
        Platform::Reddit
    }

    fn first_request(&self, cursor: Option<&str>) -> Result<FetchRequest, SocialError> {
        Cursor::load(cursor)?;
        self.request(None)
    }

    fn parse(&self, response: &FetchResponse, cursor: Option<&str>) -> Result<SourcePage, SocialError> {
        let stored = Cursor::load(cursor)?;
        let listing: Listing = util::parse_json(Platform::Reddit, &response.body)?;
        if listing.kind != "Listing" {
            return Err(util::malformed(
                Platform::Reddit,
                format!("kind is {:?}, not \"Listing\"", listing.kind),
            ));
        }
        util::check_count(Platform::Reddit, "data.children", listing.data.children.len())?;
        let mut mentions = Vec::new();
        let mut reached_cursor = false;
        let mut newest = stored.clone();
        for (i, thing) in listing.data.children.iter().enumerate() {
            if thing.kind != "t3" {
                continue;
            }
            let link: Link = serde_json::from_value(thing.data.clone())
                .map_err(|e| util::malformed(Platform::Reddit, format!("data.children[{i}].data: {e}")))?;
            if !link.created_utc.is_finite() || !link.permalink.starts_with('/') {
                return Err(util::malformed(
                    Platform::Reddit,
                    format!("data.children[{i}].data: bad created_utc or permalink"),
                ));
            }
            let here = Cursor {
                created_utc: link.created_utc.floor() as i64,
                name: link.name.clone(),
            };
            if let Some(c) = &stored
                && here.key() <= c.key()
            {
                reached_cursor = true;
                continue;
            }
            if newest.as_ref().is_none_or(|n| here.key() > n.key()) {
                newest = Some(here);
            }
            if link.over_18 && !self.include_nsfw {
                continue;
            }
            mentions.push(link.to_mention());
        }
        let next = match listing.data.after.as_deref().map(str::trim) {
            Some(after) if !after.is_empty() && !reached_cursor && !listing.data.children.is_empty() => {
                Some(self.request(Some(after))?)
            }
            _ => None,
        };
        Ok(SourcePage {
            mentions,
            next,
            cursor: newest.map(|c| serde_json::to_string(&c).unwrap_or_default()),
        })
    }
}
