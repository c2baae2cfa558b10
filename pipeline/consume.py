"""Reading synthetic datasets from training code: `load(job)` finds a run, refuses one
that failed validation, and hands back the data with its manifest.

```python
from pipeline.consume import load

data = load("penguins-demo")                  # the run LATEST names (published only)
data.manifest["metrics"]                      # the manifest travels with the data
table = data.to_pyarrow()                     # pyarrow.dataset.Dataset: streams, loads nothing yet
frame = data.to_pandas()
rows = data.torch(target="species")           # torch Dataset of (x, y); see pipeline.torch_dataset
```

Only published runs are read by default: a quarantined run failed its contract,
fidelity or privacy suite, and training on it is an explicit choice
(`allow_quarantined=True`)."""

from __future__ import annotations

import json
import math
import re
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from pipeline.errors import BadInputError, QuarantinedError, RunNotFoundError
from pipeline.manifest import MANIFEST, read_manifest
from pipeline.runs import LATEST, TMP_PREFIX, latest_run, resolve_run_dir
from pipeline.schema import TableProfile
from pipeline.sink import part_files

if TYPE_CHECKING:
    from torch.utils.data import IterableDataset

PUBLISHED = "published"
DEFAULT_ROOT = Path("data/synthetic")
# Job names follow the job spec's pattern; run ids are new_run_id()'s form or any plain
# folder name. Neither may climb out of the output root.
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def load(
    job: str,
    *,
    version: str = "latest",
    root: str | Path = DEFAULT_ROOT,
    allow_quarantined: bool = False,
) -> "SyntheticDataset":
    """The synthetic dataset of `job` under `root`: `version="latest"` is the run LATEST
    names (always a published run), any other value is a run id."""
    root = Path(root)
    for what, name in (("job", job), ("version", version)):
        if not _SAFE_NAME.match(name):
            raise BadInputError(f"{what} {name!r} is not a plain name: give a job name and a run id, not a path")
    job_root = root / job
    if not job_root.is_dir():
        jobs = sorted(p.name for p in root.glob("[!.]*") if p.is_dir()) if root.is_dir() else []
        raise RunNotFoundError(
            f"no job {job!r} under {root}; jobs there: {', '.join(jobs) or 'none'} (check `root` and the job name)"
        )
    if version == "latest":
        if not (job_root / LATEST).is_file():
            raise RunNotFoundError(
                f"job {job!r} has no published run (no {LATEST} under {job_root}); runs: {_describe_runs(job_root)}"
                " — pass version=<run id> (and allow_quarantined=True for a quarantined one)"
            )
        run_dir = latest_run(job_root)
    else:
        run_dir = job_root / version
        if not (run_dir / MANIFEST).is_file():
            raise RunNotFoundError(f"job {job!r} has no run {version!r}; runs: {_describe_runs(job_root)}")
    return load_run(run_dir, allow_quarantined=allow_quarantined)


def load_run(path: str | Path, *, allow_quarantined: bool = False) -> "SyntheticDataset":
    """A run folder given directly (or a job folder: its LATEST run)."""
    run_dir = resolve_run_dir(path)
    manifest = read_manifest(run_dir)
    status = manifest.get("status")
    if status != PUBLISHED and not allow_quarantined:
        raise QuarantinedError(
            f"run {run_dir.name} is {status or 'not published'}{_why(manifest)}; it did not pass validation, "
            f"see {run_dir / MANIFEST} — pass allow_quarantined=True to read it anyway"
        )
    if not part_files(run_dir):
        raise RunNotFoundError(f"run folder {run_dir} has no part-*.parquet files: it holds no data")
    return SyntheticDataset(run_dir=run_dir, manifest=manifest)


