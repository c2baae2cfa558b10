"""Run lifecycle: open a run folder (or reopen an interrupted one), then publish or
quarantine it. Only published runs move `LATEST`; nothing is ever overwritten."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from pipeline.errors import RunNotFoundError
from pipeline.manifest import write_manifest
from pipeline.runs import RunFolder, new_run_id, set_latest
from pipeline.spec import JobSpec, parse_spec

JOB_FILE = "job.json"
MODEL_DIR = "model"


def open_run(spec: JobSpec, model_path: Path, *, source_fingerprint: str, balance: str | None = None) -> RunFolder:
    """A new hidden run folder holding the job spec (with what else decides its output:
    the source fingerprint and a balancing target) and a copy of the fitted model, so
    the run can be resumed and re-validated without the cache."""
    run = RunFolder(spec.run_root, new_run_id()).create()
    job = {**spec.model_dump(mode="json"), "_run": {"source_fingerprint": source_fingerprint, "balance": balance}}
    (run.tmp / JOB_FILE).write_text(json.dumps(job, indent=2))
    shutil.copytree(model_path, run.tmp / MODEL_DIR)
    return run


def reopen_run(job_root: Path, run_id: str) -> tuple[RunFolder, JobSpec, dict[str, Any]]:
    """An interrupted run (still under its temporary name), the spec it was started with,
    and its run facts (source fingerprint, balancing target)."""
    run = RunFolder(job_root, run_id)
    if run.final.exists():
        raise RunNotFoundError(f"run {run_id} already finished ({run.final}); nothing to resume")
    if not (run.tmp / JOB_FILE).is_file() or not (run.tmp / MODEL_DIR).is_dir():
        raise RunNotFoundError(
            f"no interrupted run {run_id!r} under {job_root} (looked for {run.tmp.name}/ with a model): "
            "check the run id printed when it started"
        )
    job = json.loads((run.tmp / JOB_FILE).read_text())
    facts = job.pop("_run", {})
    return run, parse_spec(job), facts


def finish_run(run: RunFolder, manifest: dict[str, Any], *, published: bool) -> Path:
    """Write the manifest, rename the run folder into place, and move LATEST if published."""
    write_manifest(run.tmp, manifest)
    final = run.commit()
    if published:
        set_latest(run.job_root, run.run_id)
    return final
