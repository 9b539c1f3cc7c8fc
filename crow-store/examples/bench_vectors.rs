//! Vector-search benchmark, Rust side: crow-store's embedded HNSW index on a set written by
//! `bench/vectors.py gen` or `embed-gt` (see that file for the formats), the twin of its `peers`.
//!
//! ```text
//! RAYON_NUM_THREADS=1 cargo run --release -p crow-store --example bench_vectors -- \
//!     --data bench/out/synthetic [--json OUT] [--ef 10,16,...,512] [--k 10] [--m 16] \
//!     [--ef-construction 200] [--tail 1000] [--tmp DIR]
//! ```
//!
//! One index, one org ("bench"), ids = row numbers, metadata `{"attr": attr.u32[row]}`, cosine.
//! It is built in a temporary directory (`--tmp`, default the system's) with the log unsynced
//! (`sync: false`), in upserts of 5,000 (the port's limit; hnsw_rs inserts a batch of >= 256 with
//! rayon, so RAYON_NUM_THREADS=1 makes the build single-threaded like the peers').
//!
//! - **Build**: build_s (wall time of all upserts: validation, normalization, log append, graph
//!   inserts and the flat copy's refreshes), mem_mb (VmRSS after the build minus VmRSS before
//!   opening the index, the set already in memory), stats_memory_mb (`stats().memory_bytes`:
//!   vectors, flat graph and records, not hnsw_rs's own graph), index_mb (the snapshot's files).
//! - **Search**, per ef: recall@k against gt.i32 and queries/s one query at a time on this
//!   thread, for crow's search (`query`, the flat copy: lib "crow-hnsw") and for hnsw_rs's own
//!   search over the same graph (`search_hnsw_rs`: lib "hnsw_rs"). Each path gets an untimed
//!   warm-up pass at the largest ef first.
//! - **Filtered search** (crow only: hnsw_rs has no filter), per ef and S in 1, 10, 50:
//!   `attr<S`, recall@min(k, 10) against gt_filter_S.i32, queries/s.
//! - **Reachability**: every (N / 2,000)th base point searched for with its own vector at the
//!   largest ef, by both paths (`self_found`: the share found in the top k; a miss is a point the
//!   search cannot reach from the entry point).
//! - **Load**: after `persist()` and drop, the wall time of `HnswIndex::open` (snapshot read,
//!   flat copy rebuilt; files in the page cache); then `--tail` more records are upserted (they
//!   stay in the log), the index is dropped and opened again: load_with_log_s (snapshot + replay).
//!
//! Output, one JSON object per line to stdout and `--json`: the fields of `vectors.py peers`
//! ({"lib","set","k","m","ef_construction","build_s","mem_mb","index_mb","ef","recall",
//! "qps_single"} and {"lib","set","k","ef","selectivity","recall_filtered","qps_single"}), and
//! {"lib","set","ef","self_sample","self_found",...} and
//! {"lib":"crow-hnsw","set","n","load_s","load_with_log_s","tail","persist_s",...}. There is no
//! batch query API, so no qps_batch. Progress goes to stderr.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crow_core::ports::VectorIndex;
use crow_core::vector::{IndexInfo, MAX_UPSERT_BATCH, MetadataFilter, Metric, VectorQuery, VectorRecord};
use crow_store::vector::{HnswConfig, HnswIndex};
use futures::executor::block_on;
use serde_json::{Map, Value, json};

const ORG: &str = "bench";
const DEFAULT_EFS: &str = "10,16,24,32,48,64,96,128,192,256,384,512";
/// Base points searched for with their own vector (the reachability check).
const SELF_SAMPLE: usize = 2000;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

struct Args {
    data: PathBuf,
    json: Option<PathBuf>,
    efs: Vec<usize>,
    k: usize,
    m: usize,
    ef_construction: usize,
    tail: usize,
    tmp: Option<PathBuf>,
}

