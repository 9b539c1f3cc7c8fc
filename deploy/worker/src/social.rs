//! The social channel's schedules, run by the Cron trigger.
//!
//! The `CROW_SOCIAL` var holds a `social.toml` (the format `crow social once --config` reads,
//! see examples/social.toml). Each Cron event, after the queue sweep, every enabled source whose
//! schedule is due ([`Schedule::is_due`](crow_ingest::social::schedule::Schedule::is_due) with
//! the `last_run_at` of its [`SourceState`](crow_core::ports::SourceState)) runs once:
//! the adapter's sans-IO request → `fetch` (JS glue) → the adapter's parser, following `next`
//! up to `max_pages` pages; then all fetched posts go through crow-ingest's
//! [`Pipeline::process_run`](crow_ingest::social::pipeline::Pipeline::process_run) together
//! (dedupe, pseudonymize, score with the lexicon tier, store, enqueue `analyze-social`), and each
//! source's state is written back. A source's cursor moves only once its posts are stored, as
//! natively.
//!
//! Only this fetch loop is the Worker's own; it differs from the native runner
//! (`crow_ingest::social::runner`, feature `social-http`) in that:
//! - there are no in-run retries or rate-limit waits: a failed source records its error and
//!   the next due run tries again (a Worker invocation should not sleep);
//! - the private-address guard checks the URL only
//!   ([`check_url`](crow_ingest::social::config::check_url): IP literals and `localhost`); a
//!   Worker cannot resolve names, and Cloudflare's egress does not reach private networks;
//! - RSS sources are refused (RSS is native-only: feed-rs pulls in uuid).

use std::sync::Arc;

use crow_ingest::social::SocialSource;
use crow_ingest::social::config::{SocialConfig, SourceConfig};

/// The `User-Agent` sent when the config sets none (Reddit refuses requests without one).
pub const DEFAULT_USER_AGENT: &str = "crow-social/0.1 (CROW customer-interaction platform; Cloudflare Worker)";

/// Parses and validates `CROW_SOCIAL`.
pub fn parse_config(text: &str) -> Result<SocialConfig, String> {
    let config: SocialConfig = toml::from_str(text).map_err(|e| format!("CROW_SOCIAL: {e}"))?;
    config.validate().map_err(|e| format!("CROW_SOCIAL: {e}"))?;
    Ok(config)
}

/// The adapter of a configured source: crow-ingest's own (`social::config::build_source`);
/// this build has the Mastodon, Bluesky, Reddit and Hacker News adapters (RSS is native-only).
pub fn build_source(s: &SourceConfig, token: Option<String>) -> Result<Arc<dyn SocialSource>, String> {
    if s.platform == crow_ingest::social::Platform::Rss {
        return Err(format!(
            "sources.{}: RSS sources run natively only (`crow social run`), not in the Worker",
            s.name
        ));
    }
    crow_ingest::social::config::build_source(s, token).map_err(|e| e.to_string())
}

#[cfg(target_arch = "wasm32")]
mod run {
    use crow_core::model::Millis;
    use crow_ingest::social::config::{SocialConfig, check_url};
    use crow_ingest::social::pipeline::Pipeline;
    use crow_ingest::social::run::{Fetched, SocialPorts, settle};
    use crow_ingest::social::source::{PageGetter, RunOutput, run_pages};
    use crow_ingest::social::{FetchRequest, FetchResponse, SocialError, SocialSource};
    use js_sys::{Array, Reflect, Uint8Array};
    use serde_json::{Value, json};
    use wasm_bindgen::prelude::*;

    use super::{DEFAULT_USER_AGENT, build_source};
    use crate::glue;

