//! RSS 0.9x, RSS 1.0 (RDF), RSS 2.0, Atom 1.0 and JSON Feed 1.x, parsed by
//! [feed-rs](https://docs.rs/feed-rs/3).
//!
//! One source is one feed URL, with an optional query: when set, only entries whose title or
//! text contain it (case-insensitive) are kept.
//!
//! The stored cursor is JSON:
//! `{"etag", "last_modified", "seen": <newest entry ms>, "ids": [entry ids, newest first]}`.
//! - [`first_request`](SocialSource::first_request) sends `If-None-Match` / `If-Modified-Since`
//!   from it, so an unchanged feed costs a `304 Not Modified` and no body. `parse` only ever sees
//!   2xx answers: the runner treats a 304 as "nothing new" and keeps the stored cursor
//!   (`fetch::RunOutput::not_modified`, feature `social-http`).
//! - A feed is a window of its latest entries, with no way to ask for "entries after X". So the
//!   cursor keeps the ids of the entries seen (up to [`MAX_SEEN_IDS`], the current feed's first,
//!   then older ones), and an entry is new when its id is not among them. When the list had to be
//!   cut, `floor` (the oldest dated entry kept) stops entries older than that from coming back.
//! - A feed has one page: `next` is always `None`.
//!
//! Each entry maps to a [`RawMention`]: the id (the entry's `id`/`guid` when it is a URL or URN,
//! else its link, else `{feed url}#{id}`, so ids from different feeds never collide), the first
//! author's name, the title and the summary (or, without one, the content) as plain text (HTML
//! stripped, entities decoded), the first link, the entry's or the feed's language, and
//! `published` (or `updated`; for an undated entry, the answer's `Last-Modified` or `Date`).
//! Feeds carry no engagement counts.
//!
//! ```
//! use crow_ingest::social::rss::RssSource;
//! use crow_ingest::social::{FetchResponse, SocialSource};
//!
//! let source = RssSource::new("https://blog.example/feed.xml", Some("acme".into()));
//! let feed = r#"<?xml version="1.0"?><rss version="2.0"><channel><title>Blog</title><link>https://blog.example/</link><description>d</description>
//!   <item><title>Acme launch</title><link>https://blog.example/acme</link><description>&lt;p&gt;We &lt;b&gt;love&lt;/b&gt; it&lt;/p&gt;</description><pubDate>Wed, 01 May 2024 10:00:00 GMT</pubDate></item>
//!   <item><title>Other news</title><link>https://blog.example/other</link><pubDate>Tue, 30 Apr 2024 10:00:00 GMT</pubDate></item>
//! </channel></rss>"#;
//! let resp = FetchResponse {
//!     status: 200,
//!     headers: vec![("etag".into(), "\"v1\"".into())],
//!     body: feed.into(),
//! };
//! let page = source.parse(&resp, None).unwrap();
//! assert_eq!(page.mentions.len(), 1); // "Other news" does not mention acme
//! assert_eq!(page.mentions[0].text, "Acme launch\n\nWe love it");
//! // The next run asks the server whether the feed changed.
//! let next = source.first_request(page.cursor.as_deref()).unwrap();
//! assert!(next.headers.contains(&("if-none-match".into(), "\"v1\"".into())));
//! ```

// Shared with the other adapters.
use super::adapter_util as util;

use std::collections::HashSet;

use chrono::DateTime;
use crow_core::model::{Engagement, Millis};
use serde::{Deserialize, Serialize};

use super::{FetchRequest, FetchResponse, Platform, RawMention, SocialError, SocialSource, SourcePage};

/// The most entry ids a cursor keeps.
pub const MAX_SEEN_IDS: usize = 500;

/// The most entries read from one feed (the newest, by date).
pub const MAX_ENTRIES: usize = 1000;

const ACCEPT: &str = "application/rss+xml, application/atom+xml, application/feed+json, \
                      application/json;q=0.9, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.1";

