"""Identifier columns: learn an id column's format from the source, generate fresh ids
in that format that are unique and never a real id.

Integer ids continue after the source's largest (max + 1, max + 2, ...). Text ids
(UUIDs, "C-000123", e-mail-like keys) are grouped by their shape: their length and
where their punctuation sits. Each shape keeps, per position, the characters seen
there, so a UUID keeps its dashes, its version digit and its hex alphabet, and
"C-000123" its prefix and digits. Within a shape every position is a digit in a mixed-radix number; all real
ids of that shape have numbers at most `last`, fresh ids are numbers above it, spread
by an affine bijection over the rest of the space. Fresh ids are thereby unique (a
bijection of the row index) and never real (all above `last`), and the format stores one
number per shape, not the real ids.

Text ids that look like e-mails, person names or phone numbers (`pipeline.core.pii`)
are made realistic instead of shaped: fake values from a fixed space, unique, seeded,
and never a source value.
"""

from __future__ import annotations

from collections import Counter, defaultdict

import numpy as np
import pandas as pd
from pydantic import BaseModel

from pipeline.core import codespace
from pipeline.core.errors import BadInputError
from pipeline.core.pii import PiiKind, detect, fresh, taken

# Shapes kept per column, most common first: free-text keys have many; a few dozen
# cover nearly every row and bound the profile's size.
MAX_SHAPES = 32
MIN_SHAPE_SHARE = 0.01  # id shapes rarer than this in the source are not reproduced in the output


class Shape(BaseModel):
    """One text shape: per position the characters seen there; `last` the largest
    real id's number (a decimal string: the space can exceed 64 bits)."""

    charsets: list[str]
    last: str
    rows: int  # real ids of this shape: fresh ids follow the same mix


class IdFormat(BaseModel):
    """How to make fresh ids: after `last_int` (integer ids), as fake `pii` values
    skipping the source's own (`taken`: their indices in that kind's value space), or
    from `shapes` (other text)."""

    last_int: int | None = None
    shapes: list[Shape] | None = None
    pii: PiiKind | None = None
    taken: list[int] | None = None


def _char_class(ch: str) -> str:
    return "a" if ch.isalnum() else ch


def _number(value: str, charsets: list[str]) -> int:
    n = 0
    for ch, chars in zip(value, charsets):
        n = n * len(chars) + chars.index(ch)
    return n


def learn_format(values: pd.Series) -> IdFormat:
    """The format of an id column (no nulls, every value distinct)."""
    if pd.api.types.is_integer_dtype(values.dtype):
        return IdFormat(last_int=int(values.max()))
    pii = detect(values)
    if pii is not None:
        return IdFormat(pii=pii, taken=taken(pii, values))
    groups: dict[str, list[str]] = defaultdict(list)
    for v in values.astype(str):
        groups["".join(map(_char_class, v))].append(v)
    shapes = []
    for key, _ in Counter({k: len(v) for k, v in groups.items()}).most_common(MAX_SHAPES):
        members = groups[key]
        charsets = ["".join(sorted(set(chars))) for chars in zip(*members)]
        last = max(_number(v, charsets) for v in members)
        shapes.append(Shape(charsets=charsets, last=str(last), rows=len(members)))
    return IdFormat(shapes=shapes)



def fresh_ids(fmt: IdFormat, start: int, n: int, seed: int = 0) -> np.ndarray:
    """Ids for output rows `start .. start + n - 1`: the same row index (and `seed`, for
    PII kinds) always gets the same id, no two rows share one, none is a real id."""
    if fmt.last_int is not None:
        return np.arange(fmt.last_int + 1 + start, fmt.last_int + 1 + start + n, dtype="int64")
    if fmt.pii is not None:
        return np.array(fresh(fmt.pii, fmt.taken or [], start, n, seed), dtype=object)
    # Rows take shapes in proportion to the source (a fixed repeating cycle of them). A
    # rare shape (under MIN_SHAPE_SHARE of the ids, e.g. the odd-length band numbers among
    # Hawks' 908) takes no rows: learned from a handful of ids, its characters leave
    # almost no unused values, and a few output rows would use them up.
    total = sum(s.rows for s in fmt.shapes or [])
    shapes = [s for s in fmt.shapes or [] if s.rows >= MIN_SHAPE_SHARE * total] or (fmt.shapes or [])
    cycle = [i for i, s in enumerate(shapes) for _ in range(max(1, round(100 * s.rows / sum(x.rows for x in shapes))))]
    counts = [cycle.count(i) for i in range(len(shapes))]
    out = np.empty(n, dtype=object)
    for row in range(n):
        k = start + row
        lap, pos = divmod(k, len(cycle))
        i = cycle[pos]
        j = lap * counts[i] + cycle[:pos].count(i)  # this row's rank among its shape's rows
        out[row] = _fresh(shapes[i], j)
    return out


def _fresh(shape: Shape, j: int) -> str:
    space = codespace.size(shape.charsets)
    base = int(shape.last) + 1
    free = space - base
    if j >= free:
        raise BadInputError(
            f"an id column's format ({len(shape.charsets)} characters) has only {free} unused values; "
            "sample fewer rows or declare the column categorical in source.columns"
        )
    return codespace.decode(base + (codespace.multiplier(free) * j + free // 3) % free, shape.charsets)
