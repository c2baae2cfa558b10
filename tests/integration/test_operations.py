"""How synthpipe is operated: deployments with schedules, triggered runs with
parameters, class balancing, Dask scale-out with identical output, kill and resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from flows.cli import app
from pipeline.core.runfiles import part_files, read_output
from tests.conftest import PENGUINS, ROOT

runner = CliRunner()


def _write_job(folder: Path, name: str, out: Path, **extra) -> Path:
    spec = {
        "name": name,
        "source": {"modality": "tabular", "path": str(PENGUINS)},
        "generator": {"family": "copula"},
        "sample": {"rows": 400, "seed": 3, "batch_size": 100},
        "validation": {"target": "species"},
        "output": str(out),
        **extra,
    }
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def _runs(job_root: Path) -> list[Path]:
    return sorted(p for p in job_root.iterdir() if p.is_dir() and not p.name.startswith("."))


def test_deployments_carry_schedule_and_parameters(tmp_path, prefect_harness):
    from prefect import get_client

    from flows.deployments import deployments

    jobs = tmp_path / "jobs"
    jobs.mkdir()
    nightly = _write_job(jobs, "nightly", tmp_path / "out", schedule="0 2 * * *")
    _write_job(jobs, "on-demand", tmp_path / "out")
    for deployment in deployments(jobs):
        deployment.apply()
    with get_client(sync_client=True) as client:
        dep = client.read_deployment_by_name("synthesize/nightly")
        assert [s.schedule.cron for s in dep.schedules] == ["0 2 * * *"]
        assert dep.parameters == {"job": str(nightly.resolve())}
        assert dep.global_concurrency_limit is not None and dep.global_concurrency_limit.limit == 1
        assert client.read_deployment_by_name("synthesize/on-demand").schedules == []


def test_committed_prefect_yaml_matches_the_job_files(monkeypatch):
    from flows.deployments import prefect_yaml

    monkeypatch.chdir(ROOT)
    committed = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    assert committed == prefect_yaml(Path("data/jobs")), "run `synth deployments data/jobs --write prefect.yaml`"


def test_balance_adds_just_enough_minority_rows(tmp_path, prefect_harness):
    from rich.console import Console

    from flows.cli import _print_summary
    from flows.synthesize import synthesize

    job = _write_job(tmp_path, "balance", tmp_path / "out")
    summary = synthesize(job=str(job), balance="species")
    counts = pd.read_csv(PENGUINS)["species"].value_counts()
    expected = {k: int(counts.max() - v) for k, v in counts.items() if v < counts.max()}
    run = Path(summary["run_dir"])
    produced = read_output(run).to_pandas()["species"].value_counts().to_dict()
    assert produced == expected
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["balance"] == {"target": "species", "added": expected}
    out = Console(record=True, width=200)
    _print_summary(summary, out)
    printed = out.export_text()
    for species, n in expected.items():
        assert f"{species}: +{n}" in printed


def test_dask_output_identical_to_threads(tmp_path, prefect_harness):
    from prefect_dask import DaskTaskRunner

    from flows.synthesize import synthesize

    job = _write_job(tmp_path, "scale", tmp_path / "out", sample={"rows": 3000, "seed": 5, "batch_size": 250,
                                                                  "records_per_file": 1000})
    local = synthesize(job=str(job))
    dask = synthesize.with_options(
        task_runner=DaskTaskRunner(cluster_kwargs={"n_workers": 2, "threads_per_worker": 1, "processes": True})
    )(job=str(job))
    assert local["generator"]["cache_key"] == dask["generator"]["cache_key"]
    a, b = Path(local["run_dir"]), Path(dask["run_dir"])
    assert len(part_files(a)) == 3 == len(part_files(b))
    pd.testing.assert_frame_equal(read_output(a).to_pandas(), read_output(b).to_pandas())


def test_killed_run_resumes_without_refitting(tmp_path, prefect_harness):
    from prefect.settings import PREFECT_API_URL

    job = _write_job(tmp_path, "resume", tmp_path / "out",
                     sample={"rows": 200_000, "seed": 1, "batch_size": 2_000, "records_per_file": 10_000})
    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value()}
    proc = subprocess.Popen([sys.executable, "-m", "flows.cli", "run", str(job)], env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    job_root = tmp_path / "out" / "resume"
    deadline = time.time() + 240
    tmp_runs: list[Path] = []
    while time.time() < deadline:
        tmp_runs = list(job_root.glob(".tmp-*")) if job_root.exists() else []
        if tmp_runs and len(part_files(tmp_runs[0])) >= 2:
            break
        assert proc.poll() is None, "the run ended before it could be killed"
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    run_tmp = tmp_runs[0]
    done_before = {p.name: p.stat().st_mtime_ns for p in part_files(run_tmp)}
    assert 2 <= len(done_before) < 20
    assert _runs(job_root) == [], "a killed run is not visible"

    run_id = run_tmp.name.removeprefix(".tmp-")
    result = runner.invoke(app, ["run", str(job), "--resume", run_id])
    assert result.exit_code in (0, 1), result.output
    final = job_root / run_id
    assert final.is_dir() and not run_tmp.exists()
    assert len(part_files(final)) == 20
    for name, mtime in done_before.items():  # finished parts were kept, not redrawn
        assert (final / name).stat().st_mtime_ns == mtime
    manifest = json.loads((final / "manifest.json").read_text())
    assert manifest["rows"]["synthetic"] == 200_000 and manifest["generator"]["reused_fit"]
