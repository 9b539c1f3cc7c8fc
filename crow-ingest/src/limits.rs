//! Per-key rate limits (feature `ratelimit`, native: [`governor`]'s GCRA token buckets).
//!
//! Ingest and the REST API are limited separately, each with its own rate and burst per key:
//!
//! - **ingest** (`POST` on an ingest route): keyed by the write key when the request shows it
//!   in the query or an `Authorization` header, else by the client address (a key inside the
//!   body is not parsed twice);
//! - **api** (`/api/v1/...`): keyed by the secret key's public prefix, a session token's hash,
//!   or the client address when no credential is sent.
//!
//! Over the limit, [`RateLimiter::check`] answers `429` (problem+json) with `Retry-After` in
//! whole seconds, before any authentication or parsing, so a flood costs almost nothing. The
//! Worker uses Cloudflare's rate-limiting binding instead; the answer has the same shape.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::http::{HttpRequest, HttpResponse};
use crate::website::Route;

/// One limit: a sustained rate and a burst. `per_minute = 0` turns it off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rate {
    /// Requests per minute, sustained.
    pub per_minute: u32,
    /// Requests allowed at once above the sustained rate.
    pub burst: u32,
}

/// The limits of a server (the `[limits]` table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Ingest requests per key (a browser sends a batch every few seconds; a server-side
    /// Segment or PostHog client many more).
    pub ingest: Rate,
    /// REST API requests per key.
    pub api: Rate,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig {
            ingest: Rate {
                per_minute: 12_000,
                burst: 2_000,
            },
            api: Rate {
                per_minute: 1_200,
                burst: 200,
            },
        }
    }
}

/// Which limit a request counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// An ingest endpoint.
    Ingest,
    /// The REST API.
    Api,
}

/// Keyed limiters for ingest and the API.
pub struct RateLimiter {
    ingest: Option<DefaultKeyedRateLimiter<String>>,
    api: Option<DefaultKeyedRateLimiter<String>>,
    clock: DefaultClock,
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter")
            .field("ingest", &self.ingest.is_some())
            .field("api", &self.api.is_some())
            .finish()
    }
}

fn quota(rate: Rate) -> Option<Quota> {
    let per_minute = NonZeroU32::new(rate.per_minute)?;
    let period = Duration::from_secs(60) / per_minute.get();
    let burst = NonZeroU32::new(rate.burst.max(1))?;
    Some(Quota::with_period(period.max(Duration::from_nanos(1)))?.allow_burst(burst))
}

impl RateLimiter {
    /// Limiters for a configuration.
    pub fn new(config: &RateLimitConfig) -> Self {
        RateLimiter {
            ingest: quota(config.ingest).map(DefaultKeyedRateLimiter::keyed),
            api: quota(config.api).map(DefaultKeyedRateLimiter::keyed),
            clock: DefaultClock::default(),
        }
    }

    /// The class and key a request counts under; `None` for routes that are not limited
    /// (health, metrics, the SDK script, CORS preflights).
    pub fn classify(req: &HttpRequest) -> Option<(Class, String)> {
        let ip = || {
            req.peer_ip
                .map(|ip| format!("ip:{ip}"))
                .unwrap_or_else(|| "ip:unknown".into())
        };
        if req.method.eq_ignore_ascii_case("POST")
            && let Some(route) = Route::from_path(&req.path)
        {
            let key = crate::website::key_from_query_or_header(req, route)
                .map(|k| format!("key:{}", short(&k)))
                .unwrap_or_else(ip);
            return Some((Class::Ingest, key));
        }
        let api = req.path.starts_with(crate::api::PREFIX) || crate::api::SURFACES.contains(&req.path.as_str());
        if api && !req.method.eq_ignore_ascii_case("OPTIONS") {
            let key = match crate::api::auth::bearer(req) {
                Some(t) => match crow_core::keys::api_key_prefix(t) {
                    Some(prefix) => format!("key:{prefix}"),
                    None => format!("token:{}", short(t)),
                },
                None => ip(),
            };
            return Some((Class::Api, key));
        }
        None
    }

