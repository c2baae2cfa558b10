"""Dataset sources: a folder of Parquet files, partitioned hive-style (`year=2020/part.parquet`)
or flat, read with `pyarrow.dataset` as one table.

Partition keys become columns, typed from their values (`year=2020` an integer,
`region=north` text), as Spark, DuckDB and pyarrow write and read them. Files whose
name or folder starts with `.` or `_` (`_SUCCESS`, `_common_metadata`) are skipped, as
those readers skip them; a folder with no Parquet file, or files that disagree on a
column's type, are refused by name."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from pipeline.core.errors import SourceError
from pipeline.sources.arrow import frame_from_arrow

PARQUET_SUFFIXES = (".parquet", ".pq")


def parquet_files(folder: Path) -> list[Path]:
    """The dataset's data files, sorted by their path inside `folder`."""
    return sorted(
        p for p in folder.rglob("*")
        if p.is_file() and p.suffix.lower() in PARQUET_SUFFIXES
        and not any(part.startswith((".", "_")) for part in p.relative_to(folder).parts)
    )


def _unified_schema(files: list[Path], partitions: pa.Schema, folder: Path) -> pa.Schema:
    """One schema for every file (a column missing from some files reads as nulls there),
    with the partition columns at the end."""
    try:
        schemas = [pq.read_schema(f) for f in files]
    except (pa.ArrowInvalid, OSError) as err:
        raise SourceError(f"cannot read a Parquet file of {folder}: it is corrupt or not Parquet ({err})") from None
    clash = [f.name for f in partitions if any(f.name in s.names for s in schemas)]
    if clash:
        raise SourceError(f"column {clash[0]!r} of {folder} is both a partition folder name and a column inside the "
                          "files: rename one of them")
    try:
        data = pa.unify_schemas([s.remove_metadata() for s in schemas])
    except (pa.ArrowInvalid, pa.ArrowTypeError) as err:
        raise SourceError(f"the Parquet files of {folder} disagree on a column's type ({err}): write them with one "
                          "schema") from None
    return pa.schema(list(data) + [pa.field(f.name, pa.int64() if pa.types.is_integer(f.type) else f.type)
                                   for f in partitions])


def open_dataset(folder: Path) -> ds.Dataset:
    """The folder as one `pyarrow.dataset.Dataset` with hive partition columns."""
    files = parquet_files(folder)
    if not files:
        raise SourceError(f"source folder {folder} holds no Parquet file (*.parquet, *.pq): a tabular or time-series "
                          "folder source is a Parquet dataset")
    partitioning = ds.HivePartitioning.discover(infer_dictionary=False)
    found = ds.dataset([str(f) for f in files], format="parquet", partitioning=partitioning,
                       partition_base_dir=str(folder))
    partitions = found.partitioning.schema if found.partitioning else pa.schema([])
    schema = _unified_schema(files, partitions, folder)
    return ds.dataset([str(f) for f in files], format="parquet", schema=schema, partition_base_dir=str(folder),
                      partitioning=ds.partitioning(pa.schema([schema.field(f.name) for f in partitions]), flavor="hive"))


def read_dataset(folder: Path) -> pd.DataFrame:
    """Every row of the dataset, files in path order, as one DataFrame."""
    dataset = open_dataset(folder)
    try:
        table = dataset.to_table()
    except (pa.ArrowInvalid, OSError) as err:
        raise SourceError(f"cannot read the Parquet dataset {folder}: {err}") from None
    return frame_from_arrow(table, f"source folder {folder}")
