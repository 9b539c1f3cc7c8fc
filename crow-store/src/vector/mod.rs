//! The embedded [`VectorIndex`]: HNSW (hnsw_rs) with metadata filters, org isolation, tombstones
//! and crash-safe persistence.
//!
//! - **Org isolation inside the index.** Every record belongs to an org; every lookup, search and
//!   delete takes the org and only ever touches its records. A query first estimates how many of
//!   the index's records can match (the org's, the namespace's, the filter's, by sampling); when
//!   that is under [`HnswConfig::exact_below`] of the index or under
//!   [`HnswConfig::exact_max_candidates`], it searches those candidates exactly, so a small org in
//!   a large shared index or a selective filter still gets its `top_k` at full recall. Otherwise
//!   it walks the graph, passing through non-matching nodes without returning them.
//! - **Deletes and replacements are tombstones**; when they pass
//!   [`HnswConfig::rebuild_tombstones`] of the slots, the graph is rebuilt from the live records.
//! - **Persistence** (see [`HnswIndex::open`]): a directory with a snapshot (`gen-N/`: hnsw_rs's
//!   graph dump and the record table), `log-N.wal` (every change since the snapshot, synced before
//!   the call returns) and `MANIFEST` (which generation is current, swapped atomically). A
//!   kill -9 at any point loses nothing acknowledged: load = snapshot + log replay.
//! - **Threads**: searches share a read lock, writes take it exclusively; on a multi-threaded
//!   tokio runtime each call runs under `block_in_place`, so a long insert or snapshot does not
//!   stall the runtime's other tasks.
//!
//! ```
//! use crow_core::ports::VectorIndex;
//! use crow_core::vector::{IndexInfo, Metric, VectorQuery, VectorRecord};
//! use crow_store::vector::{HnswConfig, HnswIndex};
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let dir = tempfile::tempdir().unwrap();
//! let info = IndexInfo { name: "demo".into(), dimensions: 2, metric: Metric::Cosine };
//! let index = HnswIndex::open(dir.path(), info.clone(), HnswConfig::default()).unwrap();
//! let rec = |id: &str, values: Vec<f32>| VectorRecord {
//!     id: id.into(), namespace: None, values, metadata: Default::default(),
//! };
//! index.upsert("org_1", vec![rec("a", vec![1.0, 0.0]), rec("b", vec![0.0, 1.0])]).await.unwrap();
//! drop(index);
//! // Reopened, the records are there (from the log: no snapshot was taken).
//! let index = HnswIndex::open(dir.path(), info, HnswConfig::default()).unwrap();
//! let hits = index.query("org_1", &VectorQuery::new(vec![0.9, 0.1], 1)).await.unwrap();
//! assert_eq!(hits[0].id, "a");
//! assert!(index.query("org_2", &VectorQuery::new(vec![0.9, 0.1], 1)).await.unwrap().is_empty());
//! # });
//! ```

mod graph;
mod kernels;
mod log;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use crow_core::ports::VectorIndex;
use crow_core::vector::{self, IndexInfo, Metric, VectorMatch, VectorQuery, VectorRecord};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::StoreError;
use graph::{Flat, Graph};
use log::{Log, Op, Row};

/// Tuning of an [`HnswIndex`]; the `[vectors]` table of CROW's config file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HnswConfig {
    /// Links per node (HNSW's `M`; layer 0 keeps `2 * M`). More: better recall, more memory.
    pub m: usize,
    /// Candidate list size while inserting. More: a better graph, slower inserts.
    pub ef_construction: usize,
    /// Candidate list size while searching (at least `top_k`). More: better recall, slower.
    pub ef_search: usize,
    /// Search exactly when fewer than this share of the index's records can match.
    pub exact_below: f64,
    /// Search exactly when at most this many records can match.
    pub exact_max_candidates: usize,
    /// Rebuild the graph when tombstones pass this share of its nodes.
    pub rebuild_tombstones: f64,
    /// Take a snapshot when the log passes this many bytes.
    pub snapshot_log_bytes: u64,
    /// Sync the log on every change (turn off only for bulk loads you can redo).
    pub sync: bool,
    /// Re-select each node's links when the flat search copy is made (see BENCHMARKS.md: at
    /// 100k vectors it doubles the queries/s at a given recall; costs a pass over the graph).
    pub refine_links: bool,
    /// Expected number of records (a hint for the first allocation).
    pub capacity: usize,
}

impl Default for HnswConfig {
    fn default() -> Self {
        HnswConfig {
            m: 16,
            ef_construction: 200,
            ef_search: 128,
            exact_below: 0.02,
            exact_max_candidates: 2048,
            rebuild_tombstones: 0.3,
            snapshot_log_bytes: 64 << 20,
            sync: true,
            refine_links: true,
            capacity: 10_000,
        }
    }
}

impl HnswConfig {
    fn validate(&self) -> Result<(), StoreError> {
        let bad = |field: &str, reason: &str| Err(StoreError::invalid(format!("vectors.{field}"), reason));
        if !(2..=128).contains(&self.m) {
            return bad("m", "must be 2..=128");
        }
        if self.ef_construction < self.m || self.ef_search == 0 {
            return bad("ef_construction", "ef_construction must be >= m and ef_search > 0");
        }
        if !(0.0..=1.0).contains(&self.exact_below) || !(0.01..=1.0).contains(&self.rebuild_tombstones) {
            return bad(
                "exact_below",
                "exact_below must be in 0..=1 and rebuild_tombstones in 0.01..=1",
            );
        }
        Ok(())
    }
}

