//! GDPR: everything CROW holds about one person ([`person_export`], article 15) and its erasure
//! ([`erase_person`], article 17), across the three places it is kept:
//!
//! - the relational store ([`PersonStore`]): interactions, sessions, identity links, text
//!   analyses and embeddings, and what the job queue and the workflow step log say about them;
//! - the `interaction-embeddings` vector index: one record per analyzed event, keyed by the event
//!   id, whose metadata carries the person id and a snippet of the text;
//! - the raw-batch archives in the object store (`raw-interactions/{org}/...ndjson.gz`, written by
//!   [`archive_batch`](crate::workflows::archive_batch)): copies of the interactions as ingested.
//!
//! A person is any of their ids (anonymous, previous or user id) and every id identity
//! stitching tied to it (see [`PersonStore`]).
//!
//! # Erasure, in order
//! 1. Read what the store holds (the person's ids and event ids).
//! 2. Delete their records from the interaction-embeddings index and **compact** it
//!    ([`VectorIndex::compact`]), so no file of the index keeps a deleted vector or its metadata.
//!    The product and social indexes hold nothing about website visitors and are left alone
//!    (their ids are product and mention ids; deleting event ids there could hit a product).
//! 3. Rewrite every raw-batch archive of the org that holds one of their lines: decompress, drop
//!    the lines whose event id is theirs or whose anonymous, user or previous id is one of
//!    theirs, and write it back (or delete it when no line is left).
//! 4. Erase the store, in one transaction. It comes last, so that a failure in 2 or 3 leaves the
//!    store, which says what to erase, in place: retrying the request redoes everything.
//!    Events that arrived between 1 and 4 are erased by the store; their copies are then purged
//!    too.
//!
//! **Idempotency**: erasing a person that nothing is known about answers `None` (the API's
//! `404`), so the second of two erasures is a `404`. Even then the archives are searched for the
//! given id and the store finishes its file clean-up (crow-store truncates its write-ahead log),
//! so a retry after a failure, or after a copy written by a job that was running during the
//! erase, still removes what is left; when that removes something the answer is a report.
//!
//! Jobs in flight while a person is erased (a `process-interaction` or `archive-batch` run that
//! read the events before the erase) can write copies after it; the store's erase removes the
//! erased events from queued jobs, so only runs already in progress can. Erase after the queues
//! drained, or repeat the erasure by the same id.
//!
//! Written against the ports only (wasm32-clean).
//!
//! ```
//! # futures::executor::block_on(async {
//! use crow_core::ports::EventStore;
//! use crow_core::testing::{MemoryBlobStore, MemoryStore};
//! use crow_ingest::gdpr::erase_person;
//!
//! let (store, blobs) = (MemoryStore::new(), MemoryBlobStore::new());
//! let ev: crow_core::model::Interaction = serde_json::from_value(serde_json::json!({
//!     "id": "e1", "org_id": "org_a", "type": "page", "anonymous_id": "anon-1",
//!     "timestamp": 1_000, "received_at": 1_000})).unwrap();
//! store.append("org_a", vec![ev], vec![]).await.unwrap();
//! let report = erase_person(&store, &blobs, None, "org_a", "anon-1", 2_000).await.unwrap().unwrap();
//! assert_eq!(report.interactions, 1);
//! // Nothing is known about them any more.
//! assert!(erase_person(&store, &blobs, None, "org_a", "anon-1", 3_000).await.unwrap().is_none());
//! # });
//! ```

use std::collections::{BTreeSet, HashSet};
use std::io::{Read, Write};

use crow_core::model::Millis;
use crow_core::person::PersonData;
use crow_core::ports::{BlobStore, PersonStore};
use crow_core::vector::IndexKind;
use crow_core::{Error, Result};
use flate2::Compression;
use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::search::Indexes;
use crate::workflows::archive_prefix;

/// Ids per vector-index delete call.
const DELETE_CHUNK: usize = 1000;

/// A raw-batch archive that holds copies of a person's interactions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RawBatch {
    /// The object key.
    pub key: String,
    /// How many of its lines are theirs.
    pub events: u64,
}

