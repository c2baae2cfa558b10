"""What every synthpipe diffusion model shares: the cosine noise schedule and its
buffers, the conversions between the clean sample, the noise and the velocity, the
DDIM step, and the sinusoidal timestep embedding. One definition, so the tabular,
time-series and image models cannot drift apart on them.

The API (`module` is the nn.Module that owns the schedule; `t` a LongTensor of one
timestep per sample, or one for the whole batch):

    cosine_alphas_cumprod(timesteps: int, s: float = 0.008) -> Tensor        # ᾱ_t, float32
    register_schedule(module: nn.Module, timesteps: int) -> None
        # buffers (non-persistent: rebuilt from `timesteps`) module.alphas_cumprod,
        # module.sqrt_alphas_cumprod, module.sqrt_one_minus_alphas_cumprod
    extract(values: Tensor, t: Tensor, ndim: int) -> Tensor                   # values[t] broadcastable
    q_sample(module, x0: Tensor, t: Tensor, noise: Tensor) -> Tensor          # x_t ~ q(x_t | x0)
    v_target(module, x0: Tensor, t: Tensor, noise: Tensor) -> Tensor         # v = √ᾱ ε - √(1-ᾱ) x0
    x0_from_v(module, x: Tensor, v: Tensor, t: Tensor) -> Tensor             # √ᾱ x_t - √(1-ᾱ) v
    x0_from_eps(module, x: Tensor, eps: Tensor, t: Tensor) -> Tensor         # (x_t - √(1-ᾱ) ε) / √ᾱ
    eps_from_x0(module, x: Tensor, x0: Tensor, t: Tensor) -> Tensor          # the noise implied by x0
    ddim_timesteps(timesteps: int, steps: int) -> list[tuple[int, int]]      # (t, t_next), t_next = -1 last
    ddim_step(module, x0: Tensor, eps: Tensor, t: int, t_next: int, *,
              eta: float = 0.0, generator: torch.Generator | None = None) -> Tensor   # x_{t_next}
    sinusoidal_embedding(t: Tensor, dim: int) -> Tensor;  SinusoidalPosEmb(dim)

A sampler is then: `x = randn`, for `(t, t_next)` in `ddim_timesteps(...)`: predict
(x0, eps) the model's way (clip x0, re-derive eps with `eps_from_x0`), `x =
ddim_step(...)`. The last step (t_next = -1) returns x0 itself.
"""

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


def register_schedule(module: nn.Module, timesteps: int) -> None:
    """Give `module` the schedule's buffers under their one set of names. Not persistent:
    they follow from `timesteps`, so checkpoints hold weights only."""
    ab = cosine_alphas_cumprod(timesteps)
    module.register_buffer("alphas_cumprod", ab, persistent=False)
    module.register_buffer("sqrt_alphas_cumprod", ab.sqrt(), persistent=False)
    module.register_buffer("sqrt_one_minus_alphas_cumprod", (1 - ab).sqrt(), persistent=False)


def extract(values: torch.Tensor, t: torch.Tensor, ndim: int) -> torch.Tensor:
    """Per-sample schedule values `values[t]`, shaped (len(t), 1, ...) to broadcast over
    a batch with `ndim` dimensions (rows, sequences or images)."""
    return values[t].reshape(len(t), *(1,) * (ndim - 1))


def _coefficients(module: nn.Module, t: torch.Tensor, ndim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(√ᾱ_t, √(1-ᾱ_t)) broadcastable over a batch of `ndim` dimensions."""
    return extract(module.sqrt_alphas_cumprod, t, ndim), extract(module.sqrt_one_minus_alphas_cumprod, t, ndim)


def q_sample(module: nn.Module, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """x_t ~ q(x_t | x0): clean samples noised to time `t` in one jump."""
    a, s = _coefficients(module, t, x0.ndim)
    return a * x0 + s * noise


def v_target(module: nn.Module, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """The velocity v = √ᾱ ε - √(1-ᾱ) x0 (Salimans & Ho 2022): a useful target at every
    noise level, where clean values recovered from predicted noise blow up near t = T."""
    a, s = _coefficients(module, t, x0.ndim)
    return a * noise - s * x0


def x0_from_v(module: nn.Module, x: torch.Tensor, v: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """The clean sample implied by a predicted velocity."""
    a, s = _coefficients(module, t, x.ndim)
    return a * x - s * v


def x0_from_eps(module: nn.Module, x: torch.Tensor, eps: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """The clean sample implied by predicted noise."""
    a, s = _coefficients(module, t, x.ndim)
    return (x - s * eps) / a


def eps_from_x0(module: nn.Module, x: torch.Tensor, x0: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """The noise implied by a (clipped or partly given) clean sample, so the DDIM step
    stays consistent with the x0 it moves toward."""
    a, s = _coefficients(module, t, x.ndim)
    return (x - a * x0) / s


def ddim_timesteps(timesteps: int, steps: int) -> list[tuple[int, int]]:
    """The (t, t_next) pairs of a `steps`-step DDIM pass: evenly spaced (rounded) from
    timesteps - 1 down to -1, which stands for "clean"."""
    times = torch.linspace(-1, timesteps - 1, steps + 1).round().long().flip(0).tolist()
    return list(zip(times[:-1], times[1:]))


def ddim_step(
    module: nn.Module,
    x0: torch.Tensor,
    eps: torch.Tensor,
    t: int,
    t_next: int,
    *,
    eta: float = 0.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """x_{t_next} from the predicted (x0, eps) at time t (Song et al. 2021, eq. 12). `eta`
    = 0 is deterministic DDIM; 1 with every timestep is DDPM's ancestral sampler, its
    fresh noise drawn from `generator`. The last step (t_next < 0) returns x0."""
    if t_next < 0:
        return x0
    a, a_next = module.alphas_cumprod[t], module.alphas_cumprod[t_next]
    sigma = eta * ((1 - a_next) / (1 - a) * (1 - a / a_next)).sqrt()
    x = module.sqrt_alphas_cumprod[t_next] * x0 + (1 - a_next - sigma**2).clamp(min=0).sqrt() * eps
    if eta == 0:
        return x
    return x + sigma * torch.randn(x0.shape, device=x0.device, dtype=x0.dtype, generator=generator)


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
