"""The `synthesize` flow: the data path of DESIGN.md, one task per step.

load source -> split -> fit (cached) -> sample parts (mapped over the task runner)
-> validate: contract shards, one per part (mapped), fidelity and privacy metrics (two
   tasks), then the gate's judgement -> report -> publish or quarantine.
Orchestration only: every step is a plain function from pipeline/ or validators/.

A published run ends Completed with the run summary as its result; a quarantined run
ends in a Failed state named "Quarantined" (the summary is its data), so Prefect's
alerting on failed runs sees it; bad input and crashes end Failed / Crashed."""

from __future__ import annotations

import errno
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from prefect import flow, get_run_logger, task, unmapped
from prefect.cache_policies import NO_CACHE
from prefect.context import FlowRunContext
from prefect.states import Failed, State
from prefect.task_runners import ThreadPoolTaskRunner
from prefect.utilities.annotations import quote

from flows.artifacts import publish_artifacts
from generators import load_generator
from pipeline import fitting, jobs, preflight, publish
from pipeline.augment import reference_data
from pipeline.core.data import RECORD_UNIT
from pipeline.core.manifest import Status
from pipeline.core.memory import release
from pipeline.core.plan import PartPlan
from pipeline.core.progress import tracker
from pipeline.core.runfiles import MODEL_DIR
from pipeline.given import load_given, metric_sample
from pipeline.runs import RunFolder
from pipeline.sink import write_part
from pipeline.sources import load_source, source_fingerprint
from pipeline.split import split_source
from validators.gate import contract_parts, contract_shard, contract_suite, judge, merge_contract, metric_group
from validators.metrics import GROUPS
from validators.report import write_report


# Failures that can heal by themselves; a full disk, a read-only folder, a missing file,
# bad input or a bug fail the same way on every attempt, so they are not retried.
HEALING_ERRNOS = {errno.EIO, errno.EAGAIN, errno.EBUSY, errno.EINTR, errno.ETIMEDOUT, errno.ESTALE}


def _transient(task, task_run, state) -> bool:
    """Retry I/O hiccups only (a flaky network filesystem), never what cannot heal."""
    try:
        state.result()
    except (TimeoutError, ConnectionError):
        return True
    except OSError as err:
        return err.errno in HEALING_ERRNOS
    except Exception:
        return False
    return False


IO = dict(retries=2, retry_delay_seconds=1, retry_condition_fn=_transient, cache_policy=NO_CACHE)
STEP = dict(cache_policy=NO_CACHE)
# Parts sampled at once in this process. Prefect's thread pool is unbounded by default:
# a 20-million-row run (40 parts) then sampled 40 parts at once and peaked at 9.6 GB,
# for no speed (each sampler runs one torch thread). One per core keeps memory flat.
SAMPLE_WORKERS = os.cpu_count() or 1


@task(name="load-source", **IO)
def load_source_task(job: jobs.JobRun):
    source, fp = load_source(job.spec.source), source_fingerprint(job.spec.source)
    added = preflight.check_data(job, source, fp)
    given = load_given(job.spec, source)
    release()  # a streamed profile pass leaves ~100 MB of freed heap behind (pipeline/core/memory.py)
    return source, fp, added, given


@task(name="split", **STEP)
def split_task(source, job: jobs.JobRun):
    return split_source(source, job.spec.validation.holdout, seed=job.spec.sample.seed)


@task(name="fit", **STEP)
def fit_task(job: jobs.JobRun, train, source_fingerprint: str, refit: bool) -> fitting.FittedModel:
    if job.resume:
        return fitting.resumed(job.resume.tmp / MODEL_DIR)
    progress = tracker(f"fit {job.spec.generator_name}")
    model = fitting.fit_or_reuse(job.spec, train, source_fingerprint, refit=refit, progress=progress)
    if model.reused:
        progress(1, 1, reused=1)
        get_run_logger().info("source and settings unchanged: reusing fitted model %s (--refit fits again)",
                              model.cache_key)
    progress.close()
    release()  # the encoded training sample and the shuffle buffers
    return model


@task(name="open-run", **IO)
def open_run_task(job: jobs.JobRun, model: fitting.FittedModel, source_fingerprint: str) -> RunFolder:
    if job.resume:
        return job.resume
    return publish.open_run(job.spec, model.path, source_fingerprint=source_fingerprint, balance=job.balance)


@task(name="sample-part", **IO)
def sample_part_task(job: jobs.JobRun, run: RunFolder, part: PartPlan, progress=None) -> str:
    generator = load_generator(run.tmp / MODEL_DIR)
    provenance = {"job": job.spec.name, "run_id": run.run_id, "generator": job.spec.generator_name}
    try:
        return str(write_part(generator, part, run.tmp, provenance=provenance,
                              partition_by=job.spec.output.partition_by,
                              progress=progress.advance if progress is not None else None))
    finally:
        release()  # a part's row group buffers, freed on this thread's heap


@task(name="contract-shard", **STEP)
def contract_shard_task(job: jobs.JobRun, run: RunFolder, source, given, parts: list[int]):
    try:
        return contract_shard(run.path, source, contract_suite(source, job.spec, given), parts)
    finally:
        release()


@task(name="metrics", **STEP)
def metrics_task(group: str, job: jobs.JobRun, run: RunFolder, source, train, holdout, added, given,
                 synthetic) -> dict[str, float]:
    real_train, real_holdout = reference_data(train, holdout, conditions=job.spec.sample.conditions,
                                              balance=(job.balance, list(added)) if added else None)
    try:
        return metric_group(group, run.path, source=source, train=real_train, holdout=real_holdout,
                            target=job.spec.validation.target, seed=job.spec.sample.seed, synthetic=synthetic,
                            given=given)
    finally:
        release()  # the synthetic sample and the classifiers: ~200 MB the report would stand on


