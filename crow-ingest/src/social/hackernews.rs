//! Hacker News: the Algolia search API, `GET /api/v1/search_by_date`
//! (<https://hn.algolia.com/api>).
//!
//! The request is `?query=…&tags=(story,comment)&hitsPerPage=100[&numericFilters=created_at_i>=N]
//! [&page=P]`; the answer is `{"hits": […], "page", "nbPages", "hitsPerPage", …}`, newest first.
//! The next page is the same request with `page + 1`, while `page + 1 < nbPages`. Algolia
//! allows about 10 000 requests an hour per IP.
//!
//! The stored cursor is JSON, `{"created_at_i": <seconds>, "ids": ["<objectID>", …]}`: the newest
//! creation time seen and the items seen in that second. A run asks only for items at or after
//! it (`numericFilters=created_at_i>=N`) and drops the ones it has seen, so items created in the
//! same second as the last run's newest are not lost.
//!
//! Each hit maps to a [`RawMention`]: `objectID` as the id, `author`, the text (a comment's
//! `comment_text`, a story's `title` and `story_text`, HTML stripped and entities decoded),
//! `https://news.ycombinator.com/item?id={objectID}`, `created_at_i`, and `points` (score) and
//! `num_comments` (replies). Hacker News reports no language.
//!
//! ```
//! use crow_ingest::social::hackernews::HackerNewsSource;
//! use crow_ingest::social::{FetchResponse, SocialSource};
//!
//! let source = HackerNewsSource::new("https://hn.algolia.com", "acme");
//! let req = source.first_request(None).unwrap();
//! assert_eq!(
//!     req.url,
//!     "https://hn.algolia.com/api/v1/search_by_date?query=acme&tags=%28story%2Ccomment%29&hitsPerPage=100"
//! );
//! let body = r#"{"hits":[{"objectID":"40000001","created_at_i":1714557600,"author":"pg","comment_text":"<p>Acme&#x27;s API is &quot;fine&quot;","story_title":"Show HN: Acme","_tags":["comment","author_pg","story_40000000"]}],"page":0,"nbPages":1,"hitsPerPage":100}"#;
//! let page = source
//!     .parse(&FetchResponse { status: 200, headers: vec![], body: body.into() }, None)
//!     .unwrap();
//! let m = &page.mentions[0];
//! assert_eq!(m.text, "Acme's API is \"fine\"");
//! assert_eq!(m.url.as_deref(), Some("https://news.ycombinator.com/item?id=40000001"));
//! ```

// Shared with the other adapters.
use super::adapter_util as util;

use crow_core::model::Engagement;
use serde::{Deserialize, Serialize};

use super::{FetchRequest, FetchResponse, Platform, RawMention, SocialError, SocialSource, SourcePage};

/// The most hits we ask for per page (Algolia allows up to 1000; 100 keeps answers small).
pub const MAX_LIMIT: u32 = 100;

/// A Hacker News search source.
#[derive(Debug, Clone)]
pub struct HackerNewsSource {
    base_url: String,
    query: String,
    tags: String,
    limit: u32,
}

impl HackerNewsSource {
    /// A search for `query` among stories and comments on `base_url`
    /// (`https://hn.algolia.com`).
    pub fn new(base_url: impl Into<String>, query: impl Into<String>) -> Self {
        HackerNewsSource {
            base_url: base_url.into(),
            query: query.into().trim().to_string(),
            tags: "(story,comment)".into(),
            limit: MAX_LIMIT,
        }
    }

    /// Algolia `tags` filter (default `(story,comment)`; e.g. `story`, `(story,show_hn)`).
    pub fn with_tags(mut self, tags: impl Into<String>) -> Self {
        self.tags = tags.into();
        self
    }

    /// Hits per page (1..=100; default 100).
    pub fn with_limit(mut self, limit: u32) -> Self {
        self.limit = limit.clamp(1, MAX_LIMIT);
        self
    }

    fn request(&self, cursor: Option<&Cursor>, page: u32) -> Result<FetchRequest, SocialError> {
        let base = util::base_url(Platform::HackerNews, &self.base_url)?;
        if self.query.is_empty() {
            return Err(SocialError::Config("hackernews: empty query".into()));
        }
        let limit = self.limit.to_string();
        let filter = cursor.map(|c| format!("created_at_i>={}", c.created_at_i));
        let page = page.to_string();
        let mut pairs = vec![("query", self.query.as_str())];
        if !self.tags.is_empty() {
            pairs.push(("tags", &self.tags));
        }
        pairs.push(("hitsPerPage", &limit));
        if let Some(f) = &filter {
            pairs.push(("numericFilters", f));
        }
        if page != "0" {
            pairs.push(("page", &page));
        }
        let mut req = FetchRequest::get(format!("{base}/api/v1/search_by_date?{}", util::query_string(&pairs)));
        req.headers.push(("accept".into(), "application/json".into()));
        Ok(req)
    }
}

