#!/usr/bin/env bash
# Vector search: crow-store's embedded HNSW index against hnswlib and faiss, one thread, same sets:
#   synthetic  N (100,000) clustered 384-d points and 1,000 queries, exact ground truth
#              (`bench/vectors.py gen`; see its docstring for the recipe)
#   real       all-MiniLM-L6-v2 embeddings (models/all-MiniLM-L6-v2, int8) of the 3,000 UCI
#              sentences (models/data/uci.jsonl) and of the texts `crow demo` generates (every
#              feedback template of deploy/cli/src/demo.rs over its catalog, and its search terms),
#              deduplicated; embedded by Python onnxruntime + tokenizers with bench/nlp_python.py's
#              Embedder (the parity-tested twin of crow-nlp's: mean pooling, L2 normalization);
#              `vectors.py embed-gt` holds out 10 % of the rows as queries
# Rust: crow-store/examples/bench_vectors.rs (release): build time, memory, recall@10 and
# queries/s one at a time per ef for crow's search ("crow-hnsw") and for hnsw_rs's own search over
# the same graph ("hnsw_rs"), filtered recall at 1 / 10 / 50 % selectivity, reachability (base
# points searched for with their own vector), load time of the persisted index. Python:
# `vectors.py peers` (hnswlib, faiss IndexHNSWFlat), the same M, efConstruction and efs.
# Everything runs with RAYON_NUM_THREADS=1 OMP_NUM_THREADS=1.
# Prints `vectors.py table` (queries/s at recall 0.90 / 0.95 / 0.99, ratios, filtered recall), the
# load times and the reachability; raw JSON lines go to bench/out/vectors-{rust,peers}.jsonl.
# Needs `make models`; installs bench/requirements-vectors.txt (numpy, hnswlib built with g++,
# faiss-cpu) and onnxruntime + tokenizers into $VENV (default .venv-vectors) when missing.
# Tunables: N (100000), EF ("10,16,24,32,48,64,96,128,192,256,384,512"), M (16), EFC (200),
# SETS ("synthetic real"), LIBS ("hnswlib,faiss"), REGEN (0: reuse a generated set whose
# meta.json matches), VENV (.venv-vectors), CROW_MODELS (models).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-100000}
DIM=384
EF=${EF:-10,16,24,32,48,64,96,128,192,256,384,512}
M=${M:-16}
EFC=${EFC:-200}
SETS=${SETS:-"synthetic real"}
LIBS=${LIBS:-hnswlib,faiss}
REGEN=${REGEN:-0}
VENV=${VENV:-.venv-vectors}
MODELS=${CROW_MODELS:-models}
TARGET=${CARGO_TARGET_DIR:-target}
OUT=bench/out
export RAYON_NUM_THREADS=1 OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1
STARTED=$SECONDS

for f in all-MiniLM-L6-v2/model.onnx all-MiniLM-L6-v2/tokenizer.json data/uci.jsonl; do
  [[ -f "$MODELS/$f" ]] || { echo "bench_vectors: $MODELS/$f is missing: run \`make models\`" >&2; exit 1; }
done

PY="$VENV/bin/python"
if ! "$PY" -c 'import numpy, hnswlib, faiss, onnxruntime, tokenizers' 2>/dev/null; then
  echo "== installing bench/requirements-vectors.txt, onnxruntime and tokenizers into $VENV"
  command -v g++ >/dev/null || { apt-get update -qq && apt-get install -y -qq g++ >/dev/null; }
  [[ -x "$PY" ]] || python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r bench/requirements-vectors.txt \
    onnxruntime==1.32.0 tokenizers==0.22.1
fi
"$PY" -c 'import numpy, hnswlib, faiss; print(f"python: numpy {numpy.__version__}, faiss {faiss.__version__}, hnswlib (0.8.0 pinned)")'

echo "== building the Rust example (release)"
cargo build --release -q -p crow-store --example bench_vectors
RUST_BIN="$TARGET/release/examples/bench_vectors"
mkdir -p "$OUT"

# A set is reused when its meta.json matches (REGEN=1 rebuilds it).
have_set() { # DIR N-or-empty
  [[ "$REGEN" == 0 && -f "$1/meta.json" && -f "$1/gt_filter_50.i32" ]] || return 1
  [[ -z "$2" ]] || "$PY" -c 'import json, sys; m = json.load(open(sys.argv[1])); sys.exit(m["n"] != int(sys.argv[2]) or m["dim"] != int(sys.argv[3]))' "$1/meta.json" "$2" "$DIM"
}

for set in $SETS; do
  case $set in
    synthetic)
      if have_set "$OUT/synthetic" "$N"; then
        echo "== synthetic set: reusing $OUT/synthetic"
      else
        echo "== synthetic set: $N x $DIM"
        "$PY" bench/vectors.py gen --out "$OUT/synthetic" --n "$N" --dim "$DIM"
      fi
      ;;
    real)
      if have_set "$OUT/real" ""; then
        echo "== real set: reusing $OUT/real"
      else
        echo "== real set: MiniLM embeddings of the UCI sentences and the demo's texts"
        mkdir -p "$OUT/real"
        "$PY" - "$MODELS" "$OUT/real" <<'PYEOF'
