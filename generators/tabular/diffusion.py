"""`tabular/diffusion`: a TabDDPM-style denoising diffusion model, native torch.

Rows are encoded by `TableEncoder`: continuous columns quantile-normalised to a
Gaussian, categoricals (and every column's missing flag) as one-hot spans. One Gaussian
diffusion with a cosine schedule runs on the whole row, the one-hots mapped to ±1.

Why Gaussian diffusion on one-hot, not TabDDPM's multinomial diffusion: one continuous
process lets one deterministic DDIM sampler draw every column in a handful of steps
(10 by default, the speed the 10,000 rows/s target needs on two CPU cores), where
multinomial diffusion has no deterministic step-skipping sampler. What keeps the
categorical part sound is how it is predicted: the denoiser outputs logits per span,
trained with cross-entropy (as in CDCD, Dieleman et al. 2022), and the predicted clean
one-hot is their softmax. Predictions stay inside the simplex of the categories seen
in the source and decode by argmax, so an unseen category cannot come out. Numerics
are trained with v-prediction (Salimans & Ho 2022) rather than TabDDPM's noise
prediction: at high noise, clean values recovered from predicted noise blow up and
sit on the ±5.2 clip, which biases few-step samples (10 steps, same training on
penguins: mean per-column KS/TVD 0.08 with noise prediction, 0.03 with v).

Conditions (`{"species": "Adelie"}`) are learned, not only imposed: in training, half
the rows see a random subset of their one-hot spans clean, flagged by a 0/1 "given"
input per channel, and are not scored on them (masked conditioning, as CSDI trains
imputation). One model thus learns the joint and every conditional on a subset of
categorical columns. At sampling, conditioned spans are given clean at every DDIM step
and kept as their own prediction, so every row carries the requested value exactly.
Plain replacement (inpainting an unconditionally trained model) was measured first:
it left Gentoo on Biscoe in 86 % of rows (source: 100 %) against 94 % here, since its
early steps see only noise in the conditioned channels. Classifier-free guidance would
fix the conditioning columns at training time and add a guidance weight to tune.

Known limit: rare classes come out rarer than in the source when training is short.
On penguins after 600 steps of 256 rows, 3.2 % missing `sex` came out at about 2 %, and it
reached 2.7 % after 2,000. The first step's predicted class shares match the source,
then the deterministic path drifts toward common classes.
"""

from __future__ import annotations

import math
from typing import Any, Iterator, Literal

import numpy as np
import torch
import torch.nn.functional as F
import pandas as pd
from pydantic import Field, model_validator
from torch import nn

from generators.base import Generator, GeneratorParams, resolve_device
from generators.budget import BudgetParams, TrainingBudget
from generators.private import PrivateTraining
from pipeline.core.seeding import torch_generator
from generators.tabular.calibration import MarginalCalibration
from generators.tabular.encoding import TableEncoder, is_onehot
from generators.tabular.span_order import SpanOrder
from generators.tabular.streaming import streamed_batches
from generators.diffusion import (
    SinusoidalPosEmb, ddim_timesteps, q_sample, register_schedule, v_target, x0_from_v,
)
from generators.registry import register
from pipeline.core.data import RowStream, TabularData
from pipeline.core.domains import private_profile
from pipeline.core.errors import BadInputError
from pipeline.core.progress import Progress

