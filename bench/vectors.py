#!/usr/bin/env python3
"""Vector-search benchmark, Python side: data sets, exact ground truth, the peer libraries, the table.

Subcommands
-----------
gen       a synthetic clustered set that looks like sentence embeddings, with exact ground truth
embed-gt  the same files for real embeddings (raw float32 rows) written by another program
peers     hnswlib and faiss (IndexHNSWFlat) on one set, one thread: build, recall, queries/s
table     a Markdown table from the JSON lines of the Rust side and of `peers`

Files of a set (all little-endian, row-major, no header; DIR/meta.json says the shapes)
-----------------------------------------------------------------------------------
base.f32            N x dim float32, L2-normalized; a point's id is its row number
queries.f32         Q x dim float32, L2-normalized; never rows of base.f32
gt.i32              Q x 100 int32: ids of the exact top 100 by inner product (= cosine), best first
                    (-1 pads a row only when the base has fewer than 100 points)
attr.u32            N uint32: one attribute per base point, uniform in 0..99 (seeded)
gt_filter_{S}.i32   Q x 10 int32, S in 1, 10, 50: exact top 10 among the points with attr < S
                    (S % of the set passes), best first; -1 pads a row when fewer than 10 pass
labels.i32          N int32, `gen` only: the cluster each base point was drawn from
meta.json           n, dim, queries, metric "cosine", gt_k 100, filter_gt_k 10, selectivities,
                    recipe (a sentence), seed, and the generator's parameters
Ground truth is computed in float32 (matmul over blocks of queries, argpartition, then a sort).

Synthetic recipe (`gen`)
------------------------
C cluster centres are drawn from a standard normal in dim dimensions and normalized. Cluster k
(0-based) has weight proportional to 1 / (k + 1) (Zipf, exponent 1: with C = 100 the largest
cluster holds ~19 % of the points, the smallest ~0.2 %), a spread sigma_k ~ Uniform(0.5, 1.5)
(--spread) and
its own random orthonormal basis R_k (QR of a Gaussian matrix). A point of cluster k is

    x = c_k + sigma_k * (z * s) @ R_k,   z ~ N(0, I_dim),   s_j proportional to j^-0.6 (j = 1..dim),
                                           scaled so that sum(s_j^2) = 1,  then x / |x|.

The noise has expected norm sigma_k, but most of it lies in a few directions per cluster (the
spectrum's participation ratio is ~12), like real sentence embeddings, whose intrinsic dimension is
far below 384. Isotropic noise (exponent 0) would make every cluster a cloud of random 384-d points,
which no graph index searches well: on 100k points hnswlib (M 16, efConstruction 200) reaches only
0.41 recall@10 at ef 10 and 0.985 at ef 512. With the exponent at 0.6 (100k points, 1000 queries)
its recall@10 is 0.81 at ef 10, 0.93 at ef 24, 0.95 at ef 32, 0.99 at ef 96 and 0.9997 at ef 384,
so the 0.90 / 0.95 / 0.99 targets fall on different efs. A query's nearest neighbour has a cosine of
~0.8; a random pair, ~0.
Each point's cluster is drawn independently from the weights (the base is not sorted by cluster).
Queries are fresh draws from the same distribution. The model (centres, spreads, bases), the base
points, the queries and the attributes each draw from their own stream of
numpy.random.SeedSequence(seed).spawn(4), so the queries do not depend on --n.

Peers (`peers`)
---------------
Everything runs on one thread (OMP_NUM_THREADS=1 before the libraries load, hnswlib
set_num_threads(1) and num_threads=1, faiss.omp_set_num_threads(1)), each library in a fresh
interpreter so that one's freed memory does not hide the other's. hnswlib uses space 'cosine'
(it normalizes what it stores and searches by inner product: the same ranking as 'ip' on this
normalized data); faiss uses IndexHNSWFlat(dim, M, METRIC_INNER_PRODUCT) with efConstruction set
before add. Per library: build_s (wall time of adding all points), mem_mb (VmRSS after the build
minus VmRSS before creating the index, with the data already loaded: it holds the index's own copy
of the vectors and the graph), index_mb (the library's serialized index size). Per ef, after one
untimed warm-up pass: recall (mean over queries of |found ∩ true top k| / k), qps_single (queries
sent one at a time from a Python loop, as a server answers them) and qps_batch (all queries in one
call, still one thread), each the best of --passes passes. Filtered search, per ef and selectivity
S, timed in one pass: hnswlib with filter= a Python callable on the id (attr < S; the call per
visited node is part of its cost), faiss with an IDSelectorBitmap (native code); recall against
gt_filter_S, qps one at a time.

Output: one JSON object per line, to stdout and to --json OUT:
  {"lib", "set", "k", "m", "ef_construction", "build_s", "mem_mb", "index_mb", "ef", "recall",
   "qps_single", "qps_batch"}
  {"lib", "set", "k", "ef", "selectivity", "recall_filtered", "qps_single"}   (selectivity in %)
lib is "hnswlib" or "faiss-hnsw"; the Rust side writes the same fields as "crow-hnsw" (and
"hnsw_rs"), which `table` reads.
"""

