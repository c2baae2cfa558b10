"""The privacy gate calibrated both ways on bundled real data, judged by the gate itself
(`validators.gate.metric_failures` with the default thresholds).

Must fail privacy: training records copied; copied with small noise; an ID column
copied while every other column is fresh; a long series replayed from its training
block. Must pass privacy: the real holdout; fresh real records (a part neither fitted
nor held out); independent noise of the right shape (which fails fidelity instead);
samples of a project generator fitted on a disjoint part of the source.

Penguins (tabular), World Bank fertility by country (time series, whole countries held
out), sunspots cut into 24-year windows at stride 1 (one long series, time blocks with
a one-window gap), digits (images). bench/privacy_calibration.py repeats this on the BENCH.md
corpus."""

from __future__ import annotations

import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.core.data import ImageData, TabularData, TimeSeriesData
from pipeline.core.schema import profile_table
from pipeline.core.spec import SourceSpec
from tests.judge import privacy_failures
from tests.privacy_cases import jitter, moved, pixel_jitter, pixel_noise, sampled, scaled, series_noise, table_noise
from validators.gate import metric_bounds, metric_failures
from validators.metrics import compute_metrics
from validators.metrics.privacy import all_privacy_metrics

ROOT = Path(__file__).resolve().parents[2]


def fidelity_failures(modality: str, metrics: dict[str, float]) -> set[str]:
    bounds = metric_bounds(modality, None, None, metrics)
    return {f.target for f in metric_failures(metrics, bounds, ("fidelity",))}