/// Counters of an index, for `crow status` and the benchmark.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexStats {
    /// Live records, all orgs.
    pub live: usize,
    /// Deleted or replaced records still in the graph.
    pub tombstones: usize,
    /// Records covered by the flat search copy (the rest are searched exactly).
    pub flat: usize,
    /// Snapshot generation (0: none yet).
    pub generation: u64,
    /// Bytes in the log since the snapshot.
    pub log_bytes: u64,
    /// Approximate memory held by vectors, flat graph and records (not hnsw_rs's own graph).
    pub memory_bytes: usize,
}

const MANIFEST: &str = "MANIFEST";
/// The owner of a deleted slot.
const DEAD: u32 = u32::MAX;
const GRAPH_BASENAME: &str = "graph";
const RECORDS: &str = "records.bin";
const FLAT: &str = "flat.bin";

#[derive(Debug, Serialize, Deserialize)]
struct Manifest {
    format: u32,
    name: String,
    dimensions: usize,
    metric: Metric,
    generation: u64,
    graph: String,
    slots: usize,
}

struct Slot {
    org: u32,
    namespace: Option<Box<str>>,
    id: Box<str>,
    metadata: Map<String, Value>,
    deleted: bool,
}

#[derive(Default)]
struct OrgSlots {
    /// Every slot the org ever had in this graph (dead ones are skipped on scan).
    slots: Vec<u32>,
    live: usize,
}

struct Inner {
    graph: Graph,
    flat: Option<Flat>,
    slots: Vec<Slot>,
    /// The org of each slot, [`DEAD`] once deleted or replaced: what a search checks first, in
    /// 4 bytes per slot instead of a walk into the slot.
    owners: Vec<u32>,
    /// `slots.len() * dim` values (normalized under cosine).
    vectors: Vec<f32>,
    keys: HashMap<(u32, Box<str>), u32>,
    org_names: Vec<String>,
    org_ids: HashMap<String, u32>,
    by_org: Vec<OrgSlots>,
    tombstones: usize,
    log: Option<Log>,
    generation: u64,
}

/// The embedded HNSW vector index (see the [module docs](self)).
pub struct HnswIndex {
    info: IndexInfo,
    config: HnswConfig,
    dir: Option<PathBuf>,
    inner: RwLock<Inner>,
    /// The exclusive lock on `dir/LOCK` (None: in memory, or opened read-only).
    _lock: Option<std::fs::File>,
    read_only: bool,
    /// Where a read-only index is in the owner's files (None when this process owns them).
    follow: Option<std::sync::Mutex<Follow>>,
}

/// A read-only index's place in the owner's files: the snapshot it loaded and how far into that
/// generation's log it has replayed.
struct Follow {
    dir: PathBuf,
    generation: u64,
    offset: u64,
}

