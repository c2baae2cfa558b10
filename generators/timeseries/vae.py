"""`timeseries/vae`: a TimeVAE-style variational autoencoder (Desai et al., 2021) in torch.

A 1-D convolutional encoder maps a whole sequence (padded to the longest) to a
Gaussian latent; the decoder sums interpretable parts, as TimeVAE does:

- a polynomial trend (level, slope, curvature, ...) whose coefficients come from z,
- optional seasonal blocks (one value per season, repeated over its steps),
- a residual from upsampling convolutions (nearest x2, then a 3-tap convolution: what a
  transposed convolution of stride 2 computes, up to its weights, and one that Opacus
  has per-sample gradients for, so private and plain fits share one architecture) and
  a dense layer to the exact length.

Encoder and decoder both see the entity's plan (static encoding, length, start), which
makes it a conditional VAE: sampling with `conditions` on a static column conditions the
sequence. Padded steps are masked out of the reconstruction loss.

A private fit (`generator.privacy`) trains it with DP-SGD, one sequence one row: the
negative ELBO is already a mean of per-sequence terms.
"""

from __future__ import annotations

import math

import torch
from pydantic import Field
from torch import nn

from generators.registry import register
from generators.timeseries.base import SequenceGenerator, SequenceParams, minibatches
from generators.timeseries.codec import SequenceBatch
from pipeline.core.progress import Progress


class TimeVAEParams(SequenceParams):
    latent: int = Field(8, gt=0)  # TimeVAE's default latent size: sequences of a few features compress well
    channels: list[int] = Field([32, 64], min_length=1)  # conv widths, each halving the time axis
    trend_degree: int = Field(2, ge=0)  # trend polynomial degree: 2 = level, slope and curvature
    seasons: list[tuple[int, int]] = []  # (seasons, steps per season), e.g. [[12, 1]] for months in a year
    recon_weight: float = Field(3.0, gt=0)  # TimeVAE's weight of reconstruction against the KL term


# ---- helpers --------------------------------------------------------------------------


def halved(length: int, times: int) -> int:
    """Length after `times` stride-2 convolutions with kernel 3 and padding 1."""
    for _ in range(times):
        length = math.ceil(length / 2)
    return length


