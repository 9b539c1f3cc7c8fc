//! The `social.toml` file: which sources to poll, when, how fast, and which mentions to
//! analyze.
//!
//! The structs deserialize with serde from any format (the CLI reads TOML; unknown keys are
//! errors), and [`SocialConfig::validate`] checks what serde cannot, with messages that name
//! the field: `sources[2].schedule: ...`. A commented example is `examples/social.toml`.
//!
//! ```toml
//! org = "acme"
//!
//! [prefilter]
//! keywords = ["refund", "recall"]
//!
//! [[sources]]
//! name = "acme-bluesky"
//! platform = "bluesky"
//! schedule = "*/15 * * * *"   # standard 5-field cron, UTC
//! query = "\"Acme Buds\""
//! ```
//!
//! # Sources
//!
//! Each `[[sources]]` entry is one query on one platform. `url` is the base URL to ask, with a
//! default per platform ([`default_base_url`]):
//!
//! | platform     | `query`                            | `url` (default)                          |
//! |--------------|------------------------------------|------------------------------------------|
//! | `rss`        | optional: keep entries containing it | the feed URL (required)                |
//! | `mastodon`   | a hashtag (`mode = "tag"`, default) or search terms (`mode = "search"`) | the instance, `https://mastodon.social` |
//! | `bluesky`    | search terms (`searchPosts` syntax) | `https://public.api.bsky.app`           |
//! | `reddit`     | search terms                       | `https://www.reddit.com`                 |
//! | `hackernews` | search terms                       | `https://hn.algolia.com`                 |
//!
//! A token (Reddit OAuth, a Mastodon access token for search) is never written in the file:
//! `auth_token_env` names the environment variable that holds it.
//!
//! # Example
//!
//! ```
//! use crow_ingest::social::Platform;
//! use crow_ingest::social::config::{SocialConfig, default_rate_limit};
//!
//! let config: SocialConfig = serde_json::from_value(serde_json::json!({
//!     "org": "acme",
//!     "sources": [
//!         {"name": "acme-hn", "platform": "hackernews", "schedule": "0 * * * *", "query": "Acme"},
//!         {"name": "acme-reddit", "platform": "reddit", "schedule": "*/30 * * * *",
//!          "query": "Acme Buds", "auth_token_env": "REDDIT_TOKEN"}
//!     ]
//! }))
//! .unwrap();
//! config.validate().unwrap();
//! assert_eq!(config.timeout_secs, 20);
//! assert_eq!(config.sources[0].base_url(), Some("https://hn.algolia.com"));
//! assert_eq!(config.sources[1].rate_limit(), default_rate_limit(Platform::Reddit, true));
//!
//! let mut broken = config.clone();
//! broken.sources[1].schedule = "every hour".into();
//! assert_eq!(
//!     broken.validate().unwrap_err().to_string(),
//!     "invalid social config: sources[1].schedule: \"every hour\" has 2 fields; expected 5 \
//!      (minute hour day-of-month month day-of-week), 6 or 7 (seconds first, an optional year \
//!      last), or a shorthand such as @hourly"
//! );
//! ```

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::pipeline::PipelineConfig;
use super::prefilter::PrefilterRules;
use super::schedule::{self, Schedule};
use super::{Platform, SocialError, SocialSource};

/// The default instance for Mastodon sources.
pub const DEFAULT_MASTODON_URL: &str = "https://mastodon.social";
/// The default Bluesky AppView (public, unauthenticated).
pub const DEFAULT_BLUESKY_URL: &str = "https://public.api.bsky.app";
/// The default Reddit host.
pub const DEFAULT_REDDIT_URL: &str = "https://www.reddit.com";
/// The default Hacker News search API (Algolia).
pub const DEFAULT_HACKERNEWS_URL: &str = "https://hn.algolia.com";

/// The longest query accepted (Reddit caps `q` at 512 characters).
pub const MAX_QUERY_CHARS: usize = 512;

