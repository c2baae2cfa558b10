"""The source profile: what each column is, learned once from the source.

Generators use it to encode and decode columns; the contract suite is built from it;
`conform` casts generated columns back to the source's exact dtypes."""

from __future__ import annotations

import re
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel

from pipeline.core.constraints import Constraint, bind, parse, propose, repair
from pipeline.core.errors import SourceError
from pipeline.core.identifiers import IdFormat, learn_format

ColumnKind = Literal["numeric", "integer", "categorical", "boolean", "datetime", "id"]

# Decimals beyond this are treated as continuous noise, not a recorded precision.
MAX_DECIMALS = 6
# A numeric column is on a discrete support (a loan term, a survey year, an integer code)
# when it has at most MAX_SUPPORT distinct values, each seen MIN_REPEATS times on
# average: the output then takes only those values. Continuous measurements (income,
# age in fractional years) repeat far less (CreditCard: 431 incomes in 1,319 rows).
MAX_SUPPORT = 1000
MIN_REPEATS = 10
# Id columns (distinct in every row) are detected only from this many rows on: in a tiny
# table every column is distinct by chance.
MIN_ID_ROWS = 20
# Integer columns are ids when named like one or when they number the rows (a run of
# consecutive integers, rownames 1..n).
ID_NAMES = re.compile(r"(^|_)(id|key|uuid|guid|rownames?)$", re.IGNORECASE)
NESTED = (list, tuple, dict, set, bytes, bytearray, np.ndarray)


class ColumnProfile(BaseModel):
    """One column: its kind, the pandas dtype to restore, and the facts the contract checks."""

    name: str
    kind: ColumnKind
    dtype: str
    null_fraction: float
    min: float | None = None  # numeric / integer; datetime as ns since epoch (UTC)
    max: float | None = None
    decimals: int | None = None  # numeric: digits after the point in the source
    step: float | None = None  # numeric / integer: every value is min + k * step
    support: list[float] | None = None  # numeric / integer on a discrete support: its values
    categories: list[Any] | None = None  # categorical / boolean: the values seen
    id_format: IdFormat | None = None  # id: how fresh ids are made


class TableProfile(BaseModel):
    """The columns of a table, in source order, and its row count."""

    columns: list[ColumnProfile]
    n_rows: int
    constraints: list[Constraint] = []  # declared in the spec, checked against the source
    proposed_constraints: list[str] = []  # exact relations found in the source, to declare
    pseudonymized: dict[str, str] = {}  # PII columns (name -> kind) replaced by fakes before the fit

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


def _step(values: np.ndarray, decimals: int | None) -> float | None:
    """The grid every value sits on above the minimum (6..60 step 6, cents, 0.5 points):
    the greatest common divisor of the offsets in units of the recorded precision."""
    if decimals is None or len(values) < 2:
        return None
    scale = 10.0**decimals
    offsets = np.round((values - values.min()) * scale).astype("int64")
    g = int(np.gcd.reduce(offsets))
    return g / scale if g else None


def _python(value: Any) -> Any:
    """numpy scalars -> plain Python, so profiles serialise to JSON."""
    return value.item() if isinstance(value, np.generic) else value


def _is_id(series: pd.Series) -> bool:
    """Distinct in every row, no nulls, text or integers that number or key the rows."""
    if len(series) < MIN_ID_ROWS or series.isna().any() or not series.is_unique:
        return False
    if pd.api.types.is_integer_dtype(series.dtype):
        consecutive = int(series.max()) - int(series.min()) + 1 == len(series)
        return consecutive or bool(ID_NAMES.search(str(series.name)))
    if isinstance(series.dtype, pd.StringDtype):
        return True
    return series.dtype == object and bool(series.map(type).eq(str).all())


def infer_kind(series: pd.Series) -> ColumnKind:
    """Decide a column's kind from its dtype and, for text, its values. Float columns
    stay numeric even when every value is whole (their dtype is the contract); their
    decimals (0) and grid keep the values whole."""
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
        return "numeric"
    return "categorical"


def _utc_ns(series: pd.Series) -> pd.Series:
    """Timestamps as int64 ns since the epoch in UTC, whatever the unit or zone."""
    if getattr(series.dtype, "tz", None) is not None:
        series = series.dt.tz_convert("UTC").dt.tz_localize(None)
    return series.astype("datetime64[ns]").astype("int64")


def profile_column(series: pd.Series, kind: ColumnKind | None = None) -> ColumnProfile:
    """Profile one column; `kind` overrides the inferred kind (the job spec's
    `source.columns`)."""
    name = str(series.name)
    kind = kind or infer_kind(series)
    s = series.dropna()
    prof: dict[str, Any] = {
        "name": name,
        "kind": kind,
        "dtype": str(series.dtype),
        "null_fraction": float(series.isna().mean()),
    }
    if kind in ("numeric", "integer"):
        try:
            values = pd.to_numeric(s).to_numpy(dtype="float64")
        except (TypeError, ValueError):
            raise SourceError(f"column {name!r} is declared {kind} but holds values that are not numbers") from None
        prof["min"], prof["max"] = float(values.min()), float(values.max())
        decimals = 0 if kind == "integer" else _decimals(s)
        prof["decimals"], prof["step"] = decimals, _step(values, decimals)
        distinct = np.unique(values)
        if len(distinct) <= MAX_SUPPORT and len(values) >= MIN_REPEATS * len(distinct):
            prof["support"] = distinct.tolist()
    elif kind == "datetime":
        ns = _utc_ns(s)
        prof["min"], prof["max"] = float(ns.min()), float(ns.max())
    elif kind == "id":
        prof["id_format"] = learn_format(s)
    else:
        prof["categories"] = sorted({_python(v) for v in s.unique()}, key=lambda v: (str(type(v)), v))
    return ColumnProfile(**prof)


