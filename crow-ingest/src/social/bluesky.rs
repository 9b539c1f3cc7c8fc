//! Bluesky: full-text post search, `GET /xrpc/app.bsky.feed.searchPosts`
//! (<https://docs.bsky.app/docs/api/app-bsky-feed-search-posts>).
//!
//! The request is `?q=…&limit=100&sort=latest[&since=…][&cursor=…]`; the answer is
//! `{"cursor"?, "hitsTotal"?, "posts": [PostView]}`, newest first by `sortAt` (the earlier of a
//! post's `createdAt` and `indexedAt`), and the next page repeats the request with the answer's
//! `cursor`.
//!
//! The stored cursor is JSON, `{"since": "<RFC 3339>", "uris": ["<16 hex>"]}`: the newest
//! `sortAt` seen and the posts seen at that instant, as 64-bit hashes of their URIs (a URI
//! names its author's DID, which the store must not keep). A run sends `since` (which the API applies
//! inclusively) and drops the posts at or before it that it has already seen, so it returns
//! only what is new.
//!
//! Access: `public.api.bsky.app` (the default) has at times refused unauthenticated
//! `searchPosts` with a 403, and never pages past the first answer without a session
//! (bluesky-social/atproto#3423, bluesky-social/bsky-docs#296). With an access token from
//! `com.atproto.server.createSession`, use `https://api.bsky.app` and
//! [`BlueskySource::with_token`].
//!
//! Each post maps to a [`RawMention`]: `uri` as the id, `author.handle`, `record.text`,
//! `https://bsky.app/profile/{handle}/post/{rkey}` as the permalink (the DID stands in for a
//! `handle.invalid`), the first of `record.langs`, `record.createdAt` (`indexedAt` when it is
//! missing or unreadable), and `likeCount`, `repostCount`, `replyCount`.
//!
//! ```
//! use crow_ingest::social::bluesky::BlueskySource;
//! use crow_ingest::social::{FetchResponse, SocialSource};
//!
//! let source = BlueskySource::new("https://public.api.bsky.app", "acme");
//! let req = source.first_request(None).unwrap();
//! assert_eq!(
//!     req.url,
//!     "https://public.api.bsky.app/xrpc/app.bsky.feed.searchPosts?q=acme&limit=100&sort=latest"
//! );
//! let body = r#"{"posts":[{"uri":"at://did:plc:abc/app.bsky.feed.post/3kq2","cid":"bafy1","author":{"did":"did:plc:abc","handle":"ann.bsky.social"},"record":{"$type":"app.bsky.feed.post","text":"acme rocks 🚀","createdAt":"2024-05-01T10:00:00.000Z","langs":["en"]},"likeCount":2,"indexedAt":"2024-05-01T10:00:01.000Z"}]}"#;
//! let page = source
//!     .parse(&FetchResponse { status: 200, headers: vec![], body: body.into() }, None)
//!     .unwrap();
//! let m = &page.mentions[0];
//! assert_eq!(m.url.as_deref(), Some("https://bsky.app/profile/ann.bsky.social/post/3kq2"));
//! assert_eq!(m.engagement.likes, Some(2));
//! assert!(page.cursor.unwrap().contains("2024-05-01T10:00:00.000Z"));
//! ```

// Shared with the other adapters.
use super::adapter_util as util;

use crow_core::model::{Engagement, Millis};
use serde::{Deserialize, Serialize};

use super::{FetchRequest, FetchResponse, Platform, RawMention, SocialError, SocialSource, SourcePage};

/// The most posts `searchPosts` returns per page.
pub const MAX_LIMIT: u32 = 100;

/// The public AppView.
pub const DEFAULT_BASE_URL: &str = "https://public.api.bsky.app";

/// A Bluesky search source.
#[derive(Debug, Clone)]
pub struct BlueskySource {
    base_url: String,
    query: String,
    token: Option<String>,
    limit: u32,
}

