#!/usr/bin/env python3
"""Embedding throughput of Python onnxruntime + tokenizers: the Python half of scripts/bench_nlp.sh.

The twin of crow-nlp/examples/bench_embed.rs, step for step, so the two measure the same work:
the same model, tokenizer.json, sentences (models/data/uci.jsonl), intra-op threads and graph
optimization level (3, "layout"); texts cut to max_tokens * 24 bytes, tokenized with
encode_batch_fast (no offsets) in windows of max(32 batches, 256) texts, truncated to max_tokens
word pieces, sorted by length inside a window, batched (batch_size texts, fewer when padding to the
longest would exceed 2,048 word pieces), each batch padded to its own longest text, memory pattern off;
only the inputs the model declares are fed, as int64; last_hidden_state is mean-pooled over the
attention mask and L2-normalized, and the input order is restored.

For each batch size: load, warm up on the first --warmup texts, time --passes passes over all
texts, keep the fastest. Prints one JSON line per batch size:
{"impl":"python","batch":N,"texts_per_s":..,"peak_rss_mb":..}  (peak RSS: VmHWM of this process).

--mode sentiment adds the sentiment head on top (the lexicon features from the Python
vaderSentiment package), mirroring the Rust example's Mode::Sentiment.
"""

import argparse
import json
import os
import sys
import time

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

BYTES_PER_TOKEN = 24
WORD_BACKOFF = 100
BATCHES_PER_WINDOW = 32
MIN_WINDOW = 256
MAX_BATCH_TOKENS = 2048


def peak_rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def clip(text, limit):
    """text cut to at most `limit` UTF-8 bytes on a char boundary, backing off to a nearby space."""
    raw = text.encode("utf-8")
    if len(raw) <= limit:
        return text
    cut = raw[:limit].decode("utf-8", errors="ignore")
    floor = max(len(cut.encode("utf-8")) - WORD_BACKOFF, 0)
    at = max(cut.rfind(c) for c in (" ", "\t", "\n", "\r"))
    if at > 0 and len(cut[:at].encode("utf-8")) >= floor:
        return cut[:at]
    return cut


def batch_len(sorted_rows, batch_size, tokens):
    """How many rows (ascending token count) go into the next batch: as OnnxEmbedder's batch_len."""
    n = 1
    while n < min(batch_size, len(sorted_rows)) and (n + 1) * tokens(sorted_rows[n]) <= MAX_BATCH_TOKENS:
        n += 1
    return n


class Embedder:
    def __init__(self, model_dir, threads, batch_size, max_tokens):
        self.batch_size = batch_size
        self.max_tokens = max_tokens
        self.tok = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
        padding = self.tok.padding
        self.pad_id = padding["pad_id"] if padding else (self.tok.token_to_id("[PAD]") or 0)
        self.pad_type_id = padding["pad_type_id"] if padding else 0
        self.tok.no_padding()
        self.tok.enable_truncation(max_tokens)
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_LAYOUT
        opts.enable_mem_pattern = False
        if threads > 0:
            opts.intra_op_num_threads = threads
        self.sess = ort.InferenceSession(
            os.path.join(model_dir, "model.onnx"), sess_options=opts, providers=["CPUExecutionProvider"]
        )
        self.inputs = [i.name for i in self.sess.get_inputs()]
        outs = [o.name for o in self.sess.get_outputs()]
        self.output = "last_hidden_state" if "last_hidden_state" in outs else outs[0]
        encode = getattr(self.tok, "encode_batch_fast", None)
        self.encode_batch = encode if encode is not None else self.tok.encode_batch

    def embed(self, texts):
        out = [None] * len(texts)
        window = max(self.batch_size * BATCHES_PER_WINDOW, MIN_WINDOW)
        limit = self.max_tokens * BYTES_PER_TOKEN
        for w in range(0, len(texts), window):
            chunk = [clip(t, limit) for t in texts[w : w + window]]
            encodings = self.encode_batch(chunk)
            order = sorted(range(len(encodings)), key=lambda i: len(encodings[i].ids))
            b = 0
            while b < len(order):
                n = batch_len(order[b:], self.batch_size, lambda i: len(encodings[i].ids))
                rows = order[b : b + n]
                b += n
                for i, v in zip(rows, self.run_batch([encodings[i] for i in rows])):
                    out[w + i] = v
        return out

    def run_batch(self, rows):
        seq = max(max(len(e.ids) for e in rows), 1)
        ids = np.full((len(rows), seq), self.pad_id, dtype=np.int64)
        types = np.full((len(rows), seq), self.pad_type_id, dtype=np.int64)
        mask = np.zeros((len(rows), seq), dtype=np.int64)
        for r, e in enumerate(rows):
            n = len(e.ids)
            ids[r, :n] = e.ids
            types[r, :n] = e.type_ids
            mask[r, :n] = 1
        feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        hidden = self.sess.run([self.output], {name: feed[name] for name in self.inputs})[0]
        m = mask[..., None].astype(np.float32)
        v = (hidden * m).sum(axis=1) / np.clip(m.sum(axis=1), 1e-9, None)
        v /= np.clip(np.linalg.norm(v, axis=1, keepdims=True), 1e-12, None)
        return list(v)


