"""examples/sentiment_over_time.py runs on a data directory (as it does on `make demo`'s)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import crow

from test_store import events

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "sentiment_over_time.py"


def test_example_prints_sentiment_per_day(tmp_path: Path) -> None:
    store = crow.Store(tmp_path / "data")
    store.create_org("Example")
    store.ingest(events(6))
    run = subprocess.run(
        [sys.executable, str(EXAMPLE), "--data", str(tmp_path / "data"), "--out", str(tmp_path / "s.png")],
        capture_output=True,
        text=True,
        env=dict(os.environ, MPLBACKEND="Agg"),
    )
    assert run.returncode == 0, run.stderr
    assert "website: 6 texts" in run.stdout
    assert run.stdout.count("n=1") == 6  # one text per day
    if importlib.util.find_spec("matplotlib") is not None:
        assert "plot saved" in run.stdout
        assert (tmp_path / "s.png").stat().st_size > 1000


def test_example_explains_an_empty_directory(tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, str(EXAMPLE), "--data", str(tmp_path)], capture_output=True, text=True)
    assert run.returncode == 1 and "make demo" in run.stderr
