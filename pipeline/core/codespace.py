"""Values as numbers of a mixed-radix space (per position, its options), and the affine
bijection that spreads row numbers over such a space: the one mechanism behind fresh
ids (`identifiers`) and fake PII values (`pii`)."""

from __future__ import annotations

from collections.abc import Sequence
from math import gcd, prod

# Multiplier of the bijection (a large odd number; made coprime with the space at use),
# so consecutive rows land far apart in the space.
SPREAD = 0x9E3779B97F4A7C15


def size(positions: Sequence[Sequence[str]]) -> int:
    """How many values the space holds."""
    return prod(len(options) for options in positions)


def decode(number: int, positions: Sequence[Sequence[str]]) -> str:
    """The value numbered `number` (the last position varies fastest)."""
    out = []
    for options in reversed(positions):
        number, digit = divmod(number, len(options))
        out.append(options[digit])
    return "".join(reversed(out))


def multiplier(space: int) -> int:
    """The bijection's multiplier for a space of `space` values: SPREAD made coprime with it."""
    a = SPREAD % space or 1
    while gcd(a, space) != 1:
        a += 1
    return a
