"""The publish / quarantine gate: contract, fidelity and privacy suites on one run.

The contract runs on every synthetic record, streamed from the Parquet parts in chunks
of `chunk_rows` (memory stays flat for 10 million rows); a sample would miss the one
unseen category or out-of-range value a contract exists to catch. It runs in shards,
one per sampling part (`contract_shard`), whose per-chunk results are merged into one
(`merge_contract`, `gx.merge_results`): the flow maps the shards over its task runner
(threads, or Dask workers), `validate_run` runs them one after another, and both merge
the same chunks in the same order, so the result does not depend on where they ran.
Metrics are computed on the first `metric_records` records (parts are independent
draws, so the first records are as random as any), fidelity and privacy apart
(`metric_group`), and judged by the fidelity and privacy suites (`judge`). Suites,
results and the outcome are written as JSON to the run's `validation/` folder; calling
`validate_run` again on the same folder re-runs everything (`synth validate RUN_DIR`)."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.core.data import GivenPath, SourceData
from pipeline.core.progress import Progress
from pipeline.core.runfiles import VALIDATION_DIR, RunData, load_synthetic, model_privacy, output_chunks
from validators import gx
from validators.contract import build_contract_suite, contract_table, contract_view
from pipeline.core.manifest import Failure
from validators.outcome import Outcome, failures
from validators.suites import METRIC_SUITES, SuiteName, build_metric_suite, metrics_table
from validators.thresholds import EPSILON, Bound, thresholds_for

log = logging.getLogger(__name__)

OUTCOME_FILE = "outcome.json"
# Records per contract chunk: ~4 s of GX work and tens of MB for 200k table rows; images
# carry their PNG bytes and are decoded, so fewer of them.
CHUNK_ROWS = {"tabular": 200_000, "timeseries": 200_000, "image": 10_000}
METRIC_RECORDS = 100_000  # records (rows, sequences, images) the metrics are computed on
# Metrics only computed when the job names a target column: without one they are absent
# by design, so their bounds are dropped rather than failed as missing.
TARGET_METRICS = ("fidelity.utility_ratio",)


def privacy_epsilon(run_dir: Path) -> float:
    """The ε the run's model spent on DP training; inf when it was not trained privately."""
    spent = model_privacy(run_dir)
    return float(spent["epsilon"]) if spent else math.inf


@dataclass(frozen=True)
class ContractShard:
    """The contract's GX result on each chunk of some sampling parts, and the entity ids
    those chunks hold (time series), so the merge can tell whether a sequence crossed parts."""

    results: list[dict[str, Any]]
    rows: int
    entities: frozenset = frozenset()


def contract_shard(run_dir: Path, source: SourceData, suite: Any, parts: list[int] | None = None, *,
                   chunk_rows: int | None = None, progress: Progress | None = None) -> ContractShard:
    """The contract suite on every chunk of the sampling `parts` (all parts when None)."""
    entity = source.layout().get("entity")
    chunk_rows = chunk_rows or CHUNK_ROWS[source.modality]
    view = contract_view(source, bool(suite.meta.get("private")))  # the facts the suite was built from
    results, seen, done = [], set(), 0
    for chunk in output_chunks(run_dir, rows=chunk_rows, entity=entity, parts=parts):
        results.append(gx.validate(suite, contract_table(view, chunk, earlier_entities=seen)))
        if entity is not None:
            seen.update(chunk[entity].dropna().unique().tolist())
        done += len(chunk)
        if progress is not None:
            progress(done)
    return ContractShard(results=results, rows=done, entities=frozenset(seen))


def merge_contract(run_dir: Path, source: SourceData, suite: Any, shards: list[ContractShard], *,
                   chunk_rows: int | None = None) -> dict[str, Any]:
    """One GX result from the shards' chunks, in part order. A sequence whose rows lie in
    two parts is invisible to each shard alone: then the contract runs again over the
    whole output in one pass, which sees it (only a broken output pays for that)."""
    entity_sets = [s.entities for s in shards if s.entities]
    if len(entity_sets) > 1 and sum(map(len, entity_sets)) != len(frozenset().union(*entity_sets)):
        log.info("an entity's rows lie in more than one part: contract re-run over the whole output")
        shards = [contract_shard(run_dir, source, suite, chunk_rows=chunk_rows)]
    results = [r for s in shards for r in s.results]
    if not results:  # no output at all: the column check fails and says so
        results.append(gx.validate(suite, pd.DataFrame()))
    return gx.merge_results(results)


