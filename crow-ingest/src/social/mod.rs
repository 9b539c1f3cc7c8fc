//! The social listening channel: scheduled, rate-limited adapters pull public mentions, drop
//! exact and near duplicates, score each with the lexicon tier and send the ones worth it to
//! the `analyze-social` workflow.
//!
//! The pieces, each usable on its own:
//! - [`source`]: the [`SocialSource`] trait. Adapters are *sans-IO*: they build requests and
//!   parse answers, and never touch the network. So the native runner ([`fetch`], feature
//!   `social-http`) and the Cloudflare Worker drive the same adapters, and tests feed them
//!   recorded answers.
//! - The adapters, each behind its own feature: [`rss`] (RSS/Atom via feed-rs), [`mastodon`]
//!   (tag timeline and search), [`bluesky`] (`app.bsky.feed.searchPosts`), [`reddit`] (public
//!   search JSON), [`hackernews`] (the Algolia search API).
//! - [`simhash`]: 64-bit SimHash and an index of permuted-prefix tables that finds
//!   near-duplicates within Hamming distance 3 without scanning.
//! - [`prefilter`]: the rules that decide which mentions go on to `analyze-social`.
//! - [`config`]: the `social.toml` file (sources, queries, cron schedules, limits, rules).
//! - [`schedule`]: cron schedules, with a run missed while the process was down made up once.
//! - [`pipeline`]: one pass over fetched mentions, through the ports: pseudonymize, scrub,
//!   dedupe, score, select, store, enqueue.

pub mod config;
pub mod pipeline;
pub mod prefilter;
pub mod run;
pub mod schedule;
pub mod simhash;
pub mod source;

#[cfg(feature = "social-http")]
pub mod fetch;
#[cfg(feature = "social-http")]
pub mod runner;

#[cfg(any(
    feature = "social-rss",
    feature = "social-mastodon",
    feature = "social-bluesky",
    feature = "social-reddit",
    feature = "social-hackernews"
))]
mod adapter_util;

#[cfg(feature = "social-bluesky")]
pub mod bluesky;
#[cfg(feature = "social-hackernews")]
pub mod hackernews;
#[cfg(feature = "social-mastodon")]
pub mod mastodon;
#[cfg(feature = "social-reddit")]
pub mod reddit;
#[cfg(feature = "social-rss")]
pub mod rss;

pub use source::{FetchRequest, FetchResponse, Platform, RawMention, SocialSource, SourcePage};

/// What can go wrong in the social channel: crow-ingest's error type for it.
#[derive(Debug, thiserror::Error)]
pub enum SocialError {
    /// The configuration is invalid; the message names the field.
    #[error("invalid social config: {0}")]
    Config(String),
    /// A URL is not allowed (not http(s), or it resolves to a loopback, private or
    /// link-local address and private addresses are not allowed).
    #[error("refused URL {url}: {reason}")]
    RefusedUrl {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// The platform answered with something that is not its documented format.
    #[error("{platform}: unexpected answer: {detail}")]
    Malformed {
        /// The platform.
        platform: Platform,
        /// What was wrong, with the offending field or a snippet.
        detail: String,
    },
    /// The platform answered with an HTTP error (after retries, for 429 and 5xx).
    #[error("{platform}: HTTP {status}: {detail}")]
    Http {
        /// The platform.
        platform: Platform,
        /// The status code.
        status: u16,
        /// A short snippet of the answer.
        detail: String,
    },
    /// The request could not be made or timed out.
    #[error("{platform}: {detail}")]
    Transport {
        /// The platform.
        platform: Platform,
        /// What failed.
        detail: String,
    },
    /// A port (store, queue, analyzer) failed.
    #[error(transparent)]
    Port(#[from] crow_core::Error),
}
