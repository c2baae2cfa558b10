"""Class balancing: how many records of each minority class to generate so that every
class of a target column has as many records as the largest one.

Tabular: any categorical / boolean column. Time series: a static column (counted per
entity). Images: the label."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from pipeline.data import ImageData, SourceData, TabularData, TimeSeriesData
from pipeline.errors import BadInputError


def class_counts(data: SourceData, target: str) -> pd.Series:
    """Records per class of `target`, largest first."""
    if isinstance(data, ImageData):
        if data.labels is None or target not in (data.label_name, "label"):
            raise BadInputError(
                f"--target {target!r}: images can only be balanced on their label"
                + (f" ({data.label_name!r})" if data.labels is not None else ", and this source has none")
            )
        values = pd.Series(data.labels)
    elif isinstance(data, TimeSeriesData):
        if target not in data.static:
            raise BadInputError(
                f"--target {target!r} is not a static column of this time series; static columns: "
                f"{', '.join(data.static) or 'none'} (a class must be constant within an entity)"
            )
        values = data.frame.drop_duplicates(data.entity)[target]
    else:
        if target not in data.frame.columns:
            raise BadInputError(f"--target {target!r} is not a column; columns: {', '.join(data.frame.columns)}")
        if data.profile.column(target).kind not in ("categorical", "boolean", "integer"):
            raise BadInputError(f"--target {target!r} is continuous; balancing needs a class column")
        values = data.frame[target]
    return values.dropna().value_counts()


def balance_plan(data: SourceData, target: str) -> dict[Any, int]:
    """{class: records to add} for every class smaller than the largest."""
    counts = class_counts(data, target)
    top = int(counts.max())
    return {_plain(value): top - int(n) for value, n in counts.items() if n < top}


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def restrict(data: SourceData, column: str, values: list[Any]) -> SourceData:
    """Only the records whose `column` is one of `values`: the real data a conditional
    or balancing run is compared with."""
    if isinstance(data, ImageData):
        keep = np.isin(data.labels, values)
        return ImageData(images=data.images[keep], labels=data.labels[keep], label_name=data.label_name)
    if isinstance(data, TimeSeriesData):
        frame = data.frame[data.frame[column].isin(values)].reset_index(drop=True)
        return TimeSeriesData(frame=frame, profile=data.profile, entity=data.entity, time=data.time,
                              static=list(data.static), features=list(data.features))
    return TabularData(frame=data.frame[data.frame[column].isin(values)].reset_index(drop=True), profile=data.profile)


def reference_data(
    train: SourceData, holdout: SourceData, *, conditions: dict[str, Any] | None,
    balance: tuple[str, list[Any]] | None = None,
) -> tuple[SourceData, SourceData]:
    """The real (train, holdout) a run's output is validated against: only the classes
    it generated when it was conditional or balancing, everything otherwise."""
    if balance:
        column, values = balance
        train, holdout = restrict(train, column, values), restrict(holdout, column, values)
    for column, value in (conditions or {}).items():
        train, holdout = restrict(train, column, [value]), restrict(holdout, column, [value])
    return train, holdout
