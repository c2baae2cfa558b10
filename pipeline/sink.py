"""Parquet sink: sampled chunks streamed into part files of a run folder.

The sampling plan (`pipeline.core.plan`) says which chunks each part holds; a part is
the unit of work a shard does: any worker can write any part, and a finished part is
never written twice (resume). Memory holds one row group, never the dataset. Reading
parts back is `pipeline.core.runfiles`'s job."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from generators.base import Generator
from pipeline.core.data import batch_to_table
from pipeline.core.plan import PartPlan

ROW_GROUP_BYTES = 32 * 1024 * 1024  # tens of MB: efficient for streaming readers


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
        for chunk in part.chunks:
            writer.add(batch_to_table(generator.sample_chunk(chunk, conditions=part.conditions, length=part.length,
                                                                  given=part.given)))
            if progress is not None:
                progress(chunk.size)
        writer.close()
        os.rename(tmp, final)
    except BaseException:
        if writer.writer is not None:
            writer.writer.close()  # drop the buffer rather than flush it: the file goes anyway
        tmp.unlink(missing_ok=True)
        raise
    return final
