"""Fidelity and privacy metrics for every modality, as one flat table of floats.

`compute_metrics` is what the suites and the gate read: names are "fidelity.<metric>"
and "privacy.<metric>", values plain floats. A metric that cannot be computed on the
given data (no target column, one numeric column, ...) is left out and the reason
logged, never reported as NaN."""

from __future__ import annotations

import logging
import math
from dataclasses import replace

from pipeline.core.data import ImageData, SourceData, TabularData, TimeSeriesData
from pipeline.core.errors import BadInputError
from pipeline.core.threads import limited_threads
from validators.metrics.privacy import all_privacy_metrics

log = logging.getLogger(__name__)

# Metric groups that need nothing from each other: the flow computes them as separate
# tasks (on Dask, on separate workers); together they are `compute_metrics`.
GROUPS = ("fidelity", "privacy")


def _fidelity(
    source: SourceData, train: SourceData, holdout: SourceData, synthetic: SourceData, target: str | None, seed: int
) -> dict[str, float]:
    if isinstance(train, TabularData):
        from validators.metrics.tabular import tabular_fidelity

        return tabular_fidelity(
            train.frame, holdout.frame, synthetic.frame, source.profile, target=target, seed=seed
        )
    if isinstance(train, TimeSeriesData):
        from validators.metrics.timeseries import timeseries_fidelity

        return timeseries_fidelity(train, holdout, synthetic, seed=seed)
    from validators.metrics.image import image_fidelity

    return image_fidelity(train, holdout, synthetic, seed=seed)


def _check(source: SourceData, train: SourceData, holdout: SourceData, synthetic: SourceData, target: str | None) -> None:
    kinds = {type(d).__name__ for d in (source, train, holdout, synthetic)}
    if len(kinds) != 1:
        raise BadInputError(f"metrics need source, train, holdout and synthetic of one modality, got {sorted(kinds)}")
    if min(len(train), len(holdout), len(synthetic)) < 2:
        raise BadInputError(
            f"metrics need at least 2 records in train, holdout and synthetic, got "
            f"{len(train)}, {len(holdout)}, {len(synthetic)}: sample more rows or lower validation.holdout"
        )
    if target is not None and not isinstance(source, TabularData):
        raise BadInputError("a utility target applies to tabular data only: remove validation target")
    if target is not None and target not in source.profile.names:
        raise BadInputError(f"utility target {target!r} is not a column; known: {', '.join(source.profile.names)}")
    if isinstance(source, ImageData) and {d.images.shape[1:] for d in (train, holdout, synthetic)} != {
        source.images.shape[1:]
    }:
        raise BadInputError("synthetic images must have the source's size and channels: resize them first")


def _without_ids(data: SourceData) -> SourceData:
    """A table without its id columns: fresh ids share nothing with real ones by design
    (the contract checks them), so they have no distribution to compare or leak."""
    if not isinstance(data, TabularData) or not data.profile.of_kind("id"):
        return data
    ids = [c.name for c in data.profile.of_kind("id")]
    profile = data.profile.model_copy(update={"columns": [c for c in data.profile.columns if c.kind != "id"]})
    return replace(data, frame=data.frame.drop(columns=ids), profile=profile)


def compute_metrics(
    source: SourceData,
    train: SourceData,
    holdout: SourceData,
    synthetic: SourceData,
    *,
    target: str | None = None,
    seed: int = 0,
    groups: tuple[str, ...] = GROUPS,
    given_columns: list[str] | None = None,
) -> dict[str, float]:
    """Every fidelity and privacy metric of `synthetic`, as {"fidelity.x": float, "privacy.y": float}
    (only those of `groups`: each group's numbers are the same computed alone or together).

    `source` is the whole source (its profile), `train` / `holdout` the split the
    generator was fitted on / kept away from. Fidelity compares synthetic with train;
    privacy attacks train through the synthetic data with the holdout as the no-leak
    yardstick, on encoded records and, for column leaks and anonymeter, on the frames
    with the source's profile (validators/metrics/privacy.py lists what runs where).
    `given_columns` (time-varying covariates the run was given, carried into the output
    unchanged) are left out of the privacy metrics: copying them is what was asked, so
    only what the model generated is attacked. Same inputs and seed, same numbers."""
    _check(source, train, holdout, synthetic, target)
    source, train, holdout, synthetic = (_without_ids(d) for d in (source, train, holdout, synthetic))
    unknown = set(groups) - set(GROUPS)
    if unknown:
        raise BadInputError(f"metric groups {sorted(unknown)} unknown; known: {', '.join(GROUPS)}")
    metrics: dict[str, float] = {}
    with limited_threads():
        if "fidelity" in groups:
            metrics.update(_fidelity(source, train, holdout, synthetic, target, seed))
        if "privacy" in groups:
            if given_columns:
                source, train, holdout, synthetic = (d.without(given_columns) for d in (source, train, holdout, synthetic))
            metrics.update(all_privacy_metrics(source, train, holdout, synthetic, seed=seed))
    out = {}
    for name, value in metrics.items():
        value = float(value)
        if math.isfinite(value):
            out[name] = value
        else:
            log.info("metric %s left out: it cannot be computed on this data (%s)", name, value)
    return out


__all__ = ["GROUPS", "compute_metrics"]
