"""generators.budget: a fit stops at its step count or its time budget, whichever comes
first, and reports progress in the unit of the limit that binds."""

from __future__ import annotations

import pytest

from generators.budget import BudgetParams, TrainingBudget


class FakeClock:
    """Each reading advances `tick` seconds: a step costs `tick`, deterministically."""

    def __init__(self, tick: float) -> None:
        self.now, self.tick = 0.0, tick

    def __call__(self) -> float:
        self.now += self.tick
        return self.now


def run(steps, time_budget_s, tick=1.0):
    seen = []
    budget = TrainingBudget(steps=steps, time_budget_s=time_budget_s, clock=FakeClock(tick),
                            progress=lambda done, total, **m: seen.append((done, total, m)))
    for step in budget:
        budget.record(loss=float(step))
    return budget.steps_done, seen


def test_a_step_budget_takes_exactly_that_many_steps_and_reports_them():
    done, seen = run(250, None)
    assert done == 250 and seen[-1][:2] == (250, 250)
    assert 50 <= len(seen) <= 101  # about REPORTS (100) reports, not one per step
    assert seen[0][2]["loss"] == pytest.approx(sum(range(seen[0][0])) / seen[0][0])  # the mean since the last report


def test_a_time_budget_stops_when_the_clock_runs_out_and_shows_seconds():
    done, seen = run(None, 30.0, tick=0.5)  # each step costs 0.5 s
    assert 55 <= done <= 61
    assert seen[-1][:2] == (30, 30) and seen[-1][2]["step"] == done
    assert all(total == 30 for _, total, _ in seen)


def test_with_both_the_first_limit_reached_wins():
    assert run(10, 1000.0)[0] == 10
    assert run(10_000, 5.0)[0] < 10


def test_params_default_to_the_family_steps_unless_a_time_budget_is_set():
    class Family(BudgetParams):
        DEFAULT_STEPS = 77

    assert Family().step_limit() == 77
    assert Family(time_budget_s=60).step_limit() is None
    assert Family(steps=5, time_budget_s=60).step_limit() == 5
    with pytest.raises(ValueError):
        Family(steps=0)
