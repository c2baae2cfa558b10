"""SQL sources: a query run on a database, read as Arrow record batches.

`duckdb:///file.duckdb` (DuckDB: local files, and Parquet or CSV it can query) is
opened read-only and hands back Arrow natively (`to_arrow_reader`). Any other URL is
an SQLAlchemy URL (`sqlite:///file.db`, `postgresql://user@host/db` with its driver
installed): rows are fetched `BATCH_ROWS` at a time on a streaming cursor and turned
into Arrow column by column. As with SQLAlchemy, three slashes start a relative file
path and four an absolute one. `${VAR}` in a URL is read from the environment at
connect time, so a password need not sit in the job file (and `SourceSpec.location`
hides one that does). Every failure is a one-line `SourceError` (exit 2)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow as pa

from pipeline.core.errors import SourceError
from pipeline.sources.arrow import frame_from_arrow

BATCH_ROWS = 65_536  # rows per record batch: memory holds one batch of the cursor, and the hash sees fixed batches
DUCKDB = "duckdb:///"


def _expand(connection: str) -> str:
    missing = [v for v in re.findall(r"\$\{(\w+)\}", connection) if v not in os.environ]
    if missing:
        raise SourceError(f"source.connection uses ${{{missing[0]}}}, which is not set in the environment: export it")
    return re.sub(r"\$\{(\w+)\}", lambda m: os.environ[m.group(1)], connection)


def _first_line(err: BaseException) -> str:
    return str(getattr(err, "orig", None) or err).strip().splitlines()[0]


def _database_file(rest: str) -> Path:
    path = Path(rest.split("?", 1)[0])
    if not path.is_file():
        raise SourceError(f"database file {path} of source.connection not found: check the path "
                          "(three slashes: relative to the working directory, four: absolute)")
    return path


def _fixed_batches(batches: Iterator[pa.RecordBatch], rows: int) -> Iterator[pa.RecordBatch]:
    """The same rows re-cut into batches of exactly `rows` (the last one shorter): DuckDB
    cuts its result where its threads and row groups end, and the fingerprint must not
    depend on that."""
    pending: list[pa.RecordBatch] = []
    count = 0
    for batch in batches:
        pending.append(batch)
        count += batch.num_rows
        while count >= rows:
            table = pa.Table.from_batches(pending)
            yield from table.slice(0, rows).combine_chunks().to_batches()
            rest = table.slice(rows)
            pending, count = rest.to_batches(), rest.num_rows
    if count:
        yield from pa.Table.from_batches(pending).combine_chunks().to_batches()


def _duckdb_batches(path: Path, sql: str, where: str) -> Iterator[pa.RecordBatch]:
    import duckdb

    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.Error as err:
        raise SourceError(f"cannot open DuckDB database {path}: {_first_line(err)}") from None
    try:
        relation = con.sql(sql)
        if relation is None:
            raise SourceError(f"source.sql on {where} returns no rows and columns: give a SELECT query")
        yield from _fixed_batches(iter(relation.to_arrow_reader(BATCH_ROWS)), BATCH_ROWS)
    except duckdb.Error as err:
        raise SourceError(f"source.sql failed on {where}: {_first_line(err)} (fix the query)") from None
    finally:
        con.close()


def _engine(url: str):
    import sqlalchemy as sa

    try:
        engine = sa.create_engine(url)
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ImportError) as err:
        raise SourceError(f"source.connection is not a usable database URL ({_first_line(err)}): use "
                          "duckdb:///file.duckdb or an SQLAlchemy URL such as sqlite:///file.db, with the "
                          "database's driver installed") from None
    if engine.dialect.name == "sqlite" and url.startswith("sqlite:///"):
        _database_file(url.removeprefix("sqlite:///"))  # SQLite would create an empty file instead
    return engine


def check_connection(connection: str) -> str:
    """The URL with `${VAR}`s filled in, once its scheme is known and its database file
    (DuckDB, SQLite) exists. Connects to nothing: a cheap check before a flow starts."""
    url = _expand(connection)
    if url.startswith(DUCKDB):
        _database_file(url.removeprefix(DUCKDB))
    else:
        _engine(url).dispose()
    return url


def _sqlalchemy_batches(url: str, sql: str, where: str) -> Iterator[pa.RecordBatch]:
    import sqlalchemy as sa

    engine = _engine(url)
    try:
        with engine.connect() as conn:
            result = conn.execution_options(stream_results=True).execute(sa.text(sql))
            if not result.returns_rows:
                raise SourceError(f"source.sql on {where} returns no rows and columns: give a SELECT query")
            names = list(result.keys())
            while rows := result.fetchmany(BATCH_ROWS):
                try:
                    yield pa.record_batch([pa.array(column) for column in zip(*rows)], names=names)
                except (pa.ArrowInvalid, pa.ArrowTypeError) as err:
                    raise SourceError(f"source.sql on {where}: a column mixes value types ({err}); cast it in "
                                      "the query") from None
    except sa.exc.SQLAlchemyError as err:
        raise SourceError(f"source.sql failed on {where}: {_first_line(err)} (fix the query or the connection)") from None
    finally:
        engine.dispose()


def query_batches(sql: str, connection: str, where: str) -> Iterator[pa.RecordBatch]:
    """The query's result as record batches of `BATCH_ROWS` rows (the last one shorter),
    in the order the database returns them. `where` names the source in messages."""
    url = check_connection(connection)
    if url.startswith(DUCKDB):
        return _duckdb_batches(_database_file(url.removeprefix(DUCKDB)), sql, where)
    return _sqlalchemy_batches(url, sql, where)


def read_query(sql: str, connection: str, where: str) -> pd.DataFrame:
    """The whole result as a DataFrame; an empty result is a `SourceError`."""
    batches = list(query_batches(sql, connection, where))
    if not batches:
        raise SourceError(f"source.sql on {where} returned no rows: a generator needs data to learn from")
    try:
        # a DB-API column can change Arrow type between batches (all null, then text): promote
        table = pa.concat_tables([pa.Table.from_batches([b]) for b in batches], promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as err:
        raise SourceError(f"source.sql on {where}: a column changes type between rows ({err}); cast it in the query"
                          ) from None
    return frame_from_arrow(table, f"the result of source.sql on {where}")
