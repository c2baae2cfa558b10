"""Dataset sources: a folder of Parquet files, partitioned hive-style (`year=2020/part.parquet`)
or flat, read with `pyarrow.dataset` as one table.

Partition keys become columns, typed from their values (`year=2020` an integer,
`region=north` text), as Spark, DuckDB and pyarrow write and read them. Files whose
name or folder starts with `.` or `_` (`_SUCCESS`, `_common_metadata`) are skipped, as
those readers skip them; a folder with no Parquet file, or files that disagree on a
column's type, are refused by name."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from pipeline.core.errors import SourceError
from pipeline.sources.arrow import frame_from_arrow

PARQUET_SUFFIXES = (".parquet", ".pq")
HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"  # how Hive and Spark name the folder of a null partition value


def parquet_files(folder: Path) -> list[Path]:
    """The dataset's data files, sorted by their path inside `folder`."""
    return sorted(
        p for p in folder.rglob("*")
        if p.is_file() and p.suffix.lower() in PARQUET_SUFFIXES
        and not any(part.startswith((".", "_")) for part in p.relative_to(folder).parts)
    )


def _partition_schema(files: list[Path], folder: Path) -> pa.Schema:
    """Hive keys from the folder names (`year=2020`), typed from their values: all
    integers (or Hive's null) give int64, anything else text."""
    values: dict[str, list[str]] = {}
    for f in files:
        for part in f.relative_to(folder).parent.parts:
            if "=" in part:
                key, value = part.split("=", 1)
                values.setdefault(key, []).append(value)
    return pa.schema([
        pa.field(key, pa.int64() if all(re.fullmatch(r"-?\d+", v) or v == HIVE_NULL for v in vs) else pa.string())
        for key, vs in values.items()
    ])


def _unified_schema(files: list[Path], partitions: pa.Schema, folder: Path) -> pa.Schema:
    """One schema for every file (a column missing from some files reads as nulls there),
    with the partition columns at the end."""
    try:
        schemas = [pq.read_schema(f) for f in files]
    except (pa.ArrowInvalid, OSError) as err:
        raise SourceError(f"cannot read a Parquet file of {folder}: it is corrupt or not Parquet ({err})") from None
    clash = [name for name in partitions.names if any(name in s.names for s in schemas)]
    if clash:
        raise SourceError(f"column {clash[0]!r} of {folder} is both a partition folder name and a column inside the "
                          "files: rename one of them")
    try:
        data = pa.unify_schemas([s.remove_metadata() for s in schemas])
    except (pa.ArrowInvalid, pa.ArrowTypeError) as err:
        raise SourceError(f"the Parquet files of {folder} disagree on a column's type ({err}): write them with one "
                          "schema") from None
    return pa.schema(list(data) + list(partitions))


def open_dataset(folder: Path) -> ds.Dataset:
    """The folder as one `pyarrow.dataset.Dataset` with hive partition columns."""
    files = parquet_files(folder)
    if not files:
        raise SourceError(f"source folder {folder} holds no Parquet file (*.parquet, *.pq): a tabular or time-series "
                          "folder source is a Parquet dataset")
    partitions = _partition_schema(files, folder)
    schema = _unified_schema(files, partitions, folder)
    return ds.dataset([str(f) for f in files], format="parquet", schema=schema, partition_base_dir=str(folder),
                      partitioning=ds.HivePartitioning(partitions, null_fallback=HIVE_NULL))


def read_dataset(folder: Path) -> pd.DataFrame:
    """Every row of the dataset, files in path order, as one DataFrame."""
    dataset = open_dataset(folder)
    try:
        table = dataset.to_table()
    except (pa.ArrowInvalid, OSError) as err:
        raise SourceError(f"cannot read the Parquet dataset {folder}: {err}") from None
    return frame_from_arrow(table, f"source folder {folder}")
