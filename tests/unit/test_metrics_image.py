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
from validators.metrics.privacy import dcr_share, privacy_metrics
from validators.metrics.representation import ImageEncoder, fit_vectors
from tests.judge import failing
from validators.thresholds import DCR_SANITY, DEFAULTS, PRIVACY as RECORD_PRIVACY

BOUNDS = DEFAULTS["image"]
FIDELITY = {k: b for k, b in BOUNDS.items() if k.startswith("fidelity.")}
PRIVACY = dict(RECORD_PRIVACY)  # what privacy_metrics computes on encoded records



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
    assert failing("image", metrics, BOUNDS) == set()


@pytest.mark.parametrize("labelled", [True, False], ids=["labels", "transform-task"])
def test_pixel_shuffled_digits_fail_fidelity(digits, labelled):
    train = digits["train"] if labelled else _unlabelled(digits["train"])
    shuffled, unseen = _pixel_shuffled(train), digits["fresh"] if labelled else _unlabelled(digits["fresh"])
    bad = failing("image", image_fidelity(train, train, shuffled), FIDELITY)
    assert {"fidelity.frechet_distance", "fidelity.coverage"} <= set(bad), bad
    assert "fidelity.pixel_histogram_tvd" not in bad  # same pixels, other places: the histogram is blind to it
    assert failing("image", image_fidelity(train, train, unseen), FIDELITY) == set()


def test_training_images_as_synthetic_fail_privacy(digits):
    copies = privacy_metrics(*fit_vectors(digits["train"], digits["holdout"], digits["train"]))
    assert set(failing("image", copies, PRIVACY)) == set(PRIVACY)
    unseen = privacy_metrics(*fit_vectors(digits["train"], digits["holdout"], digits["fresh"]))
    assert failing("image", unseen, PRIVACY) == set()


def test_histogram_distance_and_shape_check(digits):
    train = digits["train"].images
    assert pixel_histogram_tvd(train, train) == 0.0
    assert pixel_histogram_tvd(train, 255 - train) > 0.3  # dark strokes on light: other intensities
    wrong = ImageData(np.zeros((10, 16, 16, 1), dtype=np.uint8))
    with pytest.raises(BadInputError, match="size"):
        compute_metrics(digits["source"], digits["train"], digits["holdout"], wrong)


def _shifted(images: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """Moved by (dy, dx) pixels, the uncovered edge black."""
    out = np.zeros_like(images)
    h, w = images.shape[1:3]
    out[:, max(dy, 0): h + min(dy, 0), max(dx, 0): w + min(dx, 0)] = \
        images[:, max(-dy, 0): h + min(-dy, 0), max(-dx, 0): w + min(-dx, 0)]
    return out


def test_privacy_space_treats_train_and_holdout_alike(digits):
    """Swapping the roles of train and holdout changes no distance: the space is fitted
    on both pooled, never on the training images alone."""
    train, holdout, fresh = digits["train"], digits["holdout"], digits["fresh"]
    a = fit_vectors(train, holdout, fresh)
    b = fit_vectors(holdout, train, fresh)
    d = lambda x, y: np.linalg.norm(x[:50, None] - y[None, :50], axis=-1)  # noqa: E731
    np.testing.assert_allclose(d(a[2], a[0]), d(b[2], b[1]), atol=1e-3)
    np.testing.assert_allclose(d(a[2], a[1]), d(b[2], b[0]), atol=1e-3)


def test_noise_and_unseen_digits_pass_dcr_while_posed_copies_fail(digits):
    """Both ways on real digits: pure noise and unseen real digits sit no closer to train
    than to the holdout; training digits copied, flipped or moved by a pixel do."""
    train, holdout = digits["train"], digits["holdout"]
    rng = np.random.default_rng(0)
    picked = train.images[rng.choice(len(train), len(digits["fresh"]), replace=False)]
    noise = rng.integers(0, 256, picked.shape).astype(np.uint8)
    matched = np.clip(rng.normal(train.images.mean(), train.images.std(), picked.shape), 0, 255).astype(np.uint8)
    bound = DCR_SANITY

    encoder = ImageEncoder().fit(train, holdout)  # what fit_vectors does, fitted once here
    real = [encoder.transform(d) for d in (train, holdout)]

    def share(images: np.ndarray) -> float:
        return dcr_share(*real, encoder.transform(ImageData(images)))

    for name, images in {"fresh": digits["fresh"].images, "uniform noise": noise, "matched noise": matched}.items():
        assert share(images) <= bound, name
    for name, images in {"copied": picked, "h-flipped": picked[:, :, ::-1], "v-flipped": picked[:, ::-1],
                         "rotated 180": picked[:, ::-1, ::-1], "shifted right": _shifted(picked, 0, 1),
                         "shifted left": _shifted(picked, 0, -1)}.items():
        assert share(images) > bound, name


def test_a_feature_dead_on_real_images_cannot_blow_up_the_frechet_distance(digits):
    """A unit constant on the real images (here: the always-black corner pixel as a
    feature) carries nothing about them; one synthetic image that lights it must not turn
    the Fréchet distance from ~1 into thousands (it did: 9,499 on a digits run)."""
    import torch

    from validators.metrics.image import StandardizedFeatures, frechet_distance, to_tensor

    class Pixels(torch.nn.Module):  # the 64 pixels of an 8x8 digit as features
        def features(self, x: torch.Tensor) -> torch.Tensor:
            return x.float().flatten(1)

    real, fresh = digits["train"].images, digits["fresh"].images.copy()
    assert (real[:, 0, 0] == 0).all()  # the corner is black on every real digit: a dead feature
    feats = Pixels().features(to_tensor(real))
    extractor = StandardizedFeatures(Pixels(), feats.mean(0), feats.std(0).clamp(min=1e-6))
    before = frechet_distance(extractor, real, fresh)
    fresh[0, 0, 0] = 255
    after = frechet_distance(extractor, real, fresh)
    assert before < 10 and abs(after - before) < 1e-3 * max(before, 1)
    assert not extractor.alive[0] and extractor.alive.sum() > 32