impl std::fmt::Debug for HnswIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HnswIndex")
            .field("info", &self.info)
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl HnswIndex {
    /// An index that lives in memory only.
    pub fn in_memory(info: IndexInfo, config: HnswConfig) -> Result<Self, StoreError> {
        config.validate()?;
        let inner = Inner::new(Graph::new(
            info.metric,
            config.m,
            config.ef_construction,
            config.capacity,
        ));
        Ok(HnswIndex {
            info,
            config,
            dir: None,
            inner: RwLock::new(inner),
            _lock: None,
            read_only: false,
            follow: None,
        })
    }

    /// Opens (creating) the index stored in `dir`: loads the snapshot named by `MANIFEST`,
    /// replays the log, and cuts off a torn last entry. An index created with other
    /// dimensions or another metric is [`StoreError::Invalid`]; unreadable files are
    /// [`StoreError::Corrupt`].
    ///
    /// One process at a time owns an index directory (an exclusive lock on `dir/LOCK`, released
    /// by the OS however the process ends); while another holds it this is
    /// [`StoreError::Locked`], and [`HnswIndex::open_read_only`] still serves searches.
    pub fn open(dir: &Path, info: IndexInfo, config: HnswConfig) -> Result<Self, StoreError> {
        Self::open_with(dir, info, config, false)
    }

    /// Opens the index in `dir` for searching while another process owns it: loads what is
    /// durable now (snapshot and log) and changes no file. Each read first takes in what the
    /// owner wrote since (its new log entries; after its next snapshot, the whole index again).
    /// Writes are [`crow_core::Error::Unavailable`].
    pub fn open_read_only(dir: &Path, info: IndexInfo, config: HnswConfig) -> Result<Self, StoreError> {
        Self::open_with(dir, info, config, true)
    }

    fn open_with(dir: &Path, info: IndexInfo, config: HnswConfig, read_only: bool) -> Result<Self, StoreError> {
        config.validate()?;
        std::fs::create_dir_all(dir)?;
        let lock = if read_only {
            None
        } else {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(dir.join("LOCK"))?;
            match file.try_lock() {
                Ok(()) => Some(file),
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(StoreError::Locked(dir.display().to_string()));
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(e.into()),
            }
        };
        let manifest_path = dir.join(MANIFEST);
        let (mut inner, generation) = match std::fs::read(&manifest_path) {
            Ok(bytes) => {
                let m: Manifest = serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
                    path: manifest_path.display().to_string(),
                    reason: e.to_string(),
                })?;
                if m.dimensions != info.dimensions || m.metric != info.metric {
                    return Err(StoreError::invalid(
                        "vectors",
                        format!(
                            "the index at {} holds {}-dimensional {} vectors, asked for {}-dimensional {}: \
                             use another data directory or the model it was built with",
                            dir.display(),
                            m.dimensions,
                            m.metric,
                            info.dimensions,
                            info.metric
                        ),
                    ));
                }
                let gen_dir = dir.join(format!("gen-{}", m.generation));
                let graph = Graph::load(&gen_dir, &m.graph, info.metric)?;
                let rows = log::read_records(&gen_dir.join(RECORDS))?;
                if rows.len() != m.slots {
                    return Err(StoreError::Corrupt {
                        path: gen_dir.display().to_string(),
                        reason: format!("{} records, the manifest says {}", rows.len(), m.slots),
                    });
                }
                let vectors = graph.vectors(info.dimensions, rows.len())?;
                let flat_path = gen_dir.join(FLAT);
                let flat = match flat_path.exists() {
                    true => Some(Flat::read(&flat_path, rows.len())?),
                    false => None,
                };
                let mut inner = Inner::new(graph);
                inner.vectors = vectors;
                inner.flat = flat;
                for row in rows {
                    inner.push_slot(row);
                }
                (inner, m.generation)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (
                Inner::new(Graph::new(
                    info.metric,
                    config.m,
                    config.ef_construction,
                    config.capacity,
                )),
                0,
            ),
            Err(e) => return Err(e.into()),
        };
        inner.generation = generation;
        let log_path = dir.join(format!("log-{generation}.wal"));
        let dim = info.dimensions;
        let replay = |op| {
            inner.apply(op, dim);
            Ok(())
        };
        let mut follow = None;
        let replayed = if read_only {
            let (n, offset) = log::replay(&log_path, 0, replay)?;
            follow = Some(std::sync::Mutex::new(Follow {
                dir: dir.to_path_buf(),
                generation,
                offset,
            }));
            n
        } else {
            let (log, replayed) = Log::open(&log_path, config.sync, replay)?;
            inner.log = Some(log);
            remove_stale(dir, generation);
            replayed
        };
        // The snapshot's flat copy serves; a long log tail gets a new one, a short one is
        // searched exactly.
        let missing = inner.flat.is_none();
        inner.refreshed(&config, missing, info.metric, info.dimensions);
        tracing::debug!(index = %info.name, replayed, live = inner.live(), "vector index opened");
        Ok(HnswIndex {
            info,
            config,
            dir: (!read_only).then(|| dir.to_path_buf()),
            inner: RwLock::new(inner),
            _lock: lock,
            read_only,
            follow,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &HnswConfig {
        &self.config
    }

    /// Counters.
    pub fn stats(&self) -> IndexStats {
        let inner = self.read();
        IndexStats {
            live: inner.live(),
            tombstones: inner.tombstones,
            flat: inner.flat.as_ref().map_or(0, |f| f.n),
            generation: inner.generation,
            log_bytes: inner.log.as_ref().map_or(0, |l| l.len()),
            memory_bytes: inner.vectors.len() * 4
                + inner.flat.as_ref().map_or(0, |f| f.memory_bytes())
                + inner.slots.len() * (std::mem::size_of::<Slot>() + 64),
        }
    }

    /// Searches with hnsw_rs's own search instead of the flat copy (no filters, one org): the
    /// benchmark's comparison of the two search paths. `(id, score)`, best first.
    #[doc(hidden)]
    pub fn search_hnsw_rs(&self, org_id: &str, vector: &[f32], k: usize) -> Vec<(String, f32)> {
        let inner = self.read();
        let Some(&org) = inner.org_ids.get(org_id) else {
            return Vec::new();
        };
        let ef = self.config.ef_search.max(k);
        let metric = self.info.metric;
        let mut q = vector.to_vec();
        if metric == Metric::Cosine && vector::normalize(&mut q).is_err() {
            return Vec::new();
        }
        let kern = kernels::kernels();
        let dim = self.info.dimensions;
        inner
            .graph
            .search(&q, k, ef)
            .into_iter()
            .filter_map(|(s, _)| {
                let slot = inner.slots.get(s)?;
                let d = kern.distance(metric, &q, &inner.vectors[s * dim..(s + 1) * dim]);
                (!slot.deleted && slot.org == org).then(|| (slot.id.to_string(), kernels::score(metric, d)))
            })
            .collect()
    }

    /// Sets `ef_search` (the benchmark sweeps it).
    pub fn set_ef_search(&mut self, ef: usize) {
        self.config.ef_search = ef.max(1);
    }

    /// Whether the index was opened with [`HnswIndex::open_read_only`].
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// For a read-only index: takes in what the owner wrote since (new log entries; after the
    /// owner's next snapshot, the whole index again), so reads see every acknowledged write.
    fn catch_up(&self) -> Result<(), StoreError> {
        let Some(follow) = &self.follow else { return Ok(()) };
        let mut f = follow.lock().unwrap_or_else(|e| e.into_inner());
        let manifest = f.dir.join(MANIFEST);
        let generation = match std::fs::read(&manifest) {
            Ok(bytes) => serde_json::from_slice::<Manifest>(&bytes).map_or(f.generation, |m| m.generation),
            Err(_) => f.generation,
        };
        if generation != f.generation {
            let fresh = Self::open_with(&f.dir, self.info.clone(), self.config.clone(), true)?;
            let fresh_follow = fresh.follow.as_ref().map(|m| {
                let g = m.lock().unwrap_or_else(|e| e.into_inner());
                (g.generation, g.offset)
            });
            *self.write() = fresh.inner.into_inner().unwrap_or_else(|e| e.into_inner());
            if let Some((g, o)) = fresh_follow {
                f.generation = g;
                f.offset = o;
            }
            return Ok(());
        }
        let log_path = f.dir.join(format!("log-{generation}.wal"));
        if std::fs::metadata(&log_path).map_or(true, |m| m.len() <= f.offset) {
            return Ok(());
        }
        let dim = self.info.dimensions;
        let mut inner = self.write();
        let (_, offset) = log::replay(&log_path, f.offset, |op| {
            inner.apply(op, dim);
            Ok(())
        })?;
        f.offset = offset;
        inner.refreshed(&self.config, false, self.info.metric, dim);
        Ok(())
    }

    fn writable(&self) -> crow_core::Result<()> {
        if self.read_only {
            return Err(crow_core::Error::Unavailable(format!(
                "the {} index is open read-only: another process (a running `crow serve`?) owns it",
                self.info.name
            )));
        }
        Ok(())
    }

    fn read(&self) -> RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Validates and normalizes records into log rows.
    fn rows(&self, org_id: &str, records: Vec<VectorRecord>) -> crow_core::Result<Vec<Row>> {
        if org_id.is_empty() {
            return Err(crow_core::Error::invalid("org_id", "must not be empty"));
        }
        if records.len() > vector::MAX_UPSERT_BATCH {
            return Err(crow_core::Error::TooLarge(format!(
                "{} vectors in one upsert, the limit is {}",
                records.len(),
                vector::MAX_UPSERT_BATCH
            )));
        }
        let mut rows = Vec::with_capacity(records.len());
        for (i, mut r) in records.into_iter().enumerate() {
            self.info.validate_record(i, &r)?;
            if self.info.metric == Metric::Cosine {
                vector::normalize(&mut r.values)?;
            }
            rows.push(Row {
                org: org_id.to_string(),
                namespace: r.namespace,
                id: r.id,
                metadata: r.metadata,
                values: r.values,
                deleted: false,
            });
        }
        Ok(rows)
    }

    /// Writes a snapshot now (see the module docs for the protocol).
    fn snapshot(&self, inner: &mut Inner) -> Result<(), StoreError> {
        let Some(dir) = &self.dir else { return Ok(()) };
        let unchanged = inner.log.as_ref().is_some_and(|l| l.len() == 0) && dir.join(MANIFEST).exists();
        // An empty graph has nothing to dump (hnsw_rs refuses to); its log replays to the same.
        if unchanged || inner.slots.is_empty() {
            return Ok(());
        }
        self.write_snapshot(inner, dir)
    }

    /// Writes the next generation from `inner` and switches to it: the previous generation and
    /// its log are removed.
    fn write_snapshot(&self, inner: &mut Inner, dir: &Path) -> Result<(), StoreError> {
        let next = inner.generation + 1;
        let graph = self.write_generation(inner, dir, next)?;
        let new_log_path = dir.join(format!("log-{next}.wal"));
        let _ = std::fs::remove_file(&new_log_path);
        let (new_log, _) = Log::open(&new_log_path, self.config.sync, |_| Ok(()))?;
        self.write_manifest(dir, next, graph, inner.slots.len())?;
        // From here on the new generation is the one that loads.
        let old_log = inner.log.replace(new_log);
        inner.generation = next;
        if let Some(old) = old_log {
            let _ = std::fs::remove_file(old.path());
        }
        remove_stale(dir, next);
        Ok(())
    }

    /// Writes `dir/gen-{generation}/` (the graph, the record table and the flat copy when it is
    /// complete), synced; returns the graph's basename for the manifest.
    fn write_generation(&self, inner: &Inner, dir: &Path, generation: u64) -> Result<String, StoreError> {
        let gen_dir = dir.join(format!("gen-{generation}"));
        if gen_dir.exists() {
            std::fs::remove_dir_all(&gen_dir)?;
        }
        std::fs::create_dir_all(&gen_dir)?;
        let graph = inner.graph.dump(&gen_dir, GRAPH_BASENAME)?;
        for f in std::fs::read_dir(&gen_dir)? {
            std::fs::File::open(f?.path())?.sync_all()?;
        }
        log::write_records(
            &gen_dir.join(RECORDS),
            inner.slots.iter().map(|s| Row {
                org: inner.org_names[s.org as usize].clone(),
                namespace: s.namespace.as_deref().map(str::to_string),
                id: s.id.to_string(),
                metadata: s.metadata.clone(),
                values: Vec::new(),
                deleted: s.deleted,
            }),
        )?;
        if let Some(flat) = inner.flat.as_ref().filter(|f| f.n == inner.slots.len()) {
            flat.write(&gen_dir.join(FLAT))?;
        }
        log::sync_dir(&gen_dir)?;
        Ok(graph)
    }

    /// Points `dir/MANIFEST` at `generation` (written aside, synced, renamed into place).
    fn write_manifest(&self, dir: &Path, generation: u64, graph: String, slots: usize) -> Result<(), StoreError> {
        let manifest = Manifest {
            format: 1,
            name: self.info.name.clone(),
            dimensions: self.info.dimensions,
            metric: self.info.metric,
            generation,
            graph,
            slots,
        };
        let tmp = dir.join("MANIFEST.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(&manifest)?)?;
        std::fs::File::open(&tmp)?.sync_all()?;
        std::fs::rename(&tmp, dir.join(MANIFEST))?;
        log::sync_dir(dir)
    }

    /// Writes a copy of the index as it is now into `dir` (created when missing), in the layout
    /// [`HnswIndex::open`] loads: a snapshot, an empty log and `MANIFEST`. An index already
    /// stored in `dir` is replaced, atomically (`MANIFEST` switches to the copy last); while
    /// another index has `dir` open this is [`StoreError::Locked`]. For the index's own directory
    /// it is a snapshot ([`VectorIndex::persist`]). An empty index leaves no snapshot: `dir` then
    /// opens as a new, empty index. (The Python bindings' `VectorIndex.save`.)
    pub fn save_to(&self, dir: &Path) -> Result<(), StoreError> {
        let own = self
            .dir
            .as_ref()
            .is_some_and(|d| std::fs::canonicalize(d).ok() == std::fs::canonicalize(dir).ok());
        if own {
            let mut inner = self.write();
            return self.snapshot(&mut inner);
        }
        std::fs::create_dir_all(dir)?;
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("LOCK"))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Err(StoreError::Locked(dir.display().to_string())),
            Err(std::fs::TryLockError::Error(e)) => return Err(e.into()),
        }
        let manifest_path = dir.join(MANIFEST);
        let previous = match std::fs::read(&manifest_path) {
            Ok(bytes) => serde_json::from_slice::<Manifest>(&bytes).map_or(0, |m| m.generation),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => return Err(e.into()),
        };
        let next = previous + 1;
        let inner = self.read();
        if inner.live() == 0 {
            match std::fs::remove_file(&manifest_path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
                _ => {}
            }
            log::sync_dir(dir)?;
            remove_stale(dir, next);
            return Ok(());
        }
        let graph = self.write_generation(&inner, dir, next)?;
        let log_path = dir.join(format!("log-{next}.wal"));
        std::fs::File::create(&log_path)?.sync_all()?;
        self.write_manifest(dir, next, graph, inner.slots.len())?;
        remove_stale(dir, next);
        Ok(())
    }

    /// [`VectorIndex::compact`]: rebuilds the graph from the live records (when any record was
    /// deleted or replaced) and writes a new generation, removing every older snapshot and log;
    /// with no live record left, the directory is reset to an empty index (no `MANIFEST`, an
    /// empty `log-0.wal`). Afterwards neither memory nor any file of the index holds a deleted
    /// record's vector, id or metadata. Costs a graph build over every live record, under the
    /// write lock (searches wait).
    fn compact_now(&self) -> crow_core::Result<()> {
        self.writable()?;
        let mut inner = self.write();
        let log_empty = inner.log.as_ref().is_none_or(|l| l.len() == 0);
        if inner.tombstones == 0 && log_empty {
            // The snapshot holds no deleted slot (loading it would have counted one) and the log
            // holds nothing: nothing to purge.
            return Ok(());
        }
        if inner.tombstones > 0 {
            inner.rebuild(&self.info, &self.config);
        }
        let Some(dir) = self.dir.clone() else { return Ok(()) };
        if inner.slots.is_empty() {
            reset_dir(&mut inner, &dir, self.config.sync)?;
        } else {
            self.write_snapshot(&mut inner, &dir)?;
            purge_other_generations(&dir, inner.generation)?;
        }
        tracing::debug!(index = %self.info.name, live = inner.live(), generation = inner.generation, "vector index compacted");
        Ok(())
    }

    fn after_change(&self, inner: &mut Inner) -> crow_core::Result<()> {
        let total = inner.slots.len();
        if total >= 1000 && inner.tombstones as f64 > self.config.rebuild_tombstones * total as f64 {
            inner.rebuild(&self.info, &self.config);
            // The log names records by id, so it still replays onto the old snapshot; a new
            // snapshot just saves the reload from rebuilding again.
            self.snapshot(inner)?;
            return Ok(());
        }
        inner.refreshed(&self.config, false, self.info.metric, self.info.dimensions);
        if inner
            .log
            .as_ref()
            .is_some_and(|l| l.len() > self.config.snapshot_log_bytes)
        {
            self.snapshot(inner)?;
        }
        Ok(())
    }
}

/// The generation of a `gen-N` directory or a `log-N.wal` file name.
fn generation_of(name: &str) -> Option<u64> {
    name.strip_prefix("gen-")
        .or_else(|| name.strip_prefix("log-").and_then(|n| n.strip_suffix(".wal")))
        .and_then(|g| g.parse::<u64>().ok())
}

/// Removes every generation directory and log other than `keep` (`None`: all of them),
/// reporting failures (an erasure must not leave a file behind silently).
fn purge_other_generations_except(dir: &Path, keep: Option<u64>) -> Result<(), StoreError> {
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let name = e.file_name().to_string_lossy().to_string();
        if generation_of(&name).is_some_and(|g| Some(g) != keep) {
            let p = e.path();
            if p.is_dir() {
                std::fs::remove_dir_all(&p)?;
            } else {
                std::fs::remove_file(&p)?;
            }
        }
    }
    log::sync_dir(dir)
}

