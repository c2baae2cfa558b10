"""Class balancing: how many records of each minority class to generate so that every
class of a target column has as many records as the largest one.

Tabular: any categorical / boolean column. Time series: a static column (counted per
entity). Images: the label."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from pipeline.core.data import SourceData, split_conditions


def class_counts(data: SourceData, target: str) -> pd.Series:
    """Records per class of `target`, largest first."""
    return data.class_values(target).dropna().value_counts()


def balance_plan(data: SourceData, target: str) -> dict[Any, int]:
    """{class: records to add} for every class smaller than the largest."""
    counts = class_counts(data, target)
    top = int(counts.max())
    return {_plain(value): top - int(n) for value, n in counts.items() if n < top}


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def reference_data(
    train: SourceData, holdout: SourceData, *, conditions: dict[str, Any] | None,
    balance: tuple[str, list[Any]] | None = None,
) -> tuple[SourceData, SourceData]:
    """The real (train, holdout) a run's output is validated against: only the classes
    it generated when it was conditional or balancing, everything otherwise. Covariate
    conditions (paths on time-varying columns) restrict nothing."""
    if balance:
        column, values = balance
        train, holdout = train.restrict(column, values), holdout.restrict(column, values)
    static, _ = split_conditions(conditions, list(getattr(train, "features", [])))
    for column, value in (static or {}).items():
        train, holdout = train.restrict(column, [value]), holdout.restrict(column, [value])
    return train, holdout
