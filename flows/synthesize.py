"""The `synthesize` flow: the data path of DESIGN.md, one task per step.

load source -> split -> fit (cached) -> sample parts (mapped over the task runner)
-> validate (contract, fidelity, privacy) -> report -> publish or quarantine.
Orchestration only: every step is a plain function from pipeline/ or validators/."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task, unmapped
from prefect.cache_policies import NO_CACHE
from prefect.context import FlowRunContext
from prefect.task_runners import ThreadPoolTaskRunner
from prefect.utilities.annotations import quote

from flows.artifacts import publish_artifacts
from generators.base import chunk_seed
from pipeline.augment import balance_plan, reference_data
from pipeline.errors import SourceError, SynthpipeError
from generators import load_generator
from pipeline.data import RECORD_UNIT
from pipeline.fitting import FittedModel, fit_or_reuse
from pipeline.manifest import library_versions, source_layout
from pipeline.progress import tracker
from pipeline.publish import MODEL_DIR, finish_run, open_run, reopen_run
from pipeline.runs import RunFolder
from pipeline.sink import PartPlan, count_rows, plan_parts, write_part
from pipeline.sources import fingerprint, load_source
from pipeline.spec import JobSpec, apply_overrides, load_spec, parse_spec
from pipeline.split import split_source


def _transient(task, task_run, state) -> bool:
    """Retry I/O hiccups, never bad input: a missing file stays missing."""
    try:
        state.result()
    except SynthpipeError:
        return False
    except Exception:
        return True
    return False


IO = dict(retries=2, retry_delay_seconds=1, retry_condition_fn=_transient, cache_policy=NO_CACHE)
STEP = dict(cache_policy=NO_CACHE)


@task(name="load-source", **IO)
def load_source_task(spec: JobSpec):
    return load_source(spec.source), fingerprint(spec.source.path)


@task(name="split", **STEP)
def split_task(source, spec: JobSpec):
    return split_source(source, spec.validation.holdout, seed=spec.sample.seed)


@task(name="fit", **STEP)
def fit_task(spec: JobSpec, train, source_fingerprint: str, refit: bool) -> FittedModel:
    progress = tracker(f"fit {spec.generator_name}")
    model = fit_or_reuse(spec, train, source_fingerprint, refit=refit, progress=progress)
    if model.reused:
        progress(1, 1, reused=1)
    progress.close()
    if model.reused:
        get_run_logger().info("source and settings unchanged: reusing fitted model %s (--refit fits again)",
                              model.cache_key)
    return model


@task(name="open-run", **IO)
def open_run_task(spec: JobSpec, model: FittedModel, source_fingerprint: str, balance: str | None) -> RunFolder:
    return open_run(spec, model.path, source_fingerprint=source_fingerprint, balance=balance)


@task(name="sample-part", **IO)
def sample_part_task(spec: JobSpec, run_dir: str, part: PartPlan, progress=None) -> str:
    generator = load_generator(Path(run_dir) / MODEL_DIR)
    provenance = {"job": spec.name, "run_id": Path(run_dir).name.removeprefix(".tmp-"),
                  "generator": spec.generator_name}
    path = write_part(generator, part, Path(run_dir), batch_size=spec.sample.batch_size, provenance=provenance,
                      progress=progress.advance if progress is not None else None)
    return str(path)


@task(name="validate", **STEP)
def validate_task(spec: JobSpec, run: RunFolder, source, train, holdout):
    from validators.gate import validate_run

    return validate_run(run.path, spec=spec, source=source, train=train, holdout=holdout)


@task(name="report", **STEP)
def report_task(run: RunFolder, spec: JobSpec, outcome, source) -> Path:
    from validators.report import write_report

    return write_report(run.path, spec=spec, outcome=outcome, source=source)


@task(name="publish", **IO)
def publish_task(run: RunFolder, manifest: dict[str, Any], published: bool) -> str:
    return str(finish_run(run, manifest, published=published))


def resolve_spec(job: str | dict[str, Any], overrides: dict[str, Any]) -> JobSpec:
    """A job file path or a spec dict, with parameter overrides, validated by the spec."""
    if isinstance(job, dict):
        return parse_spec(apply_overrides(job, overrides))
    return load_spec(job, overrides)


def sampling_plan(spec: JobSpec, balance: dict[Any, int] | None, target: str | None) -> list[PartPlan]:
    """One request (rows, conditions), or one per minority class when balancing; each
    request's parts carry their own seed, so the plan alone reproduces the output."""
    sample = spec.sample
    layout = dict(batch_size=sample.batch_size, modality=spec.source.modality, records_per_file=sample.records_per_file)
    if not balance:
        return plan_parts(sample.rows, seed=sample.seed, conditions=sample.conditions, **layout)
    parts: list[PartPlan] = []
    for i, (value, rows) in enumerate(balance.items()):
        parts += plan_parts(rows, seed=chunk_seed(sample.seed, 2**31 + i),
                            conditions={**(sample.conditions or {}), target: value}, first_index=len(parts), **layout)
    return parts


