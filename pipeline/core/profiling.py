"""The profile rule: what each column is, learned in one pass over a table's rows.

A table in memory is one batch (`profile_table(frame)`); a source bigger than memory
hands its record batches over one at a time (`TableSketch.add`, pipeline/sources/stream.py):
the same code learns both, so a column profiles the same whichever way it is read.

Every fact merges exactly from batch to batch: counts, nulls, min and max, decimals
(the largest any batch needs), the grid (the gcd of all offsets from one reference
value), a discrete support (the union of values, dropped once it outgrows
MAX_SUPPORT), category sets. Two facts need more than a running total:
- "distinct in every row" (id detection): exact on the first EXACT_UNIQUE_ROWS rows,
  then an Apache DataSketches HyperLogLog estimate (flat memory; a column with more
  than ~1 % repeats is no longer taken for an id);
- what needs the rows themselves (an id's text format, proposed relations): learned
  from the first rows (the ids' first EXACT_UNIQUE_ROWS, relations' first
  `proposals._PROPOSAL_SAMPLE`, as the in-memory profile always did); integer ids
  take their exact maximum. A proposed relation is then checked on every row, as a
  declared one is, and kept only if no row breaks it.

A domain declared in the spec's `source.columns` (range, categories, nullable, decimals,
an id's start) replaces what would be learned, once every row is in (`ColumnSketch._declared`):
a private fit keeps declared facts only (pipeline/core/domains.py)."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import numpy as np
import pandas as pd

from pipeline.core import clock
from pipeline.core.constraints import Constraint, holds, parse
from pipeline.core.proposals import _PROPOSAL_SAMPLE, propose, still_fixed
from pipeline.core.errors import SourceError
from pipeline.core.identifiers import learn_format
from pipeline.core.schema import ColumnDomain, ColumnKind, ColumnProfile, TableProfile

# Decimals beyond this are treated as continuous noise, not a recorded precision.
MAX_DECIMALS = 6
# A numeric column is on a discrete support (a loan term, a survey year, an integer code)
# when it has at most MAX_SUPPORT distinct values, each seen MIN_REPEATS times on
# average: the output then takes only those values. Continuous measurements (income,
# age in fractional years) repeat far less (CreditCard: 431 incomes in 1,319 rows).
# 1,500 holds a clock coded as an integer (HHMM: at most 1,440 values; flights' `arr_time`
# has 1,335 in 30,000 rows): with 1,000 it was a plain integer and 1.5 % of synthetic
# rows had minutes past 59 (1275).
MAX_SUPPORT = 1500
MIN_REPEATS = 10
# Id columns (distinct in every row) are detected only from this many rows on: in a tiny
# table every column is distinct by chance.
MIN_ID_ROWS = 20
# Integer columns are ids when named like one or when they number the rows (a run of
# consecutive integers, rownames 1..n).
ID_NAMES = re.compile(r"(^|_)(id|key|uuid|guid|rownames?)$", re.IGNORECASE)
NESTED = (list, tuple, dict, set, bytes, bytearray, np.ndarray)
# Rows on which "distinct in every row" is decided exactly (8 bytes of hash each, plus
# the values an id's format is learned from); beyond, by a HyperLogLog estimate.
EXACT_UNIQUE_ROWS = 1_000_000
HLL_LG_K = 16  # 65,536 buckets: relative standard error 0.4 %
HLL_SLACK = 3 * 1.04 / np.sqrt(2.0**HLL_LG_K)  # a distinct estimate this far below the rows still counts as distinct
# An id column may have a few gaps: nulls or blank text (Stat2Data/Hawks' BandNumber:
# 907 band numbers in 908 rows, and two cells of " "). Taken for a category, such a
# column made the model 1,375 channels wide and let real band numbers out; fresh ids
# fill every output row instead.
MAX_ID_GAPS = 0.01


def _decimals(values: pd.Series) -> int | None:
    """Smallest number of decimals that represents every value exactly, if ≤ MAX_DECIMALS."""
    arr = values.to_numpy(dtype=float)
    for d in range(MAX_DECIMALS + 1):
        if np.allclose(np.round(arr, d), arr, rtol=0, atol=10.0 ** -(d + 3)):
            return d
    return None


def _python(value: Any) -> Any:
    """numpy scalars -> plain Python, so profiles serialise to JSON."""
    return value.item() if isinstance(value, np.generic) else value


def _kind_of(dtype: Any, all_bool: bool) -> ColumnKind:
    """A column's kind from its dtype and, for object columns, whether every value is a
    bool. Float columns stay numeric even when every value is whole (their dtype is the
    contract); their decimals (0) and grid keep the values whole."""
    if pd.api.types.is_bool_dtype(dtype) or (dtype == object and all_bool):
        return "boolean"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "datetime"
    if pd.api.types.is_integer_dtype(dtype):
        return "integer"
    if pd.api.types.is_float_dtype(dtype):
        return "numeric"
    return "categorical"


def _all_of(values: pd.Series, kind: type) -> bool:
    return bool(values.map(type).eq(kind).all())


def infer_kind(series: pd.Series) -> ColumnKind:
    """Decide a column's kind from its dtype and, for text, its values."""
    s = series.dropna()
    return _kind_of(series.dtype, series.dtype == object and len(s) > 0 and _all_of(s, bool))