/// The social channel's configuration (`social.toml`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SocialConfig {
    /// The org the mentions belong to.
    pub org: String,
    /// Allow URLs that point to loopback, private or link-local addresses (a feed on the
    /// local network). Default false: such URLs are refused, here for literal addresses and
    /// by the runner after DNS resolution.
    #[serde(default)]
    pub allow_private_addresses: bool,
    /// Timeout of one HTTP request, in seconds (1..=300). Default 20.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
    /// The most pages fetched per source and run (1..=100). Default 5.
    #[serde(default = "default_max_pages")]
    pub max_pages: u32,
    /// The `User-Agent` header; default: CROW's own, with its version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// Which mentions go on to `analyze-social`.
    #[serde(default)]
    pub prefilter: PrefilterRules,
    /// Near-duplicate threshold: the largest Hamming distance between SimHashes that counts
    /// as the same post (0..=3). Default 3.
    #[serde(default = "default_near_duplicate_distance")]
    pub near_duplicate_distance: u32,
    /// How far back a stored mention counts as an original for near-duplicates, in days
    /// (1..=365). Default 30.
    #[serde(default = "default_near_duplicate_window_days")]
    pub near_duplicate_window_days: u32,
    /// The sources (`[[sources]]`), at least one.
    #[serde(default)]
    pub sources: Vec<SourceConfig>,
}

fn default_timeout_secs() -> u64 {
    20
}
fn default_max_pages() -> u32 {
    5
}
fn default_near_duplicate_distance() -> u32 {
    3
}
fn default_near_duplicate_window_days() -> u32 {
    30
}
fn yes() -> bool {
    true
}

/// One source: a query (or feed) on one platform, on a schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// Unique name: lowercase letters, digits, `-` and `_` (at most 64). Stored with each
    /// mention and with the source's cursor, so renaming a source starts it afresh.
    pub name: String,
    /// The platform: `rss`, `mastodon`, `bluesky`, `reddit` or `hackernews`.
    pub platform: Platform,
    /// When to poll, in UTC: a standard 5-field cron expression (`*/15 * * * *`), a 6–7
    /// field one with seconds first, or `@hourly`-style shorthand (see
    /// the [`schedule`] module).
    pub schedule: String,
    /// What to search for (see the module docs per platform). Required except for `rss`,
    /// where it filters the feed's entries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// The base URL to ask; the feed URL for `rss` (required there). Default per platform:
    /// [`default_base_url`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Mastodon only: follow a hashtag's public timeline (`tag`, the default) or run a
    /// full-text search (`search`, which most instances answer only with a token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<SourceMode>,
    /// The name of the environment variable holding the access token (Reddit OAuth, a
    /// Mastodon token); never the token itself. Uppercase letters, digits and `_`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_token_env: Option<String>,
    /// Overrides the platform's default rate ([`default_rate_limit`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimit>,
    /// False to keep the source in the file without polling it. Default true.
    #[serde(default = "yes")]
    pub enabled: bool,
}

/// What a Mastodon source follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceMode {
    /// The public timeline of a hashtag (`query` is the tag, with or without `#`).
    Tag,
    /// Full-text search (`query` is the search terms).
    Search,
}

/// A request rate: `requests` per `per_secs` seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Requests allowed per period (at least 1).
    pub requests: u32,
    /// The period, in seconds (1..=86400).
    pub per_secs: u64,
}

/// The documented rate limit of a platform's public API (what CROW stays under by default;
/// a runner may keep some headroom below it).
pub fn default_rate_limit(platform: Platform, authenticated: bool) -> RateLimit {
    let (requests, per_secs) = match platform {
        // No platform limit: one request per 10 s per feed is polite to a feed's host (feeds
        // change rarely, and the runner sends If-None-Match / If-Modified-Since).
        Platform::Rss => (1, 10),
        // Mastodon: 300 requests per 5 minutes per account (or per IP when
        // unauthenticated), docs.joinmastodon.org/api/rate-limits.
        Platform::Mastodon => (300, 300),
        // Bluesky: 3,000 requests per 5 minutes per IP for the public API,
        // docs.bsky.app/docs/advanced-guides/rate-limits.
        Platform::Bluesky => (3000, 300),
        // Reddit Data API: 100 queries per minute per OAuth client, 10 per minute without
        // OAuth (support.reddithelp.com, "Data API Wiki").
        Platform::Reddit if authenticated => (100, 60),
        Platform::Reddit => (10, 60),
        // Hacker News search: 10,000 requests per hour per IP, hn.algolia.com/api.
        Platform::HackerNews => (10_000, 3600),
    };
    RateLimit { requests, per_secs }
}

