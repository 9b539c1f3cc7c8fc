//! The trigger: the queue consumer that starts the workflow each job names.
//!
//! [`Trigger::run_once`] leases up to `max` jobs of one queue, runs each job's workflow
//! ([`handle_job`]: `interaction` → [`process_interaction_with`], `archive-batch` →
//! [`archive_batch`]), acks the jobs that succeeded and fails the others with the retry
//! policy: exponential backoff with jitter, dead-letter after `max_attempts` deliveries. A job
//! that can never succeed (an unknown kind, a payload that does not parse:
//! [`Error::Invalid`]) is dead-lettered at once, with an error that says why.
//!
//! A `process-interaction` job runs as the workflow run `job-{id}`, so a redelivered job (after
//! a crash, an expired lease or a failure) resumes its finished steps instead of repeating them.
//!
//! Under load, the `process-interaction` jobs of one org leased in the same tick are
//! **coalesced** into one workflow run over the union of their events (run id
//! `jobs-{first}-{last}-{count}`): the per-run work (step records, acks, one sessionization
//! pass per person instead of one per batch) is paid once, which is what lets the worker keep
//! up with ingest. The outcome is the same as running them one by one, in time order; a
//! redelivered group that is composed differently simply recomputes its (idempotent) steps.
//! `archive-batch` jobs of one org are coalesced the same way into one archive object.
//!
//! The trigger never sleeps or reads a clock: the shell calls it in its own loop (a tokio task
//! natively, a Queue consumer or a cron trigger in the Worker) and passes `now` and a uniform
//! random `jitter` in `[0, 1)`.

use crow_core::model::Millis;
use crow_core::ports::{Job, JobQueue, RetryPolicy};
use crow_core::{Error, Result};
use serde::{Deserialize, Serialize};
use tracing::Instrument;

use super::{Ports, WorkflowConfig, analyze_social, archive_batch, process_interaction_with, process_video};
use crate::jobs::{
    ANALYZE_SOCIAL, ARCHIVE_BATCH, InteractionBatch, MentionBatch, PROCESS_INTERACTION, PROCESS_VIDEO, VideoBatch,
};
use crate::jobs::{EXPORT_REPORT, ExportJob};

/// What one [`Trigger::run_once`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TickReport {
    /// Jobs whose workflow succeeded (acked).
    pub processed: usize,
    /// Jobs whose workflow failed, including those dead-lettered now.
    pub failed: usize,
    /// Of the failed jobs, those moved to the dead-letter state.
    pub dead: usize,
}

/// The queue consumer's settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Trigger {
    /// How long a delivered job is leased before it is delivered again (60 s).
    pub lease_ms: i64,
    /// Retries and dead-lettering ([`RetryPolicy::default`]: 8 deliveries, 1 s doubling to 5 min).
    pub policy: RetryPolicy,
    /// Settings of the workflows.
    pub workflow: WorkflowConfig,
}

impl Default for Trigger {
    fn default() -> Self {
        Trigger {
            lease_ms: 60_000,
            policy: RetryPolicy::default(),
            workflow: WorkflowConfig::default(),
        }
    }
}

/// Spreads one jitter sample over the jobs of a tick (golden-ratio steps stay uniform).
fn job_jitter(jitter: f64, i: usize) -> f64 {
    (jitter + i as f64 * 0.618_033_988_749_895).fract()
}

impl Trigger {
    /// Leases up to `max` jobs of `queue` and runs their workflows one after the other.
    ///
    /// Errors of the queue's `reserve` are returned; a failing `ack` or `fail` is logged and
    /// the job is counted as its workflow ended (the queue delivers it again after its lease,
    /// and the workflows are idempotent).
    pub async fn run_once<P: Ports + ?Sized>(
        &self,
        ports: &P,
        queue: &str,
        max: usize,
        now: Millis,
        jitter: f64,
    ) -> Result<TickReport> {
        let jobs = ports.queue().reserve(queue, max, self.lease_ms, now).await?;
        let mut report = TickReport::default();
        for unit in coalesce(&jobs) {
            let result = match &unit {
                Unit::Single(job) => {
                    let span = tracing::info_span!("job", id = job.id, queue = %job.queue, kind = %job.kind, attempt = job.attempts);
                    handle_job(ports, job, now, &self.workflow).instrument(span).await
                }
                Unit::Merged(group, batch) if group[0].kind == ARCHIVE_BATCH => {
                    let span = tracing::info_span!("jobs", kind = ARCHIVE_BATCH, count = group.len());
                    archive_batch(ports, batch, now).instrument(span).await.map(|_| ())
                }
                Unit::Merged(group, batch) => {
                    let run_id = format!("jobs-{}-{}-{}", group[0].id, group[group.len() - 1].id, group.len());
                    let span =
                        tracing::info_span!("jobs", run = %run_id, count = group.len(), events = batch.event_ids.len());
                    process_interaction_with(ports, &run_id, batch, now, &self.workflow)
                        .instrument(span)
                        .await
                        .map(|_| ())
                }
            };
            for (i, job) in unit.jobs() {
                self.settle(ports, job, i, &result, now, jitter, &mut report).await;
            }
        }
        Ok(report)
    }

