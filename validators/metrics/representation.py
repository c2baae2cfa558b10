"""Records -> fixed-length float vectors, the space the privacy distances live in.

Every encoder is fitted on the training split only, so a synthetic record is measured
with the same ruler as the real ones: numerics imputed (with a missing indicator) and
standardised, categories one-hot scaled by 1/sqrt(2) so one differing category adds
exactly 1 to the squared distance, like one standard deviation of a number."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from pipeline.core.data import ImageData, SourceData, TabularData, TimeSeriesData
from pipeline.core.schema import TableProfile

NUMERIC_KINDS = ("numeric", "integer", "datetime")
CATEGORICAL_KINDS = ("categorical", "boolean")
SERIES_STEPS = 16  # every sequence is resampled to this many steps: 16 keeps shape, not noise
IMAGE_SIDE = 32  # larger images are area-averaged to at most 32 x 32 before distances


def numeric_values(series: pd.Series) -> np.ndarray:
    """A numeric, integer or datetime column as float64 (datetimes as ns since epoch), NaN kept."""
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        naive = series.dt.tz_convert(None) if series.dt.tz is not None else series
        out = naive.to_numpy(dtype="datetime64[ns]").astype("int64").astype(float)
        out[series.isna().to_numpy()] = np.nan
        return out
    return pd.to_numeric(series, errors="coerce").to_numpy(dtype=float, na_value=np.nan)


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


def image_vectors(images: np.ndarray) -> np.ndarray:
    """uint8 (N, H, W, C) -> float32 pixels in [0, 1], area-averaged to at most IMAGE_SIDE."""
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 255.0
    h, w = x.shape[-2:]
    if max(h, w) > IMAGE_SIDE:
        x = F.adaptive_avg_pool2d(x, (min(h, IMAGE_SIDE), min(w, IMAGE_SIDE)))
    return np.ascontiguousarray(x.flatten(1).numpy(), dtype=np.float32)


def fit_vectors(train: SourceData, *others: SourceData) -> list[np.ndarray]:
    """Encode `train` and every other dataset of the same modality with an encoder fitted
    on `train` alone. Returns one (records, dims) float32 array per dataset."""
    datasets = (train, *others)
    if isinstance(train, ImageData):
        return [image_vectors(d.images) for d in datasets]
    if isinstance(train, TimeSeriesData):
        enc = SeriesEncoder(train).fit(train)
        return [enc.transform(d) for d in datasets]
    if isinstance(train, TabularData):
        tab = TabularEncoder(train.profile).fit(train.frame)
        return [tab.transform(d.frame) for d in datasets]
    raise TypeError(f"unknown data type {type(train).__name__}")
