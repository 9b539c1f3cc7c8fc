"""`Records`: what `crow.Store`'s reads return."""

from __future__ import annotations

import importlib
from typing import Any, Dict, List

__all__ = ["Records"]

# Millisecond timestamps of CROW's records, turned into datetimes by `to_pandas`.
_TIME_COLUMNS = (
    "timestamp",
    "received_at",
    "created_at",
    "started_at",
    "ended_at",
    "posted_at",
    "fetched_at",
)


class Records(List[Dict[str, Any]]):
    """A list of records (dicts, in the REST API's field names) with :meth:`to_pandas`."""

    def to_pandas(self) -> Any:
        """The records as a ``pandas.DataFrame``, one row per record.

        Nested objects (``context``, ``properties``, ``analysis``) stay dicts in their column;
        millisecond timestamps (``timestamp``, ``received_at``, ``started_at``, ...) become UTC
        datetimes. Raises ``ImportError`` when pandas is not installed (``pip install pandas``).
        """
        try:
            # Imported by name: pandas is optional and ships no type information.
            pd: Any = importlib.import_module("pandas")
        except ImportError as e:  # pragma: no cover - exercised only without pandas
            raise ImportError("Records.to_pandas() needs pandas: pip install pandas") from e
        df = pd.DataFrame.from_records(list(self))
        for column in _TIME_COLUMNS:
            if column in df.columns and pd.api.types.is_numeric_dtype(df[column]):
                df[column] = pd.to_datetime(df[column], unit="ms", utc=True)
        return df

    def __repr__(self) -> str:
        return f"Records({len(self)} records)"
