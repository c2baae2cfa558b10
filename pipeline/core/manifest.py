"""manifest.json: everything needed to trust, reproduce and trace a run, as one
pydantic model. `Status` is the one spelling of what the gate decided."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from enum import Enum
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pipeline.core.errors import RunNotFoundError
from pipeline.core.runfiles import MANIFEST

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
    libraries: dict[str, str | None] = {}
    timings: dict[str, float] = {}
    metrics: dict[str, float] = {}
    suites: dict[str, bool] = {}
    failures: list[dict[str, Any]] = []
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
