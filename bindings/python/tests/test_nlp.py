"""crow.analyze, crow.embed, crow.train_head, crow.Head (bindings/python/src/nlp.rs)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import crow

POSITIVE = ["great", "excellent", "wonderful", "fantastic", "lovely", "superb", "perfect", "brilliant"]
NEGATIVE = ["terrible", "awful", "horrible", "broken", "useless", "dreadful", "disappointing", "poor"]
THINGS = ["delivery", "jacket", "support team", "checkout", "refund process"]


def labelled() -> tuple[list[str], list[str]]:
    texts, labels = [], []
    for i, thing in enumerate(THINGS):
        for j in range(4):
            texts.append(f"The {thing} was {POSITIVE[(i + j) % len(POSITIVE)]}.")
            labels.append("positive")
            texts.append(f"The {thing} was {NEGATIVE[(i + j) % len(NEGATIVE)]}.")
            labels.append("negative")
    return texts, labels


def test_lexicon_tier_has_the_cli_shape() -> None:
    out = crow.analyze(["Refund of $25 still missing, not happy!", ""], lexicon=True)
    assert len(out) == 2
    first = out[0]
    assert set(first) >= {"language", "sentiment", "entities", "key_phrases"}
    assert "embedding" not in first and "heads" not in first
    assert first["sentiment"]["label"] == "negative"
    assert first["sentiment"]["tier"] == "lexicon"
    assert {"kind": "money", "text": "$25"}.items() <= next(e for e in first["entities"] if e["kind"] == "money").items()
    assert out[1]["sentiment"]["label"] == "neutral"
    json.dumps(out)  # plain JSON types
    with pytest.raises(crow.ValidationError, match="model tier"):
        crow.analyze(["x"], lexicon=True, embed=True)
    with pytest.raises(TypeError):
        crow.analyze("not a list")  # type: ignore[arg-type]


def test_model_tier(nlp_models: Path) -> None:
    texts = ["The Trail Runner 42 is not bad at all", "Delivery was late and nobody answered my emails"]
    out = crow.analyze(texts, models=nlp_models, embed=True)
    assert [o["sentiment"]["tier"] for o in out] == ["model", "model"]
    assert out[1]["sentiment"]["label"] == "negative"
    emb = np.array(out[0]["embedding"], dtype=np.float32)
    assert emb.shape == (384,)
    direct = crow.embed(texts, models=nlp_models)
    np.testing.assert_allclose(direct[0], emb, atol=1e-5)


def test_embed_returns_float32_rows(nlp_models: Path) -> None:
    texts = ["where is my parcel", "my package has not arrived", "I love these shoes"]
    e = crow.embed(texts, models=nlp_models)
    assert e.dtype == np.float32 and e.shape == (3, 384)
    assert e.flags["C_CONTIGUOUS"] and e.flags["OWNDATA"] or e.base is not None
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-4)
    sims = e @ e.T
    assert sims[0, 1] > sims[0, 2]  # meaning, not words
    assert crow.embed([], models=nlp_models).shape == (0, 384)
    # The embeddings go straight into a VectorIndex.
    index = crow.VectorIndex(384)
    index.add(["a", "b", "c"], e)
    assert index.search(crow.embed(["parcel missing"], models=nlp_models)[0], k=1)[0][0] in {"a", "b"}


def test_train_head_predict_save_load(nlp_models: Path, tmp_path: Path) -> None:
    texts, labels = labelled()
    head = crow.train_head(texts, labels, task="tone", models=nlp_models, folds=3)
    assert head.task == "tone"
    assert head.labels == ["negative", "positive"]
    assert head.features == "embedding+lexicon"
    assert head.embedding_dim == 384
    report = head.report
    assert report is not None and report["examples"] == len(texts) and report["cv_accuracy"] > 0.8
    preds = head.predict(["The jacket was superb.", "The checkout was useless."], models=nlp_models)
    assert [p["label"] for p in preds] == ["positive", "negative"]
    assert set(preds[0]["probabilities"]) == {"negative", "positive"}
    assert 0.5 <= preds[0]["confidence"] <= 1.0
    head.save(tmp_path / "tone.json")
    again = crow.Head.load(tmp_path / "tone.json")
    assert again.to_dict() == head.to_dict()
    assert "Head(task=\"tone\"" in repr(again)
    # analyze() applies heads given as objects or as files, as `crow analyze --head`.
    out = crow.analyze(["The delivery was brilliant."], models=nlp_models, heads=[again, tmp_path / "tone.json"])
    assert out[0]["heads"]["tone"]["label"] == "positive"
    with pytest.raises(crow.ValidationError, match="labels"):
        crow.train_head(texts, labels[:-1], models=nlp_models)
    with pytest.raises(crow.ValidationError, match="features"):
        crow.train_head(texts, labels, features="bag-of-words", models=nlp_models)
    with pytest.raises(crow.ValidationError):
        crow.train_head(texts[:2], labels[:2], models=nlp_models)  # too few examples per fold


def test_missing_models_fall_back_only_when_none_were_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(crow.ModelNotFoundError, match="make models"):
        crow.analyze(["hello"], models=tmp_path)
    monkeypatch.delenv("CROW_MODELS", raising=False)
    monkeypatch.chdir(tmp_path)  # no ./models here
    with pytest.warns(RuntimeWarning, match="lexicon tier"):
        out = crow.analyze(["what a lovely day"])
    assert out[0]["sentiment"]["tier"] == "lexicon"
