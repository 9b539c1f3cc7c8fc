"""Type stubs of CROW's native module (bindings/python/src). Checked by `mypy.stubtest crow`."""

import datetime
import os
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union, final

import numpy as np
import numpy.typing as npt

from crow._records import Records

_Path = Union[str, "os.PathLike[str]"]
_Box = Tuple[float, float, float, float, float]
_Time = Union[int, datetime.datetime, None]
_Filter = Union[Mapping[str, Any], str, List[str]]

__all__ = [
    "CrowError",
    "Head",
    "ModelError",
    "ModelNotFoundError",
    "MotionDetector",
    "Store",
    "StoreError",
    "UnavailableError",
    "ValidationError",
    "VectorIndex",
    "__version__",
    "analyze",
    "blur_faces",
    "embed",
    "scrub",
    "train_head",
]

__version__: str

class CrowError(Exception):
    """Base class of every error CROW raises."""

class ValidationError(CrowError):
    """The input is wrong: a dtype, a shape, a value out of range, an unknown org or index."""

class ModelNotFoundError(CrowError):
    """A model file (or the ONNX Runtime library) is missing."""

class ModelError(CrowError):
    """A model or head file exists but cannot be used, or inference failed."""

class StoreError(CrowError):
    """The event store or a vector index failed (I/O, SQLite, a corrupt file)."""

class UnavailableError(StoreError):
    """The store or index is held by another process, open read-only, or busy."""

def scrub(text: str) -> str:
    """Replaces every PII value in `text` by a placeholder such as ``[email]``."""

def analyze(
    texts: Sequence[str],
    *,
    models: Optional[_Path] = None,
    lexicon: bool = False,
    embed: bool = False,
    heads: Optional[Sequence[Union["Head", _Path]]] = None,
) -> List[Dict[str, Any]]:
    """Language, sentiment, entities and key phrases of each text (``crow analyze``'s shape)."""

def embed(texts: Sequence[str], *, models: Optional[_Path] = None) -> npt.NDArray[np.float32]:
    """Sentence embeddings, shape ``(len(texts), 384)``, float32."""

def train_head(
    texts: Sequence[str],
    labels: Sequence[str],
    *,
    task: str = "custom",
    features: str = "embedding+lexicon",
    groups: Optional[Sequence[str]] = None,
    models: Optional[_Path] = None,
    l2: float = 0.0001,
    folds: int = 5,
    augment: bool = True,
) -> "Head":
    """Trains a linear head on the embeddings of labelled texts (``crow train``)."""

@final
class Head:
    """A trained linear head on sentence embeddings."""

    @staticmethod
    def load(path: _Path) -> "Head": ...
    def save(self, path: _Path) -> None: ...
    @property
    def task(self) -> str: ...
    @property
    def labels(self) -> List[str]: ...
    @property
    def features(self) -> str: ...
    @property
    def embedding_dim(self) -> int: ...
    @property
    def report(self) -> Optional[Dict[str, Any]]: ...
    def predict(self, texts: Sequence[str], *, models: Optional[_Path] = None) -> List[Dict[str, Any]]: ...
    def to_dict(self) -> Dict[str, Any]: ...

@final
class VectorIndex:
    """An HNSW index of float32 vectors with string ids and filterable JSON metadata."""

    def __new__(
        cls,
        dim: int,
        metric: str = "cosine",
        *,
        m: int = 16,
        ef_construction: int = 200,
        ef_search: int = 128,
    ) -> "VectorIndex": ...
    @staticmethod
    def load(path: _Path, *, ef_search: int = 128) -> "VectorIndex": ...
    def save(self, path: _Path) -> None: ...
    def add(
        self,
        ids: Sequence[str],
        vectors: npt.NDArray[np.float32],
        metadata: Optional[Sequence[Mapping[str, Any]]] = None,
    ) -> None: ...
    def search(
        self,
        vector: npt.NDArray[np.float32],
        k: int = 10,
        filter: Optional[_Filter] = None,
    ) -> List[Tuple[str, float]]: ...
    def delete(self, ids: Sequence[str]) -> int: ...
    @property
    def dim(self) -> int: ...
    @property
    def metric(self) -> str: ...
    def __len__(self) -> int: ...

def blur_faces(
    image: npt.NDArray[np.uint8],
    mode: str = "blur",
    *,
    threshold: float = 0.5,
    padding: float = 1.3,
    models: Optional[_Path] = None,
) -> Tuple[npt.NDArray[np.uint8], List[_Box]]:
    """Masks every face CenterFace finds; returns the masked copy and the faces."""

@final
class MotionDetector:
    """Motion detection on a stream of RGB frames."""

    def __new__(
        cls,
        *,
        height: int = 100,
        threshold: int = 25,
        alpha: float = 0.05,
        dilate: int = 2,
        min_area: int = 12,
        max_fraction: float = 0.6,
    ) -> "MotionDetector": ...
    def detect(self, frame: npt.NDArray[np.uint8]) -> Dict[str, Any]: ...
    def reset(self) -> None: ...

@final
class Store:
    """A CROW data directory."""

    def __new__(cls, path: _Path, *, models: Optional[_Path] = None) -> "Store": ...
    @property
    def path(self) -> "os.PathLike[str]": ...
    @property
    def text_tier(self) -> str: ...
    def orgs(self) -> Records: ...
    def create_org(self, name: str) -> Dict[str, Any]: ...
    def interactions(
        self,
        org: Optional[str] = None,
        *,
        type: Optional[str] = None,
        name: Optional[str] = None,
        since: _Time = None,
        until: _Time = None,
        session_id: Optional[str] = None,
        person_id: Optional[str] = None,
        limit: Optional[int] = None,
    ) -> Records: ...
    def sessions(
        self,
        org: Optional[str] = None,
        *,
        since: _Time = None,
        person_id: Optional[str] = None,
        limit: Optional[int] = None,
    ) -> Records: ...
    def mentions(
        self,
        org: Optional[str] = None,
        *,
        platform: Optional[str] = None,
        source: Optional[str] = None,
        selected: Optional[bool] = None,
        since: _Time = None,
        until: _Time = None,
        limit: Optional[int] = None,
    ) -> Records: ...
    def frame_events(
        self,
        org: Optional[str] = None,
        *,
        camera: Optional[str] = None,
        kind: Optional[str] = None,
        zone: Optional[str] = None,
        since: _Time = None,
        until: _Time = None,
        limit: Optional[int] = None,
    ) -> Records: ...
    def ingest(
        self,
        events: Iterable[Mapping[str, Any]],
        org: Optional[str] = None,
        *,
        run_workflows: bool = True,
    ) -> Dict[str, Any]: ...
