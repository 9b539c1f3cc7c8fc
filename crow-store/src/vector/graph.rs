//! The HNSW graph: hnsw_rs builds it and writes it to disk; searches run over a flat copy.
//!
//! hnsw_rs keeps every node behind an `Arc` with a lock around its neighbour lists, which makes
//! insertion concurrent but a search pointer-chasing. So the index keeps two views of one graph:
//! - [`Graph`], the hnsw_rs structure, for inserts and for `file_dump` / `HnswIo` reload;
//! - [`Flat`], a read-only copy in flat arrays (layer-0 neighbours at a fixed stride, the few
//!   upper-layer nodes in a side table) over the index's own contiguous vectors, rebuilt from
//!   [`Graph`] after a batch of inserts. Searches walk it with a reusable visited list and SIMD
//!   distances; BENCHMARKS.md compares both search paths.
//!
//! A graph reloaded by [`HnswIo`] borrows from it, so [`Graph::Loaded`] keeps the two together in a
//! `self_cell` instead of leaking or transmuting lifetimes.

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::path::Path;

use anndists::dist::Distance;
use crow_core::vector::Metric;
use hnsw_rs::api::AnnT;
use hnsw_rs::hnsw::{Hnsw, IterPoint};
use hnsw_rs::hnswio::HnswIo;

use super::kernels::{Kernels, kernels, prefetch};
use crate::StoreError;

/// hnsw_rs's graph dump needs an index created with the full 16 layers.
pub(crate) const MAX_LAYER: usize = 16;

/// The distance hnsw_rs builds with: the same kernels as the flat search.
#[derive(Clone, Copy)]
pub(crate) struct Dist {
    metric: Metric,
    kernels: Kernels,
}

impl Dist {
    pub(crate) fn new(metric: Metric) -> Self {
        Dist {
            metric,
            kernels: kernels(),
        }
    }
}

impl Distance<f32> for Dist {
    fn eval(&self, a: &[f32], b: &[f32]) -> f32 {
        let d = self.kernels.distance(self.metric, a, b);
        // hnsw_rs needs distances >= 0 (it asserts so) and only compares them: cosine becomes
        // 1 - cos in [0, 2]; an inner product of any sign goes through a monotone map onto
        // (0, inf).
        match self.metric {
            Metric::Cosine => (1.0 + d).max(0.0),
            Metric::DotProduct if d >= 0.0 => 1.0 + d,
            Metric::DotProduct => 1.0 / (1.0 - d),
            Metric::Euclidean => d,
        }
    }
}

type HnswGraph<'a> = Hnsw<'a, f32, Dist>;

self_cell::self_cell!(
    /// A graph reloaded from disk together with the loader it borrows from.
    pub(crate) struct LoadedGraph {
        owner: Box<HnswIo>,
        #[not_covariant]
        dependent: HnswGraph,
    }
);

/// The hnsw_rs graph, built here or reloaded from a dump.
pub(crate) enum Graph {
    Owned(Box<HnswGraph<'static>>),
    Loaded(LoadedGraph),
}

impl Graph {
    pub(crate) fn new(metric: Metric, m: usize, ef_construction: usize, capacity: usize) -> Self {
        Graph::Owned(Box::new(Hnsw::new(
            m,
            capacity.max(1024),
            MAX_LAYER,
            ef_construction,
            Dist::new(metric),
        )))
    }

    /// Reloads `dir/basename.hnsw.{graph,data}` written by [`Graph::dump`].
    pub(crate) fn load(dir: &Path, basename: &str, metric: Metric) -> Result<Self, StoreError> {
        let io = Box::new(HnswIo::new(dir, basename));
        let loaded = LoadedGraph::try_new(io, |io| {
            io.load_hnsw_with_dist::<f32, Dist>(Dist::new(metric))
                .map_err(|e| StoreError::Corrupt {
                    path: dir.join(basename).display().to_string(),
                    reason: e.to_string(),
                })
        })?;
        Ok(Graph::Loaded(loaded))
    }

    fn with<R>(&self, f: impl for<'a> FnOnce(&HnswGraph<'a>) -> R) -> R {
        match self {
            Graph::Owned(h) => f(h),
            Graph::Loaded(l) => l.with_dependent(|_, h| f(h)),
        }
    }