def contract_parts(run_dir: Path) -> list[list[int]]:
    """The contract's shards: one per sampling part the run holds."""
    return [[i] for i in RunData(run_dir).parts()]


def contract_suite(source: SourceData, spec: Any = None, given: GivenPath | None = None) -> Any:
    """The contract for this run's output: one series of `sample.length` steps (or a
    covariate path's length) starting where a continued history ends, when asked."""
    length = spec.sample.length if spec is not None else None
    if given is not None and given.covariates is not None:
        length = length or len(given.covariates)
    private = spec is not None and spec.generator.privacy is not None
    return build_contract_suite(source, length=length, start=given.start if given is not None else None,
                                private=private, classes=spec.generator.params.get("classes") if private else None)


def run_contract(run_dir: Path, source: SourceData, suite: Any, *, chunk_rows: int | None = None,
                 progress: Progress | None = None) -> dict[str, Any]:
    """The contract suite on every chunk of the output, shard after shard, merged into one GX result."""
    total, done = RunData(run_dir).count_rows(), 0
    shards = []
    for parts in contract_parts(run_dir):
        shard = contract_shard(run_dir, source, suite, parts, chunk_rows=chunk_rows,
                               progress=None if progress is None else (lambda n, d=done: progress(d + n, total)))
        done += shard.rows
        shards.append(shard)
    return merge_contract(run_dir, source, suite, shards, chunk_rows=chunk_rows)


def metric_group(
    group: str, run_dir: Path, *, source: SourceData, train: SourceData, holdout: SourceData,
    target: str | None = None, seed: int = 0, metric_records: int = METRIC_RECORDS,
    synthetic: SourceData | None = None, given: GivenPath | None = None,
) -> dict[str, float]:
    """One group of metrics ("fidelity" or "privacy", validators.metrics.GROUPS) on the
    first `metric_records` records of the run; privacy includes the ε the model spent.
    Covariate paths the run was `given` are written as given: privacy leaves them out."""
    from validators.metrics import compute_metrics

    if synthetic is None:
        synthetic = load_synthetic(run_dir, source, max_records=metric_records)
    covariates = list(given.covariates.columns) if given is not None and given.covariates is not None else None
    metrics = compute_metrics(source, train, holdout, synthetic, target=target, seed=seed, groups=(group,),
                              given_columns=covariates)
    if group == "privacy":
        metrics[EPSILON] = privacy_epsilon(run_dir)
    return metrics


def metric_bounds(
    modality: str, overrides: dict[str, Any] | None, target: str | None, metrics: dict[str, float],
) -> dict[str, Bound]:
    """The bounds that apply to this run. A fidelity metric that does not apply to the
    data (Cramér's V with one categorical column, cross-correlation of one feature,
    utility without a target) is absent from `metrics` by design, and its bound is
    dropped. Privacy bounds are never dropped: a missing privacy metric fails."""
    bounds = thresholds_for(modality, overrides)
    if target is None:
        bounds = {m: b for m, b in bounds.items() if m not in TARGET_METRICS}
    absent = sorted(m for m in bounds if m.startswith("fidelity.") and m not in metrics)
    if absent:
        log.info("fidelity metrics not applicable to this data, not gated: %s", ", ".join(absent))
    return {m: b for m, b in bounds.items() if m not in absent}