fn parse_args() -> Res<Args> {
    let mut args = Args {
        data: PathBuf::new(),
        json: None,
        efs: parse_list(DEFAULT_EFS)?,
        k: 10,
        m: 16,
        ef_construction: 200,
        tail: 1000,
        tmp: None,
    };
    let mut data = None;
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--data" => data = Some(PathBuf::from(value()?)),
            "--json" => args.json = Some(PathBuf::from(value()?)),
            "--ef" => args.efs = parse_list(&value()?)?,
            "--k" => args.k = value()?.parse()?,
            "--m" => args.m = value()?.parse()?,
            "--ef-construction" => args.ef_construction = value()?.parse()?,
            "--tail" => args.tail = value()?.parse()?,
            "--tmp" => args.tmp = Some(PathBuf::from(value()?)),
            "-h" | "--help" => {
                eprintln!(
                    "bench_vectors --data DIR [--json OUT] [--ef LIST] [--k 10] [--m 16] \
                     [--ef-construction 200] [--tail 1000] [--tmp DIR]"
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown flag {other:?} (see --help)").into()),
        }
    }
    args.data = data.ok_or("--data DIR is required")?;
    if args.efs.is_empty() || args.k == 0 {
        return Err("--ef needs at least one value and --k must be > 0".into());
    }
    Ok(args)
}

fn parse_list(s: &str) -> Res<Vec<usize>> {
    Ok(s.split(',').map(|v| v.trim().parse()).collect::<Result<_, _>>()?)
}

/// A set as `bench/vectors.py` writes it.
struct Set {
    name: String,
    n: usize,
    dim: usize,
    base: Vec<f32>,
    queries: Vec<f32>,
    gt: Vec<i32>,
    gt_k: usize,
    attr: Vec<u32>,
    /// (S, Q x filter_gt_k ids).
    gt_filter: Vec<(u32, Vec<i32>)>,
    filter_gt_k: usize,
}

impl Set {
    fn load(dir: &Path) -> Res<Set> {
        let meta: Value = serde_json::from_slice(&read(dir, "meta.json")?)?;
        let field = |k: &str| {
            meta[k]
                .as_u64()
                .map(|v| v as usize)
                .ok_or_else(|| format!("meta.json: no {k}"))
        };
        let (n, dim, q, gt_k) = (field("n")?, field("dim")?, field("queries")?, field("gt_k")?);
        let filter_gt_k = field("filter_gt_k").unwrap_or(10);
        let sels: Vec<u32> = match meta["selectivities"].as_array() {
            Some(a) => a.iter().filter_map(|v| v.as_u64().map(|s| s as u32)).collect(),
            None => vec![1, 10, 50],
        };
        let f32s = |name: &str| -> Res<Vec<f32>> { Ok(le(&read(dir, name)?, f32::from_le_bytes)) };
        let i32s = |name: &str| -> Res<Vec<i32>> { Ok(le(&read(dir, name)?, i32::from_le_bytes)) };
        let set = Set {
            name: dir
                .canonicalize()?
                .file_name()
                .map_or("?".into(), |s| s.to_string_lossy().into_owned()),
            n,
            dim,
            base: f32s("base.f32")?,
            queries: f32s("queries.f32")?,
            gt: i32s("gt.i32")?,
            gt_k,
            attr: le(&read(dir, "attr.u32")?, u32::from_le_bytes),
            gt_filter: sels
                .iter()
                .map(|&s| Ok((s, i32s(&format!("gt_filter_{s}.i32"))?)))
                .collect::<Res<_>>()?,
            filter_gt_k,
        };
        let sizes_ok = set.base.len() == n * dim
            && set.queries.len() == q * dim
            && set.gt.len() == q * gt_k
            && set.attr.len() == n
            && set.gt_filter.iter().all(|(_, g)| g.len() == q * filter_gt_k);
        if !sizes_ok {
            return Err(format!("{}: file sizes do not match meta.json", dir.display()).into());
        }
        Ok(set)
    }

    fn q(&self) -> usize {
        self.queries.len() / self.dim
    }

    fn query(&self, i: usize) -> &[f32] {
        &self.queries[i * self.dim..(i + 1) * self.dim]
    }

