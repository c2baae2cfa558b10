"""The generator registry: a dict keyed "modality/family", filled by `@register`
for built-ins and by the `synthpipe.generators` entry-point group for plugins."""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Callable, TypeVar

from pipeline.core.errors import UnknownGeneratorError

if TYPE_CHECKING:
    from generators.base import Generator

G = TypeVar("G", bound="type[Generator]")

_REGISTRY: dict[str, "type[Generator]"] = {}
_loaded = False

# Modules whose import registers the built-in generators. SDV-backed modules import
# SDV only inside their methods, so listing them here costs nothing.
BUILTIN_MODULES = (
    "generators.tabular.sdv",  # tabular/copula, tabular/gan, tabular/vae (SDV)
    "generators.tabular.diffusion",  # tabular/diffusion
    "generators.timeseries.gan",
    "generators.timeseries.vae",
    "generators.timeseries.diffusion",
    "generators.timeseries.par",  # timeseries/par (SDV)
    "generators.image.gan",
    "generators.image.vae",
    "generators.image.diffusion",
)


def register(name: str) -> Callable[[G], G]:
    """Class decorator: `@register("tabular/diffusion")`."""
    modality, _, family = name.partition("/")
    if not modality or not family:
        raise ValueError(f"generator names are 'modality/family', got {name!r}")

    def deco(cls: G) -> G:
        cls.modality, cls.family = modality, family
        _REGISTRY[name] = cls
        return cls

    return deco


def _load() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for module in BUILTIN_MODULES:
        importlib.import_module(module)
    for ep in entry_points(group="synthpipe.generators"):
        if ep.name not in _REGISTRY:
            _REGISTRY[ep.name] = ep.load()


def available() -> list[str]:
    """Every registered "modality/family" name, sorted."""
    _load()
    return sorted(_REGISTRY)


def families(modality: str) -> list[str]:
    """Family names registered for one modality."""
    return [n.split("/", 1)[1] for n in available() if n.startswith(modality + "/")]


def get(name: str) -> "type[Generator]":
    """The generator class registered as `name`; a clear error lists what exists."""
    _load()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownGeneratorError(
            f"unknown generator {name!r}; available: {', '.join(available())}"
        ) from None