    /// Inserts vectors under their slot numbers (several threads when there are many).
    pub(crate) fn insert(&self, items: &[(&[f32], usize)]) {
        self.with(|h| {
            if items.len() >= 256 {
                h.parallel_insert_slice(&items.to_vec());
            } else {
                for item in items {
                    h.insert_slice(*item);
                }
            }
        })
    }

    /// Writes the graph and its vectors into `dir`; returns the basename used.
    pub(crate) fn dump(&self, dir: &Path, basename: &str) -> Result<String, StoreError> {
        self.with(|h| h.file_dump(dir, basename))
            .map_err(|e| StoreError::Internal(format!("hnsw dump into {}: {e}", dir.display())))
    }

    /// hnsw_rs's own search (for comparison in the benchmark): `(slot, internal distance)`.
    pub(crate) fn search(&self, query: &[f32], k: usize, ef: usize) -> Vec<(usize, f32)> {
        self.with(|h| {
            h.search(query, k, ef)
                .into_iter()
                .map(|n| (n.d_id, n.distance))
                .collect()
        })
    }

    /// The vectors stored in the graph, by slot (for a reload: the index keeps its own copy).
    pub(crate) fn vectors(&self, dim: usize, slots: usize) -> Result<Vec<f32>, StoreError> {
        self.with(|h| {
            let mut out = vec![0f32; dim * slots];
            let mut seen = 0usize;
            for p in IterPoint::new(h.get_point_indexation()) {
                let slot = p.get_origin_id();
                let v = p.get_v();
                if slot >= slots || v.len() != dim {
                    return Err(StoreError::Internal(format!(
                        "graph point {slot} (dimension {}) is outside the {slots} slots of the records",
                        v.len()
                    )));
                }
                out[slot * dim..(slot + 1) * dim].copy_from_slice(v);
                seen += 1;
            }
            if seen != slots {
                return Err(StoreError::Internal(format!(
                    "graph has {seen} points, the records {slots}"
                )));
            }
            Ok(out)
        })
    }

    /// A flat copy of the graph over its first `n` slots (all of them, by construction).
    pub(crate) fn flatten(&self, n: usize) -> Flat {
        self.with(|h| {
            let m0 = 2 * h.get_max_nb_connection() as usize;
            let mut neighbours = vec![u32::MAX; n * m0];
            let mut upper: HashMap<u32, Vec<Vec<u32>>> = HashMap::new();
            let mut entry = None;
            let mut max_level = 0u8;
            for p in IterPoint::new(h.get_point_indexation()) {
                let slot = p.get_origin_id();
                if slot >= n {
                    continue;
                }
                let level = p.get_point_id().0;
                let layers = p.get_neighborhood_id();
                for (i, nb) in layers.first().into_iter().flatten().take(m0).enumerate() {
                    neighbours[slot * m0 + i] = nb.d_id as u32;
                }
                if level > 0 {
                    upper.insert(
                        slot as u32,
                        layers
                            .iter()
                            .take(level as usize + 1)
                            .map(|l| {
                                l.iter()
                                    .map(|nb| nb.d_id as u32)
                                    .filter(|&s| (s as usize) < n)
                                    .collect()
                            })
                            .collect(),
                    );
                }
                if entry.is_none() || level > max_level {
                    entry = Some(slot as u32);
                    max_level = level;
                }
            }
            Flat {
                n,
                m0,
                neighbours,
                upper,
                entry,
                max_level,
            }
        })
    }
}

/// A read-only copy of the graph over slots `0..n`.
pub(crate) struct Flat {
    pub(crate) n: usize,
    m0: usize,
    /// Layer-0 neighbours of slot `s` at `s * m0 ..`, `u32::MAX` after the last.
    neighbours: Vec<u32>,
    /// Neighbours by layer (0..=level) of the nodes above layer 0.
    upper: HashMap<u32, Vec<Vec<u32>>>,
    entry: Option<u32>,
    max_level: u8,
}

