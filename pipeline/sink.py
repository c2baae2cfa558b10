"""Parquet sink: sampled chunks streamed into part files of a run folder.

The sampling plan (`pipeline.core.plan`) says which chunks each part holds; a part is
the unit of work a shard does: any worker can write any part, and a finished part is
never written twice (resume). Memory holds one row group, never the dataset. Reading
parts back is `pipeline.core.runfiles`'s job.

A partitioned run (`output.partition_by`) writes each part as one file per folder it has
rows for (`data/year=2008/part-00003.parquet`, pipeline/core/partitions.py). The files
are written in a hidden stage folder, which is renamed `.ready` once all are complete and
only then moved into place: a resumed run finishes a ready part's moves and redraws a
part that was still being written, so no part is ever half in the data."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from generators.base import Generator
from pipeline.core.data import batch_to_table
from pipeline.core.partitions import DATA_DIR, split, with_output_schema
from pipeline.core.plan import PartPlan

ROW_GROUP_BYTES = 32 * 1024 * 1024  # tens of MB: efficient for streaming readers


def with_provenance(table: pa.Table, provenance: dict[str, Any]) -> pa.Table:
    """Add `synthpipe.*` keys to the schema metadata, keeping pandas / huggingface keys."""
    meta = dict(table.schema.metadata or {})
    meta.update({f"synthpipe.{k}".encode(): json.dumps(v).encode() for k, v in provenance.items()})
    return table.replace_schema_metadata(meta)


def _owned(table: pa.Table) -> pa.Table:
    """`table` copied into Arrow's memory pool. A table made from pandas shares numpy's
    buffers on the C heap, where each buffered chunk pinned the temporaries freed around
    it: 32 MB of such tables held ~220 MB resident per part being written (1 M-row
    flights run), copies ~70 MB."""
    return table.take(np.arange(table.num_rows))


class _RowGroupWriter:
    """Buffers Arrow tables and writes them as row groups of about ROW_GROUP_BYTES."""

    def __init__(self, path: Path, provenance: dict[str, Any]) -> None:
        self.path, self.provenance = path, provenance
        self.writer: pq.ParquetWriter | None = None
        self.buffer: list[pa.Table] = []
        self.buffered = 0

    def add(self, table: pa.Table) -> None:
        self.buffer.append(_owned(table))
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

    def abandon(self) -> None:
        """Drop the buffer rather than flush it (the file goes anyway) and release the file."""
        self.buffer, self.buffered = [], 0
        if self.writer is not None:
            self.writer.close()


class _FolderWriters:
    """One `_RowGroupWriter` per partition folder under `stage`, flushed together when
    their buffers hold ROW_GROUP_BYTES: memory stays one row group whatever the folders."""

    def __init__(self, stage: Path, filename: str, names: list[str], provenance: dict[str, Any]) -> None:
        self.stage, self.filename, self.names, self.provenance = stage, filename, names, provenance
        self.writers: dict[str, _RowGroupWriter] = {}

    def add(self, table: pa.Table) -> None:
        for folder, rows in split(table, self.names):
            writer = self.writers.get(folder)
            if writer is None:
                (self.stage / folder).mkdir(parents=True)
                writer = self.writers[folder] = _RowGroupWriter(self.stage / folder / self.filename, self.provenance)
            writer.add(with_output_schema(rows, table.schema))
        if sum(w.buffered for w in self.writers.values()) >= ROW_GROUP_BYTES:
            for w in self.writers.values():
                w.flush()

    def close(self) -> None:
        for w in self.writers.values():
            w.close()

    def abandon(self) -> None:
        for w in self.writers.values():
            w.abandon()


def _write_sampled(writer: _RowGroupWriter | _FolderWriters, generator: Generator, part: PartPlan,
                   progress: Any) -> None:
    """Every chunk of `part` into `writer`, then closed; on any failure it is abandoned."""
    try:
        for chunk in part.chunks:
            writer.add(batch_to_table(generator.sample_chunk(chunk, conditions=part.conditions, length=part.length,
                                                             given=part.given)))
            if progress is not None:
                progress(chunk.size)
        writer.close()
    except BaseException:
        writer.abandon()
        raise


def _move_into_place(ready: Path, data: Path) -> None:
    """A complete part's files from its ready folder into the data folder, then the folder goes."""
    for path in sorted(ready.rglob("*.parquet")):
        target = data / path.relative_to(ready)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, target)
    shutil.rmtree(ready)


def _write_partitioned(generator: Generator, part: PartPlan, out_dir: Path, names: list[str],
                       provenance: dict[str, Any], progress: Any) -> Path:
    data = out_dir / DATA_DIR
    stage, ready = out_dir / f".{part.filename}.tmp", out_dir / f".{part.filename}.ready"
    if ready.is_dir():  # written completely before an interruption: finish the moves
        _move_into_place(ready, data)
        return data
    shutil.rmtree(stage, ignore_errors=True)  # an interrupted write: drawn again, same seed, same rows
    if data.is_dir() and next(data.rglob(part.filename), None) is not None:
        return data
    stage.mkdir()
    try:
        _write_sampled(_FolderWriters(stage, part.filename, names, provenance), generator, part, progress)
        os.rename(stage, ready)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    _move_into_place(ready, data)
    return data


def write_part(
    generator: Generator,
    part: PartPlan,
    out_dir: Path,
    *,
    provenance: dict[str, Any] | None = None,
    progress: Any = None,
    partition_by: list[str] | None = None,
) -> Path:
    """Sample one part and write it atomically (hidden temp file, then rename), or, with
    `partition_by`, as one file per partition folder under `data/` (see above).
    An existing part is kept as is: resuming a run skips finished parts."""
    provenance = {**(provenance or {}), "part": part.index, "seed": part.seed, "conditions": part.conditions}
    if partition_by:
        return _write_partitioned(generator, part, out_dir, list(partition_by), provenance, progress)
    final = out_dir / part.filename
    if final.exists():
        return final
    tmp = out_dir / f".{part.filename}.tmp"
    try:
        _write_sampled(_RowGroupWriter(tmp, provenance), generator, part, progress)
        os.rename(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return final
