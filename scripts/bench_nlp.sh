#!/usr/bin/env bash
# Text-intelligence throughput, Rust vs Python, side by side on the same work:
#   (a) crow-nlp's OnnxEmbedder (crow-nlp/examples/bench_embed.rs, release build): one session
#       with THREADS intra-op threads ("rust", the same settings as Python), and SESSIONS sessions
#       of one thread each side by side ("rust-parallel")
#   (b) Python onnxruntime 1.32 + tokenizers (bench/nlp_python.py)
# in two modes: "embed" (sentence embeddings) and "sentiment" (embeddings + the lexicon features +
# the trained head, models/heads/sentiment.json; Python computes the lexicon features with the
# vaderSentiment package). Then the lexicon tier alone on one core: crow-nlp's VADER (criterion,
# crow-nlp/benches/lexicon.rs) and Python's vaderSentiment on the same 3,000 sentences.
# Same model (models/all-MiniLM-L6-v2), tokenizer.json, sentences (the 3,000 of models/data/uci.jsonl),
# ONNX Runtime library version, intra-op threads, optimization level, batching and pooling. For each
# batch size, each side runs in its own process (so peak RSS is per batch size), warms up, times
# PASSES passes over all sentences and reports the fastest; the two sides alternate. ROUNDS > 1
# repeats everything and keeps each side's best (the machine may be shared). Python runs with
# OPENBLAS_NUM_THREADS=1: its pooling uses no BLAS, and an idle BLAS pool would only compete with
# ONNX Runtime's threads.
# Prints a table with the Rust/Python throughput ratio per batch size; raw JSON lines go to
# bench/out/nlp.jsonl. Needs `make models`; installs onnxruntime, tokenizers and numpy into $VENV
# (default .venv) when missing.
# Tunables: BATCHES ("1 8 32"), MODES ("embed sentiment"), THREADS (2), SESSIONS (2), PASSES (3),
# ROUNDS (1), VENV (.venv), CROW_MODELS (models).
set -euo pipefail
cd "$(dirname "$0")/.."
BATCHES=${BATCHES:-"1 8 32"}
THREADS=${THREADS:-2}
SESSIONS=${SESSIONS:-2}
MODES=${MODES:-"embed sentiment"}
PASSES=${PASSES:-3}
ROUNDS=${ROUNDS:-1}
VENV=${VENV:-.venv}
MODELS=${CROW_MODELS:-models}
TARGET=${CARGO_TARGET_DIR:-target}
PY_PKGS=(onnxruntime==1.32.0 tokenizers==0.22.1 numpy)

for f in onnxruntime/libonnxruntime.so.1.32.0 all-MiniLM-L6-v2/model.onnx all-MiniLM-L6-v2/tokenizer.json data/uci.jsonl heads/sentiment.json; do
  [[ -f "$MODELS/$f" ]] || { echo "bench_nlp: $MODELS/$f is missing: run \`make models\`" >&2; exit 1; }
done

PY="$VENV/bin/python"
if ! "$PY" -c 'import onnxruntime, tokenizers, numpy' 2>/dev/null; then
  echo "== installing ${PY_PKGS[*]} into $VENV"
  [[ -x "$PY" ]] || python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "${PY_PKGS[@]}"
fi
"$PY" -c 'import onnxruntime as o, tokenizers as t; print(f"python: onnxruntime {o.__version__}, tokenizers {t.__version__}")'

echo "== building the Rust example (release)"
cargo build --release -q -p crow-nlp --features onnx --example bench_embed
RUST_BIN="$TARGET/release/examples/bench_embed"

mkdir -p bench/out
OUT=bench/out/nlp.jsonl
: >"$OUT"
COMMON=(--models "$MODELS" --threads "$THREADS" --passes "$PASSES")
for round in $(seq "$ROUNDS"); do
  for mode in $MODES; do
    for batch in $BATCHES; do
      echo "== round $round, mode $mode, batch $batch"
      "$RUST_BIN" "${COMMON[@]}" --mode "$mode" --batch "$batch" | tee -a "$OUT"
      "$RUST_BIN" --models "$MODELS" --threads 1 --sessions "$SESSIONS" --passes "$PASSES" --mode "$mode" --batch "$batch" | tee -a "$OUT"
      OPENBLAS_NUM_THREADS=1 "$PY" bench/nlp_python.py "${COMMON[@]}" --mode "$mode" --batch "$batch" | tee -a "$OUT"
    done
  done
done

echo
"$PY" - "$OUT" "$THREADS" "$SESSIONS" <<'PYEOF'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
best = {}
for r in rows:
    key = (r.get("mode", "embed"), r["impl"], r["batch"])
    if key not in best or r["texts_per_s"] > best[key]["texts_per_s"]:
        best[key] = r
print(f"all-MiniLM-L6-v2 int8; rust and python: 1 session x {sys.argv[2]} threads; rust-parallel: {sys.argv[3]} sessions x 1 thread")
print(f"{'mode':>9} | {'batch':>5} | {'rust/s':>7} | {'parallel/s':>10} | {'python/s':>8} | {'rust/py':>7} | {'par/py':>6} | {'RSS MB rust / par / py':>22}")
print("-" * 100)
for (mode, b) in sorted({(k[0], k[2]) for k in best}, key=lambda k: (k[0] != "embed", k[1])):
    r, q, p = best.get((mode, "rust", b)), best.get((mode, "rust-parallel", b)), best.get((mode, "python", b))
    if not r or not p:
        continue
    qv = q["texts_per_s"] if q else float("nan")
    qm = q["peak_rss_mb"] if q else float("nan")
    print(f"{mode:>9} | {b:>5} | {r['texts_per_s']:>7.1f} | {qv:>10.1f} | {p['texts_per_s']:>8.1f} | "
          f"{r['texts_per_s'] / p['texts_per_s']:>6.2f}x | {qv / p['texts_per_s']:>5.2f}x | "
          f"{r['peak_rss_mb']:>6.0f} / {qm:>4.0f} / {p['peak_rss_mb']:>4.0f}")
PYEOF

echo
echo "== lexicon tier, one core (taskset -c 0)"
PYTHONPATH="$MODELS/.download/vader" taskset -c 0 "$PY" - "$MODELS/data/uci.jsonl" <<'PYEOF'
import json, sys, time
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer
texts = [json.loads(l)["text"] for l in open(sys.argv[1]) if l.strip()]
sia = SentimentIntensityAnalyzer()
best = min(
    (lambda t0: (sum(sia.polarity_scores(t)["compound"] for t in texts), time.perf_counter() - t0)[1])(time.perf_counter())
    for _ in range(5)
)
print(f"python vaderSentiment 3.3.2: {len(texts) / best:,.0f} texts/s")
PYEOF
CROW_MODELS="$(cd "$MODELS" && pwd)" taskset -c 0 cargo bench -q -p crow-nlp --bench lexicon 2>/dev/null | grep -E "thrpt|time:" || true
