"""Tabular sources: CSV or Parquet into a DataFrame with inferred kinds."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.core.data import TabularData
from pipeline.core.errors import SourceError
from pipeline.core.schema import profile_table
from pipeline.sources.fingerprint import existing_source
from pipeline.core.spec import SourceSpec

READERS = (".csv", ".parquet", ".pq")


def _parse_dates(frame: pd.DataFrame) -> pd.DataFrame:
    """CSV has no dates: text columns whose every value is an ISO date become datetimes."""
    for col in frame.columns:
        s = frame[col]
        if s.dtype != object:
            continue
        values = s.dropna()
        if values.empty or not values.map(type).eq(str).all() or not values.str.match(r"^\d{4}-\d{2}-\d{2}").all():
            continue
        try:
            frame[col] = pd.to_datetime(s, format="ISO8601")
        except (ValueError, TypeError):
            pass
    return frame


def read_table(path: str | Path) -> pd.DataFrame:
    """Read CSV or Parquet; every failure becomes a `SourceError` naming the file."""
    path = existing_source(path)
    if path.is_dir():
        raise SourceError(f"source {path} is a folder; a tabular source is one CSV or Parquet file")
    suffix = path.suffix.lower()
    if suffix not in READERS:
        raise SourceError(f"unsupported source format {suffix!r} for {path}; use one of {', '.join(READERS)}")
    try:
        if suffix == ".csv":
            return _parse_dates(pd.read_csv(path))
        return pq.read_table(path).to_pandas()
    except pd.errors.EmptyDataError:
        raise SourceError(f"source {path} is empty: it has no header and no rows") from None
    except (pa.ArrowInvalid, pa.ArrowException, OSError) as err:
        raise SourceError(f"cannot read Parquet file {path}: it is corrupt or not Parquet ({err})") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as err:
        raise SourceError(f"cannot parse CSV file {path}: {err}") from None


def load_tabular(spec: SourceSpec, frame: pd.DataFrame) -> TabularData:
    """The source's table (`pipeline.sources.read_frame`) and its profile."""
    frame.columns = [str(c) for c in frame.columns]
    return TabularData(frame=frame.reset_index(drop=True), profile=profile_table(frame))
