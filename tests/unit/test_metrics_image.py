"""Image metrics on scikit-learn's handwritten digits (8 x 8, labels): unseen digits pass,
pixel-shuffled digits fail fidelity, the training images passed off as synthetic fail privacy."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_digits

from pipeline.core.data import ImageData
from pipeline.core.errors import BadInputError
from validators.metrics import compute_metrics
from validators.metrics.image import image_fidelity, pixel_histogram_tvd
from validators.metrics.privacy import privacy_metrics
from validators.metrics.representation import fit_vectors
from validators.gate import metric_bounds, metric_failures
from validators.thresholds import DEFAULTS, PRIVACY as RECORD_PRIVACY

BOUNDS = DEFAULTS["image"]
FIDELITY = {k: b for k, b in BOUNDS.items() if k.startswith("fidelity.")}
PRIVACY = dict(RECORD_PRIVACY)  # what privacy_metrics computes on encoded records


def failing(metrics: dict[str, float], bounds: dict) -> set[str]:
    """The metrics of `bounds` the gate rejects; fidelity metrics that do not apply to the
    data are dropped as validate_run drops them (validators.gate.metric_bounds)."""
    applicable = metric_bounds("image", None, None, metrics)
    bounds = {k: b for k, b in bounds.items() if k in applicable or k.startswith("privacy.")}
    suites = tuple(sorted({k.split(".")[0] for k in bounds}))
    return {f.target for f in metric_failures(metrics, bounds, suites)}


@pytest.fixture(scope="module")
def digits() -> dict[str, ImageData]:
    d = load_digits()
    images = np.round(d.images * (255 / 16)).astype(np.uint8)[..., None]
    idx = np.random.default_rng(0).permutation(len(images))
    a, b = int(0.6 * len(idx)), int(0.8 * len(idx))
    part = lambda i: ImageData(images[i], d.target[i], "label")  # noqa: E731
    return {"source": part(idx), "train": part(idx[:a]), "holdout": part(idx[a:b]), "fresh": part(idx[b:])}


def _pixel_shuffled(data: ImageData) -> ImageData:
    rng = np.random.default_rng(1)
    flat = data.images.reshape(len(data), -1).copy()
    for row in flat:
        rng.shuffle(row)
    return ImageData(flat.reshape(data.images.shape), data.labels, data.label_name)


def _unlabelled(data: ImageData) -> ImageData:
    return ImageData(data.images)


def test_unseen_digits_pass_fidelity_and_privacy(digits):
    metrics = compute_metrics(digits["source"], digits["train"], digits["holdout"], digits["holdout"])
    assert set(BOUNDS) <= set(metrics)
    assert failing(metrics, BOUNDS) == set()


@pytest.mark.parametrize("labelled", [True, False], ids=["labels", "transform-task"])
def test_pixel_shuffled_digits_fail_fidelity(digits, labelled):
    train = digits["train"] if labelled else _unlabelled(digits["train"])
    shuffled, unseen = _pixel_shuffled(train), digits["fresh"] if labelled else _unlabelled(digits["fresh"])
    bad = failing(image_fidelity(train, train, shuffled), FIDELITY)
    assert {"fidelity.frechet_distance", "fidelity.coverage"} <= set(bad), bad
    assert "fidelity.pixel_histogram_tvd" not in bad  # same pixels, other places: the histogram is blind to it
    assert failing(image_fidelity(train, train, unseen), FIDELITY) == set()


def test_training_images_as_synthetic_fail_privacy(digits):
    copies = privacy_metrics(*fit_vectors(digits["train"], digits["holdout"], digits["train"]))
    assert set(failing(copies, PRIVACY)) == set(PRIVACY)
    unseen = privacy_metrics(*fit_vectors(digits["train"], digits["holdout"], digits["fresh"]))
    assert failing(unseen, PRIVACY) == set()


def test_histogram_distance_and_shape_check(digits):
    train = digits["train"].images
    assert pixel_histogram_tvd(train, train) == 0.0
    assert pixel_histogram_tvd(train, 255 - train) > 0.3  # dark strokes on light: other intensities
    wrong = ImageData(np.zeros((10, 16, 16, 1), dtype=np.uint8))
    with pytest.raises(BadInputError, match="size"):
        compute_metrics(digits["source"], digits["train"], digits["holdout"], wrong)
