//! The HNSW vector index against the brute-force reference: recall, filters, org isolation,
//! deletes, persistence across a clean restart and after kill -9.

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use crow_core::Error;
use crow_core::ports::VectorIndex;
use crow_core::testing::BruteForceIndex;
use crow_core::vector::{IndexInfo, MetadataFilter, Metric, VectorQuery, VectorRecord};
use crow_store::StoreError;
use crow_store::vector::{HnswConfig, HnswIndex};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

const DIM: usize = 48;
const LABELS: [&str; 3] = ["a", "b", "c"];

fn info(dim: usize) -> IndexInfo {
    IndexInfo {
        name: "test".into(),
        dimensions: dim,
        metric: Metric::Cosine,
    }
}

/// Clustered vectors (like sentence embeddings: topics with spread), deterministic per seed.
fn clustered(n: usize, dim: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut rng = StdRng::seed_from_u64(seed);
    let centres: Vec<Vec<f32>> = (0..40)
        .map(|_| (0..dim).map(|_| rng.random_range(-1.0f32..1.0)).collect())
        .collect();
    (0..n)
        .map(|_| {
            let c = &centres[rng.random_range(0..centres.len())];
            c.iter().map(|x| x + rng.random_range(-0.6f32..0.6)).collect()
        })
        .collect()
}

fn record(i: usize, values: Vec<f32>) -> VectorRecord {
    VectorRecord {
        id: format!("v{i}"),
        namespace: None,
        values,
        metadata: json!({"bucket": i % 100, "label": LABELS[i % 3], "ts": i})
            .as_object()
            .cloned()
            .unwrap(),
    }
}

async fn load(index: &dyn VectorIndex, org: &str, vectors: &[Vec<f32>]) {
    let records: Vec<VectorRecord> = vectors.iter().enumerate().map(|(i, v)| record(i, v.clone())).collect();
    for chunk in records.chunks(2000) {
        index.upsert(org, chunk.to_vec()).await.unwrap();
    }
}

/// Mean recall@k of `index` against `exact` over `queries`.
async fn recall(index: &dyn VectorIndex, exact: &dyn VectorIndex, org: &str, queries: &[VectorQuery]) -> f64 {
    let mut found = 0usize;
    let mut wanted = 0usize;
    for q in queries {
        let truth: HashSet<String> = exact.query(org, q).await.unwrap().into_iter().map(|m| m.id).collect();
        let got = index.query(org, q).await.unwrap();
        for m in &got {
            assert!(q.filter.matches(&m.metadata), "hit {} does not match the filter", m.id);
        }
        found += got.iter().filter(|m| truth.contains(&m.id)).count();
        wanted += truth.len();
    }
    found as f64 / wanted.max(1) as f64
}

fn queries(n: usize, seed: u64, filter: &MetadataFilter) -> Vec<VectorQuery> {
    clustered(n, DIM, seed)
        .into_iter()
        .map(|v| VectorQuery::new(v, 10).with_filter(filter.clone()))
        .collect()
}

#[tokio::test]
async fn recall_against_brute_force_with_and_without_filters() {
    let vectors = clustered(12_000, DIM, 7);
    let index = HnswIndex::in_memory(info(DIM), HnswConfig::default()).unwrap();
    let exact = BruteForceIndex::new(DIM);
    load(&index, "org", &vectors).await;
    load(&exact, "org", &vectors).await;
    assert_eq!(index.count("org").await.unwrap(), 12_000);
    assert_eq!(index.stats().flat, 12_000, "searches walk the flat graph");

    let r = recall(&index, &exact, "org", &queries(200, 99, &MetadataFilter::default())).await;
    assert!(r >= 0.95, "unfiltered recall@10 {r}");
    // 1 % (exact over the candidates), 10 % and 50 % (graph walk through non-matches).
    for (expr, floor) in [("bucket<1", 0.999), ("bucket<10", 0.95), ("bucket<50", 0.95)] {
        let filter = MetadataFilter::parse_exprs([expr]).unwrap();
        let r = recall(&index, &exact, "org", &queries(100, 5, &filter)).await;
        assert!(r >= floor, "recall@10 with {expr}: {r}");
    }
    let filter = MetadataFilter::parse_exprs(["label=[a,c]", "ts>=3000", "ts<9000"]).unwrap();
    let r = recall(&index, &exact, "org", &queries(50, 6, &filter)).await;
    assert!(r >= 0.95, "recall@10 with set and range filters: {r}");
}