fn purge_other_generations(dir: &Path, keep: u64) -> Result<(), StoreError> {
    purge_other_generations_except(dir, Some(keep))
}

/// Resets an index directory to an empty index: `MANIFEST` goes first (so a crash from then on
/// loads generation 0), then every snapshot and log, then an empty `log-0.wal` is created.
fn reset_dir(inner: &mut Inner, dir: &Path, sync: bool) -> Result<(), StoreError> {
    drop(inner.log.take());
    match std::fs::remove_file(dir.join(MANIFEST)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
        _ => {}
    }
    log::sync_dir(dir)?;
    purge_other_generations_except(dir, None)?;
    let (log, _) = Log::open(&dir.join("log-0.wal"), sync, |_| Ok(()))?;
    log::sync_dir(dir)?;
    inner.log = Some(log);
    inner.generation = 0;
    inner.flat = None;
    Ok(())
}

/// Removes what a crashed snapshot left: generation directories and logs other than `keep`.
fn remove_stale(dir: &Path, keep: u64) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        let generation = name
            .strip_prefix("gen-")
            .or_else(|| name.strip_prefix("log-").and_then(|n| n.strip_suffix(".wal")))
            .and_then(|g| g.parse::<u64>().ok());
        if generation.is_some_and(|g| g != keep) {
            let p = e.path();
            let _ = if p.is_dir() {
                std::fs::remove_dir_all(&p)
            } else {
                std::fs::remove_file(&p)
            };
        }
    }
}

