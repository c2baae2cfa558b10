"""Generator plugins, one module per model family and modality, in a registry keyed
"modality/family": `generators.get(name)`, `generators.available()`."""

from generators.base import Generator, load_generator
from generators.registry import available, families, get, register

__all__ = ["Generator", "available", "families", "get", "load_generator", "register"]