/// Makes every node reachable from `entry` over the layer-0 `rows`: a node the walk cannot reach
/// (a node nobody links to, or a small cluster that only links to itself) gets a link from the
/// nearest reachable node, in place of that node's last (least useful) link when its row is full.
/// `dist(a, b)` is the internal distance. Linear in the graph, plus a scan of the reached nodes
/// for each unreached node that has no reached neighbour of its own (rare).
/// Returns how many nodes it linked.
fn connect(rows: &mut [Vec<u32>], entry: u32, m0: usize, dist: impl Fn(u32, u32) -> f32) -> usize {
    let n = rows.len();
    let mut reached = vec![false; n];
    let mut order: Vec<u32> = Vec::with_capacity(n);
    let expand = |from: u32, rows: &[Vec<u32>], reached: &mut [bool], order: &mut Vec<u32>| {
        let start = order.len();
        reached[from as usize] = true;
        order.push(from);
        let mut i = start;
        while i < order.len() {
            for &v in &rows[order[i] as usize] {
                if !reached[v as usize] {
                    reached[v as usize] = true;
                    order.push(v);
                }
            }
            i += 1;
        }
    };
    expand(entry, rows, &mut reached, &mut order);
    let mut linked = 0;
    for u in 0..n as u32 {
        if reached[u as usize] {
            continue;
        }
        let near = |cands: &mut dyn Iterator<Item = u32>| {
            cands
                .map(|v| (dist(u, v), v))
                .min_by(|a, b| a.0.total_cmp(&b.0))
                .map(|(_, v)| v)
        };
        let own = near(&mut rows[u as usize].iter().copied().filter(|&v| reached[v as usize]));
        let Some(v) = own.or_else(|| near(&mut order.iter().copied())) else {
            continue;
        };
        let row = &mut rows[v as usize];
        if row.len() < m0 {
            row.push(u);
        } else if let Some(last) = row.last_mut() {
            *last = u;
        }
        expand(u, rows, &mut reached, &mut order);
        linked += 1;
    }
    linked
}

thread_local! {
    /// Visited marks for the flat search, reused across queries: slot → epoch of the last visit.
    static VISITED: RefCell<(u32, Vec<u32>)> = const { RefCell::new((0, Vec::new())) };
}

/// An entry of the search heaps, ordered by distance then slot.
#[derive(Clone, Copy, PartialEq)]
struct Cand(f32, u32);
impl Eq for Cand {}
impl PartialOrd for Cand {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Cand {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0).then(self.1.cmp(&other.1))
    }
}

impl Flat {
    /// Re-selects every node's layer-0 links with HNSW's diversity heuristic over its out- and
    /// in-links, then fills the row with the nearest of the rest. hnsw_rs picks a new node's links with the heuristic but, when a reverse link
    /// overflows an old node's list, drops the farthest link instead, so old nodes end up with
    /// only their nearest neighbours and few long links; re-selecting restores them. Parallel
    /// (rayon); `vectors` holds slot `s` at `s * dim ..`.
    pub(crate) fn refine(&mut self, metric: Metric, dim: usize, vectors: &[f32]) {
        use rayon::prelude::*;
        let (n, m0) = (self.n, self.m0);
        let k = kernels();
        let vector = |s: u32| &vectors[s as usize * dim..(s as usize + 1) * dim];
        let row = |u: usize| {
            self.neighbours[u * m0..(u + 1) * m0]
                .iter()
                .copied()
                .take_while(|&v| v != u32::MAX)
        };
        let mut incoming: Vec<Vec<u32>> = vec![Vec::new(); n];
        for u in 0..n {
            for v in row(u) {
                incoming[v as usize].push(u as u32);
            }
        }
        let rows: Vec<Vec<u32>> = (0..n)
            .into_par_iter()
            .map(|u| {
                let me = vector(u as u32);
                let mut cands: Vec<(f32, u32)> = row(u)
                    .chain(incoming[u].iter().copied())
                    .filter(|&c| c as usize != u)
                    .map(|c| (k.distance(metric, me, vector(c)), c))
                    .collect();
                cands.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
                cands.dedup_by_key(|c| c.1);
                let mut kept: Vec<(f32, u32)> = Vec::with_capacity(m0);
                let mut pruned: Vec<u32> = Vec::new();
                for (d, c) in cands {
                    if kept.len() == m0 {
                        break;
                    }
                    let cv = vector(c);
                    if kept.iter().all(|&(_, q)| k.distance(metric, cv, vector(q)) > d) {
                        kept.push((d, c));
                    } else {
                        pruned.push(c);
                    }
                }
                // The diverse links first, then the nearest of the others up to the row's size:
                // long links for navigation without giving up the near ones for recall.
                let free = m0 - kept.len();
                kept.into_iter()
                    .map(|(_, c)| c)
                    .chain(pruned.into_iter().take(free))
                    .collect()
            })
            .collect();
        let mut rows = rows;
        if let Some(entry) = self.entry {
            // A replaced link can cut off the node it pointed to: check again (rarely needed).
            for _ in 0..3 {
                if connect(&mut rows, entry, m0, |a, b| k.distance(metric, vector(a), vector(b))) == 0 {
                    break;
                }
            }
        }
        for (u, r) in rows.into_iter().enumerate() {
            let dst = &mut self.neighbours[u * m0..(u + 1) * m0];
            dst.fill(u32::MAX);
            dst[..r.len()].copy_from_slice(&r);
        }
    }

