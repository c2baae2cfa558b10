"""Parquet sink: sampled chunks streamed into part files of a run folder.

A request of `rows` records is cut into chunks of `batch_size` (each with its own seed,
see generators.base) and chunks are grouped into parts, one Parquet file each. A part is
the unit of work a shard does: any worker can write any part, and a finished part is
never written twice (resume). Memory holds one row group, never the dataset."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from generators.base import Generator, chunk_sizes
from pipeline.data import Batch, ImageData

ROW_GROUP_BYTES = 32 * 1024 * 1024  # tens of MB: efficient for streaming readers
PART_RECORDS = {"tabular": 500_000, "timeseries": 20_000, "image": 20_000}  # records per part file


@dataclass(frozen=True)
class PartPlan:
    """One part file's work: which chunks, with which seed and conditions. Self-contained,
    so any worker can write it and a resumed run can tell what is missing."""

    index: int
    first_chunk: int
    sizes: tuple[int, ...]  # chunk sizes of this part
    seed: int = 0
    conditions: dict[str, Any] | None = None

    @property
    def rows(self) -> int:
        return sum(self.sizes)

    @property
    def filename(self) -> str:
        return f"part-{self.index:05d}.parquet"


def plan_parts(
    rows: int, batch_size: int, modality: str, *, seed: int = 0, conditions: dict[str, Any] | None = None,
    first_index: int = 0, records_per_file: int | None = None,
) -> list[PartPlan]:
    """Group chunks into parts of about `records_per_file` (default PART_RECORDS[modality])
    records, numbered from `first_index` (several requests, e.g. one per class when
    balancing, share a run)."""
    sizes = chunk_sizes(rows, batch_size)
    per_part = max(1, (records_per_file or PART_RECORDS[modality]) // batch_size)
    return [
        PartPlan(index=first_index + i, first_chunk=start, sizes=tuple(sizes[start : start + per_part]),
                 seed=seed, conditions=conditions)
        for i, start in enumerate(range(0, len(sizes), per_part))
    ]


def batch_to_table(batch: Batch) -> pa.Table:
    """The output contract's Arrow form of one batch."""
    if isinstance(batch, ImageData):
        from pipeline.images import images_to_table

        return images_to_table(batch)
    return pa.Table.from_pandas(batch, preserve_index=False)


def with_provenance(table: pa.Table, provenance: dict[str, Any]) -> pa.Table:
    """Add `synthpipe.*` keys to the schema metadata, keeping pandas / huggingface keys."""
    meta = dict(table.schema.metadata or {})
    meta.update({f"synthpipe.{k}".encode(): json.dumps(v).encode() for k, v in provenance.items()})
    return table.replace_schema_metadata(meta)


class _RowGroupWriter:
    """Buffers Arrow tables and writes them as row groups of about ROW_GROUP_BYTES."""

    def __init__(self, path: Path, provenance: dict[str, Any]) -> None:
        self.path, self.provenance = path, provenance
        self.writer: pq.ParquetWriter | None = None
        self.buffer: list[pa.Table] = []
        self.buffered = 0

    def add(self, table: pa.Table) -> None:
        self.buffer.append(table)
        self.buffered += table.nbytes
        if self.buffered >= ROW_GROUP_BYTES:
            self.flush()

    def flush(self) -> None:
        if not self.buffer:
            return
        table = with_provenance(pa.concat_tables(self.buffer, promote_options="permissive"), self.provenance)
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.path, table.schema, compression="zstd")
        self.writer.write_table(table.cast(self.writer.schema), row_group_size=table.num_rows)
        self.buffer, self.buffered = [], 0

    def close(self) -> None:
        self.flush()
        if self.writer is not None:
            self.writer.close()


def write_part(
    generator: Generator,
    part: PartPlan,
    out_dir: Path,
    *,
    batch_size: int,
    provenance: dict[str, Any] | None = None,
    progress: Any = None,
) -> Path:
    """Sample one part and write it atomically (hidden temp file, then rename).
    An existing part is kept as is: resuming a run skips finished parts."""
    final = out_dir / part.filename
    if final.exists():
        return final
    tmp = out_dir / f".{part.filename}.tmp"
    writer = _RowGroupWriter(tmp, {**(provenance or {}), "part": part.index, "seed": part.seed,
                                   "conditions": part.conditions})
    try:
        for offset, size in enumerate(part.sizes):
            chunk = part.first_chunk + offset
            batch = generator.sample_chunk(chunk, size, seed=part.seed, conditions=part.conditions, batch_size=batch_size)
            writer.add(batch_to_table(batch))
            if progress is not None:
                progress(size)
        writer.close()
        os.rename(tmp, final)
    except BaseException:
        if writer.writer is not None:
            writer.writer.close()  # drop the buffer rather than flush it: the file goes anyway
        tmp.unlink(missing_ok=True)
        raise
    return final


def part_files(run_dir: Path) -> list[Path]:
    return sorted(run_dir.glob("part-*.parquet"))


def row_groups(run_dir: Path) -> Iterator[pa.Table]:
    """The run's data one row group at a time, in part order: memory holds one group."""
    for path in part_files(run_dir):
        pf = pq.ParquetFile(path)
        for i in range(pf.num_row_groups):
            yield pf.read_row_group(i)


def read_output(run_dir: Path, *, max_rows: int | None = None) -> pa.Table:
    """The run's parts as one Arrow table (optionally only the first `max_rows`)."""
    tables, total = [], 0
    for t in row_groups(run_dir):
        tables.append(t)
        total += t.num_rows
        if max_rows is not None and total >= max_rows:
            return pa.concat_tables(tables).slice(0, max_rows)
    return pa.concat_tables(tables) if tables else pa.table({})


def count_rows(run_dir: Path) -> int:
    return sum(pq.ParquetFile(p).metadata.num_rows for p in part_files(run_dir))