def with_plan(x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
    """(B, T, F) and (B, C) -> channels-first (B, F + C, T) with the plan on every step."""
    return torch.cat([x, cond.unsqueeze(1).expand(-1, x.shape[1], -1)], dim=-1).transpose(1, 2)


# ---- building blocks ------------------------------------------------------------------


class Encoder(nn.Module):
    def __init__(self, features: int, cond: int, length: int, channels: list[int], latent: int) -> None:
        super().__init__()
        widths = [features + cond] + channels
        self.convs = nn.Sequential(
            *[layer for a, b in zip(widths, widths[1:]) for layer in (nn.Conv1d(a, b, 3, stride=2, padding=1), nn.ReLU())]
        )
        self.head = nn.Linear(channels[-1] * halved(length, len(channels)) + cond, 2 * latent)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.convs(with_plan(x, cond)).flatten(1)
        mu, logvar = self.head(torch.cat([h, cond], dim=1)).chunk(2, dim=1)
        return mu, logvar


class Trend(nn.Module):
    """z -> polynomial coefficients per feature, times a fixed basis (t / T) ** p."""

    def __init__(self, inp: int, features: int, length: int, degree: int) -> None:
        super().__init__()
        self.features, self.degree = features, degree
        self.coef = nn.Linear(inp, features * (degree + 1))
        t = torch.arange(length, dtype=torch.float32) / length
        self.register_buffer("basis", torch.stack([t**p for p in range(degree + 1)]))  # (P, T)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        coef = self.coef(z).view(-1, self.features, self.degree + 1)
        return (coef @ self.basis).transpose(1, 2)  # (B, T, F)


class Season(nn.Module):
    """z -> one value per season and feature, held for `steps` steps, cycling."""

    def __init__(self, inp: int, features: int, length: int, seasons: int, steps: int) -> None:
        super().__init__()
        self.features, self.seasons = features, seasons
        self.values = nn.Linear(inp, features * seasons)
        self.register_buffer("index", (torch.arange(length) // steps) % seasons)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        values = self.values(z).view(-1, self.seasons, self.features)
        return values[:, self.index]  # (B, T, F)


class Residual(nn.Module):
    """z -> dense -> upsampling convolutions (doubling time) -> dense to exactly (T, F)."""

    def __init__(self, inp: int, features: int, length: int, channels: list[int]) -> None:
        super().__init__()
        self.shape = (channels[-1], halved(length, len(channels)))
        self.features, self.length = features, length
        self.dense = nn.Linear(inp, channels[-1] * self.shape[1])
        widths = channels[::-1]
        self.deconvs = nn.Sequential(
            *[
                layer
                for a, b in zip(widths, widths[1:] + [channels[0]])
                for layer in (nn.Upsample(scale_factor=2), nn.Conv1d(a, b, 3, padding=1), nn.ReLU())
            ]
        )
        self.out = nn.Linear(channels[0] * self.shape[1] * 2 ** len(channels), length * features)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.dense(z)).view(-1, *self.shape)
        return self.out(self.deconvs(h).flatten(1)).view(-1, self.length, self.features)


# ---- model ----------------------------------------------------------------------------


class TimeVAE(nn.Module):
    def __init__(self, features: int, cond: int, length: int, p: TimeVAEParams) -> None:
        super().__init__()
        self.latent, self.recon_weight = p.latent, p.recon_weight
        inp = p.latent + cond
        self.encoder = Encoder(features, cond, length, p.channels, p.latent)
        self.trend = Trend(inp, features, length, p.trend_degree)
        self.seasons = nn.ModuleList(Season(inp, features, length, n, steps) for n, steps in p.seasons)
        self.residual = Residual(inp, features, length, p.channels)

    def decode(self, z: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        zc = torch.cat([z, cond], dim=1)
        out = self.trend(zc) + self.residual(zc)
        for season in self.seasons:
            out = out + season(zc)
        return out

    def forward(self, x: torch.Tensor, mask: torch.Tensor, cond: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Per-sequence losses: what DP-SGD clips, one sequence at a time."""
        noise = torch.randn((x.shape[0], self.latent), generator=generator, device=generator.device)
        return self.loss(SequenceBatch(x, mask, cond), noise, self.recon_weight, per_row=True)

    def loss(self, b: SequenceBatch, noise: torch.Tensor, recon_weight: float, per_row: bool = False) -> torch.Tensor:
        """Negative ELBO per sequence (`per_row`, (N,)), else its batch mean: weighted
        masked squared error plus KL to N(0, I)."""
        mu, logvar = self.encoder(b.x, b.cond)
        z = mu + (0.5 * logvar).exp() * noise
        sse = (((self.decode(z, b.cond) - b.x) ** 2) * b.mask.unsqueeze(-1)).sum((1, 2))
        kl = -0.5 * (1 + logvar - mu**2 - logvar.exp()).sum(1)
        elbo = recon_weight * sse + kl
        return elbo if per_row else elbo.mean()


# ---- generator plugin -----------------------------------------------------------------


@register("timeseries/vae")
class TimeVAEGenerator(SequenceGenerator):
    """TimeVAE over the source's sequences, padded to the longest."""

    Params = TimeVAEParams
    model_version = 3  # 2: upsampling convolutions replace the transposed ones (Opacus has no sampler for them); entity scales in the plan; 3: the shared codec models categoricals over 255 classes as a rank channel
    supports_privacy = True  # DP-SGD on encoder and decoder, one sequence one row; README, "Differential privacy"

    def _build(self) -> TimeVAE:
        return TimeVAE(self.codec_.n_features, self.codec_.n_cond, self.codec_.max_len, self.params)

    def _train(self, seqs: SequenceBatch, progress: Progress, generator: torch.Generator) -> None:
        opt = torch.optim.Adam(self.model_.parameters(), lr=self.params.lr)
        if self.privacy is not None:
            self._train_private(opt, seqs, progress, generator)
            return
        for epoch in range(1, self.params.epochs + 1):
            for idx in minibatches(len(seqs), self.params.batch_size, generator):
                b = seqs[idx]
                noise = torch.randn((len(idx), self.model_.latent), generator=generator, device=generator.device)
                loss = self.model_.loss(b, noise, self.params.recon_weight)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            progress(epoch, self.params.epochs, loss=loss.item())

    def _generate(self, cond: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        z = torch.randn((cond.shape[0], self.model_.latent), generator=generator, device=generator.device)
        return self.model_.decode(z, cond)
