#!/usr/bin/env bash
# Reproduces the numbers in BENCHMARKS.md:
#   (a) parse + validate + scrub, events/s on one core (criterion, crow-ingest/benches/ingest.rs)
#   (b) end-to-end HTTP ingest on loopback: `crow serve` pinned to core 0, wrk pinned to core 1,
#       50 events per request (Segment /v1/batch), every event unique
#   (c) the same rows inserted by a bare rusqlite loop, one transaction per 50 rows: the limit
#   (d) the workflows draining what (b) queued, server on core 0 (SKIP_DRAIN=1 skips it)
# Prints a table with (b)/(c). Needs 2 cores; installs wrk from Debian when missing.
# DURATION (s, default 20) and CONNS (wrk connections, default 32) tune (b).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-20}
CONNS=${CONNS:-32}
TARGET=${CARGO_TARGET_DIR:-target}
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
command -v taskset >/dev/null || { apt-get update -qq && apt-get install -y -qq util-linux >/dev/null; }
cargo build --release -q -p crow-cli
cargo build --release -q -p crow-store --example bare_insert
CROW="$TARGET/release/crow"
mkdir -p bench/out
DATA=$(mktemp -d)
SERVER=""
trap 'kill $SERVER 2>/dev/null || true; rm -rf "$DATA"' EXIT

echo "== (a) criterion: parse + validate + scrub (one core)"
taskset -c 0 cargo bench -q -p crow-ingest --bench ingest -- --noplot 2>&1 | tee bench/out/criterion.txt | grep -E "time:|thrpt:|^[a-z]" || true

echo "== (b) HTTP ingest, server on one core"
KEY=$("$CROW" --data "$DATA" org create Bench --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["write_key"])')
PORT=$((20000 + RANDOM % 20000))
taskset -c 0 "$CROW" --data "$DATA" serve --addr "127.0.0.1:$PORT" --no-worker 2>"bench/out/server.log" &
SERVER=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done
taskset -c 1 wrk -t1 -c"$CONNS" -d3s -s bench/ingest.lua "http://127.0.0.1:$PORT" -- "$KEY" >/dev/null   # warm-up
taskset -c 1 wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency -s bench/ingest.lua "http://127.0.0.1:$PORT" -- "$KEY" | tee bench/out/wrk.txt
RESULT=$(grep '^RESULT' bench/out/wrk.txt)
STORED=$(curl -s "http://127.0.0.1:$PORT/metrics" | awk '/^crow_events_accepted_total/ {print $2}')
COMMITS=$(curl -s "http://127.0.0.1:$PORT/metrics" | awk '/^crow_store_commits_total/ {print $2}')
kill -TERM $SERVER; wait $SERVER || true

echo "== (c) bare rusqlite loop over the same rows, one transaction per 50"
BARE=$(taskset -c 0 "$TARGET/release/examples/bare_insert" "$DATA/crow.db" 50 | tee bench/out/bare.txt | awk '/^RESULT/ {print $2}')

DRAIN=0
if [ -z "${SKIP_DRAIN:-}" ]; then
echo "== (d) workflows: the worker drains the queued jobs of (b), server on one core"
PORT2=$((PORT + 1))
START=$(date +%s.%N)
taskset -c 0 "$CROW" --data "$DATA" serve --addr "127.0.0.1:$PORT2" 2>>"bench/out/server.log" &
SERVER=$!
for _ in $(seq 3000); do
  LEFT=$(curl -s "http://127.0.0.1:$PORT2/metrics" | awk '/^crow_queue_depth/ && ($1 ~ /ready/ || $1 ~ /in_flight/) {s+=$2} END {print s+0}')
  [ -n "$LEFT" ] && [ "$LEFT" = 0 ] && curl -sf "http://127.0.0.1:$PORT2/healthz" >/dev/null && break
  sleep 0.2
done
DRAIN=$(python3 -c "import time; print(f'{time.time() - $START:.1f}')")
kill -TERM $SERVER; wait $SERVER || true
SERVER=""
echo "drained in $DRAIN s"
fi

python3 - "$RESULT" "$BARE" "$STORED" "$COMMITS" "$DRAIN" <<'PY'
import sys
kv = dict(x.split("=") for x in sys.argv[1].split()[1:])
req, dur = int(kv["requests"]), int(kv["duration_us"]) / 1e6
errors = int(kv["errors_status"]) + int(kv["errors_other"])
http_eps = req * 50 / dur
bare = float(sys.argv[2])
print()
print(f"| measure | value |")
print(f"|---|---|")
print(f"| (b) HTTP ingest, events/s (server on 1 core) | {http_eps:,.0f} |")
print(f"| (b) requests/s (50 events each) | {req/dur:,.0f} |")
print(f"| (b) p50 / p90 / p99 latency | {int(kv['p50_us'])/1000:.2f} / {int(kv['p90_us'])/1000:.2f} / {int(kv['p99_us'])/1000:.2f} ms |")
print(f"| (b) errors | {errors} |")
print(f"| (b) events stored / commits | {sys.argv[3]} / {sys.argv[4]} |")
print(f"| (c) bare rusqlite, events/s (1 tx per 50) | {bare:,.0f} |")
print(f"| (b)/(c) | {http_eps / bare:.2f} |")
drain = float(sys.argv[5])
if drain > 0:
    print(f"| (d) workflows (sessions, identity, archive), events/s on 1 core | {int(sys.argv[3]) / drain:,.0f} |")
PY