    /// `Ok` when the request may go on; a `429` with `Retry-After` when its key is over the limit.
    pub fn check(&self, req: &HttpRequest) -> Result<(), HttpResponse> {
        let Some((class, key)) = Self::classify(req) else {
            return Ok(());
        };
        let limiter = match class {
            Class::Ingest => &self.ingest,
            Class::Api => &self.api,
        };
        let Some(limiter) = limiter else {
            return Ok(());
        };
        match limiter.check_key(&key) {
            Ok(()) => Ok(()),
            Err(not_until) => {
                let wait = not_until.wait_time_from(self.clock.now());
                let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
                let what = match class {
                    Class::Ingest => "ingest",
                    Class::Api => "API",
                };
                Err(HttpResponse::problem(
                    429,
                    "rate_limited",
                    "Too many requests",
                    format!("this key is over its {what} rate limit; retry in {} s", secs.max(1)),
                    None,
                )
                .with_header("retry-after", secs.max(1).to_string()))
            }
        }
    }

    /// Forgets keys whose buckets are full again (call now and then: keys are never evicted
    /// otherwise, and a flood of made-up keys would grow the map).
    pub fn shrink(&self) {
        for l in [&self.ingest, &self.api].into_iter().flatten() {
            l.retain_recent();
            l.shrink_to_fit();
        }
    }
}

/// A short, stable stand-in for a credential (never kept in clear in memory longer than needed).
fn short(s: &str) -> String {
    hex::encode(&Sha256::digest(s.as_bytes())[..12])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(method: &str, path: &str, auth: Option<&str>) -> HttpRequest {
        HttpRequest {
            method: method.into(),
            path: path.into(),
            headers: auth
                .map(|a| vec![("authorization".to_owned(), a.to_owned())])
                .unwrap_or_default(),
            peer_ip: Some("10.0.0.1".parse().unwrap()),
            ..Default::default()
        }
    }

    #[test]
    fn keys_are_limited_separately_and_classes_apart() {
        let limits = RateLimiter::new(&RateLimitConfig {
            ingest: Rate {
                per_minute: 1,
                burst: 2,
            },
            api: Rate {
                per_minute: 1,
                burst: 1,
            },
        });
        let a = req("GET", "/api/v1/interactions", Some("Bearer sk_0123456789ab_x"));
        let b = req("GET", "/api/v1/interactions", Some("Bearer sk_ba9876543210_x"));
        assert!(limits.check(&a).is_ok());
        let refused = limits.check(&a).unwrap_err();
        assert_eq!(refused.status, 429);
        let retry: u64 = refused
            .headers
            .iter()
            .find(|(k, _)| k == "retry-after")
            .unwrap()
            .1
            .parse()
            .unwrap();
        assert!((1..=60).contains(&retry), "{retry}");
        assert!(limits.check(&b).is_ok(), "another key has its own bucket");
        let ingest = req("POST", "/v1/batch", Some("Bearer wk_0123"));
        assert!(limits.check(&ingest).is_ok() && limits.check(&ingest).is_ok());
        assert_eq!(limits.check(&ingest).unwrap_err().status, 429);
        assert!(limits.check(&req("GET", "/healthz", None)).is_ok());
        // GraphQL, MCP and A2A draw on the same key's API bucket as REST.
        for surface in crate::api::SURFACES {
            let c = req("POST", surface, Some("Bearer sk_0123456789ab_x"));
            assert_eq!(limits.check(&c).unwrap_err().status, 429, "{surface}");
            let other = req("POST", surface, Some("Bearer sk_00000000000f_x"));
            assert_eq!(RateLimiter::classify(&other).unwrap().0, Class::Api, "{surface}");
        }
        let off = RateLimiter::new(&RateLimitConfig {
            ingest: Rate {
                per_minute: 0,
                burst: 0,
            },
            api: Rate {
                per_minute: 0,
                burst: 0,
            },
        });
        for _ in 0..100 {
            assert!(off.check(&a).is_ok());
        }
    }
}