/// An RSS/Atom/JSON Feed source.
#[derive(Debug, Clone)]
pub struct RssSource {
    feed_url: String,
    query: Option<String>,
}

impl RssSource {
    /// The feed at `feed_url`; with `query_filter`, only entries that contain it
    /// (case-insensitive) are kept.
    pub fn new(feed_url: impl Into<String>, query_filter: Option<String>) -> Self {
        RssSource {
            feed_url: feed_url.into().trim().to_string(),
            query: query_filter.map(|q| q.trim().to_lowercase()).filter(|q| !q.is_empty()),
        }
    }

    /// The feed's URL.
    pub fn feed_url(&self) -> &str {
        &self.feed_url
    }
}

/// The stored cursor.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Cursor {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    etag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_modified: Option<String>,
    /// The newest entry's time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    seen: Option<Millis>,
    /// Set when `ids` was cut: the oldest dated entry kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    floor: Option<Millis>,
    #[serde(default)]
    ids: Vec<String>,
}

impl Cursor {
    fn load(s: Option<&str>) -> Result<Cursor, SocialError> {
        match s.map(str::trim).filter(|s| !s.is_empty()) {
            None => Ok(Cursor::default()),
            Some(s) => serde_json::from_str(s).map_err(|e| SocialError::Config(format!("rss: bad cursor {s:?}: {e}"))),
        }
    }
}

fn check_feed_url(url: &str) -> Result<(), SocialError> {
    let ok = util::host_of(url).is_some() && !url.contains(char::is_whitespace);
    if ok {
        Ok(())
    } else {
        Err(SocialError::Config(format!(
            "rss: feed URL {url:?} is not an http(s) URL"
        )))
    }
}

fn is_markup(media_type: &impl ToString) -> bool {
    media_type.to_string().contains("html")
}

fn text_of(t: &feed_rs::model::Text) -> String {
    if is_markup(&t.content_type) {
        util::html_to_text(&t.content)
    } else {
        // Plain text, though titles and descriptions are often escaped twice.
        util::decode_entities(t.content.trim()).trim().to_string()
    }
}

/// An HTTP date (`Last-Modified`, `Date`) in ms.
fn http_date_ms(s: &str) -> Option<Millis> {
    DateTime::parse_from_rfc2822(s.trim())
        .ok()
        .map(|t| t.timestamp_millis())
}

struct Item {
    id: String,
    mention: RawMention,
    dated: bool,
    keep: bool,
}

impl SocialSource for RssSource {
    fn platform(&self) -> Platform {
        Platform::Rss
    }

    fn first_request(&self, cursor: Option<&str>) -> Result<FetchRequest, SocialError> {
        check_feed_url(&self.feed_url)?;
        let cursor = Cursor::load(cursor)?;
        let mut req = FetchRequest::get(self.feed_url.clone());
        req.headers.push(("accept".into(), ACCEPT.into()));
        if let Some(etag) = &cursor.etag {
            req.headers.push(("if-none-match".into(), etag.clone()));
        }
        if let Some(lm) = &cursor.last_modified {
            req.headers.push(("if-modified-since".into(), lm.clone()));
        }
        Ok(req)
    }

