"""Marginal calibration: after training, make the model's one-column marginals the source's.

A short-trained diffusion model sampled with a few deterministic DDIM steps is
under-dispersed: measured on AER/CreditCard, ISLR/Wage and openintro loans, its
quantile-normal channels came out with a standard deviation below 1, which the
inverse quantile map turns into money and duration columns with 0.67-0.85 of the
source's spread and maxima halved; one-hot choices drift toward common classes (rare
missing values and categories thinned). Both are biases of the whole sampler, so they
are measured once on a calibration sample drawn at the end of the fit and undone at
sampling:

- each continuous channel is passed through the monotone map that sends the
  calibration sample's quantiles onto the training matrix's (quantile mapping, as
  climate-model bias correction does). Ranks, and with them the learned dependence
  between columns, are unchanged; the extremes go back to the source's;
- each one-hot span's scores get a per-class log-prior shift, fitted so that the
  calibration sample's class shares match the training matrix's.

The state is three plain arrays, saved as tensors.
"""

from __future__ import annotations

import numpy as np
import torch

# Quantile levels of each continuous channel's map: evenly spaced for the body, plus the
# rank of each of the source's TAIL_RANKS smallest and largest rows. With even levels alone
# the generated top 0.1 % was spread linearly between the source's 99.9th percentile and its
# maximum, far apart on a skewed column: CPS1988 wages came out with 1.40x the source's
# standard deviation (a few dozen rows near the maximum); mapped onto the source's own top
# order statistics, the extremes are the source's.
LEVELS = 1001
TAIL_RANKS = 200
# Prior shifts are kept within this (log scale). The sampler's last step is confident
# (CreditCard after 60 epochs: log-gaps of 10-20 between a row's classes), so shares move
# only once a shift crosses those gaps. Conditioned spans are never shifted. The scores are
# the sampler's log-probabilities: from its ±1 scores (2p - 1 in float32) every class under
# p = 3e-8 tied at one floor, and a shift moved all such rows at once (CPS1988 `education`,
# 19 classes: a 0.2 % class came out at 1.9 %, a 0.07 % one at 0).
MAX_SHIFT = 30.0
_ROUNDS = 80  # fixed-point rounds of the prior shift (each moves it by log(target / share))
# Stop once every class share is within 0.002 of the source's and within 5 % of it (plus one
# row): the absolute bound alone let the rare classes that make a numeric column's tails be
# off by several times.
_SETTLED, _SETTLED_SHARE = 0.002, 0.05
_TEMPERATURES = (1.0, 0.3, 0.1, 0.03)  # of the entropic dual, annealed towards the argmax
# Dual evaluations per temperature (L-BFGS); a 19-class span settles well within them. Known
# cost: the dual dominates on wide spans. Stat2Data/Hawks' 907- and 308-class spans of 20,000 rows
# took 34 and 13 CPU s (45 and 16 with the numpy dual, same run; a loaded machine), and the
# 907-class one ends out of tolerance either way (1.4x): its fit is still dearer than before the dual.
_DUAL_ITERATIONS = 30


def quantile_levels(n: int) -> np.ndarray:
    """Even levels, plus the exact rank levels k / (n - 1) of the first and last
    TAIL_RANKS of `n` sorted rows (np.quantile's linear rule returns those rows there)."""
    ranks = np.arange(min(TAIL_RANKS, n))
    tails = np.concatenate([ranks, n - 1 - ranks]) / max(n - 1, 1)
    return np.unique(np.concatenate([np.linspace(0, 1, LEVELS), tails]))


def _off(scores: np.ndarray, shift: np.ndarray, target: np.ndarray, tolerance: np.ndarray) -> float:
    """How far the argmax shares of `scores + shift` are from `target`, in units of `tolerance`."""
    share = np.bincount((scores + shift).argmax(axis=1), minlength=len(target)) / len(scores)
    return float(np.max(np.abs(share - target) / tolerance))


def _dual(shift: np.ndarray, scores: torch.Tensor, target: np.ndarray, tau: float) -> tuple[float, np.ndarray]:
    """Entropic dual of matching argmax shares (semi-discrete optimal transport): convex in
    `shift`, its gradient the softmax(./tau) shares minus `target`. `scores`: float64 torch,
    in place where it can (4x numpy's cost on a 907-class span of 20,000 rows; the same sums)."""
    z = (scores + torch.from_numpy(shift)).div_(tau)
    top = z.amax(dim=1, keepdim=True)
    e = z.sub_(top).exp_()
    total = e.sum(dim=1)
    value = tau * float((total.log() + top[:, 0]).mean()) - float(target @ shift)
    return value, torch.mv(e.T, 1 / total).div_(len(e)).numpy() - target


