"""A job that names no `generator.family` fits its modality's default
(pipeline/core/spec.py DEFAULT_FAMILY) through the real flow; an unknown family is
still bad input (exit 2, nothing written)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from flows.cli import app
from tests.conftest import FAST_PARAMS
from tests.unit.test_timeseries_given import sunspots_frame

runner = CliRunner()


def _job(tmp_path: Path, generator: dict) -> Path:
    sunspots_frame().to_csv(tmp_path / "source.csv", index=False)
    spec = {"name": "nofamily", "generator": generator, "output": str(tmp_path / "out"), "sample": {"rows": 12, "seed": 2},
            "source": {"modality": "timeseries", "path": str(tmp_path / "source.csv"), "time": "year", "window": 24,
                       "stride": 4}}
    path = tmp_path / "job.yaml"
    path.write_text(json.dumps(spec))
    return path


def test_a_timeseries_job_without_family_fits_the_default(tmp_path, prefect_harness):
    result = runner.invoke(app, ["run", str(_job(tmp_path, {"params": FAST_PARAMS["timeseries/diffusion"]}))])
    assert result.exit_code in (0, 1), result.output
    (run,) = [p for p in (tmp_path / "out" / "nofamily").iterdir() if p.is_dir() and not p.name.startswith(".")]
    assert json.loads((run / "model" / "config.json").read_text())["generator"] == "timeseries/diffusion"
    assert json.loads((run / "manifest.json").read_text())["job"]["generator"]["family"] == "diffusion"


def test_an_unknown_family_still_exits_2(tmp_path):
    result = runner.invoke(app, ["run", str(_job(tmp_path, {"family": "transformer"}))])
    assert result.exit_code == 2, result.output
    assert "generator.family: 'transformer' is not available for modality 'timeseries'" in result.stderr
    assert not (tmp_path / "out").exists()
