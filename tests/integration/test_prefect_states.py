"""What Prefect (and so its alerting) sees of a run, read back from the real API, and the
CLI's exit code for each: published -> Completed and 0, quarantined -> Failed named
"Quarantined" and 1, bad input inside the flow -> Failed and 2, a bug -> Failed and 3."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flows.cli import app
from tests.conftest import PENGUINS

runner = CliRunner()


def _job(tmp_path: Path, generator: dict | None = None, **validation) -> Path:
    """The demo job's settings (tabular/diffusion, 600 steps, seed 7)."""
    spec = {
        "name": "states",
        "source": {"modality": "tabular", "path": str(PENGUINS)},
        "generator": generator or {"family": "diffusion", "params": {"steps": 600}},
        "sample": {"rows": 2000, "seed": 7, "batch_size": 1000},
        "validation": {"target": "species", **validation},
        "output": str(tmp_path / "out"),
    }
    path = tmp_path / "job.yaml"
    path.write_text(json.dumps(spec))
    return path


def _latest_flow_run():
    from prefect import get_client
    from prefect.client.schemas.sorting import FlowRunSort

    with get_client(sync_client=True) as client:
        (flow_run,) = client.read_flow_runs(sort=FlowRunSort.START_TIME_DESC, limit=1)
    return flow_run


def test_published_and_quarantined_runs(tmp_path, prefect_harness):
    first = runner.invoke(app, ["run", str(_job(tmp_path)), "--json"])
    summary = json.loads(first.stdout)  # --json: the summary alone on stdout
    state = _latest_flow_run().state
    if summary["status"] == "published":  # the gate decides (main's privacy suite quarantines the demo now)
        assert first.exit_code == 0 and state.is_completed() and state.name == "Completed", first.output
    else:
        assert first.exit_code == 1 and state.is_failed() and state.name == "Quarantined", first.output

    # An unreachable bound (a job may tighten any threshold) quarantines the run; the
    # fitted model is reused (thresholds are not part of the fit).
    strict = _job(tmp_path, thresholds={"fidelity.column_similarity_mean": {"min": 0.9999}})
    quarantined = runner.invoke(app, ["run", str(strict)])
    assert quarantined.exit_code == 1, quarantined.output
    flow_run = _latest_flow_run()
    assert flow_run.state.is_failed() and flow_run.state.name == "Quarantined"
    assert "fidelity.column_similarity_mean" in flow_run.state.message
    assert "quarantined" in quarantined.stdout and "error:" not in quarantined.stderr
    assert "fitted model reused" in quarantined.stdout


def test_bad_input_inside_the_flow_is_a_failed_run(tmp_path, prefect_harness):
    """A deployment has no CLI in front of it: the flow's own preflight refuses bad input."""
    from flows.synthesize import run_synthesize
    from pipeline.core.errors import ConditionError

    with pytest.raises(ConditionError, match="never seen"):
        run_synthesize(job=str(_job(tmp_path)), conditions={"species": "Dodo"})
    state = _latest_flow_run().state
    assert state.is_failed() and "never seen" in state.message
    assert not (tmp_path / "out").exists(), "refused before anything was written"


def test_a_bug_exits_3_and_fails_the_run(tmp_path, prefect_harness, monkeypatch):
    """A bug cannot be caused on purpose without planting one: the report step raises."""
    import flows.synthesize

    def broken_report(*args, **kwargs):
        raise ZeroDivisionError("planted bug")

    monkeypatch.setattr(flows.synthesize, "write_report", broken_report)
    job = _job(tmp_path, generator={"family": "copula"})
    result = runner.invoke(app, ["run", str(job)])
    assert result.exit_code == 3, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == ["error: internal error ZeroDivisionError: planted bug (run with --debug for the traceback "
                      "and report it)"]
    assert "Traceback" not in result.output
    state = _latest_flow_run().state
    assert state.is_failed() and "planted bug" in state.message

    debug = runner.invoke(app, ["--debug", "run", str(job)])
    assert debug.exit_code == 3 and "Traceback" in debug.stderr
