"""Read a run's Parquet output back as the modality's SourceData, for validation,
reports and consumers."""

from __future__ import annotations

from pathlib import Path

from pipeline.data import ImageData, SourceData, TabularData, TimeSeriesData
from pipeline.sink import read_output


def load_synthetic(run_dir: Path, like: SourceData, *, max_records: int | None = None) -> SourceData:
    """The output shaped like `like` (same profile, entity/time/static, label name).
    `max_records` caps what is read: the first parts, whole sequences only."""
    if isinstance(like, ImageData):
        from pipeline.images import table_to_images

        return table_to_images(read_output(run_dir, max_rows=max_records))
    if isinstance(like, TimeSeriesData):
        frame = read_output(run_dir).to_pandas()
        if max_records is not None:
            keep = frame[like.entity].drop_duplicates().iloc[:max_records]
            frame = frame[frame[like.entity].isin(keep)].reset_index(drop=True)
        return TimeSeriesData(
            frame=frame, profile=like.profile, entity=like.entity, time=like.time,
            static=list(like.static), features=list(like.features),
        )
    frame = read_output(run_dir, max_rows=max_records).to_pandas()
    return TabularData(frame=frame, profile=like.profile)
