"""Train / holdout split. The holdout never reaches the generator: privacy metrics
compare distances to train against distances to it."""

from __future__ import annotations

import numpy as np

from pipeline.core.data import SourceData
from pipeline.core.errors import SourceError

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
    return data.take(train_idx), data.take(hold_idx)

