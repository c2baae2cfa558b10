"""Every default threshold of the fidelity and privacy suites, in one place.

A metric name is "<suite>.<metric>" (e.g. "privacy.dcr_share"); a `Bound` says the
range a published dataset must fall in and why. Any bound can be overridden per job
(`validation.thresholds` in the job spec)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from pipeline.errors import SpecError


@dataclass(frozen=True)
class Bound:
    min: float | None
    max: float | None
    why: str


# modality -> metric name -> bound. Filled with calibrated values by the metrics work.
DEFAULTS: dict[str, dict[str, Bound]] = {"tabular": {}, "timeseries": {}, "image": {}}


def thresholds_for(modality: str, overrides: dict[str, Any] | None = None) -> dict[str, Bound]:
    """Defaults for `modality` with a job's overrides applied. An override is a number
    (replaces whichever side is set) or `{min: .., max: ..}`; unknown names are refused."""
    bounds = dict(DEFAULTS[modality])
    for name, value in (overrides or {}).items():
        if name not in bounds:
            raise SpecError(
                f"validation.thresholds: unknown metric {name!r}; known: {', '.join(sorted(bounds))}"
            )
        old = bounds[name]
        if isinstance(value, dict):
            extra = set(value) - {"min", "max"}
            if extra:
                raise SpecError(f"validation.thresholds.{name}: only 'min' and 'max' are allowed, got {sorted(extra)}")
            bounds[name] = replace(old, min=value.get("min", old.min), max=value.get("max", old.max), why="job override")
        elif isinstance(value, (int, float)):
            side = "max" if old.max is not None else "min"
            bounds[name] = replace(old, **{side: float(value)}, why="job override")
        else:
            raise SpecError(f"validation.thresholds.{name}: give a number or {{min, max}}, got {value!r}")
    return bounds
