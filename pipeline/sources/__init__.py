"""Sources: read a job's source into the modality's `SourceData`, and fingerprint it.

A tabular or time-series source is a table from one of three places: a CSV or Parquet
file (`tabular.read_table`), a folder of Parquet files (`dataset`), or a SQL query
(`sql`). `read_frame` picks the reader; the modality's loader shapes the table. A
tabular Parquet source bigger than memory is never read whole (`stream`)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from pipeline.core.data import SourceData
from pipeline.core.spec import SourceSpec
from pipeline.sources.dataset import parquet_files, read_dataset
from pipeline.sources.fingerprint import batches_fingerprint, dataset_fingerprint, existing_source, fingerprint
from pipeline.sources.stream import load_streamed, streams
from pipeline.sources.sql import check_connection, query_batches, read_query
from pipeline.sources.tabular import load_tabular, read_table


def _dataset_folder(spec: SourceSpec) -> Path | None:
    """The source's path when it is a Parquet dataset folder (a folder of images is not)."""
    path = existing_source(spec.path)
    return path if path.is_dir() and spec.modality != "image" else None


def read_frame(spec: SourceSpec) -> pd.DataFrame:
    """The table of a tabular or time-series source, from a file, a dataset folder or a query."""
    if spec.sql is not None:
        return read_query(spec.sql, spec.connection, spec.location)
    folder = _dataset_folder(spec)
    return read_dataset(folder) if folder else read_table(spec.path)


def source_fingerprint(spec: SourceSpec) -> str:
    """sha256 of what the generator learns from: a file's bytes, a dataset's data files,
    a query's result (see `pipeline.sources.fingerprint`)."""
    if spec.sql is not None:
        return batches_fingerprint(query_batches(spec.sql, spec.connection, spec.location))
    folder = _dataset_folder(spec)
    return dataset_fingerprint(folder, parquet_files(folder)) if folder else fingerprint(spec.path)


def check_reachable(spec: SourceSpec) -> None:
    """Fail fast, before a flow starts, when the source's file or database is not there."""
    if spec.sql is None:
        existing_source(spec.path)
    else:
        check_connection(spec.connection)


def load_source(spec: SourceSpec) -> SourceData:
    """Dispatch on modality. Each loader raises `SourceError` with a one-line reason."""
    if spec.modality == "tabular":
        if streams(spec):
            return load_streamed(spec)
        return load_tabular(spec, read_frame(spec))
    if spec.modality == "timeseries":
        from pipeline.sources.timeseries import load_timeseries

        return load_timeseries(spec, read_frame(spec))
    from pipeline.sources.image import load_images

    return load_images(spec)


__all__ = ["check_reachable", "fingerprint", "load_source", "read_frame", "read_table", "source_fingerprint"]