/// The base URL a platform's sources ask by default (`None` for `rss`: the feed URL is
/// required).
pub fn default_base_url(platform: Platform) -> Option<&'static str> {
    match platform {
        Platform::Rss => None,
        Platform::Mastodon => Some(DEFAULT_MASTODON_URL),
        Platform::Bluesky => Some(DEFAULT_BLUESKY_URL),
        Platform::Reddit => Some(DEFAULT_REDDIT_URL),
        Platform::HackerNews => Some(DEFAULT_HACKERNEWS_URL),
    }
}

impl SourceConfig {
    /// The URL to ask: `url`, or the platform's default.
    pub fn base_url(&self) -> Option<&str> {
        self.url.as_deref().or(default_base_url(self.platform))
    }

    /// The Mastodon mode (`tag` when not set).
    pub fn mode(&self) -> SourceMode {
        self.mode.unwrap_or(SourceMode::Tag)
    }

    /// The rate to keep: `rate_limit`, or the platform's default (authenticated when
    /// `auth_token_env` is set).
    pub fn rate_limit(&self) -> RateLimit {
        self.rate_limit
            .unwrap_or_else(|| default_rate_limit(self.platform, self.auth_token_env.is_some()))
    }

    /// The parsed schedule.
    pub fn parsed_schedule(&self) -> Result<Schedule, SocialError> {
        Schedule::parse(&self.schedule)
    }

    /// The token, read with `lookup` (e.g. `|name| std::env::var(name).ok()`, or a Worker's
    /// secret binding) from the variable `auth_token_env` names; `None` when there is no
    /// such setting or the variable is unset or blank.
    pub fn auth_token(&self, lookup: impl FnOnce(&str) -> Option<String>) -> Option<String> {
        let name = self.auth_token_env.as_deref()?;
        lookup(name).filter(|t| !t.trim().is_empty())
    }
}

impl SocialConfig {
    /// Checks everything serde does not; the error names the first bad field.
    pub fn validate(&self) -> Result<(), SocialError> {
        let fail = |field: &str, msg: String| Err(SocialError::Config(format!("{field}: {msg}")));
        if self.org.trim().is_empty() {
            return fail("org", "must not be empty".into());
        }
        if !(1..=300).contains(&self.timeout_secs) {
            return fail("timeout_secs", format!("must be 1..=300 (got {})", self.timeout_secs));
        }
        if !(1..=100).contains(&self.max_pages) {
            return fail("max_pages", format!("must be 1..=100 (got {})", self.max_pages));
        }
        if let Some(ua) = &self.user_agent
            && (ua.trim().is_empty() || ua.chars().any(char::is_control))
        {
            return fail(
                "user_agent",
                "must be a non-empty header value without control characters".into(),
            );
        }
        self.prefilter.validate("prefilter")?;
        if self.near_duplicate_distance > 3 {
            return fail(
                "near_duplicate_distance",
                format!(
                    "must be at most 3 (got {}): SimHash is tuned for 3",
                    self.near_duplicate_distance
                ),
            );
        }
        if !(1..=365).contains(&self.near_duplicate_window_days) {
            return fail(
                "near_duplicate_window_days",
                format!("must be 1..=365 (got {})", self.near_duplicate_window_days),
            );
        }
        if self.sources.is_empty() {
            return fail("sources", "at least one [[sources]] entry is needed".into());
        }
        let mut names: HashMap<&str, usize> = HashMap::new();
        for (i, source) in self.sources.iter().enumerate() {
            let at = format!("sources[{i}]");
            if let Some(first) = names.insert(source.name.as_str(), i) {
                return fail(
                    &format!("{at}.name"),
                    format!("{:?} is already the name of sources[{first}]", source.name),
                );
            }
            if let Err((field, msg)) = source.check(self.allow_private_addresses) {
                return fail(&format!("{at}.{field}"), msg);
            }
        }
        Ok(())
    }

    /// The sources with `enabled = true`.
    pub fn enabled_sources(&self) -> impl Iterator<Item = &SourceConfig> {
        self.sources.iter().filter(|s| s.enabled)
    }

