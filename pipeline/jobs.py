"""Jobs: specs validated against the generators registered here (the registry's names
are handed to the core's spec), and what one run of a job is asked to do, checked and
planned before anything is fitted."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import generators
from pipeline.augment import balance_plan
from pipeline.core.data import GivenPath, SourceData, split_conditions
from pipeline.core.errors import BadInputError, SourceError
from pipeline.core.plan import PartPlan, sampling_plan
from pipeline.core.spec import JobSpec, apply_overrides, load_spec, parse_spec
from pipeline.runs import RunFolder


def parse_job(data: dict[str, Any], overrides: dict[str, Any] | None = None) -> JobSpec:
    """A job spec given as a dict (Prefect parameters, a stored job.json), with overrides."""
    return parse_spec(apply_overrides(data, overrides), generators=generators.available())


def load_job(path: str | Path, overrides: dict[str, Any] | None = None) -> JobSpec:
    """A YAML job file, with dotted-key overrides (`{"sample.rows": 5000}`)."""
    return load_spec(path, overrides, generators=generators.available())


def resolve_job(job: str | Path | dict[str, Any], overrides: dict[str, Any] | None = None) -> JobSpec:
    """A job file path or a spec dict, with overrides: what the flow is given."""
    return parse_job(job, overrides) if isinstance(job, dict) else load_job(job, overrides)


@dataclass(frozen=True)
class JobRun:
    """What one run of a job is asked to do: the spec, a class column to balance, and the
    interrupted run it finishes (`resume`)."""

    spec: JobSpec
    balance: str | None = None
    resume: RunFolder | None = None
    resume_fingerprint: str | None = None  # the source fingerprint the resumed run started from


def prepare(job: str | Path | dict[str, Any], overrides: dict[str, Any], *, balance: str | None = None,
            resume: str | None = None) -> JobRun:
    """The spec with its overrides; when resuming, the spec and balance target the
    interrupted run was started with."""
    spec = resolve_job(job, overrides)
    if not resume:
        return JobRun(spec=spec, balance=balance)
    from pipeline.publish import reopen_run

    run, spec, facts = reopen_run(spec.run_root, resume)
    return JobRun(spec=spec, balance=facts.get("balance"), resume=run, resume_fingerprint=facts.get("source_fingerprint"))


def check_source(job: JobRun, source: SourceData, fingerprint: str) -> dict[Any, int] | None:
    """Checks that need the data, before any fit: a resumed run's source is unchanged, a
    balancing target has something to balance. Returns {class: records to add}."""
    if job.resume and fingerprint != job.resume_fingerprint:
        raise SourceError(f"the source {job.spec.source.location} changed since run {job.resume.run_id} started: its "
                          "parts would not match; start a new run instead")
    if not job.balance:
        return None
    added = balance_plan(source, job.balance)
    if not added:
        raise BadInputError(f"{job.balance!r} is already balanced: nothing to generate")
    return added


def plan(job: JobRun, added: dict[Any, int] | None, given: GivenPath | None = None,
         features: list[str] | None = None) -> list[PartPlan]:
    """The run's part files: the requested records, the records that balance the classes,
    or one series (sample.length, or as long as its covariate path) keeping `given`, or
    `rows` panel entities of sample.length steps each.
    Conditions on time-varying `features` are covariates (in `given`), not static."""
    from pipeline.given import path_length

    s = job.spec.sample
    static, _ = split_conditions(s.conditions, features or [])
    return sampling_plan(s.rows, seed=s.seed, batch_size=s.batch_size, modality=job.spec.source.modality,
                         conditions=static, records_per_file=s.records_per_file,
                         balance=(job.balance, added) if added else None, length=path_length(job.spec, given),
                         given=given, panel=job.spec.source.entity is not None)
