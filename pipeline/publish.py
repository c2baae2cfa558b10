"""Run lifecycle: open a run folder (or reopen an interrupted one), write its manifest,
then publish or quarantine it. Only published runs move `LATEST`; nothing is ever
overwritten."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from pipeline.core.data import SourceData
from pipeline.core.domains import private_view
from pipeline.core.errors import RunNotFoundError
from pipeline.core.manifest import (
    GeneratorRecord, Manifest, SourceRecord, library_versions, part_records, write_manifest,
)
from pipeline.core.runfiles import JOB_FILE, MODEL_DIR, count_rows, model_privacy
from pipeline.core.spec import JobSpec
from pipeline.fitting import FittedModel
from pipeline.jobs import parse_job
from pipeline.runs import RunFolder, new_run_id, set_latest


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
    return run, parse_job(job), facts


def build_manifest(
    run: RunFolder, spec: JobSpec, *, model: FittedModel, source: SourceData, train: SourceData,
    holdout: SourceData, fingerprint: str, outcome: Any, requested: int, added: dict[Any, int] | None,
    balance: str | None, timings: dict[str, float],
) -> Manifest:
    """Everything needed to trust, reproduce and trace the run (pipeline.core.manifest)."""
    return Manifest(
        run_id=run.run_id,
        status=outcome.status,
        job=spec.model_dump(mode="json"),
        generator=GeneratorRecord(name=spec.generator_name, params=model.params, cache_key=model.cache_key,
                                  reused_fit=model.reused),
        seed=spec.sample.seed,
        source=SourceRecord(path=spec.source.location, fingerprint=fingerprint),
        rows={"source": _records(source), "train": _records(train), "holdout": _records(holdout),
              "synthetic": count_rows(run.tmp), "requested": requested},
        balance={"target": balance, "added": {str(k): v for k, v in added.items()}} if added else None,
        **_described(spec, source),
        privacy=model_privacy(run.tmp),
        libraries=library_versions(),
        timings=timings,
        metrics=outcome.metrics,
        suites=outcome.suites,
        failures=outcome.to_dict()["failures"],
    )


def finish_run(run: RunFolder, manifest: Manifest) -> Path:
    """Record every part file's size and sha256, write the manifest, rename the run
    folder into place, and move LATEST if published."""
    write_manifest(run.tmp, manifest.model_copy(update={"files": part_records(run.tmp)}))
    final = run.commit()
    if manifest.published:
        set_latest(run.job_root, run.run_id)
    return final


def _described(spec: JobSpec, source: SourceData) -> dict[str, Any]:
    """The manifest's `schema` and `layout`: of the source, or of a private run's declared
    view (pipeline/core/domains.py: declared profile, declared image classes). The manifest
    travels with the data (pipeline/consume.py reads it), so it holds no fact of the rows a
    private model did not read."""
    if spec.generator.privacy is not None:
        source = private_view(source, spec.generator.params.get("classes"))
    profile = getattr(source, "profile", None)
    return {"schema": profile.model_dump(mode="json") if profile is not None else None, "layout": source.layout()}


def _records(data: SourceData) -> int:
    """Records of a source or split side: all of a streamed table's rows, not its sample."""
    return getattr(data, "n_records", None) or len(data)
