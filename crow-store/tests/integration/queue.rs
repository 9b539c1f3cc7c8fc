//! JobQueue: leases, retries, dead letters, ordering.

use crow_core::ports::{JobQueue, NewJob, QueueDepth, RetryPolicy};
use serde_json::json;

use crate::common::store;

fn job(n: i64) -> NewJob {
    NewJob::new("q", "k", json!({ "n": n }))
}

fn ns(jobs: &[crow_core::ports::Job]) -> Vec<i64> {
    jobs.iter().map(|j| j.payload["n"].as_i64().unwrap()).collect()
}

#[tokio::test]
async fn reserve_delivers_oldest_first_within_one_queue() {
    let (_dir, s) = store();
    s.enqueue((0..5).map(job).collect(), 100).await.unwrap();
    s.enqueue(vec![NewJob::new("other", "k", json!({"n": 99}))], 100)
        .await
        .unwrap();
    let first = s.reserve("q", 3, 1_000, 200).await.unwrap();
    assert_eq!(ns(&first), [0, 1, 2]);
    assert!(
        first
            .iter()
            .all(|j| j.attempts == 1 && j.lease_until == 1_200 && j.enqueued_at == 100)
    );
    let rest = s.reserve("q", 10, 1_000, 200).await.unwrap();
    assert_eq!(ns(&rest), [3, 4]);
    assert!(s.reserve("q", 10, 1_000, 200).await.unwrap().is_empty());
    assert_eq!(
        s.depth("q").await.unwrap(),
        QueueDepth {
            ready: 0,
            in_flight: 5,
            dead: 0
        }
    );
    assert_eq!(s.depth("other").await.unwrap().ready, 1);
    for j in first.iter().chain(&rest) {
        s.ack(j.id).await.unwrap();
    }
    s.ack(first[0].id).await.unwrap(); // acking twice is fine
    s.ack(123_456).await.unwrap();
    assert_eq!(s.depth("q").await.unwrap(), QueueDepth::default());
    assert!(s.reserve("q", 0, 1_000, 200).await.unwrap().is_empty());
}

#[tokio::test]
async fn an_expired_lease_is_delivered_again() {
    let (_dir, s) = store();
    s.enqueue(vec![job(1)], 0).await.unwrap();
    let a = s.reserve("q", 1, 100, 1_000).await.unwrap();
    assert_eq!(a.len(), 1);
    assert!(s.reserve("q", 1, 100, 1_099).await.unwrap().is_empty(), "still leased");
    let b = s.reserve("q", 1, 100, 1_100).await.unwrap();
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].id, a[0].id);
    assert_eq!(b[0].attempts, 2);
    assert_eq!(b[0].lease_until, 1_200);
}

#[tokio::test]
async fn delayed_jobs_wait_for_not_before() {
    let (_dir, s) = store();
    let mut delayed = job(1);
    delayed.not_before = Some(5_000);
    s.enqueue(vec![delayed, job(2)], 1_000).await.unwrap();
    assert_eq!(ns(&s.reserve("q", 10, 100_000, 1_000).await.unwrap()), [2]);
    assert_eq!(s.depth("q").await.unwrap().ready, 1);
    assert_eq!(ns(&s.reserve("q", 10, 100, 5_000).await.unwrap()), [1]);
}

#[tokio::test]
async fn failures_back_off_then_dead_letter() {
    let (_dir, s) = store();
    let policy = RetryPolicy {
        max_attempts: 4,
        base_delay_ms: 100,
        max_delay_ms: 10_000,
    };
    s.enqueue(vec![job(7)], 0).await.unwrap();
    let mut now = 0;
    let mut delays = Vec::new();
    for attempt in 1..=4u32 {
        let got = s.reserve("q", 1, 50, now).await.unwrap();
        assert_eq!(got.len(), 1, "attempt {attempt}");
        assert_eq!(got[0].attempts, attempt);
        let dead = s
            .fail(got[0].id, &format!("boom {attempt}"), &policy, now, 1.0)
            .await
            .unwrap();
        if attempt < 4 {
            assert!(!dead);
            // not deliverable before the backoff...
            let delay = policy.backoff(attempt, 1.0);
            assert!(s.reserve("q", 1, 50, now + delay - 1).await.unwrap().is_empty());
            delays.push(delay);
            now += delay;
        } else {
            assert!(dead, "dead after max_attempts deliveries");
        }
    }
    assert_eq!(delays, [100, 200, 400], "backoff doubles");
    assert!(s.reserve("q", 1, 50, i64::MAX / 2).await.unwrap().is_empty());
    assert_eq!(
        s.depth("q").await.unwrap(),
        QueueDepth {
            ready: 0,
            in_flight: 0,
            dead: 1
        }
    );
    let dead = s.dead_letters("q", 10).await.unwrap();
    assert_eq!(ns(&dead), [7]);
    assert_eq!(dead[0].attempts, 4);
    assert_eq!(s.job_last_error(dead[0].id).await.unwrap().as_deref(), Some("boom 4"));
    // Failing a dead job changes nothing; an unknown one is NotFound.
    assert!(s.fail(dead[0].id, "again", &policy, now, 0.0).await.unwrap());
    assert_eq!(s.job_last_error(dead[0].id).await.unwrap().as_deref(), Some("boom 4"));
    let err = s.fail(987_654, "x", &policy, now, 0.0).await.unwrap_err();
    assert!(matches!(err, crow_core::Error::NotFound(_)), "{err}");
    assert!(s.dead_letters("other", 10).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_failed_job_goes_back_to_ready_and_keeps_its_place() {
    let (_dir, s) = store();
    s.enqueue(vec![job(1), job(2)], 0).await.unwrap();
    let first = s.reserve("q", 1, 1_000, 0).await.unwrap();
    s.fail(first[0].id, "x", &RetryPolicy::default(), 0, 0.0).await.unwrap();
    assert_eq!(
        s.depth("q").await.unwrap(),
        QueueDepth {
            ready: 2,
            in_flight: 0,
            dead: 0
        }
    );
    // Once its backoff has passed, the older job comes first again.
    let both = s.reserve("q", 10, 1_000, 1_000_000).await.unwrap();
    assert_eq!(ns(&both), [1, 2]);
}

#[tokio::test]
async fn job_ids_are_never_reused() {
    let (_dir, s) = store();
    s.enqueue(vec![job(1)], 0).await.unwrap();
    let a = s.reserve("q", 1, 10, 0).await.unwrap();
    s.ack(a[0].id).await.unwrap();
    s.enqueue(vec![job(2)], 0).await.unwrap();
    let b = s.reserve("q", 1, 10, 0).await.unwrap();
    assert!(b[0].id > a[0].id);
}
