"""Pickle checkpoints that load without running arbitrary code.

SDV synthesizers can only be saved as pickles, and unpickling calls whatever callable
the file names: a crafted checkpoint can run `os.system`. `load` therefore uses an
unpickler with two allowlists:

- *callables* (`CALLABLE_GLOBALS`): the reconstruction functions and plain types a pickle
  may call (numpy arrays and RNG states, pandas blocks and indexes, torch tensors, a few
  builtins), plus two guarded stand-ins: torch storages reload with
  `torch.load(weights_only=True)` (torch's own pickled form would call
  `torch.load(weights_only=False)`), and `getattr` (how pickle rebuilds bound methods)
  only returns the few methods listed in `BOUND_METHODS`;
- *rebuildable classes* (`CLASS_MODULE_PREFIXES`): classes, never functions, of the data
  libraries a fitted SDV synthesizer is made of (sdv, rdt, copulas, ctgan, deepecho, faker,
  scikit-learn, scipy.stats, pandas' containers, torch's `nn` layers). These are only
  rebuilt (created empty by `__new__`, then their state restored), never called: calling
  a class runs its `__init__`, and e.g. `faker.Faker(providers=[...])` imports any module
  it is given.

Everything else (os, subprocess, builtins.eval/exec/__import__, pandas.read_pickle,
numpy.load, torch.load, dotted names that reach into a class, calls to a class) raises
`UnsafeCheckpointError` naming the refused global before it is called. What does run is
allowlisted library code: the `__new__` / `__setstate__` of those classes.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any, Callable

from pipeline.core.errors import BadInputError, UnsafeCheckpointError

PROTOCOL = 5

# Libraries whose classes a fitted SDV synthesizer is made of. Package prefixes end with
# "." so "sdv." never matches a module named e.g. "sdvx"; pandas is limited to its data
# containers (not pandas.core.computation, which evaluates expressions).
CLASS_MODULE_PREFIXES = (
    "sdv.",
    "rdt.",
    "copulas.",
    "ctgan.",
    "deepecho.",
    "faker.",
    "sklearn.",
    "scipy.stats.",
    "pandas.core.frame",
    "pandas.core.series",
    "pandas.core.indexes.",
    "pandas.core.internals.",
    "pandas.core.arrays.",
    "pandas.core.dtypes.",
    "torch.nn.modules.",
)

# Reconstruction functions and plain types a pickle may call, by exact (module, name).
CALLABLE_GLOBALS = {
    ("builtins", "object"),
    ("builtins", "slice"),
    ("builtins", "set"),
    ("builtins", "frozenset"),
    ("builtins", "complex"),
    ("builtins", "range"),
    ("builtins", "bytearray"),
    ("collections", "OrderedDict"),
    ("collections", "defaultdict"),
    ("datetime", "date"),
    ("datetime", "datetime"),
    ("datetime", "timedelta"),
    ("datetime", "timezone"),
    ("random", "Random"),
    ("numpy", "dtype"),
    ("numpy", "ndarray"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy.random._pickle", "__randomstate_ctor"),
    ("numpy.random._pickle", "__bit_generator_ctor"),
    ("numpy.random._pickle", "__generator_ctor"),
    ("numpy.random._mt19937", "MT19937"),
    ("numpy.random._pcg64", "PCG64"),
    ("numpy.random.bit_generator", "SeedSequence"),
    ("numpy.random.bit_generator", "__pyx_unpickle_SeedSequence"),
    ("pandas._libs.internals", "_unpickle_block"),
    ("pandas._libs.arrays", "__pyx_unpickle_NDArrayBacked"),
    ("pandas.core.indexes.base", "_new_Index"),
    ("pandas.core.internals.managers", "BlockManager"),
    ("pandas._libs.tslibs.timestamps", "_unpickle_timestamp"),
    ("pandas._libs.tslibs.timedeltas", "_timedelta_unpickle"),
    ("pandas._libs.tslibs.nattype", "__nat_unpickle"),
    ("pandas._libs.tslibs.offsets", "_unpickle_offset"),
    ("torch", "device"),
    ("torch", "Size"),
    ("torch._utils", "_rebuild_tensor_v2"),
    ("torch._utils", "_rebuild_parameter"),
}


def _storage_from_bytes(data: bytes) -> Any:
    """Stand-in for `torch.storage._load_from_bytes`, which unpickles with weights_only=False."""
    import torch

    try:
        return torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")
    except pickle.UnpicklingError as err:  # torch's allowlist refused what the storage holds
        reason = str(err).splitlines()[0]
        raise UnsafeCheckpointError(
            f"checkpoint refused: an embedded torch storage is not plain tensor data ({reason})"
        ) from None


# Bound methods a synthesizer keeps, by the module of their object's class: Faker's
# generator holds its providers' public methods; copulas' univariates fitted to a constant
# column hold their `_constant_*` stand-ins.
BOUND_METHODS: dict[str, Callable[[str], bool]] = {
    "faker.providers.": lambda name: not name.startswith("_"),
    "copulas.univariate.": lambda name: name.startswith("_constant_"),
}


def _bound_method(obj: Any, name: str) -> Any:
    """Stand-in for `getattr`, which pickle uses to rebuild bound methods: only methods of
    the classes and names in `BOUND_METHODS` are returned."""
    cls = type(obj)
    allowed = next((ok for prefix, ok in BOUND_METHODS.items() if cls.__module__.startswith(prefix)), None)
    if allowed is None or not allowed(name) or not callable(getattr(cls, name, None)):
        raise UnsafeCheckpointError(
            f"checkpoint refused: getattr({cls.__module__}.{cls.__name__}, {name!r}) is not an allowed method"
        )
    return getattr(obj, name)


REPLACEMENTS: dict[tuple[str, str], Callable[..., Any]] = {
    ("torch.storage", "_load_from_bytes"): _storage_from_bytes,
    ("builtins", "getattr"): _bound_method,
}


class RestrictedUnpickler(pickle._Unpickler):
    """The pure-Python unpickler with `find_class` limited to the allowlists and every
    call (REDUCE) limited to `CALLABLE_GLOBALS`; protocol 0/1 instantiation (INST, OBJ),
    which calls classes, is refused outright (synthpipe writes protocol 5)."""

    dispatch = dict(pickle._Unpickler.dispatch)

    def __init__(self, file: Any) -> None:
        super().__init__(file)
        self._callables: dict[int, str] = {}  # id -> "module.name" of what REDUCE may call

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in REPLACEMENTS:
            found = REPLACEMENTS[module, name]
            self._callables[id(found)] = f"{module}.{name}"
            return found
        if (module, name) in CALLABLE_GLOBALS:
            found = super().find_class(module, name)
            self._callables[id(found)] = f"{module}.{name}"
            return found
        if "." not in name and module.startswith(CLASS_MODULE_PREFIXES):
            found = super().find_class(module, name)
            if isinstance(found, type):
                return found
        if module == "torch" and "." not in name:
            import torch

            found = getattr(torch, name, None)
            if isinstance(found, torch.dtype):  # dtypes pickle as torch.<name>
                return found
        raise UnsafeCheckpointError(
            f"checkpoint refused: it asks to load {module}.{name}, which is not on the allowlist "
            "of data classes; only load checkpoints written by synthpipe"
        )

    def _load_reduce(self) -> None:
        func = self.stack[-2]
        if id(func) not in self._callables:
            what = f"{getattr(func, '__module__', '?')}.{getattr(func, '__qualname__', type(func).__name__)}"
            raise UnsafeCheckpointError(
                f"checkpoint refused: it asks to call {what}; data classes are only rebuilt, never called"
            )
        super().load_reduce()

    def _refuse_instantiation(self) -> None:
        raise UnsafeCheckpointError("checkpoint refused: it instantiates a class by calling it (pickle INST/OBJ)")

    dispatch[pickle.REDUCE[0]] = _load_reduce
    dispatch[pickle.INST[0]] = _refuse_instantiation
    dispatch[pickle.OBJ[0]] = _refuse_instantiation

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafeCheckpointError("checkpoint refused: it uses persistent ids, which synthpipe never writes")


def dump(obj: Any, path: str | Path) -> None:
    """Pickle `obj` to `path` (what `load` reads back)."""
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=PROTOCOL)


def load(path: str | Path) -> Any:
    """Unpickle `path` through the allowlist; refused or corrupt files raise a clear error."""
    path = Path(path)
    if not path.is_file():
        raise BadInputError(f"checkpoint file missing: {path}; save the generator again")
    with open(path, "rb") as f:
        try:
            return RestrictedUnpickler(f).load()
        except UnsafeCheckpointError as err:
            raise UnsafeCheckpointError(f"{path}: {err}") from None
        except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, IndexError) as err:
            raise BadInputError(
                f"checkpoint {path} is corrupt or truncated ({err}); save the generator again"
            ) from None