def _utc_ns(series: pd.Series) -> pd.Series:
    """Timestamps as int64 ns since the epoch in UTC, whatever the unit or zone."""
    if getattr(series.dtype, "tz", None) is not None:
        series = series.dt.tz_convert("UTC").dt.tz_localize(None)
    return series.astype("datetime64[ns]").astype("int64")


def _wider(a: Any, b: Any) -> Any:
    """The dtype a column gets when batches of dtypes `a` and `b` are one table (an
    integer batch beside one with nulls: float64; bools beside bools with nulls: object)."""
    if a is None or a == b:
        return b
    return pd.concat([pd.Series([], dtype=a), pd.Series([], dtype=b)]).dtype


class ColumnSketch:
    """One column's facts, merged batch by batch; `profile()` is its ColumnProfile."""

    def __init__(self, name: str, declared: ColumnKind | ColumnDomain | dict | None, id_candidate: bool) -> None:
        self.domain = ColumnDomain.model_validate({"kind": declared} if isinstance(declared, str) else declared) \
            if declared is not None else None
        self.name, self.declared = name, self.domain.kind if self.domain else None
        self.dtype: Any = None
        self.rows = self.nulls = 0
        self.all_bool = self.all_str = True  # object columns: every value a bool / a str
        self.low = self.high = None  # numbers, or datetimes as ns since the epoch (UTC)
        self.decimals: int | None = 0
        self.ref: float | None = None  # grid: gcd of (value - ref) * 10**decimals
        self.gcd: int | None = 0
        self.support: np.ndarray | None = np.empty(0)
        self.categories: set = set()
        self.blanks = 0  # text cells of spaces only (a clock column's missing times)
        self.unique = id_candidate  # still distinct in every row that is not a gap
        self.gaps = 0  # nulls and blank text among the rows, while `unique`
        self.hashes: list[np.ndarray] = []
        self.values: list[pd.Series] = []  # the first EXACT_UNIQUE_ROWS values, an id's format
        self.hll: Any = None

    def _family(self, series: pd.Series) -> str:
        kind = self.declared or infer_kind(series)
        return {"integer": "number", "numeric": "number", "boolean": "category", "categorical": "category",
                "time": "category"}.get(kind, kind)

    def add(self, series: pd.Series) -> None:
        self.dtype = _wider(self.dtype, series.dtype)
        s = series.dropna()
        self.rows += len(series)
        self.nulls += len(series) - len(s)
        if series.dtype == object and len(s):
            self.all_bool = self.all_bool and _all_of(s, bool)
            self.all_str = self.all_str and _all_of(s, str)
        if self.unique:
            self._add_distinct(series)
        elif self.declared == "id" and self.rows - len(series) < EXACT_UNIQUE_ROWS:
            self.values.append(s.copy())
        if not len(s):
            return
        family = self._family(series)
        if family == "number":
            self._add_numbers(s)
        elif family == "id" and pd.api.types.is_integer_dtype(s.dtype):
            self._range(float(s.min()), float(s.max()))
        elif family == "datetime":
            ns = _utc_ns(s)
            self._range(float(ns.min()), float(ns.max()))
        elif family == "category":
            self.categories.update(_python(v) for v in s.unique())
            if self.all_str and (series.dtype == object or isinstance(series.dtype, pd.StringDtype)):
                self.blanks += int(s.str.strip().eq("").sum())

    def _range(self, low: float, high: float) -> None:
        self.low = low if self.low is None else min(self.low, low)
        self.high = high if self.high is None else max(self.high, high)

    def _add_numbers(self, s: pd.Series) -> None:
        try:
            values = pd.to_numeric(s).to_numpy(dtype="float64")
        except (TypeError, ValueError):
            raise SourceError(f"column {self.name!r} is declared {self.declared} but holds values that are not "
                              "numbers") from None
        self._range(float(values.min()), float(values.max()))
        d = _decimals(s)
        if d is None or self.decimals is None:
            self.decimals = self.gcd = None
        else:
            if self.ref is None:
                self.ref = float(values[0])
            top = max(d, self.decimals)
            offsets = np.round((values - self.ref) * 10.0**top).astype("int64")
            self.gcd = int(np.gcd(self.gcd * 10 ** (top - self.decimals), np.gcd.reduce(np.abs(offsets))))
            self.decimals = top
        if self.support is not None:
            self.support = np.union1d(self.support, np.unique(values))
            if len(self.support) > MAX_SUPPORT:
                self.support = None

    def _add_distinct(self, series: pd.Series) -> None:
        """Keep `unique` true while no value repeats, gaps (nulls, blank text) aside; their
        share is judged once every row is in (`is_id`)."""
        if not (pd.api.types.is_integer_dtype(series.dtype) or isinstance(series.dtype, pd.StringDtype)
                or (series.dtype == object and self.all_str)):
            self.unique, self.hashes, self.values = False, [], []
            return
        present = series.dropna()
        if not pd.api.types.is_integer_dtype(present.dtype):
            present = present[present.astype(str).str.strip() != ""]
        self.gaps += len(series) - len(present)
        series = present
        hashes = pd.util.hash_array(series.to_numpy())
        if self.hll is None:
            self.hashes.append(hashes)
            self.values.append(series.copy())  # a view would keep the whole batch's block alive
            seen = np.concatenate(self.hashes)
            if len(np.unique(seen)) < len(seen):
                self.unique, self.hashes, self.values = False, [], []
            elif len(seen) > EXACT_UNIQUE_ROWS:  # from here on, a sketch
                from datasketches import hll_sketch

                self.hll = hll_sketch(HLL_LG_K)
                hashes = seen
        if self.hll is not None:
            for h in hashes.view("int64").tolist():
                self.hll.update(h)
            self.hashes = []

    def is_id(self) -> bool:
        """Distinct in every row but a few gaps, text or integers that number or key the rows."""
        if self.rows < MIN_ID_ROWS or not self.unique or self.gaps > MAX_ID_GAPS * self.rows:
            return False
        if self.hll is not None and self.hll.get_estimate() < (self.rows - self.gaps) * (1 - HLL_SLACK):
            return False
        if pd.api.types.is_integer_dtype(self.dtype):
            consecutive = int(self.high) - int(self.low) + 1 == self.rows - self.gaps
            return consecutive or bool(ID_NAMES.search(self.name))
        return isinstance(self.dtype, pd.StringDtype) or (self.dtype == object and self.all_str)

    def profile(self, kind: ColumnKind | None = None, *, clock_times: bool = False) -> ColumnProfile:
        """`clock_times`: a text column of clock times in one format (pipeline/core/clock.py)
        is profiled as `time` unless its kind is declared."""
        kind = kind or self.declared or _kind_of(self.dtype, self.rows > self.nulls and self.all_bool)
        prof: dict[str, Any] = {"name": self.name, "kind": kind, "dtype": str(self.dtype),
                                "null_fraction": self.nulls / self.rows if self.rows else float("nan")}
        fmt = clock.learn_format(self.categories) if kind in ("categorical", "time", "id") and self.all_str else None
        if kind == "time" and fmt is None:
            raise SourceError(f"column {self.name!r} is declared time in source.columns, but its values are not "
                              "clock times (\"15:20\", \"9:05:30\") in one format with one blank text: declare it "
                              "categorical")
        if kind in ("categorical", "id") and fmt is not None and clock_times and self.declared is None:
            prof["kind"] = kind = "time"
        if kind == "time":
            prof.update(self._clock_facts(fmt))
        elif kind in ("numeric", "integer"):
            prof["min"], prof["max"] = self.low, self.high
            decimals = 0 if kind == "integer" else self.decimals
            prof["decimals"] = decimals
            count = self.rows - self.nulls
            prof["step"] = (self.gcd / 10.0**decimals if self.gcd and decimals is not None and count >= 2
                            else None)
            if self.support is not None and count >= MIN_REPEATS * len(self.support):
                prof["support"] = self.support.tolist()
        elif kind == "datetime":
            prof["min"], prof["max"] = self.low, self.high
        elif kind == "id":
            fmt = learn_format(pd.concat(self.values, ignore_index=True))
            if fmt.last_int is not None:  # beyond the exact rows, the largest id of all
                fmt.last_int = int(self.high)
            prof["id_format"] = fmt
        else:
            prof["categories"] = sorted(self.categories, key=lambda v: (str(type(v)), v))
        if self.domain is not None:
            prof = self._declared(prof)
        return ColumnProfile(**prof)

    def _clock_facts(self, fmt: clock.ClockFormat) -> dict[str, Any]:
        """A time column's facts in seconds of the day: range, grid (the gcd of the offsets:
        60 for times to the minute) and, as for numbers, its discrete support when each
        time repeats MIN_REPEATS times on average."""
        seconds = np.unique(clock.seconds_of_day(list(self.categories)))
        seconds = seconds[~np.isnan(seconds)]
        offsets = (seconds - seconds[0]).astype("int64")
        step = int(np.gcd.reduce(offsets)) or None
        count = self.rows - self.nulls - self.blanks
        support = seconds.tolist() if len(seconds) <= MAX_SUPPORT and count >= MIN_REPEATS * len(seconds) else None
        return {"min": float(seconds[0]), "max": float(seconds[-1]), "decimals": 0, "step": step,
                "support": support, "clock": fmt}

    def _declared(self, prof: dict[str, Any]) -> dict[str, Any]:
        """The profile with the declared domain in place of the learned facts: a range
        replaces min, max, support, grid and decimals; categories the category list (or a
        number column's support). Every source value must lie within it."""
        d, kind, name = self.domain, prof["kind"], self.name
        if d.nullable is False and self.nulls:
            raise SourceError(f"column {name!r} is declared nullable: false in source.columns but has {self.nulls} "
                              "missing values: declare nullable: true, or fill them")
        if d.range is not None:
            if kind not in ("numeric", "integer", "datetime"):
                raise SourceError(f"source.columns.{name}.range: a range bounds numbers or times, and {name!r} is "
                                  f"{kind}; declare its categories instead")
            low, high = (_declared_ns(v) if kind == "datetime" else float(v) for v in d.range)
            if not low < high:
                raise SourceError(f"source.columns.{name}.range: give [low, high] with low < high, got {list(d.range)}")
            if self.low is not None and (self.low < low or self.high > high):
                raise SourceError(f"column {name!r} has values outside its declared range {list(d.range)}: widen the "
                                  "range in source.columns (it must hold every value the column may take)")
            prof.update(min=low, max=high, support=None, step=None,
                        decimals=0 if kind == "integer" else d.decimals)
        if d.categories is not None:
            allowed = [_python(v) for v in d.categories]
            if kind in ("numeric", "integer"):
                seen = set(self.support.tolist()) if self.support is not None else None
                prof.update(support=sorted(allowed), min=min(allowed), max=max(allowed), step=None)
            elif kind in ("categorical", "boolean"):
                seen, prof["categories"] = self.categories, allowed
            else:
                raise SourceError(f"source.columns.{name}.categories: {name!r} is {kind}; categories list the "
                                  "values of a categorical, boolean or discrete number column")
            if seen is None or seen - set(allowed):
                raise SourceError(f"column {name!r} has values outside its declared categories: list every value "
                                  "it may take in source.columns")
        if d.quantiles is not None:
            _check_quantiles(name, kind, d)
        if d.step is not None:
            _check_step(name, kind, d.step)
        if d.start is not None:
            fmt = prof.get("id_format")
            if fmt is None or fmt.last_int is None:
                raise SourceError(f"source.columns.{name}.start: only an integer id column has a first fresh id; "
                                  f"{name!r} is {kind}")
            if d.start <= fmt.last_int:
                raise SourceError(f"source.columns.{name}.start: fresh ids must lie above every real id; declare a "
                                  f"start above the largest {name!r} the column may hold")
            fmt.last_int = d.start - 1
        prof["domain"] = d
        return prof


