"""What the gate rejects, for tests that judge metrics directly: the gate's own
functions (validators.gate), never a second judge."""

from __future__ import annotations

from validators.gate import metric_bounds, metric_failures
from validators.thresholds import Bound, thresholds_for


def failing(modality: str, metrics: dict[str, float], bounds: dict[str, Bound]) -> set[str]:
    """The metrics of `bounds` the gate rejects; fidelity metrics that do not apply to the
    data are dropped as validate_run drops them (validators.gate.metric_bounds)."""
    applicable = metric_bounds(modality, None, None, metrics)
    bounds = {k: b for k, b in bounds.items() if k in applicable or k.startswith("privacy.")}
    suites = tuple(sorted({k.split(".")[0] for k in bounds}))
    return {f.target for f in metric_failures(metrics, bounds, suites)}


def privacy_failures(modality: str, metrics: dict[str, float]) -> set[str]:
    """The privacy metrics the gate rejects under `modality`'s default thresholds."""
    return {f.target for f in metric_failures(metrics, thresholds_for(modality), ("privacy",))}