    /// Writes the flat copy (all `u32` LE: n, m0, entry + 1 (0: none), max level, the layer-0
    /// table, then the upper nodes as slot, layer count, and per layer a length and the slots).
    pub(crate) fn write(&self, path: &Path) -> Result<(), StoreError> {
        let mut out: Vec<u32> = vec![
            self.n as u32,
            self.m0 as u32,
            self.entry.map_or(0, |e| e + 1),
            self.max_level as u32,
        ];
        out.extend_from_slice(&self.neighbours);
        let mut upper: Vec<_> = self.upper.iter().collect();
        upper.sort_by_key(|(s, _)| **s);
        out.push(upper.len() as u32);
        for (slot, layers) in upper {
            out.push(*slot);
            out.push(layers.len() as u32);
            for l in layers {
                out.push(l.len() as u32);
                out.extend_from_slice(l);
            }
        }
        let bytes: Vec<u8> = out.iter().flat_map(|x| x.to_le_bytes()).collect();
        std::fs::write(path, bytes)?;
        std::fs::File::open(path)?.sync_all()?;
        Ok(())
    }

    /// Reads a flat copy written by [`Flat::write`] for a graph of `n` slots.
    pub(crate) fn read(path: &Path, n: usize) -> Result<Flat, StoreError> {
        let corrupt = |reason: &str| StoreError::Corrupt {
            path: path.display().to_string(),
            reason: reason.to_string(),
        };
        let bytes = std::fs::read(path)?;
        if bytes.len() % 4 != 0 {
            return Err(corrupt("not a whole number of u32 values"));
        }
        let words: Vec<u32> = bytes
            .chunks_exact(4)
            .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
            .collect();
        let mut it = words.iter().copied();
        let mut next = || it.next().ok_or_else(|| corrupt("cut short"));
        let (fn_, m0, entry, max_level) = (next()? as usize, next()? as usize, next()?, next()?);
        if fn_ != n || m0 == 0 || m0 > 256 || max_level > 255 {
            return Err(corrupt(&format!("header n={fn_} m0={m0} does not fit {n} records")));
        }
        let mut neighbours = Vec::with_capacity(n * m0);
        for _ in 0..n * m0 {
            let v = next()?;
            if v != u32::MAX && v as usize >= n {
                return Err(corrupt("a link points past the last slot"));
            }
            neighbours.push(v);
        }
        let mut upper = HashMap::new();
        for _ in 0..next()? {
            let slot = next()?;
            let layers = next()? as usize;
            let mut ls = Vec::with_capacity(layers.min(256));
            for _ in 0..layers {
                let len = next()? as usize;
                let mut l = Vec::with_capacity(len.min(256));
                for _ in 0..len {
                    l.push(next()?);
                }
                ls.push(l);
            }
            upper.insert(slot, ls);
        }
        Ok(Flat {
            n,
            m0,
            neighbours,
            upper,
            entry: entry.checked_sub(1),
            max_level: max_level as u8,
        })
    }

    pub(crate) fn memory_bytes(&self) -> usize {
        self.neighbours.len() * 4 + self.upper.values().flatten().map(|l| l.len() * 4 + 24).sum::<usize>()
    }