def _check_quantiles(name: str, kind: str, d: ColumnDomain) -> None:
    """Declared quantiles shape a number column within its declared range: in order, inside it."""
    if kind not in ("numeric", "integer") or d.range is None:
        raise SourceError(f"source.columns.{name}.quantiles: quantiles shape a number column within its declared "
                          f"range; {name!r} is {kind}{'' if d.range is not None else ' without a range'}: declare a "
                          "range with them, or drop them")
    q, (low, high) = np.asarray(d.quantiles, dtype="float64"), (float(v) for v in d.range)
    if len(q) == 0 or (np.diff(q) < 0).any() or q[0] < low or q[-1] > high:
        raise SourceError(f"source.columns.{name}.quantiles: give the values at evenly spaced probabilities in "
                          f"increasing order within the range {list(d.range)} (the deciles: 9 values), got {d.quantiles}")


def _check_step(name: str, kind: str, step: float | str) -> None:
    """A declared time step is a positive number for number times, a pandas frequency for timestamps."""
    if kind == "datetime":
        try:
            pd.tseries.frequencies.to_offset(str(step))
            return
        except ValueError:
            pass
    elif kind in ("numeric", "integer") and not isinstance(step, str) and step > 0:
        return
    want = "a pandas frequency such as MS, D, h or 15min" if kind == "datetime" else "a positive number such as 1"
    raise SourceError(f"source.columns.{name}.step: {name!r} is {kind}, so its time step is {want}; got {step!r}")