def _runs_locally() -> bool:
    """Threads share this process (and its progress bars); Dask workers do not."""
    ctx = FlowRunContext.get()
    return ctx is not None and isinstance(ctx.task_runner, ThreadPoolTaskRunner)


@flow(name="synthesize", log_prints=False)
def synthesize(
    job: str | dict[str, Any],
    rows: int | None = None,
    seed: int | None = None,
    conditions: dict[str, Any] | None = None,
    balance: str | None = None,
    output: str | None = None,
    refit: bool = False,
    resume: str | None = None,
) -> dict[str, Any]:
    """Fit, sample, validate and publish one job. `job` is a YAML job file or the spec
    as a dict; `rows`, `seed`, `conditions` and `output` override its fields (what a
    data engineer passes with `--param rows=50000`). `balance` names a class column:
    generate just enough records of each minority class to match the largest class."""
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    spec = resolve_spec(job, {"sample.rows": rows, "sample.seed": seed, "sample.conditions": conditions,
                              "output": output})
    log = get_run_logger()
    if resume:
        run, spec, facts = reopen_run(spec.run_root, resume)
        balance = facts.get("balance")
        log.info("resuming run %s", resume)

    source, source_fp = load_source_task(spec)
    if resume and source_fp != facts.get("source_fingerprint"):
        raise SourceError(f"the source {spec.source.path} changed since run {resume} started: its parts would "
                          "not match; start a new run instead")
    train, holdout = split_task(quote(source), spec)
    added = balance_plan(source, balance) if balance else None
    if balance and not added:
        raise SynthpipeError(f"{balance!r} is already balanced: nothing to generate")
    timings["load_split_s"] = time.perf_counter() - t0

    t = time.perf_counter()
    if resume:
        model = FittedModel(path=run.tmp / MODEL_DIR, cache_key="resumed", reused=True)
    else:
        model = fit_task(spec, quote(train), source_fp, refit)
        run = open_run_task(spec, model, source_fp, balance)
    timings["fit_s"] = time.perf_counter() - t
    log.info("run %s: writing to %s", run.run_id, run.tmp)

    t = time.perf_counter()
    parts = sampling_plan(spec, added, balance)
    total = sum(p.rows for p in parts)
    progress = tracker(f"sample {total:,} {RECORD_UNIT[spec.source.modality]}", total)
    futures = sample_part_task.map(unmapped(spec), unmapped(str(run.tmp)), parts,
                                   unmapped(progress if _runs_locally() else None))
    for future in futures:
        future.result()  # raises the first failed part's error
    progress.close()
    timings["sample_s"] = time.perf_counter() - t

    real_train, real_holdout = reference_data(train, holdout, conditions=spec.sample.conditions,
                                              balance=(balance, list(added)) if added else None)

    t = time.perf_counter()
    outcome = validate_task(spec, run, quote(source), quote(real_train), quote(real_holdout))
    timings["validate_s"] = time.perf_counter() - t
    report = report_task(run, spec, outcome, quote(source))
    timings["total_s"] = time.perf_counter() - t0

    manifest = {
        "run_id": run.run_id,
        "status": outcome.status,
        "job": spec.model_dump(mode="json"),
        "generator": {"name": spec.generator_name, "params": spec.generator.params, "cache_key": model.cache_key,
                      "reused_fit": model.reused},
        "seed": spec.sample.seed,
        "source": {"path": str(spec.source.path), "fingerprint": source_fp},
        "rows": {"source": len(source), "train": len(train), "holdout": len(holdout),
                 "synthetic": count_rows(run.tmp), "requested": total},
        "balance": {"target": balance, "added": {str(k): v for k, v in added.items()}} if added else None,
        "schema": source.profile.model_dump(mode="json") if hasattr(source, "profile") else None,
        "layout": source_layout(source),
        "libraries": library_versions(),
        "timings": timings,
        "metrics": outcome.metrics,
        "suites": outcome.suites,
        "failures": outcome.to_dict()["failures"],
    }
    final = Path(publish_task(run, manifest, outcome.status == "published"))
    summary = {**manifest, "run_dir": str(final), "report": str(final / Path(report).name),
               "failure_lines": [str(f) for f in outcome.failures]}
    publish_artifacts(summary)
    return summary
