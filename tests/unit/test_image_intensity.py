"""The intensity map (generators/image/base.py) on real digits at 28x28, what a user's
`source.size: [28, 28]` gives: it hands generated pixels the source's grey-level
distribution, and the pixel-histogram bound it brings image/gan under still fails
clearly wrong images (noise, inverted intensities) and passes unseen real digits."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from generators import get
from generators.image.base import apply_intensity_map, intensity_map, to_uint8
from pipeline.core.data import ImageData
from pipeline.core.spec import SourceSpec
from pipeline.sources import load_source
from pipeline.split import split_source
from tests.conftest import ROOT
from validators.metrics.image import pixel_histogram_tvd
from validators.thresholds import DEFAULTS

BOUND = DEFAULTS["image"]["fidelity.pixel_histogram_tvd"].max
GAN_STEPS = 150  # ~20 CPU s at 28x28; its samples are blobs, but their grey levels are a tanh's


@pytest.fixture(scope="module")
def digits28() -> tuple[ImageData, ImageData]:
    """(train, holdout) of scikit-learn's 1,797 digits resized to 28x28 by the source
    loader: 256 grey levels, 34 % of pixels exactly 0."""
    spec = SourceSpec(modality="image", path=ROOT / "data" / "sources" / "digits.parquet", size=(28, 28))
    return split_source(load_source(spec), 0.2, seed=0)


def _noise(n: int, seed: int) -> torch.Tensor:
    return torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_the_map_gives_uniform_noise_the_sources_grey_levels(digits28):
    train, _ = digits28
    table = intensity_map(_noise(300, 0), train.images)
    fresh = _noise(300, 1)
    assert pixel_histogram_tvd(train.images, to_uint8(fresh)) > 0.3
    assert pixel_histogram_tvd(train.images, to_uint8(apply_intensity_map(fresh, table))) < 0.02  # real: 0.01


def test_an_output_many_pixels_share_goes_to_the_middle_of_their_ranks(digits28):
    """Half the pixels clamped at exactly -1 (an atom): the middle of their ranks is the
    25th percentile, inside the source's 34 % of zeros. Sent to the atom's top end (the
    50th percentile) they would all be a mid grey."""
    train, _ = digits28
    generated = torch.cat([torch.full((150, 1, 28, 28), -1.0), _noise(150, 0)])
    mapped = to_uint8(apply_intensity_map(generated, intensity_map(generated, train.images)))
    assert np.all(mapped[:150] == 0)
    assert pixel_histogram_tvd(train.images, mapped) < 0.2


def test_the_histogram_bound_passes_real_and_mapped_gan_digits_and_fails_wrong_grey_levels(digits28):
    train, holdout = digits28
    gan = get("image/gan")(device="cpu", steps=GAN_STEPS).fit(train)
    mapped = next(gan.sample(len(holdout), seed=2))
    gan.intensity_map_ = []
    raw = next(gan.sample(len(holdout), seed=2))
    inverted = 255 - holdout.images
    noise = np.random.default_rng(0).integers(0, 256, holdout.images.shape, dtype=np.uint8)
    tvd = {name: pixel_histogram_tvd(train.images, images) for name, images in
           [("holdout", holdout.images), ("mapped", mapped.images), ("raw", raw.images),
            ("inverted", inverted), ("noise", noise)]}
    assert tvd["holdout"] < BOUND and tvd["mapped"] < BOUND, tvd
    assert min(tvd["raw"], tvd["inverted"], tvd["noise"]) > BOUND, tvd
