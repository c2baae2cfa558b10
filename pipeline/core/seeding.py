"""Seeding, in one place: every fit and every chunk draws from its own seeded torch
generator or a forked global state, so results depend on the seed alone and nothing
is left changed behind the caller."""

from __future__ import annotations

import contextlib
import random
from typing import Iterator

import numpy as np
import torch


@contextlib.contextmanager
def seeded(seed: int, device: torch.device | None = None) -> Iterator[None]:
    """Seed Python's, numpy's and torch's global RNGs (CPU, and `device` when it is a
    GPU) for the block, then put the caller's states back. For code that draws from
    the global generators (weight initialisation, SDV's training)."""
    py_state, np_state = random.getstate(), np.random.get_state()
    devices = [device] if device is not None and device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        random.seed(seed)
        np.random.seed(seed % 2**32)
        torch.manual_seed(seed)
        try:
            yield
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)


def torch_generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A torch generator of its own, seeded: for sampling noise and minibatch order."""
    return torch.Generator(device=device).manual_seed(seed)
