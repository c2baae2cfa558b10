"""The data contract: a Great Expectations suite built from the source's profile, run on
the synthetic output itself. Downstream training code written for the source must be
able to read the output as is: same columns in the same order, same types, no value
outside what the source holds, no nulls where the source had none.

Tabular columns must have the source's exact dtype (a float64 column of whole numbers
stays float64), numbers only values of the source's discrete support or its grid
(min + k * step: whole numbers, cents, a loan term in steps of 6), id columns values
that are distinct and never a real id.

Facts GX has no built-in expectation for (a value off its grid, an id that is real,
per-entity sequence facts, decoded image facts) are computed by `contract_table` into helper
columns named `__<fact>` appended after the data's own columns, and checked with
ordinary expectations: no custom expectation classes, so a stored suite always reloads
(GX drops unknown expectation types silently)."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pandas as pd

from pipeline.core import clock
from pipeline.core.data import ImageData, SourceData, TimeSeriesData
from pipeline.core.constraints import holds
from pipeline.core.schema import ColumnProfile, profile_column
from pipeline.core.domains import private_view
from pipeline.core.timegrid import as_time, declared_frequency, grid_between
from validators import gx

# Absolute slack on a column's null share: the output may hold at most the source's share
# plus this. Generators reproduce missingness only approximately (penguins' `sex` is 3%
# null: 3 ± 1.6 points in a 1,000-row sample at 95%); 5 points still catches a generator
# that emits nulls wholesale. A column with no nulls in the source must have none.
NULL_TOLERANCE = 0.05

# The source's distinct time steps are checked as a set when there are at most this many
# (monthly data: 28-31 days); beyond it, as a range (irregular sampling).
MAX_STEP_SET = 16

# A value is on its grid when (x - min) / step is this close to a whole number: float64
# rounding of a decimal grid stays far below it.
GRID_TOLERANCE = 1e-6

_INTS = [f"{u}int{b}" for u in ("", "u") for b in (8, 16, 32, 64)]
_FLOATS = ["float16", "float32", "float64", "Float32Dtype", "Float64Dtype"]
# Accepted pandas dtypes per column kind. Integers may arrive as floats (a nullable
# integer read without pandas metadata, a CSV with gaps) as long as every value is
# integral, which the `__fraction__<col>` helper checks.
TYPES: dict[str, list[str]] = {
    "integer": _INTS + [f"{t.capitalize()}Dtype".replace("Uint", "UInt") for t in _INTS] + _FLOATS,
    "numeric": _FLOATS,
    "boolean": ["bool", "BooleanDtype"],
    "datetime": [f"datetime64[{u}]" for u in ("ns", "us", "ms", "s")],
    "categorical": ["str", "StringDtype"],
    "time": ["str", "StringDtype"],
}


def _exp(kind: str, check: str, **kwargs: Any):
    """An expectation whose meta says, in words, what the contract requires."""
    return gx.expectation(kind, meta={"check": check}, **kwargs)


def _iso(ns: float, tz: Any = None) -> str:
    """A bound in ns since the epoch (UTC) as ISO text, in the column's zone if it has one."""
    stamp = pd.Timestamp(int(ns))
    return (stamp.tz_localize("UTC").tz_convert(tz) if tz is not None else stamp).isoformat()


# ---------------------------------------------------------------- per column ----------


def _dtype_name(dtype: str) -> str | None:
    """How GX names a pandas dtype: numpy dtypes by name, extension dtypes by class
    (Int64Dtype, BooleanDtype, DatetimeTZDtype); None for object columns."""
    d = pd.api.types.pandas_dtype(dtype)
    if d == object:
        return None
    return d.name if isinstance(d, np.dtype) else type(d).__name__


def _zone(col: ColumnProfile) -> Any:
    return getattr(pd.api.types.pandas_dtype(col.dtype), "tz", None)


def _dtype_as_text(col: ColumnProfile) -> bool:
    """Dtypes GX cannot name from the cells (a zoned datetime's cells are Timestamps, a
    category's are its values): the contract compares the dtype's text (`__dtype__`)."""
    return col.dtype == "category" or (col.kind == "datetime" and _zone(col) is not None)


