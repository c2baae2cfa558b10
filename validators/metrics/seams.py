"""Seams of a generated long series (`sample.length`): one series drawn window after
window is continuous only if nothing changes where one draw hands over to the next.

Two checks, each read against the same statistic with no seam at all:
- the discriminative judge (`timeseries.discriminative_score`) on pieces of the path
  centred on seams against pieces centred between them; its floor is the judge on
  pieces between seams split in two (alternate blocks);
- the lagged correlation of step pairs that cross a seam against pairs that do not,
  lags 1..`max_lag`: a jump or a reset at a seam shows as a gap between the two."""

from __future__ import annotations

import numpy as np

from validators.metrics.timeseries import discriminative_score

# Calibrated on sunspots (tests/unit/test_timeseries_long.py, bench/timeseries.py): windows
# continued by diffusion scored 0.04 on both checks; the same windows drawn independently
# and concatenated scored 0.83 (correlation gap) and 0.16-0.21 against floors of 0.01-0.03.
SEAM_CORRELATION_TOLERANCE = 0.15  # largest crossing-vs-not correlation gap of a continuous path
SEAM_JUDGE_MARGIN = 0.08  # the judge may beat its floor by this much (about 3 sd of its noise at 200 seams)


def seam_pieces(path: np.ndarray, seams: np.ndarray, width: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(straddling, inside): `width`-step pieces of `path` (steps, dims) centred on each
    seam, and centred half-way between consecutive seams (pieces off the path dropped)."""
    half = width // 2
    middles = (seams[:-1] + seams[1:]) // 2

    def pieces(centres: np.ndarray) -> list[np.ndarray]:
        return [path[c - half : c - half + width] for c in centres if c - half >= 0 and c - half + width <= len(path)]

    return pieces(seams), pieces(middles)


def seam_discriminative(path: np.ndarray, seams: np.ndarray, width: int, *, seed: int = 0) -> tuple[float, float]:
    """(score, floor): the judge on straddling vs inside pieces, and on inside pieces of
    even vs odd blocks (what no difference scores with this many pieces)."""
    straddling, inside = seam_pieces(path, seams, width)
    return (discriminative_score(inside, straddling, seed=seed),
            discriminative_score(inside[0::2], inside[1::2], seed=seed))


def seam_autocorrelation_gap(path: np.ndarray, seams: np.ndarray, max_lag: int) -> float:
    """Largest |correlation of (t, t + lag) pairs crossing a seam - of pairs not crossing
    one| over lags 1..max_lag and dimensions, values standardised over the whole path."""
    z = (path - path.mean(0)) / np.where(path.std(0) > 0, path.std(0), 1)
    before = np.searchsorted(seams, np.arange(len(path)), side="right")  # seams at or before each step
    gaps = []
    for lag in range(1, max_lag + 1):
        products = z[:-lag] * z[lag:]
        crossing = before[lag:] != before[:-lag]
        if crossing.any() and (~crossing).any():
            gaps.append(np.abs(products[crossing].mean(0) - products[~crossing].mean(0)).max())
    return float(max(gaps)) if gaps else float("nan")


def seam_check(path: np.ndarray, seams: np.ndarray, width: int, max_lag: int, *, seed: int = 0) -> dict[str, float | bool]:
    """Both checks and their verdict: `continuous` when the correlation gap is within
    SEAM_CORRELATION_TOLERANCE and the judge within SEAM_JUDGE_MARGIN of its floor."""
    judge, floor = seam_discriminative(path, seams, width, seed=seed)
    gap = seam_autocorrelation_gap(path, seams, max_lag)
    return {"seam_discriminative": judge, "seam_discriminative_floor": floor, "seam_correlation_gap": gap,
            "continuous": bool(gap <= SEAM_CORRELATION_TOLERANCE and judge <= floor + SEAM_JUDGE_MARGIN)}