#[tokio::test]
async fn a_small_org_in_a_large_shared_index_gets_its_k_hits() {
    let index = HnswIndex::in_memory(info(DIM), HnswConfig::default()).unwrap();
    let exact = BruteForceIndex::new(DIM);
    load(&index, "big", &clustered(10_000, DIM, 1)).await;
    let small = clustered(60, DIM, 2);
    load(&index, "small", &small).await;
    load(&exact, "small", &small).await;
    let qs = queries(50, 3, &MetadataFilter::default());
    for q in &qs {
        let hits = index.query("small", q).await.unwrap();
        assert_eq!(hits.len(), 10, "a small org is not starved by a big one");
    }
    assert_eq!(recall(&index, &exact, "small", &qs).await, 1.0);
    // The same ids exist in both orgs: each org sees, gets and deletes only its own.
    let q = VectorQuery::new(small[0].clone(), 100);
    let big_hits = index.query("big", &q).await.unwrap();
    let small_vec = index.get("small", &["v0".into()]).await.unwrap();
    assert_eq!(small_vec.len(), 1);
    assert!(big_hits.iter().all(|h| h.metadata["ts"].as_u64().is_some()));
    assert_eq!(index.delete("big", &["v0".into()]).await.unwrap(), 1);
    assert_eq!(
        index.get("small", &["v0".into()]).await.unwrap().len(),
        1,
        "big's delete spares small's v0"
    );
    assert!(index.get("nobody", &["v0".into()]).await.unwrap().is_empty());
    assert!(index.query("nobody", &q).await.unwrap().is_empty());
    assert_eq!(index.count("small").await.unwrap(), 60);
}

#[tokio::test]
async fn deleted_and_replaced_ids_never_come_back_and_tombstones_trigger_a_rebuild() {
    let vectors = clustered(6000, DIM, 11);
    let index = HnswIndex::in_memory(info(DIM), HnswConfig::default()).unwrap();
    load(&index, "org", &vectors).await;
    // Delete a third (past the 30 % tombstone threshold: the graph is rebuilt).
    let gone: Vec<String> = (0..6000).filter(|i| i % 3 == 0).map(|i| format!("v{i}")).collect();
    for chunk in gone.chunks(500) {
        index.delete("org", chunk).await.unwrap();
    }
    assert_eq!(index.stats().tombstones, 0, "the rebuild dropped the tombstones");
    assert_eq!(index.count("org").await.unwrap(), 4000);
    // Replace v1 with a far-away vector: only the new one can be found.
    let mut far = vec![0.0; DIM];
    far[0] = 1.0;
    index.upsert("org", vec![record(1, far.clone())]).await.unwrap();
    let gone: HashSet<String> = gone.into_iter().collect();
    for (i, v) in vectors.iter().enumerate().step_by(7) {
        for hit in index.query("org", &VectorQuery::new(v.clone(), 20)).await.unwrap() {
            assert!(!gone.contains(&hit.id), "deleted {} returned", hit.id);
            if hit.id == "v1" {
                assert!(i == 1 || hit.score < 0.9, "the old v1 came back");
            }
        }
    }
    let top = index.query("org", &VectorQuery::new(far, 1)).await.unwrap();
    assert_eq!(top[0].id, "v1");
    assert!((top[0].score - 1.0).abs() < 1e-5);
    assert_eq!(index.count("org").await.unwrap(), 4000);
    assert_eq!(index.delete("org", &["v0".into(), "nope".into()]).await.unwrap(), 0);
}

#[tokio::test]
async fn bad_input_is_a_clear_error_and_changes_nothing() {
    let index = HnswIndex::in_memory(info(3), HnswConfig::default()).unwrap();
    let rec = |id: &str, values: Vec<f32>| VectorRecord {
        id: id.into(),
        namespace: None,
        values,
        metadata: Default::default(),
    };
    let err = index
        .upsert("o", vec![rec("a", vec![1.0, 0.0, 0.0]), rec("b", vec![1.0])])
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Invalid { field, .. } if field == "vectors[1].values"),
        "{err}"
    );
    assert_eq!(index.count("o").await.unwrap(), 0, "a bad batch stores nothing");
    assert!(
        index
            .upsert("o", vec![rec("a", vec![f32::INFINITY, 0.0, 0.0])])
            .await
            .is_err()
    );
    assert!(index.upsert("", vec![rec("a", vec![1.0, 0.0, 0.0])]).await.is_err());
    let many = (0..5001).map(|i| rec(&i.to_string(), vec![1.0, 0.0, 0.0])).collect();
    assert!(matches!(index.upsert("o", many).await, Err(Error::TooLarge(_))));
    assert!(index.query("o", &VectorQuery::new(vec![1.0, 0.0], 1)).await.is_err());
    assert!(
        index
            .query("o", &VectorQuery::new(vec![1.0, 0.0, 0.0], 0))
            .await
            .is_err()
    );
    assert!(
        HnswIndex::in_memory(
            info(3),
            HnswConfig {
                m: 1,
                ..HnswConfig::default()
            }
        )
        .is_err()
    );
}

