"""`synth run` on a multi-file Parquet dataset folder streamed batch by batch: the real
flow profiles it in one pass, tabular/diffusion trains from the streamed record
batches, and the run publishes."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from flows.cli import app
from pipeline.core.runfiles import read_output
from pipeline.sources.stream import ParquetRows
from pipeline.sources import read_table
from tests.conftest import PENGUINS
from tests.unit.test_streaming import write_dataset


def test_streamed_dataset_job_publishes_through_the_cli(tmp_path, prefect_harness, monkeypatch):
    folder = write_dataset(read_table(PENGUINS), tmp_path / "penguins", files=3, row_group=40, key="island")
    passes = []
    frames = ParquetRows.frames
    monkeypatch.setattr(ParquetRows, "frames", lambda self, seed, **kw: passes.append(self.side) or frames(self, seed, **kw))
    job = tmp_path / "job.yaml"
    job.write_text(json.dumps({
        "name": "stream-cli",
        "source": {"modality": "tabular", "path": str(folder), "stream": True},
        "generator": {"family": "diffusion", "params": {"steps": 300, "calibration_rows": 2000}},
        "sample": {"rows": 300, "seed": 1, "batch_size": 100},
        "validation": {"target": "species"},
        "output": str(tmp_path / "out"),
    }))
    result = CliRunner().invoke(app, ["run", str(job)])
    assert result.exit_code == 0, result.output
    assert passes and set(passes) == {"train"}, "the fit read the training side of the stream"
    run = next(p for p in (tmp_path / "out" / "stream-cli").iterdir() if p.is_dir() and not p.name.startswith("."))
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "published"
    rows = manifest["rows"]
    assert rows["source"] == 344 and rows["train"] + rows["holdout"] == 344 and rows["synthetic"] == 300
    assert read_output(run).column_names == [c for c in read_table(PENGUINS).columns if c != "island"] + ["island"]