# The quantile-normal encoding lives within ±5.2 (scikit-learn clips at 1e-7 tails):
# predicted clean numerics are clamped there, as image DDPMs clamp to [-1, 1].
CLIP = 5.2
# Rows run through the sampler together: each layer's activations (rows x hidden) then stay in
# a core's L2 cache; 10,000-row blocks made a 128-wide layer 1.3x slower on one core.
SAMPLE_BLOCK = 2048
# The denoiser's precision at sampling ("auto" in DiffusionParams.sampling_precision): bfloat16 where the
# CPU multiplies it natively (AVX512-BF16 or AMX). Its forward passes on 200,000 rows, one core, same run
# (bench/results/tabular_sampling_{before,after}_bf16.json): flights 3.63 -> 1.53 CPU s, Hawks' 1,375
# channels 15.0 -> 5.9. Only the network rounds to bfloat16 (weights, activations, output); the DDIM state,
# the clean-row estimate, the softmax and the decode stay float32, so rounding does not accumulate over
# the steps. Fidelity, same fits (bench/results/tabular_sampling_precision.json): bfloat16 minus float32,
# paired by seed, detection AUC +0.0002 +- 0.0009 (CPS1988, 6 seeds) and +0.0003 +- 0.0012 (Hawks, 16),
# utility +0.0002 +- 0.0032 and -0.012 +- 0.007 (seed-to-seed sd 0.04 and 0.09); no column off its
# support. Elsewhere bfloat16 is emulated and slower: float32.
SAMPLING_PRECISION = {"float32": torch.float32, "bfloat16": torch.bfloat16}
# The denoiser's width bounds (DiffusionParams.hidden): 128 on narrow rows; at most 256, since a step
# costs about the width squared and a 300-column table's 900 channels would make it 1,024: at 256 the
# wide run (bench/wide_report.py, issue #16's 3-minute bound) fits in 91 CPU s (128: 55) and takes 147
# CPU s end to end.
MIN_HIDDEN, MAX_HIDDEN = 128, 256


def native_bfloat16(device: torch.device) -> bool:
    """Whether `device` is a CPU with bfloat16 matrix instructions (torch's own CPU probes)."""
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return device.type == "cpu" and any(getattr(torch.cpu, probe, lambda: False)() for probe in probes)


def sampling_dtype(precision: str, device: torch.device) -> torch.dtype:
    """The denoiser's dtype at sampling for a `sampling_precision` on `device`."""
    if precision == "auto":
        precision = "bfloat16" if native_bfloat16(device) else "float32"
    return SAMPLING_PRECISION[precision]


# ---- building blocks ------------------------------------------------------------------


class Denoiser(nn.Module):
    """TabDDPM's MLP: row projection plus timestep embedding, then SiLU-Linear layers.
    It reads the noisy row and a 0/1 flag per channel marking channels given clean
    (conditions). Output per channel: predicted v (continuous) or logits (spans)."""

    def __init__(self, dim: int, *, hidden: int, depth: int) -> None:
        super().__init__()
        self.dim = dim
        self.time_mlp = nn.Sequential(
            SinusoidalPosEmb(hidden), nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, hidden)
        )
        self.proj_in = nn.Linear(2 * dim, hidden)
        self.layers = nn.Sequential(*(nn.Sequential(nn.SiLU(), nn.Linear(hidden, hidden)) for _ in range(depth)))
        self.proj_out = nn.Sequential(nn.SiLU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor, given: torch.Tensor, t: torch.Tensor, *,
                step_bias: torch.Tensor | None = None) -> torch.Tensor:
        """`t` holds one timestep per row, or a single one shared by the batch; `step_bias` is
        `step_bias(t)` for a shared one, when the caller has it (the sampler, which runs each
        timestep on every block of rows)."""
        dtype = self.proj_in.weight.dtype  # the sampler's bfloat16 copy (`reordered`) reads its input in bfloat16
        x = x.to(dtype)
        if torch.is_grad_enabled() or given.any():  # training calls the layer itself: DP-SGD hooks on it
            inputs = torch.cat((x, given.expand_as(x).to(dtype)), dim=1)
            h = self.proj_in(inputs) if step_bias is None else F.linear(inputs, self.proj_in.weight, step_bias)
        else:  # unconditional sampling: the flags' half of the input layer would multiply zeros (9 % of a step)
            h = F.linear(x, self.proj_in.weight[:, : self.dim], self.proj_in.bias if step_bias is None else step_bias)
        if step_bias is None:
            h = h + self.time_mlp(t).to(dtype)
        return self.proj_out(self.layers(h))

    def step_bias(self, t: torch.Tensor) -> torch.Tensor:
        """The input layer's bias plus the embedding of the one timestep `t`, in the row layers'
        dtype: the sampler's first layer then adds both in its matrix product (a separate
        broadcast add of the embedding cost 17 % of a bfloat16 forward pass on flights)."""
        return (self.proj_in.bias.float() + self.time_mlp(t)[0]).to(self.proj_in.weight.dtype)

    def reordered(self, order: torch.Tensor, dtype: torch.dtype = torch.float32) -> "Denoiser":
        """The same function on channels in `order` (input columns and output rows permuted):
        the sampler's span-grouped layout (generators/tabular/span_order.py). With `dtype`
        bfloat16 the row layers compute in it (the timestep MLP, one row, stays float32): see
        `SAMPLING_PRECISION`."""
        with torch.device("meta"):  # no initialisation: it would draw from the global RNG
            copy = Denoiser(self.dim, hidden=self.proj_in.out_features, depth=len(self.layers))
        state = dict(self.state_dict())
        w = state["proj_in.weight"]
        state["proj_in.weight"] = torch.cat((w[:, : self.dim][:, order], w[:, self.dim :][:, order]), dim=1)
        last = f"proj_out.{len(self.proj_out) - 1}"
        state[f"{last}.weight"], state[f"{last}.bias"] = state[f"{last}.weight"][order], state[f"{last}.bias"][order]
        copy.load_state_dict(state, assign=True)
        for layer in (copy.proj_in, copy.layers, copy.proj_out):
            layer.to(dtype)
        return copy.eval()