import argparse
import json
import multiprocessing
import os
import sys
import tempfile
import time

import numpy as np

GT_K = 100
FILTER_GT_K = 10
ATTR_VALUES = 100
SELECTIVITIES = (1, 10, 50)  # percent: a point passes when attr < S
SPECTRUM_EXPONENT = 0.6
GT_BLOCK_SCORES = 1 << 25  # score matrix elements per ground-truth block (128 MiB of float32)
LIBS = ("hnswlib", "faiss")
LIB_NAMES = {"hnswlib": "hnswlib", "faiss": "faiss-hnsw"}


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def normalize(x):
    """Rows of x scaled to unit length, in place (a zero row stays zero)."""
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    np.divide(x, norms, out=x, where=norms > 0)
    return x


def exact_top_k(base, queries, k):
    """Q x k int32: the ids of the k rows of base with the largest inner product, best first.

    Works on blocks of queries so that the score matrix stays under GT_BLOCK_SCORES elements.
    Columns past len(base) are -1.
    """
    out = np.full((len(queries), k), -1, dtype=np.int32)
    take = min(k, len(base))
    if take == 0:
        return out
    block = max(1, GT_BLOCK_SCORES // len(base))
    for start in range(0, len(queries), block):
        scores = queries[start:start + block] @ base.T
        top = np.argpartition(-scores, take - 1, axis=1)[:, :take]
        order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1, kind="stable")
        out[start:start + block, :take] = np.take_along_axis(top, order, axis=1)
    return out


def write_set(out, base, queries, meta, attr_rng, extra_files=None):
    """Writes a set's vectors, attributes, ground truth and meta.json to the folder out."""
    os.makedirs(out, exist_ok=True)
    n, dim = base.shape

    def save(name, array, dtype):
        np.ascontiguousarray(array, dtype=dtype).tofile(os.path.join(out, name))

    save("base.f32", base, "<f4")
    save("queries.f32", queries, "<f4")
    for name, (array, dtype) in (extra_files or {}).items():
        save(name, array, dtype)

    t = time.perf_counter()
    save("gt.i32", exact_top_k(base, queries, GT_K), "<i4")
    attr = attr_rng.integers(0, ATTR_VALUES, size=n, dtype=np.uint32)
    save("attr.u32", attr, "<u4")
    for s in SELECTIVITIES:
        ids = np.flatnonzero(attr < s).astype(np.int32)
        local = exact_top_k(base[ids], queries, FILTER_GT_K)
        gt = np.full_like(local, -1)
        gt[local >= 0] = ids[local[local >= 0]]
        save(f"gt_filter_{s}.i32", gt, "<i4")
    log(f"ground truth: {time.perf_counter() - t:.1f} s")

    meta = {"n": n, "dim": dim, "queries": len(queries), "metric": "cosine", "gt_k": GT_K,
            "filter_gt_k": FILTER_GT_K, "attr_values": ATTR_VALUES,
            "selectivities": list(SELECTIVITIES), **meta}
    with open(os.path.join(out, "meta.json"), "w") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")


