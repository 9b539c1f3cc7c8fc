//! Crash safety: kill -9 the server again and again while a client sends batches with known
//! ids; every acknowledged event is stored exactly once and the queues drain.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crow_e2e::*;
use serde_json::json;

#[test]
fn kill_9_loses_no_acknowledged_event() {
    let dir = tempfile::tempdir().unwrap();
    let org = create_org(dir.path(), "Crashy");
    let mut srv = ServerProcess::start(dir.path(), 0, &[]);
    let port = srv.port();
    let acked: Arc<Mutex<BTreeSet<String>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let mut senders = Vec::new();
    for t in 0..3 {
        let (acked, stop, base, key) = (acked.clone(), stop.clone(), srv.base.clone(), org.write_key.clone());
        senders.push(std::thread::spawn(move || {
            let c = reqwest::blocking::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let ids: Vec<String> = (0..25).map(|i| format!("t{t}-b{n}-e{i}")).collect();
                let batch: Vec<_> = ids
                    .iter()
                    .map(|id| json!({"type": "track", "event": "Tick", "anonymousId": format!("a{t}"), "messageId": id, "properties": {"n": n}}))
                    .collect();
                // A batch is resent until acknowledged, as real clients do.
                if let Ok(r) = c.post(format!("{base}/v1/batch")).basic_auth(&key, Some("")).json(&json!({"batch": batch})).send() {
                    if r.status().as_u16() == 200 {
                        acked.lock().unwrap().extend(ids);
                        n += 1;
                    }
                    // a busy site, not a flood: the debug-build worker must be able to catch up
                    std::thread::sleep(Duration::from_millis(15));
                } else {
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }));
    }
    for _round in 0..5 {
        std::thread::sleep(Duration::from_millis(700));
        srv.kill9_in_place();
        srv = ServerProcess::start(dir.path(), port, &[]);
    }
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    for s in senders {
        s.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() > 500,
        "the clients got too few acknowledgements ({}) to prove anything",
        acked.len()
    );
    let stored = all_interactions(&srv.base, &org.api_key);
    let mut ids: Vec<String> = stored.iter().map(|e| e["id"].as_str().unwrap().to_owned()).collect();
    let total = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(total, ids.len(), "an event was stored twice");
    let stored: BTreeSet<String> = ids.into_iter().collect();
    let lost: Vec<_> = acked.difference(&stored).take(5).collect();
    assert!(
        lost.is_empty(),
        "acknowledged events lost: {lost:?} (of {})",
        acked.len()
    );
    // The follow-up work survived too: the queues drain and every event got a session.
    wait_queues_drained(&srv.base);
    let stored = all_interactions(&srv.base, &org.api_key);
    let unsessioned = stored.iter().filter(|e| e["session_id"].is_null()).count();
    assert_eq!(unsessioned, 0, "events without a session after the queues drained");
    let metrics = client()
        .get(format!("{}/metrics", srv.base))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(metrics.contains("state=\"dead\"} 0"), "{metrics}");
}