class SentimentHead:
    """The model tier's sentiment as crow-nlp computes it: the embedding, VADER's compound / pos / neg
    and negation flag (the Python vaderSentiment package, as unpacked by `make models`), a softmax
    regression with a temperature, score = P(positive) - P(negative)."""

    def __init__(self, models):
        sys.path.insert(0, os.path.join(models, ".download", "vader"))
        from vaderSentiment import vaderSentiment as vs  # noqa: E402

        self.vs = vs
        self.vader = vs.SentimentIntensityAnalyzer()
        head = json.load(open(os.path.join(models, "heads", "sentiment.json")))
        self.w = np.asarray(head["weights"], dtype=np.float32)
        self.b = np.asarray(head["bias"], dtype=np.float32)
        self.t = float(head["temperature"])
        self.lexicon = head["features"] == "embedding_lexicon"
        self.pos, self.neg = head["labels"].index("positive"), head["labels"].index("negative")

    def scores(self, texts, vectors):
        x = np.asarray(vectors, dtype=np.float32)
        if self.lexicon:
            extra = []
            for t in texts:
                s = self.vader.polarity_scores(t)
                negated = 1.0 if self.vs.negated(t.lower().split()) else 0.0
                extra.append([s["compound"], s["pos"], s["neg"], negated, negated * s["compound"]])
            x = np.concatenate([x, np.asarray(extra, dtype=np.float32)], axis=1)
        logits = (x @ self.w.T + self.b) / self.t
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        p /= p.sum(axis=1, keepdims=True)
        return p[:, self.pos] - p[:, self.neg]


class Pipeline:
    def __init__(self, embedder, mode, models):
        self.embedder, self.mode = embedder, mode
        self.head = SentimentHead(models) if mode == "sentiment" else None

    def pass_(self, texts):
        vectors = self.embedder.embed(texts)
        if self.mode == "embed":
            return float(sum(v[0] for v in vectors))
        return float(self.head.scores(texts, vectors).sum())


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default=os.environ.get("CROW_MODELS") or os.path.join(here, "..", "models"))
    p.add_argument("--data", default=None)
    p.add_argument("--batch", default="1,8,32")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--passes", type=int, default=3)
    p.add_argument("--warmup", type=int, default=256)
    p.add_argument("--max-tokens", type=int, default=256)
    p.add_argument("--mode", default="embed", choices=["embed", "sentiment"])
    a = p.parse_args()
    data = a.data or os.path.join(a.models, "data", "uci.jsonl")
    with open(data) as f:
        texts = [json.loads(line)["text"] for line in f if line.strip()]
    batches = [int(b) for b in a.batch.split(",")]
    print(
        f"python: {len(texts)} texts, mode {a.mode}, {a.threads} intra-op threads, batches {batches}, "
        f"best of {a.passes} passes (onnxruntime {ort.__version__}, numpy {np.__version__})",
        file=sys.stderr,
    )
    for batch in batches:
        emb = Embedder(os.path.join(a.models, "all-MiniLM-L6-v2"), a.threads, batch, a.max_tokens)
        pipeline = Pipeline(emb, a.mode, a.models)
        pipeline.pass_(texts[: a.warmup])
        best = float("inf")
        for _ in range(max(a.passes, 1)):
            start = time.perf_counter()
            pipeline.pass_(texts)
            best = min(best, time.perf_counter() - start)
        line = {
            "impl": "python",
            "mode": a.mode,
            "batch": batch,
            "texts_per_s": round(len(texts) / best, 1),
            "peak_rss_mb": round(peak_rss_mb(), 1),
        }
        print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
