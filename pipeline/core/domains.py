"""The profile a private fit may use: declared domains only, no fact read from the rows.

A DP-SGD fit's ε covers its gradient steps. Everything else the model keeps must not
depend on a training value, or one record (a rare category, an extreme income, the
largest id) shows in every output. `private_profile` keeps of the source profile only
what is public by construction or declared in the job spec's `source.columns`:

- public schema: column names, order, kinds and dtypes, and the row count (DP-SGD's
  sampling rate and δ = 1 / (10 n) are set from it too);
- declared: numeric and datetime ranges, category lists (and a number column's support),
  decimals, whether a column may be null (`nullable: true`), a time series' time step
  (`step`: 1, MS, h), a number column's quantiles (its shape); the model learns the null
  share by gradient steps;
- declared constraints (their text; fixed combinations read the rows and are refused);
- ids: integers from the declared `start`, text ids from a fixed 16-hex-digit space, PII
  ids (e-mails, names, phones) from their fake space skipping no source position.

Left out: proposed constraints, supports, grid steps, learned min / max and categories,
null shares, id formats, the rows' time step. The same profile is what a private run's
manifest records and its contract is built from (`source_private_profile`). A column that lacks a needed declaration is refused before the
fit (exit 2), all such columns named at once: spending ε on the profile instead is not
built (README, "Differential privacy")."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from pipeline.core.data import ImageData, SourceData, TimeSeriesData
from pipeline.core.errors import BadInputError
from pipeline.core.identifiers import IdFormat, Shape
from pipeline.core.schema import ColumnProfile, TableProfile

# Text ids of a private run: 16 lowercase hex digits, numbered from 0 through a bijection
# (pipeline/core/identifiers.py), so unique and unrelated to any source id.
PRIVATE_TEXT_ID = Shape(charsets=["0123456789abcdef"] * 16, last="-1", rows=1)
MAY_BE_NULL = 1.0  # a private profile's null_fraction for a declared-nullable column: the share itself is learned


def _missing(col: ColumnProfile) -> list[str]:
    """What `col` still needs declared before a private fit may use it."""
    d = col.domain
    need = []
    if col.kind in ("numeric", "integer", "datetime") and (d is None or (d.range is None and d.categories is None)):
        need.append("range")
    if col.kind == "categorical" and (d is None or d.categories is None):
        need.append("categories")
    if col.kind == "time":  # its grid and range are learned from the rows: declare it a category instead
        need.append("kind: categorical, with its categories")
    if col.kind == "id" and col.id_format is not None and col.id_format.last_int is not None \
            and (d is None or d.start is None):
        need.append("start")
    if col.null_fraction > 0 and (d is None or not d.nullable):
        need.append("nullable: true")
    return need


def _missing_step(col: ColumnProfile, time: str | None) -> list[str]:
    """The time column's grid step, when `col` is it and has none declared: the rows'
    most common step is a fact of the rows (a one-year panel's 1, or a lone 2)."""
    return ["step"] if col.name == time and (col.domain is None or col.domain.step is None) else []


def _private_id(col: ColumnProfile) -> IdFormat:
    fmt = col.id_format or IdFormat()
    if fmt.last_int is not None:
        return IdFormat(last_int=col.domain.start - 1)
    if fmt.pii is not None:
        return IdFormat(pii=fmt.pii, taken=[])
    return IdFormat(shapes=[PRIVATE_TEXT_ID])


def _private_column(col: ColumnProfile) -> ColumnProfile:
    update = {"null_fraction": MAY_BE_NULL if col.domain and col.domain.nullable else 0.0}
    if col.kind == "id":
        update["id_format"] = _private_id(col)
    elif col.kind == "boolean" and (col.domain is None or col.domain.categories is None):
        update["categories"] = [False, True]  # the kind's own values
    return col.model_copy(update=update)


def _regenerated_column(col: ColumnProfile) -> ColumnProfile:
    """A column the model makes afresh (a time series' entity ids): name, kind and dtype only."""
    return ColumnProfile(name=col.name, kind=col.kind, dtype=col.dtype, null_fraction=0.0)


def private_profile(profile: TableProfile, *, regenerated: tuple[str, ...] = (), time: str | None = None) -> TableProfile:
    """`profile` reduced to what a private fit may read (module docstring); refuses, naming
    every column and what it needs, when a declaration is missing. `regenerated` columns
    (a time series' entity) need no declaration: the output never takes their values.
    `time` (a time series' time column) needs its grid `step` declared besides its range."""
    missing = {c.name: need for c in profile.columns
               if c.name not in regenerated and (need := _missing(c) + _missing_step(c, time))}
    if missing:
        named = "; ".join(f"{name}: {', '.join(need)}" for name, need in missing.items())
        raise BadInputError(
            f"generator.privacy: a private fit reads no training value outside its gradient steps, so declare "
            f"these columns' domains in source.columns ({named}), e.g. source.columns: {{age: {{range: [17, 90]}}, "
            "region: {categories: [north, south]}, year: {range: [1960, 2011], step: 1}}"
        )
    fixed = [c.text for c in profile.constraints if c.kind == "fixed"]
    if fixed:
        raise BadInputError(f"generator.privacy: constraint(s) {', '.join(map(repr, fixed))} keep the source's own "
                            "combinations, which a private fit cannot read: drop them or generator.privacy")
    columns = [_regenerated_column(c) if c.name in regenerated else _private_column(c) for c in profile.columns]
    return profile.model_copy(update={"columns": columns,
                                      "proposed_constraints": []})


def source_private_profile(source: SourceData) -> TableProfile:
    """`private_profile` of a tabular or time-series source: a time series' entity is
    regenerated and its time column needs a declared step. One home for the pre-fit check,
    the manifest and the contract of a private run."""
    if isinstance(source, TimeSeriesData):
        return private_profile(source.profile, regenerated=(source.entity,), time=source.time)
    return private_profile(source.profile)


def private_view(source: SourceData, classes: list[Any] | None = None) -> SourceData:
    """The source as a private run's outputs describe it (manifest, contract): a table's or
    time series' declared profile; an image source's declared label set (`params.classes`,
    which a private image fit requires) in place of the labels its images have."""
    if isinstance(source, ImageData):
        return source if classes is None else replace(source, classes=list(classes))
    return replace(source, profile=source_private_profile(source))