import json, os, re, sys, time
sys.path.insert(0, "bench")
import numpy as np
from nlp_python import Embedder

models, out = sys.argv[1:]
uci = [json.loads(line)["text"] for line in open(os.path.join(models, "data", "uci.jsonl")) if line.strip()]

# The texts `crow demo` analyzes: its feedback templates over its catalog, and its search terms
# (the PII searches are scrubbed before analysis, so they are left out).
src = open("deploy/cli/src/demo.rs", encoding="utf-8").read()
def block(name):
    m = re.search(r"const " + name + r"\b[^=]*=\s*\[(.*?)\];", src, re.S)
    if not m:
        sys.exit(f"bench_vectors: no {name} in deploy/cli/src/demo.rs")
    return m.group(1)
products = re.findall(r'\(\s*"[^"]*",\s*"([^"]*)",\s*\d+\s*\)', block("CATALOG"))
templates = re.findall(r'"((?:[^"\\]|\\.)*)"', block("FEEDBACK"))
searches = re.search(r'\[((?:\s*"[^"]*",)+\s*"[^"]*")\s*\]\s*\[rng\.random_range', src)
if not products or not templates or not searches:
    sys.exit("bench_vectors: could not read the demo's catalog, feedback templates or search terms")
demo = [t.replace("{p}", p) for t in templates for p in (products if "{p}" in t else [""])]
demo += re.findall(r'"([^"]*)"', searches.group(1))

texts = list(dict.fromkeys(uci + demo))  # deduplicated, first occurrence kept
print(f"real: {len(uci)} UCI sentences + {len(demo)} demo texts -> {len(texts)} distinct", file=sys.stderr)
t = time.perf_counter()
emb = Embedder(os.path.join(models, "all-MiniLM-L6-v2"), threads=2, batch_size=32, max_tokens=256)
vectors = np.asarray(emb.embed(texts), dtype="<f4")
vectors.tofile(os.path.join(out, "embeddings.f32"))
with open(os.path.join(out, "texts.jsonl"), "w") as f:
    for text in texts:
        f.write(json.dumps({"text": text}) + "\n")
print(f"real: embedded {vectors.shape[0]} x {vectors.shape[1]} in {time.perf_counter() - t:.1f} s", file=sys.stderr)
PYEOF
        "$PY" bench/vectors.py embed-gt --vectors "$OUT/real/embeddings.f32" --dim "$DIM" --out "$OUT/real"
      fi
      ;;
    *) echo "bench_vectors: unknown set $set (use synthetic, real)" >&2; exit 1 ;;
  esac
done

RUST_JSON="$OUT/vectors-rust.jsonl"
PEERS_JSON="$OUT/vectors-peers.jsonl"
: >"$RUST_JSON"
: >"$PEERS_JSON"
for set in $SETS; do
  echo "== $set: crow-hnsw and hnsw_rs (load average $(cut -d' ' -f1 /proc/loadavg))"
  t=$SECONDS
  "$RUST_BIN" --data "$OUT/$set" --json "$OUT/vectors-$set-rust.jsonl" --ef "$EF" --m "$M" --ef-construction "$EFC" >/dev/null
  cat "$OUT/vectors-$set-rust.jsonl" >>"$RUST_JSON"
  echo "   ($((SECONDS - t)) s)"
  echo "== $set: $LIBS (load average $(cut -d' ' -f1 /proc/loadavg))"
  t=$SECONDS
  "$PY" bench/vectors.py peers --data "$OUT/$set" --json "$OUT/vectors-$set-peers.jsonl" --libs "$LIBS" \
    --ef "$EF" --m "$M" --ef-construction "$EFC" >/dev/null
  cat "$OUT/vectors-$set-peers.jsonl" >>"$PEERS_JSON"
  echo "   ($((SECONDS - t)) s)"
done

echo
"$PY" bench/vectors.py table --rust "$RUST_JSON" --peers "$PEERS_JSON"
"$PY" - "$RUST_JSON" <<'PYEOF'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
print("### crow-hnsw: persisted index, load time (files in the page cache)\n")
print("| set | records | snapshot MB | persist s | load s | + log tail | load s with the tail | recall@10 after load (ef) |")
print("|---|---|---|---|---|---|---|---|")
for r in rows:
    if "load_s" in r:
        print(f"| {r['set']} | {r['n']:,} | {r['index_mb']:.0f} | {r['persist_s']:.2f} | {r['load_s']:.2f} | "
              f"{r['tail']:,} records ({r['log_mb']:.1f} MB) | {r['load_with_log_s']:.2f} | "
              f"{r['recall_after_load']:.4f} ({r['ef_after_load']}) |")
print("\n### reachability: base points searched for with their own vector (found in the top k)\n")
print("| set | lib | ef | sampled | found |")
print("|---|---|---|---|---|")
for r in rows:
    if "self_found" in r:
        print(f"| {r['set']} | {r['lib']} | {r['ef']} | {r['self_sample']:,} | {r['self_found']:.4f} |")
PYEOF
echo
echo "bench_vectors: done in $((SECONDS - STARTED)) s"