def cmd_gen(args):
    lo, hi = (float(v) for v in args.spread.split(","))
    model_rng, base_rng, query_rng, attr_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence(args.seed).spawn(4))
    t = time.perf_counter()

    c, dim = args.clusters, args.dim
    centres = normalize(model_rng.standard_normal((c, dim), dtype=np.float32))
    weights = 1.0 / np.arange(1, c + 1)
    weights /= weights.sum()
    spreads = model_rng.uniform(lo, hi, size=c).astype(np.float32)
    spectrum = np.arange(1, dim + 1, dtype=np.float64) ** -SPECTRUM_EXPONENT
    spectrum = (spectrum / np.linalg.norm(spectrum)).astype(np.float32)

    labels = base_rng.choice(c, size=args.n, p=weights).astype(np.int32)
    query_labels = query_rng.choice(c, size=args.queries, p=weights)
    base = np.empty((args.n, dim), dtype=np.float32)
    queries = np.empty((args.queries, dim), dtype=np.float32)
    # One cluster at a time: its basis is made once and used for its base points and queries.
    for k in range(c):
        basis, _ = np.linalg.qr(model_rng.standard_normal((dim, dim)))
        basis = basis.astype(np.float32)
        for rng, rows, target in ((base_rng, labels == k, base), (query_rng, query_labels == k, queries)):
            z = rng.standard_normal((int(rows.sum()), dim), dtype=np.float32)
            target[rows] = centres[k] + spreads[k] * ((z * spectrum) @ basis)
    normalize(base)
    normalize(queries)
    log(f"vectors: {time.perf_counter() - t:.1f} s")

    recipe = (f"synthetic: {c} centres ~ N(0, I) normalized; cluster k weight proportional to 1/(k+1); "
              f"spread sigma_k ~ U({lo}, {hi}); point = c_k + sigma_k * (z * s) @ R_k with "
              f"z ~ N(0, I), s_j proportional to j^-{SPECTRUM_EXPONENT} (sum s_j^2 = 1), R_k a random "
              f"orthonormal basis per cluster; then L2-normalized; queries are fresh draws")
    write_set(args.out, base, queries,
              {"recipe": recipe, "seed": args.seed, "clusters": c, "spread": [lo, hi],
               "spectrum_exponent": SPECTRUM_EXPONENT, "cluster_weights": "zipf 1"},
              attr_rng, extra_files={"labels.i32": (labels, "<i4")})
    log(f"gen: {time.perf_counter() - t:.1f} s -> {args.out}")


def cmd_embed_gt(args):
    data = np.fromfile(args.vectors, dtype="<f4")
    if data.size == 0 or data.size % args.dim:
        sys.exit(f"{args.vectors}: {data.size} floats is not a whole number of {args.dim}-d rows")
    data = data.reshape(-1, args.dim)
    n = len(data)
    q = min(args.queries, n // 10)
    if q == 0:
        sys.exit(f"{args.vectors}: {n} rows are too few to hold out queries")
    pick_rng, attr_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(args.seed).spawn(2))
    query_rows = pick_rng.choice(n, size=q, replace=False)
    is_query = np.zeros(n, dtype=bool)
    is_query[query_rows] = True
    # Normalizing again is a no-op up to rounding for normalized input, and makes the metric exact.
    queries = normalize(data[query_rows].copy())
    base = normalize(data[~is_query])
    recipe = (f"real MiniLM embeddings from {os.path.basename(args.vectors)}: {q} rows picked at "
              f"random (seed {args.seed}) are the queries, the other rows in their order are the "
              f"base; rows L2-normalized")
    write_set(args.out, base, queries, {"recipe": recipe, "seed": args.seed}, attr_rng)
    log(f"embed-gt: {n - q} base rows, {q} queries -> {args.out}")


def rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def load_set(folder):
    with open(os.path.join(folder, "meta.json")) as f:
        meta = json.load(f)

    def load(name, dtype, cols):
        return np.fromfile(os.path.join(folder, name), dtype=dtype).reshape(-1, cols)

    n, dim = meta["n"], meta["dim"]
    data = {
        "meta": meta,
        "base": load("base.f32", "<f4", dim),
        "queries": load("queries.f32", "<f4", dim),
        "gt": load("gt.i32", "<i4", meta["gt_k"]),
        "attr": np.fromfile(os.path.join(folder, "attr.u32"), dtype="<u4"),
        "gt_filter": {s: load(f"gt_filter_{s}.i32", "<i4", meta["filter_gt_k"])
                      for s in meta["selectivities"]},
    }
    if data["base"].shape != (n, dim) or len(data["attr"]) != n:
        # An exception, not sys.exit: this runs in a pool worker, which passes exceptions back.
        raise ValueError(f"{folder}: file sizes do not match meta.json")
    return data


def recall(found, truth):
    """Mean over queries of |found ∩ truth| / |truth|; -1 in truth is padding and does not count."""
    hits = ((found[:, :, None] == truth[:, None, :]) & (truth[:, None, :] >= 0)).sum(axis=(1, 2))
    return float(np.mean(hits / np.maximum((truth >= 0).sum(axis=1), 1)))


