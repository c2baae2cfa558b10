"""The source profile: what each column is, learned once from the source.

Generators use it to encode and decode columns; the contract suite is built from it;
`conform` casts generated columns back to the source's exact dtypes. How a profile is
learned (in memory or from streamed batches, one rule) is `pipeline.core.profiling`."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator

from pipeline.core import clock as clocks
from pipeline.core.clock import ClockFormat
from pipeline.core.constraints import Constraint, repair
from pipeline.core.identifiers import IdFormat

# time: clock times of day as text ("15:20"), modelled as seconds of the day (pipeline/core/clock.py)
ColumnKind = Literal["numeric", "integer", "categorical", "boolean", "datetime", "time", "id"]


class ColumnDomain(BaseModel):
    """A column as the job spec declares it (`source.columns`): its kind and the values it
    may take. A declared fact replaces what the profile would learn from the rows, so a
    private fit (pipeline/core/domains.py) can take it without reading a training value.
    The source must lie within it (checked when profiling, exit 2 otherwise)."""

    model_config = ConfigDict(extra="forbid")

    kind: ColumnKind | None = None  # overrides the inferred kind, e.g. integer codes as categorical
    range: tuple[Any, Any] | None = None  # numeric / integer: [low, high]; datetime: ISO times
    categories: list[Any] | None = None  # categorical / boolean: every allowed value; numbers: their support
    nullable: bool | None = None  # may the column be missing (null)?
    decimals: int | None = Field(None, ge=0, le=12)  # numeric: digits kept after the point
    start: int | None = None  # integer id: the first fresh id of a private run (above every real one)
    # the time column of a time series: its grid step, a number for number times (1 for years) or a
    # pandas frequency for timestamps (MS, D, h, 15min); a private fit builds its time grid from it
    step: float | str | None = None
    # numeric / integer with a range: public knowledge of its shape, the values at evenly spaced
    # probabilities inside the range (9 values: the deciles, e.g. from published statistics); a
    # private fit's encoder lays its grid through them (a plain fit learns the rows' own quantiles)
    quantiles: list[float] | None = None

class ColumnProfile(BaseModel):
    """One column: its kind, the pandas dtype to restore, and the facts the contract checks."""

    name: str
    kind: ColumnKind
    dtype: str
    null_fraction: float
    min: float | None = None  # numeric / integer; datetime as ns since epoch (UTC); time as seconds of the day
    max: float | None = None
    decimals: int | None = None  # numeric: digits after the point in the source
    step: float | None = None  # numeric / integer / time: every value is min + k * step
    support: list[float] | None = None  # numeric / integer / time on a discrete support: its values
    categories: list[Any] | None = None  # categorical / boolean: the values seen
    id_format: IdFormat | None = None  # id: how fresh ids are made
    clock: ClockFormat | None = None  # time: how the source writes its times and blanks
    domain: ColumnDomain | None = None  # declared in source.columns: its facts replaced the learned ones


class TableProfile(BaseModel):
    """The columns of a table, in source order, and its row count."""

    columns: list[ColumnProfile]
    n_rows: int
    constraints: list[Constraint] = []  # declared in the spec, checked against the source
    # exact relations found in the source (pipeline/core/proposals.py `propose`), held in
    # the output like declared ones; a private profile has none (they are read from the rows)
    proposed_constraints: list[Constraint] = []
    pseudonymized: dict[str, str] = {}  # PII columns (name -> kind) replaced by fakes before the fit

    @field_validator("proposed_constraints", mode="before")
    @classmethod
    def _older_text(cls, value: Any) -> Any:
        """Profiles saved before proposals were held listed their text only, and their
        output kept none of them: read so, they still hold none."""
        return [c for c in value if not isinstance(c, str)] if isinstance(value, list) else value

    @property
    def held(self) -> list[Constraint]:
        """Every constraint the output keeps, in the order they are repaired: proposed,
        then declared (the spec's word is the last)."""
        return [*self.proposed_constraints, *self.constraints]

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> ColumnProfile:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)

    def of_kind(self, *kinds: str) -> list[ColumnProfile]:
        return [c for c in self.columns if c.kind in kinds]


