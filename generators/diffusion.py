"""What every synthpipe diffusion model shares: the cosine noise schedule, the lookup
of per-sample schedule values and the sinusoidal timestep embedding. One definition,
so the tabular, time-series and image models cannot drift apart on them."""

from __future__ import annotations

import math

import torch
from torch import nn


def cosine_alphas_cumprod(timesteps: int, s: float = 0.008) -> torch.Tensor:
    """ᾱ_t of the cosine schedule (Nichol & Dhariwal, 2021), betas clipped at 0.999:
    noise grows slowly at both ends, which suits small data better than a linear one."""
    steps = torch.linspace(0, timesteps, timesteps + 1, dtype=torch.float64) / timesteps
    f = torch.cos((steps + s) / (1 + s) * math.pi / 2) ** 2
    betas = (1 - f[1:] / f[:-1]).clamp(max=0.999)
    return torch.cumprod(1 - betas, dim=0).float()


def extract(values: torch.Tensor, t: torch.Tensor, ndim: int) -> torch.Tensor:
    """Per-sample schedule values `values[t]`, shaped (len(t), 1, ...) to broadcast over
    a batch with `ndim` dimensions (rows, sequences or images)."""
    return values[t].reshape(len(t), *(1,) * (ndim - 1))


def sinusoidal_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """The transformer's sinusoidal position embedding of (integer or float) timesteps."""
    half = dim // 2
    freqs = torch.exp(torch.arange(half, device=t.device) * (-math.log(10_000) / (half - 1)))
    args = t.float()[:, None] * freqs[None]
    return torch.cat((args.sin(), args.cos()), dim=-1)


class SinusoidalPosEmb(nn.Module):
    """`sinusoidal_embedding` as a layer, to open an nn.Sequential."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return sinusoidal_embedding(t, self.dim)
