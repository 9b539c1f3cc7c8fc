//! `crow social`: the social listening channel from the command line.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context as _, Result};
use crow_core::ports::{CatalogStore, MentionQuery, SocialStore};
use crow_ingest::social::config::SocialConfig;
use crow_ingest::social::pipeline::PassReport;
use crow_ingest::social::runner::{Runner, SocialPorts, SourceReport};
use crow_nlp::analyzer::Analyzer;
use crow_server::{Backends, now_millis};

/// The `crow social` subcommands (the long help is on `Command::Social` in main.rs).
#[derive(Debug, clap::Subcommand)]
pub enum SocialCommand {
    /// Poll every enabled source once (or only --source), store what is new, then run
    /// `analyze-social` on the selected mentions (unless a running `crow serve` is the worker).
    Once {
        /// The social config (TOML).
        #[arg(long)]
        config: PathBuf,
        /// Only this source.
        #[arg(long)]
        source: Option<String>,
        /// Print the reports as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Poll the sources on their cron schedules (UTC) until Ctrl-C or SIGTERM. A source whose
    /// schedule fired while nothing ran it runs once at start, not once per missed slot.
    Run {
        /// The social config (TOML).
        #[arg(long)]
        config: PathBuf,
        /// Print each run's reports as JSON lines.
        #[arg(long)]
        json: bool,
    },
    /// Each configured source's state: last run, last success, last error.
    Status {
        /// The social config (TOML).
        #[arg(long)]
        config: PathBuf,
    },
    /// List stored mentions, newest first.
    Mentions {
        /// Org.
        #[arg(long)]
        org: String,
        /// How many.
        #[arg(long, default_value_t = 20)]
        limit: u32,
        /// Only the mentions the pre-filter selected.
        #[arg(long)]
        selected: bool,
        /// Only this platform.
        #[arg(long)]
        platform: Option<String>,
        /// One JSON object per mention.
        #[arg(long)]
        json: bool,
    },
}

/// Reads and validates a social config.
pub fn load_config(path: &Path) -> Result<SocialConfig> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let config: SocialConfig = toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    config
        .validate()
        .with_context(|| format!("checking {}", path.display()))?;
    Ok(config)
}

/// The lexicon tier with the org's catalog, the pre-filter's scorer.
pub fn lexicon(b: &Backends) -> Analyzer {
    Analyzer::lexicon().with_catalog(Arc::new(b.store().clone()) as Arc<dyn CatalogStore>)
}

/// Runs the sources once, then drains the `social` queue (analyze-social) when this process
/// may be the worker. Returns the reports and how many jobs were run.
pub async fn run_once(b: &Backends, config: SocialConfig, only: Option<&str>) -> Result<(Vec<SourceReport>, usize)> {
    crate::require_org(b, &config.org).await?;
    let mut runner = Runner::new(config, |name| std::env::var(name).ok())?;
    let lexicon = lexicon(b);
    let ports = SocialPorts {
        social: b.store(),
        accounts: b.store(),
        lexicon: &lexicon,
    };
    let reports = runner.run_once(ports, only, &now_millis).await?;
    let jobs = b.drain_if_worker().await?.unwrap_or_else(|| {
        eprintln!(
            "crow social: another process (crow serve) is this data directory's worker; it will analyze the selected mentions"
        );
        0
    });
    Ok((reports, jobs))
}

/// Sums the reports.
pub fn total(reports: &[SourceReport]) -> PassReport {
    let mut t = PassReport::default();
    for r in reports {
        t.add(&r.pass);
    }
    t
}

fn print_reports(reports: &[SourceReport]) {
    println!(
        "  {:<20} {:<10} {:>7} {:>5} {:>6} {:>5} {:>8}  {:>11}",
        "source", "platform", "fetched", "new", "exact", "near", "selected", "+ / = / −"
    );
    for r in reports {
        let p = &r.pass;
        let split = format!(
            "{} / {} / {}",
            p.sentiment.positive, p.sentiment.neutral, p.sentiment.negative
        );
        print!(
            "  {:<20} {:<10} {:>7} {:>5} {:>6} {:>5} {:>8}  {:>11}",
            r.source,
            r.platform.as_str(),
            p.fetched,
            p.stored,
            p.exact_duplicates,
            p.near_duplicates,
            p.selected,
            split
        );
        match (&r.error, r.not_modified) {
            (Some(e), _) => println!("  error: {e}"),
            (None, true) => println!("  (not modified)"),
            _ => println!(),
        }
    }
}

