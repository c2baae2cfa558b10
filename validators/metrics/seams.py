"""Seams of a generated long series (`sample.length`): one series drawn window after
window is continuous only if nothing changes where one draw hands over to the next.

Two checks, each read against the same statistic with no seam at all:
- the discriminative judge (`timeseries.discriminative_score`) on pieces of the path
  centred on seams against pieces centred between them; its floor is the judge on
  pieces between seams split in two (alternate blocks);
- the mean squared change over 1..`max_lag` steps of pairs that cross a seam against
  pairs that do not (the autocorrelation at those lags, as a variogram): a jump or a
  reset at a seam shows as a ratio far from 1."""

from __future__ import annotations

import numpy as np

from validators.metrics.timeseries import discriminative_score

# Calibrated on sunspots, 2400-step paths of one model (default parameters), seeds 0-3
# (tests/unit/test_timeseries_long.py, bench/timeseries.py): continued by diffusion, the
# increment gap was 0.21-0.74 (the same statistic at seams shifted half a hop: 0.05-0.34,
# so a small seam remains); the same model's windows drawn independently and concatenated,
# 2.2-3.5. The judge scored 0.06 against a floor of 0.07 on a continued path.
SEAM_INCREMENT_TOLERANCE = 1.25  # between the two: continued paths pass, concatenated windows fail
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


def seam_increment_gap(path: np.ndarray, seams: np.ndarray, max_lag: int) -> float:
    """Largest |mean squared change over `lag` steps across a seam / the same not across
    one - 1| over lags 1..max_lag and dimensions (the variogram, i.e. the autocorrelation
    1 - gamma / (2 var), of crossing pairs against the rest): 0 when a seam changes nothing;
    a jump at seams makes it large."""
    before = np.searchsorted(seams, np.arange(len(path)), side="right")  # seams at or before each step
    gaps = []
    for lag in range(1, max_lag + 1):
        change = (path[lag:] - path[:-lag]) ** 2
        crossing = before[lag:] != before[:-lag]
        if crossing.any() and (~crossing).any():
            gaps.append(np.abs(change[crossing].mean(0) / np.maximum(change[~crossing].mean(0), 1e-12) - 1).max())
    return float(max(gaps)) if gaps else float("nan")


def seam_check(path: np.ndarray, seams: np.ndarray, width: int, max_lag: int, *, seed: int = 0) -> dict[str, float | bool]:
    """Both checks and their verdict: `continuous` when the increment gap is within
    SEAM_INCREMENT_TOLERANCE and the judge within SEAM_JUDGE_MARGIN of its floor."""
    judge, floor = seam_discriminative(path, seams, width, seed=seed)
    gap = seam_increment_gap(path, seams, max_lag)
    return {"seam_discriminative": judge, "seam_discriminative_floor": floor, "seam_increment_gap": gap,
            "continuous": bool(gap <= SEAM_INCREMENT_TOLERANCE and judge <= floor + SEAM_JUDGE_MARGIN)}
