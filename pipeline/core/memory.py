"""Handing freed memory back to the operating system between the steps of a big run.

glibc keeps what Python, numpy and pandas free in its heaps (one arena per thread that
ever allocated), so a process's resident memory only grows: on a 1 M-row run the
profile pass left ~95 MB and the fit ~120 MB resident that nothing used, and every
later step's peak stood on top of it. `release()` collects garbage and asks glibc to
return free pages (`malloc_trim`); elsewhere (macOS, musl) it only collects."""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
from functools import cache


@cache
def _malloc_trim():
    """glibc's `malloc_trim`, or None where the C library has none."""
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or None).malloc_trim
    except (OSError, AttributeError):
        return None


def release() -> None:
    """Free unreachable objects and return free heap pages to the OS (after a step that
    held hundreds of MB: a profile pass, a fit, a sampled part, a contract shard)."""
    gc.collect()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
