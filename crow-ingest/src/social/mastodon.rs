//! Mastodon (any instance): the public hashtag timeline, or status search.
//!
//! - [`MastodonMode::Tag`]: `GET /api/v1/timelines/tag/{tag}?limit=40&since_id={cursor}`
//!   (<https://docs.joinmastodon.org/methods/timelines/#tag>). Public on most instances; some
//!   (with `timeline_preview` off or "authorized fetch" setups) want a token.
//! - [`MastodonMode::Search`]: `GET /api/v2/search?q=…&type=statuses&limit=40&min_id={cursor}`
//!   (<https://docs.joinmastodon.org/methods/search/#v2>). Full-text status search needs an
//!   access token ([`MastodonSource::with_token`]) on nearly every instance: without one the
//!   answer holds no statuses (or a 401), and even with one Mastodon only searches posts the
//!   account has interacted with, plus (4.2+) posts of accounts that opted into search.
//!
//! Pages are newest first. The next page is the same request with `max_id` set to the oldest
//! id on the page, which is what the `Link: <…>; rel="next"` header carries; it is asked for
//! only while pages come back full (`limit` statuses). The cursor is the newest status id seen
//! (a plain string); the next run asks only for statuses after it (`since_id` for the tag
//! timeline, `min_id` for search, which Mastodon applies as an id range filter) and drops any
//! at or before it.
//!
//! Each status maps to a [`RawMention`]: the id, `account.acct` (a local account's handle gets
//! `@instance` appended, so handles are the same from every instance), `content` as plain text
//! (HTML stripped, entities decoded; a content warning `spoiler_text` goes first), `url` (or
//! `uri`), `language`, `created_at`, and `favourites_count`, `reblogs_count`,
//! `replies_count`. A boost (`reblog` set) maps to the boosted status, while the page position
//! and cursor stay on the boost's own id.
//!
//! ```
//! use crow_ingest::social::mastodon::{MastodonMode, MastodonSource};
//! use crow_ingest::social::{FetchResponse, SocialSource};
//!
//! let source = MastodonSource::new("https://mastodon.example", MastodonMode::Tag("acme".into()));
//! let req = source.first_request(None).unwrap();
//! assert_eq!(req.url, "https://mastodon.example/api/v1/timelines/tag/acme?limit=40");
//!
//! let body = r#"[{"id":"110","created_at":"2024-05-01T10:00:00.000Z","content":"<p>I love <a href=\"https://mastodon.example/tags/acme\" class=\"mention hashtag\">#<span>acme</span></a> &amp; co</p>","url":"https://mastodon.example/@ann/110","language":"en","account":{"id":"1","acct":"ann"},"favourites_count":3,"reblogs_count":1,"replies_count":0,"reblog":null}]"#;
//! let page = source
//!     .parse(&FetchResponse { status: 200, headers: vec![], body: body.into() }, None)
//!     .unwrap();
//! let m = &page.mentions[0];
//! assert_eq!(m.text, "I love #acme & co");
//! assert_eq!(m.author.as_deref(), Some("ann@mastodon.example"));
//! assert_eq!(page.cursor.as_deref(), Some("110"));
//! assert!(page.next.is_none()); // 1 status < limit: the last page
//! ```

// Shared with the other adapters.
use super::adapter_util as util;

use std::cmp::Ordering;

use crow_core::model::Engagement;
use serde::Deserialize;

use super::{FetchRequest, FetchResponse, Platform, RawMention, SocialError, SocialSource, SourcePage};

/// The most statuses Mastodon returns per page.
pub const MAX_LIMIT: u32 = 40;

/// What a [`MastodonSource`] follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MastodonMode {
    /// The public timeline of a hashtag (without the `#`).
    Tag(String),
    /// Full-text status search (needs a token on most instances).
    Search(String),
}

/// A Mastodon source: one instance, one tag or query.
#[derive(Debug, Clone)]
pub struct MastodonSource {
    base_url: String,
    mode: MastodonMode,
    token: Option<String>,
    limit: u32,
}

impl MastodonSource {
    /// A source on the instance at `instance_base_url` (e.g. `https://mastodon.social`). The
    /// URL is checked by [`first_request`](SocialSource::first_request).
    pub fn new(instance_base_url: impl Into<String>, mode: MastodonMode) -> Self {
        let mode = match mode {
            MastodonMode::Tag(t) => MastodonMode::Tag(t.trim().trim_start_matches('#').to_string()),
            MastodonMode::Search(q) => MastodonMode::Search(q.trim().to_string()),
        };
        MastodonSource {
            base_url: instance_base_url.into(),
            mode,
            token: None,
            limit: MAX_LIMIT,
        }
    }

    /// Sends `Authorization: Bearer {token}` (an app or user access token with `read:search`
    /// / `read:statuses`).
    pub fn with_token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Statuses per page (1..=40; default 40).
    pub fn with_limit(mut self, limit: u32) -> Self {
        self.limit = limit.clamp(1, MAX_LIMIT);
        self
    }

    /// What this source follows.
    pub fn mode(&self) -> &MastodonMode {
        &self.mode
    }