/// The stored cursor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Cursor {
    created_at_i: i64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    ids: Vec<String>,
}

impl Cursor {
    fn load(s: Option<&str>) -> Result<Option<Cursor>, SocialError> {
        match s.map(str::trim).filter(|s| !s.is_empty()) {
            None => Ok(None),
            Some(s) => serde_json::from_str(s)
                .map(Some)
                .map_err(|e| SocialError::Config(format!("hackernews: bad cursor {s:?}: {e}"))),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Answer {
    hits: Vec<Hit>,
    page: u32,
    nb_pages: u32,
}

#[derive(Debug, Deserialize)]
struct Hit {
    #[serde(rename = "objectID")]
    object_id: String,
    created_at_i: i64,
    #[serde(default)]
    author: Option<String>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    story_title: Option<String>,
    #[serde(default)]
    story_text: Option<String>,
    #[serde(default)]
    comment_text: Option<String>,
    #[serde(default)]
    points: Option<i64>,
    #[serde(default)]
    num_comments: Option<u64>,
    #[serde(default, rename = "_tags")]
    tags: Vec<String>,
}

impl Hit {
    fn to_mention(&self) -> RawMention {
        let is_comment = self.comment_text.is_some() || self.tags.iter().any(|t| t == "comment");
        let text = if is_comment {
            util::html_to_text(self.comment_text.as_deref().unwrap_or_default())
        } else {
            let title = self
                .title
                .as_deref()
                .or(self.story_title.as_deref())
                .map(util::decode_entities)
                .unwrap_or_default();
            let body = util::html_to_text(self.story_text.as_deref().unwrap_or_default());
            match (title.trim(), body.as_str()) {
                (t, "") => t.to_string(),
                ("", b) => b.to_string(),
                (t, b) => format!("{t}\n\n{b}"),
            }
        };
        RawMention {
            platform_id: self.object_id.clone(),
            author: self.author.clone().filter(|a| !a.is_empty()),
            text,
            url: Some(format!("https://news.ycombinator.com/item?id={}", self.object_id)),
            language: None,
            posted_at: self.created_at_i.saturating_mul(1000),
            engagement: Engagement {
                likes: None,
                reposts: None,
                replies: self.num_comments,
                score: self.points,
            },
        }
    }
}

impl SocialSource for HackerNewsSource {
    fn platform(&self) -> Platform {
        Platform::HackerNews
    }

    fn first_request(&self, cursor: Option<&str>) -> Result<FetchRequest, SocialError> {
        self.request(Cursor::load(cursor)?.as_ref(), 0)
    }

    fn parse(&self, response: &FetchResponse, cursor: Option<&str>) -> Result<SourcePage, SocialError> {
        let stored = Cursor::load(cursor)?;
        let answer: Answer = util::parse_json(Platform::HackerNews, &response.body)?;
        util::check_count(Platform::HackerNews, "hits", answer.hits.len())?;
        let mut mentions = Vec::with_capacity(answer.hits.len());
        let mut reached_cursor = false;
        let mut newest = stored.clone();
        for (i, hit) in answer.hits.iter().enumerate() {
            if hit.object_id.is_empty() || !hit.object_id.bytes().all(|b| b.is_ascii_digit()) {
                return Err(util::malformed(
                    Platform::HackerNews,
                    format!("hits[{i}].objectID {:?} is not an item id", hit.object_id),
                ));
            }
            if let Some(c) = &stored
                && (hit.created_at_i < c.created_at_i
                    || (hit.created_at_i == c.created_at_i && c.ids.contains(&hit.object_id)))
            {
                reached_cursor = true;
                continue;
            }
            match &mut newest {
                Some(n) if n.created_at_i == hit.created_at_i => {
                    if !n.ids.contains(&hit.object_id) {
                        n.ids.push(hit.object_id.clone());
                    }
                }
                Some(n) if n.created_at_i > hit.created_at_i => {}
                _ => {
                    newest = Some(Cursor {
                        created_at_i: hit.created_at_i,
                        ids: vec![hit.object_id.clone()],
                    })
                }
            }
            mentions.push(hit.to_mention());
        }
        let next = if !reached_cursor && !answer.hits.is_empty() && answer.page + 1 < answer.nb_pages {
            Some(self.request(stored.as_ref(), answer.page + 1)?)
        } else {
            None
        };
        Ok(SourcePage {
            mentions,
            next,
            cursor: newest.map(|mut c| {
                c.ids.truncate(200);
                serde_json::to_string(&c).unwrap_or_default()
            }),
        })
    }
}
