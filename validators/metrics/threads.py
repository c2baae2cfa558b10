"""One thread for native pools while metrics run.

OpenMP workers (scikit-learn's gradient boosting), BLAS and torch spin when cores are
oversubscribed: on a busy 2-core machine the detection classifier took 196 s with 2
threads and 0.5 s with 1 (penguins, 3 folds), and the image CNN 175 s against 10 s.
Every public metric entry point runs under `limited_threads()` (also a decorator)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from threadpoolctl import threadpool_limits

METRIC_THREADS = 1


@contextmanager
def limited_threads(n: int = METRIC_THREADS) -> Iterator[None]:
    """Cap scikit-learn's OpenMP, BLAS and torch thread pools to `n` for the block."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        with threadpool_limits(limits=n):
            yield
    finally:
        torch.set_num_threads(before)
