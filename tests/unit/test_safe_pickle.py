"""The allowlisting unpickler: real data objects load, crafted checkpoints are refused
before any of their code runs."""

from __future__ import annotations

import io
import os
import pickle
import random
import sys

import numpy as np
import pandas as pd
import pytest
import torch

from generators import safe_pickle
from pipeline.core.errors import BadInputError, UnsafeCheckpointError


class _RunsShell:
    """A classic exploit: unpickling it calls os.system."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


class _ReachesMethod:
    """Rebuilt through getattr on an object whose methods are not allowlisted."""

    def __reduce__(self):
        return getattr, (random.Random(0), "seed")


class _NestedStorage:
    """A torch storage whose embedded bytes are themselves a malicious pickle."""

    def __init__(self, payload: bytes) -> None:
        self.payload = payload

    def __reduce__(self):
        from torch.storage import _load_from_bytes

        return _load_from_bytes, (self.payload,)


class _CallsDataClass:
    """Calls an allowlisted class: Faker's constructor imports every provider module it is
    given, here `this` (which prints the Zen of Python when imported)."""

    def __reduce__(self):
        from faker.proxy import Faker

        return Faker, ("en_US", ["this"])


def _global(module: str, name: str) -> bytes:
    """A protocol-4 pickle that does nothing but ask for `module.name`."""
    enc = lambda s: b"\x8c" + bytes([len(s)]) + s.encode()  # noqa: E731 - SHORT_BINUNICODE
    return b"\x80\x04" + enc(module) + enc(name) + b"\x93."


def test_data_objects_round_trip(tmp_path):
    layer = torch.nn.Linear(3, 2)
    obj = {
        "frame": pd.DataFrame({"a": [1, 2], "b": ["x", None], "t": pd.to_datetime(["2020-01-01", "2021-06-30"])}),
        "array": np.arange(6.0).reshape(2, 3),
        "rng": np.random.RandomState(4),
        "layer": layer,
    }
    safe_pickle.dump(obj, tmp_path / "ok.pkl")
    back = safe_pickle.load(tmp_path / "ok.pkl")
    pd.testing.assert_frame_equal(back["frame"], obj["frame"])
    np.testing.assert_array_equal(back["array"], obj["array"])
    assert back["rng"].randint(1000) == np.random.RandomState(4).randint(1000)
    x = torch.ones(1, 3)
    assert torch.equal(back["layer"](x), layer(x))


def test_os_system_payload_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(pickle.dumps(_RunsShell(f"touch {marker}")))

    with pytest.raises(UnsafeCheckpointError, match=r"system"):
        safe_pickle.load(evil)
    assert not marker.exists()

    # The file is a working exploit: plain pickle runs it.
    with open(evil, "rb") as f:
        pickle.load(f)
    assert marker.exists()


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("os", "system"),
        ("posix", "system"),
        ("subprocess", "Popen"),
        ("builtins", "eval"),
        ("builtins", "exec"),
        ("builtins", "__import__"),
        ("builtins", "open"),
        ("pandas", "read_pickle"),
        ("pandas.io.pickle", "read_pickle"),
        ("pandas.core.computation.eval", "eval"),
        ("numpy", "load"),
        ("torch", "load"),
        ("torch.serialization", "load"),
        ("sdv.utils.utils", "load_synthesizer"),  # a function inside an allowed library
        ("ctgan.synthesizers.base", "BaseSynthesizer.load"),  # a dotted name reaching into a class
        ("sdvx", "Anything"),  # a prefix look-alike
    ],
)
def test_globals_outside_the_allowlist_are_refused(tmp_path, module, name):
    path = tmp_path / "g.pkl"
    path.write_bytes(_global(module, name))
    with pytest.raises(UnsafeCheckpointError, match=rf"{module}\.{name}"):
        safe_pickle.load(path)


def test_getattr_only_reaches_allowlisted_methods(tmp_path):
    path = tmp_path / "m.pkl"
    path.write_bytes(pickle.dumps(_ReachesMethod()))
    with pytest.raises(UnsafeCheckpointError, match=r"random\.Random, 'seed'"):
        safe_pickle.load(path)


def test_data_classes_are_rebuilt_never_called(tmp_path, capsys):
    path = tmp_path / "c.pkl"
    path.write_bytes(pickle.dumps(_CallsDataClass()))
    with pytest.raises(UnsafeCheckpointError, match=r"call faker\.proxy\.Faker"):
        safe_pickle.load(path)
    assert "this" not in sys.modules
    assert "Zen of Python" not in capsys.readouterr().out


def test_torch_storage_bytes_are_loaded_weights_only(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "s.pkl"
    path.write_bytes(pickle.dumps(_NestedStorage(pickle.dumps(_RunsShell(f"touch {marker}")))))
    with pytest.raises(UnsafeCheckpointError, match="torch storage"):
        safe_pickle.load(path)
    assert not marker.exists()


def test_corrupt_and_missing_files_are_clear_errors(tmp_path):
    path = tmp_path / "cut.pkl"
    path.write_bytes(pickle.dumps({"a": np.arange(100)})[:40])
    with pytest.raises(BadInputError, match="corrupt or truncated"):
        safe_pickle.load(path)
    with pytest.raises(BadInputError, match="missing"):
        safe_pickle.load(tmp_path / "absent.pkl")


def test_dump_writes_what_plain_pickle_reads(tmp_path):
    safe_pickle.dump({"k": [1, 2]}, tmp_path / "p.pkl")
    assert pickle.load(io.BytesIO((tmp_path / "p.pkl").read_bytes())) == {"k": [1, 2]}