def _declared_ns(value: Any) -> float:
    """A declared time (ISO text, a date) as ns since the epoch in UTC (naive times are UTC)."""
    stamp = pd.Timestamp(value)
    return float((stamp.tz_convert("UTC") if stamp.tzinfo else stamp).value)


def _check_flat(frame: pd.DataFrame) -> None:
    """Refuse nested, list and binary cells: no generator models them."""
    nested = [
        str(c) for c in frame.columns
        if frame[c].dtype == object and frame[c].dropna().map(lambda v: isinstance(v, NESTED)).any()
    ]
    if nested:
        raise SourceError(
            f"column(s) {', '.join(map(repr, nested))} hold nested, list or binary values, which tabular "
            "generators cannot model: drop them or flatten them into scalar columns"
        )


def _numbers(columns: list[ColumnProfile]) -> list[str]:
    """Columns a proposed formula may link."""
    return [c.name for c in columns if c.kind in ("numeric", "integer")]


def _discrete(columns: list[ColumnProfile]) -> list[str]:
    """Columns a proposed fixed combination may link: categories, booleans, and numbers
    on a discrete support (0/1 dummies, integer codes), whatever their dtype."""
    return [c.name for c in columns
            if c.kind in ("categorical", "boolean") or (c.kind in ("numeric", "integer") and c.support)]