def _type_expectation(col: ColumnProfile, *, exact: bool = False):
    """The column's type: the source's exact dtype when `exact` (tabular outputs), else
    any dtype of its kind (time series, whose static columns may widen)."""
    name = _dtype_name(col.dtype)
    if exact and _dtype_as_text(col):
        return _exp("ExpectColumnValuesToBeInSet", f"the source's dtype {col.dtype}",
                    column=f"__dtype__{col.name}", value_set=[col.dtype])
    if exact and name is not None:
        return _exp("ExpectColumnValuesToBeInTypeList", f"the source's dtype {col.dtype}",
                    column=col.name, type_list=[name])
    types = TYPES["categorical" if col.kind == "id" else col.kind]
    if col.kind in ("categorical", "id"):  # object columns are checked value by value
        values = col.categories or ([0] if col.id_format and col.id_format.last_int is not None else [""])
        types = sorted(set(types) | {type(v).__name__ for v in values})
    return _exp("ExpectColumnValuesToBeInTypeList", f"{col.kind} type", column=col.name, type_list=types)


def _column_expectations(col: ColumnProfile, *, exact: bool = False) -> list:
    """Type, range, support or category set, and null share of one column."""
    name = col.name
    out = [_type_expectation(col, exact=exact)]
    if col.kind in ("numeric", "integer"):
        out.append(_exp("ExpectColumnValuesToBeBetween", "within the source's range",
                        column=name, min_value=col.min, max_value=col.max))
        if col.support is not None:
            out.append(_exp("ExpectColumnValuesToBeInSet", f"only the source's {len(col.support)} values",
                            column=name, value_set=list(col.support)))
        elif col.step:
            out.append(_exp("ExpectColumnValuesToBeBetween", f"{name}: on the source's grid (step {col.step:g})",
                            column=f"__grid__{name}", min_value=0, max_value=GRID_TOLERANCE))
    if col.kind == "time":  # helper `__clock__`: seconds of the day, -1 for text not in the source's format
        out.append(_exp("ExpectColumnValuesToBeBetween", "a clock time in the source's format and range",
                        column=f"__clock__{name}", min_value=col.min, max_value=col.max))
        if col.support is not None:
            out.append(_exp("ExpectColumnValuesToBeInSet", f"only the source's {len(col.support)} times",
                            column=f"__clock__{name}", value_set=list(col.support)))
        elif col.step:
            out.append(_exp("ExpectColumnValuesToBeBetween", f"{name}: on the source's grid (step {col.step:g} s)",
                            column=f"__grid__{name}", min_value=0, max_value=GRID_TOLERANCE))
    if col.kind == "datetime":
        tz = _zone(col)
        out.append(_exp("ExpectColumnValuesToBeBetween", "within the source's date range",
                        column=name, min_value=_iso(col.min, tz), max_value=_iso(col.max, tz)))
    if col.kind == "id":
        out += [
            _exp("ExpectColumnValuesToBeUnique", "a distinct id in every row", column=name),
            _exp("ExpectColumnValuesToBeInSet", "no real id", column=f"__real__{name}", value_set=[False]),
        ]
    if col.kind in ("categorical", "boolean"):
        out.append(_exp("ExpectColumnValuesToBeInSet", "no category unseen in the source",
                        column=name, value_set=list(col.categories or [])))
    out.extend(_null_expectations(name, col.null_fraction))
    return out


def _null_expectations(name: str, null_fraction: float) -> list:
    if null_fraction == 0:
        return [_exp("ExpectColumnValuesToNotBeNull", "no nulls (the source has none)", column=name)]
    limit = null_fraction + NULL_TOLERANCE
    if limit >= 1:
        return []
    return [_exp("ExpectColumnValuesToNotBeNull", f"null share at most {limit:.3f}",
                 column=name, mostly=round(1 - limit, 6))]