def _class_shift(scores: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Per-class log-prior shift whose argmax shares of `scores` match `target`. Fixed-point
    steps first (enough for most spans); where they do not settle, the entropic dual at falling
    temperatures (L-BFGS), the best shift seen kept. Fixed-point steps alone oscillated on
    CPS1988 `education` (rows near-tied between classes move together): a 0.3 % year at 0.14 %."""
    from scipy.optimize import minimize

    floor = 1 / len(scores)
    tolerance = np.minimum(_SETTLED, _SETTLED_SHARE * target) + floor
    shift = np.zeros(len(target))
    best, best_shift = np.inf, shift
    for _ in range(_ROUNDS):
        share = np.bincount((scores + shift).argmax(axis=1), minlength=len(target)) / len(scores)
        off = float(np.max(np.abs(share - target) / tolerance))
        if off < best:
            best, best_shift = off, shift.copy()
        if off <= 1:
            return best_shift
        shift = np.clip(shift + np.log((target + floor) / (share + floor)), -MAX_SHIFT, MAX_SHIFT)
    shift, exact = best_shift, torch.from_numpy(scores).double()
    for tau in _TEMPERATURES:
        shift = minimize(_dual, shift, args=(exact, target, tau), jac=True, method="L-BFGS-B",
                         bounds=[(-MAX_SHIFT, MAX_SHIFT)] * len(target), options={"maxfun": _DUAL_ITERATIONS}).x
        off = _off(scores, shift, target, tolerance)
        if off < best:
            best, best_shift = off, shift.copy()
        if off <= 1:  # within tolerance, checked on the argmax shares: colder temperatures cannot do better
            break
    return best_shift


class MarginalCalibration:
    """Fitted from (generated, source) matrices in the encoder's layout (generated spans:
    the sampler's log-probabilities); `apply` maps a generated matrix to calibrated scores that `TableEncoder.inverse_transform` decodes."""

    def __init__(self, source_q: np.ndarray, generated_q: np.ndarray, shift: np.ndarray,
                 spans: list[tuple[int, int]], observed: list[int | None]) -> None:
        self.source_q, self.generated_q, self.shift = source_q, generated_q, shift
        self.spans, self.observed = spans, observed

    @classmethod
    def fit(cls, generated: np.ndarray, source: np.ndarray, *, n_continuous: int,
            spans: list[tuple[int, int]], observed: list[int | None]) -> "MarginalCalibration":
        """`observed[j]` is the matrix index of continuous channel j's "observed" class
        (its column has nulls) or None: null rows carry no value and are left out."""
        shift = np.zeros(source.shape[1])
        for a, b in spans:
            target = np.bincount(source[:, a:b].argmax(axis=1), minlength=b - a) / len(source)
            shift[a:b] = _class_shift(generated[:, a:b], target)
        levels = quantile_levels(len(source))
        calibrated = cls(np.zeros((len(levels), 0)), np.zeros((len(levels), 0)), shift, spans, observed).apply(generated)
        source_q, generated_q = [], []
        for j in range(n_continuous):
            src_rows, gen_rows = np.ones(len(source), bool), np.ones(len(generated), bool)
            if observed[j] is not None:
                span = next(s for s in spans if s[0] == observed[j])
                src_rows = source[:, span[0] : span[1]].argmax(axis=1) == 0
                gen_rows = calibrated[:, span[0] : span[1]].argmax(axis=1) == 0
            source_q.append(np.quantile(source[src_rows, j], levels))
            generated_q.append(np.quantile(generated[gen_rows, j], levels) if gen_rows.any() else source_q[-1])
        return cls(np.array(source_q).T.reshape(len(levels), -1), np.array(generated_q).T.reshape(len(levels), -1),
                   shift, spans, observed)

    def apply(self, matrix: np.ndarray, given: np.ndarray | None = None) -> np.ndarray:
        """Calibrated scores, float32 as the sampler's (float64 on Hawks' 1,375 channels was a
        1.1 GB copy per 100,000 rows, and the decode's argmax read twice the bytes); spans
        flagged in `given` (a per-channel mask: the conditions) keep their values."""
        out = np.array(matrix, dtype="float32")
        for j in range(self.source_q.shape[1]):  # the map itself in float64, as fitted
            out[:, j] = np.interp(out[:, j], self.generated_q[:, j], self.source_q[:, j])
        n = self.source_q.shape[1]  # continuous channels: no shift; every span's shift added at once
        shift = self.shift[n:] if given is None else np.where(given[n:], 0.0, self.shift[n:])
        out[:, n:] += shift.astype("float32")
        return out

    def arrays(self) -> dict[str, np.ndarray]:
        return {"source_q": self.source_q, "generated_q": self.generated_q, "shift": self.shift}
