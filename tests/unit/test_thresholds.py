"""Default thresholds: complete, documented, consistent with the metric names, overridable."""

from __future__ import annotations

import pytest

from pipeline.core.errors import SpecError
from validators.metrics import compute_metrics
from validators.thresholds import DEFAULTS, Bound, failing, thresholds_for

# Reported for context, deliberately not gated: raw rates whose meaning depends on the
# data (their gated forms are exact_copy_excess, nndr_vs_holdout, predictive_ratio).
REPORT_ONLY = {"privacy.exact_copy_rate", "privacy.nndr", "fidelity.predictive_mae", "fidelity.density"}


@pytest.mark.parametrize("modality", ["tabular", "timeseries", "image"])
def test_every_bound_is_one_sided_or_ordered_and_says_why(modality):
    bounds = DEFAULTS[modality]
    assert bounds
    for name, b in bounds.items():
        assert name.split(".")[0] in ("fidelity", "privacy") and name.count(".") == 1
        assert (b.min is not None) or (b.max is not None), name
        assert b.min is None or b.max is None or b.min < b.max, name
        assert len(b.why) > 30, name


def test_tabular_metric_names_match_the_bounds(penguins):
    frame = penguins.frame.sample(frac=1.0, random_state=0).reset_index(drop=True)
    part = lambda a, b: type(penguins)(frame=frame.iloc[a:b].reset_index(drop=True), profile=penguins.profile)  # noqa: E731
    metrics = compute_metrics(penguins, part(0, 200), part(200, 270), part(270, None), target="species")
    assert set(metrics) - REPORT_ONLY == set(DEFAULTS["tabular"])


def test_overrides_replace_the_set_side_or_both():
    bounds = thresholds_for("tabular", {"fidelity.detection_auc": 0.8, "privacy.nndr_vs_holdout": {"min": 0.5}})
    assert bounds["fidelity.detection_auc"] == Bound(None, 0.8, "job override")
    assert bounds["privacy.nndr_vs_holdout"].min == 0.5
    assert DEFAULTS["tabular"]["fidelity.detection_auc"].max == 0.7  # defaults untouched
    with pytest.raises(SpecError, match="unknown metric"):
        thresholds_for("image", {"fidelity.detection_auc": 0.8})
    with pytest.raises(SpecError, match="only 'min' and 'max'"):
        thresholds_for("tabular", {"fidelity.detection_auc": {"upper": 1}})


def test_failing_reports_each_side_and_skips_missing_metrics():
    bounds = {"a.x": Bound(0.5, None, "low"), "a.y": Bound(None, 0.5, "high"), "a.z": Bound(0.0, 1.0, "both")}
    assert failing({"a.x": 0.4, "a.y": 0.6}, bounds) == {"a.x": "value 0.4 < min 0.5", "a.y": "value 0.6 > max 0.5"}
    assert failing({"a.x": 0.5, "a.y": 0.5, "a.z": 1.0}, bounds) == {}
