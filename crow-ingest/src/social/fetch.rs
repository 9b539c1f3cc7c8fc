//! The native runner (feature `social-http`): drives any [`SocialSource`] over HTTP, with a
//! private-address guard, per-platform rate limits that adapt to what the platform says, and
//! retries.
//!
//! - **Safety.** Only `http` and `https` URLs. Before every request the host is resolved and the
//!   request refused ([`SocialError::RefusedUrl`]) when any address is not public
//!   ([`is_public_ip`]: loopback, private, unique-local, link-local, CGNAT, unspecified,
//!   broadcast, multicast, documentation and reserved ranges, and IPv4 embedded in IPv6), unless
//!   [`FetcherConfig::allow_private_addresses`] is set. The HTTP client resolves names through
//!   the same guard (so a DNS answer that changes between the check and the connection is caught
//!   too), follows at most 5 redirects and only to http(s) URLs whose IP literal is public, and
//!   ignores proxy environment variables (a proxy would resolve names where the guard cannot
//!   see them).
//! - **Rate limits.** One token bucket ([`governor`]) per platform, shared by every source of that
//!   platform, from [`FetcherConfig::rate_limits`]. On top of it, a per-platform "not before"
//!   instant that the answers move: `Retry-After` (seconds or an HTTP date) on a 429 or 5xx, and
//!   `X-RateLimit-Remaining: 0` (Mastodon, Reddit's `x-ratelimit-remaining` float) or
//!   `RateLimit-Remaining: 0` (Bluesky) with the matching reset header (seconds until the reset,
//!   epoch seconds, or an ISO 8601 date). Requests to one platform are made one at a time (RSS
//!   feeds, which live on many hosts, only share the bucket). Waits are capped by
//!   [`FetcherConfig::max_wait_ms`].
//! - **Retries.** 429, 5xx, transport errors and timeouts are retried with jittered exponential
//!   backoff up to [`FetcherConfig::max_retries`] times; other 4xx fail at once with
//!   [`SocialError::Http`]. After the last retry: [`SocialError::Http`] (status and a body
//!   snippet) or [`SocialError::Transport`].
//! - **Runs.** [`Fetcher::run_source`] follows `next` up to [`FetcherConfig::max_pages`] pages,
//!   dedupes by `platform_id` and returns the cursor to store. A `304 Not Modified` answer (RSS
//!   conditional requests) ends the run with [`RunOutput::not_modified`], no mentions and the
//!   stored cursor: this is the one non-2xx answer the runner does not hand to `parse` nor treat
//!   as an error. [`Fetcher::run_all`] runs many sources concurrently; one failing source never
//!   stops the others.
//!
//! When a run stops at the page cap before reaching the stored cursor, the posts between are
//! skipped: the cursor moves to the newest post seen.
//!
//! ```no_run
//! # async fn demo() -> Result<(), crow_ingest::social::SocialError> {
//! use crow_ingest::social::fetch::{Fetcher, FetcherConfig};
//! use crow_ingest::social::hackernews::HackerNewsSource;
//!
//! let fetcher = Fetcher::new(FetcherConfig {
//!     user_agent: "crow-social/0.1 (+https://example.com/crow; ops@example.com)".into(),
//!     ..FetcherConfig::default()
//! })?;
//! let source = HackerNewsSource::new("https://hn.algolia.com", "acme");
//! let first = fetcher.run_source(&source, None).await?;
//! // Store first.cursor; the next run returns only newer posts.
//! let again = fetcher.run_source(&source, first.cursor.as_deref()).await?;
//! # let _ = again;
//! # Ok(())
//! # }
//! ```

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex as StdMutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::DateTime;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use rand::Rng;
use tokio::time::Instant;

use super::config::{RateLimit, default_rate_limit, is_public_ip};
use super::{FetchRequest, FetchResponse, Platform, SocialError, SocialSource};

/// At most this many characters of an error body in an error.
const SNIPPET_CHARS: usize = 120;

/// The most redirects followed.
pub const MAX_REDIRECTS: usize = 5;

/// A governor quota for a rate limit; `None` when `requests` is 0 (unlimited).
fn quota(limit: RateLimit) -> Option<Quota> {
    let burst = NonZeroU32::new(limit.requests)?;
    let period = Duration::from_secs(limit.per_secs.max(1)) / limit.requests;
    Some(Quota::with_period(period.max(Duration::from_nanos(1)))?.allow_burst(burst))
}

