"""`synth run JOB --continue history.csv --steps N` and covariate conditions end to end:
the real Prefect flow, real Parquet, the real GX suites; bad input is one line, exit 2,
nothing written (statsmodels sunspots and macrodata growth rates)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from flows.cli import app
from pipeline.core.runfiles import read_output
from tests.conftest import FAST_PARAMS
from tests.unit.test_timeseries_given import MACRO_WINDOW, macro_frame, sunspots_frame

runner = CliRunner()


def _job(tmp_path: Path, source: dict, frame: pd.DataFrame, **sample) -> Path:
    frame.to_csv(tmp_path / "source.csv", index=False)
    spec = {"name": "given", "source": {"modality": "timeseries", "path": str(tmp_path / "source.csv"), **source},
            "generator": {"family": "diffusion", "params": FAST_PARAMS["timeseries/diffusion"]},
            "sample": {"rows": 20, "seed": 3, **sample}, "output": str(tmp_path / "out")}
    path = tmp_path / "job.yaml"
    path.write_text(json.dumps(spec))
    return path


def _run_folder(tmp_path: Path) -> Path:
    (run,) = [p for p in (tmp_path / "out" / "given").iterdir() if p.is_dir() and not p.name.startswith(".")]
    return run


SPOTS = {"time": "year", "window": 24, "stride": 2}


def test_a_continuation_runs_through_the_flow(tmp_path, prefect_harness):
    job = _job(tmp_path, SPOTS, sunspots_frame())
    sunspots_frame().iloc[250:290].to_csv(tmp_path / "history.csv", index=False)  # 1950-1989
    result = runner.invoke(app, ["run", str(job), "--continue", str(tmp_path / "history.csv"), "--steps", "30"])
    assert result.exit_code in (0, 1), result.output
    run = _run_folder(tmp_path)
    out = read_output(run).to_pandas()
    assert out["year"].tolist() == list(range(1990, 2020)) and out["window"].nunique() == 1
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["suites"]["contract"], "the contract holds: 30 steps from 1990 on the source's grid"
    assert manifest["job"]["sample"]["history"].endswith("history.csv") and manifest["job"]["sample"]["length"] == 30
    assert "fidelity.discriminative_score" in manifest["metrics"], "judged on the model's own windows"
    revalidated = runner.invoke(app, ["validate", str(run)])
    assert revalidated.exit_code == result.exit_code, revalidated.output
    assert json.loads((run / "manifest.json").read_text())["metrics"] == manifest["metrics"]


def test_a_covariate_path_runs_through_the_flow(tmp_path, prefect_harness):
    frame = macro_frame()
    frame[["quarter", "realgdp"]].iloc[40:100].to_csv(tmp_path / "gdp.csv", index=False)
    job = _job(tmp_path, {"time": "quarter", "window": MACRO_WINDOW, "stride": 1}, frame,
               conditions={"realgdp": str(tmp_path / "gdp.csv")})
    result = runner.invoke(app, ["run", str(job)])
    assert result.exit_code in (0, 1), result.output
    run = _run_folder(tmp_path)
    out = read_output(run).to_pandas()
    assert out["quarter"].tolist() == list(range(40, 100))
    np.testing.assert_array_equal(out["realgdp"], frame["realgdp"].iloc[40:100])
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["suites"]["contract"] and manifest["rows"]["synthetic"] == 60


@pytest.mark.parametrize("args, fragment", [
    (["--steps", "5"], "--steps goes with --continue"),
    (["--continue", "{tmp}/history.csv", "--steps", "0"], "--steps N with N > 0"),
    (["--continue", "{tmp}/history.csv"], "--steps N with N > 0"),
    (["--continue", "{tmp}/nope.csv", "--steps", "5"], "file not found"),
    (["--continue", "{tmp}/short.csv", "--steps", "5"], "continuing needs at least 12"),
])
def test_bad_continuations_exit_2_before_the_fit(tmp_path, args, fragment):
    job = _job(tmp_path, SPOTS, sunspots_frame())
    sunspots_frame().iloc[250:290].to_csv(tmp_path / "history.csv", index=False)
    sunspots_frame().iloc[250:255].to_csv(tmp_path / "short.csv", index=False)
    result = runner.invoke(app, ["run", str(job), *[a.format(tmp=tmp_path) for a in args]])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error:") and fragment in result.stderr and "Traceback" not in result.output
    assert not (tmp_path / "out").exists(), "bad input leaves no output folder"


def test_panel_entities_of_a_length_run_through_the_flow(tmp_path, prefect_harness):
    """World Bank fertility (210 countries, 3 to 52 years), 4 countries of 120 years each:
    the contract allows exactly 120 steps per entity; the metrics see 52-year pieces."""
    frame = pd.read_csv(Path(__file__).resolve().parents[2] / "data" / "sources" / "fertility.csv")
    job = _job(tmp_path, {"entity": "country", "time": "year"}, frame, rows=4, length=120)
    result = runner.invoke(app, ["run", str(job)])
    assert result.exit_code in (0, 1), result.output
    run = _run_folder(tmp_path)
    out = read_output(run).to_pandas()
    sizes = out.groupby("country", sort=False).size()
    assert len(sizes) == 4 and (sizes == 120).all()
    assert (out.groupby("country", sort=False)["year"].diff().dropna() == 1).all()
    assert set(out.groupby("country")["year"].first()) <= set(frame.groupby("country")["year"].first())
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["suites"]["contract"] and manifest["rows"]["synthetic"] == 4 * 120
    assert "fidelity.discriminative_score" in manifest["metrics"]
