//! Counters a user can scrape, in the Prometheus text exposition format.

use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crow_core::ports::QueueDepth;

/// Upper bounds (seconds) of the request latency histogram buckets.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// Server metrics. Cheap to update from every request.
#[derive(Debug, Default)]
pub struct Metrics {
    accepted: AtomicU64,
    duplicates: AtomicU64,
    sdk_dropped: AtomicU64,
    rejected: Mutex<Vec<(&'static str, u64)>>,
    requests: Mutex<Vec<((&'static str, u16), u64)>>,
    latency_buckets: [AtomicU64; BUCKETS.len()],
    latency_count: AtomicU64,
    latency_sum_us: AtomicU64,
    jobs_processed: AtomicU64,
    jobs_failed: AtomicU64,
    jobs_dead: AtomicU64,
}

impl Metrics {
    /// Records what one ingest request did.
    pub fn record_ingest(&self, report: &crow_ingest::ingest::IngestReport) {
        self.accepted.fetch_add(report.accepted, Ordering::Relaxed);
        self.duplicates.fetch_add(report.duplicates, Ordering::Relaxed);
        if report.client_dropped > 0 {
            self.sdk_dropped.fetch_add(report.client_dropped, Ordering::Relaxed);
        }
        if !report.rejected.is_empty() {
            let mut rejected = self.rejected.lock().unwrap_or_else(|e| e.into_inner());
            for (reason, n) in &report.rejected {
                match rejected.iter_mut().find(|(r, _)| r == reason) {
                    Some((_, c)) => *c += n,
                    None => rejected.push((reason, *n)),
                }
            }
        }
    }

    /// Records a finished HTTP request.
    pub fn record_request(&self, route: &'static str, status: u16, seconds: f64) {
        for (i, b) in BUCKETS.iter().enumerate() {
            if seconds <= *b {
                self.latency_buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        self.latency_sum_us.fetch_add((seconds * 1e6) as u64, Ordering::Relaxed);
        let mut requests = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        match requests.iter_mut().find(|(k, _)| *k == (route, status)) {
            Some((_, c)) => *c += 1,
            None => requests.push(((route, status), 1)),
        }
    }

    /// Records what a worker tick did.
    pub fn record_jobs(&self, processed: u64, failed: u64, dead: u64) {
        self.jobs_processed.fetch_add(processed, Ordering::Relaxed);
        self.jobs_failed.fetch_add(failed, Ordering::Relaxed);
        self.jobs_dead.fetch_add(dead, Ordering::Relaxed);
    }

    /// Events accepted so far.
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }

    /// Renders the exposition text, with queue depths and the commit count read at scrape time.
    pub fn render(&self, queues: &[(&str, QueueDepth)], commits: u64) -> String {
        let mut out = String::with_capacity(2048);
        let _ = writeln!(out, "# HELP crow_events_accepted_total Events stored.");
        let _ = writeln!(out, "# TYPE crow_events_accepted_total counter");
        let _ = writeln!(out, "crow_events_accepted_total {}", self.accepted());
        let _ = writeln!(
            out,
            "# HELP crow_events_duplicate_total Events already stored (same id), not stored again."
        );
        let _ = writeln!(out, "# TYPE crow_events_duplicate_total counter");
        let _ = writeln!(
            out,
            "crow_events_duplicate_total {}",
            self.duplicates.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP crow_sdk_dropped_events_total Events that browsers' bounded offline queues dropped before they could be sent, as reported by crow.js."
        );
        let _ = writeln!(out, "# TYPE crow_sdk_dropped_events_total counter");
        let _ = writeln!(
            out,
            "crow_sdk_dropped_events_total {}",
            self.sdk_dropped.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP crow_events_rejected_total Events or requests rejected, by reason."
        );
        let _ = writeln!(out, "# TYPE crow_events_rejected_total counter");
        for (reason, n) in self.rejected.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            let _ = writeln!(out, "crow_events_rejected_total{{reason=\"{reason}\"}} {n}");
        }
        let _ = writeln!(out, "# HELP crow_queue_depth Jobs per queue and state.");
        let _ = writeln!(out, "# TYPE crow_queue_depth gauge");
        for (q, d) in queues {
            let _ = writeln!(out, "crow_queue_depth{{queue=\"{q}\",state=\"ready\"}} {}", d.ready);
            let _ = writeln!(
                out,
                "crow_queue_depth{{queue=\"{q}\",state=\"in_flight\"}} {}",
                d.in_flight
            );
            let _ = writeln!(out, "crow_queue_depth{{queue=\"{q}\",state=\"dead\"}} {}", d.dead);
        }
        let _ = writeln!(
            out,
            "# HELP crow_jobs_total Jobs handled by the workflow trigger, by outcome."
        );
        let _ = writeln!(out, "# TYPE crow_jobs_total counter");
        let _ = writeln!(
            out,
            "crow_jobs_total{{outcome=\"processed\"}} {}",
            self.jobs_processed.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "crow_jobs_total{{outcome=\"failed\"}} {}",
            self.jobs_failed.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "crow_jobs_total{{outcome=\"dead\"}} {}",
            self.jobs_dead.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP crow_store_commits_total Write transactions committed (group commit shares one among many requests)."
        );
        let _ = writeln!(out, "# TYPE crow_store_commits_total counter");
        let _ = writeln!(out, "crow_store_commits_total {commits}");
        let _ = writeln!(
            out,
            "# HELP crow_http_requests_total HTTP requests by route and status."
        );
        let _ = writeln!(out, "# TYPE crow_http_requests_total counter");
        for ((route, status), n) in self.requests.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            let _ = writeln!(
                out,
                "crow_http_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}"
            );
        }
        let _ = writeln!(out, "# HELP crow_http_request_duration_seconds Request latency.");
        let _ = writeln!(out, "# TYPE crow_http_request_duration_seconds histogram");
        for (i, b) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "crow_http_request_duration_seconds_bucket{{le=\"{b}\"}} {}",
                self.latency_buckets[i].load(Ordering::Relaxed)
            );
        }
        let count = self.latency_count.load(Ordering::Relaxed);
        let _ = writeln!(out, "crow_http_request_duration_seconds_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(
            out,
            "crow_http_request_duration_seconds_sum {}",
            self.latency_sum_us.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "crow_http_request_duration_seconds_count {count}");
        out
    }
}
