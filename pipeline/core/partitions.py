"""Hive-partitioned outputs (`output.partition_by`): which columns may partition, how a
row's values become a folder name, and the one `Partitioning` every reader uses.

A partitioned run keeps its data under `<run>/data/`, one folder level per column
(`data/year=2008/part-00000.parquet`), so the folder holds nothing but data: pyarrow,
DuckDB (`read_parquet('<run>/data/**/*.parquet', hive_partitioning=true)`) and Spark
read it by its path. Folder values are escaped as Spark escapes them (`%2F` for `/`)
and a null is `__HIVE_DEFAULT_PARTITION__`, the name all three read back as null.

A partition column lives only in folder names, where a reader guesses its type (2008:
int32 in pyarrow, BIGINT in DuckDB). Every file therefore carries the whole output's
Arrow schema (source column order and dtypes, pandas metadata) under `SCHEMA_KEY`, and
`pipeline.core.runfiles` restores the column with the source's dtype from it."""

from __future__ import annotations

import base64
from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads

from pipeline.core.errors import SpecError
from pipeline.core.schema import TableProfile

DATA_DIR = "data"  # a partitioned run's data folder: readers are pointed here
NULL_VALUE = "__HIVE_DEFAULT_PARTITION__"  # Hive's, Spark's, pyarrow's and DuckDB's name for null
SCHEMA_KEY = b"synthpipe.output_schema"  # the whole output's Arrow schema, base64 IPC
# Folders per run at most (the product of the columns' distinct values): each part writes
# a file per folder, so a column of 10^4 values would mean 10^4 small files per part.
MAX_PARTITIONS = 1000
# Characters Spark escapes in partition values (plus control characters); `%XX` decodes
# in pyarrow ("uri" segment encoding), DuckDB and Spark alike.
_ESCAPED = set('"#%\'*/:=?\\{[]^') | {chr(c) for c in range(0x20)} | {"\x7f"}


def distinct_values(profile: TableProfile, name: str) -> int | None:
    """How many values a column can take in the output, from the profile (a null counts
    as one); None when it is continuous, a timestamp or an id (unbounded)."""
    col = profile.column(name)
    null = 1 if col.null_fraction > 0 else 0
    if col.kind in ("categorical", "boolean"):
        return len(col.categories or []) + null
    if col.kind in ("numeric", "integer") and col.support is not None:
        return len(col.support) + null
    if col.kind == "integer" and col.step and col.min is not None and col.max is not None:
        return int(round((col.max - col.min) / col.step)) + 1 + null
    return None


def check_partition_columns(names: list[str], profile: TableProfile) -> None:
    """Refuse, before any fit, partition columns the output cannot be split by: not a
    column of the output, continuous, an id or a timestamp, all of the columns, or more
    than MAX_PARTITIONS folders together."""
    if not names:
        return
    unknown = [n for n in names if n not in profile.names]
    if unknown:
        raise SpecError(f"output.partition_by: {', '.join(map(repr, unknown))} not a column of the output; "
                        f"columns: {', '.join(profile.names)}")
    if len(names) == len(profile.names):
        raise SpecError("output.partition_by names every column: the files would hold no data; "
                        "leave at least one column out")
    folders = 1
    for name in names:
        n = distinct_values(profile, name)
        if n is None:
            kind = profile.column(name).kind
            raise SpecError(f"output.partition_by: {name!r} is {kind} with unbounded values (one folder per value); "
                            "partition by a categorical, boolean or integer column with few values")
        folders *= n
    if folders > MAX_PARTITIONS:
        raise SpecError(f"output.partition_by: {', '.join(names)} make up to {folders:,} folders (at most "
                        f"{MAX_PARTITIONS:,}: each part writes a file per folder); partition by fewer or coarser columns")


def _escape(text: str) -> str:
    return "".join(f"%{ord(c):02X}" if c in _ESCAPED else c for c in text)


def _encoded(column: pa.ChunkedArray) -> tuple[np.ndarray, list[str]]:
    """Each row's index into the column's distinct values, and those values as folder text."""
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    encoded = pc.dictionary_encode(column, null_encoding="encode").combine_chunks()
    values = pc.cast(encoded.dictionary, pa.string()).to_pylist()
    codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    return codes, [NULL_VALUE if v is None else _escape(v) for v in values]


def split(table: pa.Table, names: list[str]) -> Iterator[tuple[str, pa.Table]]:
    """(`col=value/...` folder, its rows without the partition columns) for every folder
    that `table` has rows for, rows in their order within each folder."""
    if not len(table):
        return
    key = np.zeros(len(table), dtype=np.int64)
    columns = []
    for name in names:
        codes, values = _encoded(table.column(name))
        key = key * len(values) + codes
        columns.append((name, codes, values))
    order = np.argsort(key, kind="stable")
    _, starts = np.unique(key[order], return_index=True)
    data = table.drop_columns(names)
    for start, end in zip(starts, [*starts[1:], len(order)]):
        row = order[start]
        yield "/".join(f"{name}={values[codes[row]]}" for name, codes, values in columns), data.take(order[start:end])


def with_output_schema(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """`table` (a folder's rows) carrying the whole output's schema in its metadata."""
    meta = dict(table.schema.metadata or {})
    pandas = {k: v for k, v in (schema.metadata or {}).items() if k == b"pandas"}
    meta[SCHEMA_KEY] = base64.b64encode(schema.with_metadata(pandas).serialize().to_pybytes())
    return table.replace_schema_metadata(meta)


def output_schema(file_schema: pa.Schema) -> pa.Schema | None:
    """The whole output's schema a partitioned file carries; None for a flat part."""
    text = (file_schema.metadata or {}).get(SCHEMA_KEY)
    return pa.ipc.read_schema(pa.py_buffer(base64.b64decode(text))) if text else None


def hive(schema: pa.Schema, names: list[str]) -> pads.Partitioning:
    """The Partitioning that reads folder names back with the output's own types."""
    fields = [schema.field(n) for n in names]
    fields = [f.with_type(f.type.value_type) if pa.types.is_dictionary(f.type) else f for f in fields]
    return pads.HivePartitioning(pa.schema(fields), null_fallback=NULL_VALUE)
