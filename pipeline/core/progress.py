"""Progress reporting without a UI dependency in the core.

Generators call `progress(done, total, **metrics)` (optimiser steps, seconds of a
time budget (generators/budget.py) or epochs, with e.g. loss=0.12);
the sink calls `advance(n)` per chunk. Where it goes is chosen once per process: the
CLI installs a rich display (`use_display`), anywhere else progress is logged at
every 10 %, which Prefect shows in the run's logs."""

from __future__ import annotations

import logging
import threading
from contextlib import contextmanager
from typing import Callable, Iterator, Protocol

log = logging.getLogger("synthpipe")


class Progress(Protocol):
    def __call__(self, done: int, total: int, **metrics: float) -> None:
        """`done` of `total` units (steps, seconds, epochs, batches) finished; `metrics` e.g. loss=0.12."""


def silent(done: int, total: int, **metrics: float) -> None:
    """Report nothing (the default inside generators)."""


class Tracker:
    """One progress line: fitting (absolute `done`) or sampling (`advance` by n)."""

    def __init__(self, description: str, total: int | None) -> None:
        self.description, self.total, self.done = description, total, 0
        self._lock = threading.Lock()
        self._logged_decile = -1

    def __call__(self, done: int, total: int, **metrics: float) -> None:
        with self._lock:
            self.total, self.done = total, done
        self.show(metrics)

    def advance(self, n: int) -> None:
        with self._lock:
            self.done += n
        self.show({})

    def show(self, metrics: dict[str, float]) -> None:
        if not self.total:
            return
        decile = int(10 * self.done / self.total)
        if decile > self._logged_decile:
            self._logged_decile = decile
            extra = " ".join(f"{k}={v:.4g}" for k, v in metrics.items())
            log.info("%s: %d/%d %s", self.description, self.done, self.total, extra)

    def close(self) -> None:
        pass


_factory: Callable[[str, int | None], Tracker] = Tracker


@contextmanager
def use_display(factory: Callable[[str, int | None], Tracker]) -> Iterator[None]:
    """Route every `tracker(...)` of this process to `factory` (the CLI's rich bars)."""
    global _factory
    previous, _factory = _factory, factory
    try:
        yield
    finally:
        _factory = previous


def tracker(description: str, total: int | None = None) -> Tracker:
    return _factory(description, total)