impl Inner {
    fn new(graph: Graph) -> Self {
        Inner {
            graph,
            flat: None,
            slots: Vec::new(),
            owners: Vec::new(),
            vectors: Vec::new(),
            keys: HashMap::new(),
            org_names: Vec::new(),
            org_ids: HashMap::new(),
            by_org: Vec::new(),
            tombstones: 0,
            log: None,
            generation: 0,
        }
    }

    fn live(&self) -> usize {
        self.slots.len() - self.tombstones
    }

    fn org(&mut self, name: &str) -> u32 {
        if let Some(&o) = self.org_ids.get(name) {
            return o;
        }
        let o = self.org_names.len() as u32;
        self.org_names.push(name.to_string());
        self.org_ids.insert(name.to_string(), o);
        self.by_org.push(OrgSlots::default());
        o
    }

    /// Appends a slot from a snapshot row (vectors are already in place).
    fn push_slot(&mut self, row: Row) {
        let org = self.org(&row.org);
        let slot = self.slots.len() as u32;
        self.by_org[org as usize].slots.push(slot);
        self.owners.push(if row.deleted { DEAD } else { org });
        if row.deleted {
            self.tombstones += 1;
        } else {
            self.by_org[org as usize].live += 1;
            self.keys.insert((org, row.id.clone().into()), slot);
        }
        self.slots.push(Slot {
            org,
            namespace: row.namespace.map(Into::into),
            id: row.id.into(),
            metadata: row.metadata,
            deleted: row.deleted,
        });
    }