/// `crow social ...`.
pub async fn command(data: &Path, models: Option<&Path>, cmd: SocialCommand) -> Result<()> {
    match cmd {
        SocialCommand::Once { config, source, json } => {
            let config = load_config(&config)?;
            let b = crate::backends(data, models)?;
            let (reports, jobs) = run_once(&b, config, source.as_deref()).await?;
            if json {
                for r in &reports {
                    println!("{}", serde_json::to_string(r)?);
                }
            } else {
                print_reports(&reports);
                let t = total(&reports);
                println!(
                    "  kept {} new mentions, dropped {} duplicates ({} exact, {} near), sent {} to analyze-social ({jobs} jobs run)",
                    t.stored,
                    t.exact_duplicates + t.near_duplicates,
                    t.exact_duplicates,
                    t.near_duplicates,
                    t.selected
                );
            }
            if reports.iter().all(|r| r.error.is_some()) && !reports.is_empty() {
                anyhow::bail!("every source failed");
            }
            Ok(())
        }
        SocialCommand::Run { config, json } => {
            let config = load_config(&config)?;
            let b = crate::backends(data, models)?;
            crate::require_org(&b, &config.org).await?;
            let mut runner = Runner::new(config, |name| std::env::var(name).ok())?;
            let lexicon = lexicon(&b);
            let ports = SocialPorts {
                social: b.store(),
                accounts: b.store(),
                lexicon: &lexicon,
            };
            let worker = b.become_worker().await?;
            eprintln!(
                "crow social: polling {} source(s) for org {}; Ctrl-C to stop",
                runner.sources().count(),
                runner.org()
            );
            let shutdown = async {
                let _ = tokio::signal::ctrl_c().await;
            };
            // The selected mentions are analyzed as they come (unless `crow serve` is the worker).
            let worker_loop = async {
                loop {
                    if b.work_once(64).await == 0 {
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    }
                }
            };
            let scheduled = runner.run_scheduled(ports, &now_millis, shutdown, |reports| {
                if json {
                    for r in reports {
                        if let Ok(line) = serde_json::to_string(r) {
                            println!("{line}");
                        }
                    }
                } else {
                    print_reports(reports);
                }
            });
            tokio::select! {
                result = scheduled => result?,
                () = worker_loop, if worker.is_some() => {}
            }
            if worker.is_some() {
                while b.work_once(64).await > 0 {}
            }
            Ok(())
        }
        SocialCommand::Status { config } => {
            let config = load_config(&config)?;
            let b = crate::store_backends(data)?;
            println!(
                "  {:<20} {:<10} {:<22} {:<30}  last error",
                "source", "platform", "schedule", "last run (UTC)"
            );
            for s in &config.sources {
                let state = b.store().source_state(&config.org, &s.name).await?;
                let last = state
                    .as_ref()
                    .and_then(|s| s.last_run_at)
                    .map_or("never".to_owned(), crow_core::time::format_millis);
                let error = state.and_then(|s| s.last_error).unwrap_or_default();
                let name = if s.enabled {
                    s.name.clone()
                } else {
                    format!("{} (off)", s.name)
                };
                println!(
                    "  {:<20} {:<10} {:<22} {:<30}  {error}",
                    name,
                    s.platform.as_str(),
                    s.schedule,
                    last
                );
            }
            Ok(())
        }
        SocialCommand::Mentions {
            org,
            limit,
            selected,
            platform,
            json,
        } => {
            let b = crate::store_backends(data)?;
            crate::require_org(&b, &org).await?;
            let page = b
                .store()
                .list_mentions(
                    &org,
                    &MentionQuery {
                        limit,
                        selected: selected.then_some(true),
                        platform,
                        ..MentionQuery::default()
                    },
                )
                .await?;
            for m in &page.data {
                if json {
                    println!("{}", serde_json::to_string(m)?);
                } else {
                    let score = m.sentiment.or(m.lexicon_score).unwrap_or(0.0);
                    let text: String = m.text.chars().take(90).collect();
                    println!(
                        "  {:<10} {:+.2} {} \"{text}\"",
                        m.platform,
                        score,
                        if m.selected { "*" } else { " " }
                    );
                }
            }
            Ok(())
        }
    }
}
