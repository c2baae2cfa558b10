"""The generator protocol and its template base class.

Like scikit-learn and SDV: `__init__` only stores hyper-parameters (validated by the
class's pydantic `Params`), `fit` learns and returns self, learned state lives in
trailing-underscore attributes. Public methods validate, then call the private
`_fit` / `_sample_chunk` / `_export` / `_restore` a subclass implements.

Sampling is chunked by the sampling plan (`pipeline.core.plan`): a chunk carries its
own seed and the index of its first record, so the same seed gives the same rows, a
sharded run gives the same rows as a single-process run, and memory never holds more
than a chunk.
"""

from __future__ import annotations

import contextlib
import json
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar, Iterator

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pipeline.core.data import Batch, GivenPath, SourceData, check_conditions
from pipeline.core.errors import BadInputError, NotFittedError, UnsafeCheckpointError
from pipeline.core.plan import Chunk, plan_chunks
from pipeline.core.progress import Progress, silent
from pipeline.core.runfiles import CONFIG_FILE, WEIGHTS_FILE
from pipeline.core.seeding import seeded
from pipeline.core.spec import PrivacySpec
from pipeline.core.threads import thread_policy

class GeneratorParams(BaseModel):
    """What every generator's `Params` extends: the fit seed, so a generator fitted
    outside the pipeline (`get("tabular/gan")().fit(x)`) is reproducible too."""

    model_config = ConfigDict(extra="forbid")

    seed: int = Field(0, ge=0)  # weight initialisation, batch order, training noise: a refit gives the same model