    fn kill(&mut self, slot: u32) {
        let s = &mut self.slots[slot as usize];
        if !s.deleted {
            s.deleted = true;
            self.owners[slot as usize] = DEAD;
            self.tombstones += 1;
            self.by_org[s.org as usize].live -= 1;
        }
    }

    /// Whether an upsert row would change nothing (same namespace, metadata and values).
    fn unchanged(&self, row: &Row, dim: usize) -> bool {
        let Some(&org) = self.org_ids.get(&row.org) else {
            return false;
        };
        let Some(&slot) = self.keys.get(&(org, row.id.as_str().into())) else {
            return false;
        };
        let s = &self.slots[slot as usize];
        s.namespace.as_deref() == row.namespace.as_deref()
            && s.metadata == row.metadata
            && self.vectors[slot as usize * dim..(slot as usize + 1) * dim] == row.values[..]
    }

    /// Applies a change (live or replayed); returns how many records it touched.
    fn apply(&mut self, op: Op, dim: usize) -> usize {
        match op {
            Op::Upsert(rows) => {
                let first = self.slots.len();
                let n = rows.len();
                for mut row in rows {
                    let org = self.org(&row.org);
                    if let Some(old) = self.keys.remove(&(org, row.id.as_str().into())) {
                        self.kill(old);
                    }
                    self.vectors.extend_from_slice(&row.values);
                    row.values = Vec::new();
                    self.push_slot(row);
                }
                let items: Vec<(&[f32], usize)> = (first..self.slots.len())
                    .map(|s| (&self.vectors[s * dim..(s + 1) * dim], s))
                    .collect();
                self.graph.insert(&items);
                n
            }
            Op::Delete { org, ids } => {
                let Some(&o) = self.org_ids.get(&org) else { return 0 };
                let mut n = 0;
                for id in ids {
                    if let Some(slot) = self.keys.remove(&(o, id.into())) {
                        self.kill(slot);
                        n += 1;
                    }
                }
                n
            }
        }
    }

