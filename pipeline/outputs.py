"""Read a run's Parquet output back as the modality's SourceData, for validation,
reports and consumers."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa

from pipeline.data import ImageData, SourceData, TabularData, TimeSeriesData
from pipeline.sink import read_output, row_groups


def load_synthetic(run_dir: Path, like: SourceData, *, max_records: int | None = None) -> SourceData:
    """The output shaped like `like` (same profile, entity/time/static, label name).
    `max_records` caps what is read: the first parts, whole sequences only."""
    if isinstance(like, ImageData):
        from pipeline.images import table_to_images

        return table_to_images(read_output(run_dir, max_rows=max_records))
    if isinstance(like, TimeSeriesData):
        frame = _first_sequences(run_dir, like.entity, max_records)
        return TimeSeriesData(
            frame=frame, profile=like.profile, entity=like.entity, time=like.time,
            static=list(like.static), features=list(like.features),
        )
    frame = read_output(run_dir, max_rows=max_records).to_pandas()
    return TabularData(frame=frame, profile=like.profile)


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