/// A record of a person's in a vector index (the vector itself is their text's embedding,
/// exported with the text analysis).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct VectorEntry {
    /// The index (`interaction-embeddings`).
    pub index: String,
    /// The record id (the event id).
    pub id: String,
    /// The namespace, when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The metadata (type, name, field, session and person ids, sentiment, a text snippet).
    #[schema(value_type = Object)]
    pub metadata: Map<String, Value>,
}

/// Everything held about a person (as the API answers it, with RFC 3339 times).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PersonExport {
    /// What the relational store holds.
    pub person: PersonData,
    /// The raw-batch archives that hold copies of their interactions.
    pub raw_batches: Vec<RawBatch>,
    /// Their records in the vector indexes.
    pub vectors: Vec<VectorEntry>,
}

/// What [`erase_person`] removed: counts only (an audit log may keep it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErasureReport {
    /// Interactions deleted.
    pub interactions: u64,
    /// Sessions deleted.
    pub sessions: u64,
    /// Identity links deleted.
    pub identities: u64,
    /// Text analyses deleted.
    pub texts: u64,
    /// Queued jobs rewritten without the erased events, or deleted.
    pub jobs: u64,
    /// Unfinished workflow runs whose step records were dropped.
    pub workflow_runs: u64,
    /// Vector records deleted (the index was compacted after).
    pub vectors: u64,
    /// Raw-batch archives rewritten without the person's lines.
    pub raw_batches_rewritten: u64,
    /// Raw-batch archives deleted (every line was the person's).
    pub raw_batches_deleted: u64,
    /// Lines removed from raw-batch archives.
    pub raw_events: u64,
}

impl ErasureReport {
    /// True when nothing was removed.
    pub fn is_empty(&self) -> bool {
        *self == ErasureReport::default()
    }
}

/// The fields of an archived line that say whose it is.
#[derive(Deserialize)]
struct LineIds {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    anonymous_id: Option<String>,
    #[serde(default)]
    user_id: Option<String>,
    #[serde(default)]
    previous_id: Option<String>,
}

/// Whose lines to find: the person's ids and their event ids.
struct Theirs<'a> {
    ids: HashSet<&'a str>,
    events: HashSet<&'a str>,
}

impl Theirs<'_> {
    fn line(&self, line: &[u8]) -> bool {
        match serde_json::from_slice::<LineIds>(line) {
            Ok(l) => {
                l.id.as_deref().is_some_and(|i| self.events.contains(i))
                    || [&l.anonymous_id, &l.user_id, &l.previous_id]
                        .into_iter()
                        .flatten()
                        .any(|v| self.ids.contains(v.as_str()))
            }
            // Not an interaction: keep it, unless it names one of their ids at all.
            Err(_) => {
                let text = String::from_utf8_lossy(line);
                self.ids.iter().chain(&self.events).any(|n| text.contains(n))
            }
        }
    }

    /// Splits decompressed NDJSON into the lines that stay and the count of theirs.
    fn split(&self, ndjson: &[u8]) -> (Vec<u8>, u64) {
        let mut kept = Vec::with_capacity(ndjson.len());
        let mut theirs = 0;
        for line in ndjson.split(|&b| b == b'\n') {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            if self.line(line) {
                theirs += 1;
            } else {
                kept.extend_from_slice(line);
                kept.push(b'\n');
            }
        }
        (kept, theirs)
    }
}

fn gunzip(key: &str, bytes: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(bytes.len() * 4);
    MultiGzDecoder::new(bytes)
        .read_to_end(&mut out)
        .map_err(|e| Error::backend(format!("raw batch {key}: not gzip NDJSON: {e}")))?;
    Ok(out)
}

fn gzip(bytes: &[u8]) -> Result<Vec<u8>> {
    let mut gz = GzEncoder::new(Vec::with_capacity(bytes.len() / 4), Compression::fast());
    gz.write_all(bytes)
        .map_err(|e| Error::backend(format!("archive compression: {e}")))?;
    gz.finish()
        .map_err(|e| Error::backend(format!("archive compression: {e}")))
}

/// The org's raw-batch archive keys.
async fn archive_keys<B: BlobStore + ?Sized>(blobs: &B, org_id: &str) -> Result<Vec<String>> {
    Ok(blobs
        .list(&archive_prefix(org_id))
        .await?
        .into_iter()
        .filter(|k| k.ends_with(".ndjson.gz"))
        .collect())
}

