"""The source's time grid: its step (a fixed one, or a calendar frequency), times as
plain numbers, and regular time columns built from a start. One home, because the
generators write times on the grid and the pre-fit checks and the contract test a
given history or covariate path against the same grid."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from pipeline.core.schema import ColumnProfile

COMPARED_STEPS = 24  # steps two frequencies are compared over (two years of months, of quarters: six)


def time_values(series: pd.Series) -> np.ndarray:
    """Time as float64 (numbers) or int64 ns of the wall-clock time (timestamps; a time
    zone is put back on output, so calendar frequencies stay on their boundaries)."""
    if not pd.api.types.is_datetime64_any_dtype(series):
        return series.to_numpy(dtype="float64")
    if series.dt.tz is not None:
        series = series.dt.tz_localize(None)
    return series.astype("datetime64[ns]").to_numpy().view("int64")


def frequency(frame: pd.DataFrame, entity: str, time: str) -> dict[str, Any]:
    """The source's time step: a pandas frequency for calendar steps (months have no
    fixed length), else the most common step between consecutive rows of an entity."""
    diffs = frame.groupby(entity, sort=False)[time].diff().dropna()
    if pd.api.types.is_datetime64_any_dtype(frame[time]):
        longest = frame[entity].value_counts().index[0]
        stamps = pd.DatetimeIndex(frame.loc[frame[entity] == longest, time])
        freq = pd.infer_freq(stamps) if len(stamps) >= 3 else None
        if freq:
            return {"kind": "datetime", "freq": freq}
        return {"kind": "datetime", "step": int(diffs.dt.total_seconds().mode().iloc[0] * 1e9)}
    return {"kind": "number", "step": float(diffs.round(9).mode().iloc[0])}


def declared_frequency(col: ColumnProfile) -> dict[str, Any] | None:
    """The time step declared on the time column (`source.columns.<time>.step`), in
    `frequency`'s form; None when none is declared. A private fit takes its grid from it
    alone (pipeline/core/domains.py)."""
    step = col.domain.step if col.domain is not None else None
    if step is None:
        return None
    if col.kind == "datetime":
        return {"kind": "datetime", "freq": pd.tseries.frequencies.to_offset(str(step)).freqstr}
    return {"kind": "number", "step": float(step)}


def grid_frequency(frame: pd.DataFrame, entity: str, time: str, col: ColumnProfile) -> dict[str, Any]:
    """The time step a generator lays its grid with: the declared one, else the rows'."""
    return declared_frequency(col) or frequency(frame, entity, time)


def same_frequency(a: dict[str, Any], b: dict[str, Any], start: float) -> bool:
    """Whether two steps lay the same grid from `start` (`time_values` units) over
    COMPARED_STEPS steps: "D" and 86,400 s are one step, and so are "QS" and "QS-OCT"
    (both start quarters in January, April, July, October); "MS" and "QS" are not."""
    if a["kind"] != b["kind"]:
        return False
    first, n = np.array([start], dtype="float64" if a["kind"] == "number" else "int64"), np.array([COMPARED_STEPS])
    return bool(np.allclose(time_values(regular_times(a, first, n)), time_values(regular_times(b, first, n)), rtol=0))


def grid_between(freq: dict[str, Any], low: float, high: float, *, datetime: bool) -> np.ndarray:
    """Every grid time from `low` through `high` (`time_values` units), stepping at `freq`:
    a private run's whole time range, from declared facts alone."""
    first = np.array([low], dtype="int64" if datetime else "float64")
    grid = time_values(regular_times(freq, first, np.array([1])))
    while grid[-1] < high:  # doubling: a calendar frequency has no fixed step to divide by
        grid = time_values(regular_times(freq, first, np.array([2 * len(grid)])))
    return grid[grid <= high]


def regular_times(freq: dict[str, Any], starts: np.ndarray, lengths: np.ndarray) -> pd.Series:
    """Each entity's time column from its start (`time_values` units): `lengths[i]` steps
    of the source's frequency."""
    pos = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    if freq["kind"] == "number":
        return pd.Series(np.repeat(starts, lengths) + pos * freq["step"])
    if "step" in freq:
        return pd.Series(pd.to_datetime(np.repeat(starts, lengths) + pos * freq["step"], unit="ns"))
    ranges = [pd.date_range(pd.Timestamp(int(s), unit="ns"), periods=int(n), freq=freq["freq"]) for s, n in zip(starts, lengths)]
    return pd.Series(np.concatenate([r.to_numpy() for r in ranges]))


def on_grid(freq: dict[str, Any], times: pd.Series) -> bool:
    """Whether `times` (in order) step exactly at `freq`, from their first."""
    if len(times) == 0:
        return True
    expected = regular_times(freq, time_values(times.iloc[:1]), np.array([len(times)]))
    return bool(np.array_equal(time_values(times.reset_index(drop=True)), time_values(expected)))


def in_phase(freq: dict[str, Any], times: pd.Series, origin: pd.Series) -> bool:
    """Whether `times` lie on the grid through `origin`'s first value (whole steps from
    it); calendar frequencies are anchored by themselves (`on_grid` checks them)."""
    if "step" not in freq:
        return True
    offset = (time_values(times.iloc[:1]) - time_values(origin.iloc[:1]))[0] / freq["step"]
    return bool(abs(offset - round(offset)) < 1e-9)


def next_time(freq: dict[str, Any], last: pd.Series) -> Any:
    """The step after the one-element series `last`, in `time_values` units."""
    return time_values(regular_times(freq, time_values(last), np.array([2])))[1]


def as_time(value: Any, like: pd.Series) -> Any:
    """A `time_values` number back as a value of `like`'s kind: a timestamp (in its time
    zone, when it has one) or a plain number."""
    if not pd.api.types.is_datetime64_any_dtype(like):
        return float(value)
    stamp = pd.Timestamp(int(value), unit="ns")
    return stamp.tz_localize(like.dt.tz) if like.dt.tz is not None else stamp
