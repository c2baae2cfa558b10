"""Tabular sources: CSV or Parquet into a DataFrame with inferred kinds.

CSV has no types, so a few are recovered: ISO dates and timestamps become datetimes
(with their UTC offset when they carry one: one offset is kept as that fixed zone,
mixed offsets, as daylight saving gives, become UTC), and True/False columns with
gaps become pandas' nullable `boolean`. Parquet keeps its own types; nested, list,
map and binary columns are refused by name before anything is read into pandas."""

from __future__ import annotations

import warnings
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.core.data import TabularData
from pipeline.core.errors import SourceError
from pipeline.core.pii import pseudonymize
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
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)  # pandas: mixed offsets give object
                parsed = pd.to_datetime(s, format="ISO8601")
            if parsed.dtype == object:  # several UTC offsets: one instant each, in UTC
                parsed = pd.to_datetime(s, format="ISO8601", utc=True)
            frame[col] = parsed
        except (ValueError, TypeError):
            pass
    return frame


def _nullable_booleans(frame: pd.DataFrame) -> pd.DataFrame:
    """Object columns of True/False with gaps (how pandas reads them from CSV) as the
    nullable `boolean` dtype, so they are written and checked as booleans."""
    for col in frame.columns:
        values = frame[col].dropna()
        if frame[col].dtype == object and len(values) and values.map(type).eq(bool).all():
            frame[col] = frame[col].astype("boolean")
    return frame


def _flat_columns(schema: pa.Schema, path: Path) -> None:
    """Refuse Parquet columns no tabular generator can model, naming them."""
    unsupported = [
        f"{field.name} ({field.type})" for field in schema
        if pa.types.is_nested(field.type) or pa.types.is_binary(field.type) or pa.types.is_large_binary(field.type)
        or pa.types.is_fixed_size_binary(field.type)
    ]
    if unsupported:
        raise SourceError(
            f"source {path} has nested, list or binary column(s) {', '.join(unsupported)}, which tabular "
            "generators cannot model: drop them or flatten them into scalar columns"
        )


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
            return _nullable_booleans(_parse_dates(pd.read_csv(path)))
        table = pq.read_table(path)
        _flat_columns(table.schema, path)
        return table.to_pandas()
    except pd.errors.EmptyDataError:
        raise SourceError(f"source {path} is empty: it has no header and no rows") from None
    except (pa.ArrowInvalid, pa.ArrowException, OSError) as err:
        raise SourceError(f"cannot read Parquet file {path}: it is corrupt or not Parquet ({err})") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as err:
        raise SourceError(f"cannot parse CSV file {path}: {err}") from None


def load_tabular(spec: SourceSpec, frame: pd.DataFrame) -> TabularData:
    """The source's table (`pipeline.sources.read_frame`) and its profile: kinds
    inferred, id columns detected, repeating PII columns pseudonymised
    (`pipeline.core.pii.pseudonymize`), `source.columns` overriding any of these, and
    `source.constraints` checked on every row."""
    frame.columns = [str(c) for c in frame.columns]
    frame, pseudonymized = pseudonymize(frame, keep=set(spec.columns or {}))
    profile = profile_table(frame, kinds=spec.columns, detect_ids=True, constraints=spec.constraints)
    profile.pseudonymized = pseudonymized
    return TabularData(frame=frame.reset_index(drop=True), profile=profile)