    fn record(&self, row: usize, id: String) -> VectorRecord {
        let mut metadata = Map::new();
        metadata.insert("attr".into(), json!(self.attr[row]));
        VectorRecord {
            id,
            namespace: None,
            values: self.base[row * self.dim..(row + 1) * self.dim].to_vec(),
            metadata,
        }
    }
}

fn read(dir: &Path, name: &str) -> Res<Vec<u8>> {
    let path = dir.join(name);
    std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()).into())
}

fn le<T, const N: usize>(bytes: &[u8], from: fn([u8; N]) -> T) -> Vec<T> {
    bytes
        .chunks_exact(N)
        .map(|c| from(c.try_into().expect("chunk of N")))
        .collect()
}

/// Mean over queries of |found ∩ truth| / |truth|, -1 in truth being padding (as vectors.py).
fn recall(found: &[Vec<usize>], truth: &[i32], truth_stride: usize, k: usize) -> f64 {
    let total: f64 = found
        .iter()
        .enumerate()
        .map(|(i, hits)| {
            let want: HashSet<usize> = truth[i * truth_stride..i * truth_stride + k]
                .iter()
                .filter(|&&t| t >= 0)
                .map(|&t| t as usize)
                .collect();
            hits.iter().filter(|h| want.contains(h)).count() as f64 / want.len().max(1) as f64
        })
        .sum();
    total / found.len().max(1) as f64
}

fn rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn dir_mb(dir: &Path) -> f64 {
    fn walk(p: &Path) -> u64 {
        std::fs::read_dir(p).into_iter().flatten().flatten().fold(0, |acc, e| {
            let Ok(md) = e.metadata() else { return acc };
            acc + if md.is_dir() { walk(&e.path()) } else { md.len() }
        })
    }
    walk(dir) as f64 / (1 << 20) as f64
}

fn round(v: f64, places: i32) -> f64 {
    let f = 10f64.powi(places);
    (v * f).round() / f
}

struct Out(Option<std::fs::File>);

impl Out {
    fn row(&mut self, v: Value) -> Res<()> {
        let line = v.to_string();
        println!("{line}");
        std::io::stdout().flush()?;
        if let Some(f) = &mut self.0 {
            writeln!(f, "{line}")?;
            f.flush()?;
        }
        Ok(())
    }
}

/// Runs every query through `search` one at a time: (ids per query, queries per second).
fn one_at_a_time(set: &Set, mut search: impl FnMut(&[f32]) -> Res<Vec<usize>>) -> Res<(Vec<Vec<usize>>, f64)> {
    let mut found = Vec::with_capacity(set.q());
    let t = Instant::now();
    for i in 0..set.q() {
        found.push(search(set.query(i))?);
    }
    Ok((found, set.q() as f64 / t.elapsed().as_secs_f64()))
}

fn ids(hits: impl IntoIterator<Item = String>) -> Res<Vec<usize>> {
    Ok(hits.into_iter().map(|id| id.parse()).collect::<Result<_, _>>()?)
}

/// Upserts rows `rows` of the base under ids made by `id`, in the port's largest batches.
fn upsert_rows(index: &HnswIndex, set: &Set, rows: std::ops::Range<usize>, id: impl Fn(usize) -> String) -> Res<()> {
    let mut start = rows.start;
    while start < rows.end {
        let end = (start + MAX_UPSERT_BATCH).min(rows.end);
        let batch: Vec<VectorRecord> = (start..end).map(|r| set.record(r, id(r))).collect();
        block_on(index.upsert(ORG, batch))?;
        start = end;
    }
    Ok(())
}

