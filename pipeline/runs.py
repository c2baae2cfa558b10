"""Run folders: written under a hidden temporary name and renamed when complete, so a
reader never sees half a dataset; `LATEST` names the newest published run. A crash
leaves the temporary folder: `list_runs` shows it (resumable when it holds its spec
and model), `clean_interrupted` removes the old ones."""

from __future__ import annotations

import json
import os
import secrets
import shutil
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from pipeline.core.errors import BadInputError
from pipeline.core.runfiles import LATEST, TMP_PREFIX


def new_run_id() -> str:
    """Sortable by time, unique across concurrent runs of the same job."""
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


@dataclass(frozen=True)
class RunFolder:
    job_root: Path  # <output>/<job>
    run_id: str

    @property
    def tmp(self) -> Path:
        """Where the run is written: hidden from readers until `commit`."""
        return self.job_root / f"{TMP_PREFIX}{self.run_id}"

    @property
    def final(self) -> Path:
        return self.job_root / self.run_id

    @property
    def path(self) -> Path:
        """The folder that exists now: the temporary one until committed."""
        return self.final if self.final.exists() else self.tmp

    def create(self) -> "RunFolder":
        self.tmp.mkdir(parents=True, exist_ok=False)
        return self

    def commit(self) -> Path:
        """Atomic rename of the finished run. Never replaces an existing run."""
        if self.final.exists():
            raise FileExistsError(f"run folder {self.final} already exists; refusing to overwrite it")
        os.rename(self.tmp, self.final)
        return self.final


def set_latest(job_root: Path, run_id: str) -> None:
    """Point LATEST at a published run: write a temp file, then atomic os.replace, so two
    concurrent runs never leave a torn LATEST."""
    tmp = job_root / f".{LATEST}.{secrets.token_hex(4)}"
    tmp.write_text(run_id + "\n")
    os.replace(tmp, job_root / LATEST)


# ---- listing and cleaning a job's runs ---------------------------------------------

INTERRUPTED, RESUMABLE = "interrupted", "resumable"


@dataclass(frozen=True)
class RunEntry:
    run_id: str
    status: str  # published | quarantined | resumable (interrupted, with its spec and model) | interrupted
    path: Path
    modified: datetime  # last change of the folder: for an interrupted run, when it stopped
    latest: bool = False

    @property
    def age_s(self) -> float:
        return (datetime.now(timezone.utc) - self.modified).total_seconds()


def _modified(path: Path) -> datetime:
    newest = max([path.stat().st_mtime, *(p.stat().st_mtime for p in path.iterdir())])
    return datetime.fromtimestamp(newest, timezone.utc)


def list_runs(job_root: Path) -> list[RunEntry]:
    """Every run folder of a job, oldest first: finished ones with their manifest's
    status, interrupted ones (still under their temporary name) marked resumable when
    they kept the job spec and model that `synth run --resume` needs."""
    from pipeline.core.runfiles import JOB_FILE, MANIFEST, MODEL_DIR

    job_root = Path(job_root)
    if not job_root.is_dir():
        return []
    latest = (job_root / LATEST).read_text().strip() if (job_root / LATEST).is_file() else None
    entries = []
    for path in job_root.iterdir():
        if not path.is_dir() or path.name.startswith(".") and not path.name.startswith(TMP_PREFIX):
            continue
        if path.name.startswith(TMP_PREFIX):
            whole = (path / JOB_FILE).is_file() and (path / MODEL_DIR).is_dir()
            entries.append(RunEntry(path.name.removeprefix(TMP_PREFIX), RESUMABLE if whole else INTERRUPTED, path,
                                    _modified(path)))
        elif (path / MANIFEST).is_file():
            status = json.loads((path / MANIFEST).read_text()).get("status", "unknown")
            entries.append(RunEntry(path.name, status, path, _modified(path), latest=path.name == latest))
    return sorted(entries, key=lambda e: e.run_id)


def clean_interrupted(job_root: Path, older_than_s: float) -> list[RunEntry]:
    """Remove interrupted runs (resumable or not) untouched for more than `older_than_s`;
    finished runs, LATEST and the fit cache are never touched. Returns what was removed."""
    removed = []
    for entry in list_runs(job_root):
        if entry.status in (INTERRUPTED, RESUMABLE) and entry.age_s > older_than_s:
            shutil.rmtree(entry.path)
            removed.append(entry)
    return removed


def parse_age(text: str) -> float:
    """"90s", "30m", "12h", "7d" -> seconds."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    number, unit = text[:-1], text[-1:].lower()
    if unit not in units or not number.replace(".", "", 1).isdigit():
        raise BadInputError(f"--older-than takes a number and a unit (s, m, h, d), e.g. 1d or 12h; got {text!r}")
    return float(number) * units[unit]
