//! The end of a social run, shared by the native runner ([`super::runner`]) and the Worker's
//! Cron: every fetched source's posts go through one [`Pipeline`] pass together (near
//! duplicates are found across sources in time order), then each source's state is written
//! back. A source's cursor moves only once its posts are stored, so a crash or a store error
//! means the next run fetches them again (and the store keeps each post once). Wasm32-clean:
//! fetching is the caller's (with [`super::source::run_pages`]).

use crow_core::model::Millis;
use crow_core::ports::{AccountStore, SocialStore, SourceState, TextAnalyzer};
use serde::{Deserialize, Serialize};

use super::config::SourceConfig;
use super::pipeline::{PassReport, PassSource, Pipeline};
use super::source::RunOutput;
use super::{Platform, SocialError};

/// The ports a run goes through.
#[derive(Clone, Copy)]
pub struct SocialPorts<'a> {
    /// Mentions, links, source states (and the `analyze-social` jobs, with the mentions).
    pub social: &'a dyn SocialStore,
    /// The org's pseudonym key.
    pub accounts: &'a dyn AccountStore,
    /// The pre-filter's scorer: the lexicon tier.
    pub lexicon: &'a dyn TextAnalyzer,
}

/// What one source's run did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceReport {
    /// The source's name.
    pub source: String,
    /// Its platform.
    pub platform: Platform,
    /// What the pipeline did with the posts.
    pub pass: PassReport,
    /// HTTP requests made (retries included).
    pub requests: u32,
    /// Answers parsed.
    pub pages: u32,
    /// The feed answered 304 Not Modified.
    pub not_modified: bool,
    /// Why the run failed, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl std::fmt::Debug for SocialPorts<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SocialPorts").finish_non_exhaustive()
    }
}

/// One source's fetch, to settle.
#[derive(Debug)]
pub struct Fetched<'a> {
    /// The source.
    pub config: &'a SourceConfig,
    /// Its state before the run.
    pub state: SourceState,
    /// What fetching it gave.
    pub result: Result<RunOutput, SocialError>,
}

/// Settles a run: the posts of every source fetched go through `pipeline` together (at `now`),
/// then each source's state is stored with `last_run_at = started` (and, when its posts were
/// stored, the new cursor and `last_success_at`; else its error). One report per source, in
/// order. Fails only when a port does.
pub async fn settle(
    pipeline: &mut Pipeline,
    ports: SocialPorts<'_>,
    org: &str,
    fetched: Vec<Fetched<'_>>,
    started: Millis,
    now: Millis,
) -> Result<Vec<SourceReport>, SocialError> {
    let mut reports = Vec::with_capacity(fetched.len());
    let mut states = Vec::with_capacity(fetched.len());
    let mut cursors = Vec::new();
    let mut passes = Vec::new();
    for f in fetched {
        let mut report = SourceReport {
            source: f.config.name.clone(),
            platform: f.config.platform,
            pass: PassReport::default(),
            requests: 0,
            pages: 0,
            not_modified: false,
            error: None,
        };
        match f.result {
            Ok(out) => {
                report.requests = out.requests;
                report.pages = out.pages;
                report.not_modified = out.not_modified;
                cursors.push((reports.len(), out.cursor));
                passes.push((
                    PassSource {
                        org_id: org,
                        source: f.config.name.as_str(),
                        platform: f.config.platform,
                        query: f.config.query.as_deref().or(f.config.url.as_deref()),
                    },
                    out.mentions,
                ));
            }
            Err(e) => {
                tracing::warn!(source = %f.config.name, error = %e, "social source failed");
                report.error = Some(e.to_string());
            }
        }
        reports.push(report);
        states.push(f.state);
    }
    let outcomes = pipeline
        .process_run(ports.social, ports.accounts, ports.lexicon, passes, now)
        .await?;
    let mut stored = vec![None; reports.len()];
    for ((r, cursor), outcome) in cursors.into_iter().zip(outcomes) {
        match outcome {
            Ok(pass) => {
                reports[r].pass = pass;
                stored[r] = Some(cursor);
            }
            Err(e) => reports[r].error = Some(e.to_string()),
        }
    }
    for ((report, mut state), cursor) in reports.iter().zip(states).zip(stored) {
        state.last_run_at = Some(started);
        match (&report.error, cursor) {
            (None, Some(cursor)) => {
                state.cursor = cursor.or(state.cursor);
                state.last_success_at = Some(started);
                state.last_error = None;
            }
            (error, _) => state.last_error = error.clone(),
        }
        ports.social.set_source_state(org, &report.source, &state).await?;
    }
    Ok(reports)
}