/// How the [`Fetcher`] behaves.
#[derive(Debug, Clone)]
pub struct FetcherConfig {
    /// Timeout of a whole request, answer included.
    pub timeout: Duration,
    /// Timeout of the connection.
    pub connect_timeout: Duration,
    /// The `User-Agent` header (Reddit refuses requests without a descriptive one).
    pub user_agent: String,
    /// Allow URLs that resolve to loopback, private or link-local addresses (tests, an
    /// intranet feed); off by default.
    pub allow_private_addresses: bool,
    /// The most pages fetched per source and run.
    pub max_pages: u32,
    /// Retries of a 429, a 5xx or a transport error before giving up.
    pub max_retries: u32,
    /// Base of the jittered exponential backoff between retries, in ms.
    pub backoff_base_ms: u64,
    /// Cap of one backoff, in ms.
    pub max_backoff_ms: u64,
    /// Cap of any wait a platform asks for (`Retry-After`, a rate-limit reset), in ms.
    pub max_wait_ms: u64,
    /// The largest answer body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Per-platform rates; a platform missing here gets its documented limit
    /// ([`default_rate_limit`]).
    pub rate_limits: BTreeMap<Platform, RateLimit>,
}

impl Default for FetcherConfig {
    fn default() -> Self {
        FetcherConfig {
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            user_agent: concat!("crow-social/", env!("CARGO_PKG_VERSION"), " (CROW social listening)").into(),
            allow_private_addresses: false,
            max_pages: 10,
            max_retries: 3,
            backoff_base_ms: 500,
            max_backoff_ms: 30_000,
            max_wait_ms: 15 * 60 * 1000,
            max_body_bytes: 5 * 1024 * 1024,
            rate_limits: BTreeMap::new(),
        }
    }
}

pub use super::source::RunOutput;

/// One platform's requests through the fetcher's gate.
struct Gated<'a> {
    fetcher: &'a Fetcher,
    platform: Platform,
}

#[async_trait::async_trait]
impl super::source::PageGetter for Gated<'_> {
    async fn get(&self, request: &FetchRequest, requests: &mut u32) -> Result<FetchResponse, SocialError> {
        self.fetcher.fetch(self.platform, request, requests).await
    }
}

/// Why a URL check failed.
enum CheckError {
    Refused(String),
    Dns(String),
}

/// A refusal raised inside the HTTP client (redirect policy, resolver), found again in the
/// error's source chain.
#[derive(Debug)]
struct Refused(String);

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

async fn check(url: &str, allow_private: bool) -> Result<(), CheckError> {
    let parsed = reqwest::Url::parse(url).map_err(|e| CheckError::Refused(format!("not a URL: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(CheckError::Refused(format!(
            "scheme {:?} is not http or https",
            parsed.scheme()
        )));
    }
    let host = parsed
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| CheckError::Refused("no host".into()))?;
    if allow_private {
        return Ok(());
    }
    // The URL parser has normalized the host: "[v6]", dotted IPv4, or a lowercase name.
    if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        let ip: Ipv6Addr = v6
            .parse()
            .map_err(|_| CheckError::Refused(format!("bad IPv6 host {host}")))?;
        return refuse_ip(IpAddr::V6(ip));
    }
    if let Ok(ip) = host.parse::<Ipv4Addr>() {
        return refuse_ip(IpAddr::V4(ip));
    }
    if is_local_name(host) {
        return Err(CheckError::Refused(format!("{host} is a local name")));
    }
    let port = parsed.port_or_known_default().unwrap_or(80);
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| CheckError::Dns(format!("cannot resolve {host}: {e}")))?
        .collect();
    if addrs.is_empty() {
        return Err(CheckError::Dns(format!("{host} has no address")));
    }
    match addrs.iter().find(|a| !is_public_ip(a.ip())) {
        Some(bad) => Err(CheckError::Refused(format!(
            "{host} resolves to non-public address {}",
            bad.ip()
        ))),
        None => Ok(()),
    }
}

fn refuse_ip(ip: IpAddr) -> Result<(), CheckError> {
    if is_public_ip(ip) {
        Ok(())
    } else {
        Err(CheckError::Refused(format!("{ip} is not a public address")))
    }
}

fn is_local_name(name: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost" || name.ends_with(".localhost")
}