def run_metric_suites(
    metrics: dict[str, float], bounds: dict[str, Bound], names: tuple[SuiteName, ...] = METRIC_SUITES,
) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The fidelity and privacy suites built from `bounds`, run on the one-row table of
    `metrics`: ({suite: GX suite}, {suite: GX result}). The one judge of metric values,
    for `validate_run` and for the calibration tests alike."""
    table = metrics_table(metrics)
    suites = {name: build_metric_suite(name, bounds) for name in names}
    return suites, {name: gx.validate(suite, table) for name, suite in suites.items()}


def metric_failures(
    metrics: dict[str, float], bounds: dict[str, Bound], names: tuple[SuiteName, ...] = METRIC_SUITES,
) -> list[Failure]:
    """What the gate would reject in `metrics` under `bounds` (suites `names` only): a
    metric outside its bound, or missing, is one `Failure`; a suite with no bound fails."""
    suites, results = run_metric_suites(metrics, bounds, names)
    out = []
    for name, suite in suites.items():
        out += failures(name, results[name])
        if not suite.expectations:
            out.append(_empty_suite_failure(name))
    return out


def _empty_suite_failure(name: str, modality: str = "") -> Failure:
    kind = f"{modality} {name}" if modality else name
    return Failure(suite=name, target="suite", check="no threshold defined", observed="0 expectations",
                   expected=f"at least one {kind} threshold (validators/thresholds.py, "
                            "or validation.thresholds in the job spec)")


def validate_run(
    run_dir: str | Path,
    *,
    source: SourceData,
    train: SourceData,
    holdout: SourceData,
    synthetic: SourceData | None = None,
    spec: Any = None,
    target: str | None = None,
    thresholds: dict[str, Any] | None = None,
    bounds: dict[str, Bound] | None = None,
    metrics: dict[str, float] | None = None,
    seed: int = 0,
    given: GivenPath | None = None,
    chunk_rows: int | None = None,
    metric_records: int = METRIC_RECORDS,
    progress: Progress | None = None,
) -> Outcome:
    """Run the three suites on the run in `run_dir` and write them, their results and the
    outcome to `run_dir/validation/`.

    `source` is the whole source, `train` / `holdout` its split. `synthetic` is what the
    metrics are computed on; by default the first `metric_records` records of the run.
    A `spec` (JobSpec) supplies `target`, `thresholds` and `seed` from its validation and
    sample sections; `bounds` replaces the default thresholds altogether. `given` (a
    history continued, covariate paths) fixes the one series' start and length. `metrics`, when
    given (already computed, e.g. read back from the manifest), are judged as they are.
    A suite with no threshold at all fails: an unchecked privacy suite must never publish."""
    run_dir = Path(run_dir)
    if spec is not None:
        target, thresholds, seed = spec.validation.target, spec.validation.thresholds, spec.sample.seed
    suite = contract_suite(source, spec, given)
    contract = run_contract(run_dir, source, suite, chunk_rows=chunk_rows, progress=progress)
    if metrics is None:
        from validators.metrics import GROUPS

        if synthetic is None:
            synthetic = load_synthetic(run_dir, source, max_records=metric_records)
        metrics = {}
        for group in GROUPS:
            metrics |= metric_group(group, run_dir, source=source, train=train, holdout=holdout, target=target,
                                    seed=seed, synthetic=synthetic, given=given)
    return judge(run_dir, source=source, suite=suite, contract=contract, metrics=metrics, target=target,
                 thresholds=thresholds, bounds=bounds, synthetic=synthetic)


def judge(
    run_dir: str | Path, *, source: SourceData, suite: Any, contract: dict[str, Any], metrics: dict[str, float],
    target: str | None = None, thresholds: dict[str, Any] | None = None, bounds: dict[str, Bound] | None = None,
    synthetic: SourceData | None = None,
) -> Outcome:
    """The gate's decision from the merged contract result and the metrics: builds the
    fidelity and privacy suites, writes every suite, result and the outcome to
    `run_dir/validation/`. A suite with no expectation fails."""
    run_dir = Path(run_dir)
    out_dir = run_dir / VALIDATION_DIR
    out_dir.mkdir(exist_ok=True)
    suites, results = {"contract": suite}, {"contract": contract}
    bounds = bounds if bounds is not None else metric_bounds(source.modality, thresholds, target, metrics)
    metric_suites, metric_results = run_metric_suites(metrics, bounds)
    suites |= metric_suites
    results |= metric_results

    passed, failing = {}, []
    for name, suite in suites.items():
        gx.write_json(out_dir / f"{name}.suite.json", gx.suite_to_json(suite))
        gx.write_json(out_dir / f"{name}.result.json", results[name])
        passed[name] = bool(results[name]["success"]) and len(suite.expectations) > 0
        failing += failures(name, results[name])
        if not suite.expectations:
            failing.append(_empty_suite_failure(name, source.modality))
    outcome = Outcome(suites=passed, failures=failing, metrics=metrics, synthetic=synthetic)
    gx.write_json(out_dir / OUTCOME_FILE, outcome.to_dict())
    log.info("validation of %s: %s (%s)", run_dir, outcome.status,
             ", ".join(f"{k} {'passed' if v else 'FAILED'}" for k, v in passed.items()))
    return outcome


def read_outcome(run_dir: str | Path) -> Outcome:
    """The outcome `validate_run` last wrote for this run."""
    return Outcome.from_dict(gx.read_json(Path(run_dir) / VALIDATION_DIR / OUTCOME_FILE))


def read_result(run_dir: str | Path, suite: str) -> dict[str, Any]:
    """A suite's stored GX validation result (JSON dict)."""
    return gx.read_json(Path(run_dir) / VALIDATION_DIR / f"{suite}.result.json")
