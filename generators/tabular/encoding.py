"""The shared table encoder: a DataFrame <-> a float32 matrix for neural generators.

Continuous columns (numeric, integer, datetime as int64 ns, clock times as seconds of
the day) are quantile-normalised to
a standard Gaussian with scikit-learn's `QuantileTransformer`, so a network sees the same
well-scaled marginal whatever the source's skew or units. Categorical and boolean
columns become one-hot spans, and so do numeric columns on a small discrete support
(at most `ONEHOT_SUPPORT` values: a loan term, a survey year): the model then picks one
of the source's values instead of learning a spiky density. Categoricals with more than
`MAX_ONEHOT_CLASSES` classes (flights' `tailnum`: 3,653 of the row's 3,859 channels) are
one continuous channel instead: the class's rank by frequency in the source, quantile-
normalised like a number and decoded to the nearest rank, so only seen classes come out and
each keeps its share (the quantile map gives every class a stretch of the Gaussian as wide
as its share). As a 3,652-wide span, flights' `tailnum` drowned the rest of the row: after
1,000 steps the dep/arr delay correlation (0.65 in the quantile-normal source) came out 0.05
with the span, 0.51 with the rank channel, 0.52 without the column; the fit took 350 CPU s
against 33 and sampling 4.5x longer. A rank channel keeps the column's marginal, and its
relations to the rest only as far as they follow the rank. Id columns are not
modelled: fresh ids in the source's format are made for each output row
(`pipeline.core.identifiers`). Every column with nulls in the source gets a missing
channel: categoricals an extra "missing" class at the end of their span, continuous
columns a two-class [observed, missing] span. Missing values are thereby one more
category to learn, reproduced at the rate the model learns, and every discrete choice
in the matrix is a one-hot span decoded the same way: argmax over the known classes
only, so no unseen category can ever come out.

Matrix layout: the `n_continuous` continuous channels first, then the one-hot spans,
so a model can split `x[:, :n_continuous]` from `x[:, n_continuous:]` (TabDDPM-style).

Decoding ends with `pipeline.core.schema.conform`, which snaps numbers to the source's
support or grid and casts to the source's exact dtypes. The fitted state is JSON plus plain tensors.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.preprocessing import QuantileTransformer

from pipeline.core import clock
from pipeline.core.errors import BadInputError, ConditionError
from pipeline.core.identifiers import fresh_ids
from pipeline.core.schema import ColumnProfile, TableProfile, conform

CONTINUOUS = ("numeric", "integer", "datetime", "time")
DISCRETE = ("categorical", "boolean")
# Numeric columns with at most this many distinct values are modelled as categories
# (ISLR/Wage `year`: 7, AER/CreditCard `reports`: 13, AER/CPS1988 `education`: 19);
# larger supports (an occupation code) stay continuous and are snapped to the support.
ONEHOT_SUPPORT = 32
# Categoricals with more classes are a ranked channel, not a one-hot span (the module docstring says
# why). 255 keeps every class set the metrics' gradient boosting splits on natively (flights' `dest`:
# 103) a span.
MAX_ONEHOT_CLASSES = 255
MAX_QUANTILES = 1000  # scikit-learn's default: enough resolution for any marginal
QUANTILE_SUBSAMPLE = 100_000  # rows used to estimate quantiles on large tables
# The attributes a fitted QuantileTransformer keeps: saved as tensors, set back on load.
_QT_ARRAYS = ("quantiles_", "references_")
# Dequantisation noise spans this share of a resolution step: below 1 so that rounding
# (which ties to even at exactly half a step) always recovers the original value.
JITTER_WIDTH = 0.98
# Datetime resolutions tried, coarsest first (ns): day, hour, minute, second, ms, us, ns.
_TIME_STEPS = (86_400 * 10**9, 3_600 * 10**9, 60 * 10**9, 10**9, 10**6, 10**3, 1)


# ---- helpers --------------------------------------------------------------------------


def _public_grid(col: ColumnProfile) -> np.ndarray:
    """MAX_QUANTILES values at evenly spaced probabilities from the profile alone: uniform
    on [min, max], or piecewise linear through the declared quantiles (`source.columns`),
    so a skewed column's body gets as much of the Gaussian as the rows' quantiles give it
    (HMDA's pirat: half its rows within 0.28-0.37 of a declared [0, 3])."""
    quantiles = col.domain.quantiles if col.domain is not None else None
    if not quantiles:
        return np.linspace(col.min, col.max, MAX_QUANTILES)
    knots = np.array([col.min, *quantiles, col.max], dtype="float64")
    return np.interp(np.linspace(0, 1, MAX_QUANTILES), np.linspace(0, 1, len(knots)), knots)


def _to_float(series: pd.Series, col: ColumnProfile) -> np.ndarray:
    """A continuous column as float64 with NaN for nulls; datetimes as ns since epoch (UTC),
    clock times as seconds of the day (their blank text is a null too)."""
    if col.kind == "time":
        return clock.seconds_of_day(series)
    if col.kind != "datetime":
        return pd.to_numeric(series).to_numpy(dtype="float64", na_value=np.nan)
    stamps = pd.to_datetime(series)
    if stamps.dt.tz is not None:
        stamps = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
    ns = stamps.astype("datetime64[ns]")
    return np.where(ns.isna(), np.nan, ns.to_numpy().view("int64").astype("float64"))


def _has_missing(series: pd.Series, col: ColumnProfile) -> bool:
    """Nulls, or for a clock column blank text too: both are its missing class."""
    return bool(np.isnan(_to_float(series, col)).any() if col.kind == "time" else series.isna().any())


def _time_step(ns: np.ndarray) -> int:
    """The coarsest resolution every timestamp sits on (dates stay dates): the datetime
    counterpart of a numeric column's decimals."""
    ns = ns[~np.isnan(ns)].astype("int64")
    return next(step for step in _TIME_STEPS if not np.any(ns % step))


def is_ranked(col: ColumnProfile) -> bool:
    """Whether the encoder models the categorical `col` as one channel of its classes' ranks."""
    return col.kind == "categorical" and len(col.categories or []) > MAX_ONEHOT_CLASSES


def is_onehot(col: ColumnProfile) -> bool:
    """Whether the encoder models `col` as a one-hot span."""
    if col.kind in DISCRETE:
        return not is_ranked(col)
    return col.kind in ("numeric", "integer") and col.support is not None and len(col.support) <= ONEHOT_SUPPORT


def values_of(col: ColumnProfile) -> list[Any]:
    """The classes of a one-hot column: its categories or its numeric support."""
    return list(col.categories if col.kind in DISCRETE else col.support or [])


def _from_float(values: np.ndarray, col: ColumnProfile, time_step: int = 1) -> pd.Series:
    """Inverse of `_to_float` for a decoded column, before `conform` snaps and casts it."""
    if col.kind == "datetime":
        isnull = np.isnan(values)
        ticks = np.round(np.where(isnull, 0, values) / time_step).astype("int64")
        ns = pd.array(ticks * time_step, dtype="Int64")
        ns[isnull] = pd.NA
        tz = getattr(pd.api.types.pandas_dtype(col.dtype), "tz", None)
        stamps = pd.to_datetime(ns, unit="ns", utc=tz is not None)
        return pd.Series(stamps.tz_convert(tz) if tz is not None else stamps)
    return pd.Series(values)


def _same_number(a: Any, b: Any) -> bool:
    try:
        return float(a) == float(b)
    except (TypeError, ValueError):
        return False


def _onehot(codes: np.ndarray, width: int) -> np.ndarray:
    out = np.zeros((len(codes), width), dtype="float32")
    out[np.arange(len(codes)), codes] = 1.0
    return out


@dataclass(frozen=True)
class ColumnLayout:
    """Where one source column lives in the matrix.

    `value` is its continuous channel (continuous columns) or None; `span` is
    its one-hot span (discrete columns: the categories, then "missing" if nullable;
    continuous columns with nulls: [observed, missing]) or None."""

    name: str
    kind: str
    value: int | None
    span: tuple[int, int] | None
    has_missing: bool


# ---- the encoder ----------------------------------------------------------------------


class TableEncoder:
    """Fit on a table and its profile; `transform` to a matrix, `inverse_transform` back.

    `layout` lists every column's place in the matrix; `spans` are all one-hot spans
    as (start, stop), in order, after the `n_continuous` continuous channels."""

    def __init__(self) -> None:
        self.profile_: TableProfile | None = None
        self.layout_: list[ColumnLayout] = []
        self.quantiles_: QuantileTransformer | None = None
        self.time_steps_: dict[str, int] = {}
        # Per ranked categorical, each class's rank (in profile order): most frequent first, or
        # in a private fit the profile's order (no row read).
        self.ranks_: dict[str, np.ndarray] = {}

    # ---- fitting ----------------------------------------------------------------------

    def fit(self, frame: pd.DataFrame, profile: TableProfile, *, private: bool = False) -> "TableEncoder":
        """Learn the layout and the quantile maps of `profile`'s columns from `frame`.

        `private`: the maps come from the profile alone, never from `frame`'s values. A
        DP-SGD fit's ε covers only its gradient steps, and quantiles estimated from the
        rows are (on a small table) the rows themselves: a record far in a tail would
        move the top quantile, and every output drawn there would show it
        (bench/dp_outlier.py measured exactly that). Here each continuous column gets
        the quantiles of a grid on the profile's [min, max] (`_public_grid`): uniform, an
        affine map to [0, 1] followed by the normal quantile function, or through the
        declared quantiles; the network learns the rest of the shape."""
        missing = [c for c in profile.names if c not in frame.columns]
        if missing:
            raise BadInputError(f"the table lacks profiled column(s) {', '.join(map(repr, missing))}")
        self.profile_ = profile
        nullable = {c.name for c in profile.columns if (c.null_fraction > 0 if private else _has_missing(frame[c.name], c))}
        self.layout_ = self._plan(profile, nullable)
        self.ranks_ = {c.name: self._ranks(frame[c.name], c, private) for c in filter(is_ranked, profile.columns)}
        continuous = self._continuous_columns()
        if continuous:
            values = self._values(frame, continuous)
            # A datetime's resolution: the rows', or in a private fit the declared range's ends'.
            self.time_steps_ = {
                c.name: _time_step(np.array([c.min, c.max]) if private else v)
                for c, v in zip(continuous, values.T) if c.kind == "datetime"
            }
            if private:
                grid = np.column_stack([np.linspace(0, len(c.categories) - 1, MAX_QUANTILES) if is_ranked(c)
                                        else _public_grid(c) for c in continuous])
                self.quantiles_ = self._quantile_transformer(MAX_QUANTILES).fit(grid)
            else:
                self.quantiles_ = self._quantile_transformer(len(frame)).fit(self._dequantise(values))
        return self

    @staticmethod
    def _plan(profile: TableProfile, nullable: set[str]) -> list[ColumnLayout]:
        """Continuous channels first, then one-hot spans, each in source column order."""
        continuous = [c for c in profile.columns if (c.kind in CONTINUOUS and not is_onehot(c)) or is_ranked(c)]
        layout, cursor = {}, len(continuous)
        for i, col in enumerate(continuous):
            span = (cursor, cursor + 2) if col.name in nullable else None
            cursor += 2 if span else 0
            layout[col.name] = ColumnLayout(col.name, col.kind, i, span, span is not None)
        for col in filter(is_onehot, profile.columns):
            width = len(values_of(col)) + (col.name in nullable)
            layout[col.name] = ColumnLayout(col.name, col.kind, None, (cursor, cursor + width), col.name in nullable)
            cursor += width
        return [layout[c.name] for c in profile.columns if c.kind != "id"]

    def _ranks(self, series: pd.Series, col: ColumnProfile, private: bool) -> np.ndarray:
        """Each class's rank: by falling count in `series` (ties in profile order)."""
        if private:
            return np.arange(len(col.categories))
        codes = self._codes(series, col)
        counts = np.bincount(codes[codes >= 0], minlength=len(col.categories))
        return np.argsort(np.argsort(-counts, kind="stable"))

    @staticmethod
    def _quantile_transformer(n_rows: int) -> QuantileTransformer:
        return QuantileTransformer(
            n_quantiles=min(MAX_QUANTILES, n_rows),
            output_distribution="normal",
            subsample=QUANTILE_SUBSAMPLE,
            random_state=0,  # the quantile estimate on a subsample is reproducible
        )

    # ---- layout -----------------------------------------------------------------------

    @property
    def profile(self) -> TableProfile:
        if self.profile_ is None:
            raise BadInputError("the TableEncoder is not fitted: call fit(frame, profile) first")
        return self.profile_

    @property
    def layout(self) -> list[ColumnLayout]:
        return self.layout_

    @property
    def n_continuous(self) -> int:
        return sum(lay.value is not None for lay in self.layout_)

    @property
    def spans(self) -> list[tuple[int, int]]:
        return sorted(lay.span for lay in self.layout_ if lay.span is not None)

    @property
    def dim(self) -> int:
        return max([self.n_continuous] + [stop for _, stop in self.spans])

    def column_layout(self, name: str) -> ColumnLayout:
        for lay in self.layout_:
            if lay.name == name:
                return lay
        raise KeyError(name)

    def category_index(self, column: str, value: Any) -> int:
        """Matrix index of `column == value` (the value or its string form, as conditions
        come from YAML and the CLI)."""
        col = self.profile.column(column)
        lay = self.column_layout(column)
        if is_ranked(col):
            raise ConditionError(
                f"column {column!r} has {len(col.categories)} categories, more than {MAX_ONEHOT_CLASSES}: it is "
                "modelled as one channel of ranks, which a condition cannot fix; condition on another column"
            )
        if not is_onehot(col):
            raise ConditionError(
                f"column {column!r} is {col.kind}; only categorical, boolean or discrete numeric columns "
                "have categories"
            )
        classes = values_of(col)
        for i, category in enumerate(classes):
            if category == value or str(category) == str(value) or _same_number(category, value):
                return lay.span[0] + i
        raise ConditionError(f"{column}={value!r} was never seen in the source; seen: {classes}")

    def _onehot_columns(self) -> list[ColumnProfile]:
        return [c for c in self.profile.columns if is_onehot(c)]

    def _continuous_columns(self) -> list[ColumnProfile]:
        return [self.profile.column(lay.name) for lay in self.layout_ if lay.value is not None]

    def _values(self, frame: pd.DataFrame, columns: list[ColumnProfile]) -> np.ndarray:
        """The continuous columns' values as float64 columns (NaN for nulls); ranked
        categoricals as their classes' ranks."""
        def one(col: ColumnProfile) -> np.ndarray:
            if not is_ranked(col):
                return _to_float(frame[col.name], col)
            codes = self._codes(frame[col.name], col)
            return np.where(codes < 0, np.nan, self.ranks_[col.name][np.maximum(codes, 0)])
        return np.column_stack([one(c) for c in columns])

    def _from_ranks(self, values: np.ndarray, col: ColumnProfile) -> pd.Series:
        """Decoded ranks -> the class of the nearest rank; NaN stays a null."""
        by_rank = np.empty(len(col.categories), dtype=object)
        by_rank[self.ranks_[col.name]] = col.categories
        ranks = np.clip(np.round(np.nan_to_num(values)), 0, len(by_rank) - 1).astype(int)
        return pd.Series(np.where(np.isnan(values), None, by_rank[ranks]))

    def _dequantise(self, values: np.ndarray) -> np.ndarray:
        """Spread each value uniformly over its resolution step (integers: 1, numerics:
        10^-decimals, datetimes: their time step), as flows dequantise discrete data.
        Without it the quantile map sends every tie at the minimum or maximum (a count's
        zeros, a year's first value) to the ±5.2 clip of the Gaussian; decoding rounds to
        the step, so the round trip stays exact. Fixed noise: the same rows encode the same."""
        steps = np.array([self._resolution(c) for c in self._continuous_columns()])
        jitter = np.random.default_rng(0).random(values.shape) - 0.5
        return values + JITTER_WIDTH * jitter * steps

    def _resolution(self, col: ColumnProfile) -> float:
        """The source's grid step: decoding snaps back onto it."""
        if col.kind == "datetime":
            return float(self.time_steps_[col.name])
        return 1.0 if is_ranked(col) else float(col.step or 0.0)

    # ---- encoding ---------------------------------------------------------------------

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """Rows -> float32 matrix of width `dim` (nulls become their missing class)."""
        out = np.zeros((len(frame), self.dim), dtype="float32")
        continuous = self._continuous_columns()
        if continuous:
            values = self._values(frame, continuous)
            normal = self.quantiles_.transform(self._dequantise(values))  # NaN passes through
            out[:, : len(continuous)] = np.nan_to_num(normal, nan=0.0)
            for col, isnull in zip(continuous, np.isnan(values).T):
                lay = self.column_layout(col.name)
                self._check_nulls(lay, isnull)
                if lay.span is not None:
                    out[:, lay.span[0] : lay.span[1]] = _onehot(isnull.astype(int), 2)
        for col in self._onehot_columns():
            lay = self.column_layout(col.name)
            codes = self._codes(frame[col.name], col)
            isnull = codes < 0
            self._check_nulls(lay, isnull)
            start, stop = lay.span
            out[:, start:stop] = _onehot(np.where(isnull, len(values_of(col)), codes), stop - start)
        return out

    @staticmethod
    def _codes(series: pd.Series, col: ColumnProfile) -> np.ndarray:
        """Category codes, -1 for nulls; a value outside the profile is an error."""
        values = series.astype(object) if col.kind in DISCRETE else pd.to_numeric(series).astype("float64")
        codes = pd.Categorical(values, categories=values_of(col)).codes.astype(int)
        unseen = (codes < 0) & series.notna().to_numpy()
        if unseen.any():
            values = ", ".join(map(repr, series[unseen].unique()[:5]))
            raise BadInputError(f"column {col.name!r} has value(s) {values} not in its profile; refit the encoder")
        return codes

    @staticmethod
    def _check_nulls(lay: ColumnLayout, isnull: np.ndarray) -> None:
        if isnull.any() and not lay.has_missing:
            raise BadInputError(
                f"column {lay.name!r} has nulls but had none when the encoder was fitted; refit on data with them"
            )

    # ---- decoding ---------------------------------------------------------------------

    def inverse_transform(self, matrix: np.ndarray | torch.Tensor, *, start: int = 0,
                          kept: Collection[str] = ()) -> pd.DataFrame:
        """Matrix -> rows with the source's columns and dtypes. One-hot spans decode by
        argmax (any scores work: one-hots, probabilities, logits). `start` is the first
        row's index in the whole output: id columns get the ids of rows start, start+1, ...
        `kept`: conditioned columns, whose values constraint repairs leave alone."""
        if isinstance(matrix, torch.Tensor):
            matrix = matrix.detach().cpu().numpy()
        matrix = np.asarray(matrix)  # spans decode by argmax in the matrix's own float dtype: no wide float64 copy
        matrix = matrix if matrix.dtype.kind == "f" else matrix.astype("float64")
        columns: dict[str, pd.Series] = {}
        continuous = self._continuous_columns()
        if continuous:
            values = self.quantiles_.inverse_transform(matrix[:, : len(continuous)].astype("float64"))
            for col, column in zip(continuous, values.T):
                lay = self.column_layout(col.name)
                if lay.span is not None:
                    column = np.where(self._argmax(matrix, lay.span) == 1, np.nan, column)
                columns[col.name] = self._from_ranks(column, col) if is_ranked(col) else _from_float(
                    column, col, self.time_steps_.get(col.name, 1))
        for col in self._onehot_columns():
            choices = np.array(values_of(col) + [np.nan], dtype=object)
            columns[col.name] = pd.Series(choices[self._argmax(matrix, self.column_layout(col.name).span)])
        for col in self.profile.of_kind("id"):
            columns[col.name] = pd.Series(fresh_ids(col.id_format, start, len(matrix)))
        return conform(pd.DataFrame(columns), self.profile, kept)

    @staticmethod
    def _argmax(matrix: np.ndarray, span: tuple[int, int]) -> np.ndarray:
        return matrix[:, span[0] : span[1]].argmax(axis=1)

    # ---- persistence ------------------------------------------------------------------

    def state(self) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
        """(JSON-able dict, plain tensors): everything `from_state` needs, no pickle."""
        nullable = [lay.name for lay in self.layout_ if lay.has_missing]
        meta: dict[str, Any] = {
            "profile": self.profile.model_dump(mode="json"),
            "nullable": nullable,
            "time_steps": self.time_steps_,
            "ranks": {name: ranks.tolist() for name, ranks in self.ranks_.items()},
        }
        tensors: dict[str, torch.Tensor] = {}
        if self.quantiles_ is not None:
            meta["n_quantiles"] = int(self.quantiles_.n_quantiles_)
            tensors = {name: torch.from_numpy(np.array(getattr(self.quantiles_, name))) for name in _QT_ARRAYS}
        return meta, tensors

    @classmethod
    def from_state(cls, meta: dict[str, Any], tensors: dict[str, torch.Tensor]) -> "TableEncoder":
        """Rebuild the exact fitted encoder saved by `state`."""
        enc = cls()
        enc.profile_ = TableProfile.model_validate(meta["profile"])
        enc.layout_ = cls._plan(enc.profile_, set(meta["nullable"]))
        enc.time_steps_ = {name: int(step) for name, step in meta["time_steps"].items()}
        enc.ranks_ = {name: np.array(ranks) for name, ranks in meta.get("ranks", {}).items()}
        if "n_quantiles" in meta:
            qt = cls._quantile_transformer(meta["n_quantiles"])
            for name in _QT_ARRAYS:
                setattr(qt, name, tensors[name].numpy().copy())
            qt.n_quantiles_ = meta["n_quantiles"]
            qt.n_features_in_ = qt.quantiles_.shape[1]
            enc.quantiles_ = qt
        return enc
