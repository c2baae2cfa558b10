"""Records -> fixed-length float vectors, the space the privacy distances live in.

Table and series encoders are fitted on the training split, so a synthetic record is
measured with the same ruler as the real ones: numerics imputed (with a missing indicator) and
standardised, categories one-hot scaled by 1/sqrt(2) so one differing category adds
exactly 1 to the squared distance, like one standard deviation of a number. Images are
posed and projected with what train and holdout give alike (`ImageEncoder`)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from sklearn.compose import ColumnTransformer
from sklearn.decomposition import PCA
from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from pipeline.core.clock import seconds_of_day
from pipeline.core.data import ImageData, SourceData, TabularData, TimeSeriesData
from pipeline.core.schema import TableProfile

NUMERIC_KINDS = ("numeric", "integer", "datetime", "time")
CATEGORICAL_KINDS = ("categorical", "boolean")
SERIES_STEPS = 16  # every sequence is resampled to this many steps: 16 keeps shape, not noise
IMAGE_SIDE = 32  # larger images are area-averaged to at most 32 x 32 before distances
IMAGE_COMPONENTS = 64  # principal components kept: >= 95 % of the pixel variance of digits and photo patches
POSE_BLUR = 3.0  # pixels: the pose reference is a smooth blob, so alignment follows where the content is
IMAGE_CHUNK = 4096  # images posed and projected at once


def numeric_values(series: pd.Series) -> np.ndarray:
    """A numeric, integer, datetime or time column as float64 (datetimes as ns since epoch,
    clock text as seconds of the day, its blank text NaN), NaN kept."""
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        naive = series.dt.tz_convert(None) if series.dt.tz is not None else series
        out = naive.to_numpy(dtype="datetime64[ns]").astype("int64").astype(float)
        out[series.isna().to_numpy()] = np.nan
        return out
    numbers = pd.to_numeric(series, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    if series.dtype == object or isinstance(series.dtype, pd.StringDtype):
        return np.where(np.isnan(numbers), seconds_of_day(series), numbers)
    return numbers


def category_values(series: pd.Series) -> np.ndarray:
    """A categorical or boolean column as strings, missing as its own value."""
    return series.astype(object).where(series.notna(), "<missing>").astype(str).to_numpy()


def _unit_mismatch(onehot: np.ndarray) -> np.ndarray:
    """Scale one-hot columns so that two different categories are at distance 1."""
    return onehot * np.float32(np.sqrt(0.5))


class TabularEncoder:
    """Scaled numerics (+ missing indicators) and scaled one-hot categories, fitted on train."""

    def __init__(self, profile: TableProfile, columns: list[str] | None = None):
        names = set(columns if columns is not None else profile.names)
        self.numeric = [c.name for c in profile.of_kind(*NUMERIC_KINDS) if c.name in names]
        self.categorical = [c.name for c in profile.of_kind(*CATEGORICAL_KINDS) if c.name in names]

    def _frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        cols = {c: numeric_values(frame[c]) for c in self.numeric}
        cols.update({c: category_values(frame[c]) for c in self.categorical})
        return pd.DataFrame(cols, index=frame.index)

    def fit(self, frame: pd.DataFrame) -> TabularEncoder:
        parts = []
        if self.numeric:
            num = make_pipeline(SimpleImputer(strategy="median", add_indicator=True), StandardScaler())
            parts.append(("num", num, self.numeric))
        if self.categorical:
            onehot = OneHotEncoder(handle_unknown="ignore", sparse_output=False, dtype=np.float32)
            scale = FunctionTransformer(_unit_mismatch)
            parts.append(("cat", make_pipeline(onehot, scale), self.categorical))
        self.transformer_ = ColumnTransformer(parts, sparse_threshold=0.0).fit(self._frame(frame))
        return self

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        return np.ascontiguousarray(self.transformer_.transform(self._frame(frame)), dtype=np.float32)


def _resample(steps: np.ndarray, n: int) -> np.ndarray:
    """(T, D) -> (n, D) by linear interpolation over relative position."""
    if len(steps) == 1:
        return np.repeat(steps, n, axis=0)
    src, dst = np.linspace(0.0, 1.0, len(steps)), np.linspace(0.0, 1.0, n)
    return np.stack([np.interp(dst, src, steps[:, d]) for d in range(steps.shape[1])], axis=1)


class SeriesEncoder:
    """One vector per entity: its steps encoded and resampled to SERIES_STEPS, flattened,
    then its static columns and its (standardised) length."""

    def __init__(self, data: TimeSeriesData):
        self.entity, self.time = data.entity, data.time
        self.steps = TabularEncoder(data.profile, data.features)
        self.static = TabularEncoder(data.profile, data.static) if data.static else None

    def fit(self, data: TimeSeriesData) -> SeriesEncoder:
        self.steps.fit(data.frame)
        if self.static is not None:
            self.static.fit(data.frame.groupby(self.entity, sort=False).head(1))
        lengths = data.frame.groupby(self.entity, sort=False).size().to_numpy(dtype=float)
        self.length_mean_, self.length_std_ = lengths.mean(), lengths.std() or 1.0
        return self

    def transform(self, data: TimeSeriesData) -> np.ndarray:
        frame = data.frame.sort_values([self.entity, self.time], kind="stable")
        encoded = self.steps.transform(frame)
        ids = frame[self.entity].to_numpy()
        bounds = np.append(np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]]), len(frame))
        series = [_resample(encoded[a:b], SERIES_STEPS).ravel() for a, b in zip(bounds[:-1], bounds[1:])]
        lengths = (np.diff(bounds) - self.length_mean_) / self.length_std_
        parts = [np.stack(series), lengths[:, None]]
        if self.static is not None:
            parts.append(self.static.transform(frame.iloc[bounds[:-1]]))
        return np.ascontiguousarray(np.concatenate(parts, axis=1), dtype=np.float32)


def _pixels(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W, C) -> float (N, C, H, W) in [0, 1], area-averaged to at most IMAGE_SIDE."""
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 255.0
    h, w = x.shape[-2:]
    if max(h, w) > IMAGE_SIDE:
        x = F.adaptive_avg_pool2d(x, (min(h, IMAGE_SIDE), min(w, IMAGE_SIDE)))
    return x


