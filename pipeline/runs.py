"""Run folders: written under a hidden temporary name and renamed when complete, so a
reader never sees half a dataset; `LATEST` names the newest published run."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

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
