"""The sampling plan: which records each chunk and each part file of a request holds.

A request of `rows` records is cut into chunks; chunk `i` is drawn with its own seed
derived from (seed, i) and knows the index of its first record (`offset`), so any
worker can draw any chunk and a sharded run writes the same records as a single
process. Chunks are grouped into parts, one Parquet file each: the unit of work of a
shard and of resume. This module is the one home of chunk seeds and offsets."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pipeline.core.data import GivenPath

PART_RECORDS = {"tabular": 500_000, "timeseries": 20_000, "image": 20_000}  # default records per part file
# Panel entities of `sample.length` steps: at most this many steps in one chunk (memory
# holds a chunk's paths) and, unless records_per_file says otherwise, one chunk per part:
# 10,000-step entities at batch_size 10,000 would be 10^8 rows at once.
PATH_CHUNK_STEPS = 1_000_000


def chunk_seed(seed: int, index: int) -> int:
    """A well-mixed 32-bit seed for chunk `index` of a request seeded with `seed`."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


@dataclass(frozen=True)
class Chunk:
    """One chunk of a request: its position, size, first record and seed."""

    index: int
    size: int
    offset: int  # index of the chunk's first record in the whole request
    seed: int  # the chunk's own seed, derived from the request's seed and `index`


def plan_chunks(rows: int, batch_size: int, *, seed: int) -> list[Chunk]:
    """`rows` records cut into chunks of `batch_size` (the last one smaller)."""
    full, rest = divmod(rows, batch_size)
    sizes = [batch_size] * full + ([rest] if rest else [])
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(int) if sizes else []
    return [Chunk(index=i, size=s, offset=int(o), seed=chunk_seed(seed, i)) for i, (s, o) in enumerate(zip(sizes, offsets))]


@dataclass(frozen=True)
class PartPlan:
    """One part file's work: which chunks, with which conditions. Self-contained, so any
    worker can write it and a resumed run can tell what is missing."""

    index: int
    chunks: tuple[Chunk, ...]
    seed: int = 0  # the request's seed (recorded as provenance)
    conditions: dict[str, Any] | None = None
    length: int | None = None  # steps of the one long series this part holds (sample.length), else None
    given: GivenPath | None = field(default=None, compare=False, repr=False)  # values that series keeps

    @property
    def rows(self) -> int:
        return sum(c.size for c in self.chunks)

    @property
    def filename(self) -> str:
        return f"part-{self.index:05d}.parquet"


def plan_parts(
    rows: int, batch_size: int, modality: str, *, seed: int = 0, conditions: dict[str, Any] | None = None,
    first_index: int = 0, records_per_file: int | None = None, length: int | None = None,
) -> list[PartPlan]:
    """Group chunks into parts of about `records_per_file` (default PART_RECORDS[modality])
    records, numbered from `first_index` (several requests, e.g. one per class when
    balancing, share a run). A `length` makes every record a panel entity of that many
    steps: chunks of at most PATH_CHUNK_STEPS steps, by default one per part."""
    if length is not None:
        batch_size = max(1, min(batch_size, PATH_CHUNK_STEPS // length))
        records_per_file = records_per_file or batch_size
    chunks = plan_chunks(rows, batch_size, seed=seed)
    per_part = max(1, (records_per_file or PART_RECORDS[modality]) // batch_size)
    return [
        PartPlan(index=first_index + i, chunks=tuple(chunks[start : start + per_part]), seed=seed, conditions=conditions,
                 length=length)
        for i, start in enumerate(range(0, len(chunks), per_part))
    ]


def sampling_plan(
    rows: int, *, seed: int, batch_size: int, modality: str, conditions: dict[str, Any] | None = None,
    records_per_file: int | None = None, balance: tuple[str, dict[Any, int]] | None = None,
    length: int | None = None, given: GivenPath | None = None, panel: bool = False,
) -> list[PartPlan]:
    """One request (rows, conditions), or, when balancing on `(column, {class: rows})`,
    one request per minority class with its own derived seed; the plan alone
    reproduces the output. A `length` asks for series of that many steps: from a
    `panel`, `rows` entities of that length (`plan_parts`); else one series, one part,
    one chunk, one sequence (it is drawn window after window, in order)."""
    if length is not None and not panel:
        return [PartPlan(index=0, chunks=tuple(plan_chunks(1, 1, seed=seed)), seed=seed, conditions=conditions,
                         length=length, given=given)]
    layout = dict(batch_size=batch_size, modality=modality, records_per_file=records_per_file, length=length)
    if not balance:
        return plan_parts(rows, seed=seed, conditions=conditions, **layout)
    target, added = balance
    parts: list[PartPlan] = []
    for i, (value, n) in enumerate(added.items()):
        parts += plan_parts(n, seed=chunk_seed(seed, 2**31 + i), conditions={**(conditions or {}), target: value},
                            first_index=len(parts), **layout)
    return parts
