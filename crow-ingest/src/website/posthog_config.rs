//! posthog-js's remote-config and feature-flag endpoints, answered so that posthog-js pointed at
//! CROW (`api_host`) works unmodified: it asks them before it captures, and their
//! `supportedCompression` turns on its `gzip-js` bodies.

use serde_json::{Value, json};

use crate::http::{HttpRequest, HttpResponse};

/// What posthog-js may compress its capture bodies with, as CROW decodes them.
const SUPPORTED_COMPRESSION: [&str; 2] = ["gzip-js", "base64"];

/// One of posthog-js's endpoints besides capture that CROW answers, with fixed answers: no
/// feature flags, no session recording, surveys, heatmaps or site apps. The project token in
/// the path is the public write key (posthog-js puts it in every page), and the answers reveal
/// nothing about the org, so no key is looked up: any token gets the same answer.
///
/// ```
/// use crow_ingest::http::HttpRequest;
/// use crow_ingest::website::PostHogEndpoint;
///
/// let req = HttpRequest { method: "GET".into(), path: "/array/wk_demo/config".into(), ..Default::default() };
/// let endpoint = PostHogEndpoint::from_path(&req.path).unwrap();
/// let resp = endpoint.respond(&req);
/// assert_eq!(resp.status, 200);
/// assert_eq!(resp.json_body().unwrap()["supportedCompression"][0], "gzip-js");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PostHogEndpoint {
    /// `GET /array/{token}/config` (also `/config/` and `/config.json`): the remote config.
    Config {
        /// The project token from the path.
        token: String,
    },
    /// `GET /array/{token}/config.js`: the same config as a script that posthog-js loads first
    /// (it sets `window._POSTHOG_REMOTE_CONFIG[token]`); without it posthog-js falls back to
    /// [`Config`](Self::Config) after a failed script load.
    ConfigScript {
        /// The project token from the path.
        token: String,
    },
    /// `POST /flags` or `/decide` (trailing `/` optional, any query): the feature flags, none.
    Flags,
}

impl PostHogEndpoint {
    /// The endpoint a path (without query string) names, if any.
    pub fn from_path(path: &str) -> Option<PostHogEndpoint> {
        if matches!(path, "/flags" | "/flags/" | "/decide" | "/decide/") {
            return Some(PostHogEndpoint::Flags);
        }
        let rest = path.strip_prefix("/array/")?;
        let (token, tail) = rest.split_once('/')?;
        let token_ok = (1..=256).contains(&token.len())
            && token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
        if !token_ok {
            return None;
        }
        let token = token.to_owned();
        match tail {
            "config" | "config/" | "config.json" => Some(PostHogEndpoint::Config { token }),
            "config.js" => Some(PostHogEndpoint::ConfigScript { token }),
            _ => None,
        }
    }

    /// The one method the endpoint answers (`GET` or `POST`).
    pub fn method(&self) -> &'static str {
        match self {
            PostHogEndpoint::Config { .. } | PostHogEndpoint::ConfigScript { .. } => "GET",
            PostHogEndpoint::Flags => "POST",
        }
    }

    /// The answer, without CORS headers ([`crate::ingest::IngestService::dispatch`] adds them
    /// and answers the `OPTIONS` preflight): 200 JSON for [`method`](Self::method), else 405.
    /// The request body is not read.
    pub fn respond(&self, req: &HttpRequest) -> HttpResponse {
        if !req.method.eq_ignore_ascii_case(self.method()) {
            return HttpResponse::problem(
                405,
                "method_not_allowed",
                "Method not allowed",
                format!("{} accepts {}", req.path, self.method()),
                None,
            )
            .with_header("allow", format!("{}, OPTIONS", self.method()));
        }
        match self {
            PostHogEndpoint::Config { token } => HttpResponse::json(200, &config(token))
                // The same for every visitor; posthog-js asks on every page load.
                .with_header("cache-control", "public, max-age=300"),
            PostHogEndpoint::ConfigScript { token } => {
                // The token is [A-Za-z0-9_.-] (checked in from_path) and JSON-encoded here, so
                // it cannot break out of the string.
                let script = format!(
                    "(window._POSTHOG_REMOTE_CONFIG=window._POSTHOG_REMOTE_CONFIG||{{}})[{}]={};",
                    Value::from(token.as_str()),
                    json!({ "config": config(token), "siteApps": [] })
                );
                HttpResponse {
                    status: 200,
                    headers: vec![
                        ("content-type".into(), "text/javascript; charset=utf-8".into()),
                        ("cache-control".into(), "public, max-age=300".into()),
                    ],
                    body: script.into_bytes(),
                }
            }
            PostHogEndpoint::Flags => HttpResponse::json(200, &flags()).with_header("cache-control", "no-store"),
        }
    }
}

fn config(token: &str) -> Value {
    json!({
        "token": token,
        "supportedCompression": SUPPORTED_COMPRESSION,
        "hasFeatureFlags": false,
        "sessionRecording": false,
        "heatmaps": false,
        "surveys": false,
        "siteApps": [],
        "capturePerformance": false,
        "autocaptureExceptions": false,
        "defaultIdentifiedOnly": true,
    })
}

fn flags() -> Value {
    json!({
        "flags": {},
        "featureFlags": {},
        "featureFlagPayloads": {},
        "errorsWhileComputingFlags": false,
        "supportedCompression": SUPPORTED_COMPRESSION,
        "sessionRecording": false,
    })
}