/// Checks that `url` may be fetched: http or https, and (unless `allow_private`) a host whose
/// every address is public ([`is_public_ip`](super::config::is_public_ip)); names are resolved, nothing is sent.
///
/// ```
/// # tokio_test_block_on(async {
/// use crow_ingest::social::fetch::check_url;
/// assert!(check_url("http://127.0.0.1:9/", false).await.is_err());
/// assert!(check_url("file:///etc/passwd", true).await.is_err());
/// assert!(check_url("http://127.0.0.1:9/", true).await.is_ok());
/// # });
/// # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
/// # }
/// ```
pub async fn check_url(url: &str, allow_private: bool) -> Result<(), SocialError> {
    check(url, allow_private).await.map_err(|e| SocialError::RefusedUrl {
        url: url.to_string(),
        reason: match e {
            CheckError::Refused(r) | CheckError::Dns(r) => r,
        },
    })
}

/// Resolves names for the HTTP client, refusing non-public answers.
#[derive(Debug)]
struct GuardedResolver;

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_string();
        Box::pin(async move {
            if is_local_name(&host) {
                return Err(Box::new(Refused(format!("{host} is a local name"))) as _);
            }
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if let Some(bad) = addrs.iter().find(|a| !is_public_ip(a.ip())) {
                return Err(Box::new(Refused(format!("{host} resolves to non-public address {}", bad.ip()))) as _);
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// The redirect policy: at most [`MAX_REDIRECTS`], http(s) only, and (unless private
/// addresses are allowed) no IP literal that is not public; names go through the resolver.
fn redirect_policy(allow_private: bool) -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() > MAX_REDIRECTS {
            return attempt.error(Refused(format!("more than {MAX_REDIRECTS} redirects")));
        }
        let url = attempt.url().clone();
        if !matches!(url.scheme(), "http" | "https") {
            let reason = format!("redirect to a {:?} URL", url.scheme());
            return attempt.error(Refused(reason));
        }
        if !allow_private {
            let host = url.host_str().unwrap_or_default();
            let ip = host
                .strip_prefix('[')
                .and_then(|h| h.strip_suffix(']'))
                .and_then(|h| h.parse::<Ipv6Addr>().ok())
                .map(IpAddr::V6)
                .or_else(|| host.parse::<Ipv4Addr>().ok().map(IpAddr::V4));
            if let Some(ip) = ip.filter(|ip| !is_public_ip(*ip)) {
                return attempt.error(Refused(format!("redirect to non-public address {ip}")));
            }
            if is_local_name(host) {
                return attempt.error(Refused(format!("redirect to local name {host}")));
            }
        }
        attempt.follow()
    })
}

/// One platform's rate limiter, "not before" instant and request serializer.
struct Gate {
    limiter: Option<DefaultDirectRateLimiter>,
    not_before: StdMutex<Option<Instant>>,
    serial: Option<tokio::sync::Mutex<()>>,
}

impl Gate {
    fn new(platform: Platform, limit: RateLimit) -> Gate {
        Gate {
            limiter: quota(limit).map(RateLimiter::direct),
            not_before: StdMutex::new(None),
            // Feeds live on many hosts: they share the bucket but are not serialized.
            serial: (platform != Platform::Rss).then(|| tokio::sync::Mutex::new(())),
        }
    }