#[tokio::test]
async fn namespaces_and_metrics() {
    let index = HnswIndex::in_memory(
        IndexInfo {
            name: "l2".into(),
            dimensions: 2,
            metric: Metric::Euclidean,
        },
        HnswConfig::default(),
    )
    .unwrap();
    let rec = |id: &str, ns: Option<&str>, values: Vec<f32>| VectorRecord {
        id: id.into(),
        namespace: ns.map(str::to_string),
        values,
        metadata: Default::default(),
    };
    index
        .upsert(
            "o",
            vec![rec("a", Some("x"), vec![0.0, 0.0]), rec("b", Some("y"), vec![3.0, 4.0])],
        )
        .await
        .unwrap();
    let mut q = VectorQuery::new(vec![3.0, 4.0], 2);
    let hits = index.query("o", &q).await.unwrap();
    assert_eq!((hits[0].id.as_str(), hits[0].score), ("b", 0.0));
    assert_eq!(
        (hits[1].id.as_str(), hits[1].score),
        ("a", 5.0),
        "euclidean scores are distances"
    );
    q.namespace = Some("x".into());
    let hits = index.query("o", &q).await.unwrap();
    assert_eq!(hits.iter().map(|h| h.id.as_str()).collect::<Vec<_>>(), ["a"]);
    assert_eq!(hits[0].namespace.as_deref(), Some("x"));
}

#[tokio::test]
async fn survives_a_clean_restart_with_snapshot_and_log() {
    let dir = tempfile::tempdir().unwrap();
    let vectors = clustered(5000, DIM, 21);
    let qs = queries(30, 22, &MetadataFilter::default());
    let before = {
        let index = HnswIndex::open(dir.path(), info(DIM), HnswConfig::default()).unwrap();
        load(&index, "org", &vectors[..4000]).await;
        index.persist().await.unwrap();
        assert_eq!(index.stats().generation, 1);
        // After the snapshot: more records and deletes, in the log only.
        let rest: Vec<VectorRecord> = (4000..5000).map(|i| record(i, vectors[i].clone())).collect();
        index.upsert("org", rest).await.unwrap();
        index.delete("org", &["v5".into(), "v4500".into()]).await.unwrap();
        let mut out = Vec::new();
        for q in &qs {
            out.push(index.query("org", q).await.unwrap());
        }
        out
    };
    let index = HnswIndex::open(dir.path(), info(DIM), HnswConfig::default()).unwrap();
    assert_eq!(index.count("org").await.unwrap(), 4998);
    for (q, expected) in qs.iter().zip(&before) {
        let got = index.query("org", q).await.unwrap();
        let ids = |v: &[crow_core::vector::VectorMatch]| v.iter().map(|m| m.id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&got), ids(expected));
    }
    assert!(
        index
            .get("org", &["v5".into(), "v4500".into()])
            .await
            .unwrap()
            .is_empty()
    );
    index.persist().await.unwrap();
    drop(index);
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    assert!(
        names.contains(&"gen-2".to_string()) && !names.contains(&"gen-1".to_string()),
        "{names:?}"
    );
    // The index was built for 48 dimensions: opening it for 384 is a clear error.
    let err = HnswIndex::open(dir.path(), info(384), HnswConfig::default()).unwrap_err();
    assert!(matches!(err, StoreError::Invalid { .. }), "{err}");
    assert!(err.to_string().contains("48-dimensional"), "{err}");
}

/// The writer half of the kill -9 test: upserts batches into the index at
/// `CROW_VECTOR_CHILD_DIR` and prints `acked N` after each returns, until killed.
#[tokio::test]
#[ignore = "run by killed_mid_write_loses_nothing_acknowledged as a child process"]
async fn child_writer() {
    let Ok(dir) = std::env::var("CROW_VECTOR_CHILD_DIR") else {
        return;
    };
    let config = HnswConfig {
        snapshot_log_bytes: 200_000,
        ..HnswConfig::default()
    };
    let index = HnswIndex::open(std::path::Path::new(&dir), info(DIM), config).unwrap();
    let vectors = clustered(100_000, DIM, 31);
    for (b, chunk) in vectors.chunks(100).enumerate() {
        let records = chunk
            .iter()
            .enumerate()
            .map(|(i, v)| record(b * 100 + i, v.clone()))
            .collect();
        index.upsert("org", records).await.unwrap();
        println!("acked {}", (b + 1) * 100);
    }
}

