"""Fit a generator, or reuse the one fitted on the same source with the same settings.

The cache key is (source fingerprint, generator, params, seed, holdout): a scheduled
run whose source has not changed skips the fit. Models are written to a hidden folder
and renamed when complete, like run folders."""

from __future__ import annotations

import hashlib
import json
import os
import random
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from generators import get
from pipeline.data import SourceData
from pipeline.progress import Progress
from pipeline.spec import JobSpec

MODELS_DIR = ".models"


@dataclass(frozen=True)
class FittedModel:
    path: Path  # checkpoint folder (config.json + weights)
    cache_key: str
    reused: bool  # True when an earlier fit was loaded instead of fitting


def cache_key(spec: JobSpec, fingerprint: str) -> str:
    payload = {
        "fingerprint": fingerprint,
        "generator": spec.generator_name,
        "params": spec.generator.params,
        "seed": spec.sample.seed,
        "holdout": spec.validation.holdout,
        "source": spec.source.model_dump(mode="json", exclude={"path"}),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def seed_everything(seed: int) -> None:
    """Training draws from the global RNGs (SDV does): seed them all."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def fit_or_reuse(
    spec: JobSpec, train: SourceData, fingerprint: str, *, refit: bool = False, progress: Progress | None = None
) -> FittedModel:
    key = cache_key(spec, fingerprint)
    target = spec.run_root / MODELS_DIR / key
    if target.is_dir() and not refit:
        return FittedModel(path=target, cache_key=key, reused=True)
    seed_everything(spec.sample.seed)
    generator = get(spec.generator_name)(device=spec.generator.device, **spec.generator.params)
    generator.fit(train, progress=progress)
    tmp = target.parent / f".tmp-{key}-{secrets.token_hex(3)}"
    generator.save(tmp)
    if target.exists():  # --refit: replace the cached model only once the new one is complete
        shutil.rmtree(target)
    os.rename(tmp, target)
    return FittedModel(path=target, cache_key=key, reused=False)