    fn not_before(&self) -> Option<Instant> {
        *self.not_before.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits for the "not before" instant, then for a token.
    async fn wait(&self) {
        while let Some(t) = self.not_before().filter(|t| *t > Instant::now()) {
            tokio::time::sleep_until(t).await;
        }
        if let Some(limiter) = &self.limiter {
            limiter.until_ready().await;
        }
    }

    fn defer(&self, wait: Duration) {
        let until = Instant::now() + wait;
        let mut nb = self.not_before.lock().unwrap_or_else(|e| e.into_inner());
        if nb.is_none_or(|t| t < until) {
            *nb = Some(until);
        }
    }
}

struct Inner {
    client: reqwest::Client,
    config: FetcherConfig,
    gates: HashMap<Platform, Gate>,
}

/// The HTTP runner. Cheap to clone (the clones share the client and the rate limiters).
#[derive(Clone)]
pub struct Fetcher {
    inner: Arc<Inner>,
}

impl fmt::Debug for Fetcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fetcher")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

/// How one attempt ended.
enum Attempt {
    Done(FetchResponse),
    Retry(SocialError),
    Fail(SocialError),
}

impl Fetcher {
    /// A runner with this configuration.
    pub fn new(config: FetcherConfig) -> Result<Fetcher, SocialError> {
        let mut builder = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.connect_timeout)
            .user_agent(config.user_agent.clone())
            .gzip(true)
            .no_proxy()
            .redirect(redirect_policy(config.allow_private_addresses));
        if !config.allow_private_addresses {
            builder = builder.dns_resolver(Arc::new(GuardedResolver));
        }
        let client = builder
            .build()
            .map_err(|e| SocialError::Config(format!("social fetcher: cannot build the HTTP client: {e}")))?;
        let gates = Platform::ALL
            .into_iter()
            .map(|p| {
                let limit = config
                    .rate_limits
                    .get(&p)
                    .copied()
                    .unwrap_or_else(|| default_rate_limit(p, false));
                (p, Gate::new(p, limit))
            })
            .collect();
        Ok(Fetcher {
            inner: Arc::new(Inner { client, config, gates }),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &FetcherConfig {
        &self.inner.config
    }

    fn gate(&self, platform: Platform) -> &Gate {
        // Every platform has a gate (built from Platform::ALL).
        &self.inner.gates[&platform]
    }

    /// Runs one source: the first request from `cursor`, then `next` up to
    /// [`FetcherConfig::max_pages`] pages.
    pub async fn run_source(&self, source: &dyn SocialSource, cursor: Option<&str>) -> Result<RunOutput, SocialError> {
        let platform = source.platform();
        let max_pages = self.inner.config.max_pages.max(1);
        let getter = Gated {
            fetcher: self,
            platform,
        };
        let out = super::source::run_pages(source, cursor, max_pages, &getter).await?;
        tracing::debug!(
            %platform,
            mentions = out.mentions.len(),
            pages = out.pages,
            requests = out.requests,
            not_modified = out.not_modified,
            "social source run"
        );
        Ok(out)
    }

    /// Runs every `(name, source, cursor)` concurrently (requests to one platform are still
    /// rate-limited and made one at a time) and returns each result under its name, in the
    /// order given. A failing (or panicking) source does not affect the others.
    ///
    /// Each source runs as a Tokio task: call it from within a Tokio runtime.
    pub async fn run_all(
        &self,
        sources: Vec<(String, Arc<dyn SocialSource>, Option<String>)>,
    ) -> Vec<(String, Result<RunOutput, SocialError>)> {
        let mut set = tokio::task::JoinSet::new();
        let mut names = Vec::with_capacity(sources.len());
        let mut platforms = Vec::with_capacity(sources.len());
        let mut index_of = HashMap::new();
        for (i, (name, source, cursor)) in sources.into_iter().enumerate() {
            names.push(name);
            platforms.push(source.platform());
            let me = self.clone();
            let handle = set.spawn(async move { me.run_source(source.as_ref(), cursor.as_deref()).await });
            index_of.insert(handle.id(), i);
        }
        let mut results: Vec<Option<Result<RunOutput, SocialError>>> = names.iter().map(|_| None).collect();
        while let Some(joined) = set.join_next_with_id().await {
            match joined {
                Ok((id, result)) => results[index_of[&id]] = Some(result),
                Err(e) => {
                    let i = index_of[&e.id()];
                    tracing::error!(source = %names[i], error = %e, "social source task failed");
                    results[i] = Some(Err(SocialError::Transport {
                        platform: platforms[i],
                        detail: format!("the run failed: {e}"),
                    }));
                }
            }
        }
        names
            .into_iter()
            .zip(platforms)
            .zip(results)
            .map(|((name, platform), r)| {
                let r = r.unwrap_or_else(|| {
                    Err(SocialError::Transport {
                        platform,
                        detail: "the run ended without a result".into(),
                    })
                });
                (name, r)
            })
            .collect()
    }

    /// Fetches one request: URL guard, rate limits, retries. Returns a 2xx or 304 answer.
    async fn fetch(
        &self,
        platform: Platform,
        request: &FetchRequest,
        requests: &mut u32,
    ) -> Result<FetchResponse, SocialError> {
        let config = &self.inner.config;
        let gate = self.gate(platform);
        let mut retry = 0u32;
        loop {
            let attempt = match check(&request.url, config.allow_private_addresses).await {
                Err(CheckError::Refused(reason)) => {
                    return Err(SocialError::RefusedUrl {
                        url: request.url.clone(),
                        reason,
                    });
                }
                Err(CheckError::Dns(detail)) => Attempt::Retry(SocialError::Transport { platform, detail }),
                Ok(()) => {
                    let _serial = match &gate.serial {
                        Some(m) => Some(m.lock().await),
                        None => None,
                    };
                    gate.wait().await;
                    *requests += 1;
                    self.attempt(platform, request, gate).await
                }
            };
            let error = match attempt {
                Attempt::Done(response) => return Ok(response),
                Attempt::Fail(e) => return Err(e),
                Attempt::Retry(e) => e,
            };
            if retry >= config.max_retries {
                return Err(error);
            }
            let delay = self.backoff(retry);
            tracing::debug!(%platform, retry, ?delay, error = %error, "social request retried");
            tokio::time::sleep(delay).await;
            retry += 1;
        }
    }

    /// One HTTP request, its answer read and judged.
    async fn attempt(&self, platform: Platform, request: &FetchRequest, gate: &Gate) -> Attempt {
        let config = &self.inner.config;
        let mut builder = self.inner.client.get(&request.url);
        for (name, value) in &request.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        let mut response = match builder.send().await {
            Ok(r) => r,
            Err(e) => return self.send_error(platform, &request.url, e),
        };
        let status = response.status().as_u16();
        let headers: Vec<(String, String)> = response
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let mut body = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if body.len() + chunk.len() > config.max_body_bytes {
                        return Attempt::Fail(SocialError::Malformed {
                            platform,
                            detail: format!("body over the {}-byte limit", config.max_body_bytes),
                        });
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) => return self.send_error(platform, &request.url, e),
            }
        }
        let response = FetchResponse { status, headers, body };
        if let Some(wait) = platform_wait(&response, SystemTime::now()) {
            let wait = wait.min(Duration::from_millis(config.max_wait_ms));
            tracing::debug!(%platform, status, ?wait, "social platform asked to wait");
            gate.defer(wait);
        }
        match status {
            200..=299 | 304 => Attempt::Done(response),
            // The client follows http(s) redirects itself; one that reaches here went elsewhere.
            300..=399 => match response.header("location") {
                Some(location) if !is_http_location(location) => Attempt::Fail(SocialError::RefusedUrl {
                    url: request.url.clone(),
                    reason: format!("redirect to a non-http(s) URL {}", truncate(location)),
                }),
                _ => Attempt::Fail(http_error(platform, &response)),
            },
            429 | 500..=599 => Attempt::Retry(http_error(platform, &response)),
            _ => Attempt::Fail(http_error(platform, &response)),
        }
    }

