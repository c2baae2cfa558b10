"""output.partition_by through the CLI: a real job writes a hive-partitioned run that
pyarrow and DuckDB read back equal to the unpartitioned run of the same seed, that
`synth validate`, `synth report` and the consume API work on; bad partition specs exit
2 with one line and nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow.dataset as pads
import pytest
import yaml
from typer.testing import CliRunner

from flows.cli import app
from pipeline.consume import load
from pipeline.core.partitions import DATA_DIR
from pipeline.core.runfiles import RunData, read_output
from tests.conftest import PENGUINS, ROOT

runner = CliRunner()


def _job(tmp_path: Path, partition_by: list[str] | None = None, name: str = "parts", **spec) -> Path:
    data = {
        "name": name,
        "source": {"modality": "tabular", "path": str(PENGUINS)},
        "generator": {"family": "copula"},
        "sample": {"rows": 600, "seed": 3, "batch_size": 100, "records_per_file": 200},
        "validation": {"target": "species"},
        "output": {"path": str(tmp_path / "out"), **({"partition_by": partition_by} if partition_by else {})},
        **spec,
    }
    path = tmp_path / f"{name}-{'-'.join(partition_by or ['flat'])}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _run(job: Path) -> dict:
    result = runner.invoke(app, ["run", str(job), "--json"])
    assert result.exit_code in (0, 1), result.output
    summary = json.loads(result.stdout)
    assert result.exit_code == (0 if summary["status"] == "published" else 1)
    return summary


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(list(frame.columns), na_position="last", kind="stable").reset_index(drop=True)


def _same_rows(partitioned: Path, flat: Path) -> None:
    """Our reader, pyarrow's hive dataset and DuckDB all see the flat run's rows."""
    expected = _sorted(read_output(flat).to_pandas())
    ours = read_output(partitioned).to_pandas()
    assert ours.dtypes.to_dict() == expected.dtypes.to_dict(), "partition columns keep the source's dtype"
    pd.testing.assert_frame_equal(_sorted(ours), expected)
    arrow = pads.dataset(partitioned / DATA_DIR, format="parquet", partitioning="hive").to_table().to_pandas()
    duck = duckdb.sql(f"select * from read_parquet('{partitioned / DATA_DIR}/**/*.parquet', "
                      "hive_partitioning=true)").df()
    for frame in (arrow, duck):
        pd.testing.assert_frame_equal(_sorted(frame[expected.columns].astype(expected.dtypes.to_dict())), expected)


def test_partitioned_run_through_the_cli(tmp_path, prefect_harness):
    flat = _run(_job(tmp_path))
    summary = _run(_job(tmp_path, ["year", "sex"]))
    assert summary["generator"]["reused_fit"], "the layout is not part of the fit: same model, same seed"
    run = Path(summary["run_dir"])
    assert not list(run.glob("*.parquet")) and (run / DATA_DIR / "year=2008" / "sex=female").is_dir()
    files = json.loads((run / "manifest.json").read_text())["files"]
    assert "year=2009/sex=__HIVE_DEFAULT_PARTITION__/part-00002.parquet" in files
    assert sorted(files) == sorted(RunData(run).name(p) for p in RunData(run).files)
    assert summary["rows"]["synthetic"] == 600 and summary["job"]["output"]["partition_by"] == ["year", "sex"]
    _same_rows(run, Path(flat["run_dir"]))
    # The same rows in folder order: the order-free metrics agree to rounding (randomised
    # attacks such as singling-out draw their targets by row position, so they may not).
    assert summary["suites"]["contract"] and set(summary["metrics"]) == set(flat["metrics"])
    for name in ("fidelity.column_similarity_mean", "fidelity.cramers_v_diff", "fidelity.correlation_diff", "privacy.exact_copy_rate",
                 "privacy.dcr_share"):
        assert summary["metrics"][name] == pytest.approx(flat["metrics"][name], rel=1e-9), name

    revalidated = runner.invoke(app, ["validate", str(run), "--json"])
    assert revalidated.exit_code == (0 if summary["status"] == "published" else 1), revalidated.output
    assert json.loads(revalidated.stdout)["metrics"] == summary["metrics"]
    (run / "report.html").unlink()
    rebuilt = runner.invoke(app, ["report", str(run)])
    assert rebuilt.exit_code == 0 and (run / "report.html").is_file(), rebuilt.output

    data = load("parts", version=run.name, root=tmp_path / "out", allow_quarantined=True, verify=True)
    frame = data.to_pandas()
    assert list(frame.columns) == list(pd.read_csv(PENGUINS).columns) and frame["year"].dtype == "int64"
    assert data.to_pyarrow().to_table(filter=pads.field("year") == 2008).num_rows == (frame["year"] == 2008).sum()
    rows = data.torch(target="species", batch_size=64)
    assert sum(len(y) for _, y in rows) == 600, "torch reads the partition columns too"

    # A changed file is refused: checksums cover the files under their folders.
    victim = RunData(run).files[0]
    victim.write_bytes(victim.read_bytes() + b"x")
    tampered = runner.invoke(app, ["validate", str(run)])
    assert tampered.exit_code == 2 and "changed since it was validated" in tampered.stderr


@pytest.mark.parametrize(("partition_by", "fragment"), [
    (["yaer"], "output.partition_by: 'yaer' not a column of the output"),
    (["body_mass_g"], "'body_mass_g' is numeric with unbounded values"),
    (["year", "year"], "'year' listed twice"),
])
def test_bad_partition_specs_exit_2_with_nothing_written(tmp_path, prefect_harness, partition_by, fragment):
    result = runner.invoke(app, ["run", str(_job(tmp_path, partition_by))])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error:") and fragment in result.stderr and len(result.stderr.splitlines()) == 1
    assert not (tmp_path / "out").exists(), "refused before the fit: no output folder"


def test_partitioning_a_time_series_is_refused(tmp_path, prefect_harness):
    job = _job(tmp_path, ["industry"], source={"modality": "timeseries", "path": str(ROOT / "data" / "sources" /
               "grunfeld.csv"), "entity": "firm", "time": "year"}, generator={"family": "vae"},
               validation={})
    result = runner.invoke(app, ["run", str(job)])
    assert result.exit_code == 2 and "partitioned outputs are tabular only" in result.stderr, result.output
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_demo_job_partitioned_by_year_publishes(tmp_path, prefect_harness):
    """The demo job's own settings (diffusion, 250 epochs, seed 7) with partition_by: [year]."""
    spec = yaml.safe_load((ROOT / "data" / "jobs" / "penguins-demo.yaml").read_text())
    spec["source"]["path"] = str(PENGUINS)
    spec["output"] = {"path": str(tmp_path / "out")}
    flat_job = tmp_path / "flat.yaml"
    flat_job.write_text(yaml.safe_dump(spec))
    spec["output"]["partition_by"] = ["year"]
    part_job = tmp_path / "part.yaml"
    part_job.write_text(yaml.safe_dump(spec))
    flat, partitioned = _run(flat_job), _run(part_job)
    assert partitioned["status"] == "published" == flat["status"], partitioned["failure_lines"]
    run = Path(partitioned["run_dir"])
    assert (tmp_path / "out" / "penguins-demo" / "LATEST").read_text().strip() == run.name
    assert sorted(p.name for p in (run / DATA_DIR).iterdir()) == ["year=2007", "year=2008", "year=2009"]
    _same_rows(run, Path(flat["run_dir"]))