impl BlueskySource {
    /// A search for `query` (Lucene-like syntax: words, `"phrases"`, `from:`, `#tags`) on the
    /// AppView at `base_url` ([`DEFAULT_BASE_URL`]).
    pub fn new(base_url: impl Into<String>, query: impl Into<String>) -> Self {
        BlueskySource {
            base_url: base_url.into(),
            query: query.into().trim().to_string(),
            token: None,
            limit: MAX_LIMIT,
        }
    }

    /// Sends `Authorization: Bearer {token}` (a session access JWT).
    pub fn with_token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Posts per page (1..=100; default 100).
    pub fn with_limit(mut self, limit: u32) -> Self {
        self.limit = limit.clamp(1, MAX_LIMIT);
        self
    }

    fn request(&self, cursor: &Cursor, page: Option<&str>) -> Result<FetchRequest, SocialError> {
        let base = util::base_url(Platform::Bluesky, &self.base_url)?;
        if self.query.is_empty() {
            return Err(SocialError::Config("bluesky: empty query".into()));
        }
        let limit = self.limit.to_string();
        let mut pairs = vec![("q", self.query.as_str()), ("limit", &limit), ("sort", "latest")];
        if let Some(since) = &cursor.since {
            pairs.push(("since", since));
        }
        if let Some(p) = page {
            pairs.push(("cursor", p));
        }
        let mut req = FetchRequest::get(format!(
            "{base}/xrpc/app.bsky.feed.searchPosts?{}",
            util::query_string(&pairs)
        ));
        req.headers.push(("accept".into(), "application/json".into()));
        if let Some(t) = &self.token {
            req.headers.push(("authorization".into(), format!("Bearer {t}")));
        }
        Ok(req)
    }
}

/// The stored cursor.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Cursor {
    /// Newest `sortAt` seen, RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    since: Option<String>,
    /// Posts seen at exactly `since`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    uris: Vec<String>,
}

