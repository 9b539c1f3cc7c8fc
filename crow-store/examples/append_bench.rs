//! Insert throughput of `SqliteStore::append` against a bare rusqlite loop on the same schema.
//!
//! ```text
//! cargo run --release -p crow-store --example append_bench -- [EVENTS] [BATCH]
//! ```
//!
//! Both sides serialize every event to JSON and insert it with the same columns and indexes;
//! the bare loop is the ceiling (one connection, one transaction per batch, no channel, no
//! savepoint, no dedup accounting). Rates are given per second of wall time and per second of
//! CPU time of the whole process (Linux only), the latter being what one core sustains when
//! the machine is shared.

use std::time::Instant;

use crow_core::model::{
    Campaign, Context, DeviceClass, EventType, Interaction, Library, PageContext, Screen, Source, UserAgentInfo,
};
use crow_core::ports::EventStore;
use crow_store::{MIGRATIONS, SqliteStore, StoreConfig};
use serde_json::json;

fn event(i: usize) -> Interaction {
    Interaction {
        id: format!("evt-{i:012}-a7c3f0e2"),
        org_id: "org_0123456789abcdef".into(),
        event_type: if i.is_multiple_of(4) {
            EventType::Track
        } else {
            EventType::Page
        },
        name: i.is_multiple_of(4).then(|| "Product Viewed".into()),
        anonymous_id: Some(format!("anon-{:08x}", i / 7)),
        user_id: None,
        session_id: Some(format!("sess-{:08x}", i / 20)),
        group_id: None,
        previous_id: None,
        properties: json!({"product_id": format!("P-{}", i % 500), "price": 19.99, "currency": "EUR"})
            .as_object()
            .unwrap()
            .clone(),
        traits: Default::default(),
        context: Context {
            page: Some(PageContext {
                url: Some(format!("https://shop.example.com/products/{}?ref=home", i % 500)),
                path: Some(format!("/products/{}", i % 500)),
                referrer: Some("https://www.google.com/".into()),
                title: Some("Running shoes — Example Shop".into()),
                search: Some("?ref=home".into()),
            }),
            user_agent: Some(UserAgentInfo {
                browser: Some("Chrome".into()),
                browser_version: Some("124".into()),
                os: Some("Windows".into()),
                device: DeviceClass::Desktop,
            }),
            locale: Some("en-US".into()),
            timezone: Some("Europe/Paris".into()),
            screen: Some(Screen {
                width: Some(1920),
                height: Some(1080),
                density: Some(1.0),
            }),
            campaign: Some(Campaign {
                source: Some("google".into()),
                medium: Some("cpc".into()),
                name: Some("spring_sale".into()),
                ..Default::default()
            }),
            ip: Some("203.0.113.0".into()),
            library: Some(Library {
                name: "crow.js".into(),
                version: Some("1.0.0".into()),
            }),
            extra: Default::default(),
        },
        timestamp: 1_700_000_000_000 + i as i64,
        original_timestamp: None,
        sent_at: Some(1_700_000_000_000 + i as i64),
        received_at: 1_700_000_000_000 + i as i64 + 30,
        source: Source::Crow,
        is_bot: false,
        pii_scrubbed: 0,
        person_id: None,
        referrer_class: None,
        analysis: None,
    }
}

/// CPU seconds (user + system) of this process so far, from /proc (NaN elsewhere).
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return f64::NAN;
    };
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(f64::NAN);
    (ticks(11) + ticks(12)) / 100.0
}

/// Events per wall second and per CPU second since `start`/`cpu0`.
struct Rate {
    wall: f64,
    cpu: f64,
}

impl Rate {
    fn since(n: usize, start: Instant, cpu0: f64) -> Rate {
        Rate {
            wall: n as f64 / start.elapsed().as_secs_f64(),
            cpu: n as f64 / (cpu_seconds() - cpu0),
        }
    }
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:>8.0} events/s wall, {:>8.0} events/s per CPU second",
            self.wall, self.cpu
        )
    }
}

fn bare_loop(events: &[Interaction], batch: usize) -> Rate {
    let dir = tempfile::tempdir().unwrap();
    let conn = rusqlite::Connection::open(dir.path().join("bare.db")).unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    conn.pragma_update(None, "synchronous", "NORMAL").unwrap();
    conn.pragma_update(None, "cache_size", -16_384).unwrap();
    for m in MIGRATIONS {
        conn.execute_batch(m.sql).unwrap();
    }
    let (start, cpu0) = (Instant::now(), cpu_seconds());
    for chunk in events.chunks(batch) {
        let tx = conn.unchecked_transaction().unwrap();
        {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO interactions (org_id, id, type, name, anonymous_id, user_id, person_id, \
                     session_id, timestamp, received_at, is_bot, pii_scrubbed, page_path, referrer_class, data) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
                )
                .unwrap();
            for e in chunk {
                let data = serde_json::to_string(e).unwrap();
                stmt.execute(rusqlite::params![
                    e.org_id,
                    e.id,
                    e.event_type.as_str(),
                    e.name,
                    e.anonymous_id,
                    e.user_id,
                    e.person_id,
                    e.session_id,
                    e.timestamp,
                    e.received_at,
                    e.is_bot,
                    e.pii_scrubbed,
                    e.context.page.as_ref().and_then(|p| p.path.as_deref()),
                    e.referrer_class.map(|r| r.as_str()),
                    data,
                ])
                .unwrap();
            }
        }
        tx.commit().unwrap();
    }
    Rate::since(events.len(), start, cpu0)
}

async fn store_sequential(events: &[Interaction], batch: usize) -> (Rate, u64) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path(), StoreConfig::default()).unwrap();
    let batches: Vec<Vec<Interaction>> = events.chunks(batch).map(<[_]>::to_vec).collect();
    let (start, cpu0) = (Instant::now(), cpu_seconds());
    for b in batches {
        store.append("org_0123456789abcdef", b, vec![]).await.unwrap();
    }
    (Rate::since(events.len(), start, cpu0), store.commit_count())
}

async fn store_concurrent(events: &[Interaction], batch: usize, tasks: usize) -> (Rate, u64) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path(), StoreConfig::default()).unwrap();
    let mut per_task: Vec<Vec<Vec<Interaction>>> = vec![Vec::new(); tasks];
    for (i, b) in events.chunks(batch).enumerate() {
        per_task[i % tasks].push(b.to_vec());
    }
    let (start, cpu0) = (Instant::now(), cpu_seconds());
    let handles: Vec<_> = per_task
        .into_iter()
        .map(|bs| {
            let store = store.clone();
            tokio::spawn(async move {
                for b in bs {
                    store.append("org_0123456789abcdef", b, vec![]).await.unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.await.unwrap();
    }
    (Rate::since(events.len(), start, cpu0), store.commit_count())
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(200_000);
    let batch: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(500);
    let events: Vec<Interaction> = (0..n).map(event).collect();
    let avg = events
        .iter()
        .map(|e| serde_json::to_string(e).unwrap().len())
        .sum::<usize>()
        / n;
    println!("{n} events, {avg} bytes of JSON each, batches of {batch}");
    println!("bare rusqlite loop:               {}", bare_loop(&events, batch));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let (rate, commits) = rt.block_on(store_sequential(&events, batch));
    println!("SqliteStore::append, 1 caller:    {rate} ({commits} commits)");
    let (rate, commits) = rt.block_on(store_concurrent(&events, 50, 32));
    println!("SqliteStore::append, 32 callers of 50 events: {rate} ({commits} commits)");
}
