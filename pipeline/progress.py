"""Progress reporting without a UI dependency: generators call `progress(...)`,
the CLI passes a rich progress bar, flows pass one that logs."""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    def __call__(self, done: int, total: int, **metrics: float) -> None:
        """`done` of `total` steps (epochs, batches) finished; `metrics` e.g. loss=0.12."""


def silent(done: int, total: int, **metrics: float) -> None:
    """The default: report nothing."""