def _sketched(frame: pd.DataFrame, kinds: dict[str, Any]) -> list["ColumnSketch"]:
    """Each column of `frame` sketched alone, of its declared kind but without the
    refusals, which are for every row (a column null in the first rows may fill later;
    a declared id `start` is checked once the column is found to be an id)."""
    def kind(declared: Any) -> Any:
        return declared if declared is None or isinstance(declared, str) else ColumnDomain.model_validate(declared).kind

    out = [ColumnSketch(str(c), kind(kinds.get(str(c))), id_candidate=False) for c in frame.columns]
    for sketch, c in zip(out, frame.columns):
        sketch.add(frame[c])
    return out


class _Tally:
    """Constraints checked batch by batch: the rows breaking each, and each fixed
    combination's combinations with their counts (its repair takes the most common)."""

    def __init__(self, constraints: list[Constraint]) -> None:
        self.constraints = constraints
        self.broken = [0] * len(constraints)
        self.combinations: list[Counter] = [Counter() for _ in constraints]

    def add(self, frame: pd.DataFrame) -> "_Tally":
        for i, c in enumerate(self.constraints):
            if c.kind == "fixed":
                combos = frame[c.columns].dropna().value_counts()
                self.combinations[i].update({tuple(_python(v) for v in key): n for key, n in combos.items()})
            else:
                self.broken[i] += int((~holds(c, frame)).sum())
        return self

    def bound(self) -> list[tuple[Constraint, int, Counter]]:
        """Each constraint with what its repair needs, the rows that broke it (a fixed
        combination holds on the rows it was learned from) and its combinations' counts."""
        out = []
        for c, broken, combos in zip(self.constraints, self.broken, self.combinations):
            if c.kind == "fixed":
                c = c.model_copy(update={"combinations": [list(key) for key, _ in combos.most_common()]})
            out.append((c, broken, combos))
        return out