def _blurred(image: torch.Tensor, sigma: float) -> torch.Tensor:
    """(C, H, W) smoothed by a separable Gaussian (edges replicated)."""
    r = max(1, int(np.ceil(2 * sigma)))
    k = torch.exp(-torch.arange(-r, r + 1).float() ** 2 / (2 * sigma**2))
    x = image[:, None]  # (C, 1, H, W): each channel on its own
    x = F.conv2d(F.pad(x, (r, r, 0, 0), mode="replicate"), (k / k.sum()).view(1, 1, 1, -1))
    x = F.conv2d(F.pad(x, (0, 0, r, r), mode="replicate"), (k / k.sum()).view(1, 1, -1, 1))
    return x[:, 0]


def canonical_pose(x: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Each image (N, C, H, W) flipped (none, horizontal, vertical, both) and shifted
    (circularly, by any whole number of pixels) into the pose that best matches
    `reference` (C, H, W). A flipped or shifted copy has the same orbit as its original,
    so it lands on the same canonical image: such a copy is still a copy."""
    n, _, h, w = x.shape
    ref = torch.fft.fft2(reference.sum(0)).conj()
    best_score = torch.full((n,), -torch.inf)
    best_shift = torch.zeros(n, dtype=torch.long)
    best = x
    for flipped in (x, x.flip(-1), x.flip(-2), x.flip(-2, -1)):
        corr = torch.fft.ifft2(torch.fft.fft2(flipped.sum(1)) * ref).real.flatten(1)  # corr[s]: x rolled by -s . ref
        score, shift = corr.max(1)
        better = score > best_score + 1e-6  # ties keep the earlier pose: deterministic
        best_score = torch.where(better, score, best_score)
        best_shift = torch.where(better, shift, best_shift)
        best = torch.where(better[:, None, None, None], flipped, best)
    rows = (torch.arange(h)[None, :] + (best_shift // w)[:, None]) % h  # (N, H)
    cols = (torch.arange(w)[None, :] + (best_shift % w)[:, None]) % w  # (N, W)
    gathered = best.gather(2, rows[:, None, :, None].expand(-1, best.shape[1], -1, w))
    return gathered.gather(3, cols[:, None, None, :].expand(-1, best.shape[1], h, -1))


class ImageEncoder:
    """Images in a fixed pose (`canonical_pose`), projected on the principal components
    of train and holdout pooled. Nothing is learned from train alone, so train and
    holdout are measured alike: a feature space trained on the training images makes
    anything look "closer to train" (pure noise scored dcr_share 0.86-0.95 in the
    features of a CNN trained on them). Pixel distances without the pose let a flipped
    or one-pixel-shifted training image pass as unseen."""

    def fit(self, *datasets: ImageData) -> ImageEncoder:
        pooled = torch.cat([_pixels(d.images) for d in datasets])
        self.reference_ = _blurred(pooled.mean(0), POSE_BLUR)
        flat = canonical_pose(pooled, self.reference_).flatten(1).numpy()
        self.pca_ = PCA(n_components=min(IMAGE_COMPONENTS, *flat.shape), random_state=0).fit(flat)
        return self

    def transform(self, data: ImageData) -> np.ndarray:
        out = []
        for i in range(0, len(data), IMAGE_CHUNK):
            flat = canonical_pose(_pixels(data.images[i : i + IMAGE_CHUNK]), self.reference_).flatten(1).numpy()
            out.append(self.pca_.transform(flat))
        return np.ascontiguousarray(np.concatenate(out), dtype=np.float32)


def fit_vectors(train: SourceData, holdout: SourceData, *others: SourceData) -> list[np.ndarray]:
    """Encode `train`, `holdout` and every other dataset of the same modality with one
    encoder: fitted on `train` for tables and series (a standardisation), on train and
    holdout pooled for images (`ImageEncoder`). Returns one (records, dims) float32
    array per dataset, in the order given."""
    datasets = (train, holdout, *others)
    if isinstance(train, ImageData):
        enc = ImageEncoder().fit(train, holdout)
        return [enc.transform(d) for d in datasets]
    if isinstance(train, TimeSeriesData):
        enc = SeriesEncoder(train).fit(train)
        return [enc.transform(d) for d in datasets]
    if isinstance(train, TabularData):
        tab = TabularEncoder(train.profile).fit(train.frame)
        return [tab.transform(d.frame) for d in datasets]
    raise TypeError(f"unknown data type {type(train).__name__}")
