"""The source profile: what each column is, learned once from the source.

Generators use it to encode and decode columns; the contract suite is built from it;
`conform` casts generated columns back to the source's exact dtypes."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel

from pipeline.core.errors import SourceError

ColumnKind = Literal["numeric", "integer", "categorical", "boolean", "datetime"]

# Decimals beyond this are treated as continuous noise, not a recorded precision.
MAX_DECIMALS = 6


class ColumnProfile(BaseModel):
    """One column: its kind, the pandas dtype to restore, and the facts the contract checks."""

    name: str
    kind: ColumnKind
    dtype: str
    null_fraction: float
    min: float | None = None  # numeric / integer; datetime as ns since epoch
    max: float | None = None
    decimals: int | None = None  # numeric: digits after the point in the source
    categories: list[Any] | None = None  # categorical / boolean: the values seen


class TableProfile(BaseModel):
    """The columns of a table, in source order, and its row count."""

    columns: list[ColumnProfile]
    n_rows: int

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> ColumnProfile:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)

    def of_kind(self, *kinds: str) -> list[ColumnProfile]:
        return [c for c in self.columns if c.kind in kinds]


def _decimals(values: pd.Series) -> int | None:
    """Smallest number of decimals that represents every value exactly, if ≤ MAX_DECIMALS."""
    arr = values.to_numpy(dtype=float)
    for d in range(MAX_DECIMALS + 1):
        if np.allclose(np.round(arr, d), arr, rtol=0, atol=10.0 ** -(d + 3)):
            return d
    return None


def _python(value: Any) -> Any:
    """numpy scalars -> plain Python, so profiles serialise to JSON."""
    return value.item() if isinstance(value, np.generic) else value


def infer_kind(series: pd.Series) -> ColumnKind:
    """Decide a column's kind from its dtype and, for text, its values."""
    s = series.dropna()
    if pd.api.types.is_bool_dtype(series.dtype) or (
        series.dtype == object and len(s) and s.map(type).eq(bool).all()
    ):
        return "boolean"
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        return "datetime"
    if pd.api.types.is_integer_dtype(series.dtype):
        return "integer"
    if pd.api.types.is_float_dtype(series.dtype):
        # CSV readers turn integers with gaps into floats: keep them integers.
        if series.isna().any() and np.all(np.mod(s.to_numpy(), 1) == 0):
            return "integer"
        return "numeric"
    return "categorical"


def profile_column(series: pd.Series) -> ColumnProfile:
    name = str(series.name)
    kind = infer_kind(series)
    s = series.dropna()
    prof: dict[str, Any] = {
        "name": name,
        "kind": kind,
        "dtype": str(series.dtype),
        "null_fraction": float(series.isna().mean()),
    }
    if kind == "integer" and pd.api.types.is_float_dtype(series.dtype):
        prof["dtype"] = "Int64"
    if kind in ("numeric", "integer"):
        prof["min"], prof["max"] = float(s.min()), float(s.max())
        if kind == "numeric":
            prof["decimals"] = _decimals(s)
    elif kind == "datetime":
        ns = s.astype("datetime64[ns]").astype("int64")  # whatever the source's unit
        prof["min"], prof["max"] = float(ns.min()), float(ns.max())
    else:
        prof["categories"] = sorted({_python(v) for v in s.unique()}, key=lambda v: (str(type(v)), v))
    return ColumnProfile(**prof)


def profile_table(frame: pd.DataFrame) -> TableProfile:
    """Profile every column; refuse tables a generator could not learn from."""
    if frame.shape[1] == 0:
        raise SourceError("the source has no columns: check the file and its delimiter")
    if len(frame) == 0:
        raise SourceError("the source table is empty (0 rows): a generator needs data to learn from")
    empty = [str(c) for c in frame.columns if frame[c].isna().all()]
    if empty:
        raise SourceError(
            f"column(s) {', '.join(map(repr, empty))} are entirely null: drop them from the source "
            "or fill them; a generator cannot learn a distribution from no values"
        )
    return TableProfile(columns=[profile_column(frame[c]) for c in frame.columns], n_rows=len(frame))


def conform(frame: pd.DataFrame, profile: TableProfile) -> pd.DataFrame:
    """Cast generated columns to the source's dtypes, in the source's order: the output
    contract is "the source's columns and dtypes, nothing else"."""
    out = {}
    for col in profile.columns:
        s = frame[col.name]
        if col.kind == "integer":
            s = pd.to_numeric(s).round()
            s = s.astype(col.dtype if not s.isna().any() or col.dtype == "Int64" else "Int64")
        elif col.kind == "numeric":
            s = pd.to_numeric(s).astype(col.dtype)
            if col.decimals is not None:
                s = s.round(col.decimals)
        elif col.kind == "datetime":
            s = pd.to_datetime(s).astype(col.dtype)
        elif col.kind == "boolean":
            s = s.astype(col.dtype if not s.isna().any() else "boolean")
        else:
            s = s.astype(col.dtype if col.dtype != "category" else pd.CategoricalDtype(col.categories))
        out[col.name] = s.reset_index(drop=True)
    return pd.DataFrame(out)
