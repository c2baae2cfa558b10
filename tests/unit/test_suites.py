"""Fidelity and privacy suites on a one-row metrics table: bounds decide, a missing or
NaN metric fails, and every expectation carries the reason for its bound."""

from __future__ import annotations

import math

from validators import gx
from validators.outcome import failures
from validators.suites import build_metric_suite, metrics_table
from validators.thresholds import Bound

BOUNDS = {
    "fidelity.detection_auc": Bound(None, 0.75, "a classifier must not tell real from synthetic easily"),
    "fidelity.column_similarity_mean": Bound(0.8, None, "marginals close to the source"),
    "privacy.dcr_share": Bound(0.3, 0.7, "about as close to train as to holdout"),
    "privacy.membership_auc": Bound(None, 0.6, "membership barely guessable"),
}
GOOD = {"fidelity.detection_auc": 0.55, "fidelity.column_similarity_mean": 0.93,
        "privacy.dcr_share": 0.52, "privacy.membership_auc": 0.51}


def check(name: str, metrics: dict[str, float]) -> dict:
    return gx.validate(build_metric_suite(name, BOUNDS), metrics_table(metrics))


def test_good_metrics_pass_both_suites():
    assert check("fidelity", GOOD)["success"]
    assert check("privacy", GOOD)["success"]


def test_each_suite_holds_only_its_own_bounds_with_why_in_meta():
    suite = build_metric_suite("privacy", BOUNDS)
    assert sorted(e.column for e in suite.expectations) == ["privacy.dcr_share", "privacy.membership_auc"]
    assert {e.meta["why"] for e in suite.expectations} == {BOUNDS["privacy.dcr_share"].why,
                                                          BOUNDS["privacy.membership_auc"].why}
    assert len(gx.suite_from_json(gx.suite_to_json(suite)).expectations) == 2


def test_out_of_bounds_metric_fails_with_observed_value_and_reason():
    leaky = {**GOOD, "privacy.dcr_share": 0.97}
    result = check("privacy", leaky)
    assert not result["success"] and check("fidelity", leaky)["success"]
    (failure,) = failures("privacy", result)
    assert failure.target == "privacy.dcr_share" and failure.observed == "0.97"
    assert failure.expected == "between 0.3 and 0.7" and failure.why == BOUNDS["privacy.dcr_share"].why
    low = {**GOOD, "fidelity.column_similarity_mean": 0.4}
    assert [f.target for f in failures("fidelity", check("fidelity", low))] == ["fidelity.column_similarity_mean"]


def test_missing_or_nan_metric_fails_not_vacuously():
    missing = {k: v for k, v in GOOD.items() if k != "fidelity.detection_auc"}
    (failure,) = failures("fidelity", check("fidelity", missing))
    assert failure.target == "fidelity.detection_auc" and failure.observed == "column not found"
    nan = {**GOOD, "privacy.membership_auc": math.nan}
    (failure,) = failures("privacy", check("privacy", nan))
    assert failure.target == "privacy.membership_auc" and failure.observed == "no value (NaN)"


def test_unbounded_metric_must_still_be_computed():
    bounds = {"fidelity.correlation_diff": Bound(None, None, "reported only")}
    suite = build_metric_suite("fidelity", bounds)
    assert gx.validate(suite, metrics_table({"fidelity.correlation_diff": 0.1}))["success"]
    assert not gx.validate(suite, metrics_table({"fidelity.correlation_diff": math.nan}))["success"]