    /// Rebuilds the flat copy when enough records are outside it (or always, with `force`).
    fn refreshed(&mut self, config: &HnswConfig, force: bool, metric: Metric, dim: usize) {
        let total = self.slots.len();
        let flat_n = self.flat.as_ref().map_or(0, |f| f.n);
        let delta = total - flat_n;
        let worth = delta.max(1) >= (total / 8).clamp(256, 4096);
        if total > config.exact_max_candidates && delta > 0 && (force || worth) {
            let mut flat = self.graph.flatten(total);
            if config.refine_links {
                flat.refine(metric, dim, &self.vectors);
            }
            self.flat = Some(flat);
        }
    }

    /// A new graph from the live records only.
    fn rebuild(&mut self, info: &IndexInfo, config: &HnswConfig) {
        let dim = info.dimensions;
        let live: Vec<u32> = (0..self.slots.len() as u32)
            .filter(|&s| !self.slots[s as usize].deleted)
            .collect();
        tracing::info!(index = %info.name, live = live.len(), tombstones = self.tombstones, "rebuilding the vector graph");
        let old_slots = std::mem::take(&mut self.slots);
        let old_vectors = std::mem::take(&mut self.vectors);
        let mut fresh = Inner::new(Graph::new(info.metric, config.m, config.ef_construction, live.len()));
        fresh.log = self.log.take();
        fresh.generation = self.generation;
        fresh.vectors = Vec::with_capacity(live.len() * dim);
        let mut slots_by_index: Vec<Option<Slot>> = old_slots.into_iter().map(Some).collect();
        for s in live {
            let slot = slots_by_index[s as usize].take().expect("each live slot once");
            fresh
                .vectors
                .extend_from_slice(&old_vectors[s as usize * dim..(s as usize + 1) * dim]);
            let org = self.org_names[slot.org as usize].clone();
            fresh.push_slot(Row {
                org,
                namespace: slot.namespace.map(Into::into),
                id: slot.id.into(),
                metadata: slot.metadata,
                values: Vec::new(),
                deleted: false,
            });
        }
        let items: Vec<(&[f32], usize)> = (0..fresh.slots.len())
            .map(|s| (&fresh.vectors[s * dim..(s + 1) * dim], s))
            .collect();
        fresh.graph.insert(&items);
        *self = fresh;
        self.refreshed(config, true, info.metric, info.dimensions);
    }

    /// The slots of `org` that match `query`'s namespace and filter, as a predicate.
    fn matcher<'a>(&'a self, org: u32, query: &'a VectorQuery) -> impl Fn(usize) -> bool + 'a {
        let plain = query.namespace.is_none() && query.filter.is_empty();
        move |s: usize| {
            self.owners[s] == org
                && (plain || {
                    let slot = &self.slots[s];
                    (query.namespace.is_none() || slot.namespace.as_deref() == query.namespace.as_deref())
                        && query.filter.matches(&slot.metadata)
                })
        }
    }

    /// Estimated number of records that can match: exact without a filter, else sampled.
    fn estimate(&self, org: u32, query: &VectorQuery, accept: &impl Fn(usize) -> bool) -> usize {
        let os = &self.by_org[org as usize];
        if query.filter.is_empty() && query.namespace.is_none() {
            return os.live;
        }
        const SAMPLE: usize = 512;
        if os.slots.len() <= SAMPLE {
            return os.slots.iter().filter(|&&s| accept(s as usize)).count();
        }
        let step = os.slots.len() as f64 / SAMPLE as f64;
        let hits = (0..SAMPLE)
            .filter(|i| accept(os.slots[(*i as f64 * step) as usize] as usize))
            .count();
        // Round up so that a rare match is not estimated away.
        ((hits as f64 + 1.0) / SAMPLE as f64 * os.slots.len() as f64).ceil() as usize
    }