def one_at_a_time(search, queries, k):
    """Each query in its own call, as a server answers them: ids, Q x k."""
    found = np.empty((len(queries), k), dtype=np.int64)
    for i in range(len(queries)):
        found[i] = search(queries[i:i + 1])
    return found


def fastest(run, passes, count):
    """Calls run() `passes` times: (its last result, count / the fastest call's seconds)."""
    best = float("inf")
    for _ in range(passes):
        t = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - t)
    return result, count / best


# The two peers behind one interface: add(base), size_mb(), set_ef(ef), search(queries, k) -> ids,
# and filtered(attr, s, k) -> a search function for one query, at the current ef, that returns only
# points with attr < s. n (the number of points) is there for hnswlib, which sizes its storage up front.
class Hnswlib:
    """hnswlib.Index, space 'cosine', one thread."""

    def __init__(self, dim, m, ef_construction, n):
        import hnswlib
        self.index = hnswlib.Index(space="cosine", dim=dim)
        self.index.init_index(max_elements=n, M=m, ef_construction=ef_construction, random_seed=100)
        self.index.set_num_threads(1)

    def add(self, base):
        self.index.add_items(base, np.arange(len(base)), num_threads=1)

    def size_mb(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "index.bin")
            self.index.save_index(path)
            return os.path.getsize(path) / 2**20

    def set_ef(self, ef):
        self.index.set_ef(ef)

    def search(self, queries, k):
        return self.index.knn_query(queries, k=k, num_threads=1)[0]

    def filtered(self, attr, s, k):
        allowed = (attr < s).tolist()
        return lambda q: self.index.knn_query(q, k=k, num_threads=1, filter=allowed.__getitem__)[0]


class FaissHnsw:
    """faiss.IndexHNSWFlat, inner product, one OpenMP thread."""

    def __init__(self, dim, m, ef_construction, n):
        import faiss
        faiss.omp_set_num_threads(1)
        self.faiss = faiss
        self.index = faiss.IndexHNSWFlat(dim, m, faiss.METRIC_INNER_PRODUCT)
        self.index.hnsw.efConstruction = ef_construction

    def add(self, base):
        self.index.add(base)

    def size_mb(self):
        return self.faiss.serialize_index(self.index).nbytes / 2**20

    def set_ef(self, ef):
        self.index.hnsw.efSearch = ef

    def search(self, queries, k):
        return self.index.search(queries, k)[1]

    def filtered(self, attr, s, k):
        # Bit i (little-endian within each byte) says whether id i passes; the selector and the
        # params keep Python references to what they point at.
        bitmap = np.packbits(attr < s, bitorder="little")
        params = self.faiss.SearchParametersHNSW(sel=self.faiss.IDSelectorBitmap(bitmap),
                                                 efSearch=self.index.hnsw.efSearch)
        return lambda q: self.index.search(q, k, params=params)[1]


def bench_lib(lib, folder, k, m, ef_construction, efs, passes):
    """Runs in its own interpreter: builds one library's index on the set and sweeps ef.

    Unfiltered queries/s are the best of `passes` passes over the queries; the filtered sweep,
    where hnswlib calls back into Python for each visited node, is timed once.
    """
    data = load_set(folder)
    base, queries, attr = data["base"], data["queries"], data["attr"]
    truth = data["gt"][:, :k]
    name = LIB_NAMES[lib]
    common = {"lib": name, "set": os.path.basename(os.path.normpath(folder)), "k": k}

    before = rss_mb()
    index = (Hnswlib if lib == "hnswlib" else FaissHnsw)(base.shape[1], m, ef_construction, len(base))
    t = time.perf_counter()
    index.add(base)
    build_s = time.perf_counter() - t
    mem_mb = rss_mb() - before
    index_mb = index.size_mb()
    log(f"{name}: build {build_s:.1f} s, +{mem_mb:.0f} MB RSS, index {index_mb:.0f} MB")

    rows = []
    index.set_ef(max(efs))
    index.search(queries, k)  # warm-up, untimed
    for ef in efs:
        index.set_ef(ef)
        found, qps_single = fastest(lambda: one_at_a_time(lambda q: index.search(q, k), queries, k),
                                    passes, len(queries))
        _, qps_batch = fastest(lambda: index.search(queries, k), passes, len(queries))
        rows.append({**common, "m": m, "ef_construction": ef_construction,
                     "build_s": round(build_s, 3), "mem_mb": round(mem_mb, 1),
                     "index_mb": round(index_mb, 1), "ef": ef, "recall": round(recall(found, truth), 4),
                     "qps_single": round(qps_single, 1), "qps_batch": round(qps_batch, 1)})
        log(f"{name}: ef {ef}: recall {rows[-1]['recall']}, {qps_single:.0f} q/s single, "
            f"{qps_batch:.0f} q/s batch")

    fk = min(k, data["meta"]["filter_gt_k"])
    # hnswlib fails a query that cannot fill k results: leave out selectivities that pass fewer.
    filters = {s: gt for s, gt in data["gt_filter"].items() if np.count_nonzero(attr < s) >= fk}
    if len(filters) < len(data["gt_filter"]):
        log(f"{name}: filtered search skipped where fewer than {fk} points pass")
    for ef in efs:
        index.set_ef(ef)
        done = []
        for s, gt in filters.items():
            search = index.filtered(attr, s, fk)
            found, qps = fastest(lambda: one_at_a_time(search, queries, fk), 1, len(queries))
            done.append({**common, "k": fk, "ef": ef, "selectivity": s,
                         "recall_filtered": round(recall(found, gt[:, :fk]), 4),
                         "qps_single": round(qps, 1)})
        rows.extend(done)
        log(f"{name}: ef {ef}: filtered " + ", ".join(
            f"{r['selectivity']} %: recall {r['recall_filtered']}, {r['qps_single']:.0f} q/s" for r in done))
    return rows