    /// Runs the workflow of one job leased elsewhere (the Worker hands each `export-report` job
    /// to a Cloudflare Workflow instance), then acks it or fails it with the retry policy, as
    /// [`run_once`](Self::run_once) does for the jobs it leases.
    pub async fn run_job<P: Ports + ?Sized>(&self, ports: &P, job: &Job, now: Millis, jitter: f64) -> TickReport {
        let span =
            tracing::info_span!("job", id = job.id, queue = %job.queue, kind = %job.kind, attempt = job.attempts);
        let result = handle_job(ports, job, now, &self.workflow).instrument(span).await;
        let mut report = TickReport::default();
        self.settle(ports, job, 0, &result, now, jitter, &mut report).await;
        report
    }

    /// Acks a job whose workflow succeeded, or fails it with the retry policy.
    #[allow(clippy::too_many_arguments)]
    async fn settle<P: Ports + ?Sized>(
        &self,
        ports: &P,
        job: &Job,
        i: usize,
        result: &Result<()>,
        now: Millis,
        jitter: f64,
        report: &mut TickReport,
    ) {
        {
            match result {
                Ok(()) => {
                    report.processed += 1;
                    if let Err(e) = ports.queue().ack(job.id).await {
                        tracing::warn!(job = job.id, error = %e, "ack failed; the job will be delivered again");
                    }
                }
                Err(err) => {
                    report.failed += 1;
                    let permanent = matches!(err, Error::Invalid { .. });
                    let policy = if permanent {
                        RetryPolicy {
                            max_attempts: 1,
                            ..self.policy
                        }
                    } else {
                        self.policy
                    };
                    let message = format!("{}: {err}", job.kind);
                    tracing::warn!(job = job.id, kind = %job.kind, attempt = job.attempts, permanent, error = %err, "job failed");
                    match ports
                        .queue()
                        .fail(job.id, &message, &policy, now, job_jitter(jitter, i))
                        .await
                    {
                        Ok(true) => {
                            report.dead += 1;
                            tracing::error!(job = job.id, kind = %job.kind, error = %err, "job dead-lettered");
                        }
                        Ok(false) => {}
                        Err(e) => {
                            tracing::warn!(job = job.id, error = %e, "fail failed; the job will be delivered again")
                        }
                    }
                }
            }
        }
    }
}

/// What one workflow run of a tick covers.
enum Unit<'a> {
    /// One job, run as is.
    Single(&'a Job),
    /// Jobs of one kind (`process-interaction` or `archive-batch`) and one org, run as one batch.
    Merged(Vec<&'a Job>, InteractionBatch),
}

impl<'a> Unit<'a> {
    /// The jobs of the unit with their position in the tick (for jitter).
    fn jobs(&self) -> Vec<(usize, &'a Job)> {
        match self {
            Unit::Single(j) => vec![(0, *j)],
            Unit::Merged(g, _) => g.iter().copied().enumerate().collect(),
        }
    }
}

/// Jobs of one (kind, org) with their payloads.
type Group<'a> = ((&'a str, String), Vec<&'a Job>, Vec<InteractionBatch>);