    /// A source by name.
    pub fn source(&self, name: &str) -> Option<&SourceConfig> {
        self.sources.iter().find(|s| s.name == name)
    }

    /// What the [`Pipeline`](super::pipeline::Pipeline) needs of this config.
    pub fn pipeline_config(&self) -> PipelineConfig {
        PipelineConfig {
            near_duplicate_distance: self.near_duplicate_distance,
            near_duplicate_window_days: self.near_duplicate_window_days,
            prefilter: self.prefilter.clone(),
        }
    }
}

impl SourceConfig {
    /// Checks one source; the error is `(field, message)`.
    fn check(&self, allow_private: bool) -> Result<(), (&'static str, String)> {
        let name_ok = !self.name.is_empty()
            && self.name.len() <= 64
            && self
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !name_ok {
            return Err((
                "name",
                format!("{:?} must be 1 to 64 lowercase letters, digits, '-' or '_'", self.name),
            ));
        }
        schedule::parse_schedule(&self.schedule).map_err(|e| ("schedule", e))?;

        let query = self.query.as_deref().map(str::trim);
        match query {
            Some("") => return Err(("query", "must not be blank".into())),
            Some(q) if q.chars().count() > MAX_QUERY_CHARS => {
                return Err(("query", format!("is longer than {MAX_QUERY_CHARS} characters")));
            }
            Some(q) if q.chars().any(char::is_control) => {
                return Err(("query", "must not contain control characters".into()));
            }
            None if self.platform != Platform::Rss => {
                return Err(("query", format!("is required for {} sources", self.platform)));
            }
            _ => {}
        }
        if let Some(mode) = self.mode {
            if self.platform != Platform::Mastodon {
                return Err((
                    "mode",
                    format!("only mastodon sources have a mode, not {}", self.platform),
                ));
            }
            if mode == SourceMode::Tag {
                let tag = query.unwrap_or_default().trim_start_matches('#');
                if tag.is_empty() || !tag.chars().all(|c| c.is_alphanumeric() || c == '_') {
                    return Err((
                        "query",
                        format!(
                            "{tag:?} is not a hashtag (letters, digits and '_'); use mode = \"search\" \
                             for search terms"
                        ),
                    ));
                }
            }
        } else if self.platform == Platform::Mastodon {
            let tag = query.unwrap_or_default().trim_start_matches('#');
            if !tag.chars().all(|c| c.is_alphanumeric() || c == '_') {
                return Err((
                    "query",
                    format!(
                        "{tag:?} is not a hashtag (mastodon sources follow a tag unless mode = \
                         \"search\")"
                    ),
                ));
            }
        }
        match (&self.url, self.platform) {
            (None, Platform::Rss) => {
                return Err(("url", "is required for rss sources (the feed URL)".into()));
            }
            (Some(url), _) => check_url(url, allow_private).map_err(|e| ("url", e))?,
            (None, _) => {}
        }
        if let Some(var) = &self.auth_token_env {
            let ok = !var.is_empty()
                && var.len() <= 128
                && !var.as_bytes()[0].is_ascii_digit()
                && var
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
            if !ok {
                return Err((
                    "auth_token_env",
                    "must be the name of an environment variable (uppercase letters, digits and \
                     '_', e.g. REDDIT_TOKEN), not the token itself"
                        .into(),
                ));
            }
        }
        if let Some(rate) = self.rate_limit {
            if rate.requests == 0 {
                return Err(("rate_limit.requests", "must be at least 1".into()));
            }
            if !(1..=86_400).contains(&rate.per_secs) {
                return Err((
                    "rate_limit.per_secs",
                    format!("must be 1..=86400 (got {})", rate.per_secs),
                ));
            }
        }
        Ok(())
    }
}

