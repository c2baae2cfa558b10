"""Paths a generated series must follow, read and checked against the source before any
fit (exit 2, one line, nothing written), then handed to the generator as a `GivenPath`:

- a history to continue: `synth run JOB --continue history.csv --steps 48`
  (sample.history, sample.length): the same columns as the source, on its time grid;
  the output is the next `steps` steps, its time index continuing the history's;
- covariates: `sample.conditions: {temp: weather.csv}` on a time-varying column (a file
  with that column, or `source` for the source's own series): the other features are
  generated given that path, which the output carries unchanged.

A continuation's output is one short path: the metrics (judge, attacks) are computed on
windows the same fitted model draws unconditionally instead (`metric_sample`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from generators.timeseries.base import path_layout
from pipeline.core.data import GivenPath, SourceData, TimeSeriesData, split_conditions
from pipeline.core.errors import ConditionError, SpecError
from pipeline.core.spec import JobSpec
from pipeline.core.timegrid import grid_frequency, in_phase, next_time, on_grid, time_values
from pipeline.sources.tabular import read_table
from pipeline.sources.timeseries import STEP_COLUMN, plain, sortable_time

SOURCE_PATH = "source"  # a covariate condition naming the source's own series of that column
METRIC_WINDOWS = 500  # windows the model draws to judge a continuation's model (the judge's usual sample)


def _read(path: str | Path, what: str) -> pd.DataFrame:
    if not Path(path).is_file():
        raise SpecError(f"{what}: file not found: {path} (give a CSV or Parquet file)")
    frame = read_table(path)
    frame.columns = [str(c) for c in frame.columns]
    if frame.empty:
        raise SpecError(f"{what}: {path} has no rows")
    return frame


def _on_source_grid(frame: pd.DataFrame, source: TimeSeriesData, freq: dict[str, Any], what: str) -> pd.DataFrame:
    """`frame`'s time column parsed like the source's, in order, unique, at the source's step."""
    time = source.time
    frame = sortable_time(frame, time).sort_values(time, kind="stable").reset_index(drop=True)
    if frame[time].duplicated().any():
        raise SpecError(f"{what}: time {plain(frame[time][frame[time].duplicated()].iloc[0])!r} appears more than once")
    if pd.api.types.is_datetime64_any_dtype(frame[time]) != pd.api.types.is_datetime64_any_dtype(source.frame[time]):
        raise SpecError(f"{what}: column {time!r} holds {frame[time].dtype} values, the source's {source.frame[time].dtype}")
    if not on_grid(freq, frame[time]) or not in_phase(freq, frame[time], source.frame[time]):
        step = freq.get("freq") or freq.get("step")
        raise SpecError(f"{what}: column {time!r} does not step at the source's frequency ({step}"
                        f"{' ns' if freq['kind'] == 'datetime' and 'step' in freq else ''}) from its first value "
                        f"{plain(frame[time].iloc[0])!r}: resample it, or cut out its gaps")
    return frame


def _check_values(frame: pd.DataFrame, source: TimeSeriesData, columns: list[str], what: str) -> None:
    """Values the model can take as given: complete, and inside what the source has (the
    encoder clips numbers to the source's range and knows only its categories)."""
    for name in columns:
        col, values = source.profile.column(name), frame[name]
        if values.isna().any():
            raise SpecError(f"{what}: column {name!r} has {int(values.isna().sum())} missing values; fill them first")
        allowed = col.categories if col.categories is not None else col.support
        if allowed is not None:
            unseen = sorted(set(values.tolist()) - set(allowed), key=str)
            if unseen:
                raise SpecError(f"{what}: column {name!r} has value(s) {unseen[:5]} the source never has; seen: {allowed[:20]}")
        elif col.min is not None and col.kind in ("integer", "numeric"):
            numbers = pd.to_numeric(values, errors="coerce")
            if numbers.isna().any():
                raise SpecError(f"{what}: column {name!r} has non-numbers, e.g. {values[numbers.isna()].iloc[0]!r}")
            outside = (numbers < col.min) | (numbers > col.max)
            if outside.any():
                raise SpecError(f"{what}: column {name!r} has {int(outside.sum())} value(s) outside the source's range "
                                f"[{col.min:g}, {col.max:g}], e.g. {numbers[outside].iloc[0]:g}: the model has never seen them")
            if col.step:
                off = ((numbers - col.min) / col.step - ((numbers - col.min) / col.step).round()).abs() > 1e-6
                if off.any():
                    raise SpecError(f"{what}: column {name!r} has {int(off.sum())} value(s) off the source's precision "
                                    f"(step {col.step:g}), e.g. {numbers[off].iloc[0]!r}: round them to it")


