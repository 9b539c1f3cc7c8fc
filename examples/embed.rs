//! Embedding CROW in your own service: no HTTP server, just the crates.
//!
//! Opens a store in a temporary directory, creates an org, hands a Segment-style batch to the
//! ingest service as a plain request (what your own web framework would pass on), runs the
//! workflows once, and reads the sessions back.
//!
//! ```sh
//! cargo run -p crow-e2e --example embed
//! ```

use crow_core::ports::{EventStore, SessionQuery, queues};
use crow_ingest::http::HttpRequest;
use crow_ingest::ingest::{IngestConfig, IngestService};
use crow_ingest::workflows::{PortRefs, trigger};
use crow_store::{LocalBlobStore, SqliteStore, StoreConfig};
use serde_json::json;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let store = SqliteStore::open(dir.path(), StoreConfig::default())?;
    let blobs = LocalBlobStore::new(&dir.path().join("objects"))?;
    let now = 1_764_583_200_000; // pass your clock in: the crates never read it themselves
    let creds = store.create_org("Embedded Shop", now).await?;
    let ingest = IngestService::new(store, IngestConfig::default());

    let body = json!({"writeKey": creds.write_key, "batch": [
        {"type": "page", "anonymousId": "visitor-1", "messageId": "e1", "timestamp": "2025-12-01T10:00:00Z",
         "context": {"page": {"url": "https://shop.example/?utm_source=newsletter&utm_medium=email"}}},
        {"type": "track", "event": "Product Added", "anonymousId": "visitor-1", "messageId": "e2",
         "timestamp": "2025-12-01T10:02:00Z", "properties": {"sku": "TR-42", "note": "call me on +44 20 7946 0958"}}
    ]});
    let request = HttpRequest {
        method: "POST".into(),
        path: "/v1/batch".into(),
        headers: vec![("content-type".into(), "application/json".into())],
        body: serde_json::to_vec(&body)?,
        ..HttpRequest::default()
    };
    let (response, report) = ingest.handle(&request, now).await;
    println!(
        "ingest answered {}: {}",
        response.status,
        String::from_utf8_lossy(&response.body)
    );
    println!("accepted {} events", report.accepted);

    // Drain the durable queue into the workflows (a server does this in a background task).
    let ports = PortRefs::shared(ingest.store(), &blobs);
    for queue in [queues::INTERACTION, queues::PROCESSING] {
        let tick = trigger::run_once(&ports, queue, 16, now, 0.5).await?;
        println!("{queue}: {} jobs processed", tick.processed);
    }

    let org = &creds.org_id;
    let sessions = ingest
        .store()
        .list_sessions(
            org,
            &SessionQuery {
                limit: 10,
                ..Default::default()
            },
        )
        .await?;
    for s in &sessions.data {
        println!(
            "session {} of {}: {} events, entry {:?}, source {:?}",
            s.id, s.person_id, s.event_count, s.entry_path, s.referrer_class
        );
    }
    let stored = ingest.store().get_interactions(org, &["e2".to_owned()]).await?;
    println!("stored note: {}", stored[0].properties["note"]);
    Ok(())
}