def _check_flat(frame: pd.DataFrame) -> None:
    """Refuse nested, list and binary cells: no generator models them."""
    nested = [
        str(c) for c in frame.columns
        if frame[c].dtype == object and frame[c].dropna().map(lambda v: isinstance(v, NESTED)).any()
    ]
    if nested:
        raise SourceError(
            f"column(s) {', '.join(map(repr, nested))} hold nested, list or binary values, which tabular "
            "generators cannot model: drop them or flatten them into scalar columns"
        )


def profile_table(
    frame: pd.DataFrame, *, kinds: dict[str, ColumnKind] | None = None, detect_ids: bool = False,
    constraints: list[str] | None = None,
) -> TableProfile:
    """Profile every column; refuse tables a generator could not learn from. `kinds`
    overrides inferred kinds per column; `detect_ids` profiles key columns as `id`
    (tables only: a time series' entity column is a key by design); `constraints`
    (the spec's text) must hold on every source row."""
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
    _check_flat(frame)
    kinds = dict(kinds or {})
    unknown = sorted(set(kinds) - {str(c) for c in frame.columns})
    if unknown:
        raise SourceError(f"source.columns names column(s) {', '.join(map(repr, unknown))} not in the source")
    for c in frame.columns:
        if str(c) not in kinds and detect_ids and _is_id(frame[c]):
            kinds[str(c)] = "id"
    columns = [profile_column(frame[c], kinds.get(str(c))) for c in frame.columns]
    declared = [bind(parse(text), frame) for text in constraints or []]
    proposed = []
    if detect_ids:  # tables: look for exact relations the user may declare
        numeric = [c.name for c in columns if c.kind in ("numeric", "integer")]
        categorical = [c.name for c in columns if c.kind in ("categorical", "boolean")]
        known = {c.text.replace(" ", "") for c in declared}
        proposed = [p for p in propose(frame, numeric, categorical) if p.replace(" ", "") not in known]
    return TableProfile(columns=columns, n_rows=len(frame), constraints=declared, proposed_constraints=proposed)


def snap(values: np.ndarray, col: ColumnProfile) -> np.ndarray:
    """Numbers onto the column's support (the nearest value the source has), else onto
    its grid (min + k * step) within the source's range; NaN stays NaN."""
    x = np.asarray(values, dtype="float64")
    if col.support:
        support = np.asarray(col.support)
        hi = np.clip(np.searchsorted(support, x), 1, len(support) - 1) if len(support) > 1 else np.zeros(len(x), int)
        lo = np.maximum(hi - 1, 0)
        nearest = np.where(np.abs(x - support[lo]) <= np.abs(support[hi] - x), support[lo], support[hi])
        return np.where(np.isnan(x), np.nan, nearest)
    x = np.clip(x, col.min, col.max)
    if col.step:
        x = col.min + np.round((x - col.min) / col.step) * col.step
    return np.round(x, col.decimals) if col.decimals is not None else x


def conform(frame: pd.DataFrame, profile: TableProfile) -> pd.DataFrame:
    """Cast generated columns to the source's dtypes, in the source's order, numbers
    snapped to the source's support or grid: the output contract is "the source's
    columns, dtypes and values, nothing else"."""
    out = {}
    for col in profile.columns:
        s = frame[col.name]
        if col.kind in ("integer", "numeric"):
            s = pd.Series(snap(pd.to_numeric(s).to_numpy(dtype="float64", na_value=np.nan), col))
            dtype = col.dtype
            if s.isna().any() and pd.api.types.is_integer_dtype(dtype) and dtype.islower():  # int64 holds no nulls
                dtype = dtype.capitalize().replace("Uint", "UInt")
            s = s.astype(dtype)
        elif col.kind == "datetime":
            s = pd.to_datetime(s).astype(col.dtype)
        elif col.kind == "boolean":
            s = s.astype(col.dtype if not s.isna().any() else "boolean")
        else:
            s = s.astype(col.dtype if col.dtype != "category" else pd.CategoricalDtype(col.categories))
        out[col.name] = s.reset_index(drop=True)
    return _constrained(pd.DataFrame(out), profile)


def _smallest_step(col: ColumnProfile) -> float:
    """The increment that breaks an inequality's tie: the grid step, else 1 s for times."""
    if col.kind == "datetime":
        return 1e9
    return col.step or (10.0 ** -col.decimals if col.decimals is not None else 1e-9)


def _constrained(frame: pd.DataFrame, profile: TableProfile) -> pd.DataFrame:
    """Repair every declared constraint, then give the touched columns their dtype back
    (a computed formula rounded to its column's decimals)."""
    for c in profile.constraints:
        col = profile.column(c.columns[0])
        frame = repair(c, frame, _smallest_step(col))
        for name in c.columns:
            prof = profile.column(name)
            s = frame[name]
            if prof.kind in ("numeric", "integer"):
                s = pd.to_numeric(s).astype("float64")
                s = s.round(prof.decimals if prof.decimals is not None else 12)
            frame[name] = s.astype(prof.dtype if prof.dtype != "category" else pd.CategoricalDtype(prof.categories))
    return frame