def _clock_seconds(values: pd.Series, col: ColumnProfile) -> np.ndarray:
    """Seconds of the day of each clock text written exactly as the source writes its
    times; NaN for nulls and the source's blank text; -1 for any other text."""
    seconds = clock.seconds_of_day(values)
    exact = clock.write(seconds, col.clock).to_numpy() == values.to_numpy()
    missing = values.isna().to_numpy() | (values.to_numpy() == col.clock.blank)
    return np.where(missing, np.nan, np.where(exact & ~np.isnan(seconds), seconds, -1.0))


def _off_grid(values: pd.Series, col: ColumnProfile) -> np.ndarray:
    """How far each value is from the column's grid, in steps (NaN for nulls and
    non-numbers, which other expectations of the column report)."""
    x = (pd.to_numeric(values, errors="coerce").astype(float) - col.min) / col.step
    return np.abs(x - np.round(x)).to_numpy()


# ---------------------------------------------------------------- time series ---------


def _steps(frame: pd.DataFrame, entity: str, time: str) -> pd.Series:
    """Time elapsed since the previous step of the same entity (NaN on first steps);
    seconds for datetimes. Non-positive means out of order or duplicated."""
    t = frame[time]
    if pd.api.types.is_datetime64_any_dtype(t):
        t = (t - pd.Timestamp(0)).dt.total_seconds()
    t = pd.to_numeric(t, errors="coerce").astype(float)
    return t.groupby(frame[entity].to_numpy(), sort=False).diff()


def _sequences(src: TimeSeriesData, private: bool) -> tuple[pd.Series, pd.Series, np.ndarray]:
    """The source's sequence lengths, starts and steps (seconds for datetimes); in a private
    run those of the declared grid (time range and step): at most its whole span (or the
    window), starting anywhere on it, stepping as declared, so no entity's own shows."""
    frame, entity, time = src.frame, src.entity, src.time
    if not private:
        groups = frame.groupby(entity, sort=False)
        return groups.size(), groups[time].first(), _steps(frame, entity, time).dropna().unique()
    col = src.profile.column(time)
    grid = grid_between(declared_frequency(col), col.min, col.max, datetime=col.kind == "datetime")
    span = src.windows[0] if src.windows else len(grid)
    starts = pd.Series([as_time(t, frame[time]) for t in (grid[0], grid[len(grid) - span])])
    steps = np.unique(np.diff(grid) / (1e9 if col.kind == "datetime" else 1))
    return pd.Series([1, span]), starts, steps


def _sequence_expectations(src: TimeSeriesData, length: int | None = None, start: Any = None,
                           private: bool = False) -> list:
    """Per-sequence rules; a requested `length` (sample.length: one long series) is the
    only length allowed, in place of the source's range, and a given `start` (a history
    continued, a covariate path's first time; `time_values` units) the only start."""
    frame, entity, time = src.frame, src.entity, src.time
    lengths, starts, steps = _sequences(src, private)
    lengths = lengths if length is None else pd.Series([length])
    starts = starts if start is None else pd.Series([as_time(start, frame[time])])
    out = [
        _exp("ExpectCompoundColumnsToBeUnique", "no duplicate (entity, time) pair", column_list=[entity, time]),
        _exp("ExpectColumnValuesToBeInSet", "each entity's rows contiguous (sorted by entity)",
             column="__entity_blocks", value_set=[1]),
        _exp("ExpectColumnValuesToBeBetween", "sequence length within the source's range",
             column="__length", min_value=int(lengths.min()), max_value=int(lengths.max())),
    ]
    if len(steps) <= MAX_STEP_SET:
        out.append(_exp("ExpectColumnValuesToBeInSet", "time increasing with the source's step frequency",
                        column="__step", value_set=sorted(float(s) for s in steps)))
    else:
        out.append(_exp("ExpectColumnValuesToBeBetween", "time increasing with a step in the source's range",
                        column="__step", min_value=float(steps.min()), max_value=float(steps.max())))
    lo, hi = starts.min(), starts.max()
    if pd.api.types.is_datetime64_any_dtype(starts):
        lo, hi = lo.isoformat(), hi.isoformat()
    else:
        lo, hi = float(lo), float(hi)
    out.append(_exp("ExpectColumnValuesToBeBetween",
                    "sequence start within the source's starts" if start is None else "sequence start as given",
                    column="__start", min_value=lo, max_value=hi))
    for col in src.static:
        out.append(_exp("ExpectColumnValuesToBeInSet", f"{col} constant within each entity",
                        column=f"__static_values__{col}", value_set=[1]))
    return out


