//! Runs the configured sources (feature `social-http`, native): fetch each one with the
//! rate-limited, retrying [`Fetcher`], put its posts through the [`Pipeline`], then record the
//! source's state (cursor, last run, last error) in the store.
//!
//! One failing source never blocks the others: its error is recorded in its state and its
//! report, and the others go on. A source's cursor only moves once its posts are stored, so a
//! crash or a store error means the next run fetches them again (and the store keeps each
//! post once).
//!
//! [`Runner::run_once`] is `crow social once`; [`Runner::run_scheduled`] is `crow social run`:
//! at start every source whose schedule fired while the process was down runs once (not
//! once per missed slot), then each runs on its cron schedule until shutdown.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crow_core::model::Millis;

pub use super::config::build_source;
use super::config::{SocialConfig, SourceConfig, default_rate_limit};
use super::fetch::{Fetcher, FetcherConfig};
use super::pipeline::Pipeline;
use super::run::{Fetched, settle};
use super::schedule::{self, Schedule};
use super::{SocialError, SocialSource};

pub use super::run::{SocialPorts, SourceReport};

struct Built {
    config: SourceConfig,
    source: Arc<dyn SocialSource>,
    schedule: Schedule,
}

/// The configured sources, ready to run.
pub struct Runner {
    config: SocialConfig,
    fetcher: Fetcher,
    pipeline: Pipeline,
    sources: Vec<Built>,
}

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner")
            .field("org", &self.config.org)
            .field(
                "sources",
                &self.sources.iter().map(|s| &s.config.name).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl Runner {
    /// Validates the config and builds its enabled sources; `env` looks up the environment
    /// variables named by `auth_token_env`.
    pub fn new(config: SocialConfig, env: impl Fn(&str) -> Option<String>) -> Result<Runner, SocialError> {
        config.validate()?;
        let mut fetcher_config = FetcherConfig {
            timeout: Duration::from_secs(config.timeout_secs),
            allow_private_addresses: config.allow_private_addresses,
            max_pages: config.max_pages,
            ..FetcherConfig::default()
        };
        if let Some(ua) = &config.user_agent {
            fetcher_config.user_agent = ua.clone();
        }
        let mut sources = Vec::new();
        for s in config.enabled_sources() {
            let token = s.auth_token(&env);
            // The configured rate, else the documented one for whether a token was found.
            let limit = s
                .rate_limit
                .unwrap_or_else(|| default_rate_limit(s.platform, token.is_some()));
            fetcher_config.rate_limits.insert(s.platform, limit);
            sources.push(Built {
                source: build_source(s, token)?,
                schedule: s.parsed_schedule()?,
                config: s.clone(),
            });
        }
        Ok(Runner {
            fetcher: Fetcher::new(fetcher_config)?,
            pipeline: Pipeline::new(config.pipeline_config()),
            config,
            sources,
        })
    }

    /// The org the sources collect for.
    pub fn org(&self) -> &str {
        &self.config.org
    }

    /// The enabled sources' configs.
    pub fn sources(&self) -> impl Iterator<Item = &SourceConfig> {
        self.sources.iter().map(|b| &b.config)
    }

    /// Runs every enabled source once (or only `only`), fetching concurrently.
    pub async fn run_once(
        &mut self,
        ports: SocialPorts<'_>,
        only: Option<&str>,
        now: &(dyn Fn() -> Millis + Sync),
    ) -> Result<Vec<SourceReport>, SocialError> {
        if let Some(name) = only
            && !self.sources.iter().any(|b| b.config.name == name)
        {
            let known: Vec<&str> = self.sources.iter().map(|b| b.config.name.as_str()).collect();
            return Err(SocialError::Config(format!(
                "no enabled source named {name:?}; the config has {known:?}"
            )));
        }
        let names: Vec<String> = self
            .sources
            .iter()
            .filter(|b| only.is_none_or(|n| n == b.config.name))
            .map(|b| b.config.name.clone())
            .collect();
        self.run_named(ports, &names, now).await
    }

    /// Runs the sources on their schedules until `shutdown` completes. At start, every source
    /// that never ran or whose schedule fired while nothing ran it runs once. `on_report` sees
    /// each run's reports.
    pub async fn run_scheduled(
        &mut self,
        ports: SocialPorts<'_>,
        now: &(dyn Fn() -> Millis + Sync),
        shutdown: impl Future<Output = ()>,
        mut on_report: impl FnMut(&[SourceReport]),
    ) -> Result<(), SocialError> {
        let mut last: HashMap<String, Option<Millis>> = HashMap::new();
        for b in &self.sources {
            let state = ports.social.source_state(&self.config.org, &b.config.name).await?;
            last.insert(b.config.name.clone(), state.and_then(|s| s.last_run_at));
        }
        tokio::pin!(shutdown);
        loop {
            let plan: Vec<(&str, &Schedule, Option<Millis>)> = self
                .sources
                .iter()
                .map(|b| {
                    (
                        b.config.name.as_str(),
                        &b.schedule,
                        last.get(&b.config.name).copied().flatten(),
                    )
                })
                .collect();
            let Some(next) = schedule::next_due(&plan, now()) else {
                tracing::info!("no schedule fires again; the social runner stops");
                return Ok(());
            };
            let due: Vec<String> = next.sources.iter().map(|s| (*s).to_owned()).collect();
            let wait = Duration::from_millis(u64::try_from(next.at - now()).unwrap_or(0));
            tokio::select! {
                () = &mut shutdown => return Ok(()),
                () = tokio::time::sleep(wait) => {}
            }
            let started = now();
            let reports = self.run_named(ports, &due, now).await?;
            for name in &due {
                last.insert(name.clone(), Some(started));
            }
            on_report(&reports);
        }
    }

    async fn run_named(
        &mut self,
        ports: SocialPorts<'_>,
        names: &[String],
        now: &(dyn Fn() -> Millis + Sync),
    ) -> Result<Vec<SourceReport>, SocialError> {
        let org = self.config.org.clone();
        // No request for an org that does not exist.
        if ports.accounts.org_grant(&org).await?.is_none() {
            return Err(SocialError::Config(format!("org {org:?} does not exist")));
        }
        let started = now();
        let mut states = Vec::new();
        let mut jobs = Vec::new();
        for b in self.sources.iter().filter(|b| names.contains(&b.config.name)) {
            let state = ports
                .social
                .source_state(&org, &b.config.name)
                .await?
                .unwrap_or_default();
            jobs.push((b.config.name.clone(), b.source.clone(), state.cursor.clone()));
            states.push(state);
        }
        let results = self.fetcher.run_all(jobs).await;
        let fetched = results
            .into_iter()
            .zip(states)
            .filter_map(|((name, result), state)| {
                let b = self.sources.iter().find(|b| b.config.name == name)?;
                Some(Fetched {
                    config: &b.config,
                    state,
                    result,
                })
            })
            .collect();
        settle(&mut self.pipeline, ports, &org, fetched, started, now()).await
    }
}