class TableSketch:
    """A table's profile learned batch by batch: `add` every batch of rows (DataFrames
    with the same columns), then `profile()`. `kinds` overrides inferred kinds per
    column; `detect_ids` profiles key columns as `id` and text columns of clock times
    as `time` (tables only: a time series' entity column is a key by design, and its
    encoders model no clock text); `constraints` (the spec's text) must hold on
    every source row."""

    def __init__(self, *, kinds: dict[str, ColumnKind | ColumnDomain] | None = None, detect_ids: bool = False,
                 constraints: list[str] | None = None) -> None:
        self.kinds, self.detect_ids = dict(kinds or {}), detect_ids
        self.constraints = [parse(text) for text in constraints or []]
        self.columns: list[str] | None = None
        self.sketches: dict[str, ColumnSketch] = {}
        self.head: list[pd.DataFrame] = []  # the first _PROPOSAL_SAMPLE rows: relations are looked for there
        self.head_rows = self.rows = 0
        self.declared = _Tally(self.constraints)
        self.proposed: _Tally | None = None  # once the head is read: the relations found there

    def _start(self, frame: pd.DataFrame) -> None:
        self.columns = [str(c) for c in frame.columns]
        if not self.columns:
            raise SourceError("the source has no columns: check the file and its delimiter")
        unknown = sorted(set(self.kinds) - set(self.columns))
        if unknown:
            raise SourceError(f"source.columns names column(s) {', '.join(map(repr, unknown))} not in the source")
        for c in self.constraints:
            missing = [name for name in c.columns if name not in self.columns]
            if missing:
                raise SourceError(f"constraint {c.text!r} names column(s) {', '.join(map(repr, missing))} not in "
                                  "the source")
        self.sketches = {c: ColumnSketch(c, self.kinds.get(c), self.detect_ids) for c in self.columns}
        for sketch in self.sketches.values():  # a declared kind is the column's kind: no id detection
            sketch.unique = sketch.unique and sketch.declared is None

    def add(self, frame: pd.DataFrame) -> "TableSketch":
        if self.columns is None:
            self._start(frame)
        elif [str(c) for c in frame.columns] != self.columns:
            raise SourceError(f"a batch of the source has columns {list(frame.columns)}, the first had "
                              f"{self.columns}: every part of a source needs the same columns")
        _check_flat(frame)
        for c, series in zip(self.columns, frame.columns):
            self.sketches[c].add(frame[series])
        self.declared.add(frame)
        rest = frame
        if self.detect_ids and self.head_rows < _PROPOSAL_SAMPLE:
            self.head.append(frame.head(_PROPOSAL_SAMPLE - self.head_rows).copy())
            self.head_rows += len(self.head[-1])
            rest = frame.iloc[len(self.head[-1]):]
            if self.head_rows == _PROPOSAL_SAMPLE:
                self._propose()
        if self.proposed is not None and len(rest):
            self.proposed.add(rest)
        self.rows += len(frame)
        return self

    def _bound(self) -> list[Constraint]:
        out = []
        for c, broken, _ in self.declared.bound():
            if broken:
                raise SourceError(
                    f"constraint {c.text!r} fails on {broken} of {self.rows} source rows: "
                    "a generator cannot learn a rule the source breaks; fix the data or the constraint"
                )
            out.append(c)
        return out

    def _propose(self) -> None:
        """Look for exact relations in the first rows (`propose`, on the kinds those rows
        have); from here on every row is checked against them."""
        head = pd.concat(self.head, ignore_index=True) if len(self.head) > 1 else self.head[0]
        self.head = []
        kinds = [sketch.profile() for sketch in _sketched(head, self.kinds) if sketch.nulls < sketch.rows]
        known = {c.text.replace(" ", "") for c in self.declared.constraints}
        found = [parse(text) for text in propose(head, _numbers(kinds), _discrete(kinds))
                 if text.replace(" ", "") not in known]
        self.proposed = _Tally(found).add(head)

    def _kept_proposals(self, columns: list[ColumnProfile]) -> list[Constraint]:
        """The proposals that every source row keeps (a fixed combination: its first
        column still fixes the others), on columns that still have their kind (a support
        can outgrow MAX_SUPPORT after the first rows)."""
        if not self.detect_ids:  # tables only: a time series' relations are its model's
            return []
        if self.proposed is None:
            self._propose()
        fits = {"formula": set(_numbers(columns)), "fixed": set(_discrete(columns))}
        return [c for c, broken, counts in self.proposed.bound()
                if not broken and set(c.columns) <= fits[c.kind] and (c.kind != "fixed" or still_fixed(c, counts))]

    def profile(self) -> TableProfile:
        """The table's profile; refuses tables a generator could not learn from."""
        if self.columns is None or self.rows == 0:
            raise SourceError("the source table is empty (0 rows): a generator needs data to learn from")
        empty = [c for c, s in self.sketches.items() if s.nulls == s.rows]
        if empty:
            raise SourceError(
                f"column(s) {', '.join(map(repr, empty))} are entirely null: drop them from the source "
                "or fill them; a generator cannot learn a distribution from no values"
            )
        columns = [s.profile("id" if s.unique and s.is_id() else None, clock_times=self.detect_ids)
                   for s in self.sketches.values()]
        return TableProfile(columns=columns, n_rows=self.rows, constraints=self._bound(),
                            proposed_constraints=self._kept_proposals(columns))


def profile_column(series: pd.Series, kind: ColumnKind | ColumnDomain | None = None) -> ColumnProfile:
    """Profile one column; `kind` overrides the inferred kind or declares the domain (the job
    spec's `source.columns`)."""
    sketch = ColumnSketch(str(series.name), kind, id_candidate=False)
    sketch.add(series)
    return sketch.profile()


def profile_table(
    frame: pd.DataFrame, *, kinds: dict[str, ColumnKind | ColumnDomain] | None = None, detect_ids: bool = False,
    constraints: list[str] | None = None,
) -> TableProfile:
    """Profile a table in memory: one batch of the streaming rule."""
    if frame.shape[1] == 0:
        raise SourceError("the source has no columns: check the file and its delimiter")
    return TableSketch(kinds=kinds, detect_ids=detect_ids, constraints=constraints).add(frame).profile()
