"""How synthpipe is operated: deployments with schedules, triggered runs with
parameters, class balancing, Dask scale-out with identical output, kill and resume,
two runs of one job at once, listing and cleaning runs, no server left by a killed run."""

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
    scheduled = {d["name"]: d["schedules"] for d in committed["deployments"] if d.get("schedules")}
    assert scheduled.get("penguins-demo") == [{"cron": "0 2 * * *"}], "the default job shows a nightly schedule"


def test_balance_adds_just_enough_minority_rows(tmp_path, prefect_harness):
    from rich.console import Console

    from flows.cli import _print_summary
    from flows.synthesize import run_synthesize

    job = _write_job(tmp_path, "balance", tmp_path / "out")
    summary = run_synthesize(job=str(job), balance="species")
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


def _task_names(flow_run_id) -> list[str]:
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
    return sorted(r.name.rsplit("-", 1)[0] for r in runs)


def test_dask_output_identical_to_threads(tmp_path, prefect_harness):
    """Sampling parts, contract shards (one per part) and the two metric groups run as
    tasks on 2 Dask worker processes; data, metrics and every suite result are those of
    the default single-process run, and of `synth validate` run with no task runner."""
    from prefect_dask import DaskTaskRunner

    from flows.synthesize import synthesize
    from validators.gate import read_result

    job = _write_job(tmp_path, "scale", tmp_path / "out", sample={"rows": 3000, "seed": 5, "batch_size": 250,
                                                                  "records_per_file": 1000})
    local = synthesize(job=str(job), return_state=True)
    dask = synthesize.with_options(
        task_runner=DaskTaskRunner(cluster_kwargs={"n_workers": 2, "threads_per_worker": 1, "processes": True})
    )(job=str(job), return_state=True)
    summaries = [state.result(raise_on_failure=False) for state in (local, dask)]
    summaries = [s.data if hasattr(s, "data") else s for s in summaries]  # a quarantined run's summary
    assert summaries[0]["generator"]["cache_key"] == summaries[1]["generator"]["cache_key"]
    a, b = (Path(s["run_dir"]) for s in summaries)
    assert len(part_files(a)) == 3 == len(part_files(b))
    pd.testing.assert_frame_equal(read_output(a).to_pandas(), read_output(b).to_pandas())
    assert summaries[0]["metrics"] == summaries[1]["metrics"] and summaries[0]["suites"] == summaries[1]["suites"]
    for suite in ("contract", "fidelity", "privacy"):
        assert read_result(a, suite)["results"] == read_result(b, suite)["results"], suite
    assert _task_names(dask.state_details.flow_run_id).count("contract-shard") == 3
    assert _task_names(dask.state_details.flow_run_id).count("metrics") == 2

    revalidated = runner.invoke(app, ["validate", str(b), "--json"])
    assert revalidated.exit_code in (0, 1), revalidated.output
    assert json.loads(revalidated.stdout)["metrics"] == summaries[0]["metrics"]
    assert read_result(b, "contract")["results"] == read_result(a, "contract")["results"]


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


def test_runs_lists_and_clean_removes_only_old_interrupted_runs(tmp_path, prefect_harness):
    from pipeline.runs import list_runs

    job = _write_job(tmp_path, "listing", tmp_path / "out", sample={"rows": 150, "seed": 2, "batch_size": 50})
    finished = runner.invoke(app, ["run", str(job)])
    assert finished.exit_code in (0, 1), finished.output
    job_root = tmp_path / "out" / "listing"
    (done,) = _runs(job_root)
    # What a crash leaves: a run folder still under its temporary name, with or without
    # the spec and model that make it resumable; one old, one fresh.
    old = job_root / ".tmp-20250101T000000Z-aaaaaa"
    (old / "model").mkdir(parents=True)
    (old / "job.json").write_text("{}")
    stale = time.time() - 3 * 86400
    for path in (old / "model", old / "job.json", old):
        os.utime(path, (stale, stale))
    fresh = job_root / ".tmp-20260101T000000Z-bbbbbb"
    fresh.mkdir()
    (fresh / "part-00000.parquet").write_bytes(b"half")

    listed = runner.invoke(app, ["runs", str(job), "--json"])
    assert listed.exit_code == 0, listed.output
    status = {e["run_id"]: e["status"] for e in json.loads(listed.stdout)}
    assert status == {done.name: json.loads((done / "manifest.json").read_text())["status"],
                      "20250101T000000Z-aaaaaa": "resumable", "20260101T000000Z-bbbbbb": "interrupted"}
    assert [e.latest for e in list_runs(job_root) if e.run_id == done.name] == [status[done.name] == "published"]

    cleaned = runner.invoke(app, ["clean", str(job_root), "--older-than", "1d"])
    assert cleaned.exit_code == 0 and "20250101T000000Z-aaaaaa" in cleaned.stdout
    assert not old.exists() and fresh.exists() and done.exists(), "only the old interrupted run goes"
    assert (job_root / ".models").is_dir(), "the fit cache stays"


def test_two_runs_of_one_job_at_once_fit_once(tmp_path, prefect_harness):
    from prefect.settings import PREFECT_API_URL

    job = _write_job(tmp_path, "twice", tmp_path / "out", generator={"family": "diffusion", "params": {"steps": 300}},
                     sample={"rows": 300, "seed": 3, "batch_size": 150})
    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value()}
    procs = [subprocess.Popen([sys.executable, "-m", "flows.cli", "run", str(job), "--json"], env=env, cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(p.communicate(timeout=420), p.returncode) for p in procs]
    summaries = []
    for (stdout, stderr), code in results:
        assert code in (0, 1), stderr[-3000:]
        summaries.append(json.loads(stdout))
    assert sorted(s["generator"]["reused_fit"] for s in summaries) == [False, True], "one fit, one reuse"
    assert len({s["generator"]["cache_key"] for s in summaries}) == 1
    job_root = tmp_path / "out" / "twice"
    assert len(_runs(job_root)) == 2 and not list(job_root.glob(".tmp-*"))
    assert [p.name for p in (job_root / ".models").glob("[!.]*")] == [summaries[0]["generator"]["cache_key"]]
    published = [s["run_id"] for s in summaries if s["status"] == "published"]
    if published:
        assert (job_root / "LATEST").read_text().strip() in published
    else:
        assert not (job_root / "LATEST").exists()


def _server_children(pid: int) -> list[int]:
    """Processes started by `pid` that run Prefect's embedded server (uvicorn)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if int(fields[1]) == pid and b"uvicorn" in cmdline:
            found.append(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_killed_run_leaves_no_embedded_server(tmp_path, sig):
    """No PREFECT_API_URL: the CLI starts Prefect's embedded server, and stops it when killed."""
    job = _write_job(tmp_path, "killed", tmp_path / "out", generator={"family": "diffusion", "params": {"steps": 10000}})
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env["PREFECT_HOME"] = str(tmp_path / "prefect-home")
    log = tmp_path / "stderr.log"
    with log.open("w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "flows.cli", "run", str(job)], env=env, cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=err)
    servers: list[int] = []
    deadline = time.time() + 300
    while time.time() < deadline and "fit tabular/diffusion" not in log.read_text():
        servers = servers or _server_children(proc.pid)
        assert proc.poll() is None, log.read_text()[-3000:]
        time.sleep(0.5)
    assert servers, "the run started an embedded server"
    proc.send_signal(sig)
    assert proc.wait(timeout=60) != 0
    deadline = time.time() + 15
    while time.time() < deadline and any(_alive(s) for s in servers):
        time.sleep(0.2)
    assert not any(_alive(s) for s in servers), "the embedded server outlived the killed run"