    fn request(&self, cursor: Option<&str>, max_id: Option<&str>) -> Result<FetchRequest, SocialError> {
        let base = util::base_url(Platform::Mastodon, &self.base_url)?;
        let limit = self.limit.to_string();
        let mut pairs: Vec<(&str, &str)> = Vec::new();
        let path = match &self.mode {
            MastodonMode::Tag(tag) => {
                if tag.is_empty() {
                    return Err(SocialError::Config("mastodon: empty tag".into()));
                }
                pairs.push(("limit", &limit));
                if let Some(c) = cursor {
                    pairs.push(("since_id", c));
                }
                format!("/api/v1/timelines/tag/{}", util::path_segment(tag))
            }
            MastodonMode::Search(q) => {
                if q.is_empty() {
                    return Err(SocialError::Config("mastodon: empty search query".into()));
                }
                pairs.extend([("q", q.as_str()), ("type", "statuses"), ("limit", &limit)]);
                if let Some(c) = cursor {
                    pairs.push(("min_id", c));
                }
                "/api/v2/search".to_string()
            }
        };
        if let Some(m) = max_id {
            pairs.push(("max_id", m));
        }
        let mut req = FetchRequest::get(format!("{base}{path}?{}", util::query_string(&pairs)));
        req.headers.push(("accept".into(), "application/json".into()));
        if let Some(t) = &self.token {
            req.headers.push(("authorization".into(), format!("Bearer {t}")));
        }
        Ok(req)
    }
}

/// Orders Mastodon ids: numeric snowflakes (Mastodon) compare by length then text; fixed-length
/// flake ids (Pleroma, Akkoma) by text.
fn cmp_id(a: &str, b: &str) -> Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

fn check_cursor(cursor: Option<&str>) -> Result<Option<&str>, SocialError> {
    match cursor.map(str::trim) {
        None | Some("") => Ok(None),
        Some(c) if c.len() <= 64 && c.bytes().all(|b| b.is_ascii_alphanumeric()) => Ok(Some(c)),
        Some(c) => Err(SocialError::Config(format!(
            "mastodon: bad cursor {c:?} (want a status id)"
        ))),
    }
}

#[derive(Debug, Deserialize)]
struct Status {
    id: String,
    created_at: String,
    #[serde(default)]
    content: String,
    #[serde(default)]
    spoiler_text: Option<String>,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    uri: Option<String>,
    #[serde(default)]
    language: Option<String>,
    account: Account,
    #[serde(default)]
    favourites_count: Option<u64>,
    #[serde(default)]
    reblogs_count: Option<u64>,
    #[serde(default)]
    replies_count: Option<u64>,
    #[serde(default)]
    reblog: Option<Box<Status>>,
}

#[derive(Debug, Deserialize)]
struct Account {
    acct: String,
}

#[derive(Debug, Deserialize)]
struct SearchResults {
    statuses: Vec<Status>,
}

impl MastodonSource {
    fn to_mention(&self, s: &Status) -> Result<RawMention, SocialError> {
        let posted_at = util::parse_time_ms(&s.created_at).ok_or_else(|| {
            util::malformed(
                Platform::Mastodon,
                format!("status {}: created_at {:?} is not a timestamp", s.id, s.created_at),
            )
        })?;
        let mut text = util::html_to_text(&s.content);
        if let Some(cw) = s.spoiler_text.as_deref().map(str::trim).filter(|c| !c.is_empty()) {
            text = format!("{}\n\n{text}", util::decode_entities(cw));
        }
        let acct = s.account.acct.trim();
        let author = if acct.is_empty() {
            None
        } else if acct.contains('@') {
            Some(acct.to_string())
        } else {
            let host = util::host_of(&self.base_url).unwrap_or_default();
            Some(format!("{acct}@{}", host.split(':').next().unwrap_or(host)))
        };
        Ok(RawMention {
            platform_id: s.id.clone(),
            author,
            text: text.trim().to_string(),
            url: s.url.clone().or_else(|| s.uri.clone()),
            language: s.language.as_deref().and_then(util::language),
            posted_at,
            engagement: Engagement {
                likes: s.favourites_count,
                reposts: s.reblogs_count,
                replies: s.replies_count,
                score: None,
            },
        })
    }
}

impl SocialSource for MastodonSource {
    fn platform(&self) -> Platform {
        Platform::Mastodon
    }

    fn first_request(&self, cursor: Option<&str>) -> Result<FetchRequest, SocialError> {
        self.request(check_cursor(cursor)?, None)
    }

    fn parse(&self, response: &FetchResponse, cursor: Option<&str>) -> Result<SourcePage, SocialError> {
        let cursor = check_cursor(cursor)?;
        let statuses: Vec<Status> = match self.mode {
            MastodonMode::Tag(_) => util::parse_json(Platform::Mastodon, &response.body)?,
            MastodonMode::Search(_) => util::parse_json::<SearchResults>(Platform::Mastodon, &response.body)?.statuses,
        };
        util::check_count(Platform::Mastodon, "statuses", statuses.len())?;
        let mut mentions = Vec::with_capacity(statuses.len());
        let mut reached_cursor = false;
        let mut newest: Option<&str> = cursor;
        let mut oldest: Option<&str> = None;
        for s in &statuses {
            if s.id.is_empty() {
                return Err(util::malformed(Platform::Mastodon, "status with an empty id"));
            }
            if newest.is_none_or(|n| cmp_id(&s.id, n) == Ordering::Greater) {
                newest = Some(&s.id);
            }
            if oldest.is_none_or(|o| cmp_id(&s.id, o) == Ordering::Less) {
                oldest = Some(&s.id);
            }
            if cursor.is_some_and(|c| cmp_id(&s.id, c) != Ordering::Greater) {
                reached_cursor = true;
                continue;
            }
            let shown = s.reblog.as_deref().unwrap_or(s);
            mentions.push(self.to_mention(shown)?);
        }
        let full = statuses.len() >= self.limit as usize;
        let next = match oldest {
            Some(oldest) if full && !reached_cursor => Some(self.request(cursor, Some(oldest))?),
            _ => None,
        };
        Ok(SourcePage {
            mentions,
            next,
            cursor: newest.map(str::to_string),
        })
    }
}
