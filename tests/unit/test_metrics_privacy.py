"""Privacy metrics on real records (digits pixels, penguins rows): the building blocks
behave as their definitions say, and the bounds are the same for every modality."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import cdist
from sklearn.datasets import load_digits

from validators.metrics import privacy
from validators.metrics.privacy import dcr_share, exact_copy_rate, membership_auc, nearest, nndr, privacy_metrics
from validators.metrics.representation import TabularEncoder
from validators.thresholds import DEFAULTS


@pytest.fixture(scope="module")
def pixels() -> np.ndarray:
    x = load_digits().data.astype(np.float32) / 16.0
    return x[np.random.default_rng(0).permutation(len(x))]


def test_chunked_nearest_neighbours_match_the_full_distance_matrix(pixels, monkeypatch):
    monkeypatch.setattr(privacy, "QUERY_CHUNK", 7)  # many chunks, uneven last one
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
    assert membership_auc(train[:200], holdout, copies) > 0.9
    assert 0.4 < membership_auc(train[:200], holdout, unseen) < 0.6


def test_near_copies_escape_the_copy_count_but_not_the_attack(pixels):
    """PITFALLS: distances can look fine while an attack succeeds; jittered copies are the case."""
    train, holdout = pixels[:800], pixels[800:1000]
    jittered = train + np.random.default_rng(0).normal(0, 0.01, train.shape).astype(np.float32)
    metrics = privacy_metrics(train, holdout, jittered)
    assert metrics["privacy.exact_copy_excess"] == 0.0
    bounds = DEFAULTS["image"]
    assert metrics["privacy.membership_auc"] > bounds["privacy.membership_auc"].max
    assert metrics["privacy.dcr_share"] > bounds["privacy.dcr_share"].max


def test_natural_repeats_are_not_counted_as_leaks(penguins):
    """Records that repeat in real data (holdout rows equal to train rows) set the baseline."""
    frame = penguins.frame[["species", "island", "sex"]].sample(frac=1.0, random_state=0)
    enc = TabularEncoder(penguins.profile, list(frame.columns)).fit(frame.iloc[:200])
    train, holdout = enc.transform(frame.iloc[:200]), enc.transform(frame.iloc[200:])
    metrics = privacy_metrics(train, holdout, holdout)
    assert metrics["privacy.exact_copy_rate"] > 0.9  # three categories: most combinations repeat
    assert metrics["privacy.exact_copy_excess"] == 0.0


def test_privacy_bounds_are_shared_by_every_modality():
    names = [{k: v for k, v in bounds.items() if k.startswith("privacy.")} for bounds in DEFAULTS.values()]
    assert names[0] and all(n == names[0] for n in names)