def _history(path: Path, spec: JobSpec, source: TimeSeriesData, freq: dict[str, Any]) -> GivenPath:
    what = f"--continue {path}"
    frame = _read(path, what)
    plain = spec.source.time is None  # the source had no time column: rows' order is the time
    expected = [c for c in source.profile.names if c not in (source.entity, STEP_COLUMN if plain else "")]
    missing, extra = [c for c in expected if c not in frame.columns], [c for c in frame.columns if c not in expected]
    if missing or extra:
        raise SpecError(f"{what}: the history needs the source's columns ({', '.join(expected)}); "
                        + "; ".join(p for p in (missing and f"missing {', '.join(missing)}",
                                                extra and f"not in the source {', '.join(extra)}") if p))
    if plain:  # read as the rows right after the source's end
        last = source.frame[source.time].max()
        frame.insert(0, source.time, np.arange(last + 1, last + 1 + len(frame), dtype="int64"))
    frame = _on_source_grid(frame, source, freq, what)
    context = path_layout(source.windows[0])[1]
    if len(frame) < context:
        raise SpecError(f"{what}: the history has {len(frame)} step(s); continuing needs at least {context} "
                        f"(the steps a window is given, half of source.window {source.windows[0]})")
    _check_values(frame, source, source.features, what)
    return GivenPath(history=frame, start=next_time(freq, frame[source.time].iloc[-1:]))


def _covariates(covariates: dict[str, Any], spec: JobSpec, source: TimeSeriesData,
                freq: dict[str, Any]) -> GivenPath:
    paths, times = [], None
    for column, value in covariates.items():
        what = f"sample.conditions.{column}"
        if not isinstance(value, str):
            raise SpecError(f"{what}: {column!r} varies over time: give a CSV or Parquet file with a column "
                            f"{column!r}, or {SOURCE_PATH!r} for the source's own series, not {value!r}")
        frame = source.series() if value == SOURCE_PATH else _read(value, what)
        if column not in frame.columns:
            raise SpecError(f"{what}: {value} has no column {column!r}; columns: {', '.join(frame.columns)}")
        if source.time in frame.columns:
            frame = _on_source_grid(frame, source, freq, what)
            if times is not None and not times.equals(frame[source.time]):
                raise SpecError(f"{what}: its times differ from the other covariates': give them on one time index")
            times = frame[source.time]
        _check_values(frame, source, [column], what)
        paths.append(frame[column].reset_index(drop=True))
    steps = {len(p) for p in paths}
    if len(steps) > 1:
        raise SpecError(f"sample.conditions: the covariate paths have different lengths ({sorted(steps)}): give one per step")
    length = spec.sample.length or steps.pop()
    if length > len(paths[0]):
        raise SpecError(f"sample.length is {length} but the covariate path has {len(paths[0])} steps: "
                        "lower sample.length or give a longer path")
    if length < 2:
        raise SpecError(f"sample.conditions: a covariate path needs at least 2 steps, got {length}")
    start = None if times is None else time_values(times.iloc[:1])[0]
    return GivenPath(covariates=pd.concat(paths, axis=1).iloc[:length], start=start)


def load_given(spec: JobSpec, source: SourceData) -> GivenPath | None:
    """The history or covariate paths of the job, checked; None when it has neither."""
    features = list(getattr(source, "features", []))
    _, covariates = split_conditions(spec.sample.conditions, features)
    history = spec.sample.history
    if history is None and not covariates:
        return None
    if covariates and (not isinstance(source, TimeSeriesData) or source.windows is None):
        column = next(iter(covariates))
        raise ConditionError(f"cannot condition on {column!r}; conditionable columns: "
                             f"{', '.join(source.conditionable()) or 'none'} (a time-varying column is given as a "
                             "path only in a single series cut into windows: source.window, no source.entity)")
    if not isinstance(source, TimeSeriesData) or source.windows is None:
        raise SpecError("a history (--continue) or a covariate path (a condition on a time-varying column) needs a "
                        "single series cut into windows (source.window, no source.entity)")
    if history is not None and covariates:
        raise SpecError("--continue with covariate conditions is not supported yet: give one of them")
    freq = grid_frequency(source.frame, source.entity, source.time, source.profile.column(source.time))
    if history is not None:
        return _history(Path(history), spec, source, freq)
    return _covariates(covariates, spec, source, freq)


def path_length(spec: JobSpec, given: GivenPath | None) -> int | None:
    """Steps of the one series a job generates: sample.length, else its covariate path's."""
    if spec.sample.length is not None or given is None or given.covariates is None:
        return spec.sample.length
    return len(given.covariates)


def metric_sample(spec: JobSpec, model_dir: Path, source: SourceData) -> SourceData | None:
    """What the metrics judge for this job: None (the output itself) except for a
    continuation, whose `steps` new steps give a handful of overlapping windows, too few
    for the judge or the privacy attacks; they run on windows the same fitted model draws
    without a history (as many as the source has, at most METRIC_WINDOWS, at the run's
    seed), so the gate still judges everything the continuation could carry."""
    if spec.sample.history is None:
        return None
    from generators import load_generator

    generator = load_generator(model_dir)
    n = min(METRIC_WINDOWS, len(source))
    frame = pd.concat(generator.sample(n, seed=spec.sample.seed, batch_size=n), ignore_index=True)
    return source.with_frame(frame)
