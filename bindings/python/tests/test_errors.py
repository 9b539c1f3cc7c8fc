"""The exceptions (bindings/python/src/error.rs): each one raised for real."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import crow


def test_hierarchy() -> None:
    for cls in (crow.ValidationError, crow.ModelNotFoundError, crow.ModelError, crow.StoreError):
        assert issubclass(cls, crow.CrowError)
    assert issubclass(crow.UnavailableError, crow.StoreError)
    assert issubclass(crow.CrowError, Exception)
    assert crow.CrowError.__module__ == "crow"
    assert crow.CrowError.__doc__


def test_validation_error() -> None:
    with pytest.raises(crow.ValidationError, match="expected a numpy.ndarray of dtype float32") as e:
        crow.VectorIndex(2).search(np.zeros(2, dtype=np.int64))
    assert isinstance(e.value, crow.CrowError)


def test_model_not_found_error(tmp_path: Path) -> None:
    with pytest.raises(crow.ModelNotFoundError) as e:
        crow.embed(["hello"], models=tmp_path)
    # The message names the missing file and what to do.
    assert str(tmp_path) in str(e.value) and "make models" in str(e.value)


def test_model_error(tmp_path: Path) -> None:
    bad = tmp_path / "head.json"
    bad.write_text('{"format": 1, "task": "x"}')
    with pytest.raises(crow.ModelError, match="not a head file"):
        crow.Head.load(bad)
    with pytest.raises(crow.ModelNotFoundError):
        crow.Head.load(tmp_path / "missing.json")


def test_store_error(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    with pytest.raises(crow.StoreError, match="cannot open the data directory"):
        crow.Store(not_a_dir)
    with pytest.raises(crow.StoreError, match="not a saved crow.VectorIndex"):
        crow.VectorIndex.load(tmp_path)


def test_unavailable_error(tmp_path: Path) -> None:
    index = crow.VectorIndex(2)
    index.add(["a"], np.ones((1, 2), dtype=np.float32))
    index.save(tmp_path / "idx")
    first = crow.VectorIndex.load(tmp_path / "idx")
    with pytest.raises(crow.UnavailableError, match="in use"):
        crow.VectorIndex.load(tmp_path / "idx")
    with pytest.raises(crow.UnavailableError):
        index.save(tmp_path / "idx")  # the loaded index holds the directory
    del first
