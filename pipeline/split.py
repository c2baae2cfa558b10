"""Train / holdout split. The holdout never reaches the generator: privacy metrics
compare distances to train against distances to it."""

from __future__ import annotations

import numpy as np

from pipeline.data import ImageData, SourceData, TabularData, TimeSeriesData
from pipeline.errors import SourceError

MIN_TRAIN = 10  # records (rows, sequences, images) a generator needs at the very least


def split_source(data: SourceData, holdout: float, *, seed: int) -> tuple[SourceData, SourceData]:
    """Random split by record: rows (tabular), whole entities (time series), images."""
    n = len(data)
    n_holdout = max(1, int(round(n * holdout)))
    if n - n_holdout < MIN_TRAIN:
        raise SourceError(
            f"the source has {n} records; with validation.holdout={holdout} only {n - n_holdout} "
            f"remain for training (need at least {MIN_TRAIN}): add data or lower the holdout"
        )
    order = np.random.default_rng(seed).permutation(n)
    hold_idx, train_idx = np.sort(order[:n_holdout]), np.sort(order[n_holdout:])
    return _take(data, train_idx), _take(data, hold_idx)


def _take(data: SourceData, idx: np.ndarray) -> SourceData:
    if isinstance(data, TabularData):
        return TabularData(frame=data.frame.iloc[idx].reset_index(drop=True), profile=data.profile)
    if isinstance(data, TimeSeriesData):
        entities = data.frame[data.entity].drop_duplicates().to_numpy()[idx]
        frame = data.frame[data.frame[data.entity].isin(entities)].reset_index(drop=True)
        return TimeSeriesData(
            frame=frame, profile=data.profile, entity=data.entity, time=data.time,
            static=list(data.static), features=list(data.features),
        )
    if isinstance(data, ImageData):
        labels = None if data.labels is None else data.labels[idx]
        return ImageData(images=data.images[idx], labels=labels, label_name=data.label_name)
    raise TypeError(f"unknown source data {type(data).__name__}")
