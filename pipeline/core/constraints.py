"""Constraints declared in the job spec, held in every output row.

The set follows SDV's (`Inequality`, `Range`, `FixedCombinations`, and a linear formula
as SDV's custom constraints allow), written as short text in `source.constraints`:

    checkout > checkin            inequality (also >=)
    0 <= age <= 120               range (either bound may be left out: age >= 18)
    charge = minutes * 0.17       formula: a linear relation, `+ c` allowed
    (city, country)               fixed combinations: only pairs the source has

SDV enforces constraints inside its own synthesizers, and synthpipe imports SDV only
in its SDV-backed generators, so the repairs are done here, for every generator, by
`conform`: a formula is computed from its inputs, a range clips, an inequality swaps
the two values of a row that breaks it (a tie steps the larger one up), a combination
the source never has becomes the source's combination that changes fewest of its values
(ties: the one keeping its first column's value, then the most common).
`holds` is the check the contract suite runs on every output row.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel

from pipeline.core.errors import SourceError

_NAME = r"[A-Za-z_][\w.]*"
_NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_PATTERNS = [
    ("range", re.compile(rf"^\s*(?:({_NUM})\s*<=\s*)?({_NAME})\s*(?:<=\s*({_NUM}))?\s*$")),
    ("range_min", re.compile(rf"^\s*({_NAME})\s*>=\s*({_NUM})\s*$")),
    ("inequality", re.compile(rf"^\s*({_NAME})\s*(>=|>)\s*({_NAME})\s*$")),
    ("formula", re.compile(rf"^\s*({_NAME})\s*=\s*({_NAME})\s*\*\s*({_NUM})\s*(?:([-+])\s*({_NUM}))?\s*$")),
    ("fixed", re.compile(rf"^\s*\(\s*({_NAME}(?:\s*,\s*{_NAME})+)\s*\)\s*$")),
]
# A formula holds when the output is within this relative distance of it (the column's
# own rounding of the computed value stays far below).
FORMULA_TOLERANCE = 0.01


class Constraint(BaseModel):
    """One parsed constraint; `text` is what the user wrote, used in every message."""

    text: str
    kind: Literal["inequality", "range", "formula", "fixed"]
    columns: list[str]
    strict: bool = False  # inequality: > rather than >=
    low: float | None = None  # range bounds
    high: float | None = None
    factor: float = 1.0  # formula: columns[0] = factor * columns[1] + offset
    offset: float = 0.0
    combinations: list[list[Any]] | None = None  # fixed: the source's, most common first


def parse(text: str) -> Constraint:
    """Read one constraint; the error names it and shows the accepted forms."""
    for kind, pattern in _PATTERNS:
        m = pattern.match(text)
        if not m or (kind == "range" and m.group(1) is None and m.group(3) is None):
            continue
        if kind == "range":
            low, high = (float(g) if g is not None else None for g in (m.group(1), m.group(3)))
            return Constraint(text=text, kind="range", columns=[m.group(2)], low=low, high=high)
        if kind == "range_min":
            return Constraint(text=text, kind="range", columns=[m.group(1)], low=float(m.group(2)))
        if kind == "inequality":
            return Constraint(text=text, kind="inequality", columns=[m.group(1), m.group(3)], strict=m.group(2) == ">")
        if kind == "formula":
            sign = -1.0 if m.group(4) == "-" else 1.0
            offset = sign * float(m.group(5)) if m.group(5) else 0.0
            return Constraint(text=text, kind="formula", columns=[m.group(1), m.group(2)],
                              factor=float(m.group(3)), offset=offset)
        return Constraint(text=text, kind="fixed", columns=[c.strip() for c in m.group(1).split(",")])
    raise ValueError(
        f"cannot read constraint {text!r}; use 'a > b', 'a >= b', 'lo <= a <= hi', 'a >= lo', "
        "'a = b * k' (+ c), or '(a, b)' for fixed combinations"
    )


def bind(constraint: Constraint, frame: pd.DataFrame) -> Constraint:
    """Check a constraint against the source (its columns exist, it holds on every row)
    and learn what its repair needs (the source's combinations)."""
    missing = [c for c in constraint.columns if c not in frame.columns]
    if missing:
        raise SourceError(f"constraint {constraint.text!r} names column(s) {', '.join(map(repr, missing))} not in the source")
    if constraint.kind == "fixed":
        counts = frame[constraint.columns].dropna().value_counts()
        combos = [[v.item() if isinstance(v, np.generic) else v for v in key] for key in counts.index]
        constraint = constraint.model_copy(update={"combinations": combos})
    broken = int((~holds(constraint, frame)).sum())
    if broken:
        raise SourceError(
            f"constraint {constraint.text!r} fails on {broken} of {len(frame)} source rows: "
            "a generator cannot learn a rule the source breaks; fix the data or the constraint"
        )
    return constraint


def _numbers(s: pd.Series) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(s):
        return pd.Series(s.to_numpy().view("int64").astype(float), index=s.index).where(s.notna())
    return pd.to_numeric(s).astype(float)


def _coded(combinations: list[list[Any]], rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """The combinations and the rows as integer codes per column, a value's position among
    its column's values in the combinations (-1: a value no combination has)."""
    table = pd.DataFrame(combinations, columns=rows.columns, dtype=object)
    values = [pd.Index(table[c].unique()) for c in rows.columns]
    width = (len(table), len(rows.columns))
    codes = np.stack([v.get_indexer(table[c]) for v, c in zip(values, rows.columns)], axis=1) \
        if len(table) else np.empty(width, dtype=int)
    seen = np.stack([v.get_indexer(rows[c]) for v, c in zip(values, rows.columns)], axis=1)
    return codes, seen


def holds(c: Constraint, frame: pd.DataFrame) -> np.ndarray:
    """Per row: does it keep the constraint? Rows with a null in the constraint's
    columns keep it (nulls are checked by the null-share expectations)."""
    cols = [frame[name] for name in c.columns]
    null = np.logical_or.reduce([s.isna().to_numpy() for s in cols])
    if c.kind == "fixed":
        combos, rows = _coded(c.combinations or [], frame[c.columns])
        dims = [int(max(combos[:, j].max(initial=-1), 0)) + 2 for j in range(len(c.columns))]
        if np.prod(np.asarray(dims, dtype=float)) < 2.0**62:  # one integer per combination
            keys = np.ravel_multi_index((combos + 1).T, dims) if len(combos) else np.empty(0, int)
            ok = np.isin(np.ravel_multi_index((rows + 1).T, dims), keys)
        else:
            seen = set(map(tuple, combos.tolist()))
            ok = np.array([row in seen for row in map(tuple, rows.tolist())], dtype=bool)
        return ok | null
    x = _numbers(cols[0]).to_numpy()
    if c.kind == "range":
        ok = (x >= (c.low if c.low is not None else -np.inf)) & (x <= (c.high if c.high is not None else np.inf))
    elif c.kind == "inequality":
        y = _numbers(cols[1]).to_numpy()
        ok = x > y if c.strict else x >= y
    else:
        expected = c.factor * _numbers(cols[1]).to_numpy() + c.offset
        ok = np.abs(x - expected) <= FORMULA_TOLERANCE * np.maximum(np.abs(expected), 1e-12)
    return np.asarray(ok, dtype=bool) | null


def repair(c: Constraint, frame: pd.DataFrame, step: float, kept: Collection[str] = ()) -> pd.DataFrame:
    """Make every row keep `c` (see the module docstring); `step` is the smallest
    increment of the first column, used to break an inequality's ties. A broken
    combination keeps the values of the `kept` columns (a sample's conditions)."""
    frame = frame.copy()
    first = c.columns[0]
    if c.kind == "range":
        frame[first] = frame[first].clip(lower=c.low, upper=c.high)
    elif c.kind == "formula":
        frame[first] = c.factor * _numbers(frame[c.columns[1]]) + c.offset
    elif c.kind == "inequality":
        a, b = c.columns
        bad = ~holds(c, frame)
        swap = bad & (_numbers(frame[a]) < _numbers(frame[b])).to_numpy()
        frame.loc[swap, [a, b]] = frame.loc[swap, [b, a]].to_numpy()
        tie = ~holds(c, frame)
        if tie.any():
            bump = pd.Timedelta(int(step), "ns") if pd.api.types.is_datetime64_any_dtype(frame[a]) else step
            frame.loc[tie, a] = frame.loc[tie, b] + bump
    else:
        bad = ~holds(c, frame)
        if bad.any() and c.combinations:
            fixes = [c.combinations[k] for k in _nearest(c.combinations, frame.loc[bad, c.columns], kept)]
            for j, name in enumerate(c.columns):  # as objects: `conform` gives each column its dtype back
                values = frame[name].to_numpy(dtype=object, copy=True)
                values[bad] = [fix[j] for fix in fixes]
                frame[name] = values
    return frame


_NEAREST_CELLS = 1_000_000  # rows x combinations x columns compared at once (8 MB of scores)


def _nearest(combinations: list[list[Any]], rows: pd.DataFrame, kept: Collection[str] = ()) -> np.ndarray:
    """For each row, the index of the source combination that changes the fewest of its
    values; among those, one that keeps the first column's, then the most common. A row
    whose model kept the level and its dummies but not the years of schooling changes the
    years alone. A `kept` column (a sampled condition, `grade: A`) outweighs all the others
    together: the combination found always keeps it (every value a condition may take is
    in some source combination)."""
    codes, seen = _coded(combinations, rows)
    weight = np.full(len(rows.columns), 2)
    weight[0] = 3  # an agreeing first column breaks a tie
    weight[[j for j, name in enumerate(rows.columns) if name in kept]] = 3 * len(rows.columns) + 1
    out = []
    step = max(1, _NEAREST_CELLS // codes.size)
    for start in range(0, len(seen), step):
        part = seen[start:start + step]
        score = ((part[:, None, :] == codes[None, :, :]) * weight).sum(axis=2)
        out.append(score.argmax(axis=1))  # the first best: combinations are most common first
    return np.concatenate(out)


# ---- proposals --------------------------------------------------------------------

# A relation is proposed only from this many rows on, and a fixed combination only when
# its first column's values repeat (on average) this often: fewer is coincidence.
MIN_PROPOSAL_ROWS = 50
MIN_LEVEL_REPEATS = 5
# ... and only when a column drawn independently of the first, from its own shares, would
# be constant within each of the first's values with a chance below MAX_CHANCE (over the
# ~1,800 pairs of a 43-column table: under 2e-6 that any is coincidence). Repeats alone
# let a rare value through: openintro loans' `current_accounts_delinq` (1 in 10,000
# rows) is 0 in all 1,495 joint applications, which independent columns do by a chance of 0.86.
MAX_CHANCE = 1e-9
_PROPOSAL_SAMPLE = 20_000  # rows read to look for relations on large tables


def _formulas(frame: pd.DataFrame, numeric: list[str]) -> list[str]:
    """`b = a * k` within FORMULA_TOLERANCE in every row, both columns varying (the first
    rows of nycflights13 flights are all January 2013: `month = year * 0.0004968`). Each
    `b` is computed by one formula only, from the first column it follows: 37 copies of a
    column give 36 formulas, not 666."""
    out = []
    computed: set[str] = set()
    for i, a in enumerate(numeric):
        x = pd.to_numeric(frame[a]).astype(float).to_numpy()
        for b in numeric[i + 1:]:
            if b in computed:
                continue
            y = pd.to_numeric(frame[b]).astype(float).to_numpy()
            rows = ~np.isnan(x) & ~np.isnan(y)
            both = rows & (x != 0)
            if both.sum() < MIN_PROPOSAL_ROWS or np.ptp(x[rows]) == 0 or np.ptp(y[rows]) == 0:
                continue
            k = float(np.median(y[both] / x[both]))
            if k and np.all(np.abs(y[rows] - k * x[rows]) <= FORMULA_TOLERANCE * np.abs(k * x[rows]) + 1e-12):
                out.append(f"{b} = {a} * {k:.4g}")
                computed.add(b)
    return out


def _chance_log10(a: np.ndarray, b: np.ndarray, shares: np.ndarray) -> float:
    """log10 of the chance that `b`, drawn independently of `a` (codes, both present) with
    its column's `shares`, is constant within every value of `a`: the sum over a's values
    of log10(sum_v p_v ** size)."""
    sizes = np.bincount(a)
    sizes = sizes[sizes > 0]
    logs = np.log(shares[shares > 0])[None, :] * sizes[:, None]
    return float(np.logaddexp.reduce(logs, axis=1).sum() / np.log(10))


def _determines(a: np.ndarray, b: np.ndarray) -> bool:
    """Does code column `a` fix `b` (-1: null; rows with either null say nothing), on
    evidence that independent columns would not show (MIN_LEVEL_REPEATS, MAX_CHANCE)?"""
    shares = np.bincount(b[b >= 0]) / max(int((b >= 0).sum()), 1)  # of the whole column: b is
    rows = (a >= 0) & (b >= 0)  # independent of a's values and of whether a is there at all
    a, b = a[rows], b[rows]
    if len(a) < MIN_PROPOSAL_ROWS:
        return False
    levels = len(np.unique(a))
    if levels * MIN_LEVEL_REPEATS > len(a) or len(np.unique(a * (b.max() + 1) + b)) != levels:
        return False
    return _chance_log10(a, b, shares) < np.log10(MAX_CHANCE)


def _combinations(frame: pd.DataFrame, discrete: list[str]) -> list[str]:
    """Fixed combinations `(a, b, ...)`: a column and the columns it fixes (each with
    fewer values than it, two or more). Columns with the most values go first, and each
    column is fixed by one combination only, so no repair undoes another's: rwm5yr's
    `(educ, edlevel, edlevel1, ..., edlevel4)` (years of schooling fix the level and its
    four dummies) leaves no `(edlevel, edlevel1, ...)` beside it."""
    codes = {c: pd.factorize(frame[c], use_na_sentinel=True)[0] for c in discrete}
    levels = {c: int(codes[c].max()) + 1 for c in discrete}
    fixed: set[str] = set()
    out = []
    for a in sorted(discrete, key=lambda c: -levels[c]):
        found = [b for b in discrete
                 if b not in fixed and 1 < levels[b] < levels[a] and _determines(codes[a], codes[b])]
        if found:
            out.append(f"({', '.join([a, *found])})")
            fixed.update(found)
    return out


def propose(frame: pd.DataFrame, numeric: list[str], discrete: list[str]) -> list[str]:
    """Constraints that hold exactly in `frame`, as text: linear formulas `b = a * k`
    between numeric columns, and fixed combinations among `discrete` columns (categories,
    booleans, numbers on a small support: 0/1 dummies, integer codes) where one fixes the
    others. The profile checks them on every source row and the output keeps them."""
    if len(frame) < MIN_PROPOSAL_ROWS:
        return []
    frame = frame.head(_PROPOSAL_SAMPLE)
    return _formulas(frame, numeric) + _combinations(frame, discrete)


def still_fixed(c: Constraint, counts: dict[tuple, int]) -> bool:
    """Does a fixed combination proposed from the first rows hold on every row: does its
    first column still fix the others in all the rows' combinations (`counts`)? The
    evidence that it is no coincidence was weighed on the first rows (`_determines`)."""
    return len({combo[0] for combo in counts}) == len(counts)