def _sequence_facts(src: TimeSeriesData, batch: pd.DataFrame, earlier: set | None) -> dict[str, Any]:
    entity, time = src.entity, src.time
    if entity not in batch or time not in batch:
        return {}
    key = batch[entity].to_numpy()
    groups = batch.groupby(key, sort=False)
    block = (batch[entity] != batch[entity].shift()).cumsum()
    blocks = block.groupby(key, sort=False).transform("nunique")
    if earlier:
        blocks = blocks + batch[entity].isin(earlier).astype(int)
    facts = {
        "__entity_blocks": blocks.to_numpy(),
        "__length": groups[time].transform("size").to_numpy(),
        "__step": _steps(batch, entity, time).to_numpy(),
        "__start": groups[time].transform("first").to_numpy(),
    }
    for col in src.static:
        if col in batch:  # distinct values per entity, a null counting as one value
            nulls = batch[col].isna().groupby(key, sort=False).transform("any").astype(int)
            facts[f"__static_values__{col}"] = (groups[col].transform("nunique") + nulls).to_numpy()
    return facts


# ---------------------------------------------------------------- images --------------


def _label_profile(src: ImageData) -> ColumnProfile | None:
    if src.labels is None or not src.label_name:
        return None
    return profile_column(pd.Series(src.labels, name=src.label_name))


def _image_expectations(src: ImageData) -> list:
    height, width = src.size
    out = [
        _exp("ExpectColumnValuesToNotBeNull", "an image in every row", column="image"),
        _exp("ExpectColumnValuesToBeInSet", "decodable PNG bytes", column="__png", value_set=[True]),
        _exp("ExpectColumnValuesToBeInSet", "the source's height", column="__height", value_set=[height]),
        _exp("ExpectColumnValuesToBeInSet", "the source's width", column="__width", value_set=[width]),
        _exp("ExpectColumnValuesToBeInSet", "the source's mode", column="__mode", value_set=[src.mode]),
    ]
    label = _label_profile(src)
    if label is not None:
        values = src.label_set()
        kind = "integer" if label.kind == "integer" else "categorical"
        types = TYPES[kind] if kind == "integer" else sorted({type(v).__name__ for v in values} | set(TYPES[kind]))
        out += [
            _exp("ExpectColumnValuesToBeInTypeList", f"{kind} label type", column=label.name, type_list=types),
            _exp("ExpectColumnValuesToBeInSet", "no label unseen in the source", column=label.name, value_set=values),
            _exp("ExpectColumnValuesToNotBeNull", "a label in every row", column=label.name),
        ]
    return out


def _decode(cell: Any) -> tuple[bool, float, float, str | None]:
    """(is a PNG that decodes, height, width, mode) of one `{bytes, path}` image cell."""
    from PIL import Image

    data = cell.get("bytes") if isinstance(cell, dict) else None
    if not data:
        return False, np.nan, np.nan, None
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            return img.format == "PNG", float(img.height), float(img.width), img.mode
    except Exception:  # PIL raises many types for corrupt bytes; all mean "not decodable"
        return False, np.nan, np.nan, None


def _image_facts(batch: pd.DataFrame) -> dict[str, Any]:
    if "image" not in batch:
        return {}
    png, height, width, mode = zip(*map(_decode, batch["image"])) if len(batch) else ((), (), (), ())
    return {"__png": list(png), "__height": list(height), "__width": list(width), "__mode": list(mode)}


# ---------------------------------------------------------------- public --------------


def output_columns(source: SourceData) -> list[str]:
    """The columns of the synthetic output, in order (DESIGN.md, "Parquet contracts")."""
    if isinstance(source, ImageData):
        return ["image"] + ([source.label_name] if source.labels is not None and source.label_name else [])
    return list(source.profile.names)


