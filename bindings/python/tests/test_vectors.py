"""crow.VectorIndex (bindings/python/src/vectors.rs): crow-store's HNSW index."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

import crow


def unit(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    v = rng.standard_normal((n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_add_search_delete_len() -> None:
    index = crow.VectorIndex(3)
    assert (index.dim, index.metric, len(index)) == (3, "cosine", 0)
    vectors = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0]], dtype=np.float32)
    index.add(["x", "y", "z", "xy"], vectors)
    assert len(index) == 4
    hits = index.search(np.array([1, 0.1, 0], dtype=np.float32), k=2)
    assert [h[0] for h in hits] == ["x", "xy"]
    assert hits[0][1] > hits[1][1]  # best first
    assert isinstance(hits[0][1], float)
    assert index.delete(["x", "nope"]) == 1
    assert len(index) == 3
    assert index.search(np.array([1, 0, 0], dtype=np.float32), k=1)[0][0] == "xy"
    # Re-adding an id replaces it.
    index.add(["xy"], np.array([[0, 0, 1]], dtype=np.float32))
    assert len(index) == 3
    assert "VectorIndex(dim=3" in repr(index)


def test_metadata_filters_as_json_and_expressions() -> None:
    rng = np.random.default_rng(1)
    index = crow.VectorIndex(8)
    ids = [f"r{i}" for i in range(50)]
    meta = [{"label": "negative" if i % 5 == 0 else "positive", "ts": i} for i in range(50)]
    index.add(ids, unit(rng, 50, 8), metadata=meta)
    q = unit(rng, 1, 8)[0]
    neg = index.search(q, k=20, filter={"label": "negative"})
    assert len(neg) == 10 and all(int(i[1:]) % 5 == 0 for i, _ in neg)
    same = index.search(q, k=20, filter="label=negative")
    assert same == neg
    recent = index.search(q, k=50, filter=["label=positive", "ts>=40"])
    assert sorted(int(i[1:]) for i, _ in recent) == [i for i in range(40, 50) if i % 5 != 0]
    assert index.search(q, k=5, filter={"ts": {"$in": [3, 4]}}) != []
    with pytest.raises(crow.ValidationError, match="operator|filter|\\$bogus"):
        index.search(q, filter={"ts": {"$bogus": 1}})


def test_metrics() -> None:
    index = crow.VectorIndex(2, "euclidean")
    index.add(["near", "far"], np.array([[1, 1], [5, 5]], dtype=np.float32))
    hits = index.search(np.array([0, 0], dtype=np.float32), k=2)
    assert [h[0] for h in hits] == ["near", "far"]
    assert hits[0][1] == pytest.approx(2**0.5, rel=1e-5)  # a distance: lower is closer
    dot = crow.VectorIndex(2, "dot-product")
    dot.add(["small", "big"], np.array([[1, 0], [3, 0]], dtype=np.float32))
    assert dot.search(np.array([1, 0], dtype=np.float32), k=1) == [("big", 3.0)]
    with pytest.raises(crow.ValidationError, match="metric"):
        crow.VectorIndex(2, "manhattan")


def test_recall_at_10_against_numpy_brute_force() -> None:
    rng = np.random.default_rng(42)
    n, dim, queries = 5000, 48, 100
    data = unit(rng, n, dim)
    index = crow.VectorIndex(dim)
    index.add([str(i) for i in range(n)], data)
    assert len(index) == n
    qs = unit(rng, queries, dim)
    truth = np.argsort(-(qs @ data.T), axis=1)[:, :10]
    found = 0
    for q, t in zip(qs, truth):
        hits = index.search(q, k=10)
        assert len(hits) == 10
        found += len({int(i) for i, _ in hits} & set(t.tolist()))
        # Scores are the cosine similarities numpy computes.
        best = int(hits[0][0])
        assert hits[0][1] == pytest.approx(float(q @ data[best]), abs=1e-4)
    recall = found / (10 * queries)
    assert recall >= 0.95, recall


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    data = unit(rng, 300, 16)
    index = crow.VectorIndex(16)
    index.add([f"v{i}" for i in range(300)], data, metadata=[{"even": i % 2 == 0} for i in range(300)])
    q = data[5]
    before = index.search(q, k=10, filter={"even": False})
    index.save(tmp_path / "idx")
    loaded = crow.VectorIndex.load(tmp_path / "idx")
    assert (loaded.dim, loaded.metric, len(loaded)) == (16, "cosine", 300)
    assert loaded.search(q, k=10, filter={"even": False}) == before
    # A loaded index keeps its directory up to date: a delete survives reopening.
    assert loaded.delete(["v1"]) == 1
    loaded.save(tmp_path / "idx")
    del loaded
    again = crow.VectorIndex.load(str(tmp_path / "idx"))
    assert len(again) == 299
    # Saving over an existing copy replaces it.
    index.save(tmp_path / "copy")
    index.delete([f"v{i}" for i in range(100)])
    index.save(tmp_path / "copy")
    assert len(crow.VectorIndex.load(tmp_path / "copy")) == 200


def test_empty_index_round_trip(tmp_path: Path) -> None:
    crow.VectorIndex(5, "euclidean").save(tmp_path / "empty")
    loaded = crow.VectorIndex.load(tmp_path / "empty")
    assert (loaded.dim, loaded.metric, len(loaded)) == (5, "euclidean", 0)
    assert loaded.search(np.ones(5, dtype=np.float32)) == []


def test_arrays_are_checked() -> None:
    index = crow.VectorIndex(4)
    with pytest.raises(crow.ValidationError, match="float32.*float64"):
        index.add(["a"], np.ones((1, 4)))
    with pytest.raises(crow.ValidationError, match=r"shape \(1, 4\).*\[1, 3\]"):
        index.add(["a"], np.ones((1, 3), dtype=np.float32))
    with pytest.raises(crow.ValidationError, match="C-contiguous"):
        index.add(["a", "b"], np.ones((4, 2), dtype=np.float32).T)
    with pytest.raises(crow.ValidationError, match="numpy.ndarray"):
        index.add(["a"], [[1.0, 2.0, 3.0, 4.0]])  # type: ignore[arg-type]
    with pytest.raises(crow.ValidationError, match="zero vector"):
        index.add(["a"], np.zeros((1, 4), dtype=np.float32))
    with pytest.raises(crow.ValidationError, match="not a finite"):
        index.add(["a"], np.array([[1, np.nan, 0, 0]], dtype=np.float32))
    with pytest.raises(crow.ValidationError, match="id"):
        index.add([""], np.ones((1, 4), dtype=np.float32))
    with pytest.raises(crow.ValidationError, match="metadata"):
        index.add(["a"], np.ones((1, 4), dtype=np.float32), metadata=[{}, {}])
    with pytest.raises(crow.ValidationError, match="top_k"):
        index.search(np.ones(4, dtype=np.float32), k=101)
    with pytest.raises(crow.ValidationError, match=r"shape \(4,\)"):
        index.search(np.ones((1, 4), dtype=np.float32))
    # Nothing was stored by the failed calls; a read-only array is fine (read in place).
    assert len(index) == 0
    ro = np.ones((1, 4), dtype=np.float32)
    ro.flags.writeable = False
    index.add(["a"], ro)
    assert len(index) == 1


def test_the_gil_is_released_while_building() -> None:
    rng = np.random.default_rng(3)
    data = unit(rng, 4000, 64)
    index = crow.VectorIndex(64, ef_construction=400)
    started = threading.Event()

    def build() -> None:
        started.set()
        index.add([str(i) for i in range(4000)], data)

    t = threading.Thread(target=build)
    t.start()
    started.wait()
    time.sleep(0.05)  # let the other thread enter the native call
    ticks = 0
    while t.is_alive():
        ticks += 1
    t.join()
    assert len(index) == 4000
    # With the GIL held for the whole build this loop could not have run meanwhile.
    assert ticks > 10_000, ticks
