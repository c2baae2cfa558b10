"""Default thresholds: complete, documented, consistent with the metric names, overridable."""

from __future__ import annotations

import pytest

from pipeline.core.errors import SpecError
from validators.metrics import compute_metrics
from validators.gate import metric_failures
from validators.thresholds import DEFAULTS, REPORTED_PRIVACY, Bound, thresholds_for

# Reported for context, deliberately not gated: raw rates whose meaning depends on the
# data, distances (sanity checks beside the attacks), anonymeter's point risks and upper
# CI bounds (the gate reads the lower bound).
REPORT_ONLY = {*REPORTED_PRIVACY, "fidelity.predictive_mae", "fidelity.density"}


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
    bounds = thresholds_for("tabular", {"fidelity.detection_auc": 0.8, "privacy.membership_auc": {"min": 0.1}})
    assert bounds["fidelity.detection_auc"] == Bound(None, 0.8, "job override")
    assert bounds["privacy.membership_auc"] == Bound(0.1, 0.65, "job override")
    assert DEFAULTS["tabular"]["fidelity.detection_auc"].max == 0.7  # defaults untouched
    with pytest.raises(SpecError, match="unknown metric"):
        thresholds_for("image", {"fidelity.detection_auc": 0.8})
    with pytest.raises(SpecError, match="only 'min' and 'max'"):
        thresholds_for("tabular", {"fidelity.detection_auc": {"upper": 1}})


def test_the_gate_judges_each_side_and_fails_a_missing_metric():
    bounds = {"privacy.x": Bound(0.5, None, "low"), "privacy.y": Bound(None, 0.5, "high"),
              "privacy.z": Bound(0.0, 1.0, "both")}
    bad = {f.target: f for f in metric_failures({"privacy.x": 0.4, "privacy.y": 0.6}, bounds, ("privacy",))}
    assert set(bad) == {"privacy.x", "privacy.y", "privacy.z"}  # z was not computed: it fails too
    assert "0.4" in bad["privacy.x"].observed and bad["privacy.y"].why == "high"
    assert metric_failures({"privacy.x": 0.5, "privacy.y": 0.5, "privacy.z": 1.0}, bounds, ("privacy",)) == []
    # a suite with no bound at all fails rather than passing vacuously
    assert [f.check for f in metric_failures({"privacy.x": 0.5}, bounds, ("fidelity",))] == ["no threshold defined"]


def test_every_gated_privacy_bound_cites_the_calibration():
    for bounds in DEFAULTS.values():
        for name, b in bounds.items():
            if name.startswith("privacy.") and name != "privacy.exact_copy_excess":
                assert "pass" in b.why and "fail" in b.why, (name, b.why)