def cmd_peers(args):
    os.environ["OMP_NUM_THREADS"] = "1"  # inherited by the fresh interpreters, before faiss loads
    efs = [int(v) for v in args.ef.split(",")]
    with open(os.path.join(args.data, "meta.json")) as f:
        gt_k = json.load(f)["gt_k"]
    if args.k > gt_k:
        sys.exit(f"--k {args.k} is more than the {gt_k} true neighbours in {args.data}")
    libs = args.libs.split(",")
    unknown = set(libs) - set(LIBS)
    if unknown:
        sys.exit(f"unknown --libs {sorted(unknown)}; known: {', '.join(LIBS)}")
    log(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs (one thread is used)")
    sink = open(args.json, "w") if args.json else None
    context = multiprocessing.get_context("spawn")
    for lib in libs:
        with context.Pool(1) as pool:
            rows = pool.apply(bench_lib, (lib, args.data, args.k, args.m, args.ef_construction, efs,
                                          args.passes))
        for row in rows:
            line = json.dumps(row)
            print(line, flush=True)
            if sink:
                sink.write(line + "\n")
                sink.flush()
    if sink:
        sink.close()


def read_rows(paths):
    """All JSON lines of the files; a file that is not there is reported and skipped."""
    rows = []
    for path in paths:
        if not os.path.exists(path):
            log(f"{path}: not found, its rows are left out")
            continue
        with open(path) as f:
            rows.extend(json.loads(line) for line in f if line.strip())
    return rows


def best_at(rows, target):
    """The row with the most qps_single among those with recall >= target, or None."""
    ok = [r for r in rows if r.get("recall", -1) >= target and r.get("qps_single") is not None]
    return max(ok, key=lambda r: r["qps_single"], default=None)


def cmd_table(args):
    targets = [float(v) for v in args.targets.split(",")]
    labels = args.targets.split(",")
    rows = read_rows([args.rust, args.peers])
    dash = "–"
    # crow-hnsw first, then the other Rust libraries, then the peers, each in order of appearance.
    order = {"crow-hnsw": 0, "hnsw_rs": 1, "hnswlib": 2, "faiss-hnsw": 3}
    sets = list(dict.fromkeys(r.get("set", "?") for r in rows))
    for set_name in sets:
        in_set = [r for r in rows if r.get("set", "?") == set_name]
        libs = sorted(dict.fromkeys(r.get("lib", "?") for r in in_set), key=lambda lib: order.get(lib, 9))
        plain = {lib: [r for r in in_set if r.get("lib", "?") == lib and "recall" in r] for lib in libs}
        filt = {lib: [r for r in in_set if r.get("lib", "?") == lib and "recall_filtered" in r]
                for lib in libs}
        ks = sorted({r["k"] for r in in_set if "k" in r})
        k_note = f", recall@{'/'.join(map(str, ks))}" if ks else ""

        print(f"### {set_name}: queries/s one at a time, one thread{k_note}\n")
        head = ["lib", "build s", "mem MB"] + [f"recall ≥ {t}: q/s (ef)" for t in labels]
        print("| " + " | ".join(head) + " |")
        print("|" + "---|" * len(head))
        best = {lib: [best_at(plain[lib], t) for t in targets] for lib in libs}
        for lib in libs:
            first = plain[lib][0] if plain[lib] else {}
            cells = [lib, fmt(first.get("build_s"), "{:.1f}"), fmt(first.get("mem_mb"), "{:.0f}")]
            cells += [dash if b is None else f"{b['qps_single']:,.0f} (ef {b['ef']})" for b in best[lib]]
            print("| " + " | ".join(cells) + " |")
        for peer in ("hnswlib", "faiss-hnsw"):
            cells = [f"crow-hnsw ÷ {peer}", dash, dash]
            for i in range(len(targets)):
                ours = best.get("crow-hnsw", [None] * len(targets))[i]
                theirs = best.get(peer, [None] * len(targets))[i]
                cells.append(dash if ours is None or theirs is None
                             else f"{ours['qps_single'] / theirs['qps_single']:.2f}×")
            print("| " + " | ".join(cells) + " |")

        sels = sorted({r["selectivity"] for rs in filt.values() for r in rs})
        if not sels:
            print()
            continue
        print(f"\n### {set_name}: filtered search (attr < S), recall (q/s one at a time), "
              f"at the ef of recall ≥ 0.95 unfiltered, else the largest ef\n")
        head = ["lib", "ef"] + [f"{s} % pass" for s in sels]
        print("| " + " | ".join(head) + " |")
        print("|" + "---|" * len(head))
        for lib in libs:
            at95 = best_at(plain[lib], 0.95)
            efs = [r["ef"] for r in (plain[lib] or filt[lib])]
            ef = at95["ef"] if at95 else max(efs, default=None)
            cells = [lib, dash if ef is None else str(ef)]
            for s in sels:
                hit = next((r for r in filt[lib] if r["ef"] == ef and r["selectivity"] == s), None)
                cells.append(dash if hit is None
                             else f"{hit['recall_filtered']:.3f} ({hit['qps_single']:,.0f})")
            print("| " + " | ".join(cells) + " |")
        print("\nhnswlib filters through a Python callback per visited node, faiss through a native "
              "bitmap (IDSelectorBitmap).\n")


def fmt(value, pattern):
    return "–" if value is None else pattern.format(value)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)

    g = sub.add_parser("gen", help="synthetic clustered set with exact ground truth")
    g.add_argument("--out", required=True, help="folder to write the set to")
    g.add_argument("--n", type=int, default=100_000, help="base points")
    g.add_argument("--dim", type=int, default=384)
    g.add_argument("--queries", type=int, default=1000)
    g.add_argument("--clusters", type=int, default=100)
    g.add_argument("--spread", default="0.5,1.5", help="LO,HI of the per-cluster noise norm")
    g.add_argument("--seed", type=int, default=42)
    g.set_defaults(run=cmd_gen)

    e = sub.add_parser("embed-gt", help="ground truth for real embeddings (raw float32 rows)")
    e.add_argument("--vectors", required=True, help="raw little-endian float32, N x dim, row-major")
    e.add_argument("--dim", type=int, required=True)
    e.add_argument("--out", required=True)
    e.add_argument("--queries", type=int, default=1000, help="rows held out as queries (at most N/10)")
    e.add_argument("--seed", type=int, default=42)
    e.set_defaults(run=cmd_embed_gt)

    r = sub.add_parser("peers", help="hnswlib and faiss HNSW on one set, one thread")
    r.add_argument("--data", required=True, help="a folder written by gen or embed-gt")
    r.add_argument("--k", type=int, default=10)
    r.add_argument("--m", type=int, default=16)
    r.add_argument("--ef-construction", type=int, default=200)
    r.add_argument("--ef", default="10,16,24,32,48,64,96,128,192,256,384,512")
    r.add_argument("--passes", type=int, default=3,
                   help="unfiltered queries/s: the best of this many passes over the queries")
    r.add_argument("--libs", default=",".join(LIBS), help="comma-separated subset of: " + ", ".join(LIBS))
    r.add_argument("--json", help="also write the JSON lines to this file")
    r.set_defaults(run=cmd_peers)

    t = sub.add_parser("table", help="Markdown table of Rust and peer results")
    t.add_argument("--rust", required=True, help="JSON lines of the Rust side")
    t.add_argument("--peers", required=True, help="JSON lines of `peers`")
    t.add_argument("--targets", default="0.90,0.95,0.99")
    t.set_defaults(run=cmd_table)

    args = p.parse_args()
    args.run(args)


if __name__ == "__main__":
    main()
