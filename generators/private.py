"""DP-SGD for our native generators, with Opacus: one shared wrapper, so every private
generator clips, samples, adds noise and accounts the same way.

`PrivateTraining(model, optimizer, rows, privacy=..., batch_size=..., steps=..., seed=...)`
(`rows` one tensor, or a tuple of tensors sharing their first dimension, e.g. (images,
labels): one record is one index across all of them) hands back the model, optimizer
and batches to train with, for exactly `steps` optimiser steps (known up front: the
noise is solved for them, so a time budget cannot bound a private fit):
- Poisson sampling: each step takes every row independently with probability
  batch_size / n (Opacus' `DPDataLoader`'s sampler and draws), the sampling the
  accountants assume; the sampled rows are indexed at once, not collated one by one;
- per-row gradients clipped to `privacy.clip` by Opacus' ghost clipping (each row's
  gradient norm from a first backward pass, the clipped sum from a second, per-row
  gradients never stored: a step of the tabular denoiser costs 2.3x a plain one on one
  CPU thread, against 10x with Opacus' per-row-gradient hooks). Our first pass asks
  autograd only for the gradients the norm hooks read, at the hooked layers' inputs and
  outputs, so it computes no parameter gradient (`_GhostClipped`), and the optimiser
  takes the clipped sum over without Opacus' deep copy. Opacus has such norms for Linear
  and Embedding; generators/private_norms.py adds them for convolutions (ConvTranspose2d
  included), GroupNorm and LayerNorm, and cheaper ones for Conv1d and Linear. Not
  BatchNorm, which mixes rows, nor a layer with buffers such as torch's spectral_norm
  parametrisation;
- Gaussian noise with the multiplier that makes `steps` steps at this sample rate spend
  at most `privacy.epsilon` by the accountant's own count (`noise_multiplier`, then
  `make_private`; Opacus' `make_private_with_epsilon` counts in epochs only);
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

import functools
import math
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
# How far below the target the solved ε may stay (absolute, Opacus' `get_noise_multiplier` default): the noise is
# at most this much larger than the least that would do
EPSILON_TOLERANCE = 0.01
MAX_SIGMA = 1e6  # no noise level found below this: the budget is too small (Opacus' bound)
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

        from generators.private_norms import register

        register()  # ghost clipping's per-row norms of convolutions and normalisation layers

        self._tuple = isinstance(rows, tuple)
        columns = rows if self._tuple else (rows,)
        n = len(columns[0])
        if n < batch_size:
            raise BadInputError(
                f"generator.privacy: {n} training rows are fewer than params.batch_size {batch_size}; DP-SGD "
                "samples each row with probability batch_size / rows, so lower params.batch_size (or add rows)"
            )
        self.privacy, self.delta = privacy, privacy.delta_for(n)
        loader = DataLoader(TensorDataset(*columns), batch_size=batch_size, generator=torch_generator(seed + 2))
        with warnings.catch_warnings():  # "Secure RNG turned off": chosen, and said above
            warnings.simplefilter("ignore", UserWarning)
            self.engine = PrivacyEngine(accountant=ACCOUNTANT, secure_mode=False)
        self.sample_rate = 1 / len(loader)  # Opacus' DPDataLoader samples each row with this probability
        try:
            sigma = noise_multiplier(epsilon=privacy.epsilon, delta=self.delta, sample_rate=self.sample_rate,
                                     steps=steps)
        except ValueError as err:  # "The privacy budget is too low."
            raise BadInputError(self._too_small(f"no noise level meets it ({err})")) from None
        self.module, self.optimizer, _, self.loader = self.engine.make_private(
            module=model, optimizer=optimizer, data_loader=loader, noise_multiplier=sigma,
            max_grad_norm=privacy.clip, poisson_sampling=True, noise_generator=torch_generator(seed + 3, columns[0].device),
            criterion=_PerRow(), grad_sample_mode="ghost",
        )
        self.optimizer.__class__ = _lean_step_optimizer(type(self.optimizer))
        self._columns = columns
        self._ends: list[torch.Tensor] = []  # the hooked layers' inputs and outputs in the last forward
        self._handles = [self.module.register_forward_pre_hook(lambda *_: self._ends.clear())]
        for layer in self.module.iterate_submodules(self.module._module):  # the layers Opacus hooks
            self._handles += [layer.register_forward_pre_hook(lambda _, args: self._keep(args)),
                              layer.register_forward_hook(lambda _, __, out: self._keep(out))]
        expected_batch = n * self.sample_rate
        if sigma / expected_batch > MAX_NOISE_PER_ROW:
            self.close()
            raise BadInputError(self._too_small(
                f"it needs noise multiplier {sigma:.3g} on batches of about {expected_batch:.0f} rows, "
                "noise larger than any gradient step"))

    def _too_small(self, why: str) -> str:
        return (f"generator.privacy.epsilon {self.privacy.epsilon:g} (delta {self.delta:.2g}) cannot train this "
                f"model: {why}; raise epsilon, lower params.steps, or raise params.batch_size")

    def _keep(self, tensors: Any) -> None:
        """Keep a hooked layer's input or output tensors (seen before torch wraps them for
        its backward hooks) as targets of the first backward pass."""
        if self.module.hooks_enabled and torch.is_grad_enabled():
            self._ends += [t for t in (tensors if isinstance(tensors, tuple) else (tensors,))
                           if isinstance(t, torch.Tensor) and t.requires_grad]

    def loss(self, per_row: torch.Tensor) -> "_GhostClipped":
        """What to call `.backward()` on, from the batch's per-row losses: ghost clipping
        takes each row's gradient norm in a first backward pass and clips in a second,
        never materialising per-row gradients."""
        ends, self._ends = self._ends, []
        return _GhostClipped(self.module, self.optimizer, per_row, ends)

    def batches(self) -> Iterator[torch.Tensor | tuple[torch.Tensor, ...]]:
        """Poisson-sampled batches, one per step, without end: the caller takes `steps`
        of them (a batch may be small, rarely empty). A tensor, or a tuple like `rows`.
        The batches are the Poisson loader's own, to the draw: its sampler's indices from its
        seeded generator, after the one draw torch's DataLoader iterator makes from that
        generator per pass (its workers' base seed), but the rows are indexed at once
        rather than fetched and collated one by one (a tenth of a small model's step)."""
        while True:
            indices_of_pass = iter(self.loader.batch_sampler)
            torch.empty((), dtype=torch.int64).random_(generator=self.loader.generator)
            for indices in indices_of_pass:
                index = torch.tensor(indices, dtype=torch.long, device=self._columns[0].device)
                batch = tuple(column[index] for column in self._columns)
                yield batch if self._tuple else batch[0]

    def spent(self) -> PrivacySpent:
        return PrivacySpent(
            target_epsilon=self.privacy.epsilon, epsilon=float(self.engine.get_epsilon(self.delta)),
            delta=self.delta, accountant=ACCOUNTANT, noise_multiplier=float(self.optimizer.noise_multiplier),
            max_grad_norm=self.privacy.clip, sample_rate=self.sample_rate, steps=sum(steps for *_, steps in self.engine.accountant.history),
        )

    def close(self) -> None:
        """Take Opacus' hooks and ours and per-sample gradients off the model: it samples as a plain module."""
        for handle in self._handles:
            handle.remove()
        self.module._close()


class _GhostClipped:
    """Opacus' two ghost-clipping passes (`DPTensorFastGradientClipping.backward`), the
    first pruned: it asks autograd for the gradients at the hooked layers' inputs and
    outputs only, which is all the norm hooks read (each layer's output gradient), so no
    parameter gradient is computed only to be zeroed (a third of a backward pass on
    timeseries/vae). Every trainable parameter's norm must come from this pass: a norm
    left from an earlier step would clip with a stale bound, so a missing one raises."""

    def __init__(self, module: nn.Module, optimizer: torch.optim.Optimizer, per_row: torch.Tensor,
                 ends: list[torch.Tensor]) -> None:
        self.module, self.optimizer, self.per_row = module, optimizer, per_row
        self.ends = list({id(t): t for t in ends}.values())

    def backward(self) -> None:
        params = self.module.trainable_parameters
        for p in params:
            p._norm_sample = None
        with warnings.catch_warnings():  # "Full backward hook is firing ...": the first layer's input needs no grad, as meant
            warnings.filterwarnings("ignore", message="Full backward hook is firing", category=UserWarning)
            if self.ends:
                torch.autograd.grad(self.per_row.mean(0), self.ends, retain_graph=True, allow_unused=True)
            if any(p._norm_sample is None for p in params):
                raise RuntimeError("ghost clipping: a trainable layer got no per-row gradient norm from the first pass")
            self.optimizer.zero_grad()
            clipped = (self.module.get_clipping_coef().to(self.per_row.device) * self.per_row).sum()
            self.module.disable_hooks()
            try:
                clipped.backward()
            finally:
                self.module.enable_hooks()


@functools.cache
def _lean_step_optimizer(base: type) -> type:
    """Opacus' ghost-clipping optimizer (`base`) with a cheaper step on the same
    arithmetic and the same noise: the clipped sum the second backward leaves in `p.grad`
    is taken over, not deep-copied, and each parameter's noise is Opacus' own draw from
    the seeded generator, in the same order (so the same seed gives the same model),
    without the zero tensor Opacus allocates first. Secure-mode noise stays Opacus'."""
    from opacus.optimizers.optimizer import _check_processed_flag, _mark_as_processed

    class LeanStep(base):
        def accumulate(self) -> None:
            for p in self.params:
                p.summed_grad = p.grad if p.summed_grad is None else p.summed_grad + p.grad
                p.grad = None  # the sum is taken over: nothing may add to it in place

        def add_noise(self) -> None:
            std = self.noise_multiplier * self.max_grad_norm
            if self.secure_mode or std == 0:
                return super().add_noise()
            for p in self.params:
                _check_processed_flag(p.summed_grad)
                noise = torch.normal(mean=0, std=std, size=p.summed_grad.shape, device=p.summed_grad.device,
                                     generator=self.generator)
                p.grad = (p.summed_grad + noise).view_as(p)
                _mark_as_processed(p.summed_grad)

    LeanStep.__name__ = LeanStep.__qualname__ = f"LeanStep{base.__name__}"
    return LeanStep


def noise_multiplier(*, epsilon: float, delta: float, sample_rate: float, steps: int,
                     tolerance: float = EPSILON_TOLERANCE) -> float:
    """The noise multiplier σ whose `steps` Poisson-subsampled Gaussian steps spend ε in
    [epsilon - tolerance, epsilon] by the accountant (its upper bound): the contract of
    Opacus' `get_noise_multiplier`, in fewer accountant calls. Opacus bisects σ on
    [0, 20] (6-20 calls, 0.05-0.8 CPU s each here: the PRV accountant bounds its domain
    with an RDP pass); ε falls about as 1/σ, so a secant on (log σ, log ε) from the
    moments-accountant guess lands in 3-6 calls, kept inside the bracket found so far
    and halving it (in log σ) where the secant leaves it. Whatever the search does, σ
    is returned only once the accountant has counted ε <= epsilon for it."""
    from opacus.accountants import create_accountant

    accountant = create_accountant(mechanism=ACCOUNTANT)
    aim = math.log(epsilon - min(tolerance, epsilon) / 2)  # the middle of the accepted window (ε > 0)
    # the moments accountant's ε ≈ q sqrt(2 T log(1/δ)) / σ (Abadi et al. 2016): within a factor ~1.5 of PRV here
    log_sigma = math.log(max(sample_rate * math.sqrt(2 * steps * math.log(1 / delta)) / epsilon, 0.1))
    low, high = -math.inf, math.inf  # log σ known to spend more than epsilon / at most epsilon
    tried: list[tuple[float, float]] = []  # (log σ, log ε), newest last
    for _ in range(60):
        if log_sigma > math.log(MAX_SIGMA):
            raise ValueError("The privacy budget is too low.")
        accountant.history = [(math.exp(log_sigma), sample_rate, steps)]
        eps = accountant.get_epsilon(delta=delta)
        if epsilon - tolerance <= eps <= epsilon:
            return math.exp(log_sigma)
        if eps <= epsilon:
            high = log_sigma
        else:
            low = log_sigma
        tried.append((log_sigma, math.log(eps) if eps > 0 else -math.inf))
        log_sigma = _next_log_sigma(tried, low, high, aim)
    raise ValueError(f"no noise level within {tolerance:g} of the target after 60 accountant calls")


def _next_log_sigma(tried: list[tuple[float, float]], low: float, high: float, aim: float) -> float:
    """The next log σ to try: the secant through the last two tries at log ε = `aim`
    (with one try, a slope of -1 from it), at most a factor 4 from the last try and
    strictly inside the bracket (low, high); the bracket's log-midpoint where the
    secant falls outside it."""
    s, e = tried[-1]
    if len(tried) > 1 and math.isfinite(e) and math.isfinite(tried[-2][1]) and tried[-2][1] != e:
        s0, e0 = tried[-2]
        slope = (s - s0) / (e - e0)
    else:
        slope = -1.0
    guess = s + (aim - e) * slope if math.isfinite(e) else s + math.log(4)
    guess = min(max(guess, s - math.log(4)), s + math.log(4))
    if not math.isfinite(low) or not math.isfinite(high):
        return guess
    margin = 0.01 * (high - low)
    return guess if low + margin < guess < high - margin else (low + high) / 2