def resolve_device(device: str) -> torch.device:
    """"auto" picks CUDA when present; "cuda" without a GPU is a clear error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise BadInputError("generator.device is 'cuda' but no CUDA GPU is available; use 'auto' or 'cpu'")
    return torch.device(device)



class Generator(ABC):
    """Base class of every generator plugin. Register a subclass with
    `@register("modality/family")` and it gets the shared contract test suite."""

    modality: ClassVar[str]
    family: ClassVar[str]
    Params: ClassVar[type[GeneratorParams]] = GeneratorParams
    # Small models run faster on one CPU thread (pipeline.core.threads); big ones say False.
    single_cpu_thread: ClassVar[bool] = True
    # Whether it draws continuous series of any length (sample.length): one long series, or
    # long panel entities; checked before any fit.
    continuous_path: ClassVar[bool] = False
    # Raised when a saved model of this class no longer loads (new layers, new inputs): part
    # of the fit cache key, so an upgrade refits instead of failing on an old cached model.
    model_version: ClassVar[int] = 1
    # Trains with DP-SGD when given `privacy` (generators/private.py). False refuses it
    # before any fit: a generator that cannot bound what it learns must not claim an ε.
    supports_privacy: ClassVar[bool] = False

    def __init__(self, *, device: str = "auto", privacy: PrivacySpec | dict | None = None, **params: Any) -> None:
        try:
            self.params = self.Params(**params)
        except ValidationError as err:
            fields = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors())
            allowed = ", ".join(self.Params.model_fields) or "none"
            raise BadInputError(
                f"generator.params for {self.name}: {fields} (allowed parameters: {allowed})"
            ) from None
        self.device = device
        self.privacy = PrivacySpec.model_validate(privacy) if privacy is not None else None
        if self.privacy is not None and not self.supports_privacy:
            from generators.registry import available, get  # lazy: the registry imports this module

            private = ", ".join(n for n in available() if n.startswith(self.modality) and get(n).supports_privacy)
            raise BadInputError(
                f"generator.privacy: {self.name} does not train with differential privacy, so no ε can be "
                f"stated for it; {'use ' + private if private else 'no ' + self.modality + ' generator does yet'}, "
                "or remove generator.privacy"
            )
        if self.privacy is not None and getattr(self.params, "time_budget_s", None) is not None:
            raise BadInputError(
                "generator.params.time_budget_s cannot bound a private fit: the noise is solved for a step "
                "count known before training; set params.steps instead (or remove generator.privacy)"
            )
        self.fitted_ = False
        self.condition_values_: dict[str, list[Any]] = {}
        # What a private fit spent (generators.private.PrivacySpent as a dict); None without privacy.
        self.privacy_spent_: dict[str, Any] | None = None

    @property
    def name(self) -> str:
        return f"{self.modality}/{self.family}"

    # ---- public API -----------------------------------------------------------------

    def fit(self, data: SourceData, *, progress: Progress | None = None) -> "Generator":
        """Learn from `data`; returns self."""
        if data.modality != self.modality:
            raise BadInputError(f"{self.name} fits {self.modality} data, got {data.modality}")
        with self._thread_policy(), seeded(self.params.seed, resolve_device(self.device)):
            self._fit(data, progress=progress or silent)
        self.fitted_ = True
        return self

    def sample(
        self, n: int, *, seed: int, conditions: dict[str, Any] | None = None, batch_size: int = 10_000
    ) -> Iterator[Batch]:
        """Yield `n` records (rows, sequences or images) in chunks of `batch_size`."""
        if n <= 0:
            raise BadInputError(f"sample.rows must be > 0, got {n}")
        for chunk in plan_chunks(n, batch_size, seed=seed):
            yield self.sample_chunk(chunk, conditions=conditions)

    def sample_chunk(self, chunk: Chunk, *, conditions: dict[str, Any] | None = None, length: int | None = None,
                     given: GivenPath | None = None) -> Batch:
        """One chunk of a request's plan: what `sample` yields at that position. Shards
        call this directly, so any worker can draw any chunk. A `length` (sample.length)
        asks for continuous series of that many steps: one long series from a source cut
        into windows, `chunk.size` entities from a panel; `given` (a history to continue,
        covariate paths) fixes some of a long series' values."""
        self._check_fitted()
        self.check_conditions(conditions)
        if given is not None and length is None:
            raise BadInputError("a given history or covariate path needs a length (sample.length)")
        if length is not None and not self.continuous_path:
            raise BadInputError(f"{self.name} cannot generate one long series (sample.length); "
                                "use timeseries/diffusion, or sample.rows windows")
        with self._thread_policy():
            if length is not None:
                return self._sample_path(chunk.size, length, seed=chunk.seed, conditions=conditions or None,
                                         offset=chunk.offset, given=given)
            return self._sample_chunk(chunk.size, seed=chunk.seed, conditions=conditions or None, offset=chunk.offset)

    def conditionable(self, data: SourceData) -> dict[str, list[Any]]:
        """Per column a condition may name once fitted on `data`, the values seen: known
        before the fit, so that preflight refuses any other condition without fitting."""
        return data.conditionable()

    def check_conditions(self, conditions: dict[str, Any] | None) -> None:
        """Refuse conditions on columns the generator cannot condition on, or values it never saw."""
        check_conditions(conditions, self.condition_values_, who=self.name)

    def save(self, path: str | Path) -> None:
        """A folder with `config.json` (name, params, fitted transforms) and `weights.pt`
        (plain tensors): loading it never runs code."""
        self._check_fitted()
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        state, tensors = self._export()
        config = {
            "generator": self.name,
            "params": self.params.model_dump(mode="json"),
            "device": self.device,
            "privacy": self.privacy.model_dump(mode="json") if self.privacy is not None else None,
            "privacy_spent": self.privacy_spent_,
            "condition_values": self.condition_values_,
            "state": state,
        }
        (path / CONFIG_FILE).write_text(json.dumps(config, indent=2, default=_json_default))
        torch.save(tensors, path / WEIGHTS_FILE)

    @classmethod
    def load(cls, path: str | Path) -> "Generator":
        """Rebuild a fitted generator saved by `save`, with `torch.load(weights_only=True)`."""
        path = Path(path)
        config = json.loads((path / CONFIG_FILE).read_text())
        if config["generator"] != f"{cls.modality}/{cls.family}":
            raise BadInputError(f"{path} holds a {config['generator']} checkpoint, not {cls.modality}/{cls.family}")
        try:
            tensors = torch.load(path / WEIGHTS_FILE, weights_only=True, map_location="cpu")
        except Exception as err:  # torch raises UnpicklingError for anything but plain data
            raise UnsafeCheckpointError(f"{path / WEIGHTS_FILE} is not a plain-tensor checkpoint: {err}") from None
        model = cls(device=config.get("device", "auto"), privacy=config.get("privacy"), **config["params"])
        model.condition_values_ = config.get("condition_values", {})
        model.privacy_spent_ = config.get("privacy_spent")
        model._restore(config["state"], tensors)
        model.fitted_ = True
        return model

    # ---- what a subclass implements ---------------------------------------------------

    @abstractmethod
    def _fit(self, data: SourceData, *, progress: Progress) -> None: ...

    @abstractmethod
    def _sample_chunk(self, n: int, *, seed: int, conditions: dict[str, Any] | None, offset: int) -> Batch:
        """Draw `n` records with `seed`. `offset` is the index of the first record in the
        whole request (time series use it for unique entity ids)."""

    def _sample_path(self, n: int, length: int, *, seed: int, conditions: dict[str, Any] | None, offset: int,
                     given: GivenPath | None = None) -> Batch:
        """Continuous series of `length` steps keeping `given`: one long series, or `n`
        entities of a panel; only where `continuous_path` is True."""
        raise NotImplementedError

    @abstractmethod
    def _export(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """(JSON-able fitted state, dict of tensors / state_dicts) for `save`."""

    @abstractmethod
    def _restore(self, state: dict[str, Any], tensors: dict[str, Any]) -> None:
        """Inverse of `_export`."""

    def _thread_policy(self) -> contextlib.AbstractContextManager:
        return thread_policy(resolve_device(self.device), single=self.single_cpu_thread)

    def _check_fitted(self) -> None:
        if not self.fitted_:
            raise NotFittedError(f"{self.name} is not fitted: call fit(data) first")


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def load_generator(path: str | Path) -> Generator:
    """Load any saved generator: `config.json` names its registered class."""
    from generators.registry import get

    config_path = Path(path) / CONFIG_FILE
    if not config_path.is_file():
        raise BadInputError(f"no generator checkpoint at {path} (missing {CONFIG_FILE})")
    name = json.loads(config_path.read_text())["generator"]
    return get(name).load(path)
