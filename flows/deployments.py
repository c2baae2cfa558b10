"""Deployments: one per job file, with the job's cron schedule, served from one
process (`synth serve JOBS_DIR`) or declared in prefect.yaml for a work pool.

Each deployment passes the job file's path as the `job` parameter, so a triggered run
takes overrides the usual way: `prefect deployment run 'synthesize/<job>' --param rows=50000`.
A concurrency limit of one per job keeps two scheduled runs of the same job from
racing (they could not corrupt each other anyway: separate run folders, atomic LATEST)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import serve
from prefect.deployments.runner import RunnerDeployment

from flows.synthesize import synthesize
from pipeline.core.errors import SpecError
from pipeline.core.spec import JobSpec
from pipeline.jobs import load_job

CONCURRENCY_PER_JOB = 1


def job_files(jobs_dir: Path) -> list[Path]:
    jobs_dir = Path(jobs_dir)
    if not jobs_dir.is_dir():
        raise SpecError(f"jobs folder not found: {jobs_dir} (give a folder of YAML job files)")
    files = sorted([*jobs_dir.glob("*.yaml"), *jobs_dir.glob("*.yml")])
    if not files:
        raise SpecError(f"no job files (*.yaml) in {jobs_dir}")
    return files


def load_jobs(jobs_dir: Path) -> list[tuple[Path, JobSpec]]:
    """Every job of a folder, validated; two jobs with one name are refused."""
    jobs = [(path, load_job(path)) for path in job_files(jobs_dir)]
    names = [spec.name for _, spec in jobs]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise SpecError(f"job names must be unique in {jobs_dir}; repeated: {', '.join(dupes)}")
    return jobs


def deployment_for(path: Path, spec: JobSpec) -> RunnerDeployment:
    return synthesize.to_deployment(
        name=spec.name,
        cron=spec.schedule,
        parameters={"job": str(path.resolve())},
        concurrency_limit=CONCURRENCY_PER_JOB,
        tags=["synthpipe", spec.source.modality, spec.generator_name],
        description=f"{spec.generator_name} on {spec.source.location}, {spec.sample.rows:,} records",
    )


def deployments(jobs_dir: Path) -> list[RunnerDeployment]:
    return [deployment_for(path, spec) for path, spec in load_jobs(jobs_dir)]


def serve_jobs(jobs_dir: Path) -> None:
    """Serve every job of the folder from this process until interrupted."""
    serve(*deployments(jobs_dir))


def prefect_yaml(jobs_dir: Path, *, work_pool: str = "synthpipe") -> dict[str, Any]:
    """The prefect.yaml that declares the same deployments for `prefect deploy`."""
    entries = []
    for path, spec in load_jobs(jobs_dir):
        entry: dict[str, Any] = {
            "name": spec.name,
            "entrypoint": "flows/synthesize.py:synthesize",
            "parameters": {"job": str(path)},
            "tags": ["synthpipe", spec.source.modality, spec.generator_name],
            "concurrency_limit": CONCURRENCY_PER_JOB,
            "work_pool": {"name": work_pool},
        }
        if spec.schedule:
            entry["schedules"] = [{"cron": spec.schedule}]
        entries.append(entry)
    return {"name": "synthpipe", "prefect-version": "3", "deployments": entries}
