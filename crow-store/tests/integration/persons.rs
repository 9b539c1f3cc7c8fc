//! PersonStore (GDPR export and erasure): one contract, run against `MemoryStore` (the reference)
//! and `SqliteStore`, plus what only a file can show: after an erasure neither the database nor
//! its write-ahead log holds a byte of the person.

use std::collections::HashMap;

use crow_core::model::{Enrichment, EventType, Interaction, InteractionText, ReferrerClass};
use crow_core::ports::{
    Entity, EventStore, InteractionQuery, JobQueue, NewJob, PersonStore, Sentiment, TextAnalysis, WorkflowStore,
};
use serde_json::json;

use crate::common::{event, page, track};

const ORG: &str = "org_a";
const OTHER: &str = "org_b";
const P_ANON: &str = "anon-p";
const P_USER: &str = "user-p";
const Q_ANON: &str = "anon-q";

/// Everything a contract test needs of a store.
trait Store: EventStore + PersonStore + JobQueue + WorkflowStore {}
impl<T: EventStore + PersonStore + JobQueue + WorkflowStore> Store for T {}

fn with_query(mut e: Interaction, text: &str) -> Interaction {
    e.properties.insert("query".into(), json!(text));
    e
}

fn text(event_id: &str, ts: i64, phrase: &str) -> InteractionText {
    InteractionText {
        event_id: event_id.into(),
        field: "query".into(),
        timestamp: ts,
        analysis: TextAnalysis {
            language: Some("en".into()),
            sentiment: Some(Sentiment {
                label: "neutral".into(),
                score: 0.0,
                tier: "lexicon".into(),
            }),
            entities: vec![Entity {
                kind: "product".into(),
                text: phrase.into(),
                start: 0,
                end: phrase.len(),
                product_id: None,
                pii: false,
            }],
            key_phrases: vec![phrase.into()],
        },
        embedding: Some(vec![0.25, -0.5, 1.0]),
        analyzed_at: ts + 10,
    }
}

fn enrich(event_id: &str, person: &str, session: &str) -> Enrichment {
    Enrichment {
        event_id: event_id.into(),
        person_id: person.into(),
        session_id: session.into(),
        referrer_class: ReferrerClass::Direct,
    }
}

fn batch(org: &str, batch: &str, ids: &[&str]) -> NewJob {
    NewJob::new(
        "interaction",
        "interaction",
        json!({"org_id": org, "batch_id": batch, "event_ids": ids, "received_at": 0}),
    )
}