    fn send_error(&self, platform: Platform, url: &str, e: reqwest::Error) -> Attempt {
        // A refusal from the redirect policy or the resolver.
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
        while let Some(err) = source {
            if let Some(refused) = err.downcast_ref::<Refused>() {
                return Attempt::Fail(SocialError::RefusedUrl {
                    url: url.to_string(),
                    reason: refused.0.clone(),
                });
            }
            source = err.source();
        }
        if e.is_builder() {
            return Attempt::Fail(SocialError::Config(format!("{platform}: bad request: {e}")));
        }
        let detail = if e.is_timeout() {
            format!("timed out: {}", error_chain(&e))
        } else {
            error_chain(&e)
        };
        Attempt::Retry(SocialError::Transport { platform, detail })
    }

    /// Jittered exponential backoff before retry `n` (0-based).
    fn backoff(&self, n: u32) -> Duration {
        let config = &self.inner.config;
        let d = config
            .backoff_base_ms
            .saturating_mul(1u64 << n.min(30))
            .min(config.max_backoff_ms);
        let jittered = if d < 2 { d } else { rand::rng().random_range(d / 2..=d) };
        Duration::from_millis(jittered)
    }
}

/// Is a `Location` value an http(s) URL or a relative reference?
fn is_http_location(location: &str) -> bool {
    let l = location.trim();
    match l.split_once(':') {
        // A scheme is letters, digits, '+', '-', '.' before the first ':' and before any '/'.
        Some((scheme, _))
            if !scheme.is_empty()
                && !scheme.contains(['/', '?', '#'])
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')) =>
        {
            scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https")
        }
        _ => true,
    }
}

/// At most [`SNIPPET_CHARS`] characters.
fn truncate(s: &str) -> String {
    match s.char_indices().nth(SNIPPET_CHARS) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// An error and its sources, joined.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(err) = source {
        let msg = err.to_string();
        if !s.contains(&msg) {
            s.push_str(": ");
            s.push_str(&msg);
        }
        source = err.source();
    }
    s
}

fn http_error(platform: Platform, response: &FetchResponse) -> SocialError {
    let text = String::from_utf8_lossy(&response.body);
    let detail = truncate(&text.split_whitespace().collect::<Vec<_>>().join(" "));
    SocialError::Http {
        platform,
        status: response.status,
        detail,
    }
}

