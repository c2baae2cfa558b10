"""A run folder's file names and its one reader.

```
<output>/<job>/LATEST            id of the newest published run
<output>/<job>/<run_id>/         part-00000.parquet ..., manifest.json, job.json,
                                 validation/, report.html, model/ (config.json, weights.pt)
                                 partitioned (output.partition_by): data/year=2008/part-00000.parquet ...
```

Everything that reads a run's data (the gate, the report, the manifest's checksums,
consumers, torch datasets, tests) reads it through `RunData`: part files in order, one
row group at a time, so memory holds a row group, never the dataset; a partitioned
run's partition columns restored from its folder names with the source's dtype."""

from __future__ import annotations

import json
import re
from functools import cached_property
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from pipeline.core.data import SourceData
from pipeline.core.errors import RunNotFoundError
from pipeline.core.partitions import DATA_DIR, hive, output_schema

LATEST = "LATEST"
TMP_PREFIX = ".tmp-"
MANIFEST = "manifest.json"
JOB_FILE = "job.json"
MODEL_DIR = "model"
CONFIG_FILE = "config.json"  # a saved generator: name, params, fitted transforms
WEIGHTS_FILE = "weights.pt"  # a saved generator: plain tensors
VALIDATION_DIR = "validation"
PART_GLOB = "part-*.parquet"
_PART_INDEX = re.compile(r"part-(\d+)\.parquet$")


def model_privacy(run_dir: Path) -> dict | None:
    """What the run's fitted model spent on differential privacy (its config's
    `privacy_spent`: ε, δ, accountant, noise, clipping, sampling rate, steps); None
    when it was not trained privately."""
    config = Path(run_dir) / MODEL_DIR / CONFIG_FILE
    return json.loads(config.read_text()).get("privacy_spent") if config.is_file() else None


def part_index(path: Path) -> int:
    """The sampling part a data file belongs to (`part-00003.parquet`: 3)."""
    return int(_PART_INDEX.search(path.name).group(1))


class RunData:
    """A run's Parquet data as written: flat parts in the run folder, or hive-partitioned
    under `data/`. Files are ordered by part, then folder; a partitioned run's tables come
    back with the source's columns, in order, with its dtypes."""

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)
        self.partitioned = (self.run_dir / DATA_DIR).is_dir()
        self.root = self.run_dir / DATA_DIR if self.partitioned else self.run_dir
        self._fragments: dict[Path, pads.Fragment] = {}

    @cached_property
    def files(self) -> list[Path]:
        found = self.root.rglob(PART_GLOB) if self.partitioned else self.root.glob(PART_GLOB)
        return sorted((p for p in found if not any(s.startswith(".") for s in p.relative_to(self.root).parts)),
                      key=lambda p: (part_index(p), p.relative_to(self.root).as_posix()))

    def name(self, path: Path) -> str:
        """A file's name in the manifest: its path under the data root (`year=2008/part-00000.parquet`)."""
        return path.relative_to(self.root).as_posix()

    def parts(self) -> dict[int, list[Path]]:
        """Data files by sampling part: the unit a validation shard checks."""
        out: dict[int, list[Path]] = {}
        for path in self.files:
            out.setdefault(part_index(path), []).append(path)
        return out

    @cached_property
    def partition_by(self) -> list[str]:
        if not self.partitioned or not self.files:
            return []
        return [segment.split("=", 1)[0] for segment in self.files[0].relative_to(self.root).parent.parts]

    @cached_property
    def _schemas(self) -> tuple[pa.Schema, pa.Schema]:
        """(what a scan yields, what the source has): every column in source order; a
        partition column typed as its folders are read (a dictionary as its values) in
        the first, with its own type in the second. Parts are written independently, so
        a column all null in one part is typed null there: file schemas are unified."""
        schemas = [pq.read_schema(f) for f in self.files]
        data = pa.unify_schemas(schemas, promote_options="permissive") if schemas else pa.schema([])
        if not self.partition_by:
            return data, data
        whole = pa.unify_schemas([output_schema(s) for s in schemas], promote_options="permissive")
        pandas = {k: v for k, v in (whole.metadata or {}).items() if k == b"pandas"}
        folders = hive(whole, self.partition_by).schema
        scanned = [folders.field(n) if n in self.partition_by else data.field(n) for n in whole.names]
        own = [whole.field(n) if n in self.partition_by else data.field(n) for n in whole.names]
        return pa.schema(scanned, metadata=pandas), pa.schema(own, metadata=pandas)

    @property
    def schema(self) -> pa.Schema:
        """The output's schema as a scan of the files yields it (`dataset()`)."""
        return self._schemas[0]

    def dataset(self, files: list[Path] | None = None) -> pads.Dataset:
        """A pyarrow dataset over the files (all, or `files`): scanning streams from disk."""
        paths = [str(p) for p in (self.files if files is None else files)]
        if not self.partition_by:
            return pads.dataset(paths, schema=self.schema, format="parquet")
        return pads.dataset(paths, schema=self.schema, format="parquet",
                            partitioning=hive(self.schema, self.partition_by), partition_base_dir=str(self.root))

    def _restore(self, table: pa.Table, columns: list[str] | None = None) -> pa.Table:
        """A scanned table in the source's column order and types, pandas metadata included."""
        own = self._schemas[1]
        schema = pa.schema([own.field(n) for n in (own.names if columns is None else columns)], metadata=own.metadata)
        table = table.select(schema.names)
        return table.cast(schema) if self.partition_by else table.replace_schema_metadata(schema.metadata)

    def read(self, columns: list[str] | None = None, files: list[Path] | None = None) -> pa.Table:
        """The data (all of it, or `files`) as one Arrow table."""
        return self._restore(self.dataset(files).to_table(columns=columns), columns)

    def _fragment(self, path: Path) -> pads.Fragment:
        """One file as a dataset fragment: its folder values are its partition columns."""
        if path not in self._fragments:
            self._fragments[path] = next(iter(self.dataset([path]).get_fragments()))
        return self._fragments[path]

    def read_row_group(self, path: Path, group: int, columns: list[str] | None = None) -> pa.Table:
        fragment = self._fragment(path)
        return self._restore(fragment.subset(row_group_ids=[group]).to_table(schema=self.schema, columns=columns),
                             columns)

    def row_group_count(self, path: Path) -> int:
        return pq.ParquetFile(path).num_row_groups

    def row_groups(self, files: list[Path] | None = None) -> Iterator[pa.Table]:
        """The data one row group at a time, in file order: memory holds one group."""
        for path in self.files if files is None else files:
            for group in range(self.row_group_count(path)):
                yield self.read_row_group(path, group)

    def batches(self, rows: int, files: list[Path] | None = None) -> Iterator[pa.Table]:
        """The data in tables of at most `rows` rows, file after file."""
        for path in self.files if files is None else files:
            for batch in self._fragment(path).to_batches(schema=self.schema, batch_size=rows):
                if batch.num_rows:
                    yield self._restore(pa.Table.from_batches([batch]))

    def count_rows(self, files: list[Path] | None = None) -> int:
        return sum(pq.ParquetFile(p).metadata.num_rows for p in (self.files if files is None else files))


