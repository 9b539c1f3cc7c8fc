"""Shared fixtures: the models directory (CROW_MODELS, else the repository's ./models)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]


def _models_dir() -> Path:
    env = os.environ.get("CROW_MODELS")
    return Path(env) if env else REPO / "models"


def _need(*relative: str) -> Path:
    """The models directory when it holds these files; else a skip (a failure when
    CROW_REQUIRE_MODELS=1, as `make test` sets it)."""
    models = _models_dir()
    missing = [r for r in relative if not (models / r).exists()]
    if missing:
        msg = f"models missing under {models}: {', '.join(missing)} (run `make models`)"
        if os.environ.get("CROW_REQUIRE_MODELS") == "1":
            pytest.fail(msg)
        pytest.skip(msg)
    return models


ORT = "onnxruntime/libonnxruntime.so.1.32.0"


@pytest.fixture(scope="session")
def nlp_models() -> Path:
    """A models directory with ONNX Runtime, MiniLM and the sentiment head."""
    return _need(ORT, "all-MiniLM-L6-v2/model.onnx", "all-MiniLM-L6-v2/tokenizer.json", "heads/sentiment.json")


@pytest.fixture(scope="session")
def vision_models() -> Path:
    """A models directory with ONNX Runtime, CenterFace and scikit-image's astronaut photo."""
    return _need(ORT, "centerface/centerface.onnx", "images/astronaut.png")
