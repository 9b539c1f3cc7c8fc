"""The type stubs match the native module (`python -m mypy.stubtest crow`)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def test_stubtest() -> None:
    pytest.importorskip("mypy")
    env = dict(os.environ, MYPY_CACHE_DIR=str(Path(__file__).parent / ".mypy_cache"))
    run = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "crow"],
        capture_output=True,
        text=True,
        env=env,
        cwd=Path(__file__).parent,
    )
    assert run.returncode == 0, run.stdout + run.stderr


def test_py_typed_is_installed() -> None:
    import crow

    assert (Path(crow.__file__).parent / "py.typed").exists()
    assert (Path(crow.__file__).parent / "_crow.pyi").exists()
