"""manifest.json: everything needed to trust, reproduce and trace a run, as one
pydantic model. `Status` is the one spelling of what the gate decided."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from enum import Enum
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pipeline.core.errors import IntegrityError, RunNotFoundError
from pipeline.core.runfiles import MANIFEST, RunData

HASH_BLOCK = 1 << 20  # bytes read at a time while hashing: memory stays flat for any file size
LIBRARIES = ("synthpipe", "torch", "sdv", "pandas", "pyarrow", "prefect", "great-expectations", "scikit-learn", "numpy")


class Status(str, Enum):
    """What the gate decided: published only when every suite passed."""

    PUBLISHED = "published"
    QUARANTINED = "quarantined"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Failure:
    """One failing expectation, in words a data engineer can act on."""

    suite: str
    target: str  # column, metric, or "table"
    check: str  # what the expectation requires, in words
    observed: str
    expected: str
    why: str = ""

    def __str__(self) -> str:
        why = f" ({self.why})" if self.why else ""
        return f"{self.suite}: {self.target}: {self.check}: observed {self.observed}; expected {self.expected}{why}"


class GeneratorRecord(BaseModel):
    name: str
    params: dict[str, Any]  # the effective parameters: the job's, with every default filled in
    cache_key: str
    reused_fit: bool


class SourceRecord(BaseModel):
    path: str
    fingerprint: str


class FileRecord(BaseModel):
    """A part file as it was when the run finished."""

    size: int  # bytes
    sha256: str


class Manifest(BaseModel):
    """The contents of a run's manifest.json."""

    # newer fields survive a rewrite by an older reader; `schema` is a BaseModel method name
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    run_id: str
    status: Status
    job: dict[str, Any]  # the job spec as run (JSON form)
    generator: GeneratorRecord
    seed: int
    source: SourceRecord
    rows: dict[str, int]
    balance: dict[str, Any] | None = None
    schema_: dict[str, Any] | None = Field(None, alias="schema")  # the source profile (tabular, time series)
    layout: dict[str, Any] = {}
    # What DP training spent (generators.private.PrivacySpent): target and spent ε, δ, accountant,
    # noise multiplier, clipping norm, sampling rate, steps. None: not trained privately (ε = inf).
    privacy: dict[str, Any] | None = None
    libraries: dict[str, str | None] = {}
    timings: dict[str, float] = {}
    metrics: dict[str, float] = {}
    suites: dict[str, bool] = {}
    failures: list[dict[str, Any]] = []
    files: dict[str, FileRecord] = {}  # part file name -> size and sha256, recorded when the run finished
    written_at: str | None = None
    revalidated_at: str | None = None

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Manifest":
        return cls.model_validate(data)

    @property
    def published(self) -> bool:
        return self.status is Status.PUBLISHED

    def failure_lines(self) -> list[str]:
        return [str(Failure(**f)) for f in self.failures]


def file_record(path: Path) -> FileRecord:
    """Size and sha256 of one file, read HASH_BLOCK bytes at a time."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(HASH_BLOCK):
            digest.update(block)
    return FileRecord(size=path.stat().st_size, sha256=digest.hexdigest())


def part_records(run_dir: Path) -> dict[str, FileRecord]:
    """Every data file of the run, by its path under the data root (`part-00000.parquet`,
    `year=2008/part-00000.parquet` in a partitioned run)."""
    data = RunData(run_dir)
    return {data.name(p): file_record(p) for p in data.files}


def changed_files(run_dir: Path, manifest: Manifest, *, hashes: bool) -> list[str]:
    """One line per part file that is not as the manifest recorded it: missing, added,
    another size, or (with `hashes`) other contents."""
    run_dir = Path(run_dir)
    data = RunData(run_dir)
    on_disk = {data.name(p): p for p in data.files}
    lines = [f"{name} is missing" for name in manifest.files if name not in on_disk]
    lines += [f"{name} is not in the manifest" for name in on_disk if name not in manifest.files]
    for name, record in manifest.files.items():
        path = on_disk.get(name)
        if path is None:
            continue
        size = path.stat().st_size
        if size != record.size:
            lines.append(f"{name} is {size:,} bytes, the manifest says {record.size:,}")
        elif hashes and file_record(path).sha256 != record.sha256:
            lines.append(f"{name} has other contents than when the run finished (sha256 differs)")
    return lines


def verify_files(run_dir: Path, manifest: Manifest, *, hashes: bool = False) -> None:
    """Refuse a run whose part files changed since it finished: sizes always, sha256 with
    `hashes`. A run written before checksums were recorded can only pass without them."""
    if not manifest.files:
        if hashes:
            raise IntegrityError(
                f"run {manifest.run_id} has no file checksums in its {MANIFEST} (written by an older synthpipe): "
                "it cannot be verified; run the job again, or read it without verify=True"
            )
        return
    lines = changed_files(run_dir, manifest, hashes=hashes)
    if lines:
        more = f" (and {len(lines) - 1} more: {'; '.join(lines[1:4])})" if len(lines) > 1 else ""
        raise IntegrityError(
            f"run {manifest.run_id}: its data changed since it was validated: {lines[0]}{more}; "
            f"the files are not what the suites passed, so it is not served: run the job again"
        )


def library_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for lib in LIBRARIES:
        try:
            out[lib] = version(lib)
        except PackageNotFoundError:
            out[lib] = None
    return out


def write_manifest(run_dir: Path, manifest: Manifest) -> Path:
    """Write atomically (temp file + replace): `synth validate` rewrites it in place."""
    manifest = manifest.model_copy(update={"written_at": datetime.now(timezone.utc).isoformat()})
    path = run_dir / MANIFEST
    tmp = run_dir / f".{MANIFEST}.tmp"
    tmp.write_text(json.dumps(manifest.to_json(), indent=2, default=str))
    os.replace(tmp, path)
    return path


def read_manifest(run_dir: Path) -> Manifest:
    """The run's manifest, validated: a file that is not synthpipe's says which field is wrong."""
    path = Path(run_dir) / MANIFEST
    try:
        return Manifest.from_json(json.loads(path.read_text()))
    except FileNotFoundError:
        raise RunNotFoundError(f"{run_dir} has no {MANIFEST}: it is not a finished run folder") from None
    except json.JSONDecodeError as err:
        raise RunNotFoundError(f"{path} is not valid JSON ({err}): the run folder is damaged") from None
    except ValidationError as err:
        fields = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors()[:3])
        raise RunNotFoundError(f"{path} is not a synthpipe manifest ({fields})") from None
