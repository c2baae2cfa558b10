"""DP-SGD for our native generators, with Opacus: one shared wrapper, so every private
generator clips, samples, adds noise and accounts the same way.

`PrivateTraining(model, optimizer, rows, privacy=..., batch_size=..., steps=..., seed=...)`
(`rows` one tensor, or a tuple of tensors whose first axis is the row, e.g. a sequence,
its mask and its conditioning, sampled together) hands back the model, optimizer and batches to train with, for exactly `steps` optimiser
steps (known up front: the noise is solved for them, so a time budget cannot bound a
private fit):
- Poisson sampling: each step takes every row independently with probability
  batch_size / n (Opacus' `DPDataLoader`), the sampling the accountants assume;
- per-row gradients clipped to `privacy.clip` by Opacus' ghost clipping (each row's
  gradient norm from a first backward pass, the clipped sum from a second, per-row
  gradients never materialised: a step of the tabular denoiser costs 2.3x a plain one
  on one CPU thread, against 10x with Opacus' per-row-gradient hooks). It supports
  Linear, Embedding, LayerNorm, GroupNorm and convolutions, not BatchNorm, which mixes
  rows; the tabular denoiser is Linear and SiLU only;
- Gaussian noise with the multiplier
  Opacus solves for so that `steps` steps at this sample rate spend at most
  `privacy.epsilon` (`get_noise_multiplier(steps=...)`, then `make_private`; Opacus'
  `make_private_with_epsilon` counts in epochs only);
- the PRV accountant (Gopi et al. 2021): it composes the subsampled Gaussian
  numerically, so the same ε needs less noise than RDP's bound, and Opacus returns its
  upper bound, never its estimate;
- seeded noise and sampling (`secure_mode=False`, a seeded `noise_generator` and loader
  generator): the same seed gives the same model. Seeded noise is a reproducibility
  choice: the guarantee assumes an attacker who does not know the seed.

The loss a private model trains on must be a mean of per-row terms with constant
weights: a weight that depends on the rest of the batch lets one row move every other
row's clipped gradient, and the sensitivity bound no longer holds.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from typing import Any, Iterator

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from pipeline.core.errors import BadInputError
from pipeline.core.seeding import torch_generator
from pipeline.core.spec import PrivacySpec

ACCOUNTANT = "prv"
# Refused above this noise multiplier per expected row in a batch: the noise on the mean
# gradient then has a larger norm per coordinate than the clipping norm (the largest
# signal a step can carry), so training would only follow the noise.
MAX_NOISE_PER_ROW = 1.0


@dataclass(frozen=True)
class PrivacySpent:
    """What a private fit spent and how: the manifest's `privacy` record."""

    target_epsilon: float
    epsilon: float  # the accountant's upper bound on ε after every step taken; <= target_epsilon
    delta: float
    accountant: str
    noise_multiplier: float
    max_grad_norm: float
    sample_rate: float
    steps: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _PerRow(nn.Module):
    """The "criterion" Opacus' ghost clipping wraps: the model already returns one loss
    per row, so it only applies the reduction Opacus asks for."""

    reduction = "mean"

    def forward(self, per_row: torch.Tensor, _target: Any) -> torch.Tensor:
        if self.reduction == "none":
            return per_row
        return per_row.mean() if self.reduction == "mean" else per_row.sum()


class PrivateTraining:
    """A model, its optimizer and Poisson-sampled batches made private for `steps`
    optimiser steps on `rows`. Train with `.module` (returning per-row losses), `.loss(...)
    .backward()`, `.optimizer` and `.batches()`, then `close()`."""

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer,
                 rows: torch.Tensor | tuple[torch.Tensor, ...], *,
                 privacy: PrivacySpec, batch_size: int, steps: int, seed: int) -> None:
        from opacus import PrivacyEngine  # lazy: only private fits pay for the import
        from opacus.accountants.utils import get_noise_multiplier

        self._tuple = isinstance(rows, tuple)  # batches() gives back what it was given
        tensors = rows if self._tuple else (rows,)
        n = len(tensors[0])
        if n < batch_size:
            raise BadInputError(
                f"generator.privacy: {n} training rows are fewer than params.batch_size {batch_size}; DP-SGD "
                "samples each row with probability batch_size / rows, so lower params.batch_size (or add rows)"
            )
        self.privacy, self.delta = privacy, privacy.delta_for(n)
        loader = DataLoader(TensorDataset(*tensors), batch_size=batch_size, generator=torch_generator(seed + 2))
        with warnings.catch_warnings():  # "Secure RNG turned off": chosen, and said above
            warnings.simplefilter("ignore", UserWarning)
            self.engine = PrivacyEngine(accountant=ACCOUNTANT, secure_mode=False)
        self.sample_rate = 1 / len(loader)  # Opacus' DPDataLoader samples each row with this probability
        try:
            sigma = get_noise_multiplier(target_epsilon=privacy.epsilon, target_delta=self.delta,
                                         sample_rate=self.sample_rate, steps=steps, accountant=ACCOUNTANT)
        except ValueError as err:  # Opacus: "The privacy budget is too low."
            raise BadInputError(self._too_small(f"Opacus found no noise level for it ({err})")) from None
        self.module, self.optimizer, self._criterion, self.loader = self.engine.make_private(
            module=model, optimizer=optimizer, data_loader=loader, noise_multiplier=sigma,
            max_grad_norm=privacy.clip, poisson_sampling=True, noise_generator=torch_generator(seed + 3, tensors[0].device),
            criterion=_PerRow(), grad_sample_mode="ghost",
        )
        expected_batch = n * self.sample_rate
        if sigma / expected_batch > MAX_NOISE_PER_ROW:
            self.close()
            raise BadInputError(self._too_small(
                f"it needs noise multiplier {sigma:.3g} on batches of about {expected_batch:.0f} rows, "
                "noise larger than any gradient step"))

    def _too_small(self, why: str) -> str:
        return (f"generator.privacy.epsilon {self.privacy.epsilon:g} (delta {self.delta:.2g}) cannot train this "
                f"model: {why}; raise epsilon, lower params.steps, or raise params.batch_size")

    def loss(self, per_row: torch.Tensor) -> torch.Tensor:
        """The tensor to call `.backward()` on, from the batch's per-row losses: Opacus'
        ghost clipping takes each row's gradient norm in a first backward pass and
        clips in a second, never materialising per-row gradients."""
        return self._criterion(per_row, None)

    def batches(self) -> Iterator[torch.Tensor | tuple[torch.Tensor, ...]]:
        """Poisson-sampled batches, one per step, without end: the caller takes `steps`
        of them (a batch may be small, rarely empty); a tuple of tensors when `rows` was."""
        while True:
            for batch in self.loader:
                yield tuple(batch) if self._tuple else batch[0]

    def spent(self) -> PrivacySpent:
        return PrivacySpent(
            target_epsilon=self.privacy.epsilon, epsilon=float(self.engine.get_epsilon(self.delta)),
            delta=self.delta, accountant=ACCOUNTANT, noise_multiplier=float(self.optimizer.noise_multiplier),
            max_grad_norm=self.privacy.clip, sample_rate=self.sample_rate, steps=sum(steps for *_, steps in self.engine.accountant.history),
        )

    def close(self) -> None:
        """Take Opacus' hooks and per-sample gradients off the model: it samples as a plain module."""
        self.module._close()

