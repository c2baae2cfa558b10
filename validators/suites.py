"""The fidelity and privacy suites: Great Expectations suites on a one-row table of
computed metrics (one column per metric), one expectation per threshold.

`ExpectColumnMaxToBeBetween` on a one-row table checks the one value and reports it as
`observed_value`. A metric missing from the table fails (GX cannot find the column),
and a NaN fails too (the max of no values is None): nothing passes vacuously."""

from __future__ import annotations

import math
from typing import Any, Literal

import pandas as pd

from validators import gx
from validators.thresholds import Bound

SuiteName = Literal["fidelity", "privacy"]
METRIC_SUITES: tuple[SuiteName, ...] = ("fidelity", "privacy")


def metrics_table(metrics: dict[str, float]) -> pd.DataFrame:
    """The one-row table the metric suites run on; non-finite values become NaN."""
    row = {name: float(v) if v is not None and math.isfinite(float(v)) else math.nan for name, v in metrics.items()}
    return pd.DataFrame([row], columns=sorted(row), dtype=float)


def _describe(bound: Bound) -> str:
    if bound.min is not None and bound.max is not None:
        return f"between {bound.min:g} and {bound.max:g}"
    if bound.min is not None:
        return f"at least {bound.min:g}"
    if bound.max is not None:
        return f"at most {bound.max:g}"
    return "computed (no bound: reported only)"


def suite_bounds(name: SuiteName, bounds: dict[str, Bound]) -> dict[str, Bound]:
    """The bounds that belong to suite `name`: metric names start with "<name>."."""
    return {m: b for m, b in sorted(bounds.items()) if m.startswith(f"{name}.")}


def build_metric_suite(name: SuiteName, bounds: dict[str, Bound]) -> Any:
    """One expectation per bound of suite `name` (bounds of the other suite are ignored,
    so the whole `thresholds_for(...)` dict can be passed). Each expectation's meta keeps
    the bound's `why`, so a stored suite explains its own numbers."""
    if name not in METRIC_SUITES:
        raise ValueError(f"metric suite must be one of {METRIC_SUITES}, got {name!r}")
    exps = []
    for metric, bound in suite_bounds(name, bounds).items():
        meta = {"check": "threshold", "bound": _describe(bound), "why": bound.why}
        if bound.min is None and bound.max is None:
            exps.append(gx.expectation("ExpectColumnValuesToNotBeNull", column=metric, meta=meta))
        else:
            exps.append(gx.expectation("ExpectColumnMaxToBeBetween", column=metric,
                                       min_value=bound.min, max_value=bound.max, meta=meta))
    return gx.new_suite(name, exps, meta={"table": "one row of computed metrics"})