def part_files(run_dir: Path) -> list[Path]:
    return RunData(run_dir).files


def row_groups(run_dir: Path) -> Iterator[pa.Table]:
    """The run's data one row group at a time, in part order: memory holds one group."""
    return RunData(run_dir).row_groups()


def read_output(run_dir: Path, *, max_rows: int | None = None) -> pa.Table:
    """The run's parts as one Arrow table (optionally only the first `max_rows`)."""
    if max_rows is None:
        return RunData(run_dir).read()
    tables, total = [], 0
    for t in row_groups(run_dir):
        tables.append(t)
        total += t.num_rows
        if total >= max_rows:
            break
    return pa.concat_tables(tables).slice(0, max_rows) if tables else RunData(run_dir).read()


def count_rows(run_dir: Path, *, parts: list[int] | None = None) -> int:
    data = RunData(run_dir)
    return data.count_rows(None if parts is None else [f for i in parts for f in data.parts().get(i, [])])


def output_chunks(run_dir: Path, *, rows: int, entity: str | None = None,
                  parts: list[int] | None = None) -> Iterator[pd.DataFrame]:
    """The run's output (all of it, or the sampling `parts`) as DataFrames of at most
    about `rows` rows, read row batch by row batch. With `entity`, a chunk never ends
    inside a sequence: the trailing entity's rows are carried into the next chunk."""
    data = RunData(run_dir)
    files = None if parts is None else [f for i in parts for f in data.parts().get(i, [])]
    carry: pd.DataFrame | None = None
    for table in data.batches(rows, files):
        # the schema carries the pandas metadata that restores dtypes such as Int64
        frame = table.to_pandas()
        if carry is not None:
            frame, carry = pd.concat([carry, frame], ignore_index=True), None
        if entity is not None and entity in frame and len(frame):
            is_last = frame[entity].eq(frame[entity].iloc[-1]).to_numpy()
            trailing = np.logical_and.accumulate(is_last[::-1])[::-1]
            carry, frame = frame[trailing], frame[~trailing]
            if frame.empty:
                continue
        yield frame.reset_index(drop=True)
    if carry is not None and len(carry):
        yield carry.reset_index(drop=True)


def load_synthetic(run_dir: Path, like: SourceData, *, max_records: int | None = None) -> SourceData:
    """The output shaped like `like` (same profile, entity/time/static, label name).
    `max_records` caps what is read: the first parts, whole sequences only."""
    if like.modality == "timeseries":
        return like.as_windows(_first_sequences(run_dir, like.entity, max_records))
    return like.from_table(read_output(run_dir, max_rows=max_records))


def _first_sequences(run_dir: Path, entity: str, n: int | None) -> pd.DataFrame:
    """Whole sequences of the first `n` entities, reading row groups only until they are
    all seen (an entity's rows are contiguous, so one more entity means the n are whole)."""
    if n is None:
        return read_output(run_dir).to_pandas()
    tables, seen = [], set()
    for table in row_groups(run_dir):
        tables.append(table)
        seen.update(table.column(entity).unique().to_pylist())
        if len(seen) > n:
            break
    frame = pa.concat_tables(tables).to_pandas() if tables else read_output(run_dir).to_pandas()
    keep = frame[entity].drop_duplicates().iloc[:n]
    return frame[frame[entity].isin(keep)].reset_index(drop=True)


def latest_run(job_root: Path) -> Path:
    pointer = job_root / LATEST
    if not pointer.is_file():
        raise RunNotFoundError(f"no published run under {job_root} (no {LATEST} file): run the job first")
    return job_root / pointer.read_text().strip()


def resolve_run_dir(path: str | Path) -> Path:
    """A run folder given directly, or a job folder (its LATEST run)."""
    path = Path(path)
    if (path / MANIFEST).is_file():
        return path
    if (path / LATEST).is_file():
        return latest_run(path)
    raise RunNotFoundError(f"{path} is not a run folder (no {MANIFEST}) nor a job folder with {LATEST}")
