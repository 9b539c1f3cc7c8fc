"""CROW for Python: customer-interaction intelligence on embedded defaults.

A thin layer over CROW's Rust crates (the native module ``crow._crow``):

- :class:`Store`: a CROW data directory: interactions, sessions, social mentions, CCTV frame
  events (as :class:`Records`, ``.to_pandas()``), and :func:`ingest`;
- :func:`analyze`, :func:`embed`, :func:`train_head`, :class:`Head`: text intelligence
  (sentiment, entities, language, key phrases; MiniLM embeddings; trainable heads);
- :class:`VectorIndex`: an HNSW index with metadata filters and persistence;
- :func:`blur_faces`, :class:`MotionDetector`: CCTV vision on numpy images;
- :func:`scrub`: PII scrubbing;
- :class:`CrowError` and its subclasses for every error.

Models (``make models``) are found through ``models=DIR``, else ``CROW_MODELS``, else ``./models``.
"""

from __future__ import annotations

import os
from typing import Any, Dict, Iterable, Mapping, Optional, Union

from crow._crow import (
    CrowError,
    Head,
    ModelError,
    ModelNotFoundError,
    MotionDetector,
    StoreError,
    Store,
    UnavailableError,
    ValidationError,
    VectorIndex,
    __version__,
    analyze,
    blur_faces,
    embed,
    scrub,
    train_head,
)
from crow._records import Records

__all__ = [
    "CrowError",
    "Head",
    "ModelError",
    "ModelNotFoundError",
    "MotionDetector",
    "Records",
    "Store",
    "StoreError",
    "UnavailableError",
    "ValidationError",
    "VectorIndex",
    "__version__",
    "analyze",
    "blur_faces",
    "embed",
    "ingest",
    "scrub",
    "train_head",
]


def ingest(
    events: Iterable[Mapping[str, Any]],
    *,
    data: Union[str, "os.PathLike[str]", None] = None,
    org: Optional[str] = None,
    models: Union[str, "os.PathLike[str]", None] = None,
    run_workflows: bool = True,
) -> Dict[str, Any]:
    """Imports events into the data directory ``data`` (else ``CROW_DATA``, else ``./crow-data``,
    as the ``crow`` CLI), as ``crow ingest`` does: see :meth:`Store.ingest`."""
    path = data if data is not None else os.environ.get("CROW_DATA") or "./crow-data"
    return Store(path, models=models).ingest(events, org, run_workflows=run_workflows)