/// Groups the leased `process-interaction` and `archive-batch` jobs by kind and org (a group of
/// one stays a single job, so it keeps its resumable `job-{id}` run and its own archive key);
/// every other job runs alone. A merged archive is one object for the group's batches.
fn coalesce(jobs: &[Job]) -> Vec<Unit<'_>> {
    let mut units: Vec<Unit<'_>> = Vec::new();
    let mut groups: Vec<Group<'_>> = Vec::new();
    for job in jobs {
        match (job.kind.as_str(), batch_of(job)) {
            (kind @ (PROCESS_INTERACTION | ARCHIVE_BATCH), Ok(batch)) => {
                match groups
                    .iter_mut()
                    .find(|((k, org), _, _)| *k == kind && *org == batch.org_id)
                {
                    Some((_, js, bs)) => {
                        js.push(job);
                        bs.push(batch);
                    }
                    None => groups.push(((kind, batch.org_id.clone()), vec![job], vec![batch])),
                }
            }
            _ => units.push(Unit::Single(job)),
        }
    }
    for ((_, org_id), js, bs) in groups {
        if js.len() == 1 {
            units.push(Unit::Single(js[0]));
            continue;
        }
        let mut seen = std::collections::HashSet::new();
        let event_ids: Vec<String> = bs
            .iter()
            .flat_map(|b| b.event_ids.iter())
            .filter(|id| seen.insert(id.as_str()))
            .cloned()
            .collect();
        let merged = InteractionBatch {
            batch_id: format!("merged-{}", bs[0].batch_id),
            received_at: bs.iter().map(|b| b.received_at).max().unwrap_or(0),
            org_id,
            event_ids,
        };
        units.push(Unit::Merged(js, merged));
    }
    units
}

/// [`Trigger::run_once`] with the default settings.
pub async fn run_once<P: Ports + ?Sized>(
    ports: &P,
    queue: &str,
    max: usize,
    now: Millis,
    jitter: f64,
) -> Result<TickReport> {
    Trigger::default().run_once(ports, queue, max, now, jitter).await
}

fn batch_of(job: &Job) -> Result<InteractionBatch> {
    serde_json::from_value(job.payload.clone()).map_err(|e| {
        Error::invalid(
            "payload",
            format!("{} job {}: not an interaction batch: {e}", job.kind, job.id),
        )
    })
}

/// Runs the workflow a job names. For shells that receive jobs from elsewhere (the Worker's
/// Queue consumer) and ack them themselves.
pub async fn handle_job<P: Ports + ?Sized>(ports: &P, job: &Job, now: Millis, config: &WorkflowConfig) -> Result<()> {
    match job.kind.as_str() {
        PROCESS_INTERACTION => {
            let batch = batch_of(job)?;
            process_interaction_with(ports, &format!("job-{}", job.id), &batch, now, config).await?;
            Ok(())
        }
        ARCHIVE_BATCH => {
            let batch = batch_of(job)?;
            archive_batch(ports, &batch, now).await?;
            Ok(())
        }
        ANALYZE_SOCIAL => {
            let batch: MentionBatch = serde_json::from_value(job.payload.clone()).map_err(|e| {
                Error::invalid(
                    "payload",
                    format!("{} job {}: not a mention batch: {e}", job.kind, job.id),
                )
            })?;
            let (Some(social), Some(analyzer)) = (ports.social(), ports.analyzer()) else {
                return Err(Error::Backend(
                    "analyze-social needs the social store and a text analyzer; this worker has neither".into(),
                ));
            };
            analyze_social(social, analyzer, ports.embedder(), ports.indexes(), &batch, now).await?;
            Ok(())
        }
        PROCESS_VIDEO => {
            let batch: VideoBatch = serde_json::from_value(job.payload.clone()).map_err(|e| {
                Error::invalid(
                    "payload",
                    format!("{} job {}: not a video batch: {e}", job.kind, job.id),
                )
            })?;
            let Some(video) = ports.video() else {
                return Err(Error::Backend(
                    "process-video needs the video store; this worker has none".into(),
                ));
            };
            process_video(video, &batch, now).await?;
            Ok(())
        }
        EXPORT_REPORT => {
            let export: ExportJob = serde_json::from_value(job.payload.clone()).map_err(|e| {
                Error::invalid(
                    "payload",
                    format!("{} job {}: not an export job: {e}", job.kind, job.id),
                )
            })?;
            super::export_report(ports, &export, job.attempts, now).await?;
            Ok(())
        }
        other => Err(Error::invalid(
            "kind",
            format!(
                "unknown job kind {other:?} on queue {:?}: no workflow handles it",
                job.queue
            ),
        )),
    }
}