def snap(values: np.ndarray, col: ColumnProfile) -> np.ndarray:
    """Numbers onto the column's support (the nearest value the source has), else onto
    its grid (min + k * step) within the source's range; NaN stays NaN."""
    x = np.asarray(values, dtype="float64")
    if col.support:
        support = np.asarray(col.support)
        hi = np.clip(np.searchsorted(support, x), 1, len(support) - 1) if len(support) > 1 else np.zeros(len(x), int)
        lo = np.maximum(hi - 1, 0)
        nearest = np.where(np.abs(x - support[lo]) <= np.abs(support[hi] - x), support[lo], support[hi])
        return np.where(np.isnan(x), np.nan, nearest)
    x = np.clip(x, col.min, col.max)
    if col.step:
        x = col.min + np.round((x - col.min) / col.step) * col.step
    return np.round(x, col.decimals) if col.decimals is not None else x


def conform(frame: pd.DataFrame, profile: TableProfile, kept: Collection[str] = ()) -> pd.DataFrame:
    """Cast generated columns to the source's dtypes, in the source's order, numbers
    snapped to the source's support or grid: the output contract is "the source's
    columns, dtypes and values, nothing else". The held constraints' repairs leave the
    `kept` columns' values as they are (the columns a sample was conditioned on)."""
    out = {}
    for col in profile.columns:
        s = frame[col.name]
        if col.kind in ("integer", "numeric"):
            s = pd.Series(snap(pd.to_numeric(s).to_numpy(dtype="float64", na_value=np.nan), col))
            dtype = col.dtype
            if s.isna().any() and pd.api.types.is_integer_dtype(dtype) and dtype.islower():  # int64 holds no nulls
                dtype = dtype.capitalize().replace("Uint", "UInt")
            s = s.astype(dtype)
        elif col.kind == "datetime":
            # Already datetimes (the encoder's output): to_datetime would scan them for its cache (a third of decoding).
            s = (s if pd.api.types.is_datetime64_any_dtype(s) else pd.to_datetime(s)).astype(col.dtype)
        elif col.kind == "time":  # seconds (a model's output) or clock text (a peer's) -> the source's text
            seconds = pd.to_numeric(s, errors="coerce").to_numpy(dtype="float64", na_value=np.nan) \
                if pd.api.types.is_numeric_dtype(s.dtype) else clocks.seconds_of_day(s)
            s = clocks.write(snap(seconds, col), col.clock).astype(col.dtype)
        elif col.kind == "boolean":
            s = s.astype(col.dtype if not s.isna().any() else "boolean")
        else:
            s = s.astype(col.dtype if col.dtype != "category" else pd.CategoricalDtype(col.categories))
        out[col.name] = s.reset_index(drop=True)
    return _constrained(pd.DataFrame(out), profile, kept)


def _smallest_step(col: ColumnProfile) -> float:
    """The increment that breaks an inequality's tie: the grid step, else 1 s for times."""
    if col.kind == "datetime":
        return 1e9
    return col.step or (10.0 ** -col.decimals if col.decimals is not None else 1e-9)


def _constrained(frame: pd.DataFrame, profile: TableProfile, kept: Collection[str]) -> pd.DataFrame:
    """Repair every held constraint (proposed and declared), then give the touched columns
    their dtype back (a computed formula rounded to its column's decimals)."""
    for c in profile.held:
        col = profile.column(c.columns[0])
        frame = repair(c, frame, _smallest_step(col), kept)
        for name in c.columns:
            prof = profile.column(name)
            s = frame[name]
            if prof.kind in ("numeric", "integer"):
                s = pd.to_numeric(s).astype("float64")
                # a support's values as the source has them (rwm5yr `educ`: 10.8054895401001), else rounded
                s = pd.Series(snap(s.to_numpy(), prof), index=s.index) if prof.support else \
                    s.round(prof.decimals if prof.decimals is not None else 12)
            frame[name] = s.astype(prof.dtype if prof.dtype != "category" else pd.CategoricalDtype(prof.categories))
    return frame



def profile_table(frame: pd.DataFrame, **options: Any) -> TableProfile:
    """A table's profile (`pipeline.core.profiling.profile_table`, the one rule; imported
    here on call because it builds the models above)."""
    from pipeline.core.profiling import profile_table as learn

    return learn(frame, **options)


def profile_column(series: pd.Series, kind: ColumnKind | None = None) -> ColumnProfile:
    """One column's profile (`pipeline.core.profiling.profile_column`)."""
    from pipeline.core.profiling import profile_column as learn

    return learn(series, kind)
