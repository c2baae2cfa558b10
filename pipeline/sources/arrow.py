"""Arrow tables from datasets and databases into the DataFrame every loader takes.

One conversion for both, so a column reads the same whichever engine produced it:
dictionary (DuckDB ENUM, partition) columns as their plain values, decimals as float64
(the generators model numbers, not exact decimal arithmetic), 32-bit integers and
floats widened to the 64-bit dtypes a CSV of the same data would give."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa

from pipeline.core.errors import SourceError


def _plain_type(t: pa.DataType) -> pa.DataType:
    if pa.types.is_dictionary(t):
        return _plain_type(t.value_type)
    if pa.types.is_decimal(t) or pa.types.is_floating(t):
        return pa.float64()
    if pa.types.is_signed_integer(t):
        return pa.int64()
    if pa.types.is_unsigned_integer(t):
        return pa.uint64() if t.bit_width == 64 else pa.int64()
    if pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return pa.string()
    return t


def plain_schema(schema: pa.Schema) -> pa.Schema:
    """`schema` with every column's plain type (a streamed batch is cast to it too)."""
    return pa.schema([pa.field(f.name, _plain_type(f.type)) for f in schema])


def frame_from_arrow(table: pa.Table, where: str) -> pd.DataFrame:
    """`table` as pandas with plain column types; an empty result is a `SourceError`."""
    if table.num_rows == 0:
        raise SourceError(f"{where} has no rows: a generator needs data to learn from (check the query or the folder)")
    schema = plain_schema(table.schema)
    try:
        table = table.cast(schema)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as err:
        raise SourceError(f"cannot convert the columns of {where} to plain types: {err}") from None
    return table.to_pandas()
