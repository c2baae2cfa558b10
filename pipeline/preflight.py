"""Every check that needs no fitted model, run before the fit: the CLI runs them before
Prefect starts, the flow runs them again on the source it loaded (a deployment run has
no CLI in front of it). Bad input then costs no fit and leaves no `.tmp-` folder.

- `check_spec`: what the spec alone decides: threshold names, generator parameters (a
  private fit given `time_budget_s` instead of `steps`: generators/base.py) and
  device, a target on a non-tabular job, the source reachable, the output path.
- `check_data`: what needs the loaded source: conditions (column and seen value, and
  whether the configured generator can fix that column: `Generator.conditionable`; a
  covariate path or a history to continue read and checked, pipeline/given.py),
  the utility target's column, the partition columns (pipeline/core/partitions.py), a
  private table's declared domains (pipeline/core/domains.py),
  image sizes against the generator, a resumed run's source unchanged, a balancing
  target, and whether the Parquet fits on the disk."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import pyarrow as pa

from pipeline import jobs
from pipeline.core.data import (
    RECORD_UNIT, ImageData, SourceData, TabularData, TimeSeriesData, check_conditions, split_conditions,
)
from pipeline.core.domains import source_private_profile
from pipeline.core.errors import EnvironmentFailure, OutputError, SpecError
from pipeline.core.partitions import check_partition_columns
from pipeline.core.spec import JobSpec
from pipeline.fitting import configured
from pipeline.sources import check_reachable, load_source, source_fingerprint

# Parquet pages, row-group and footer metadata on top of the records' own bytes.
PARQUET_OVERHEAD = 1.1
MB = 1 << 20


def check_spec(spec: JobSpec) -> None:
    """Checks on the spec alone, in the order a user would fix them."""
    from generators.base import resolve_device
    from validators.thresholds import thresholds_for

    thresholds_for(spec.source.modality, spec.validation.thresholds)  # unknown metric names are refused
    generator = configured(spec)  # generator params validated against the generator's own schema
    if spec.sample.length is not None and not generator.continuous_path:
        raise SpecError(f"sample.length: {spec.generator_name} cannot generate continuous series of a given length "
                        "(one long series, or long panel entities); use generator.family: diffusion, or drop "
                        "sample.length and sample with sample.rows")
    resolve_device(spec.generator.device)
    if spec.validation.target is not None and spec.source.modality != "tabular":
        raise SpecError(f"validation.target: a utility target applies to tabular data only; remove it from this "
                        f"{spec.source.modality} job")
    check_reachable(spec.source)
    writable_root(spec)


def writable_root(spec: JobSpec) -> Path:
    """The nearest existing folder of the job's run root, proven writable by a probe file."""
    for path in (spec.output.path, spec.run_root):
        if path.exists() and not path.is_dir():
            raise OutputError(f"output {path} is a file, not a folder: set output to a folder (or remove the file)")
    existing = spec.run_root
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise OutputError(f"output {spec.output.path} lies under the file {existing}: set output to a folder")
    try:
        with tempfile.NamedTemporaryFile(dir=existing, prefix=".synth-probe-"):
            pass
    except OSError as err:
        raise EnvironmentFailure(f"output {spec.output.path} is not writable ({err.strerror} in {existing}): "
                                 "choose another output folder or fix its permissions") from None
    return existing


def check_target(spec: JobSpec, source: SourceData) -> None:
    target = spec.validation.target
    if target is not None and isinstance(source, TabularData) and target not in source.profile.names:
        raise SpecError(f"validation.target: {target!r} is not a column of the source; columns: "
                        + ", ".join(source.profile.names))


def bytes_per_record(source: SourceData) -> float:
    """The source's own uncompressed Arrow bytes per record (row, sequence, image).

    Why this estimate: the Parquet we write is at most its records' uncompressed Arrow
    size (plus page overhead), the output has the source's columns and dtypes, and it
    is known before the fit; drawing a first chunk would need the fitted model, i.e. the
    fit we want to spare when the disk is too small."""
    if isinstance(source, ImageData):
        return source.images[0].nbytes * 1.01 + 128  # PNG: raw pixels, a filter byte per row, headers
    frame = source.frame
    per = pa.Table.from_pandas(frame, preserve_index=False).nbytes / max(len(frame), 1)
    if isinstance(source, TimeSeriesData):
        per *= len(frame) / max(len(source), 1)  # rows per sequence
    return per


def check_disk(spec: JobSpec, source: SourceData, records: int) -> None:
    need = records * bytes_per_record(source) * PARQUET_OVERHEAD
    root = writable_root(spec)
    free = shutil.disk_usage(root).free
    if need > free:
        unit = RECORD_UNIT[spec.source.modality]
        raise EnvironmentFailure(
            f"{records:,} {unit} need about {need / MB:,.1f} MB of Parquet (from the source: "
            f"{bytes_per_record(source):,.0f} bytes per record) but {root} has {free / MB:,.1f} MB free: "
            "free some space or lower sample.rows"
        )


def check_data(job: jobs.JobRun, source: SourceData, fingerprint: str) -> dict[Any, int] | None:
    """Checks on the loaded source; returns the records to add per class when balancing."""
    from pipeline.given import load_given, path_length

    spec = job.spec
    if job.balance and getattr(source, "stream", None) is not None:
        raise SpecError("--balance counts every class in memory, which a streamed source (source.stream) does not "
                        "hold: sample a class with sample.conditions, or set source.stream: false")
    features = list(getattr(source, "features", []))
    static, _ = split_conditions(spec.sample.conditions, features)
    check_conditions(static, source.conditionable())  # a class column, a value it holds
    check_conditions(static, configured(spec).conditionable(source), who=spec.generator_name)  # one this model can fix
    given = load_given(spec, source)
    check_target(spec, source)
    if isinstance(source, TabularData):  # the spec refuses partition_by on other modalities
        check_partition_columns(spec.output.partition_by, source.profile)
    if spec.generator.privacy is not None and isinstance(source, (TabularData, TimeSeriesData)):
        source_private_profile(source)  # every column's domain declared, before any fit
    if spec.generator.privacy is not None and isinstance(source, TimeSeriesData) and spec.source.static is None:
        raise SpecError("generator.privacy: which columns are static (constant within each sequence) is read from "
                        f"the rows unless declared: declare source.static (now {source.static or []}, or [] for none)")
    if spec.generator.privacy is not None and job.balance:
        raise SpecError(f"synth augment --target {job.balance}: balancing counts the source's classes, which a "
                        "private run cannot read (the counts would show in the output and its manifest): sample a "
                        "class with sample.conditions instead, or drop generator.privacy")
    added = jobs.check_source(job, source, fingerprint)
    records = sum(p.rows for p in jobs.plan(job, added, given, features))
    length = path_length(spec, given)
    if length is not None:  # one series (or sample.rows panel entities) of `length` steps: in source sequences' rows
        paths = 1 if source.windows is not None else spec.sample.rows
        records = -(-paths * length * len(source) // len(source.frame))
    check_disk(spec, source, records)
    return added


def preflight(job: jobs.JobRun) -> None:
    """Every check before the fit, for the CLI: the spec, then the source it loads."""
    check_spec(job.spec)
    source = load_source(job.spec.source)
    check_data(job, source, source_fingerprint(job.spec.source) if job.resume else "")