/// P: anonymous page views and a search (e1, e2), an identify linking `anon-p` to `user-p`
/// (e3), and a track by the user id that no workflow has stitched yet (e4). Q: `anon-q` (e5,
/// e6). The other org has an `anon-p` of its own with the same event id e1. Jobs and step
/// records name them as a running workflow would.
async fn seed<S: Store>(s: &S) {
    let mut e3 = event(ORG, "e3", EventType::Identify, 3_000);
    e3.anonymous_id = Some(P_ANON.into());
    e3.user_id = Some(P_USER.into());
    e3.traits.insert("plan".into(), json!("gold"));
    let mut e4 = track(ORG, "e4", P_ANON, "Ordered", 4_000);
    e4.anonymous_id = None;
    e4.user_id = Some(P_USER.into());
    let events = vec![
        with_query(track(ORG, "e1", P_ANON, "Searched", 1_000), "zebra umbrella"),
        page(ORG, "e2", P_ANON, "/shoes", 2_000),
        e3,
        e4,
        page(ORG, "e5", Q_ANON, "/home", 1_500),
        with_query(track(ORG, "e6", Q_ANON, "Searched", 2_500), "quokka kite"),
    ];
    s.append(ORG, events, vec![]).await.unwrap();
    s.append(OTHER, vec![page(OTHER, "e1", P_ANON, "/x", 1_000)], vec![])
        .await
        .unwrap();
    s.link_identity(ORG, P_ANON, P_USER, 3_000).await.unwrap();
    s.apply_enrichment(
        ORG,
        &[
            enrich("e1", P_USER, "s-p"),
            enrich("e2", P_USER, "s-p"),
            enrich("e3", P_USER, "s-p"),
            enrich("e5", Q_ANON, "s-q"),
            enrich("e6", Q_ANON, "s-q"),
        ],
    )
    .await
    .unwrap();
    s.refresh_sessions(ORG, &["s-p".into(), "s-q".into()]).await.unwrap();
    s.store_texts(
        ORG,
        &[text("e1", 1_000, "zebra umbrella"), text("e6", 2_500, "quokka kite")],
    )
    .await
    .unwrap();
    s.enqueue(
        vec![
            batch(ORG, "b1", &["e1", "e2", "e5"]),
            batch(ORG, "b2", &["e3", "e4"]),
            batch(OTHER, "b3", &["e1"]),
            NewJob::new("interaction", "other", json!({"org_id": ORG, "note": "names no event"})),
        ],
        5_000,
    )
    .await
    .unwrap();
    let plan = |p: &str, e: &str| json!({"enrichment": [{"event_id": e, "person_id": p, "session_id": "x"}]});
    s.save_step("run-p", "sessionize", &plan(P_USER, "e1"), 5_000)
        .await
        .unwrap();
    s.save_step("run-p", "identity", &json!(1), 5_000).await.unwrap();
    s.save_step("run-q", "sessionize", &plan(Q_ANON, "e5"), 5_000)
        .await
        .unwrap();
}

fn event_ids(events: &[Interaction]) -> Vec<&str> {
    events.iter().map(|e| e.id.as_str()).collect()
}

async fn exports_everything_about_a_person_by_any_of_their_ids<S: Store>(s: &S) {
    seed(s).await;
    let by_anon = s.person_data(ORG, P_ANON).await.unwrap().unwrap();
    let by_user = s.person_data(ORG, P_USER).await.unwrap().unwrap();
    assert_eq!(by_anon, by_user, "either id is the same person");
    let p = by_anon;
    assert_eq!(p.person_id, P_USER);
    assert_eq!(p.ids, [P_ANON, P_USER]);
    assert_eq!(event_ids(&p.interactions), ["e1", "e2", "e3", "e4"], "oldest first");
    assert!(p.interactions.iter().all(|e| e.org_id == ORG));
    assert_eq!(
        p.interactions[0].analysis.as_ref().map(|a| a.key_phrases.clone()),
        Some(vec!["zebra umbrella".to_string()])
    );
    assert_eq!(p.interactions[2].traits["plan"], "gold");
    assert_eq!(p.sessions.len(), 1);
    assert_eq!(
        (p.sessions[0].id.as_str(), p.sessions[0].person_id.as_str()),
        ("s-p", P_USER)
    );
    assert_eq!(p.identities.len(), 1);
    assert_eq!(
        (
            p.identities[0].alias_id.as_str(),
            p.identities[0].person_id.as_str(),
            p.identities[0].linked_at
        ),
        (P_ANON, P_USER, 3_000)
    );
    assert_eq!(p.texts.len(), 1);
    assert_eq!(p.texts[0], text("e1", 1_000, "zebra umbrella"));

    let q = s.person_data(ORG, Q_ANON).await.unwrap().unwrap();
    assert_eq!(
        (q.person_id.as_str(), q.ids.clone()),
        (Q_ANON, vec![Q_ANON.to_string()])
    );
    assert_eq!(event_ids(&q.interactions), ["e5", "e6"]);
    assert!(q.identities.is_empty());
    // Org isolation: the other org's anon-p is another person.
    let other = s.person_data(OTHER, P_ANON).await.unwrap().unwrap();
    assert_eq!(event_ids(&other.interactions), ["e1"]);
    assert_eq!(other.interactions[0].org_id, OTHER);
    assert!(other.texts.is_empty() && other.sessions.is_empty() && other.identities.is_empty());
    assert_eq!(s.person_data(ORG, "nobody").await.unwrap(), None);
    assert_eq!(s.person_data("org_none", P_ANON).await.unwrap(), None);
}