/// Checks that `url` is an absolute http(s) URL with a host and no credentials, and, unless
/// `allow_private`, that its host is not a literal loopback, private or link-local address
/// (or `localhost`). Host names are resolved and checked again by the runner.
pub fn check_url(url: &str, allow_private: bool) -> Result<(), String> {
    let lower = url.to_ascii_lowercase();
    let rest = if lower.starts_with("https://") {
        &url[8..]
    } else if lower.starts_with("http://") {
        &url[7..]
    } else {
        return Err(format!("{url:?} is not an http:// or https:// URL"));
    };
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("{url:?} contains whitespace"));
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return Err(format!("{url:?} carries credentials; use auth_token_env for a token"));
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6
            .split_once(']')
            .ok_or_else(|| format!("{url:?} has an unclosed IPv6 address"))?;
        (host, after.strip_prefix(':'))
    } else {
        match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err(format!("{url:?} has no host"));
    }
    if let Some(port) = port
        && !port.parse::<u16>().is_ok_and(|p| p != 0)
    {
        return Err(format!("{url:?} has an invalid port"));
    }
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    if !allow_private {
        let private = host == "localhost"
            || host.ends_with(".localhost")
            || host.parse::<IpAddr>().is_ok_and(|ip| !is_public_ip(ip));
        if private {
            return Err(format!(
                "{url:?} points to a loopback or private address; set allow_private_addresses \
                 = true to allow it"
            ));
        }
    }
    Ok(())
}

