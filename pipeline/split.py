"""Train / holdout split. The holdout never reaches the generator: privacy metrics
compare distances to train against distances to it, so it must be truly unseen:

- time series with entities: whole entities on one side;
- windows cut from one long series: contiguous blocks of time, with every window
  within one window's length of time of a holdout window dropped from training, so no
  training step lies within a window of a holdout step (random windows at stride 1
  would put near-identical windows on both sides, PITFALLS);
- tables and images: identical records (same row / same pixels) on one side, so an
  exact copy of a duplicated source record never counts as "unseen"."""

from __future__ import annotations

import numpy as np

from pipeline.core.data import SourceData, gap_windows
from pipeline.core.errors import SourceError

MIN_TRAIN = 10  # records (rows, sequences, images) a generator needs at the very least
# Holdout blocks of one long series: several blocks spread the holdout over the whole
# time range (one block at the end would judge a trending series on a period the
# generator never saw); at most this many, and fewer when their gaps would cost more
# windows than the holdout itself holds.
MAX_BLOCKS = 4


def split_source(data: SourceData, holdout: float, *, seed: int) -> tuple[SourceData, SourceData]:
    """The (train, holdout) split of `data`, `holdout` its share of the records."""
    rng = np.random.default_rng(seed)
    n = len(data)
    n_holdout = max(1, int(round(n * holdout)))
    if getattr(data, "windows", None) is not None:  # one long series cut into windows
        train_idx, hold_idx = window_split(n, n_holdout, *data.windows, rng=rng)
    elif hasattr(data, "record_keys"):  # tables and images: duplicates on one side
        train_idx, hold_idx = group_split(data.record_keys(), n_holdout, rng=rng)
    else:
        order = rng.permutation(n)
        hold_idx, train_idx = np.sort(order[:n_holdout]), np.sort(order[n_holdout:])
    if len(train_idx) < MIN_TRAIN:
        dropped = n - len(train_idx) - len(hold_idx)
        gaps = f" ({dropped} windows beside the holdout blocks are left out so none overlaps them)" if dropped else ""
        raise SourceError(
            f"the source has {n} records; with validation.holdout={holdout} only {len(train_idx)} "
            f"remain for training{gaps} (need at least {MIN_TRAIN}): add data, lower the holdout"
            + (" or raise source.stride" if dropped else "")
        )
    return data.take(train_idx), data.take(hold_idx)


def group_split(keys: np.ndarray, n_holdout: int, *, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(train, holdout) positions: groups of equal keys in random order fill the holdout
    until it holds at least `n_holdout` records, so a group is never divided."""
    _, group, sizes = np.unique(keys, return_inverse=True, return_counts=True)
    order = rng.permutation(len(sizes))
    taken = order[: int(np.searchsorted(np.cumsum(sizes[order]), n_holdout)) + 1]
    in_holdout = np.isin(group, taken)
    return np.flatnonzero(~in_holdout), np.flatnonzero(in_holdout)


def window_split(
    n: int, n_holdout: int, window: int, stride: int, *, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(train, holdout) window positions for `n` windows of one series in time order:
    the holdout is up to MAX_BLOCKS contiguous blocks (one per equal stretch of the
    series, at a random place in it), training is every window more than
    `gap_windows` windows away from all of them."""
    gap = gap_windows(window, stride)
    blocks = max(1, min(MAX_BLOCKS, n_holdout // max(1, 2 * gap)))
    sizes = np.full(blocks, n_holdout // blocks) + (np.arange(blocks) < n_holdout % blocks)
    edges = np.linspace(0, n, blocks + 1).astype(int)
    hold = np.zeros(n, bool)
    for size, lo, hi in zip(sizes, edges[:-1], edges[1:]):
        start = lo + int(rng.integers(0, max(0, hi - lo - size) + 1))
        hold[start : start + size] = True
    # holdout windows within `gap` of each window, from a running count
    count = np.concatenate([[0], np.cumsum(hold)])
    idx = np.arange(n)
    near = count[np.minimum(n, idx + gap + 1)] - count[np.maximum(0, idx - gap)]
    return np.flatnonzero(near == 0), np.flatnonzero(hold)
