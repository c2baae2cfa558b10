"""SQL sources on real engines: a DuckDB file and a SQLite database built from the
penguins table, read through `load_source`; the result fingerprint; one-line errors;
and a real job on a SQL source through the CLI and the Prefect flow."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from pipeline.core.errors import SourceError, SpecError
from pipeline.core.spec import SourceSpec, load_spec, parse_spec
from pipeline.sources import load_source, read_table, source_fingerprint
from pipeline.sources.sql import BATCH_ROWS
from tests.conftest import PENGUINS

QUERY = "select * from penguins"


def duckdb_file(path: Path, frame: pd.DataFrame, *, inserts: int = 1) -> str:
    """A DuckDB database holding `frame` as table `penguins`, written in `inserts` pieces."""
    con = duckdb.connect(str(path))
    step = -(-len(frame) // inserts)
    con.register("frame", frame)
    con.execute("create table penguins as select * from frame limit 0")
    for start in range(0, len(frame), step):
        con.register("piece", frame.iloc[start : start + step])
        con.execute("insert into penguins select * from piece")
    con.close()
    return f"duckdb:///{path}"


def sqlite_file(path: Path, frame: pd.DataFrame) -> str:
    with sqlite3.connect(path) as con:
        frame.to_sql("penguins", con, index=False)
    return f"sqlite:///{path}"


def assert_same_table(got: pd.DataFrame, want: pd.DataFrame) -> None:
    """Same columns, dtypes and values; a missing text value is None from Arrow, NaN from CSV."""
    assert got.dtypes.to_dict() == want.dtypes.to_dict()
    pd.testing.assert_frame_equal(got.astype(object).where(got.notna(), None), want.astype(object).where(want.notna(), None))


def sql_spec(connection: str, sql: str = QUERY) -> SourceSpec:
    return SourceSpec(modality="tabular", sql=sql, connection=connection)


@pytest.fixture(scope="module")
def csv_frame() -> pd.DataFrame:
    return read_table(PENGUINS)


@pytest.fixture(scope="module")
def databases(tmp_path_factory, csv_frame) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("db")
    return {"duckdb": duckdb_file(folder / "p.duckdb", csv_frame), "sqlite": sqlite_file(folder / "p.db", csv_frame)}


@pytest.mark.parametrize("engine", ["duckdb", "sqlite"])
def test_a_query_reads_the_table_as_the_csv_does(engine, databases, csv_frame, penguins):
    data = load_source(sql_spec(databases[engine]))
    assert_same_table(data.frame, csv_frame)
    assert data.profile == penguins.profile
    recent = load_source(sql_spec(databases[engine], "select * from penguins where year >= 2008"))
    assert len(recent) == int((csv_frame.year >= 2008).sum()) < len(csv_frame)


@pytest.mark.parametrize("engine", ["duckdb", "sqlite"])
def test_fingerprint_is_stable_and_follows_the_table(engine, tmp_path, csv_frame):
    make = duckdb_file if engine == "duckdb" else sqlite_file
    url = make(tmp_path / "a.db", csv_frame)
    first = source_fingerprint(sql_spec(url))
    assert first.startswith("sha256:") and source_fingerprint(sql_spec(url)) == first
    assert source_fingerprint(sql_spec(make(tmp_path / "b.db", csv_frame))) == first, "same data, same fingerprint"
    assert source_fingerprint(sql_spec(url, QUERY + " where year >= 2008")) != first
    assert source_fingerprint(sql_spec(url, QUERY + " order by body_mass_g")) != first, "row order is what is learnt"
    if engine == "duckdb":
        with duckdb.connect(url.removeprefix("duckdb:///")) as con:
            con.execute("update penguins set body_mass_g = body_mass_g + 1 where rowid = 7")
    else:
        with sqlite3.connect(url.removeprefix("sqlite:///")) as con:
            con.execute("update penguins set body_mass_g = body_mass_g + 1 where rowid = 8")
    assert source_fingerprint(sql_spec(url)) != first, "one changed value changes the fingerprint"


def test_fingerprint_does_not_depend_on_how_duckdb_cuts_its_result(tmp_path, csv_frame):
    """More rows than one batch, stored in one insert or in 40: DuckDB hands back batches
    cut at other places, the fingerprint re-cuts them and is the same."""
    big = pd.concat([csv_frame] * (BATCH_ROWS // len(csv_frame) + 2), ignore_index=True)
    one = duckdb_file(tmp_path / "one.duckdb", big)
    many = duckdb_file(tmp_path / "many.duckdb", big, inserts=40)
    assert len(big) > BATCH_ROWS
    assert source_fingerprint(sql_spec(many)) == source_fingerprint(sql_spec(one))
    assert len(load_source(sql_spec(one))) == len(big)


@pytest.mark.parametrize(
    "connection, sql, fragment",
    [
        ("mysqlx://host/db", QUERY, "not a usable database URL (Can't load plugin: sqlalchemy.dialects:mysqlx)"),
        ("no url at all", QUERY, "not a usable database URL"),
        ("duckdb:///{tmp}/missing.duckdb", QUERY, "missing.duckdb of source.connection not found"),
        ("sqlite:///{tmp}/missing.db", QUERY, "missing.db of source.connection not found"),
        ("duckdb", "select * from nope", "Table with name nope does not exist"),
        ("sqlite", "select * from nope", "no such table: nope"),
        ("duckdb", "selec 1", "syntax error"),
        ("duckdb", "select * from penguins where year > 3000", "no rows"),
        ("sqlite", "select * from penguins where year > 3000", "no rows"),
        ("duckdb", "create table t (a int)", "read-only"),
        ("sqlite:///${SYNTHPIPE_TEST_UNSET}/p.db", QUERY, "${SYNTHPIPE_TEST_UNSET}, which is not set"),
    ],
)
def test_errors_are_one_line_source_errors(connection, sql, fragment, databases, tmp_path, monkeypatch):
    monkeypatch.delenv("SYNTHPIPE_TEST_UNSET", raising=False)
    url = databases.get(connection, connection.replace("{tmp}", str(tmp_path)))
    with pytest.raises(SourceError) as err:
        load_source(sql_spec(url, sql))
    assert fragment in str(err.value) and "\n" not in str(err.value)
    assert not list(tmp_path.iterdir()), "a missing database file is not created"


def test_connection_reads_variables_from_the_environment(databases, monkeypatch):
    folder, name = databases["sqlite"].removeprefix("sqlite:///").rsplit("/", 1)
    monkeypatch.setenv("SYNTHPIPE_TEST_DB_DIR", folder)
    assert len(load_source(sql_spec("sqlite:///${SYNTHPIPE_TEST_DB_DIR}/" + name))) == 344


JOB = {"name": "sql-job", "generator": {"family": "copula"}}
GENERATORS = {"tabular/copula", "image/gan"}  # the spec checks names only: no registry import needed


def parse_job(data: dict):
    return parse_spec(data, generators=GENERATORS)


@pytest.mark.parametrize(
    "source, fragment",
    [
        ({"sql": QUERY}, "source.sql needs the database URL"),
        ({"path": str(PENGUINS), "sql": QUERY, "connection": "duckdb:///x"}, "not both"),
        ({"path": str(PENGUINS), "connection": "duckdb:///x"}, "used only with source.sql"),
        ({}, "source.path is missing"),
    ],
)
def test_spec_needs_a_path_or_a_query_with_its_connection(source, fragment):
    with pytest.raises(SpecError, match=fragment.replace(".", r"\.")):
        parse_job({**JOB, "source": {"modality": "tabular", **source}})


def test_spec_paths_and_passwords(tmp_path, databases):
    with pytest.raises(SpecError, match="an image source is a folder"):
        parse_job({**JOB, "generator": {"family": "gan"},
                   "source": {"modality": "image", "sql": QUERY, "connection": databases["duckdb"]}})
    secret = SourceSpec(modality="tabular", sql=QUERY, connection="postgresql://ana:s3cret@db.example/loans")
    assert secret.location == "query on postgresql://ana:***@db.example/loans"
    (tmp_path / "jobs").mkdir()
    duckdb_file(tmp_path / "jobs" / "local.duckdb", read_table(PENGUINS).head(5))
    job = tmp_path / "jobs" / "job.yaml"
    job.write_text(json.dumps({**JOB, "source": {"modality": "tabular", "sql": QUERY,
                                                 "connection": "duckdb:///local.duckdb"}}))
    spec = load_spec(job, generators={"tabular/copula"})
    assert spec.source.connection == f"duckdb:///{tmp_path / 'jobs' / 'local.duckdb'}", "resolves from the job file"
    assert len(load_source(spec.source)) == 5


def _sql_job(tmp_path: Path, url: str, generator: dict) -> Path:
    job = tmp_path / "job.yaml"
    job.write_text(json.dumps({
        "name": "sql-job", "source": {"modality": "tabular", "sql": QUERY + " where year >= 2007", "connection": url},
        "generator": generator, "sample": {"rows": 200, "seed": 3},
        "validation": {"target": "species"}, "output": str(tmp_path / "out"),
    }))
    return job


def _only_run(tmp_path: Path) -> tuple[Path, dict]:
    runs = [p for p in (tmp_path / "out" / "sql-job").iterdir() if p.is_dir() and not p.name.startswith(".")]
    assert len(runs) == 1
    return runs[0], json.loads((runs[0] / "manifest.json").read_text())


def test_a_job_on_a_sql_source_runs_through_the_cli(tmp_path, prefect_harness):
    """The real flow on a DuckDB query: fit, sample, validate, decide; the manifest names
    the query and its fingerprint; a missing database is exit 2 before Prefect starts."""
    from typer.testing import CliRunner

    from flows.cli import app

    db = tmp_path / "loans.duckdb"
    url = duckdb_file(db, read_table(PENGUINS))
    job = _sql_job(tmp_path, url, {"family": "copula"})
    runner = CliRunner()
    first = runner.invoke(app, ["run", str(job)])
    assert first.exit_code in (0, 1), first.output  # the gate decides; publishing is the slow test below
    run, manifest = _only_run(tmp_path)
    spec = load_spec(job, generators={"tabular/copula"})
    assert manifest["source"] == {"path": f"query on {url}", "fingerprint": source_fingerprint(spec.source)}
    assert manifest["rows"]["source"] == 344 and manifest["rows"]["synthetic"] == 200
    assert manifest["status"] == ("published" if first.exit_code == 0 else "quarantined")
    assert manifest["job"]["source"]["sql"] == QUERY + " where year >= 2007"

    db.unlink()
    missing = runner.invoke(app, ["run", str(job), "--rows", "10"])
    assert missing.exit_code == 2 and "loans.duckdb of source.connection not found" in missing.output


@pytest.mark.slow
def test_a_sql_source_job_publishes(tmp_path, prefect_harness):
    """The demo's generator and training length (data/jobs/penguins-demo.yaml) on a SQLite query:
    every suite passes on the calibrated defaults, the run is published and readable, and
    a second run on the unchanged table reuses the fitted model. Measured: ~4 min here."""
    from typer.testing import CliRunner

    from flows.cli import app
    from pipeline.consume import load

    url = sqlite_file(tmp_path / "loans.db", read_table(PENGUINS))
    job = _sql_job(tmp_path, url, {"family": "diffusion", "params": {"steps": 600}})
    runner = CliRunner()
    result = runner.invoke(app, ["run", str(job)])
    assert result.exit_code == 0, result.output
    run, manifest = _only_run(tmp_path)
    assert manifest["status"] == "published" and (tmp_path / "out" / "sql-job" / "LATEST").read_text().strip() == run.name
    assert load("sql-job", root=tmp_path / "out").to_pandas().shape == (200, 8)
    again = runner.invoke(app, ["run", str(job), "--rows", "50"])
    assert "fitted model reused" in again.output, again.output