    fn search(
        &self,
        info: &IndexInfo,
        config: &HnswConfig,
        org: u32,
        query: &VectorQuery,
        q: &[f32],
    ) -> Vec<VectorMatch> {
        let dim = info.dimensions;
        let metric = info.metric;
        let kern = kernels::kernels();
        let vector = |s: usize| &self.vectors[s * dim..(s + 1) * dim];
        let accept = self.matcher(org, query);
        let estimate = self.estimate(org, query, &accept);
        let exact = self.flat.is_none()
            || estimate <= config.exact_max_candidates
            || (estimate as f64) < config.exact_below * self.live() as f64;
        let scored: Vec<(f32, usize)> = if exact {
            self.by_org[org as usize]
                .slots
                .iter()
                .map(|&s| s as usize)
                .filter(|&s| accept(s))
                .map(|s| (kern.distance(metric, q, vector(s)), s))
                .collect()
        } else {
            let flat = self.flat.as_ref().expect("checked above");
            let ef = config.ef_search.max(query.top_k);
            let mut hits = flat.search(metric, q, ef, vector, &accept);
            // Records added since the flat copy was made are searched exactly.
            hits.extend(
                (flat.n..self.slots.len())
                    .filter(|&s| accept(s))
                    .map(|s| (kern.distance(metric, q, vector(s)), s)),
            );
            hits
        };
        // Internal distances are lower-is-closer under every metric.
        vector::top_k(Metric::Euclidean, scored, query.top_k, |s| *s)
            .into_iter()
            .map(|(d, s)| {
                let slot = &self.slots[s];
                VectorMatch {
                    id: slot.id.to_string(),
                    namespace: slot.namespace.as_deref().map(str::to_string),
                    score: kernels::score(metric, d),
                    metadata: slot.metadata.clone(),
                }
            })
            .collect()
    }
}

/// Runs CPU- or fsync-bound work under `block_in_place` on a multi-threaded tokio runtime, so the
/// runtime keeps serving on its other threads; inline anywhere else.
fn off_the_runtime<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

impl HnswIndex {
    fn upsert_now(&self, org_id: &str, records: Vec<VectorRecord>) -> crow_core::Result<usize> {
        self.writable()?;
        let rows = self.rows(org_id, records)?;
        let total = rows.len();
        let dim = self.info.dimensions;
        let mut inner = self.write();
        let changed: Vec<Row> = rows.into_iter().filter(|r| !inner.unchanged(r, dim)).collect();
        if changed.is_empty() {
            return Ok(total);
        }
        let op = Op::Upsert(changed);
        if let Some(log) = inner.log.as_mut() {
            log.append(&op)?;
        }
        inner.apply(op, dim);
        self.after_change(&mut inner)?;
        Ok(total)
    }

    fn delete_now(&self, org_id: &str, ids: &[String]) -> crow_core::Result<usize> {
        self.writable()?;
        let mut inner = self.write();
        let Some(&org) = inner.org_ids.get(org_id) else {
            return Ok(0);
        };
        let present: Vec<String> = ids
            .iter()
            .filter(|id| inner.keys.contains_key(&(org, id.as_str().into())))
            .cloned()
            .collect();
        if present.is_empty() {
            return Ok(0);
        }
        let op = Op::Delete {
            org: org_id.to_string(),
            ids: present,
        };
        if let Some(log) = inner.log.as_mut() {
            log.append(&op)?;
        }
        let n = inner.apply(op, self.info.dimensions);
        self.after_change(&mut inner)?;
        Ok(n)
    }

    fn query_now(&self, org_id: &str, query: &VectorQuery) -> crow_core::Result<Vec<VectorMatch>> {
        self.info.validate_query(query)?;
        self.catch_up()?;
        let mut q = query.vector.clone();
        if self.info.metric == Metric::Cosine {
            vector::normalize(&mut q)?;
        }
        let inner = self.read();
        let Some(&org) = inner.org_ids.get(org_id) else {
            return Ok(Vec::new());
        };
        Ok(inner.search(&self.info, &self.config, org, query, &q))
    }
}

#[async_trait::async_trait]
impl VectorIndex for HnswIndex {
    fn info(&self) -> &IndexInfo {
        &self.info
    }

    async fn upsert(&self, org_id: &str, records: Vec<VectorRecord>) -> crow_core::Result<usize> {
        off_the_runtime(|| self.upsert_now(org_id, records))
    }

    async fn delete(&self, org_id: &str, ids: &[String]) -> crow_core::Result<usize> {
        off_the_runtime(|| self.delete_now(org_id, ids))
    }

    async fn get(&self, org_id: &str, ids: &[String]) -> crow_core::Result<Vec<VectorRecord>> {
        self.catch_up()?;
        let inner = self.read();
        let Some(&org) = inner.org_ids.get(org_id) else {
            return Ok(Vec::new());
        };
        let dim = self.info.dimensions;
        Ok(ids
            .iter()
            .filter_map(|id| inner.keys.get(&(org, id.as_str().into())))
            .map(|&s| {
                let slot = &inner.slots[s as usize];
                VectorRecord {
                    id: slot.id.to_string(),
                    namespace: slot.namespace.as_deref().map(str::to_string),
                    values: inner.vectors[s as usize * dim..(s as usize + 1) * dim].to_vec(),
                    metadata: slot.metadata.clone(),
                }
            })
            .collect())
    }

    async fn query(&self, org_id: &str, query: &VectorQuery) -> crow_core::Result<Vec<VectorMatch>> {
        off_the_runtime(|| self.query_now(org_id, query))
    }

    async fn count(&self, org_id: &str) -> crow_core::Result<usize> {
        self.catch_up()?;
        let inner = self.read();
        Ok(inner.org_ids.get(org_id).map_or(0, |&o| inner.by_org[o as usize].live))
    }

    async fn persist(&self) -> crow_core::Result<()> {
        off_the_runtime(|| {
            let mut inner = self.write();
            self.snapshot(&mut inner)
        })?;
        Ok(())
    }

    async fn compact(&self) -> crow_core::Result<()> {
        off_the_runtime(|| self.compact_now())
    }
}
