"""`synth validate` and `synth report` on an existing run: reload the source the run
was made from (refusing a source that changed since), re-split it the same way, re-run
the suites, rewrite validation/, report.html and the manifest, and move LATEST to the
newest published run."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pipeline.augment import reference_data
from pipeline.core.data import SourceData
from pipeline.core.errors import SourceError
from pipeline.core.manifest import Manifest, Status, read_manifest, verify_files, write_manifest
from pipeline.core.runfiles import LATEST, MANIFEST, MODEL_DIR, TMP_PREFIX, resolve_run_dir
from pipeline.core.spec import JobSpec
from pipeline.given import load_given, metric_sample
from pipeline.jobs import parse_job
from pipeline.runs import set_latest
from pipeline.sources import load_source, source_fingerprint
from pipeline.split import split_source
from validators.gate import read_outcome, validate_run
from validators.report import write_report


def _reload(run_dir: Path) -> tuple[Manifest, JobSpec, SourceData, SourceData, SourceData]:
    """The run's manifest (its part files checked against it, sha256 included: judging
    other data than was published would be meaningless), spec, source and split."""
    manifest = read_manifest(run_dir)
    verify_files(run_dir, manifest, hashes=bool(manifest.files))  # a run from before checksums: sizes only
    spec = parse_job(manifest.job)
    now = source_fingerprint(spec.source)
    if now != manifest.source.fingerprint:
        raise SourceError(
            f"the source {spec.source.location} changed since run {manifest.run_id} was made "
            f"({manifest.source.fingerprint[:19]}… -> {now[:19]}…): its holdout can no longer be "
            "rebuilt; run the job again instead"
        )
    source = load_source(spec.source)
    train, holdout = split_source(source, spec.validation.holdout, seed=spec.sample.seed)
    balance = manifest.balance
    train, holdout = reference_data(
        train, holdout, conditions=spec.sample.conditions,
        balance=(balance["target"], _typed(list(balance["added"]), source, balance["target"])) if balance else None,
    )
    return manifest, spec, source, train, holdout


def _typed(values: list[str], source: SourceData, column: str) -> list[Any]:
    """Class values came back from JSON as strings: match them to the source's values."""
    by_text = {str(v): v for v in source.known_values(column)}
    return [by_text.get(v, v) for v in values]


def newest_published(job_root: Path) -> str | None:
    published = [run.name for run in job_root.iterdir()
                 if run.is_dir() and not run.name.startswith(TMP_PREFIX) and (run / MANIFEST).is_file()
                 and read_manifest(run).status is Status.PUBLISHED]
    return max(published) if published else None


def revalidate(run_dir: str | Path) -> dict[str, Any]:
    run_dir = resolve_run_dir(run_dir)
    manifest, spec, source, train, holdout = _reload(run_dir)
    outcome = validate_run(run_dir, spec=spec, source=source, train=train, holdout=holdout,
                           given=load_given(spec, source), synthetic=metric_sample(spec, run_dir / MODEL_DIR, source))
    report = write_report(run_dir, spec=spec, outcome=outcome, source=source, train=train, holdout=holdout)
    manifest = manifest.model_copy(update=dict(
        status=outcome.status, metrics=outcome.metrics, suites=outcome.suites,
        failures=outcome.to_dict()["failures"], revalidated_at=datetime.now(timezone.utc).isoformat()))
    write_manifest(run_dir, manifest)
    latest = newest_published(run_dir.parent)
    if latest:
        set_latest(run_dir.parent, latest)
    else:
        (run_dir.parent / LATEST).unlink(missing_ok=True)
    return {**manifest.to_json(), "run_dir": str(run_dir), "report": str(report),
            "failure_lines": [str(f) for f in outcome.failures]}


def rebuild_report(run_dir: str | Path) -> Path:
    run_dir = resolve_run_dir(run_dir)
    _, spec, source, train, holdout = _reload(run_dir)
    return write_report(run_dir, spec=spec, outcome=read_outcome(run_dir), source=source, train=train, holdout=holdout)