/// The archives that hold the person's lines, with how many.
async fn find_raw_batches<B: BlobStore + ?Sized>(
    blobs: &B,
    org_id: &str,
    theirs: &Theirs<'_>,
) -> Result<Vec<RawBatch>> {
    let mut out = Vec::new();
    for key in archive_keys(blobs, org_id).await? {
        let Some(bytes) = blobs.get(&key).await? else { continue };
        let (_, events) = theirs.split(&gunzip(&key, &bytes)?);
        if events > 0 {
            out.push(RawBatch { key, events });
        }
    }
    Ok(out)
}

/// Removes the person's lines from every archive of the org.
async fn purge_raw_batches<B: BlobStore + ?Sized>(
    blobs: &B,
    org_id: &str,
    theirs: &Theirs<'_>,
    report: &mut ErasureReport,
) -> Result<()> {
    for key in archive_keys(blobs, org_id).await? {
        let Some(bytes) = blobs.get(&key).await? else { continue };
        let (kept, removed) = theirs.split(&gunzip(&key, &bytes)?);
        if removed == 0 {
            continue;
        }
        if kept.is_empty() {
            blobs.delete(&key).await?;
            report.raw_batches_deleted += 1;
        } else {
            blobs.put(&key, gzip(&kept)?).await?;
            report.raw_batches_rewritten += 1;
        }
        report.raw_events += removed;
    }
    Ok(())
}

/// Deletes the events' records from the interaction-embeddings index and compacts it.
async fn purge_vectors(indexes: &Indexes, org_id: &str, events: &[String], report: &mut ErasureReport) -> Result<()> {
    let index = indexes.get(IndexKind::Interactions);
    for chunk in events.chunks(DELETE_CHUNK) {
        report.vectors += index.delete(org_id, chunk).await? as u64;
    }
    // Also when nothing was deleted now: a retry finishes a compaction an earlier erase could not.
    index.compact().await
}

/// Everything held about the person `id` belongs to; `None` when the store knows nothing of
/// them. Reads every raw-batch archive of the org.
pub async fn person_export<S, B>(
    store: &S,
    blobs: &B,
    indexes: Option<&Indexes>,
    org_id: &str,
    id: &str,
) -> Result<Option<PersonExport>>
where
    S: PersonStore + ?Sized,
    B: BlobStore + ?Sized,
{
    let Some(person) = store.person_data(org_id, id).await? else {
        return Ok(None);
    };
    let event_ids: Vec<String> = person.interactions.iter().map(|e| e.id.clone()).collect();
    let theirs = Theirs {
        ids: person.ids.iter().map(String::as_str).collect(),
        events: event_ids.iter().map(String::as_str).collect(),
    };
    let raw_batches = find_raw_batches(blobs, org_id, &theirs).await?;
    let mut vectors = Vec::new();
    if let Some(indexes) = indexes {
        let index = indexes.get(IndexKind::Interactions);
        for chunk in event_ids.chunks(DELETE_CHUNK) {
            vectors.extend(index.get(org_id, chunk).await?.into_iter().map(|r| VectorEntry {
                index: IndexKind::Interactions.index_name().to_owned(),
                id: r.id,
                namespace: r.namespace,
                metadata: r.metadata,
            }));
        }
    }
    Ok(Some(PersonExport {
        person,
        raw_batches,
        vectors,
    }))
}