/// Is `ip` a public unicast address? False for loopback, private (10/8, 172.16/12,
/// 192.168/16), unique-local fc00::/7, link-local (169.254/16, fe80::/10), unspecified,
/// broadcast, multicast, CGNAT 100.64/10, "this network" 0/8, IETF 192.0.0/24, benchmarking
/// 198.18/15, documentation and reserved 240/4 ranges; IPv4 embedded in IPv6 (mapped `::ffff:`,
/// compatible `::`, NAT64 `64:ff9b::/96`, 6to4 `2002::/16`) is judged as IPv4.
///
/// ```
/// use crow_ingest::social::config::is_public_ip;
/// assert!(is_public_ip("93.184.216.34".parse().unwrap()));
/// assert!(!is_public_ip("169.254.169.254".parse().unwrap()));
/// assert!(!is_public_ip("::ffff:10.0.0.1".parse().unwrap()));
/// ```
pub fn is_public_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b))
        || (a == 192 && b == 0 && c == 0)
        || (a == 198 && (b == 18 || b == 19))
        || a >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let seg = ip.segments();
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    // IPv4-compatible ::a.b.c.d (deprecated) and NAT64 64:ff9b::/96.
    if seg[..6] == [0, 0, 0, 0, 0, 0] && !ip.is_loopback() && !ip.is_unspecified()
        || seg[..6] == [0x64, 0xff9b, 0, 0, 0, 0]
    {
        return is_public_v4(Ipv4Addr::new(
            (seg[6] >> 8) as u8,
            seg[6] as u8,
            (seg[7] >> 8) as u8,
            seg[7] as u8,
        ));
    }
    // 6to4 2002:a.b.c.d::/48.
    if seg[0] == 0x2002 {
        return is_public_v4(Ipv4Addr::new(
            (seg[1] >> 8) as u8,
            seg[1] as u8,
            (seg[2] >> 8) as u8,
            seg[2] as u8,
        ));
    }
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (seg[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
        || (seg[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
        || (seg[0] & 0xffc0) == 0xfec0 // site-local fec0::/10 (deprecated)
        || (seg[0] == 0x2001 && seg[1] == 0x0db8)) // documentation
}

/// The adapter for a configured source (its platform's feature must be enabled).
#[allow(unused_variables, unreachable_code)]
pub fn build_source(s: &SourceConfig, token: Option<String>) -> Result<Arc<dyn SocialSource>, SocialError> {
    let missing = |feature: &str| {
        SocialError::Config(format!(
            "sources.{}: this build has no {} adapter (cargo feature {feature})",
            s.name, s.platform
        ))
    };
    let base = s.base_url().map(str::to_owned);
    let query = s.query.clone().unwrap_or_default();
    let need_base = || {
        base.clone()
            .ok_or_else(|| SocialError::Config(format!("sources.{}.url: required for {}", s.name, s.platform)))
    };
    Ok(match s.platform {
        #[cfg(feature = "social-rss")]
        Platform::Rss => Arc::new(super::rss::RssSource::new(need_base()?, s.query.clone())),
        #[cfg(feature = "social-mastodon")]
        Platform::Mastodon => {
            let mode = match s.mode() {
                SourceMode::Tag => super::mastodon::MastodonMode::Tag(query.trim_start_matches('#').to_owned()),
                SourceMode::Search => super::mastodon::MastodonMode::Search(query),
            };
            let mut m = super::mastodon::MastodonSource::new(need_base()?, mode);
            if let Some(t) = token {
                m = m.with_token(t);
            }
            Arc::new(m)
        }
        #[cfg(feature = "social-bluesky")]
        Platform::Bluesky => {
            let mut b = super::bluesky::BlueskySource::new(need_base()?, query);
            if let Some(t) = token {
                b = b.with_token(t);
            }
            Arc::new(b)
        }
        #[cfg(feature = "social-reddit")]
        Platform::Reddit => Arc::new(super::reddit::RedditSource::new(need_base()?, query, token)),
        #[cfg(feature = "social-hackernews")]
        Platform::HackerNews => Arc::new(super::hackernews::HackerNewsSource::new(need_base()?, query)),
        #[allow(unreachable_patterns)]
        other => {
            let _ = (&need_base, &query);
            return Err(missing(match other {
                Platform::Rss => "social-rss",
                Platform::Mastodon => "social-mastodon",
                Platform::Bluesky => "social-bluesky",
                Platform::Reddit => "social-reddit",
                Platform::HackerNews => "social-hackernews",
            }));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limits() {
        assert_eq!(
            default_rate_limit(Platform::Reddit, false),
            RateLimit {
                requests: 10,
                per_secs: 60
            }
        );
        assert_eq!(
            default_rate_limit(Platform::Reddit, true),
            RateLimit {
                requests: 100,
                per_secs: 60
            }
        );
        assert_eq!(
            default_rate_limit(Platform::Mastodon, false),
            RateLimit {
                requests: 300,
                per_secs: 300
            }
        );
        assert_eq!(
            default_rate_limit(Platform::Bluesky, false),
            RateLimit {
                requests: 3000,
                per_secs: 300
            }
        );
        assert_eq!(
            default_rate_limit(Platform::HackerNews, true),
            RateLimit {
                requests: 10_000,
                per_secs: 3600
            }
        );
        assert_eq!(
            default_rate_limit(Platform::Rss, false),
            RateLimit {
                requests: 1,
                per_secs: 10
            }
        );
    }

    #[test]
    fn urls() {
        for ok in [
            "https://mastodon.social",
            "http://feeds.example.com/acme.xml?x=1",
            "https://[2a00:1450:4001:80b::200e]:8443/feed",
            "HTTPS://Example.COM",
        ] {
            assert_eq!(check_url(ok, false), Ok(()), "{ok}");
        }
        for (bad, why) in [
            ("ftp://example.com", "not an http"),
            ("example.com/feed", "not an http"),
            ("https://", "no host"),
            ("https://user:pw@example.com", "credentials"),
            ("https://example.com:99999", "invalid port"),
            ("https://exa mple.com", "whitespace"),
            ("http://127.0.0.1/feed", "private"),
            ("http://localhost:8080", "private"),
            ("http://10.1.2.3", "private"),
            ("http://192.168.0.1", "private"),
            ("http://169.254.169.254/latest", "private"),
            ("http://[::1]/", "private"),
            ("http://[fd00::1]/", "private"),
            ("http://[::ffff:127.0.0.1]/", "private"),
            ("http://100.64.0.1/", "private"),
        ] {
            let err = check_url(bad, false).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
        assert_eq!(check_url("http://127.0.0.1/feed", true), Ok(()));
    }

    #[test]
    fn auth_token_lookup() {
        let source: SourceConfig = serde_json::from_value(serde_json::json!({
            "name": "r", "platform": "reddit", "schedule": "@hourly", "query": "acme",
            "auth_token_env": "REDDIT_TOKEN"
        }))
        .unwrap();
        assert_eq!(
            source.auth_token(|name| (name == "REDDIT_TOKEN").then(|| "t0k".into())),
            Some("t0k".into())
        );
        assert_eq!(source.auth_token(|_| Some("  ".into())), None);
        assert_eq!(
            source.rate_limit(),
            RateLimit {
                requests: 100,
                per_secs: 60
            }
        );
        assert!(source.enabled);
    }
}
