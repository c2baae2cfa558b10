"""The stand-ins the privacy gate is calibrated on, for the calibration test on bundled
data (tests/integration/test_privacy_calibration.py) and the bench on the BENCH.md
corpus (bench/privacy_calibration.py) alike: copies with small noise, training images
moved, independent noise of the right shape, samples of a project generator."""

from __future__ import annotations

import numpy as np
import pandas as pd

from generators import get
from pipeline.core.data import ImageData, SourceData, TabularData, TimeSeriesData
from tests.conftest import FAST_PARAMS

NOISE = 0.02  # "small noise": 2 % of a column's sd (tables), of the value (series)
PIXEL_NOISE = 5  # "small noise" on images: each pixel moved by up to 5 of 255


def jitter(data: TabularData, rng: np.random.Generator, scale: float = NOISE) -> TabularData:
    """Every numeric value moved by Gaussian noise of `scale` times its column's sd."""
    frame = data.frame.copy()
    for col in data.profile.of_kind("numeric"):
        frame[col.name] = frame[col.name] + rng.normal(0, scale * frame[col.name].std(), len(frame))
    return data.with_frame(frame)


def table_noise(data: TabularData, like: TabularData, rng: np.random.Generator) -> TabularData:
    """`data`'s rows with each column drawn independently, uniformly over `like`'s range
    or categories."""
    frame = data.frame.copy()
    for col in like.profile.columns:
        if col.kind in ("numeric", "integer"):
            values = rng.uniform(col.min, col.max, len(frame))
            frame[col.name] = np.round(values) if col.kind == "integer" else values
        else:
            frame[col.name] = rng.choice(np.array(col.categories, dtype=object), len(frame))
    return data.with_frame(frame.astype(data.frame.dtypes.to_dict()))


def scaled(data: TimeSeriesData, rng: np.random.Generator, scale: float = NOISE) -> TimeSeriesData:
    """Every value within `scale` of the real path (multiplicative noise)."""
    frame = data.frame.copy()
    for f in data.features:
        frame[f] = frame[f] * (1 + rng.normal(0, scale, len(frame)))
    return data.with_frame(frame)


def series_noise(data: TimeSeriesData, like: TimeSeriesData, rng: np.random.Generator) -> TimeSeriesData:
    """i.i.d. Gaussian steps with `like`'s mean and sd, on `data`'s entities and lengths."""
    frame = data.frame.copy()
    for f in data.features:
        frame[f] = rng.normal(like.frame[f].mean(), like.frame[f].std(), len(frame))
    return data.with_frame(frame)


def pixel_jitter(data: ImageData, rng: np.random.Generator, amount: int = PIXEL_NOISE) -> ImageData:
    """Every pixel moved by a uniform integer in [-amount, amount], clipped to 0-255."""
    noisy = np.clip(data.images.astype(int) + rng.integers(-amount, amount + 1, data.images.shape), 0, 255)
    return ImageData(images=noisy.astype(np.uint8), labels=data.labels, label_name=data.label_name)


def pixel_noise(like: ImageData, n: int, rng: np.random.Generator) -> ImageData:
    """`n` images of `like`'s shape, every pixel uniform in 0-255."""
    return ImageData(images=rng.integers(0, 256, (n, *like.images.shape[1:]), dtype=np.uint8), labels=None,
                     label_name=None)


def moved(data: ImageData) -> dict[str, ImageData]:
    """The images flipped left-right, or shifted by one pixel (wrapping round)."""
    x = data.images
    return {name: ImageData(images=np.ascontiguousarray(images), labels=data.labels, label_name=data.label_name)
            for name, images in {"flipped": x[:, :, ::-1], "shifted_right": np.roll(x, 1, axis=2),
                                 "shifted_down": np.roll(x, 1, axis=1), "shifted_up": np.roll(x, -1, axis=1)}.items()}


def sampled(name: str, data: SourceData, n: int, params: dict | None = None) -> SourceData:
    """`n` records of project generator `name` fitted on `data`, with `params` (by
    default the tests' FAST_PARAMS: a few steps)."""
    generator = get(name)(device="cpu", **(FAST_PARAMS.get(name, {}) if params is None else params))
    generator.fit(data)
    batches = list(generator.sample(n, seed=1))
    if isinstance(data, ImageData):
        return ImageData(images=np.concatenate([b.images for b in batches]), labels=None, label_name=None)
    return data.with_frame(pd.concat(batches, ignore_index=True))