/// Erases the person `id` belongs to everywhere (see the [module docs](self) for the order and
/// the guarantees); `None` when nothing was held about them. `indexes` `None` skips the vector
/// index (a deployment without one).
pub async fn erase_person<S, B>(
    store: &S,
    blobs: &B,
    indexes: Option<&Indexes>,
    org_id: &str,
    id: &str,
    now: Millis,
) -> Result<Option<ErasureReport>>
where
    S: PersonStore + ?Sized,
    B: BlobStore + ?Sized,
{
    let mut report = ErasureReport::default();
    let known = store.person_data(org_id, id).await?;
    let (ids, events): (BTreeSet<String>, BTreeSet<String>) = match &known {
        Some(p) => (
            p.ids.iter().cloned().collect(),
            p.interactions.iter().map(|e| e.id.clone()).collect(),
        ),
        None => ([id.to_owned()].into(), BTreeSet::new()),
    };
    purge_copies(blobs, indexes, org_id, &ids, &events, &mut report).await?;

    let erased = store.erase_person(org_id, id, now).await?;
    if let Some(e) = &erased {
        let c = e.counts;
        report.interactions += c.interactions;
        report.sessions += c.sessions;
        report.identities += c.identities;
        report.texts += c.texts;
        report.jobs += c.jobs;
        report.workflow_runs += c.workflow_runs;
        // Events (or ids) that appeared after the first read: their copies too.
        let more_ids: BTreeSet<String> = e.ids.iter().filter(|i| !ids.contains(*i)).cloned().collect();
        let more_events: BTreeSet<String> = e.event_ids.iter().filter(|i| !events.contains(*i)).cloned().collect();
        if !more_ids.is_empty() || !more_events.is_empty() {
            let all_ids: BTreeSet<String> = ids.union(&more_ids).cloned().collect();
            purge_copies(blobs, indexes, org_id, &all_ids, &more_events, &mut report).await?;
        }
    }
    if known.is_none() && erased.is_none() && report.is_empty() {
        return Ok(None);
    }
    Ok(Some(report))
}

