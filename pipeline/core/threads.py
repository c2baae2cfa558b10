"""The one CPU-thread policy, for generators and metrics alike: small models and metric
code run on one thread.

OpenMP workers (scikit-learn's gradient boosting), BLAS and torch spin when cores are
oversubscribed: on a busy 2-core machine the detection classifier took 196 s with 2
threads and 0.5 s with 1 (penguins, 3 folds), the image CNN 175 s against 10 s, and a
GRU step with batch 64 0.07 s against 3-9 s. These models are too small to gain from
intra-op threads; parallel sampling shards give the parallelism instead."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import ContextManager

import torch
from threadpoolctl import threadpool_limits

THREADS = 1


@contextmanager
def limited_threads(n: int = THREADS) -> Iterator[None]:
    """Cap torch's intra-op pool and the native pools (OpenMP, BLAS) to `n` for the
    block (also a decorator); the caller's settings come back afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        with threadpool_limits(limits=n):
            yield
    finally:
        torch.set_num_threads(before)


def thread_policy(device: torch.device, *, single: bool = True) -> ContextManager[None]:
    """What a generator runs under: `limited_threads()` on CPU for small models; a GPU,
    or a model that says it gains from threads (`single=False`), runs as configured."""
    return limited_threads() if single and device.type == "cpu" else nullcontext()