    async fn get(config: &SocialConfig, req: &FetchRequest) -> Result<FetchResponse, String> {
        check_url(&req.url, config.allow_private_addresses)?;
        let mut headers = req.headers.clone();
        if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("user-agent")) {
            let ua = config.user_agent.as_deref().unwrap_or(DEFAULT_USER_AGENT);
            headers.push(("user-agent".into(), ua.into()));
        }
        let headers_json = serde_json::to_string(&headers).unwrap_or_default();
        let timeout_ms = (config.timeout_secs.max(1) * 1000) as f64;
        let v = match glue::http_get(&req.url, &headers_json, timeout_ms) {
            Ok(p) => wasm_bindgen_futures::JsFuture::from(p).await,
            Err(e) => Err(e),
        }
        .map_err(|e| format!("GET {}: {}", req.url, glue::error_message(&e)))?;
        let field = |k: &str| Reflect::get(&v, &JsValue::from_str(k)).unwrap_or(JsValue::UNDEFINED);
        let status = field("status").as_f64().unwrap_or(0.0) as u16;
        let headers = Array::from(&field("headers"))
            .iter()
            .filter_map(|pair| {
                let pair = Array::from(&pair);
                Some((pair.get(0).as_string()?, pair.get(1).as_string()?))
            })
            .collect();
        let body = Uint8Array::new(&field("body")).to_vec();
        Ok(FetchResponse { status, headers, body })
    }

    /// A source's requests through the platform's `fetch` (no retries within a run: a failed
    /// source records its error and its next due run tries again).
    struct WorkerGet<'a> {
        config: &'a SocialConfig,
        platform: crow_ingest::social::Platform,
    }

    #[async_trait::async_trait(?Send)]
    impl PageGetter for WorkerGet<'_> {
        async fn get(&self, request: &FetchRequest, requests: &mut u32) -> Result<FetchResponse, SocialError> {
            *requests += 1;
            let platform = self.platform;
            let response = get(self.config, request)
                .await
                .map_err(|detail| SocialError::Transport { platform, detail })?;
            if response.status != 304 && !(200..300).contains(&response.status) {
                let detail: String = String::from_utf8_lossy(&response.body).chars().take(200).collect();
                return Err(SocialError::Http {
                    platform,
                    status: response.status,
                    detail: format!("{}: {detail}", request.url),
                });
            }
            Ok(response)
        }
    }

    /// One source's pages through crow-ingest's pager.
    async fn fetch_source(
        config: &SocialConfig,
        source: &dyn SocialSource,
        cursor: Option<&str>,
    ) -> Result<RunOutput, SocialError> {
        let getter = WorkerGet {
            config,
            platform: source.platform(),
        };
        run_pages(source, cursor, config.max_pages.max(1), &getter).await
    }

    /// Runs the due sources of `config` once; one JSON report per source that ran (or failed to
    /// start). Fails as a whole only when the store cannot be read.
    pub async fn run_due(
        config: &SocialConfig,
        ports: SocialPorts<'_>,
        token: &dyn Fn(&str) -> Option<String>,
        now: Millis,
    ) -> Result<Vec<Value>, String> {
        let org = config.org.as_str();
        if ports
            .accounts
            .org_grant(org)
            .await
            .map_err(|e| e.to_string())?
            .is_none()
        {
            return Err(format!("CROW_SOCIAL: org {org:?} does not exist"));
        }
        // Which sources are due; fetch each, one after another.
        let mut reports = Vec::new();
        let mut fetched = Vec::new();
        for s in config.enabled_sources() {
            let state = ports
                .social
                .source_state(org, &s.name)
                .await
                .map_err(|e| e.to_string())?
                .unwrap_or_default();
            let schedule = match s.parsed_schedule() {
                Ok(sch) => sch,
                Err(e) => {
                    reports.push(json!({"source": s.name, "error": e.to_string()}));
                    continue;
                }
            };
            if !schedule.is_due(state.last_run_at, now) {
                continue;
            }
            let source = match build_source(s, s.auth_token(token)) {
                Ok(src) => src,
                Err(e) => {
                    reports.push(json!({"source": s.name, "error": e}));
                    continue;
                }
            };
            let result = fetch_source(config, source.as_ref(), state.cursor.as_deref()).await;
            fetched.push(Fetched {
                config: s,
                state,
                result,
            });
        }
        // Then crow-ingest settles the run: one pipeline pass, the states written back.
        let mut pipeline = Pipeline::new(config.pipeline_config());
        let settled = settle(&mut pipeline, ports, org, fetched, now, now)
            .await
            .map_err(|e| e.to_string())?;
        reports.extend(settled.iter().map(|r| serde_json::to_value(r).unwrap_or_default()));
        Ok(reports)
    }
}

#[cfg(target_arch = "wasm32")]
pub use run::run_due;

#[cfg(test)]
mod tests {
    use super::*;
    use crow_ingest::social::Platform;

    const CONFIG: &str = r#"
org = "org_0123456789abcdef"
allow_private_addresses = true

[[sources]]
name = "hn"
platform = "hackernews"
schedule = "* * * * *"
query = "acme"
url = "http://127.0.0.1:8080"

[[sources]]
name = "feed"
platform = "rss"
schedule = "0 * * * *"
url = "https://example.com/feed.xml"
"#;

    #[test]
    fn the_config_is_social_toml_and_rss_is_refused() {
        let config = parse_config(CONFIG).unwrap();
        assert_eq!(config.org, "org_0123456789abcdef");
        let hn = build_source(config.source("hn").unwrap(), None).unwrap();
        assert_eq!(hn.platform(), Platform::HackerNews);
        let first = hn.first_request(None).unwrap();
        assert!(first.url.starts_with("http://127.0.0.1:8080/"), "{}", first.url);
        let e = build_source(config.source("feed").unwrap(), None).err().unwrap();
        assert!(e.contains("natively"), "{e}");
        assert!(parse_config("org = 1").unwrap_err().starts_with("CROW_SOCIAL:"));
        assert!(parse_config("org = \"\"").is_err());
    }

    #[test]
    fn every_worker_platform_builds() {
        for (platform, extra) in [
            ("mastodon", "mode = \"tag\""),
            ("bluesky", ""),
            ("reddit", ""),
            ("hackernews", ""),
        ] {
            let text = format!(
                "org = \"o\"\n[[sources]]\nname = \"s\"\nplatform = \"{platform}\"\nschedule = \"* * * * *\"\nquery = \"acme\"\n{extra}\n"
            );
            let config = parse_config(&text).unwrap();
            let s = build_source(config.source("s").unwrap(), Some("t".into())).unwrap();
            assert_eq!(s.platform().as_str(), platform);
            assert!(s.first_request(None).unwrap().url.starts_with("https://"));
        }
    }
}
