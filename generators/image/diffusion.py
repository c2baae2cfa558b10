"""image/diffusion: DDPM (Ho et al., 2020) with the small UNet of `generators.image.unet`,
class-conditional with classifier-free guidance (Ho & Salimans, 2022) when the source
has labels, sampled in a few steps with DPM-Solver++ (Lu et al., 2022), whose first
order is DDIM (Song et al., 2021).

Read top to bottom: the diffusion model (forward process and loss) -> the
sampler -> the registered generator."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from generators.budget import TrainingBudget
from generators.diffusion import cosine_alphas_cumprod, ddim_timesteps, extract
from generators.image.base import ImageGenerator, ImageParams, ema_of
from generators.registry import register
from generators.image.unet import UNet
from pipeline.core.progress import Progress

AUTO_PATCH_FROM = 16  # side (pixels) from which `patch: auto` works on 2x2 blocks
SIGMA_MAX = 80.0  # largest noise level the "karras" spacing starts at (theirs): pure noise for pixels in [-1, 1]
# its exponent: calls crowd at low noise as it grows. digits28, 10 calls: FD 12.4 at 3, 14.4 at 7 (theirs), 16.0
# at 1000 (~ even in log-SNR)
RHO = 3.0

# ---- the diffusion model ---------------------------------------------------------------------


class GaussianDiffusion(nn.Module):
    """The forward (noising) process around a noise-predicting UNet; `forward` is the loss."""

    def __init__(self, model: UNet, *, timesteps: int, p_uncond: float):
        super().__init__()
        self.model, self.timesteps, self.p_uncond = model, timesteps, p_uncond
        self.register_buffer("alphas_cumprod", cosine_alphas_cumprod(timesteps))

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """x_t ~ q(x_t | x_0)."""
        a = extract(self.alphas_cumprod, t, x0.ndim)
        return a.sqrt() * x0 + (1 - a).sqrt() * noise

    def forward(self, x0: torch.Tensor, y: torch.Tensor | None, *, per_row: bool = False) -> torch.Tensor:
        """The simple DDPM loss: MSE of the predicted noise at a uniform random timestep
        (`per_row`: one mean per image, what DP-SGD clips). With labels, a `p_uncond`
        share is trained as the null class for guidance."""
        t = torch.randint(0, self.timesteps, (len(x0),), device=x0.device)
        noise = torch.randn_like(x0)
        if y is not None:
            drop = torch.rand(len(y), device=y.device) < self.p_uncond
            y = torch.where(drop, self.model.num_classes, y)
        per_image = F.mse_loss(self.model(self.q_sample(x0, t, noise), t, y), noise, reduction="none").flatten(1)
        return per_image.mean(1) if per_row else per_image.mean()

    def predict_noise(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None, guidance: float) -> torch.Tensor:
        """ε(x, t, y); with guidance w: ε_null + w (ε_y - ε_null), both in one batch."""
        if y is None or guidance == 1.0:
            return self.model(x, t, y)
        null = torch.full_like(y, self.model.num_classes)
        eps_y, eps_null = self.model(torch.cat([x, x]), torch.cat([t, t]), torch.cat([y, null])).chunk(2)
        return eps_null + guidance * (eps_y - eps_null)


# ---- the sampler -----------------------------------------------------------------------------


def solver_times(alphas_cumprod: torch.Tensor, steps: int, spacing: str) -> list[tuple[int, int]]:
    """The (t, t_next) pairs of a `steps`-call pass, t_next -1 standing for "clean".
    "time": evenly spaced training timesteps (DDIM's choice); its last call, at t = T/steps,
    leaves a one-step jump from noise sigma 0.17 to clean at 10 steps, and that jump leaves
    visible speckle. "karras": noise levels sigma = sqrt(1 - a) / sqrt(a) evenly spaced in
    sigma^(1/RHO) between SIGMA_MAX and the smallest trained level (Karras et al., 2022),
    mapped to the nearest timestep: the last jump starts at sigma 0.006."""
    timesteps = len(alphas_cumprod)
    if spacing == "time":
        return ddim_timesteps(timesteps, steps)
    sigma = ((1 - alphas_cumprod) / alphas_cumprod).sqrt().double()
    lo, hi = float(sigma[0]), min(float(sigma[-1]), SIGMA_MAX)
    ramp = torch.linspace(0, 1, steps, dtype=torch.float64)
    wanted = (hi ** (1 / RHO) + ramp * (lo ** (1 / RHO) - hi ** (1 / RHO))) ** RHO
    times = (sigma[None, :] - wanted[:, None]).abs().argmin(1).tolist()
    times = sorted(set(times), reverse=True) + [-1]  # rounding can merge two low levels into one timestep
    return list(zip(times[:-1], times[1:]))


@torch.no_grad()
def dpm_solver_sample(
    diffusion: GaussianDiffusion,
    shape: tuple[int, ...],
    *,
    y: torch.Tensor | None,
    steps: int,
    order: int,
    guidance: float,
    guidance_sigmas: tuple[float, float],
    spacing: str,
    generator: torch.Generator,
) -> torch.Tensor:
    """Denoise pure noise in `steps` evenly spaced steps with DPM-Solver++ (Lu et al., 2022),
    the multistep solver of the probability-flow ODE in its data-prediction form: each step
    moves along the exponential integrator with the clean image x0 the model implies
    (clipped to [-1, 1]); `order` 2 extrapolates x0 linearly in log-SNR from the previous
    step, which reaches DDIM's 25-step quality in about 10. `order` 1 is exactly DDIM
    (eta 0). The last step returns x0 itself. Draws randomness from `generator` only."""
    acp = diffusion.alphas_cumprod
    x = torch.randn(shape, device=acp.device, generator=generator)
    times = solver_times(acp, steps, spacing)
    previous: tuple[torch.Tensor, torch.Tensor] | None = None  # (x0, h) of the step before
    for t, t_next in times:
        tt = torch.full((shape[0],), t, device=acp.device, dtype=torch.long)
        a, s = acp[t].sqrt(), (1 - acp[t]).sqrt()
        w = guidance if guidance_sigmas[0] <= s / a <= guidance_sigmas[1] else 1.0
        x0 = ((x - s * diffusion.predict_noise(x, tt, y, w)) / a).clamp(-1, 1)
        if t_next < 0:
            return x0
        a_next, s_next = acp[t_next].sqrt(), (1 - acp[t_next]).sqrt()
        h = torch.log(a_next / s_next) - torch.log(a / s)  # step in log signal-to-noise ratio
        d = x0
        if order == 2 and previous is not None:
            r = previous[1] / h
            d = (1 + 1 / (2 * r)) * x0 - previous[0] / (2 * r)
        x = (s_next / s) * x - a_next * torch.expm1(-h) * d
        previous = (x0, h)
    return x


# ---- the generator -----------------------------------------------------------------------------


class DiffusionParams(ImageParams):
    DEFAULT_STEPS = 700  # ~3 CPU min at 28x28 on one core; 600 steps: FD 27 on digits28 (bench/image.py)
    batch_size: int = Field(64, gt=0)  # at a fixed CPU budget, more steps of 64 beat fewer of 128
    lr: float = Field(1e-3, gt=0)  # AdamW; with the EMA below a large step is stable on small images
    dim: int = Field(32, gt=0, multiple_of=8)  # UNet base channels (GroupNorm of 8)
    dim_mults: tuple[int, ...] = (1, 2)  # channel multiplier per level; len - 1 halvings after the patch stem
    # pixel blocks stacked as channels: 28x28 runs at 14x14, ~3x faster per image; "auto": 2 from 16 pixels a
    # side up, 1 below (an 8x8 digit has no detail to spare)
    patch: Literal["auto", 1, 2, 4] = "auto"
    blocks: int = Field(1, ge=1)  # residual blocks per level and direction: 1 halves the cost of 2 on CPU
    timesteps: int = Field(1000, gt=1)  # noise levels of training (the DDPM paper's 1000)
    # solver steps (model calls). One fit on digits28 ("time" spacing, before channels-last): FD 23.8 / 21.4 /
    # 19.6 at 6 / 8 / 10 steps, 86 / 71 / 58 images per CPU s; on 32x32 RGB patches FD 42.4 at 6, 39.6 at 10
    sampling_steps: int = Field(10, gt=0)
    solver_order: int = Field(2, ge=1, le=2)  # 2: DPM-Solver++(2M); 1: DDIM
    # classifier-free guidance weight: eps_null + w (eps_y - eps_null); 1 is plain conditional, one model call.
    # Within `guidance_sigmas` a call costs two. One fit on digits28 (10 calls, "karras"): label accuracy 0.50
    # unguided, 0.78 (0.80 of real images' 0.97) at 2 in (0.2, 5); FD 12.4 -> 15.3; 119 -> 80 images / CPU s.
    # 32x32 RGB patches: 0.60 -> 0.69 (0.82 of real), FD 33.3 -> 28.2, 81 -> 59 images / CPU s
    # None: 2 from AUTO_PATCH_FROM pixels a side, 1 below (8x8 digits read 0.95 as their class unguided, and 2 raised
    # the FD of the digits job from 0.27 to 0.98)
    guidance: float | None = Field(None, ge=0)
    # noise levels (sigma = sqrt(1 - a) / sqrt(a)) where guidance applies, elsewhere one plain conditional call
    # (Kynkäänniemi et al., 2024: at high noise it costs diversity, at low noise it does nothing): 3 of the 10
    # "karras" calls. Guidance 2 at every call: 0.88 label accuracy, FD 24.2, half the speed ("time" spacing)
    guidance_sigmas: tuple[float, float] = (0.2, 5.0)
    # solver timesteps (`solver_times`). One fit on digits28, 10 calls, unguided: "time" FD 19.2, its samples
    # speckled with the noise its last jump (sigma 0.17 to clean) leaves; "karras" FD 12.4, clean backgrounds
    # "auto": karras from AUTO_PATCH_FROM pixels a side, time below (8x8 digits job: FD 0.27 time, 0.68 karras)
    spacing: Literal["auto", "time", "karras"] = "auto"
    p_uncond: float = Field(0.1, ge=0, lt=1)  # share of labelled training images shown as "no class"
    ema_decay: float = Field(0.995, ge=0, lt=1)  # sampling weight average (base.ema_of, warmed up): steadier samples


@register("image/diffusion")
class ImageDiffusion(ImageGenerator):
    Params = DiffusionParams
    model_version = 2  # 2: outputs through the intensity map (base.intensity_map), warmed-up EMA (base.ema_of)

    def _patch(self) -> int:
        if self.params.patch != "auto":
            return self.params.patch
        return 1 if self._small() else 2

    def _small(self) -> bool:
        """Under AUTO_PATCH_FROM pixels a side: the "auto" settings measured best there differ."""
        return min(self.shape_[1:]) < AUTO_PATCH_FROM

    def _guidance(self) -> float:
        if self.params.guidance is not None:
            return self.params.guidance
        return 1.0 if self._small() else 2.0

    def _spacing(self) -> str:
        if self.params.spacing != "auto":
            return self.params.spacing
        return "time" if self._small() else "karras"

    def _levels(self) -> int:
        return self._patch().bit_length() - 1 + len(self.params.dim_mults) - 1

    def _build(self) -> dict[str, nn.Module]:
        p = self.params
        unet = UNet(
            channels=self.net_shape_[0], dim=p.dim, dim_mults=p.dim_mults, num_classes=self.num_classes_,
            patch=self._patch(), blocks=p.blocks,
        )
        return {"diffusion": GaussianDiffusion(unet, timesteps=p.timesteps, p_uncond=p.p_uncond)}

    def _train(self, x: torch.Tensor, y: torch.Tensor | None, progress: Progress) -> None:
        p, diffusion = self.params, self.nets_["diffusion"]
        ema = ema_of(diffusion, p.ema_decay)
        opt = torch.optim.AdamW(diffusion.parameters(), lr=p.lr)
        diffusion.train()
        # private: DP-SGD on the UNet (Conv2d, GroupNorm, Linear, Embedding: all Opacus-supported); the EMA is a
        # function of the private iterates, so post-processing
        private = self._private(diffusion, opt, x, y) if self.privacy is not None else None
        model, opt = (private.module, private.optimizer) if private else (diffusion, opt)
        batches, budget = self._batches(x, y, private), TrainingBudget.of(p, progress)
        for _ in budget:
            images, labels = next(batches)
            opt.zero_grad(set_to_none=True)
            if private is None:
                loss = model(images, labels)
                loss.backward()
                nn.utils.clip_grad_norm_(diffusion.parameters(), 1.0)
                budget.record(loss=loss)
            else:  # no loss reported: it is computed on real images without noise
                private.loss(model(images, labels, per_row=True)).backward()
            opt.step()
            ema.update_parameters(diffusion)
        if private is not None:
            private.close()
            self.privacy_spent_ = private.spent().to_dict()
        diffusion.load_state_dict(ema.module.state_dict())  # sample (and save) the averaged weights

    def _generate(self, y: torch.Tensor | None, n: int, generator: torch.Generator) -> torch.Tensor:
        p = self.params
        return dpm_solver_sample(
            self.nets_["diffusion"], (n, *self.net_shape_), y=y, steps=min(p.sampling_steps, p.timesteps),
            order=p.solver_order, guidance=self._guidance(), guidance_sigmas=p.guidance_sigmas, spacing=self._spacing(),
            generator=generator,
        )
