"""How long a generator trains: a number of optimiser steps or a time budget, not
epochs. An epoch is a different amount of work on 200 images and on 20,000, so an
epoch-based default under-trains a small source and runs for hours on a big one; a step
count (or seconds) costs the same on both.

A family's `Params` extends `BudgetParams` and sets `DEFAULT_STEPS`; its training loop is

    budget = TrainingBudget.of(self.params, progress)
    for step in budget:              # stops at the step count or the time budget
        loss = ...
        budget.record(loss=loss)     # averaged between reports; a tensor is not synced per step

Which clock: wall-clock seconds (`time.monotonic`). It is what the user waits for and
what a scheduled job's slot is, and it counts GPU work, which the process's CPU time
does not see (CUDA kernels run asynchronously). The price: a time-budgeted fit takes
as many steps as the machine manages, so it is reproducible only in its step count:
`steps_done` says how many were taken, and `steps` (alone) gives the same model on every
machine."""

from __future__ import annotations

import math
import time
from typing import ClassVar, Iterator

import torch
from pydantic import BaseModel, Field

from pipeline.core.progress import Progress

REPORTS = 100  # progress calls per fit at most: often enough for a bar, rare enough to cost nothing


class BudgetParams(BaseModel):
    """The two ways to bound a fit. Neither set: `DEFAULT_STEPS` steps. One set: that one.
    Both: whichever runs out first."""

    DEFAULT_STEPS: ClassVar[int] = 1000  # a family overrides this with its measured default

    steps: int | None = Field(None, gt=0)  # optimiser steps (default: the family's DEFAULT_STEPS)
    time_budget_s: float | None = Field(None, gt=0)  # wall-clock seconds of training, on CPU or GPU

    def step_limit(self) -> int | None:
        """The step count to stop at, or None when only the clock bounds the fit."""
        if self.steps is not None:
            return self.steps
        return None if self.time_budget_s is not None else self.DEFAULT_STEPS


class TrainingBudget:
    """Iterate optimiser steps until the budget is spent, reporting progress in the
    budget's own unit: steps of the step limit, or seconds of the time budget."""

    def __init__(
        self, *, steps: int | None, time_budget_s: float | None, progress: Progress, clock=time.monotonic
    ) -> None:
        if steps is None and time_budget_s is None:
            raise ValueError("a training budget needs steps, time_budget_s or both")
        self.steps, self.time_budget_s, self.progress, self.clock = steps, time_budget_s, progress, clock
        self.steps_done = 0
        # Share of the budget spent when the current step began, 0..1 (the larger of steps
        # and seconds): what a learning-rate schedule anneals over when the step count is unknown.
        self.share = 0.0
        self._sums: dict[str, torch.Tensor | float] = {}
        self._count = 0

    @classmethod
    def of(cls, params: BudgetParams, progress: Progress) -> "TrainingBudget":
        return cls(steps=params.step_limit(), time_budget_s=params.time_budget_s, progress=progress)

    def __iter__(self) -> Iterator[int]:
        start = self.clock()
        next_report = 0.0
        while True:
            elapsed = self.clock() - start
            out_of_steps = self.steps is not None and self.steps_done >= self.steps
            out_of_time = self.time_budget_s is not None and elapsed >= self.time_budget_s
            if self.steps_done and (out_of_steps or out_of_time or self._share(elapsed) >= next_report):
                self._report(elapsed, final=out_of_steps or out_of_time)
                next_report = self._share(elapsed) + 1 / REPORTS
            if out_of_steps or out_of_time:
                return
            self.share = min(self._share(elapsed), 1.0)
            yield self.steps_done
            self.steps_done += 1

    def record(self, **metrics: torch.Tensor | float) -> None:
        """Add this step's metrics (e.g. loss) to the running means of the next report."""
        for name, value in metrics.items():
            value = value.detach() if isinstance(value, torch.Tensor) else value
            self._sums[name] = self._sums.get(name, 0.0) + value
        self._count += 1

    def _share(self, elapsed: float) -> float:
        """How much of the budget is spent, 0..1: the larger of the two shares."""
        shares = []
        if self.steps is not None:
            shares.append(self.steps_done / self.steps)
        if self.time_budget_s is not None:
            shares.append(elapsed / self.time_budget_s)
        return max(shares)

    def _report(self, elapsed: float, *, final: bool) -> None:
        means = {name: float(total) / max(self._count, 1) for name, total in self._sums.items()}
        self._sums, self._count = {}, 0
        steps_bind = self.time_budget_s is None or (
            self.steps is not None and self.steps_done / self.steps >= elapsed / self.time_budget_s
        )
        if steps_bind:
            self.progress(self.steps_done, self.steps, **means)
        else:  # the clock is the binding limit: show seconds of the budget, the step count as a metric
            total = max(1, math.ceil(self.time_budget_s))
            done = total if final else min(int(elapsed), total)
            self.progress(done, total, step=float(self.steps_done), **means)