def contract_view(source: SourceData, private: bool, classes: list[Any] | None = None) -> SourceData:
    """The source as the contract sees it: a private run's is its declared profile
    (pipeline/core/domains.py), so the suite stored beside the output holds no fact of
    the rows (no real min, max, category list, length or start, nor an image source's own
    label set) and checks the declared domains the private model was built from."""
    return private_view(source, classes) if private else source


def build_contract_suite(source: SourceData, *, length: int | None = None, start: Any = None,
                         private: bool = False, classes: list[Any] | None = None) -> Any:
    """The contract suite for outputs of `source` (the whole source, before the split:
    the contract is about what values exist, not about how they are distributed).
    `length`: the output is one time series of that many steps (sample.length), starting
    at `start` when given. `private`: from the declared domains alone (`contract_view`)."""
    source = contract_view(source, private, classes)
    if isinstance(source, ImageData):
        exps = _image_expectations(source)
    else:
        skip = {source.entity, source.time} if isinstance(source, TimeSeriesData) else set()
        exps = []
        for col in source.profile.columns:
            if col.name in skip:  # synthetic entities get new ids; time is checked per sequence
                exps += [_type_expectation(col), *_null_expectations(col.name, 0.0)]
            else:
                exps.extend(_column_expectations(col, exact=not isinstance(source, TimeSeriesData)))
        if isinstance(source, TimeSeriesData):
            exps.extend(_sequence_expectations(source, length, start, private))
        exps += [_exp("ExpectColumnValuesToBeInSet", f"constraint {c.text}", column=f"__constraint__{i}",
                      value_set=[True]) for i, c in enumerate(source.profile.held)]
    helpers = sorted({e.column for e in exps if getattr(e, "column", "").startswith("__")})
    columns = output_columns(source) + helpers
    table = _exp("ExpectTableColumnsToMatchOrderedList", "exactly the source's columns, in order",
                 column_list=columns)
    return gx.new_suite("contract", [table, *exps], meta={"modality": source.modality, "private": private})


def contract_table(source: SourceData, batch: pd.DataFrame, *, earlier_entities: set | None = None) -> pd.DataFrame:
    """The table the contract suite runs on: `batch` (a chunk of the output as read from
    Parquet) with the helper fact columns appended. `earlier_entities` holds the entity
    ids of chunks already checked, so an entity split across chunks is caught."""
    table = batch.reset_index(drop=True)
    dtypes = {name: str(dtype) for name, dtype in table.dtypes.items()}
    # GX's type check cannot name pandas' category dtype: check its values instead.
    for name in table.columns[table.dtypes.map(lambda d: isinstance(d, pd.CategoricalDtype))]:
        table[name] = table[name].astype(object)
    facts: dict[str, Any] = {}
    if isinstance(source, ImageData):
        facts = _image_facts(table)
    else:
        skip = {source.entity, source.time} if isinstance(source, TimeSeriesData) else set()
        for col in source.profile.of_kind("integer", "numeric"):
            if col.name in table and col.name not in skip and col.support is None and col.step:
                facts[f"__grid__{col.name}"] = _off_grid(table[col.name], col)
        for col in source.profile.of_kind("time"):
            if col.name in table:
                seconds = pd.Series(_clock_seconds(table[col.name], col))
                facts[f"__clock__{col.name}"] = seconds.to_numpy()
                if col.support is None and col.step:
                    facts[f"__grid__{col.name}"] = _off_grid(seconds.where(seconds >= 0), col)  # -1: reported above
        for col in source.profile.columns:
            if col.name in table and _dtype_as_text(col) and not isinstance(source, TimeSeriesData):
                facts[f"__dtype__{col.name}"] = np.full(len(table), dtypes[col.name], dtype=object)
        for i, c in enumerate(source.profile.held):
            if all(name in table for name in c.columns):
                facts[f"__constraint__{i}"] = holds(c, table)
        for col in source.profile.of_kind("id"):
            if col.name in table:
                facts[f"__real__{col.name}"] = table[col.name].isin(source.frame[col.name]).to_numpy()
        if isinstance(source, TimeSeriesData):
            facts.update(_sequence_facts(source, table, earlier_entities))
    if not facts:
        return table
    return pd.concat([table, pd.DataFrame(dict(sorted(facts.items())), index=table.index)], axis=1)