#[test]
fn killed_mid_write_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "vectors::child_writer",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("CROW_VECTOR_CHILD_DIR", dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut acked = 0usize;
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if let Some(n) = line.strip_prefix("acked ") {
            acked = n.parse().unwrap();
            // Past at least one automatic snapshot (200 kB of log is about 35 batches).
            if acked >= 6000 {
                break;
            }
        }
    }
    // SIGKILL: no destructor, no flush, possibly mid-append or mid-snapshot.
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(acked >= 6000, "the child stopped early at {acked}");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let index = HnswIndex::open(dir.path(), info(DIM), HnswConfig::default()).unwrap();
        assert!(index.stats().generation >= 1, "a snapshot was taken before the kill");
        let count = index.count("org").await.unwrap();
        assert!(
            count >= acked,
            "{count} records after the crash, {acked} were acknowledged"
        );
        let ids: Vec<String> = (0..acked).map(|i| format!("v{i}")).collect();
        for chunk in ids.chunks(1000) {
            assert_eq!(index.get("org", chunk).await.unwrap().len(), chunk.len());
        }
        // And it keeps working: a write after recovery is there after the next reopen.
        let mut v = vec![0.0; DIM];
        v[1] = 1.0;
        index.upsert("org", vec![record(999_999, v)]).await.unwrap();
    });
    let index = HnswIndex::open(dir.path(), info(DIM), HnswConfig::default()).unwrap();
    assert_eq!(rt.block_on(index.get("org", &["v999999".into()])).unwrap().len(), 1);
}

#[tokio::test]
async fn one_process_owns_an_index_others_may_read_it() {
    let dir = tempfile::tempdir().unwrap();
    let owner = HnswIndex::open(dir.path(), info(DIM), HnswConfig::default()).unwrap();
    load(&owner, "org", &clustered(100, DIM, 41)).await;
    let err = HnswIndex::open(dir.path(), info(DIM), HnswConfig::default()).unwrap_err();
    assert!(matches!(err, StoreError::Locked(_)), "{err}");
    let reader = HnswIndex::open_read_only(dir.path(), info(DIM), HnswConfig::default()).unwrap();
    assert!(reader.is_read_only());
    assert_eq!(
        reader.count("org").await.unwrap(),
        100,
        "the reader sees what the owner logged"
    );
    let write = reader
        .upsert("org", vec![record(7, clustered(1, DIM, 1).remove(0))])
        .await;
    assert!(matches!(write, Err(Error::Unavailable(_))), "{write:?}");
    // The reader follows the owner: new log entries, then a snapshot (a new generation).
    let more: Vec<VectorRecord> = (100..150)
        .map(|i| record(i, clustered(1, DIM, i as u64).remove(0)))
        .collect();
    owner.upsert("org", more).await.unwrap();
    assert_eq!(
        reader.count("org").await.unwrap(),
        150,
        "the reader took in the owner's log"
    );
    owner.delete("org", &["v0".into()]).await.unwrap();
    owner.persist().await.unwrap();
    owner
        .upsert("org", vec![record(500, clustered(1, DIM, 500).remove(0))])
        .await
        .unwrap();
    assert_eq!(
        reader.count("org").await.unwrap(),
        150,
        "after the owner's snapshot: 150 - 1 + 1"
    );
    assert!(reader.get("org", &["v0".into()]).await.unwrap().is_empty());
    assert_eq!(reader.get("org", &["v500".into()]).await.unwrap().len(), 1);
    drop(owner);
    assert!(
        HnswIndex::open(dir.path(), info(DIM), HnswConfig::default()).is_ok(),
        "the lock goes with its owner"
    );
}

#[tokio::test]
async fn save_to_writes_a_copy_that_opens_and_replaces_an_older_copy() {
    let dir = tempfile::tempdir().unwrap();
    let vectors = clustered(600, DIM, 21);
    let index = HnswIndex::in_memory(info(DIM), HnswConfig::default()).unwrap();
    load(&index, "org_a", &vectors).await;
    index.delete("org_a", &["v3".to_string()]).await.unwrap();
    let copy = dir.path().join("copy");
    index.save_to(&copy).unwrap();
    let q = VectorQuery::new(vectors[7].clone(), 10);
    let before = index.query("org_a", &q).await.unwrap();
    {
        let opened = HnswIndex::open(&copy, info(DIM), HnswConfig::default()).unwrap();
        assert_eq!(opened.count("org_a").await.unwrap(), 599);
        assert_eq!(opened.query("org_a", &q).await.unwrap(), before);
        // While it is open, the directory is its own.
        assert!(matches!(index.save_to(&copy), Err(StoreError::Locked(_))));
    }
    // Saving again replaces the copy; an empty index leaves an empty directory.
    index.delete("org_a", &["v7".to_string()]).await.unwrap();
    index.save_to(&copy).unwrap();
    let opened = HnswIndex::open(&copy, info(DIM), HnswConfig::default()).unwrap();
    assert_eq!(opened.count("org_a").await.unwrap(), 598);
    drop(opened);
    let empty = HnswIndex::in_memory(info(DIM), HnswConfig::default()).unwrap();
    empty.save_to(&copy).unwrap();
    let opened = HnswIndex::open(&copy, info(DIM), HnswConfig::default()).unwrap();
    assert_eq!(opened.count("org_a").await.unwrap(), 0);
}
