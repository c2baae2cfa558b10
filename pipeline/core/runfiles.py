"""A run folder's file names and its one reader.

```
<output>/<job>/LATEST            id of the newest published run
<output>/<job>/<run_id>/         part-00000.parquet ..., manifest.json, job.json,
                                 validation/, report.html, model/ (config.json, weights.pt)
```

Everything that reads a run's Parquet parts (the gate, the report, consumers, tests)
reads them here: part files in order, one row group at a time, so memory holds a row
group, never the dataset."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.core.data import SourceData
from pipeline.core.errors import RunNotFoundError

LATEST = "LATEST"
TMP_PREFIX = ".tmp-"
MANIFEST = "manifest.json"
JOB_FILE = "job.json"
MODEL_DIR = "model"
CONFIG_FILE = "config.json"  # a saved generator: name, params, fitted transforms
WEIGHTS_FILE = "weights.pt"  # a saved generator: plain tensors
VALIDATION_DIR = "validation"
PART_GLOB = "part-*.parquet"


def model_privacy(run_dir: Path) -> dict | None:
    """What the run's fitted model spent on differential privacy (its config's
    `privacy_spent`: ε, δ, accountant, noise, clipping, sampling rate, steps); None
    when it was not trained privately."""
    config = Path(run_dir) / MODEL_DIR / CONFIG_FILE
    return json.loads(config.read_text()).get("privacy_spent") if config.is_file() else None


def part_files(run_dir: Path) -> list[Path]:
    return sorted(Path(run_dir).glob(PART_GLOB))


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


def output_chunks(run_dir: Path, *, rows: int, entity: str | None = None) -> Iterator[pd.DataFrame]:
    """The run's output as DataFrames of at most about `rows` rows, read row batch by row
    batch. With `entity`, a chunk never ends inside a sequence: the trailing entity's rows
    are carried into the next chunk."""
    carry: pd.DataFrame | None = None
    for path in part_files(Path(run_dir)):
        pf = pq.ParquetFile(path)
        for batch in pf.iter_batches(batch_size=rows):
            # the file schema carries the pandas metadata that restores dtypes such as Int64
            frame = pa.Table.from_batches([batch]).replace_schema_metadata(pf.schema_arrow.metadata).to_pandas()
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