# ---- model ----------------------------------------------------------------------------


class TabularDiffusion(nn.Module):
    """Gaussian diffusion over encoded rows: `model(x0)` returns the training loss,
    `model.sample(n, ...)` draws clean rows in the encoder's matrix layout."""

    def __init__(
        self,
        denoiser: Denoiser,
        *,
        n_continuous: int,
        spans: list[tuple[int, int]],
        timesteps: int,
        given_prob: float,
    ) -> None:
        super().__init__()
        self.denoiser = denoiser
        self.n_continuous = n_continuous
        self.spans = [tuple(span) for span in spans]
        self.num_timesteps = timesteps
        self.given_prob = given_prob
        register_schedule(self, timesteps)
        # The span each channel belongs to; continuous channels point at a never-given slot.
        owner = torch.full((denoiser.dim,), len(self.spans), dtype=torch.long)
        for i, (a, b) in enumerate(self.spans):
            owner[a:b] = i
        self.register_buffer("channel_span", owner, persistent=False)
        self.span_order = SpanOrder(n_continuous, self.spans)

    def to_signal(self, matrix: torch.Tensor) -> torch.Tensor:
        """Encoder matrix -> diffusion space: continuous as is, one-hots at ±1, the same
        scale as the Gaussian numerics so both survive noise alike."""
        n = self.n_continuous
        return torch.cat((matrix[:, :n], matrix[:, n:] * 2 - 1), dim=1)

    def model_predictions(
        self, denoiser: Denoiser, x_t: torch.Tensor, t: torch.Tensor, known: tuple[torch.Tensor, torch.Tensor] | None,
        *, log_spans: bool = False, step_bias: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The predicted clean row, channels in the sampler's order (`denoiser`: reordered to
        it): the clipped numerics and, per span group (`SpanOrder.groups`), the class-major
        probabilities, or with `log_spans` (the last step) log-probabilities. `known` = (mask,
        clean values) of the given channels (or None): shown to the denoiser clean. `step_bias`:
        `denoiser.step_bias(t)`, computed once per timestep by the sampler."""
        given = known[0] if known is not None else x_t.new_zeros(x_t.shape[1], dtype=torch.bool)
        out = denoiser(x_t if known is None else torch.where(given, known[1], x_t), given, t, step_bias=step_bias)
        n = self.n_continuous
        numeric = x0_from_v(self, x_t[:, :n], out[:, :n], t).clamp_(-CLIP, CLIP)
        return numeric, self.span_order.softmax(out, log=log_spans)

    def span_log_softmax(self, logits: torch.Tensor) -> torch.Tensor:
        """Log-softmax within each one-hot span (`logits`: the categorical channels), all
        spans in one pass. A loop over narrow column slices cost 15 % of a sampling step on
        CPS1988 (5 spans), and on 300 columns (300 spans) most of a training step."""
        owner = self.channel_span[self.n_continuous:].expand_as(logits)
        shape = (len(logits), len(self.spans))
        top = logits.detach().new_full(shape, -math.inf).scatter_reduce(1, owner, logits.detach(), "amax")
        shifted = logits - top.gather(1, owner)  # a constant per span: no gradient lost
        return shifted - shifted.exp().new_zeros(shape).scatter_add(1, owner, shifted.exp()).log().gather(1, owner)

    def given_spans(self, n: int, device: torch.device, generator: torch.Generator) -> torch.Tensor:
        """(n, spans) flags of spans shown clean in training: none for a `1 - given_prob`
        share of rows, each span with probability 1/2 for the others. The model learns the
        joint and every conditional on a subset of categorical columns at once."""
        rows = torch.rand((n, 1), device=device, generator=generator) < self.given_prob
        return rows & (torch.rand((n, len(self.spans)), device=device, generator=generator) < 0.5)

    def forward(self, matrix: torch.Tensor, *, generator: torch.Generator, per_row: bool = False) -> torch.Tensor:
        """Training loss on a batch of encoded rows: v-prediction MSE on continuous
        channels plus the cross-entropy of the one-hot spans that were not given clean, one
        term per channel and per span, all weighted alike. The numerics' MSE as one averaged
        term let the spans' terms drown it: on flights (11 numerics, 14 spans) the model
        learned the marginals only (corr(dep_delay, arr_delay) 0.05 against 0.91 in the source).
        Under DP-SGD (`per_row`) the numerics stay one averaged term: each row's clipped gradient
        is a fixed budget, and per-channel terms spent it on the numerics (the private penguins
        demo at ε = 10: utility 0.54 against 0.66, detection 0.95 either way). Each span's cross-entropy is averaged over the rows that hid it; `per_row` (DP-SGD)
        returns one loss per row and divides by the expected share of such rows instead,
        so every row's term has a constant weight (generators/private.py says why it must)."""
        x0 = self.to_signal(matrix)
        n_rows, device = len(x0), x0.device
        t = torch.randint(0, self.num_timesteps, (n_rows,), device=device, generator=generator)
        noise = torch.randn(x0.shape, device=device, generator=generator)
        spans = self.given_spans(n_rows, device, generator)
        given = F.pad(spans, (0, 1))[:, self.channel_span]
        out = self.denoiser(torch.where(given, x0, q_sample(self, x0, t, noise)), given, t)
        n = self.n_continuous
        v = v_target(self, x0, t, noise)
        hidden_share = 1 - self.given_prob / 2  # expected share of rows that hide a given span
        mse = (out[:, :n] - v[:, :n]).pow(2)  # (rows, numerics)
        losses = [mse.mean(dim=1, keepdim=True) if per_row and n else mse]
        if self.spans:  # (rows, spans): each span's cross-entropy, from its one-hot target
            owner = self.channel_span[n:].expand(n_rows, -1)
            ce = -torch.zeros_like(spans, dtype=out.dtype).scatter_add(
                1, owner, self.span_log_softmax(out[:, n:]) * matrix[:, n:])
            hidden = (~spans).to(out.dtype)
            losses.append(ce * hidden / (hidden_share if per_row else hidden.mean(dim=0).clamp(min=1 / n_rows)))
        per_row_losses = torch.cat(losses, dim=1).mean(dim=1)
        return per_row_losses if per_row else per_row_losses.mean()

    # ---- sampler ----------------------------------------------------------------------

    @torch.inference_mode()
    def sample(
        self,
        n: int,
        *,
        steps: int,
        generator: torch.Generator,
        known: tuple[torch.Tensor, torch.Tensor] | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> torch.Tensor:
        """Deterministic DDIM (eta = 0) over `steps` evenly spaced timesteps, from noise
        drawn with `generator`; returns clean rows, one-hot spans as the last step's
        log-probabilities (conditioned spans as their ±1 values): a ±1 score in float32 is
        -1 exactly for every class under p = 3e-8, so the calibration's class shifts saw
        ties and moved rare classes by jumps (CPS1988 `education` = 2: 0.2 % -> 1.9 %).
        `known` = (mask, ±1 values) over the channels of conditioned spans. `dtype`: the
        denoiser's row layers' (`SAMPLING_PRECISION`); the path itself is float32."""
        device = self.sqrt_alphas_cumprod.device
        order, inverse = self.span_order.order.to(device), self.span_order.inverse.to(device)
        denoiser = self.denoiser.reordered(order, dtype)
        if known is not None:
            known = (known[0][order], known[1][order])
        # Noise drawn in the encoder's order, as before the grouped order: a float32 sampler then draws the rows it
        # drew (up to float32 rounding). Drawn in the sampling order it was an equally valid but other draw, and on
        # CPS1988 a 5-row class (0.06 %) came out at 0.09 % instead of 0.06 % (100,000 rows): rare shares move
        # that much from draw to draw. The result is put back in the encoder's order.
        noise = torch.randn((n, self.denoiser.dim), device=device, generator=generator)[:, order]
        out = torch.empty_like(noise)
        timesteps = [(torch.full((1,), time, device=device, dtype=torch.long), time, time_next)  # one per batch
                     for time, time_next in ddim_timesteps(self.num_timesteps, steps)]
        step_bias = {time: denoiser.step_bias(t) for t, time, _ in timesteps}
        update = {time: self._ddim_coefficients(time, time_next, noise.shape[1], device)
                  for _, time, time_next in timesteps if time_next >= 0}
        for first in range(0, n, SAMPLE_BLOCK):
            x = noise[first : first + SAMPLE_BLOCK]
            for t, time, time_next in timesteps:
                numeric, spans = self.model_predictions(denoiser, x, t, known, log_spans=time_next < 0,
                                                        step_bias=step_bias[time])
                if time_next < 0:  # the clean row; conditioned channels keep their given values
                    x = torch.cat([numeric, *spans], dim=1)
                    x = x if known is None else torch.where(known[0], known[1], x)
                else:  # conditioned channels' state is never read: the denoiser sees their given values
                    x = self._ddim_update(x, numeric, spans, update[time])
            torch.index_select(x, 1, inverse, out=out[first : first + SAMPLE_BLOCK])
        return out

    def _ddim_coefficients(self, time: int, time_next: int, dim: int, device: torch.device,
                           ) -> tuple[float, float, torch.Tensor]:
        """`ddim_step(eps_from_x0(x0), eta=0)` folded into one affine map of (x0, x):
        x_next = c x0 + c' x, c = √ᾱ' - √(1-ᾱ') √ᾱ / √(1-ᾱ), c' = √(1-ᾱ') / √(1-ᾱ); the spans'
        x0 = 2p - 1 is 2c p - c, whose constant comes as an offset per channel (0 on numerics).
        Once per timestep: as small tensor operations per block they cost more than the pass."""
        a, s = self.sqrt_alphas_cumprod[time], self.sqrt_one_minus_alphas_cumprod[time]
        a_next, s_next = self.sqrt_alphas_cumprod[time_next], self.sqrt_one_minus_alphas_cumprod[time_next]
        c, c_x = float(a_next - s_next * a / s), float(s_next / s)
        offset = torch.full((dim,), -c, device=device)
        offset[: self.n_continuous] = 0
        return c, c_x, offset

    def _ddim_update(self, x: torch.Tensor, numeric: torch.Tensor, spans: list[torch.Tensor],
                     coefficients: tuple[float, float, torch.Tensor]) -> torch.Tensor:
        """x_next (`_ddim_coefficients`): one pass over the row for c' x and the spans' constant,
        then the numerics and each group's probabilities added into their columns."""
        c, c_x, offset = coefficients
        out = torch.add(offset, x, alpha=c_x)
        out[:, : self.n_continuous].add_(numeric, alpha=c)
        for (start, _, _), p in zip(self.span_order.groups, spans):
            out[:, start : start + p.shape[1]].add_(p, alpha=2 * c)
        return out


# ---- the generator --------------------------------------------------------------------


def random_batches(matrix: torch.Tensor, size: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
    """Endless batches of `size` rows drawn uniformly with replacement under `generator`:
    no epochs, so the step count alone says how much a fit trains."""
    while True:
        yield matrix[torch.randint(0, len(matrix), (size,), device=matrix.device, generator=generator)]



class DiffusionParams(BudgetParams, GeneratorParams):
    """`steps` / `time_budget_s` bound the fit (generators/budget.py): each step is one
    batch of rows drawn at random, so a step costs the same on 300 rows and on 30,000."""

    # Measured by bench/tabular_budget.py on CPS1988 (16,893 training rows), one core: detection AUC
    # 0.65 at 2,000 steps, 0.55 at 3,000, 0.53 at 8,000, utility 0.82-0.86 from 3,000; 3,000 steps cost
    # ~10 CPU s, 1/18 of TVAE's default fit in the same run. A step is a batch, whatever the rows.
    DEFAULT_STEPS = 3000
    # Rows per step. On penguins (3 seeds) 256 was steadier than 57: mean KS/TVD
    # 0.025 ± 0.001 against 0.029 ± 0.011.
    batch_size: int = Field(256, ge=2)
    # AdamW, decayed linearly to 0. Above TabDDPM's 1e-3..3e-3 (a smaller MLP, fewer
    # steps): on penguins 5e-3 beat 2e-3 on marginals and on conditionals.
    lr: float = Field(5e-3, gt=0)
    weight_decay: float = Field(1e-4, ge=0)  # light, as in TabDDPM
    # MLP width; None: the encoded row's width rounded up to a power of two, within MIN_HIDDEN..MAX_HIDDEN. Narrower
    # than the row it loses relations: flights (209 channels) at 128 kept corr(dep_delay, arr_delay) at
    # 0.65 (source 0.91), utility 0.92; at 256, 0.78 and 0.96, fit 43 against 33 CPU s. Sampling cost
    # grows with its square (256 was no better than 128 on penguins' 20 channels).
    hidden: int | None = Field(None, ge=8)
    depth: int = Field(2, ge=1)  # hidden-to-hidden layers between input and output
    timesteps: int = Field(1000, ge=10)  # noise levels seen in training (DDPM's 1000)
    sampling_steps: int = Field(10, ge=1)  # DDIM steps: 10 keeps >= 10k rows/s on 2 cores
    # Share of training rows that see some categorical columns clean: teaches the
    # conditionals that `conditions` sample from, at a small cost to the joint.
    given_prob: float = Field(0.5, ge=0, lt=1)
    # Rows drawn after training to measure and undo the sampler's marginal biases
    # (generators/tabular/calibration.py); 0 turns calibration off.
    calibration_rows: int = Field(20_000, ge=0)
    # The denoiser's precision at sampling (SAMPLING_PRECISION says what rounds); the calibration is
    # fitted on the sampler at this precision. "auto": bfloat16 on CPUs that compute it natively.
    sampling_precision: Literal["auto", "float32", "bfloat16"] = "auto"

    @model_validator(mode="after")
    def _steps_within_schedule(self) -> "DiffusionParams":
        if self.sampling_steps > self.timesteps:
            raise ValueError(f"sampling_steps ({self.sampling_steps}) cannot exceed timesteps ({self.timesteps})")
        return self


@register("tabular/diffusion")
class TabularDiffusionGenerator(Generator):
    """TabDDPM-style diffusion on a `TableEncoder` matrix; see the module docstring."""

    Params = DiffusionParams
    params: DiffusionParams
    # 2: steps / time_budget_s replace epochs; 3: private fits encode from the profile alone;
    # 4: private fits keep declared domains only (pipeline/core/domains.py); 5: the sampler returns span
    # log-probabilities and the calibration's class shifts are fitted on them; 6: clock-time columns
    # (the `time` kind) are one continuous channel in seconds of the day, not a span of categories; 7: the
    # calibration is fitted on the sampler at `sampling_precision` (bfloat16 where native); 8: one loss term
    # per numeric channel, categoricals over MAX_ONEHOT_CLASSES as a rank channel, the width from the row's
    model_version = 8
    supports_privacy = True  # DP-SGD on the denoiser; what ε leaves out: README, "Differential privacy"

    def _build(self, encoder: TableEncoder) -> TabularDiffusion:
        p = self.params
        hidden = p.hidden or min(MAX_HIDDEN, max(MIN_HIDDEN, 1 << (encoder.dim - 1).bit_length()))
        denoiser = Denoiser(encoder.dim, hidden=hidden, depth=p.depth)
        return TabularDiffusion(
            denoiser,
            n_continuous=encoder.n_continuous,
            spans=encoder.spans,
            timesteps=p.timesteps,
            given_prob=p.given_prob,
        )

    def _fit(self, data: TabularData, *, progress: Progress) -> None:
        self.device_ = resolve_device(self.device)
        if self.privacy is not None and data.stream is not None:
            raise BadInputError("generator.privacy: DP-SGD samples rows from a table in memory; a streamed source "
                                "cannot be trained privately yet: set source.stream: false or drop generator.privacy")
        # A private fit keeps declared domains only (pipeline/core/domains.py), refusing undeclared columns.
        profile = private_profile(data.profile) if self.privacy is not None else data.profile
        self.encoder_ = TableEncoder().fit(data.frame, profile, private=self.privacy is not None)
        matrix = torch.from_numpy(self.encoder_.transform(data.frame)).to(self.device_)
        self.model_ = self._build(self.encoder_).to(self.device_)  # initialised under fit's seed
        self.model_.train()
        # One CPU thread (the base class's policy): two intra-op threads made a training step
        # of this small MLP 20x slower (580 ms vs 30 ms) by spin-waiting on each other.
        self._train(matrix, progress, stream=data.stream)
        self.model_.eval()
        # Calibration matches the source's quantiles and class shares: not private, so a private fit skips it.
        self.calibration_ = self._calibrate(matrix) if self.params.calibration_rows and self.privacy is None else None
        self.condition_values_ = self.conditionable(data)

    def conditionable(self, data: TabularData) -> dict[str, list[Any]]:
        """The one-hot class columns: a categorical over MAX_ONEHOT_CLASSES classes is one
        channel of ranks, not a span a condition can fix. A private fit's classes are the
        declared domains' (pipeline/core/domains.py), never read from the rows."""
        profile = private_profile(data.profile) if self.privacy is not None else data.profile
        return {c.name: list(c.categories or []) for c in profile.of_kind("categorical", "boolean") if is_onehot(c)}

    def _train(self, matrix: torch.Tensor, progress: Progress, stream: RowStream | None = None) -> None:
        """AdamW for the budget's steps (or seconds), one batch per step: rows drawn at random
        under the fit's seed, or with `privacy` DP-SGD's Poisson-sampled ones, clipped and
        noised for a step count fixed up front (generators/private.py). A streamed table
        (`stream`) gives its rows in shuffled passes instead; `matrix` is then its sample."""
        p = self.params
        generator = torch_generator(p.seed, matrix.device)
        optimizer = torch.optim.AdamW(self.model_.parameters(), lr=p.lr, weight_decay=p.weight_decay)
        budget = TrainingBudget.of(p, progress)
        model, private = self.model_, None
        if self.privacy is not None:  # a time budget was refused before the fit (Generator.__init__)
            private = PrivateTraining(self.model_, optimizer, matrix, privacy=self.privacy,
                                      batch_size=p.batch_size, steps=budget.steps, seed=p.seed)
            model, optimizer = private.module, private.optimizer
            batches = private.batches()
        elif stream is not None:
            batches = streamed_batches(stream, self.encoder_, min(p.batch_size, stream.rows), seed=p.seed,
                                       device=matrix.device)
        else:
            batches = random_batches(matrix, min(p.batch_size, len(matrix)), generator)
        for _ in budget:
            # Linear decay to zero over the budget, as TabDDPM anneals: the last weights are a settled model.
            for group in optimizer.param_groups:
                group["lr"] = p.lr * (1 - budget.share)
            optimizer.zero_grad(set_to_none=True)
            batch = next(batches)
            if private is None:
                loss = model(batch, generator=generator)
                loss.backward()
                budget.record(loss=loss)
            else:  # no loss reported: it is computed on real rows without noise
                private.loss(model(batch, generator=generator, per_row=True)).backward()
            optimizer.step()
        if private is not None:
            private.close()
            self.privacy_spent_ = private.spent().to_dict()

    def _calibrate(self, matrix: torch.Tensor) -> MarginalCalibration:
        """Fit the marginal calibration on a sample drawn with a seed of its own."""
        generator = torch_generator(self.params.seed + 1, self.device_)
        parts = [
            self.model_.sample(len(rows), steps=self.params.sampling_steps, generator=generator,
                               dtype=self._sampling_dtype()).cpu().numpy()
            for rows in torch.arange(self.params.calibration_rows).split(10_000)
        ]
        enc = self.encoder_
        return MarginalCalibration.fit(np.concatenate(parts), matrix.cpu().numpy(), n_continuous=enc.n_continuous,
                                       spans=enc.spans, observed=self._observed())

    def _observed(self) -> list[int | None]:
        """Per continuous channel, the index of its "observed" class when it has nulls."""
        continuous = sorted((lay for lay in self.encoder_.layout if lay.value is not None), key=lambda lay: lay.value)
        return [lay.span[0] if lay.span else None for lay in continuous]

    def _known(
        self, conditions: dict[str, Any] | None, device: torch.device
    ) -> tuple[torch.Tensor, torch.Tensor] | None:
        """(mask, ±1 values) over the signal's channels for the conditioned spans."""
        if not conditions:
            return None
        mask = torch.zeros(self.encoder_.dim, dtype=torch.bool, device=device)
        values = torch.zeros(self.encoder_.dim, device=device)
        for column, value in conditions.items():
            start, stop = self.encoder_.column_layout(column).span
            mask[start:stop] = True
            values[start:stop] = -1.0
            values[self.encoder_.category_index(column, value)] = 1.0
        return mask, values

    def _sample_chunk(self, n: int, *, seed: int, conditions: dict[str, Any] | None, offset: int) -> pd.DataFrame:
        generator = torch_generator(seed, self.device_)
        known = self._known(conditions, self.device_)
        rows = self.model_.sample(n, steps=self.params.sampling_steps, generator=generator, known=known,
                                  dtype=self._sampling_dtype())
        rows = rows.cpu().numpy()
        if self.calibration_ is not None:
            rows = self.calibration_.apply(rows, given=None if known is None else known[0].cpu().numpy())
        return self.encoder_.inverse_transform(rows, start=offset, kept=conditions or ())

    def _sampling_dtype(self) -> torch.dtype:
        return sampling_dtype(self.params.sampling_precision, self.device_)

    def _restore_calibration(self, arrays: dict[str, torch.Tensor] | None) -> MarginalCalibration | None:
        if arrays is None:
            return None
        return MarginalCalibration(arrays["source_q"].numpy(), arrays["generated_q"].numpy(),
                                   arrays["shift"].numpy(), self.encoder_.spans, self._observed())

    def _export(self) -> tuple[dict[str, Any], dict[str, Any]]:
        meta, tensors = self.encoder_.state()
        tensors = {"encoder": tensors, "model": self.model_.state_dict()}
        if self.calibration_ is not None:
            tensors["calibration"] = {k: torch.from_numpy(v) for k, v in self.calibration_.arrays().items()}
        return {"encoder": meta}, tensors

    def _restore(self, state: dict[str, Any], tensors: dict[str, Any]) -> None:
        self.encoder_ = TableEncoder.from_state(state["encoder"], tensors["encoder"])
        self.model_ = self._build(self.encoder_)
        self.model_.load_state_dict(tensors["model"])
        self.calibration_ = self._restore_calibration(tensors.get("calibration"))
        self.device_ = resolve_device(self.device)
        self.model_.to(self.device_).eval()