/// How long the platform asks us to wait before the next request, from `Retry-After` (on 429
/// and 5xx) and an exhausted rate-limit window (`X-RateLimit-Remaining` / `RateLimit-Remaining`
/// below 1, with `X-RateLimit-Reset` / `RateLimit-Reset`).
fn platform_wait(response: &FetchResponse, now: SystemTime) -> Option<Duration> {
    let mut wait = None;
    if response.status == 429 || response.status >= 500 {
        wait = response.header("retry-after").and_then(|v| parse_retry_after(v, now));
    }
    let remaining = response
        .header("x-ratelimit-remaining")
        .or_else(|| response.header("ratelimit-remaining"))
        .and_then(|v| v.trim().parse::<f64>().ok());
    if remaining.is_some_and(|r| r < 1.0) {
        let reset = response
            .header("x-ratelimit-reset")
            .or_else(|| response.header("ratelimit-reset"))
            .and_then(|v| parse_reset(v, now));
        wait = wait.max(reset);
    }
    wait
}

/// `Retry-After`: delay-seconds or an HTTP date.
fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(1e9)));
    }
    let at = DateTime::parse_from_rfc2822(v).ok()?;
    Some(until(at.timestamp_millis(), now))
}

/// A rate-limit reset: seconds until it (Reddit), epoch seconds (Bluesky, some Mastodon
/// forks), or an ISO 8601 / HTTP date (Mastodon).
fn parse_reset(value: &str, now: SystemTime) -> Option<Duration> {
    let v = value.trim();
    if let Ok(n) = v.parse::<f64>() {
        if !n.is_finite() || n < 0.0 {
            return None;
        }
        // Anything past 2001-09-09 is an epoch time, not a delay.
        return Some(if n >= 1e9 {
            until((n * 1000.0) as i64, now)
        } else {
            Duration::from_secs_f64(n)
        });
    }
    let at = DateTime::parse_from_rfc3339(v)
        .or_else(|_| DateTime::parse_from_rfc2822(v))
        .ok()?;
    Some(until(at.timestamp_millis(), now))
}

/// From `now` until `at_ms` (ms since the epoch); zero when past.
fn until(at_ms: i64, now: SystemTime) -> Duration {
    let now_ms = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
    Duration::from_millis(at_ms.saturating_sub(now_ms).max(0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resp(status: u16, headers: &[(&str, &str)]) -> FetchResponse {
        FetchResponse {
            status,
            headers: headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            body: Vec::new(),
        }
    }

    #[test]
    fn public_ips() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "255.255.255.255",
            "100.64.0.1",
            "100.127.255.255",
            "224.0.0.1",
            "240.0.0.1",
            "::1",
            "::",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:192.168.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a00:1",
            "2002:c0a8:101::1",
            "ff02::1",
            "2001:db8::1",
        ] {
            assert!(!is_public_ip(ip.parse().unwrap()), "{ip} should not be public");
        }
        for ip in [
            "93.184.216.34",
            "1.1.1.1",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(is_public_ip(ip.parse().unwrap()), "{ip} should be public");
        }
    }

    #[test]
    fn waits_from_headers() {
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let w = |r: &FetchResponse| platform_wait(r, now);
        assert_eq!(w(&resp(429, &[("retry-after", "2")])), Some(Duration::from_secs(2)));
        assert_eq!(
            w(&resp(503, &[("retry-after", "Tue, 14 Nov 2023 22:13:30 GMT")])),
            Some(Duration::from_secs(10))
        );
        // Retry-After on a 200 means nothing.
        assert_eq!(w(&resp(200, &[("retry-after", "2")])), None);
        // Reddit: float remaining, seconds until reset.
        assert_eq!(
            w(&resp(
                200,
                &[("x-ratelimit-remaining", "0.0"), ("x-ratelimit-reset", "42")]
            )),
            Some(Duration::from_secs(42))
        );
        assert_eq!(
            w(&resp(
                200,
                &[("x-ratelimit-remaining", "12.0"), ("x-ratelimit-reset", "42")]
            )),
            None
        );
        // Mastodon: ISO date.
        assert_eq!(
            w(&resp(
                200,
                &[
                    ("x-ratelimit-remaining", "0"),
                    ("x-ratelimit-reset", "2023-11-14T22:13:50.000Z")
                ]
            )),
            Some(Duration::from_secs(30))
        );
        // Bluesky: epoch seconds.
        assert_eq!(
            w(&resp(
                200,
                &[("ratelimit-remaining", "0"), ("ratelimit-reset", "1700000005")]
            )),
            Some(Duration::from_secs(5))
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }
}