impl Cursor {
    fn load(s: Option<&str>) -> Result<(Cursor, Option<Millis>), SocialError> {
        let Some(s) = s.map(str::trim).filter(|s| !s.is_empty()) else {
            return Ok((Cursor::default(), None));
        };
        let c: Cursor =
            serde_json::from_str(s).map_err(|e| SocialError::Config(format!("bluesky: bad cursor {s:?}: {e}")))?;
        let ms = match &c.since {
            Some(t) => Some(
                util::parse_time_ms(t).ok_or_else(|| SocialError::Config(format!("bluesky: bad cursor time {t:?}")))?,
            ),
            None => None,
        };
        Ok((c, ms))
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SearchAnswer {
    #[serde(default)]
    cursor: Option<String>,
    posts: Vec<PostView>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PostView {
    uri: String,
    #[allow(dead_code)]
    cid: String,
    author: Author,
    record: Record,
    #[serde(default)]
    indexed_at: Option<String>,
    #[serde(default)]
    like_count: Option<u64>,
    #[serde(default)]
    repost_count: Option<u64>,
    #[serde(default)]
    reply_count: Option<u64>,
}

#[derive(Debug, Deserialize)]
struct Author {
    did: String,
    handle: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Record {
    #[serde(default)]
    text: String,
    #[serde(default)]
    created_at: Option<String>,
    #[serde(default)]
    langs: Vec<String>,
}

impl PostView {
    /// `(posted_at, sort_at)` in ms.
    fn times(&self) -> Result<(Millis, Millis), SocialError> {
        let created = self.record.created_at.as_deref().and_then(util::parse_time_ms);
        let indexed = self.indexed_at.as_deref().and_then(util::parse_time_ms);
        match (created, indexed) {
            (Some(c), Some(i)) => Ok((c, c.min(i))),
            (Some(t), None) | (None, Some(t)) => Ok((t, t)),
            (None, None) => Err(util::malformed(
                Platform::Bluesky,
                format!(
                    "post {}: neither record.createdAt nor indexedAt is a timestamp",
                    self.uri
                ),
            )),
        }
    }

    fn to_mention(&self, posted_at: Millis) -> Result<RawMention, SocialError> {
        // at://{did}/app.bsky.feed.post/{rkey}
        let rkey = self
            .uri
            .strip_prefix("at://")
            .and_then(|rest| rest.split_once("/app.bsky.feed.post/"))
            .map(|(_, rkey)| rkey)
            .filter(|rkey| !rkey.is_empty() && !rkey.contains('/'))
            .ok_or_else(|| {
                util::malformed(
                    Platform::Bluesky,
                    format!("posts[].uri {:?} is not at://…/app.bsky.feed.post/…", self.uri),
                )
            })?;
        let handle = self.author.handle.trim();
        let profile = if handle.is_empty() || handle == "handle.invalid" {
            self.author.did.as_str()
        } else {
            handle
        };
        Ok(RawMention {
            platform_id: self.uri.clone(),
            author: Some(profile.to_string()),
            text: self.record.text.trim().to_string(),
            url: Some(format!(
                "https://bsky.app/profile/{}/post/{}",
                util::path_segment(profile),
                util::path_segment(rkey)
            )),
            language: self.record.langs.first().and_then(|l| util::language(l)),
            posted_at,
            engagement: Engagement {
                likes: self.like_count,
                reposts: self.repost_count,
                replies: self.reply_count,
                score: None,
            },
        })
    }
}

impl SocialSource for BlueskySource {
    fn platform(&self) -> Platform {
        Platform::Bluesky
    }

    fn first_request(&self, cursor: Option<&str>) -> Result<FetchRequest, SocialError> {
        let (cursor, _) = Cursor::load(cursor)?;
        self.request(&cursor, None)
    }

    fn parse(&self, response: &FetchResponse, cursor: Option<&str>) -> Result<SourcePage, SocialError> {
        let (stored, stored_ms) = Cursor::load(cursor)?;
        let answer: SearchAnswer = util::parse_json(Platform::Bluesky, &response.body)?;
        util::check_count(Platform::Bluesky, "posts", answer.posts.len())?;
        let mut mentions = Vec::with_capacity(answer.posts.len());
        let mut reached_cursor = false;
        let mut newest: Option<(Millis, Vec<String>)> = stored_ms.map(|ms| (ms, stored.uris.clone()));
        for post in &answer.posts {
            let (posted_at, sort_at) = post.times()?;
            if let Some(since) = stored_ms
                && (sort_at < since || (sort_at == since && stored.uris.contains(&uri_key(&post.uri))))
            {
                reached_cursor = true;
                continue;
            }
            mentions.push(post.to_mention(posted_at)?);
            match &mut newest {
                Some((ms, uris)) if *ms == sort_at => {
                    let key = uri_key(&post.uri);
                    if !uris.contains(&key) {
                        uris.push(key);
                    }
                }
                Some((ms, _)) if *ms > sort_at => {}
                _ => newest = Some((sort_at, vec![uri_key(&post.uri)])),
            }
        }
        let next = match answer.cursor.as_deref().map(str::trim) {
            Some(c) if !c.is_empty() && !reached_cursor && !answer.posts.is_empty() => {
                Some(self.request(&stored, Some(c))?)
            }
            _ => None,
        };
        let cursor = newest.map(|(ms, uris)| {
            // Keep the cursor small: the posts at one instant are few, but cap them anyway.
            let uris = uris.into_iter().take(200).collect();
            let c = Cursor {
                since: Some(util::format_time_ms(ms)),
                uris,
            };
            serde_json::to_string(&c).unwrap_or_default()
        });
        Ok(SourcePage { mentions, next, cursor })
    }
}

/// A post's URI as it is kept in the cursor: 16 hex digits of a 64-bit hash.
fn uri_key(uri: &str) -> String {
    format!("{:016x}", super::simhash::hash64(uri.as_bytes()))
}