async fn erasure_removes_the_person_everywhere_in_the_store_and_nobody_else<S: Store>(s: &S) {
    seed(s).await;
    let e = s.erase_person(ORG, P_USER, 9_000).await.unwrap().unwrap();
    assert_eq!(e.person_id, P_USER);
    assert_eq!(e.ids, [P_ANON, P_USER]);
    assert_eq!(e.event_ids, ["e1", "e2", "e3", "e4"]);
    let c = e.counts;
    assert_eq!(
        (
            c.interactions,
            c.sessions,
            c.identities,
            c.texts,
            c.jobs,
            c.workflow_runs
        ),
        (4, 1, 1, 1, 2, 1),
        "{c:?}"
    );

    assert_eq!(s.person_data(ORG, P_ANON).await.unwrap(), None);
    assert_eq!(s.person_data(ORG, P_USER).await.unwrap(), None);
    assert_eq!(s.resolve_person(ORG, P_ANON).await.unwrap(), None);
    assert!(
        s.get_interactions(ORG, &["e1".into(), "e4".into()])
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(s.get_session(ORG, "s-p").await.unwrap(), None);
    let left = s
        .list_interactions(
            ORG,
            &InteractionQuery {
                limit: 100,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(event_ids(&left.data), ["e6", "e5"]);

    // Q and the other org are untouched.
    let q = s.person_data(ORG, Q_ANON).await.unwrap().unwrap();
    assert_eq!(event_ids(&q.interactions), ["e5", "e6"]);
    assert_eq!((q.sessions.len(), q.texts.len()), (1, 1));
    let other = s.person_data(OTHER, P_ANON).await.unwrap().unwrap();
    assert_eq!(event_ids(&other.interactions), ["e1"]);

    // Jobs: b1 keeps Q's event, b2 named only P's and is gone, the other org's and the job that
    // names no event are as they were.
    let jobs = s.reserve("interaction", 100, 1_000, 10_000).await.unwrap();
    let payloads: HashMap<String, serde_json::Value> = jobs
        .iter()
        .map(|j| {
            let key = j.payload["batch_id"].as_str().unwrap_or("none").to_owned();
            (key, j.payload.clone())
        })
        .collect();
    assert_eq!(payloads.len(), 3, "{payloads:?}");
    assert_eq!(payloads["b1"]["event_ids"], json!(["e5"]));
    assert_eq!(payloads["b3"]["event_ids"], json!(["e1"]));
    assert_eq!(payloads["none"]["note"], "names no event");
    // Step records: the run that named P is dropped, Q's stays.
    assert!(s.load_steps("run-p").await.unwrap().is_empty());
    assert_eq!(s.load_steps("run-q").await.unwrap().len(), 1);
}

async fn erasing_by_an_anonymous_id_erases_the_stitched_person_once<S: Store>(s: &S) {
    seed(s).await;
    let e = s.erase_person(ORG, P_ANON, 9_000).await.unwrap().unwrap();
    assert_eq!((e.person_id.as_str(), e.counts.interactions), (P_USER, 4));
    assert_eq!(s.erase_person(ORG, P_ANON, 9_001).await.unwrap(), None, "erasing twice");
    assert_eq!(s.erase_person(ORG, P_USER, 9_002).await.unwrap(), None);
    assert_eq!(s.erase_person(ORG, "nobody", 9_003).await.unwrap(), None);
    // A person known only by sessions or links is still someone to erase.
    assert_eq!(
        s.person_data(OTHER, P_ANON).await.unwrap().unwrap().interactions.len(),
        1
    );
    s.link_identity(ORG, "anon-r", "user-r", 9_100).await.unwrap();
    let r = s.person_data(ORG, "anon-r").await.unwrap().unwrap();
    assert_eq!((r.ids.len(), r.interactions.len(), r.identities.len()), (2, 0, 1));
    let e = s.erase_person(ORG, "user-r", 9_200).await.unwrap().unwrap();
    assert_eq!(e.counts.identities, 1);
    assert_eq!(s.resolve_person(ORG, "anon-r").await.unwrap(), None);
}

crate::common::contract!(
    exports_everything_about_a_person_by_any_of_their_ids,
    erasure_removes_the_person_everywhere_in_the_store_and_nobody_else,
    erasing_by_an_anonymous_id_erases_the_stitched_person_once,
);

mod files {
    //! The byte-level check: the person's ids and values are nowhere in `crow.db`, `-wal` or
    //! `-shm` after the erase, while another person's still are (so the search is not vacuous).

    use std::path::Path;

    use super::*;
    use crow_store::{DB_FILE, SqliteStore, StoreConfig};

    const ANON: &str = "anon-zz9-plural-z-alpha";
    const USER: &str = "user-arthur-dent-42";
    const VALUE: &str = "towel-babel-fish-9f3c1";
    const SESSION: &str = "ses-heart-of-gold-77";
    const Q_VALUE: &str = "marvin-paranoid-android-8d2e";

    fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
        ["", "-wal", "-shm"]
            .iter()
            .filter_map(|suffix| {
                let name = format!("{DB_FILE}{suffix}");
                std::fs::read(dir.join(&name)).ok().map(|b| (name, b))
            })
            .collect()
    }

    fn found_in(dir: &Path, needle: &str) -> Vec<String> {
        files(dir)
            .into_iter()
            .filter(|(_, bytes)| bytes.windows(needle.len()).any(|w| w == needle.as_bytes()))
            .map(|(name, _)| name)
            .collect()
    }

    /// P's events spread among many others' (so pages split and rebalance), rewritten the way
    /// stitching and enrichment rewrite them, queued in jobs and named by step records.
    async fn fill(s: &SqliteStore) {
        let mut n = 0;
        for round in 0..20 {
            let mut events = Vec::new();
            for i in 0..100 {
                n += 1;
                let ts = 1_000 + n * 10;
                let id = format!("ev-{n}");
                let e = if i % 25 == round % 25 {
                    let mut e = with_query(track(ORG, &id, ANON, "Searched", ts), &format!("{VALUE} no {n}"));
                    e.traits.insert("motto".into(), json!(VALUE));
                    e
                } else if i % 10 == 3 {
                    with_query(track(ORG, &id, "anon-q", "Searched", ts), Q_VALUE)
                } else {
                    page(
                        ORG,
                        &id,
                        &format!("anon-{}", n % 97),
                        "/browse/some/long/path/for/bulk",
                        ts,
                    )
                };
                events.push(e);
            }
            let ids: Vec<String> = events.iter().map(|e| e.id.clone()).collect();
            let mine: Vec<String> = events
                .iter()
                .filter(|e| e.anonymous_id.as_deref() == Some(ANON))
                .map(|e| e.id.clone())
                .collect();
            s.append(
                ORG,
                events,
                vec![NewJob::new(
                    "interaction",
                    "interaction",
                    json!({"org_id": ORG, "batch_id": format!("b{round}"), "event_ids": ids}),
                )],
            )
            .await
            .unwrap();
            s.apply_enrichment(
                ORG,
                &mine.iter().map(|id| enrich(id, ANON, SESSION)).collect::<Vec<_>>(),
            )
            .await
            .unwrap();
            s.store_texts(
                ORG,
                &mine
                    .iter()
                    .map(|id| text(id, 1_000, &format!("{VALUE} phrase")))
                    .collect::<Vec<_>>(),
            )
            .await
            .unwrap();
            s.save_step(&format!("run-{round}"), "sessionize", &json!({"person_id": ANON}), 0)
                .await
                .unwrap();
        }
        let mut identify = event(ORG, "ev-identify", EventType::Identify, 90_000);
        identify.anonymous_id = Some(ANON.into());
        identify.user_id = Some(USER.into());
        identify.traits.insert("email_hash".into(), json!(VALUE));
        s.append(ORG, vec![identify], vec![]).await.unwrap();
        s.link_identity(ORG, ANON, USER, 90_000).await.unwrap();
        s.refresh_sessions(ORG, &[SESSION.into()]).await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_erased_person_leaves_no_byte_in_the_database_files() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(dir.path(), StoreConfig::default()).unwrap();
        fill(&s).await;
        for needle in [ANON, USER, VALUE, SESSION, Q_VALUE] {
            assert!(
                !found_in(dir.path(), needle).is_empty(),
                "{needle} is stored before the erase"
            );
        }

        let e = s.erase_person(ORG, ANON, 100_000).await.unwrap().unwrap();
        assert_eq!(e.person_id, USER);
        assert_eq!(e.counts.interactions, 81, "{:?}", e.counts);
        assert_eq!(e.counts.workflow_runs, 20);

        // With the store still open (the WAL truncated, the pages checkpointed)...
        for needle in [ANON, USER, VALUE, SESSION] {
            assert_eq!(found_in(dir.path(), needle), Vec::<String>::new(), "{needle} is left");
        }
        assert!(
            !found_in(dir.path(), Q_VALUE).is_empty(),
            "the other person's data is still there"
        );
        assert_eq!(
            s.person_data(ORG, "anon-q").await.unwrap().unwrap().interactions.len(),
            192
        );

        // ...after more writes, and after closing it.
        s.append(ORG, vec![page(ORG, "later", "anon-later", "/", 200_000)], vec![])
            .await
            .unwrap();
        drop(s);
        for needle in [ANON, USER, VALUE, SESSION] {
            assert_eq!(found_in(dir.path(), needle), Vec::<String>::new(), "{needle} is left");
        }
        let s = SqliteStore::open(dir.path(), StoreConfig::default()).unwrap();
        assert_eq!(s.person_data(ORG, ANON).await.unwrap(), None);
        assert_eq!(
            s.person_data(ORG, "anon-q").await.unwrap().unwrap().interactions.len(),
            192
        );
    }
}

mod vectors {
    //! Erasure's side of the HNSW index: deleted records leave tombstones in the graph, the
    //! snapshot and the log until `compact` purges them.

    use std::path::Path;

    use crow_core::ports::VectorIndex;
    use crow_core::vector::{IndexInfo, Metric, VectorQuery, VectorRecord};
    use crow_store::vector::{HnswConfig, HnswIndex};
    use serde_json::json;

    const DIM: usize = 8;
    const ANON: &str = "anon-zz9-plural-z-alpha";
    const SNIPPET: &str = "towel-babel-fish-9f3c1";
    const Q_SNIPPET: &str = "marvin-paranoid-android-8d2e";
    /// The first two components of P's vectors: a byte pattern nothing else has.
    const MARK: [f32; 2] = [1234.5, -8765.25];

    fn info() -> IndexInfo {
        IndexInfo {
            name: "interaction-embeddings".into(),
            dimensions: DIM,
            // Euclidean: values are stored as given, so the byte pattern can be searched for.
            metric: Metric::Euclidean,
        }
    }

    fn record(i: usize, theirs: bool) -> VectorRecord {
        let mut values: Vec<f32> = (0..DIM).map(|d| ((i * 31 + d * 7) % 97) as f32 / 9.7).collect();
        let metadata = if theirs {
            values[..2].copy_from_slice(&MARK);
            json!({"person_id": ANON, "snippet": SNIPPET, "ts": i})
        } else {
            json!({"person_id": "anon-q", "snippet": Q_SNIPPET, "ts": i})
        };
        VectorRecord {
            id: if theirs {
                format!("ev-p-{i}")
            } else {
                format!("ev-q-{i}")
            },
            namespace: None,
            values,
            metadata: metadata.as_object().cloned().unwrap(),
        }
    }

    fn mark_bytes() -> Vec<u8> {
        MARK.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    /// The files under `dir` holding `needle`.
    fn holding(dir: &Path, needle: &[u8]) -> Vec<String> {
        let mut out = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap().flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else if std::fs::read(&p).unwrap().windows(needle.len()).any(|w| w == needle) {
                    out.push(p.strip_prefix(dir).unwrap().display().to_string());
                }
            }
        }
        out.sort();
        out
    }

    fn left(dir: &Path) -> Vec<String> {
        let mut out = holding(dir, ANON.as_bytes());
        out.extend(holding(dir, SNIPPET.as_bytes()));
        out.extend(holding(dir, b"ev-p-"));
        out.extend(holding(dir, &mark_bytes()));
        out
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn compaction_leaves_no_deleted_record_in_any_file() {
        let dir = tempfile::tempdir().unwrap();
        let index = HnswIndex::open(dir.path(), info(), HnswConfig::default()).unwrap();
        // P's records in the snapshot and in the log, among Q's.
        let first: Vec<VectorRecord> = (0..1500).map(|i| record(i, i % 50 == 0)).collect();
        index.upsert("org_a", first).await.unwrap();
        index.persist().await.unwrap();
        let more: Vec<VectorRecord> = (1500..1600).map(|i| record(i, i % 10 == 0)).collect();
        index.upsert("org_a", more).await.unwrap();
        assert!(!left(dir.path()).is_empty());

        let theirs: Vec<String> = (0..1600)
            .filter(|i| if *i < 1500 { i % 50 == 0 } else { i % 10 == 0 })
            .map(|i| format!("ev-p-{i}"))
            .collect();
        assert_eq!(index.delete("org_a", &theirs).await.unwrap(), 40);
        let tombstoned = left(dir.path());
        assert!(!tombstoned.is_empty(), "a delete alone leaves them in the files");
        index.compact().await.unwrap();
        assert_eq!(left(dir.path()), Vec::<String>::new());
        assert!(
            !holding(dir.path(), Q_SNIPPET.as_bytes()).is_empty(),
            "Q's records are kept"
        );
        assert_eq!(index.stats().tombstones, 0);
        assert_eq!(index.count("org_a").await.unwrap(), 1560);
        // Compacting again changes nothing; searches still find Q's records.
        index.compact().await.unwrap();
        let q = record(7, false);
        let hits = index
            .query("org_a", &VectorQuery::new(q.values.clone(), 1))
            .await
            .unwrap();
        assert_eq!(hits[0].id, "ev-q-7");
        drop(index);

        let index = HnswIndex::open(dir.path(), info(), HnswConfig::default()).unwrap();
        assert_eq!(index.count("org_a").await.unwrap(), 1560);
        assert!(index.get("org_a", &theirs).await.unwrap().is_empty());
        let hits = index.query("org_a", &VectorQuery::new(q.values, 1)).await.unwrap();
        assert_eq!(hits[0].id, "ev-q-7");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn compacting_away_the_last_record_leaves_an_empty_index() {
        for snapshot in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let index = HnswIndex::open(dir.path(), info(), HnswConfig::default()).unwrap();
            let records: Vec<VectorRecord> = (0..30).map(|i| record(i, true)).collect();
            let ids: Vec<String> = records.iter().map(|r| r.id.clone()).collect();
            index.upsert("org_a", records).await.unwrap();
            if snapshot {
                index.persist().await.unwrap();
            }
            index.delete("org_a", &ids).await.unwrap();
            index.compact().await.unwrap();
            assert_eq!(left(dir.path()), Vec::<String>::new(), "snapshot: {snapshot}");
            // It keeps working, and reopens empty.
            index.upsert("org_a", vec![record(99, false)]).await.unwrap();
            drop(index);
            let index = HnswIndex::open(dir.path(), info(), HnswConfig::default()).unwrap();
            assert_eq!(index.count("org_a").await.unwrap(), 1, "snapshot: {snapshot}");
        }
    }
}