    fn parse(&self, response: &FetchResponse, cursor: Option<&str>) -> Result<SourcePage, SocialError> {
        let stored = Cursor::load(cursor)?;
        util::check_body(Platform::Rss, &response.body)?;
        let feed = feed_rs::parser::Builder::new()
            .base_uri(Some(&self.feed_url))
            .build()
            .parse(response.body.as_slice())
            .map_err(|e| {
                util::malformed(
                    Platform::Rss,
                    format!("not an RSS, Atom or JSON feed ({e}): {}", util::snippet(&response.body)),
                )
            })?;
        let fallback_time = response
            .header("last-modified")
            .and_then(http_date_ms)
            .or_else(|| response.header("date").and_then(http_date_ms))
            .unwrap_or(0);
        let feed_language = feed.language.as_deref().and_then(util::language);

        let mut items: Vec<Item> = Vec::new();
        let mut ids_here = HashSet::new();
        for entry in feed.entries {
            let link = entry.links.first().map(|l| l.href.trim().to_string());
            let raw_id = entry.id.trim();
            let id = if raw_id.contains(':') {
                raw_id.to_string()
            } else if let Some(link) = link.as_ref().filter(|l| !l.is_empty()) {
                link.clone()
            } else if !raw_id.is_empty() {
                format!("{}#{raw_id}", self.feed_url)
            } else {
                continue;
            };
            if !ids_here.insert(id.clone()) {
                continue;
            }
            let title = entry.title.as_ref().map(text_of).unwrap_or_default();
            let body = match (&entry.summary, &entry.content) {
                (Some(s), _) if !s.content.trim().is_empty() => text_of(s),
                (_, Some(c)) => match &c.body {
                    Some(b) if is_markup(&c.content_type) => util::html_to_text(b),
                    Some(b) => util::decode_entities(b.trim()),
                    None => String::new(),
                },
                _ => String::new(),
            };
            let text = match (title.is_empty(), body.is_empty()) {
                (false, false) => format!("{title}\n\n{body}"),
                (false, true) => title,
                (true, _) => body,
            };
            let when = entry.published.or(entry.updated).map(|t| t.timestamp_millis());
            let keep = self
                .query
                .as_ref()
                .is_none_or(|q| text.to_lowercase().contains(q.as_str()));
            let author = entry
                .authors
                .first()
                .and_then(|p| p.name.as_deref())
                .map(|n| n.trim().to_string())
                .filter(|n| !n.is_empty());
            items.push(Item {
                id: id.clone(),
                dated: when.is_some(),
                keep,
                mention: RawMention {
                    platform_id: id,
                    author,
                    text,
                    url: link.filter(|l| !l.is_empty()),
                    language: entry
                        .language
                        .as_deref()
                        .and_then(util::language)
                        .or_else(|| feed_language.clone()),
                    posted_at: when.unwrap_or(fallback_time),
                    engagement: Engagement::default(),
                },
            });
        }
        // Newest first (a stable sort keeps the feed's order among equals and undated entries).
        items.sort_by_key(|i| std::cmp::Reverse(i.mention.posted_at));
        items.truncate(MAX_ENTRIES);

        let seen: HashSet<&str> = stored.ids.iter().map(String::as_str).collect();
        let mut mentions = Vec::new();
        for item in &items {
            let old = seen.contains(item.id.as_str())
                || (item.dated && stored.floor.is_some_and(|f| item.mention.posted_at < f));
            if !old && item.keep {
                mentions.push(item.mention.clone());
            }
        }

        // The new cursor: this feed's ids, then the older ones still remembered.
        let mut ids: Vec<String> = items.iter().map(|i| i.id.clone()).collect();
        let here: HashSet<&str> = ids_here.iter().map(String::as_str).collect();
        let older: Vec<String> = stored
            .ids
            .iter()
            .filter(|id| !here.contains(id.as_str()))
            .cloned()
            .collect();
        ids.extend(older);
        let mut floor = stored.floor;
        if ids.len() > MAX_SEEN_IDS {
            ids.truncate(MAX_SEEN_IDS);
            let kept_min = items
                .iter()
                .filter(|i| i.dated)
                .take(MAX_SEEN_IDS)
                .map(|i| i.mention.posted_at)
                .min();
            floor = floor.max(kept_min);
        }
        let newest = items.iter().filter(|i| i.dated).map(|i| i.mention.posted_at).max();
        let cursor = Cursor {
            etag: response.header("etag").map(str::to_string),
            last_modified: response.header("last-modified").map(str::to_string),
            seen: stored.seen.max(newest),
            floor,
            ids,
        };
        Ok(SourcePage {
            mentions,
            next: None,
            cursor: Some(serde_json::to_string(&cursor).unwrap_or_default()),
        })
    }
}