@task(name="judge", **STEP)
def judge_task(job: jobs.JobRun, run: RunFolder, source, given, shards, metrics: list[dict[str, float]]):
    suite = contract_suite(source, job.spec, given)
    merged: dict[str, float] = {}
    for group in metrics:
        merged |= group
    return judge(run.path, source=source, suite=suite, contract=merge_contract(run.path, source, suite, shards),
                 metrics=merged, target=job.spec.validation.target, thresholds=job.spec.validation.thresholds)


def validate(job: jobs.JobRun, run: RunFolder, source, train, holdout, added, given):
    """Contract shards and metric groups all at once on the task runner, then the judgement."""
    synthetic = metric_sample(job.spec, run.path / MODEL_DIR, source)  # None: the output itself
    # Passed as they are: on Dask, Prefect hands a `quote`d argument of `.map` / `.submit` to the task still wrapped.
    shards = contract_shard_task.map(unmapped(job), unmapped(run), unmapped(source), unmapped(given),
                                     contract_parts(run.path))
    metrics = [metrics_task.submit(group, job, run, source, train, holdout, added, given, synthetic)
               for group in GROUPS]
    return judge_task(job, run, quote(source), quote(given), quote([s.result() for s in shards]),
                      [m.result() for m in metrics])


@task(name="report", **STEP)
def report_task(run: RunFolder, job: jobs.JobRun, outcome, source, train, holdout, added) -> Path:
    real_train, real_holdout = reference_data(train, holdout, conditions=job.spec.sample.conditions,
                                              balance=(job.balance, list(added)) if added else None)
    return write_report(run.path, spec=job.spec, outcome=outcome, source=source, train=real_train,
                        holdout=real_holdout)


@task(name="publish", **IO)
def publish_task(run: RunFolder, manifest) -> str:
    return str(publish.finish_run(run, manifest))


def sample_parts(job: jobs.JobRun, run: RunFolder, parts: list[PartPlan]) -> None:
    """Every part on the task runner, with one progress line when the parts run in this process."""
    ctx = FlowRunContext.get()
    local = ctx is not None and isinstance(ctx.task_runner, ThreadPoolTaskRunner)  # Dask workers do not share it
    total = sum(p.rows for p in parts)
    progress = tracker(f"sample {total:,} {RECORD_UNIT[job.spec.source.modality]}", total)
    futures = sample_part_task.map(unmapped(job), unmapped(run), parts, unmapped(progress if local else None))
    for future in futures:
        future.result()  # raises the first failed part's error
    progress.close()


@contextmanager
def timed(timings: dict[str, float], name: str) -> Iterator[None]:
    start = time.perf_counter()
    yield
    timings[name] = time.perf_counter() - start


@flow(name="synthesize", log_prints=False, task_runner=ThreadPoolTaskRunner(max_workers=SAMPLE_WORKERS))
def synthesize(
    job: str | dict[str, Any],
    rows: int | None = None,
    seed: int | None = None,
    conditions: dict[str, Any] | None = None,
    balance: str | None = None,
    output: str | None = None,
    refit: bool = False,
    resume: str | None = None,
) -> dict[str, Any] | State:
    """Fit, sample, validate and publish one job. `job` is a YAML job file or the spec
    as a dict; `rows`, `seed`, `conditions` and `output` override its fields (what a
    data engineer passes with `--param rows=50000`). `balance` names a class column:
    generate just enough records of each minority class to match the largest class.
    `resume` finishes an interrupted run without refitting."""
    timings: dict[str, float] = {}
    with timed(timings, "total_s"):
        run_job = jobs.prepare(job, {"sample.rows": rows, "sample.seed": seed, "sample.conditions": conditions,
                                     "output.path": output}, balance=balance, resume=resume)
        preflight.check_spec(run_job.spec)
        with timed(timings, "load_split_s"):
            source, source_fp, added, given = load_source_task(run_job)
            train, holdout = split_task(quote(source), run_job)
        with timed(timings, "fit_s"):
            model = fit_task(run_job, quote(train), source_fp, refit)
            run = open_run_task(run_job, model, source_fp)
        get_run_logger().info("run %s: writing to %s", run.run_id, run.tmp)
        parts = jobs.plan(run_job, added, given, list(getattr(source, "features", [])))
        with timed(timings, "sample_s"):
            sample_parts(run_job, run, parts)
        with timed(timings, "validate_s"):
            outcome = validate(run_job, run, source, train, holdout, added, given)
        report = report_task(run, run_job, outcome, quote(source), quote(train), quote(holdout), added)
    manifest = publish.build_manifest(
        run, run_job.spec, model=model, source=source, train=train, holdout=holdout, fingerprint=source_fp,
        outcome=outcome, requested=sum(p.rows for p in parts), added=added, balance=run_job.balance,
        timings=timings)
    final = Path(publish_task(run, manifest))
    summary = {**manifest.to_json(), "run_dir": str(final), "report": str(final / Path(report).name),
               "failure_lines": manifest.failure_lines()}
    publish_artifacts(summary)
    if summary["status"] == Status.QUARANTINED.value:
        return Failed(name="Quarantined", data=summary,
                      message=f"quarantined: {'; '.join(summary['failure_lines'][:3]) or 'a suite failed'}")
    return summary


def run_synthesize(flow=synthesize, **params: Any) -> dict[str, Any]:
    """Run the flow here and return its summary, published or quarantined; an error
    raised inside the flow is raised again as itself."""
    state = flow(**params, return_state=True)
    result = state.result(raise_on_failure=False)
    if isinstance(result, BaseException):
        raise result
    return result
