"""Fit a generator, or reuse the one fitted on the same source with the same settings.

The cache key is (source fingerprint, generator and its model version, effective
params, seed, holdout, source options): a scheduled run whose source has not changed skips the fit. Models
are written to a hidden folder and renamed when complete, like run folders. A file
lock per key makes two runs of one job started together fit once: the second waits
for the first's model and reuses it. A cached model that no longer loads is refused
with the way out (`--refit`), before anything is written."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from filelock import FileLock

from generators import Generator, get, load_generator
from pipeline.core.data import SourceData
from pipeline.core.errors import BadInputError, EnvironmentFailure
from pipeline.core.progress import Progress
from pipeline.core.runfiles import CONFIG_FILE
from pipeline.core.spec import JobSpec

MODELS_DIR = ".models"
DISK_FULL_BYTES = 1 << 20  # a save that failed with less than this free failed for want of space


@dataclass(frozen=True)
class FittedModel:
    path: Path  # checkpoint folder (config.json + weights)
    cache_key: str
    reused: bool  # True when an earlier fit was loaded instead of fitting
    params: dict[str, Any] = field(default_factory=dict)  # effective generator params, defaults included


def configured(spec: JobSpec) -> Generator:
    """The job's generator, unfitted: its params are validated here, before any data is read."""
    return get(spec.generator_name)(device=spec.generator.device, privacy=spec.generator.privacy,
                                    **spec.generator.params)


def cache_key(spec: JobSpec, fingerprint: str, params: dict[str, Any]) -> str:
    payload = {
        "fingerprint": fingerprint,
        "generator": spec.generator_name,
        "model_version": get(spec.generator_name).model_version,
        "params": params,
        "privacy": spec.generator.privacy.model_dump(mode="json") if spec.generator.privacy else None,
        "seed": spec.sample.seed,  # seeds the train / holdout split
        "holdout": spec.validation.holdout,
        "source": spec.source.model_dump(mode="json", exclude={"path"}),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def fit_or_reuse(
    spec: JobSpec, train: SourceData, fingerprint: str, *, refit: bool = False, progress: Progress | None = None
) -> FittedModel:
    generator = configured(spec)
    params = generator.params.model_dump(mode="json")
    key = cache_key(spec, fingerprint, params)
    target = spec.run_root / MODELS_DIR / key
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target.parent / f".{key}.lock")):  # held while fitting: a concurrent run waits, then reuses
        if target.is_dir() and not refit:
            check_cached(target)
            return FittedModel(path=target, cache_key=key, reused=True, params=params)
        generator.fit(train, progress=progress)
        tmp = target.parent / f".tmp-{key}-{secrets.token_hex(3)}"
        try:
            generator.save(tmp)
        except BaseException as err:  # e.g. the disk filled up: leave no half-written model behind
            shutil.rmtree(tmp, ignore_errors=True)
            free = shutil.disk_usage(target.parent).free
            if free < DISK_FULL_BYTES:  # torch reports a full disk as a RuntimeError ("unexpected pos")
                raise EnvironmentFailure(f"disk full writing the fitted model to {target.parent} ({free // 1024} KB "
                                         "free): free some space and run again; nothing was published") from err
            raise
        if target.exists():  # --refit: replace the cached model only once the new one is complete
            shutil.rmtree(target)
        os.rename(tmp, target)
    return FittedModel(path=target, cache_key=key, reused=False, params=params)


def check_cached(path: Path) -> None:
    """A cached model must load (config, plain tensors) before a run copies it."""
    try:
        load_generator(path)
    except Exception as err:  # any damage: truncated JSON, missing or foreign weights, unsafe pickles
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise BadInputError(f"the cached model {path} does not load ({reason}): run again with --refit "
                            "to fit a new one") from None


def resumed(model_dir: Path) -> FittedModel:
    """The model an interrupted run was started with (its own copy, not the cache)."""
    config = json.loads((model_dir / CONFIG_FILE).read_text())
    return FittedModel(path=model_dir, cache_key="resumed", reused=True, params=config["params"])
