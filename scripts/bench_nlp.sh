#!/usr/bin/env bash
# Sentence-embedding throughput, Rust vs Python, side by side on the same work:
#   (a) crow-nlp's OnnxEmbedder (crow-nlp/examples/bench_embed.rs, release build)
#   (b) Python onnxruntime 1.32 + tokenizers (bench/nlp_python.py)
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
# Tunables: BATCHES ("1 8 32"), THREADS (2), PASSES (3), ROUNDS (1), VENV (.venv), CROW_MODELS (models).
set -euo pipefail
cd "$(dirname "$0")/.."
BATCHES=${BATCHES:-"1 8 32"}
THREADS=${THREADS:-2}
PASSES=${PASSES:-3}
ROUNDS=${ROUNDS:-1}
VENV=${VENV:-.venv}
MODELS=${CROW_MODELS:-models}
TARGET=${CARGO_TARGET_DIR:-target}
PY_PKGS=(onnxruntime==1.32.0 tokenizers==0.22.1 numpy)

for f in onnxruntime/libonnxruntime.so.1.32.0 all-MiniLM-L6-v2/model.onnx all-MiniLM-L6-v2/tokenizer.json data/uci.jsonl; do
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
  for batch in $BATCHES; do
    echo "== round $round, batch $batch"
    "$RUST_BIN" "${COMMON[@]}" --batch "$batch" | tee -a "$OUT"
    OPENBLAS_NUM_THREADS=1 "$PY" bench/nlp_python.py "${COMMON[@]}" --batch "$batch" | tee -a "$OUT"
  done
done

echo
"$PY" - "$OUT" "$THREADS" <<'PYEOF'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
best = {}
for r in rows:
    key = (r["impl"], r["batch"])
    if key not in best or r["texts_per_s"] > best[key]["texts_per_s"]:
        best[key] = r
batches = sorted({r["batch"] for r in rows})
print(f"all-MiniLM-L6-v2, {len(rows) // max(len(batches), 1) // 2 or 1} run(s) per cell, {sys.argv[2]} intra-op threads")
print(f"{'batch':>5} | {'rust texts/s':>12} | {'python texts/s':>14} | {'rust/python':>11} | {'rust RSS MB':>11} | {'python RSS MB':>13}")
print("-" * 84)
for b in batches:
    r, p = best.get(("rust", b)), best.get(("python", b))
    if not r or not p:
        continue
    ratio = r["texts_per_s"] / p["texts_per_s"]
    print(f"{b:>5} | {r['texts_per_s']:>12.1f} | {p['texts_per_s']:>14.1f} | {ratio:>10.2f}x | {r['peak_rss_mb']:>11.1f} | {p['peak_rss_mb']:>13.1f}")
PYEOF
