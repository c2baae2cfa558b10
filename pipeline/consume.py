"""Reading synthetic datasets from training code: `load(job)` finds a run, refuses one
that failed validation, and hands back the data with its manifest.

```python
from pipeline.consume import load

data = load("penguins-demo")                  # the run LATEST names (published only)
data.manifest["metrics"]                      # the manifest travels with the data
table = data.to_pyarrow()                     # pyarrow.dataset.Dataset: streams, loads nothing yet
                                              # (partition columns included: output.partition_by)
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
from dataclasses import replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow.dataset as pads

from pipeline.core.errors import BadInputError, QuarantinedError, RunNotFoundError
from pipeline.core.manifest import Manifest, read_manifest, verify_files
from pipeline.core.runfiles import (
    CONFIG_FILE, LATEST, MANIFEST, MODEL_DIR, TMP_PREFIX, RunData, latest_run, part_files, resolve_run_dir,
)
from pipeline.core.schema import ColumnProfile, TableProfile

if TYPE_CHECKING:
    from torch.utils.data import IterableDataset

    from pipeline.torch_dataset import Encoding

DEFAULT_ROOT = Path("data/synthetic")
MODEL_CONFIG = Path(MODEL_DIR) / CONFIG_FILE  # a run's copy of its fitted generator
# Job names follow the job spec's pattern; run ids are new_run_id()'s form or any plain
# folder name. Neither may climb out of the output root.
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def load(
    job: str,
    *,
    version: str = "latest",
    root: str | Path = DEFAULT_ROOT,
    allow_quarantined: bool = False,
    verify: bool = False,
) -> "SyntheticDataset":
    """The synthetic dataset of `job` under `root`: `version="latest"` is the run LATEST
    names (always a published run), any other value is a run id. Part files whose size
    differs from the manifest's record are refused (IntegrityError); `verify=True` also
    checks their sha256 (reads every byte once)."""
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
    return load_run(run_dir, allow_quarantined=allow_quarantined, verify=verify)


def load_run(path: str | Path, *, allow_quarantined: bool = False, verify: bool = False) -> "SyntheticDataset":
    """A run folder given directly (or a job folder: its LATEST run); `verify` as in `load`."""
    run_dir = resolve_run_dir(path)
    manifest = read_manifest(run_dir)
    if not manifest.published and not allow_quarantined:
        raise QuarantinedError(
            f"run {run_dir.name} is {manifest.status}{_why(manifest)}; it did not pass validation, "
            f"see {run_dir / MANIFEST} — pass allow_quarantined=True to read it anyway"
        )
    if not part_files(run_dir):
        raise RunNotFoundError(f"run folder {run_dir} has no part-*.parquet files: it holds no data")
    verify_files(run_dir, manifest, hashes=verify)
    return SyntheticDataset(run_dir=run_dir, manifest=manifest.to_json())


def _describe_runs(job_root: Path) -> str:
    """Finished run folders with their status, e.g. `20261123T...-a1b2c3 (published)`."""
    runs = []
    for d in sorted(job_root.iterdir()):
        if d.is_dir() and not d.name.startswith(TMP_PREFIX) and (d / MANIFEST).is_file():
            try:
                status = str(read_manifest(d).status)
            except RunNotFoundError:
                status = "unreadable manifest"
            runs.append(f"{d.name} ({status})")
    return ", ".join(runs) or "none"


def _why(manifest: Manifest) -> str:
    """`: 2 failing expectation(s), first: <the gate's own line>` from the manifest."""
    lines = manifest.failure_lines()
    return f": {len(lines)} failing expectation(s), first: {lines[0]}" if lines else ""


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

    @property
    def layout(self) -> dict[str, Any]:
        """What a reader needs besides the schema (the source data class's `layout()`):
        entity, time and static columns of time series; size, mode, label and classes of images."""
        layout = self.manifest.get("layout")
        if layout is None:
            raise BadInputError(f"{self.run_dir / MANIFEST} has no layout: it was not written by synthpipe's flow")
        return layout

    @cached_property
    def profile(self) -> TableProfile | None:
        """The source's profile (column kinds, category lists); None for images."""
        schema = self.manifest.get("schema")
        return TableProfile.model_validate(schema) if schema else None

    @cached_property
    def data(self) -> RunData:
        """The run's one reader (pipeline.core.runfiles): flat parts or hive partitions."""
        return RunData(self.run_dir)

    @property
    def files(self) -> list[Path]:
        return self.data.files

    def to_pyarrow(self) -> pads.Dataset:
        """A pyarrow dataset over the part files: scanning, filtering and batching stream
        from disk (`.to_batches()`, `.scanner(columns=..., filter=...)`); a partitioned
        run's partition columns come from its folder names (filter on them prunes folders)."""
        return self.data.dataset()

    def to_pandas(self, columns: list[str] | None = None) -> pd.DataFrame:
        """The whole output in memory, with the source's dtypes (from the pandas metadata)."""
        return self.data.read(columns=columns).to_pandas()

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
        from pipeline.torch_dataset import Encoding

        stream = {"shuffle": shuffle, "batch_size": batch_size}
        style = Encoding((), categorical, fill_value)  # checks `categorical` for every modality
        if self.modality == "image":
            if features is not None or static is not None:
                raise BadInputError("features= and static= apply to tabular and time-series runs, not images")
            return self._images(target, stream)
        profile = self.profile
        if profile is None:
            raise BadInputError(f"the manifest of {self.run_dir} has no schema: cannot encode its columns")
        if target is not None and target not in profile.names:
            raise BadInputError(f"target {target!r} is not a column of the output; columns: {', '.join(profile.names)}")
        if self.modality == "timeseries":
            return self._sequences(profile, target, features, static, style, stream)
        if static is not None:
            raise BadInputError("static= applies to time-series runs; this run is tabular")
        return self._rows(profile, target, features, style, stream)

    # ---- torch datasets: what the run says, handed to pipeline.torch_dataset -----------

    def _rows(
        self, profile: TableProfile, target: str | None, features: list[str] | None, style: "Encoding",
        stream: dict[str, Any],
    ) -> "IterableDataset":
        from pipeline.torch_dataset import TabularRows

        names = features if features is not None else [n for n in profile.names if n != target]
        if target in names:
            raise BadInputError(f"target {target!r} is also listed in features: a model would see its own answer")
        encoding = replace(style, columns=_pick(profile, names, "features"))
        return TabularRows(self.data, encoding, profile.column(target) if target else None, **stream)

    def _images(self, target: str | None, stream: dict[str, Any]) -> "IterableDataset":
        from pipeline.core.images import IMAGE_COLUMN
        from pipeline.torch_dataset import ImageRows

        others = [n for n in self.to_pyarrow().schema.names if n != IMAGE_COLUMN]
        if target is not None and target not in others:
            raise BadInputError(
                f"target {target!r} is not a label column of the output; columns: {', '.join(others) or 'none'}"
            )
        label = target if target is not None else self.layout["label"]
        return ImageRows(self.data, label, self.label_classes(label) if label else None, **stream)

    def label_classes(self, label: str) -> list[Any]:
        """The classes the generator was fitted on (its saved condition values in model/),
        else the source's sorted classes (the manifest's layout): an image's class index
        is its position here, the same in every run of a job whichever classes it sampled."""
        config = self.run_dir / MODEL_CONFIG
        if config.is_file():
            fitted = json.loads(config.read_text()).get("condition_values", {}).get(label)
            if fitted:
                return list(fitted)
        return list(self.layout["classes"] or [])

    def _sequences(
        self, profile: TableProfile, target: str | None, features: list[str] | None, static: list[str] | None,
        style: "Encoding", stream: dict[str, Any],
    ) -> "IterableDataset":
        """Entity, time and (unless given) the static columns from the manifest's layout:
        what the source loader found in the source."""
        from pipeline.torch_dataset import Sequences

        entity, time = self.layout["entity"], self.layout["time"]
        rest = [n for n in profile.names if n not in (entity, time)]
        if static is None:
            static = list(self.layout["static"])
        if target is not None and target not in static:
            raise BadInputError(
                f"target {target!r} varies within an entity; a sequence target must be a static column: "
                f"{', '.join(static) or 'none found'} (or pass static=[...])"
            )
        names = features if features is not None else [n for n in rest if n not in static]
        if entity in names or time in names:
            raise BadInputError(f"features must not include the entity {entity!r} or time {time!r} column")
        return Sequences(
            self.data,
            entity=entity,
            features=replace(style, columns=_pick(profile, names, "features")),
            static=replace(style, columns=_pick(profile, [n for n in static if n != target], "static")),
            target=profile.column(target) if target else None,
            **stream,
        )


def _pick(profile: TableProfile, names: list[str], what: str) -> tuple[ColumnProfile, ...]:
    unknown = [n for n in names if n not in profile.names]
    if unknown:
        raise BadInputError(f"{what} {unknown} not in the output; columns: {', '.join(profile.names)}")
    return tuple(profile.column(n) for n in names)