def _thirds(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """train 50 % / holdout 25 % / other 25 % of a seeded permutation."""
    idx = np.random.default_rng(0).permutation(n)
    return idx[: n // 2], idx[n // 2 : 3 * n // 4], idx[3 * n // 4 :]


# --- tabular: penguins --------------------------------------------------------------

@pytest.fixture(scope="module")
def table(penguins) -> dict[str, TabularData]:
    a, b, c = _thirds(len(penguins))
    return {"source": penguins, "train": penguins.take(a), "holdout": penguins.take(b), "other": penguins.take(c)}


@pytest.fixture(scope="module")
def table_metrics(table) -> dict[str, dict[str, float]]:
    rng = np.random.default_rng(1)
    cases = {
        "copied": table["train"],
        "copied_with_noise": jitter(table["train"], rng),
        "holdout": table["holdout"],
        "other_real": table["other"],
        "noise": table_noise(table["holdout"], table["source"], rng),
        "diffusion_on_other_part": sampled("tabular/diffusion", table["other"], len(table["holdout"])),
    }
    return {k: all_privacy_metrics(table["source"], table["train"], table["holdout"], v) for k, v in cases.items()}


@pytest.mark.parametrize("case", ["copied", "copied_with_noise"])
def test_copied_penguins_fail_privacy_on_the_attacks(table_metrics, case):
    bad = privacy_failures("tabular", table_metrics[case])
    assert {"privacy.membership_auc", "privacy.membership_tpr_at_1fpr_ci_low", "privacy.near_copy_share",
            "privacy.linkability_risk_ci_low", "privacy.inference_risk_ci_low"} <= bad, bad


@pytest.mark.parametrize("case", ["holdout", "other_real", "noise", "diffusion_on_other_part"])
def test_unseen_or_unrelated_penguins_pass_privacy(table_metrics, case):
    assert privacy_failures("tabular", table_metrics[case]) == set()


def test_independent_noise_fails_fidelity_instead(table):
    noise = table_noise(table["holdout"], table["source"], np.random.default_rng(2))
    metrics = compute_metrics(table["source"], table["train"], table["holdout"], noise)
    assert "fidelity.detection_auc" in fidelity_failures("tabular", metrics)
    assert privacy_failures("tabular", metrics) == set()


@pytest.fixture(scope="module")
def id_table(penguins) -> dict[str, TabularData]:
    """300 penguins with a UUID per row, as a user's table with a record id would have."""
    rng = np.random.default_rng(3)
    frame = penguins.frame.iloc[:300].copy()
    frame.insert(0, "record_id", [str(uuid.UUID(int=int(rng.integers(0, 2**63)))) for _ in range(len(frame))])
    data = TabularData(frame=frame, profile=profile_table(frame))
    a, b, c = _thirds(len(data))
    return {"source": data, "train": data.take(a), "holdout": data.take(b), "other": data.take(c)}


def test_real_ids_in_otherwise_fresh_rows_fail_privacy(id_table):
    fresh = id_table["other"].frame.copy()
    ok = all_privacy_metrics(id_table["source"], id_table["train"], id_table["holdout"], id_table["other"])
    assert privacy_failures("tabular", ok) == set()
    fresh["record_id"] = id_table["train"].frame["record_id"].to_numpy()[: len(fresh)]
    leaked = all_privacy_metrics(id_table["source"], id_table["train"], id_table["holdout"],
                                 id_table["other"].with_frame(fresh))
    assert leaked["privacy.column_leak_excess"] == 1.0
    assert "privacy.column_leak_excess" in privacy_failures("tabular", leaked)


# --- time series: fertility by country --------------------------------------------------

@pytest.fixture(scope="module")
def countries() -> dict[str, TimeSeriesData]:
    from pipeline.sources import load_source

    source = load_source(SourceSpec(modality="timeseries", path=ROOT / "data/sources/fertility.csv",
                                    entity="country", time="year"))
    a, b, c = _thirds(len(source))
    return {"source": source, "train": source.take(a), "holdout": source.take(b), "other": source.take(c)}


@pytest.fixture(scope="module")
def country_metrics(countries) -> dict[str, dict[str, float]]:
    rng = np.random.default_rng(4)
    cases = {
        "copied": countries["train"],
        "copied_with_noise": scaled(countries["train"], rng),
        "holdout": countries["holdout"],
        "other_real": countries["other"],
        "noise": series_noise(countries["holdout"], countries["train"], rng),
        "vae_on_other_part": sampled("timeseries/vae", countries["other"], len(countries["holdout"])),
    }
    return {k: all_privacy_metrics(countries["source"], countries["train"], countries["holdout"], v)
            for k, v in cases.items()}


@pytest.mark.parametrize("case", ["copied", "copied_with_noise"])
def test_copied_series_fail_privacy(country_metrics, case):
    bad = privacy_failures("timeseries", country_metrics[case])
    assert {"privacy.membership_auc", "privacy.near_copy_share", "privacy.linkability_risk_ci_low"} <= bad, bad


@pytest.mark.parametrize("case", ["holdout", "other_real", "noise", "vae_on_other_part"])
def test_unseen_or_unrelated_series_pass_privacy(country_metrics, case):
    assert privacy_failures("timeseries", country_metrics[case]) == set()


def test_series_noise_fails_fidelity_instead(countries):
    noise = series_noise(countries["holdout"], countries["train"], np.random.default_rng(5))
    metrics = compute_metrics(countries["source"], countries["train"], countries["holdout"], noise)
    assert {"fidelity.discriminative_score", "fidelity.autocorrelation_diff"} & fidelity_failures("timeseries", metrics)
    assert privacy_failures("timeseries", metrics) == set()


# --- time series: one long series cut into windows -----------------------------------------

WINDOW, GAP = 24, 24  # windows of 24 years at stride 1; one window of time between the blocks


def _windows(frame: pd.DataFrame, start: int, stop: int, profile) -> TimeSeriesData:
    """Stride-1 windows lying wholly in rows [start, stop); window ids keep their position."""
    cut = [frame.iloc[i : i + WINDOW].assign(window=i) for i in range(start, stop - WINDOW + 1)]
    long = pd.concat(cut, ignore_index=True)[["window", "YEAR", "SUNACTIVITY"]]
    return TimeSeriesData(frame=long, profile=profile, entity="window", time="YEAR", static=[], features=["SUNACTIVITY"])


@pytest.fixture(scope="module")
def long_series() -> dict[str, TimeSeriesData]:
    """Yearly sunspot numbers 1700-2008 (statsmodels): train block 1700-1899, holdout 1924-2008."""
    import statsmodels.api as sm

    frame = sm.datasets.sunspots.load_pandas().data.astype({"YEAR": int})
    whole = _windows(frame, 0, len(frame), None)
    profile = profile_table(whole.frame)
    parts = {"source": (0, len(frame)), "train": (0, 200), "holdout": (200 + GAP, len(frame))}
    return {k: _windows(frame, a, b, profile) for k, (a, b) in parts.items()}


def test_a_replayed_long_series_fails_and_its_holdout_passes(long_series):
    s, train, holdout = long_series["source"], long_series["train"], long_series["holdout"]
    replayed = scaled(train, np.random.default_rng(6))  # the real path within 2 % on every date
    bad = privacy_failures("timeseries", all_privacy_metrics(s, train, holdout, replayed))
    assert {"privacy.near_copy_share", "privacy.membership_auc", "privacy.membership_tpr_at_1fpr_ci_low",
            "privacy.inference_risk_ci_low"} <= bad, bad
    assert privacy_failures("timeseries", all_privacy_metrics(s, train, holdout, holdout)) == set()


@pytest.fixture(scope="module")
def long_noise_failures(long_series) -> set[str]:
    s, train, holdout = long_series["source"], long_series["train"], long_series["holdout"]
    noise = series_noise(holdout, s, np.random.default_rng(7))
    return privacy_failures("timeseries", all_privacy_metrics(s, train, holdout, noise))


def test_noise_shaped_like_a_long_series_passes_every_check(long_noise_failures):
    """The holdout block (1924-2008) has more sunspots than the training block: the
    membership attack must not mistake that shift for memorisation."""
    assert long_noise_failures == set()


# --- images: digits ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def digits() -> dict[str, ImageData]:
    from pipeline.sources.image import load_images

    source = load_images(SourceSpec(modality="image", path=ROOT / "data/sources/digits.parquet"))
    a, b, c = _thirds(len(source))
    return {"source": source, "train": source.take(a), "holdout": source.take(b), "other": source.take(c)}


@pytest.fixture(scope="module")
def digit_metrics(digits) -> dict[str, dict[str, float]]:
    rng = np.random.default_rng(8)
    train = digits["train"]
    cases = {
        "copied": train,
        "copied_with_noise": pixel_jitter(train, rng),
        **moved(train),
        "holdout": digits["holdout"],
        "other_real": digits["other"],
        "noise": pixel_noise(train, len(digits["holdout"]), rng),
        "vae_on_other_part": sampled("image/vae", digits["other"], len(digits["holdout"])),
    }
    return {k: all_privacy_metrics(digits["source"], train, digits["holdout"], v) for k, v in cases.items()}


@pytest.mark.parametrize("case", ["copied", "copied_with_noise", "flipped", "shifted_right", "shifted_down",
                                  "shifted_up"])
def test_copied_digits_fail_privacy(digit_metrics, case):
    bad = privacy_failures("image", digit_metrics[case])
    assert {"privacy.membership_auc", "privacy.membership_tpr_at_1fpr_ci_low", "privacy.near_copy_share"} <= bad, bad


@pytest.mark.parametrize("case", ["holdout", "other_real", "noise", "vae_on_other_part"])
def test_unseen_or_unrelated_digits_pass_privacy(digit_metrics, case):
    assert privacy_failures("image", digit_metrics[case]) == set()
