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
import pandas as pd

from pipeline.core.data import SourceData, gap_windows
from pipeline.core.errors import SourceError

MIN_TRAIN = 10  # records (rows, sequences, images) a generator needs at the very least
MIN_HOLDOUT = 2  # records the validation metrics need on the holdout side (validators/metrics refuses fewer)
# Holdout blocks of one long series: several blocks spread the holdout over the whole
# time range (one block at the end would judge a trending series on a period the
# generator never saw); at most this many, and fewer when their gaps would cost more
# windows than the holdout itself holds.
MAX_BLOCKS = 4


def split_source(data: SourceData, holdout: float, *, seed: int) -> tuple[SourceData, SourceData]:
    """The (train, holdout) split of `data`, `holdout` its share of the records."""
    if getattr(data, "stream", None) is not None:
        return hash_split(data, holdout, seed=seed)
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
    if len(hold_idx) < MIN_HOLDOUT:  # refused here, before the fit, not by the metrics after it
        raise SourceError(
            f"the source has {n} records; with validation.holdout={holdout} the holdout holds {len(hold_idx)} "
            f"(the validation needs at least {MIN_HOLDOUT}): raise validation.holdout or add data"
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


# ---- sources streamed from Parquet: a split by hash, so no copy of either side is written


_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _mix(keys: np.ndarray, salt: int) -> np.ndarray:
    """splitmix64 of `keys` + `salt`: uniform 64-bit values, a different draw per salt."""
    with np.errstate(over="ignore"):
        z = keys.astype(np.uint64) + np.uint64(salt % 2**64) * _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def row_keys(frame: pd.DataFrame) -> np.ndarray:
    """One uint64 per row from its values alone, equal for identical rows however a
    batch typed them (numbers as float64, times as ns, the rest as text)."""
    plain = {}
    for name in frame.columns:
        s = frame[name]
        if pd.api.types.is_datetime64_any_dtype(s.dtype):
            plain[name] = pd.to_datetime(s, utc=True).astype("int64").where(s.notna())
        elif pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype):
            plain[name] = pd.to_numeric(s).astype("float64")
        else:
            plain[name] = s.astype(object).where(s.notna(), None).map(lambda v: None if v is None else str(v))
    return pd.util.hash_pandas_object(pd.DataFrame(plain), index=False).to_numpy()


def in_share(keys: np.ndarray, share: float, salt: int) -> np.ndarray:
    """Rows whose salted hash falls in the first `share` of the hash space."""
    if share >= 1:
        return np.ones(len(keys), bool)
    return _mix(keys, salt) < np.uint64(int(share * 2.0**64))


def in_holdout(keys: np.ndarray, holdout: float, seed: int) -> np.ndarray:
    """The holdout rows of a hash split: stable (a row's side depends on its values and
    the seed only, not on its position or batch), identical rows on one side."""
    return in_share(keys, holdout, salt=seed)


def hash_split(data: SourceData, holdout: float, *, seed: int) -> tuple[SourceData, SourceData]:
    """(train, holdout) of a streamed source: its in-memory row sample split by hash, and
    a training stream that leaves the same holdout rows out of every pass."""
    hold = in_holdout(row_keys(data.frame), holdout, seed)
    train_rows = int(round(data.stream.rows * (1 - hold.mean())))
    if train_rows < MIN_TRAIN or not hold.any():
        raise SourceError(f"the source has {data.stream.rows} rows; with validation.holdout={holdout} "
                          f"about {train_rows} remain for training (need at least {MIN_TRAIN}) and "
                          f"{int(hold.sum())} sampled rows are held out: add data or change the holdout")
    train = data.with_frame(data.frame[~hold].reset_index(drop=True))
    train.stream = data.stream.side_of("train", holdout, seed, rows=train_rows)
    held = data.with_frame(data.frame[hold].reset_index(drop=True))
    held.stream = data.stream.side_of("holdout", holdout, seed, rows=data.stream.rows - train_rows)
    return train, held