    /// The best `ef` (at least `k`) slots that pass `accept`, walking through those that do
    /// not: `(internal distance, slot)`, closest first. `vector(s)` gives slot `s`'s values.
    pub(crate) fn search<'v>(
        &self,
        metric: Metric,
        query: &[f32],
        ef: usize,
        vector: impl Fn(usize) -> &'v [f32],
        accept: impl Fn(usize) -> bool,
    ) -> Vec<(f32, usize)> {
        let Some(mut cur) = self.entry else { return Vec::new() };
        let k = kernels();
        let dist = |s: u32| k.distance(metric, query, vector(s as usize));
        // Greedy descent through the upper layers.
        let mut cur_d = dist(cur);
        for layer in (1..=self.max_level as usize).rev() {
            loop {
                let mut moved = false;
                if let Some(nbs) = self.upper.get(&cur).and_then(|l| l.get(layer)) {
                    for &nb in nbs {
                        let d = dist(nb);
                        if d < cur_d {
                            cur_d = d;
                            cur = nb;
                            moved = true;
                        }
                    }
                }
                if !moved {
                    break;
                }
            }
        }
        // Beam search in layer 0.
        VISITED.with_borrow_mut(|(epoch, marks)| {
            if marks.len() < self.n {
                marks.resize(self.n, 0);
            }
            *epoch = epoch.wrapping_add(1);
            if *epoch == 0 {
                marks.iter_mut().for_each(|m| *m = 0);
                *epoch = 1;
            }
            let epoch = *epoch;
            let mut candidates: BinaryHeap<Reverse<Cand>> = BinaryHeap::with_capacity(ef * 2);
            let mut results: BinaryHeap<Cand> = BinaryHeap::with_capacity(ef + 1);
            marks[cur as usize] = epoch;
            candidates.push(Reverse(Cand(cur_d, cur)));
            if accept(cur as usize) {
                results.push(Cand(cur_d, cur));
            }
            while let Some(Reverse(Cand(d, s))) = candidates.pop() {
                if results.len() >= ef && results.peek().is_some_and(|w| d > w.0) {
                    break;
                }
                // First the unvisited neighbours, their vectors requested from memory; then the
                // distances, by when the first vectors have arrived.
                let row = &self.neighbours[s as usize * self.m0..(s as usize + 1) * self.m0];
                let mut fresh = [0u32; 256];
                let mut count = 0;
                for &nb in row {
                    if nb == u32::MAX {
                        break;
                    }
                    let seen = &mut marks[nb as usize];
                    if *seen == epoch {
                        continue;
                    }
                    *seen = epoch;
                    prefetch(vector(nb as usize));
                    fresh[count] = nb;
                    count += 1;
                }
                for &nb in &fresh[..count] {
                    let nd = dist(nb);
                    let worst = results.peek().map_or(f32::INFINITY, |w| w.0);
                    if results.len() < ef || nd < worst {
                        candidates.push(Reverse(Cand(nd, nb)));
                        if accept(nb as usize) {
                            results.push(Cand(nd, nb));
                            if results.len() > ef {
                                results.pop();
                            }
                        }
                    }
                }
            }
            results
                .into_sorted_vec()
                .into_iter()
                .map(|Cand(d, s)| (d, s as usize))
                .collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reachable(rows: &[Vec<u32>], from: u32) -> usize {
        let mut seen = vec![false; rows.len()];
        let mut stack = vec![from];
        seen[from as usize] = true;
        while let Some(u) = stack.pop() {
            for &v in &rows[u as usize] {
                if !seen[v as usize] {
                    seen[v as usize] = true;
                    stack.push(v);
                }
            }
        }
        seen.iter().filter(|s| **s).count()
    }

    #[test]
    fn connect_links_islands_and_orphans_to_the_nearest_reached_node() {
        // Points on a line: 0 <-> 1 are reachable; 2 <-> 3 an island; 4 linked by nobody.
        let pos = [0.0f32, 1.0, 5.0, 6.0, 9.0];
        let mut rows = vec![vec![1], vec![0], vec![3], vec![2], vec![3]];
        let linked = connect(&mut rows, 0, 2, |a, b| (pos[a as usize] - pos[b as usize]).abs());
        assert_eq!(linked, 2, "{rows:?}");
        assert_eq!(reachable(&rows, 0), 5, "{rows:?}");
        // The island hangs off its nearest reached node (1), which had a free slot.
        assert_eq!(rows[1], [0, 2]);
        assert_eq!(
            connect(&mut rows, 0, 2, |a, b| (pos[a as usize] - pos[b as usize]).abs()),
            0
        );
    }
}