def _describe_runs(job_root: Path) -> str:
    """Finished run folders with their status, e.g. `20261123T...-a1b2c3 (published)`."""
    runs = []
    for d in sorted(job_root.iterdir()):
        if d.is_dir() and not d.name.startswith(TMP_PREFIX) and (d / MANIFEST).is_file():
            try:
                status = read_manifest(d).get("status", "unknown")
            except (OSError, json.JSONDecodeError):
                status = "unreadable manifest"
            runs.append(f"{d.name} ({status})")
    return ", ".join(runs) or "none"


def _why(manifest: dict[str, Any]) -> str:
    """`: 2 failing expectation(s), first: <the gate's own line>` from the manifest."""
    failures = manifest.get("failures") or []
    if not failures:
        return ""
    from validators.outcome import Failure  # light: no Great Expectations import

    first = str(Failure(**failures[0])) if isinstance(failures[0], dict) else str(failures[0])
    return f": {len(failures)} failing expectation(s), first: {first}"


class SyntheticDataset:
    """One run's output: its Parquet parts, its manifest, and readers for pyarrow, pandas
    and PyTorch. Nothing is read from the parts until a reader asks."""

    def __init__(self, run_dir: Path, manifest: dict[str, Any]) -> None:
        self.run_dir = Path(run_dir)
        self.manifest = manifest

    def __repr__(self) -> str:
        return f"SyntheticDataset({self.run_dir}, modality={self.modality!r}, status={self.status!r})"

    @property
    def status(self) -> str | None:
        return self.manifest.get("status")

    @property
    def modality(self) -> str:
        """tabular | timeseries | image, from the job spec in the manifest."""
        try:
            return self.manifest["job"]["source"]["modality"]
        except (KeyError, TypeError):
            raise BadInputError(
                f"{self.run_dir / MANIFEST} has no job.source.modality: it was not written by synthpipe's flow"
            ) from None

    @cached_property
    def profile(self) -> TableProfile | None:
        """The source's profile (column kinds, category lists); None for images."""
        schema = self.manifest.get("schema")
        return TableProfile.model_validate(schema) if schema else None

    @property
    def files(self) -> list[Path]:
        return part_files(self.run_dir)

    def to_pyarrow(self) -> pads.Dataset:
        """A pyarrow dataset over the part files: scanning, filtering and batching stream
        from disk (`.to_batches()`, `.scanner(columns=..., filter=...)`)."""
        files = [str(p) for p in self.files]
        # Parts are written independently: a column all null in one part is typed null there.
        schema = pa.unify_schemas([pq.read_schema(f) for f in files], promote_options="permissive")
        return pads.dataset(files, schema=schema, format="parquet")

    def to_pandas(self, columns: list[str] | None = None) -> pd.DataFrame:
        """The whole output in memory, with the source's dtypes (from the pandas metadata)."""
        return self.to_pyarrow().to_table(columns=columns).to_pandas()

    def torch(
        self,
        *,
        target: str | None = None,
        features: list[str] | None = None,
        static: list[str] | None = None,
        categorical: str = "codes",
        fill_value: float = math.nan,
        shuffle: bool = False,
        batch_size: int | None = None,
    ) -> "IterableDataset":
        """A streaming torch Dataset for this run's modality (see pipeline.torch_dataset):

        - tabular: `x` float32 (features,), or `(x, y)` with `target`;
        - image: `x` float32 (C, H, W) in [0, 1], or `(x, y)` with the label (the default
          target when the output has one);
        - timeseries: `(x, static)` per entity, x float32 (steps, features), or
          `(x, static, y)` with a static `target`; batch with `collate_sequences`.

        `categorical`: "codes" (index in the profile's category list) or "onehot";
        `fill_value`: what a null feature becomes (NaN by default); `shuffle`: new order
        each epoch, drawn from torch's RNG (seed it with torch.manual_seed); `batch_size`:
        yield batches instead of records (then `DataLoader(dataset, batch_size=None)`)."""
        from pipeline import torch_dataset as td

        return td.make_dataset(
            self, target=target, features=features, static=static,
            categorical=categorical, fill_value=fill_value, shuffle=shuffle, batch_size=batch_size,
        )