fn main() -> Res<()> {
    let args = parse_args()?;
    let set = Set::load(&args.data)?;
    let k = args.k.min(set.gt_k);
    let fk = k.min(set.filter_gt_k);
    let mut out = Out(match &args.json {
        Some(p) => Some(std::fs::File::create(p)?),
        None => None,
    });
    eprintln!(
        "bench_vectors: {} ({} x {}, {} queries), M {}, ef_construction {}, RAYON_NUM_THREADS={}",
        set.name,
        set.n,
        set.dim,
        set.q(),
        args.m,
        args.ef_construction,
        std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "unset".into())
    );

    let info = IndexInfo {
        name: "bench".into(),
        dimensions: set.dim,
        metric: Metric::Cosine,
    };
    let config = HnswConfig {
        m: args.m,
        ef_construction: args.ef_construction,
        ef_search: args.efs.iter().copied().max().unwrap_or(128),
        sync: false,
        capacity: set.n + args.tail,
        ..Default::default()
    };
    let tmp = match &args.tmp {
        Some(p) => {
            std::fs::create_dir_all(p)?;
            tempfile::tempdir_in(p)?
        }
        None => tempfile::tempdir()?,
    };
    let dir = tmp.path().join("index");

    // Build.
    let before = rss_mb();
    let t = Instant::now();
    let mut index = HnswIndex::open(&dir, info.clone(), config.clone())?;
    upsert_rows(&index, &set, 0..set.n, |r| r.to_string())?;
    let build_s = t.elapsed().as_secs_f64();
    let mem_mb = rss_mb() - before;
    let stats = index.stats();
    if stats.live != set.n {
        return Err(format!("{} records live after the build, expected {}", stats.live, set.n).into());
    }
    let t = Instant::now();
    block_on(index.persist())?;
    let persist_s = t.elapsed().as_secs_f64();
    let index_mb = dir_mb(&dir);
    let stats_mb = stats.memory_bytes as f64 / (1 << 20) as f64;
    eprintln!(
        "crow-hnsw: build {build_s:.1} s, +{mem_mb:.0} MB RSS (stats {stats_mb:.0} MB), snapshot {persist_s:.1} s, {index_mb:.0} MB on disk"
    );

    // Search, unfiltered: crow's path and hnsw_rs's own over the same graph.
    let top = args.efs.iter().copied().max().unwrap_or(128);
    let common = |lib: &str| {
        json!({"lib": lib, "set": set.name, "k": k, "m": args.m, "ef_construction": args.ef_construction,
               "build_s": round(build_s, 3)})
    };
    for lib in ["crow-hnsw", "hnsw_rs"] {
        let crow = lib == "crow-hnsw";
        let search = |index: &HnswIndex, q: &[f32]| -> Res<Vec<usize>> {
            if crow {
                ids(block_on(index.query(ORG, &VectorQuery::new(q.to_vec(), k)))?
                    .into_iter()
                    .map(|m| m.id))
            } else {
                ids(index.search_hnsw_rs(ORG, q, k).into_iter().map(|(id, _)| id))
            }
        };
        index.set_ef_search(top);
        one_at_a_time(&set, |q| search(&index, q))?; // warm-up, untimed
        for &ef in &args.efs {
            index.set_ef_search(ef);
            let (found, qps) = one_at_a_time(&set, |q| search(&index, q))?;
            let r = recall(&found, &set.gt, set.gt_k, k);
            let mut row = common(lib);
            let o = row.as_object_mut().expect("object");
            if crow {
                o.insert("mem_mb".into(), json!(round(mem_mb, 1)));
                o.insert("stats_memory_mb".into(), json!(round(stats_mb, 1)));
                o.insert("index_mb".into(), json!(round(index_mb, 1)));
            } else {
                o.insert(
                    "note".into(),
                    json!("hnsw_rs's search over crow-hnsw's graph: same build"),
                );
            }
            o.insert("ef".into(), json!(ef));
            o.insert("recall".into(), json!(round(r, 4)));
            o.insert("qps_single".into(), json!(round(qps, 1)));
            eprintln!("{lib}: ef {ef}: recall {r:.4}, {qps:.0} q/s single");
            out.row(row)?;
        }
    }

    // Filtered search (crow only).
    for &ef in &args.efs {
        index.set_ef_search(ef);
        let mut line = Vec::new();
        for (s, gt) in &set.gt_filter {
            let filter = MetadataFilter::parse_exprs([format!("attr<{s}")])?;
            let (found, qps) = one_at_a_time(&set, |q| {
                let query = VectorQuery::new(q.to_vec(), fk).with_filter(filter.clone());
                ids(block_on(index.query(ORG, &query))?.into_iter().map(|m| m.id))
            })?;
            let r = recall(&found, gt, set.filter_gt_k, fk);
            line.push(format!("{s} %: recall {r:.4}, {qps:.0} q/s"));
            out.row(
                json!({"lib": "crow-hnsw", "set": set.name, "k": fk, "ef": ef, "selectivity": s,
                           "recall_filtered": round(r, 4), "qps_single": round(qps, 1)}),
            )?;
        }
        eprintln!("crow-hnsw: ef {ef}: filtered {}", line.join(", "));
    }

    // Reachability: base points searched for with their own vector at the largest ef (each is
    // its own nearest neighbour, so a miss is a point the search cannot reach).
    index.set_ef_search(top);
    let step = (set.n / SELF_SAMPLE).max(1);
    let sample: Vec<usize> = (0..set.n).step_by(step).collect();
    for lib in ["crow-hnsw", "hnsw_rs"] {
        let mut missed = Vec::new();
        for &row in &sample {
            let q = &set.base[row * set.dim..(row + 1) * set.dim];
            let hits = if lib == "crow-hnsw" {
                ids(block_on(index.query(ORG, &VectorQuery::new(q.to_vec(), k)))?
                    .into_iter()
                    .map(|m| m.id))?
            } else {
                ids(index.search_hnsw_rs(ORG, q, k).into_iter().map(|(id, _)| id))?
            };
            if !hits.contains(&row) {
                missed.push(row);
            }
        }
        let found = 1.0 - missed.len() as f64 / sample.len() as f64;
        eprintln!(
            "{lib}: self-search at ef {top}: {} of {} base points not found (first: {:?})",
            missed.len(),
            sample.len(),
            &missed[..missed.len().min(10)]
        );
        out.row(
            json!({"lib": lib, "set": set.name, "ef": top, "k": k, "self_sample": sample.len(),
                       "self_found": round(found, 5), "self_missed_first": &missed[..missed.len().min(10)]}),
        )?;
    }

    // Load: the snapshot alone, then the snapshot and a log tail.
    drop(index);
    let t = Instant::now();
    let index = HnswIndex::open(&dir, info.clone(), config.clone())?;
    let load_s = t.elapsed().as_secs_f64();
    let live = index.stats().live;
    // The reloaded graph answers as the built one did (crow's path at the largest ef).
    let (found, _) = one_at_a_time(&set, |q| {
        ids(block_on(index.query(ORG, &VectorQuery::new(q.to_vec(), k)))?
            .into_iter()
            .map(|m| m.id))
    })?;
    let recall_after_load = recall(&found, &set.gt, set.gt_k, k);
    let tail = args.tail.min(set.n);
    upsert_rows(&index, &set, 0..tail, |r| format!("tail-{r}"))?;
    let log_mb = index.stats().log_bytes as f64 / (1 << 20) as f64;
    drop(index);
    let t = Instant::now();
    let index = HnswIndex::open(&dir, info, config)?;
    let load_with_log_s = t.elapsed().as_secs_f64();
    let live_with_log = index.stats().live;
    drop(index);
    if live != set.n || live_with_log != set.n + tail {
        return Err(format!(
            "reloaded {live} and {live_with_log} records, expected {} and {}",
            set.n,
            set.n + tail
        )
        .into());
    }
    eprintln!(
        "crow-hnsw: load {load_s:.2} s ({} records), with a {tail}-record log tail ({log_mb:.1} MB) {load_with_log_s:.2} s; \
         recall after load at ef {top}: {recall_after_load:.4}",
        set.n
    );
    out.row(json!({"lib": "crow-hnsw", "set": set.name, "n": set.n, "dim": set.dim,
                   "load_s": round(load_s, 3), "load_with_log_s": round(load_with_log_s, 3), "tail": tail,
                   "log_mb": round(log_mb, 1), "persist_s": round(persist_s, 3), "index_mb": round(index_mb, 1),
                   "recall_after_load": round(recall_after_load, 4), "ef_after_load": top}))?;
    Ok(())
}