async fn purge_copies<B: BlobStore + ?Sized>(
    blobs: &B,
    indexes: Option<&Indexes>,
    org_id: &str,
    ids: &BTreeSet<String>,
    events: &BTreeSet<String>,
    report: &mut ErasureReport,
) -> Result<()> {
    if let Some(indexes) = indexes
        && !events.is_empty()
    {
        let events: Vec<String> = events.iter().cloned().collect();
        purge_vectors(indexes, org_id, &events, report).await?;
    }
    let theirs = Theirs {
        ids: ids.iter().map(String::as_str).collect(),
        events: events.iter().map(String::as_str).collect(),
    };
    purge_raw_batches(blobs, org_id, &theirs, report).await
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use crow_core::model::Interaction;
    use crow_core::ports::{EventStore, JobQueue, NewJob, VectorIndex, queues};
    use crow_core::testing::{BruteForceIndex, FakeTextAnalyzer, HashEmbedder, MemoryBlobStore, MemoryStore};
    use futures::executor::block_on;
    use serde_json::json;

    use super::*;
    use crate::jobs::{ARCHIVE_BATCH, InteractionBatch, PROCESS_INTERACTION};
    use crate::workflows::{PortRefs, WithText, run_once};

    const ORG: &str = "org_a";
    /// 2024-05-01T12:00:00Z
    const T0: Millis = 1_714_564_800_000;
    const P_ANON: &str = "anon-zz9-plural";
    const P_USER: &str = "user-arthur-dent";
    const P_TEXT: &str = "where is my towel babel fish";
    const Q_ANON: &str = "anon-marvin";
    const Q_TEXT: &str = "life paranoid android brain size of a planet";

    fn ev(v: serde_json::Value) -> Interaction {
        let mut v = v;
        v["org_id"] = json!(ORG);
        v["received_at"] = v["timestamp"].clone();
        serde_json::from_value(v).unwrap()
    }

    struct World {
        store: MemoryStore,
        blobs: MemoryBlobStore,
        indexes: Indexes,
        index: Arc<BruteForceIndex>,
    }

    impl World {
        fn new() -> World {
            let index = Arc::new(BruteForceIndex::new(32));
            World {
                store: MemoryStore::new(),
                blobs: MemoryBlobStore::new(),
                indexes: Indexes::new(
                    index.clone(),
                    Arc::new(BruteForceIndex::new(32)),
                    Arc::new(BruteForceIndex::new(32)),
                ),
                index,
            }
        }

        /// Stores a batch as ingest does (with its process-interaction and archive-batch jobs)
        /// and runs the workflows.
        async fn ingest(&self, batch_id: &str, events: Vec<Interaction>) {
            let batch = InteractionBatch {
                org_id: ORG.into(),
                batch_id: batch_id.into(),
                event_ids: events.iter().map(|e| e.id.clone()).collect(),
                received_at: events[0].received_at,
            };
            let payload = serde_json::to_value(&batch).unwrap();
            let jobs = vec![
                NewJob::new(queues::INTERACTION, PROCESS_INTERACTION, payload.clone()),
                NewJob::new(queues::PROCESSING, ARCHIVE_BATCH, payload),
            ];
            self.store.append(ORG, events, jobs).await.unwrap();
            let (analyzer, embedder) = (FakeTextAnalyzer::new(), HashEmbedder::new(32));
            let ports = WithText {
                ports: PortRefs::shared(&self.store, &self.blobs),
                analyzer: &analyzer,
                embedder: Some(&embedder),
                indexes: Some(&self.indexes),
                social: None,
                video: None,
            };
            for q in [queues::INTERACTION, queues::PROCESSING] {
                run_once(&ports, q, 100, T0 + 60_000, 0.5).await.unwrap();
                assert_eq!(self.store.depth(q).await.unwrap().ready, 0);
            }
        }

        /// P: anonymous views and a search, then an identify, in two batches (the second shared
        /// with Q); Q: a view and a search.
        async fn seed(&self) {
            self.ingest(
                "b1",
                vec![
                    ev(json!({"id": "p1", "type": "page", "anonymous_id": P_ANON, "timestamp": T0})),
                    ev(
                        json!({"id": "p2", "type": "track", "name": "Searched", "anonymous_id": P_ANON,
                        "properties": {"query": P_TEXT}, "timestamp": T0 + 1_000}),
                    ),
                ],
            )
            .await;
            self.ingest(
                "b2",
                vec![
                    ev(
                        json!({"id": "p3", "type": "identify", "anonymous_id": P_ANON, "user_id": P_USER,
                        "traits": {"plan": "gold"}, "timestamp": T0 + 2_000}),
                    ),
                    ev(json!({"id": "q1", "type": "page", "anonymous_id": Q_ANON, "timestamp": T0 + 2_000})),
                    ev(
                        json!({"id": "q2", "type": "track", "name": "Searched", "anonymous_id": Q_ANON,
                        "properties": {"query": Q_TEXT}, "timestamp": T0 + 3_000}),
                    ),
                ],
            )
            .await;
        }

        /// Every archived line of the org, decompressed.
        async fn archived(&self) -> String {
            let mut out = String::new();
            for key in self.blobs.list("raw-interactions/").await.unwrap() {
                let bytes = self.blobs.get(&key).await.unwrap().unwrap();
                out.push_str(&String::from_utf8(gunzip(&key, &bytes).unwrap()).unwrap());
            }
            out
        }
    }

    #[test]
    fn exports_what_every_place_holds() {
        block_on(async {
            let w = World::new();
            w.seed().await;
            let e = person_export(&w.store, &w.blobs, Some(&w.indexes), ORG, P_ANON)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(e.person.person_id, P_USER);
            assert_eq!(e.person.ids, [P_ANON, P_USER]);
            let ids: Vec<&str> = e.person.interactions.iter().map(|i| i.id.as_str()).collect();
            assert_eq!(ids, ["p1", "p2", "p3"]);
            assert_eq!(e.person.texts.len(), 1);
            assert_eq!(e.vectors.len(), 1);
            assert_eq!(
                (e.vectors[0].id.as_str(), e.vectors[0].index.as_str()),
                ("p2", "interaction-embeddings")
            );
            let batches: Vec<(&str, u64)> = e.raw_batches.iter().map(|b| (b.key.as_str(), b.events)).collect();
            assert_eq!(
                batches,
                [
                    ("raw-interactions/org_a/2024/05/01/b1.ndjson.gz", 2),
                    ("raw-interactions/org_a/2024/05/01/b2.ndjson.gz", 1)
                ]
            );
            assert!(
                person_export(&w.store, &w.blobs, Some(&w.indexes), ORG, "nobody")
                    .await
                    .unwrap()
                    .is_none()
            );
        });
    }

    #[test]
    fn erasure_leaves_nothing_of_them_in_the_store_the_index_or_the_archives() {
        block_on(async {
            let w = World::new();
            w.seed().await;
            let archived = w.archived().await;
            for needle in [P_ANON, P_USER, P_TEXT, Q_ANON, Q_TEXT] {
                assert!(archived.contains(needle), "{needle} archived");
            }
            assert_eq!(w.index.count(ORG).await.unwrap(), 2);

            let r = erase_person(&w.store, &w.blobs, Some(&w.indexes), ORG, P_USER, T0 + 90_000)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(
                r,
                ErasureReport {
                    interactions: 3,
                    sessions: 1,
                    identities: 1,
                    texts: 1,
                    jobs: 0,
                    workflow_runs: 0,
                    vectors: 1,
                    raw_batches_rewritten: 1,
                    raw_batches_deleted: 1,
                    raw_events: 3,
                }
            );
            let archived = w.archived().await;
            for needle in [P_ANON, P_USER, P_TEXT] {
                assert!(!archived.contains(needle), "{needle} left in the archives");
            }
            assert!(archived.contains(Q_TEXT) && archived.contains(Q_ANON));
            assert_eq!(archived.lines().count(), 2);
            assert!(w.index.get(ORG, &["p2".into()]).await.unwrap().is_empty());
            assert_eq!(w.index.count(ORG).await.unwrap(), 1);
            assert!(w.store.person_data(ORG, P_ANON).await.unwrap().is_none());
            assert_eq!(
                w.store
                    .person_data(ORG, Q_ANON)
                    .await
                    .unwrap()
                    .unwrap()
                    .interactions
                    .len(),
                2
            );
            // Erasing again: nothing is known of them any more.
            assert_eq!(
                erase_person(&w.store, &w.blobs, Some(&w.indexes), ORG, P_ANON, T0 + 91_000)
                    .await
                    .unwrap(),
                None
            );
        });
    }

    #[test]
    fn a_copy_written_after_the_erase_is_found_by_their_id() {
        block_on(async {
            let w = World::new();
            w.seed().await;
            erase_person(&w.store, &w.blobs, None, ORG, P_ANON, T0 + 90_000)
                .await
                .unwrap()
                .unwrap();
            // A job that was running during the erase archives one of their events after it.
            let line = serde_json::to_vec(&ev(json!({"id": "p9", "type": "page", "anonymous_id": P_ANON,
                "timestamp": T0 + 5_000})))
            .unwrap();
            w.blobs
                .put("raw-interactions/org_a/2024/05/01/late.ndjson.gz", gzip(&line).unwrap())
                .await
                .unwrap();
            let r = erase_person(&w.store, &w.blobs, None, ORG, P_ANON, T0 + 91_000)
                .await
                .unwrap()
                .unwrap();
            assert_eq!((r.raw_batches_deleted, r.raw_events, r.interactions), (1, 1, 0));
            assert!(!w.archived().await.contains(P_ANON));
        });
    }

    /// A blob store whose writes fail while `broken` is set.
    struct Flaky<'a> {
        inner: &'a MemoryBlobStore,
        broken: AtomicBool,
    }

    #[async_trait::async_trait]
    impl BlobStore for Flaky<'_> {
        async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<()> {
            if self.broken.load(Ordering::Relaxed) {
                return Err(Error::Unavailable("disk on fire".into()));
            }
            self.inner.put(key, bytes).await
        }
        async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
            self.inner.get(key).await
        }
        async fn list(&self, prefix: &str) -> Result<Vec<String>> {
            self.inner.list(prefix).await
        }
        async fn delete(&self, key: &str) -> Result<()> {
            if self.broken.load(Ordering::Relaxed) {
                return Err(Error::Unavailable("disk on fire".into()));
            }
            self.inner.delete(key).await
        }
    }

    #[test]
    fn a_failure_keeps_the_store_so_a_retry_erases_everything() {
        block_on(async {
            let w = World::new();
            w.seed().await;
            let blobs = Flaky {
                inner: &w.blobs,
                broken: AtomicBool::new(true),
            };
            let err = erase_person(&w.store, &blobs, Some(&w.indexes), ORG, P_ANON, T0 + 90_000)
                .await
                .unwrap_err();
            assert!(matches!(err, Error::Unavailable(_)), "{err}");
            assert!(
                w.store.person_data(ORG, P_ANON).await.unwrap().is_some(),
                "the store is kept"
            );
            blobs.broken.store(false, Ordering::Relaxed);
            let r = erase_person(&w.store, &blobs, Some(&w.indexes), ORG, P_ANON, T0 + 91_000)
                .await
                .unwrap()
                .unwrap();
            assert_eq!((r.interactions, r.raw_events), (3, 3));
            assert!(!w.archived().await.contains(P_TEXT));
        });
    }
}
