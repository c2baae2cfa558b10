"""The drift of a continuation, calibrated on the training sequences' own histories.

A long path (`sample.length`) is a chain of continuations: each window goes on from the
last one's second half. Whatever a continuation gets wrong on average at a level is
added again at every window, so the path's level distribution is set by the model's
drift at each level, not by the source's. On fertility (model_version 6) the denoiser
learned the panel's average decline (about -0.2 in encoded units over a half window) at
every level, where the real countries' drift depends on it (about 0 on the low plateau,
+0.5 below it): every path walked down to the encoder's minimum within some 20 windows
and stayed there (a flat history at the edge continued at the edge).

So the fit measures it: the model continues `DRIFT_HISTORIES` real histories of its
training sequences (a stretch of `overlap` steps ending anywhere), and per value channel
and bin of the history's last value (`DRIFT_EDGES`) the
per-step drift that the real continuations add to the model's is estimated (least
squares: a mean change over steps 1..n of a drift r per step is r (n + 1) / 2) and shrunk
toward 0 in bins with few histories. Every continued window then gets that drift added to
its new steps: r at the first, 2r at the second, ..., nothing on given values, so a seam
has no jump. Plain sampling (no given first stretch) and windows with covariate columns
given (their drift is the covariates') are untouched. A private fit has no
correction: it would be a statistic of real data outside DP-SGD.
"""

from __future__ import annotations

from typing import Callable

import torch

DRIFT_HISTORIES = 1024  # real histories continued at fit time (fertility: ~10 % of the fit's CPU)
# Bins of a history's last value in the encoder's Gaussian units (its quantile transform
# makes every value channel about N(0, 1)): fixed, so the rare edges, where a path that
# drifts ends up, get bins of their own.
DRIFT_EDGES = (-2.5, -1.5, -0.75, 0.0, 0.75, 1.5, 2.5)
DRIFT_SHRINK = 16  # a bin's estimate is shrunk by n / (n + DRIFT_SHRINK): a level seen in few histories moves less


def given_stretch(given: torch.Tensor) -> torch.Tensor:
    """(B,) steps of each sequence's first stretch given on every channel (B, T, F): a
    history or a long path's last window; 0 for a sequence drawn from scratch."""
    return given.bool().all(-1).long().cumprod(1).sum(1)


def history_alone(given: torch.Tensor) -> torch.Tensor:
    """(B,) True where a sequence's given values (B, T, F) are a first stretch alone: a
    history or a long path's last window, no covariate columns given after it."""
    stretch = given_stretch(given)
    after = torch.arange(given.shape[1], device=given.device)[None] >= stretch[:, None]
    return (stretch > 0) & ~(given.bool().any(-1) & after).any(1)


def _bins(level: torch.Tensor) -> torch.Tensor:
    """(n, F) bin of each level (n, F) between `DRIFT_EDGES`: 0 .. len(DRIFT_EDGES)."""
    return torch.bucketize(level.contiguous(), torch.tensor(DRIFT_EDGES, device=level.device))


class DriftCorrection:
    """Per-step drift `rate` (F, bins) added to continued windows, by bin of the last given
    value (`DRIFT_EDGES`); zero on channels not calibrated."""

    def __init__(self, rate: torch.Tensor) -> None:
        self.rate = rate

    @classmethod
    def none(cls, features: int) -> "DriftCorrection":
        return cls(torch.zeros(features, len(DRIFT_EDGES) + 1))

    def __call__(self, window: torch.Tensor, given: torch.Tensor) -> torch.Tensor:
        """`window` (n, T, F) generated after its given first stretch (`given`, same shape),
        with the calibrated drift added to the steps not given."""
        stretch = given_stretch(given)
        ahead = (torch.arange(window.shape[1], device=window.device)[None] - stretch[:, None] + 1).clamp(min=0)
        alone = history_alone(given)  # calibrated on histories alone: not where covariates are given too
        level = window[torch.arange(len(window), device=window.device), (stretch - 1).clamp(min=0)]
        r = torch.gather(self.rate.to(window.device).T, 0, _bins(level)) * alone[:, None]  # (n, F)
        return window + r[:, None, :] * ahead[:, :, None].float() * (1 - given)

    def state(self) -> dict[str, torch.Tensor]:
        return {"rate": self.rate}

    @classmethod
    def from_state(cls, tensors: dict[str, torch.Tensor]) -> "DriftCorrection":
        return cls(tensors["rate"])


def calibrate(continue_: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor], x: torch.Tensor,
              mask: torch.Tensor, cond: torch.Tensor, values: torch.Tensor, overlap: int,
              generator: torch.Generator) -> DriftCorrection:
    """The correction for `continue_(cond, known, given)` (the model's uncorrected
    continuation) from training sequences `x` (N, T, F), `mask` (N, T), plans `cond`:
    histories of `overlap` present steps with at least one present step after, drawn at
    random; `values` (F,) 1.0 on the channels calibrated (continuous values)."""
    _, steps, features = x.shape
    history = mask.unfold(1, overlap, 1)[:, : steps - overlap].bool().all(-1) & mask[:, overlap:].bool()
    pairs = history.nonzero()
    if not len(pairs):
        return DriftCorrection.none(features)
    pairs = pairs[torch.randperm(len(pairs), generator=generator, device=generator.device)[:DRIFT_HISTORIES].to(pairs.device)]
    seq, start = pairs[:, 0], pairs[:, 1]
    idx = start[:, None] + torch.arange(steps, device=x.device)[None]
    inside = (idx < steps).float()
    idx = idx.clamp(max=steps - 1)
    known = x[seq[:, None], idx] * inside[:, :, None]
    new = (mask[seq[:, None], idx] * inside)[:, overlap:]  # (h, T - overlap) present steps after the history
    given = (torch.arange(steps, device=x.device) < overlap)[None, :, None].expand_as(known).float()
    drawn = continue_(cond[seq], known, given)
    anchor = known[:, overlap - 1 : overlap]
    count = new.sum(1, keepdim=True)

    def mean_change(seqs: torch.Tensor) -> torch.Tensor:
        """(h, F) mean change from the anchor over the present steps after the history."""
        return ((seqs[:, overlap:] - anchor) * new[:, :, None]).sum(1) / count

    gap = mean_change(known) - mean_change(drawn)  # (h, F): what the real continuation adds
    horizon = (new * torch.arange(1, steps - overlap + 1, device=x.device)[None]).sum(1, keepdim=True) / count
    bins = _bins(anchor[:, 0])
    rate = torch.zeros(features, len(DRIFT_EDGES) + 1, device=x.device)
    for b in range(rate.shape[1]):
        inb = (bins == b).float()  # (h, F)
        rate[:, b] = (inb * gap * horizon).sum(0) / (inb * horizon ** 2).sum(0).clamp(min=1e-9) \
            * inb.sum(0) / (inb.sum(0) + DRIFT_SHRINK)
    return DriftCorrection((rate * values[:, None]).cpu())
