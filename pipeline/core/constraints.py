"""Constraints declared in the job spec, held in every output row.

The set follows SDV's (`Inequality`, `Range`, `FixedCombinations`, and a linear formula
as SDV's custom constraints allow), written as short text in `source.constraints`:

    checkout > checkin            inequality (also >=)
    0 <= age <= 120               range (either bound may be left out: age >= 18)
    charge = minutes * 0.17       formula: a linear relation, `+ c` allowed
    total = a + b * 2 - c + 5     formula over several columns: terms `name`, `name * k`
                                  or a number, joined by + and -
    (city, country)               fixed combinations: only pairs the source has

SDV enforces constraints inside its own synthesizers, and synthpipe imports SDV only
in its SDV-backed generators, so the repairs are done here, for every generator, by
`conform`: a formula is computed from its inputs (a row with a null input keeps its
value), a range clips, an inequality swaps
the two values of a row that breaks it (a tie steps the larger one up), a combination
the source never has becomes the source's combination that changes fewest of its values
(ties: the one keeping its first column's value, then the most common).
`holds` is the check the contract suite runs on every output row. The relations the
profile finds in the source itself are in pipeline/core/proposals.py.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import sparse
from pydantic import BaseModel, model_validator

from pipeline.core.errors import SourceError

_NAME = r"[A-Za-z_][\w.]*"
_NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_TERM = rf"[-+]?\s*(?:{_NAME}(?:\s*\*\s*{_NUM})?|{_NUM})"  # a formula's term: a, a * k, or a number
_TERMS = re.compile(rf"\s*([-+]?)\s*(?:({_NAME})(?:\s*\*\s*({_NUM}))?|({_NUM}))")
_PATTERNS = [
    ("range", re.compile(rf"^\s*(?:({_NUM})\s*<=\s*)?({_NAME})\s*(?:<=\s*({_NUM}))?\s*$")),
    ("range_min", re.compile(rf"^\s*({_NAME})\s*>=\s*({_NUM})\s*$")),
    ("inequality", re.compile(rf"^\s*({_NAME})\s*(>=|>)\s*({_NAME})\s*$")),
    ("formula", re.compile(rf"^\s*({_NAME})\s*=\s*({_TERM}(?:\s*[-+]\s*{_TERM})*)\s*$")),
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
    factors: list[float] = []  # formula: columns[0] = sum(factors[i] * columns[i + 1]) + offset
    offset: float = 0.0
    combinations: list[list[Any]] | None = None  # fixed: the source's, most common first

    @model_validator(mode="before")
    @classmethod
    def _one_factor(cls, value: Any) -> Any:
        """Profiles saved when a formula had one input wrote its factor as `factor`."""
        if isinstance(value, dict) and "factor" in value:
            value = {k: v for k, v in value.items() if k != "factor"} | {"factors": [value["factor"]]}
        return value


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
            return _formula(text, m.group(1), m.group(2))
        return Constraint(text=text, kind="fixed", columns=[c.strip() for c in m.group(1).split(",")])
    raise ValueError(
        f"cannot read constraint {text!r}; use 'a > b', 'a >= b', 'lo <= a <= hi', 'a >= lo', "
        "'a = b * k' (+ c), 'a = b + c * k - d', or '(a, b)' for fixed combinations"
    )


def _formula(text: str, target: str, terms: str) -> Constraint:
    """`target = terms`: the inputs' factors (a column named twice adds up) and the constant."""
    factors: dict[str, float] = {}
    offset = 0.0
    for sign, name, factor, number in _TERMS.findall(terms):
        value = (-1.0 if sign == "-" else 1.0) * float(factor or number or 1.0)
        if name:
            factors[name] = factors.get(name, 0.0) + value
        else:
            offset += value
    if not factors or target in factors:
        raise ValueError(f"cannot read constraint {text!r}: a formula computes its first column from other "
                         "columns, e.g. 'total = a + b * 2'")
    return Constraint(text=text, kind="formula", columns=[target, *factors], factors=list(factors.values()),
                      offset=offset)


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
        terms = [t.to_numpy() for t in _terms(c, frame)]
        expected = sum(terms) + c.offset
        scale = np.maximum(np.abs(expected), sum(np.abs(t) for t in terms))  # a difference of large terms
        ok = np.abs(x - expected) <= FORMULA_TOLERANCE * np.maximum(scale, 1e-12)
    return np.asarray(ok, dtype=bool) | null


def _terms(c: Constraint, frame: pd.DataFrame) -> list[pd.Series]:
    """A formula's inputs times their factors."""
    return [k * _numbers(frame[name]) for k, name in zip(c.factors, c.columns[1:])]


def computed(c: Constraint, frame: pd.DataFrame) -> pd.Series:
    """A formula's first column computed from its inputs (NaN where one is null)."""
    return sum(_terms(c, frame)) + c.offset


def repair(c: Constraint, frame: pd.DataFrame, step: float, kept: Collection[str] = ()) -> pd.DataFrame:
    """Make every row keep `c` (see the module docstring); `step` is the smallest
    increment of the first column, used to break an inequality's ties. A broken
    combination keeps the values of the `kept` columns (a sample's conditions)."""
    frame = frame.copy()
    first = c.columns[0]
    if c.kind == "range":
        frame[first] = frame[first].clip(lower=c.low, upper=c.high)
    elif c.kind == "formula":
        value = computed(c, frame)
        frame[first] = value.where(value.notna(), _numbers(frame[first]))
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


_NEAREST_CELLS = 2_000_000  # (row, combination) scores with a shared value held at once (~24 MB)


def _nearest(combinations: list[list[Any]], rows: pd.DataFrame, kept: Collection[str] = ()) -> np.ndarray:
    """For each row, the index of the source combination that changes the fewest of its
    values; among those, one that keeps the first column's, then the most common. A row
    whose model kept the level and its dummies but not the years of schooling changes the
    years alone. A `kept` column (a sampled condition, `grade: A`) outweighs all the others
    together: the combination found always keeps it (every value a condition may take is
    in some source combination). Scores are summed only over the combinations sharing a
    value with the row (sparse): nycflights13's 3,500 (plane, carrier) pairs would
    otherwise be compared with every row."""
    codes, seen = _coded(combinations, rows)
    weight = np.full(len(rows.columns), 2)
    weight[0] = 3  # an agreeing first column breaks a tie
    weight[[j for j, name in enumerate(rows.columns) if name in kept]] = 3 * len(rows.columns) + 1
    n = len(codes)
    holders = [sparse.csr_matrix((np.full(n, float(w)), (codes[:, j], np.arange(n))), shape=(codes[:, j].max() + 1, n))
               for j, w in enumerate(weight)]  # per column: value -> the combinations holding it, weighted
    cells = sum(np.where(seen[:, j] >= 0, np.diff(m.indptr)[np.maximum(seen[:, j], 0)], 0)
                for j, m in enumerate(holders))
    chunk = np.cumsum(cells) // _NEAREST_CELLS
    out = np.zeros(len(seen), dtype=int)
    for part in np.split(np.arange(len(seen)), np.flatnonzero(np.diff(chunk)) + 1):
        score = sparse.csr_matrix((len(part), n))
        for j, m in enumerate(holders):
            found = seen[part, j] >= 0
            pick = sparse.csr_matrix((np.ones(found.sum()), (np.flatnonzero(found), seen[part, j][found])),
                                     shape=(len(part), m.shape[0]))
            score = score + pick @ m
        score.sum_duplicates()  # sorted indices: argmax takes the first best, combinations are most common first
        out[part] = np.asarray(score.argmax(axis=1)).ravel()
    return out
