"""Time-series sources: long format (one row per entity and time step) into
`TimeSeriesData`, or one long series cut into windows that become the entities.

Static columns (constant within every entity, e.g. a region) are detected here, once,
so every generator treats them the same way: drawn once per entity, repeated per step."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.core.data import TimeSeriesData, cut_windows
from pipeline.core.errors import SourceError
from pipeline.core.schema import ColumnDomain, profile_table
from pipeline.core.spec import SourceSpec
from pipeline.core.timegrid import declared_frequency, frequency, same_frequency, time_values

MIN_STEPS = 2  # a sequence model learns transitions: one step has none
WINDOW_COLUMN = "window"  # the entity column made when a single series is cut into windows
STEP_COLUMN = "step"  # the time column made when the source has none: the rows' order, 0..n-1


def plain(value: object) -> object:
    """numpy scalars as Python values, so messages read `1940`, not `np.int64(1940)`."""
    return value.item() if isinstance(value, np.generic) else value


def _require(frame: pd.DataFrame, column: str, field: str, path: object) -> None:
    if column not in frame.columns:
        raise SourceError(
            f"source.{field} {column!r} is not a column of {path}; columns: {', '.join(map(str, frame.columns))}"
        )


def _step_index(frame: pd.DataFrame, entity: str | None) -> pd.DataFrame:
    """No time column: the rows' order is the time. Integer steps 0..n-1 per entity (or for
    the one series), so generators learn a step of 1 and write integer steps back."""
    if STEP_COLUMN in frame.columns:
        raise SourceError(f"source.time is not given and the source already has a column {STEP_COLUMN!r}: "
                          f"name it as source.time, or rename it")
    steps = frame.groupby(entity, sort=False, dropna=False).cumcount() if entity else pd.Series(range(len(frame)), index=frame.index)
    frame.insert(frame.columns.get_loc(entity) + 1 if entity else 0, STEP_COLUMN, steps.astype("int64"))
    return frame


def sortable_time(frame: pd.DataFrame, time: str) -> pd.DataFrame:
    """Time must be integers, numbers or timestamps: text is parsed as dates or refused."""
    s = frame[time]
    if s.isna().any():
        raise SourceError(f"time column {time!r} has {int(s.isna().sum())} missing value(s): fill or drop those rows")
    if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
        return frame
    if pd.api.types.is_datetime64_any_dtype(s):
        return frame
    try:
        frame[time] = pd.to_datetime(s, format="mixed")
    except (ValueError, TypeError):
        raise SourceError(
            f"time column {time!r} is not sortable: it needs integers or timestamps, got values like {plain(s.iloc[0])!r}"
        ) from None
    return frame


def _check_regular(frame: pd.DataFrame, time: str) -> None:
    """A series cut into windows is generated on one grid (a window's steps, a long path's
    time index): interior gaps or irregular steps would be papered over, so they are refused."""
    t = frame[time]
    if pd.api.types.is_datetime64_any_dtype(t) and len(t) >= 3 and pd.infer_freq(pd.DatetimeIndex(t)):
        return  # a calendar frequency (months, business days): regular although the days differ
    diffs = t.diff().iloc[1:]
    usual = diffs.mode().iloc[0]
    off = diffs != usual
    if off.any():
        raise SourceError(
            f"source.time {time!r} steps irregularly: {int(off.sum())} of {len(diffs)} steps ({off.mean():.1%}) differ "
            f"from the usual {plain(usual)!r}, first after {plain(t.iloc[int(np.argmax(off.to_numpy()))])!r}; "
            "a series cut into windows needs a regular grid: resample and fill the gaps first")


def _windows(frame: pd.DataFrame, time: str, window: int | None, stride: int | None) -> pd.DataFrame:
    """Cut one series (sorted by time) into windows; the window index is the entity.
    Missing values pass (the encoder models them); gaps in time do not (`_check_regular`)."""
    if window is None:
        raise SourceError(
            "a time-series source needs source.entity (one sequence per entity) or source.window "
            "(one long series cut into windows of that many steps)"
        )
    if WINDOW_COLUMN in frame.columns:
        raise SourceError(f"the source already has a column {WINDOW_COLUMN!r}; rename it to cut the series into windows")
    n = len(frame)
    if window > n:
        raise SourceError(f"source.window is {window} steps but the series has only {n}: use a window of at most {n}")
    frame = frame.sort_values(time, kind="stable").reset_index(drop=True)
    dup = frame[time].duplicated()
    if dup.any():
        raise SourceError(f"time {plain(frame[time][dup].iloc[0])!r} appears more than once in a single series: drop duplicates")
    _check_regular(frame, time)
    return cut_windows(frame, window, stride or window, WINDOW_COLUMN)  # default stride: every row used once


def _check_entities(frame: pd.DataFrame, entity: str, time: str) -> None:
    if frame[entity].isna().any():
        raise SourceError(f"entity column {entity!r} has missing values: every row needs its sequence key")
    dup = frame.duplicated([entity, time])
    if dup.any():
        row = frame[dup].iloc[0]
        raise SourceError(
            f"duplicate ({entity}, {time}) pair ({plain(row[entity])!r}, {plain(row[time])!r}): each entity has one row per "
            "time step; aggregate or drop duplicates"
        )
    sizes = frame.groupby(entity, sort=False).size()
    short = sizes[sizes < MIN_STEPS]
    if len(short):
        raise SourceError(
            f"entity {plain(short.index[0])!r} has {short.iloc[0]} step(s) ({len(short)} entities are that short); "
            f"every sequence needs at least {MIN_STEPS} steps: drop them or use a coarser entity"
        )


def _varying(frame: pd.DataFrame, entity: str, columns: list[str]) -> pd.DataFrame:
    """Per entity and column, whether the column takes more than one value (nulls count as a value)."""
    return frame.groupby(entity, sort=False)[columns].nunique(dropna=False) > 1


def static_columns(frame: pd.DataFrame, entity: str, candidates: list[str]) -> list[str]:
    """Columns constant within every entity. With a single entity nothing can be told
    apart, so nothing is static."""
    if frame[entity].nunique() < 2:
        return []
    varies = _varying(frame, entity, candidates)
    return [c for c in candidates if not varies[c].any()]


def declared_static(frame: pd.DataFrame, entity: str, declared: list[str], candidates: list[str]) -> list[str]:
    """`source.static`, checked against the rows as a declared range is: each is a column
    besides the entity and time, and holds one value per sequence."""
    missing = [c for c in declared if c not in candidates]
    if missing:
        raise SourceError(f"source.static names {', '.join(map(repr, missing))}, not a column of the source besides "
                          f"its entity and time: fix the name (columns: {', '.join(map(str, candidates))})")
    varies = _varying(frame, entity, declared)
    for c in declared:
        if varies[c].any():
            raise SourceError(f"source.static: {c!r} varies within sequence {plain(varies[c].idxmax())!r} "
                              f"({int(varies[c].sum())} sequences): drop it from source.static (it is a feature)")
    return list(declared)


def load_timeseries(spec: SourceSpec, frame: pd.DataFrame) -> TimeSeriesData:
    """Check and sort a long-format table (`pipeline.sources.read_frame`); detect static
    columns; profile it. Without source.time the rows' order is the time (`STEP_COLUMN`)."""
    frame.columns = [str(c) for c in frame.columns]
    if spec.entity:
        _require(frame, spec.entity, "entity", spec.location)
    if spec.time:
        _require(frame, spec.time, "time", spec.location)
        time = spec.time
    else:
        frame, time = _step_index(frame, spec.entity), STEP_COLUMN
    frame = sortable_time(frame, time)
    windows = None
    if spec.entity:
        entity = spec.entity
    else:
        frame = _windows(frame, time, spec.window, spec.stride)
        entity, windows = WINDOW_COLUMN, (spec.window, spec.stride or spec.window)
    _check_entities(frame, entity, time)
    frame = frame.sort_values([entity, time], kind="stable").reset_index(drop=True)
    rest = [c for c in frame.columns if c not in (entity, time)]
    static = static_columns(frame, entity, rest) if spec.static is None else declared_static(frame, entity, spec.static, rest)
    features = [c for c in rest if c not in static]
    if not features:
        raise SourceError(
            "the source has no column that varies within an entity: a time series needs at least one feature"
        )
    data = TimeSeriesData(
        frame=frame, profile=profile_table(frame, kinds=_with_made_step(spec, time)), entity=entity, time=time,
        static=static, features=features, windows=windows,
    )
    _check_declared_step(data)
    return data


def _with_made_step(spec: SourceSpec, time: str) -> dict[str, ColumnDomain]:
    """The declared domains, with the made `STEP_COLUMN`'s step of 1 (public by construction)."""
    if spec.time:
        return spec.columns
    made = spec.columns.get(STEP_COLUMN, ColumnDomain())
    return {**spec.columns, STEP_COLUMN: made.model_copy(update={"step": 1.0})}


def _check_declared_step(data: TimeSeriesData) -> None:
    """A declared time step must be the rows' own (their most common step), as a declared
    range must hold every value: a generator lays its grid with the declared one."""
    col = data.profile.column(data.time)
    declared = declared_frequency(col)
    if declared is None:
        return
    rows = frequency(data.frame, data.entity, data.time)
    if not same_frequency(declared, rows, time_values(data.frame[data.time].iloc[:1])[0]):
        raise SourceError(f"source.columns.{data.time}.step {_step_text(declared)} is not the source's time step "
                          f"({_step_text(rows)}): declare the step the series is recorded at")


def _step_text(freq: dict) -> str:
    if freq["kind"] == "number":
        return f"{freq['step']:g}"
    return freq.get("freq") or str(pd.Timedelta(freq["step"], unit="ns"))
