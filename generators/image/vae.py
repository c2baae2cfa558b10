"""image/vae: a convolutional VAE (Kingma & Welling, 2014), class-conditional (CVAE,
Sohn et al., 2015) when the source has labels.

The encoder halves the image L times with strided convolutions and maps it, with the
class, to a Gaussian posterior; the decoder mirrors it from a latent and the class.
Pixels in [0, 1] are scored with a per-pixel binary cross-entropy, the usual choice
for digit-like images; sampling returns the decoder's mean image."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from generators.budget import TrainingBudget
from generators.image.base import ImageGenerator, ImageParams
from generators.registry import register
from pipeline.core.progress import Progress


class VaeParams(ImageParams):
    DEFAULT_STEPS = 900  # ~2.5 CPU min at 28x28 on one core; 600 steps: FD 19 on digits28 (bench/image.py)
    lr: float = Field(1e-3, gt=0)  # a VAE is a plain likelihood model: a larger step than a GAN is stable
    latent_dim: int = Field(16, gt=0)  # small: digit-sized images need few factors
    width: int = Field(24, gt=0, multiple_of=8)  # full-resolution channels, doubled per halving (GroupNorm of 8);
    # 32 decoded 749 32x32 RGB images / CPU s, 24 > 1,000
    levels: int = Field(2, ge=1, le=5)  # halvings: the smallest map is (H/2^levels, W/2^levels)
    beta: float = Field(1.0, gt=0)  # KL weight: 1 is the true evidence lower bound


class Encoder(nn.Module):
    def __init__(
        self, *, channels: int, height: int, width: int, base: int, levels: int, latent_dim: int, num_classes: int
    ):
        super().__init__()
        layers, c_in = [], channels
        for i in range(levels):
            c_out = base * 2 ** (i + 1)
            layers += [nn.Conv2d(c_in, c_out, 4, 2, 1), nn.GroupNorm(8, c_out), nn.SiLU()]
            c_in = c_out
        self.features = nn.Sequential(*layers, nn.Flatten())
        flat = c_in * (height // 2**levels) * (width // 2**levels)
        self.to_stats = nn.Linear(flat + num_classes, 2 * latent_dim)
        self.num_classes = num_classes

    def forward(self, x: torch.Tensor, y: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.features(x)
        if self.num_classes:
            h = torch.cat([h, F.one_hot(y, self.num_classes).float()], 1)
        mu, logvar = self.to_stats(h).chunk(2, dim=1)
        return mu, logvar


class Decoder(nn.Module):
    def __init__(
        self, *, channels: int, height: int, width: int, base: int, levels: int, latent_dim: int, num_classes: int
    ):
        super().__init__()
        self.top = base * 2**levels
        self.h0, self.w0 = height // 2**levels, width // 2**levels
        self.project = nn.Sequential(nn.Linear(latent_dim + num_classes, self.top * self.h0 * self.w0), nn.SiLU())
        layers = []
        for i in range(levels, 0, -1):
            c_in, c_out = base * 2**i, base * 2 ** (i - 1)
            layers += [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1), nn.GroupNorm(8, c_out), nn.SiLU()]
        self.ups = nn.Sequential(*layers, nn.Conv2d(base, channels, 3, padding=1))
        self.num_classes = num_classes

    def forward(self, z: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        """Pixel logits."""
        if self.num_classes:
            z = torch.cat([z, F.one_hot(y, self.num_classes).float()], 1)
        return self.ups(self.project(z).view(-1, self.top, self.h0, self.w0))


class NegativeElbo(nn.Module):
    """Encoder and decoder as one module whose output is each image's loss: the negative
    evidence lower bound, per-pixel cross-entropy summed plus `beta` times the KL term.
    One module, so DP-SGD clips an image's gradient over both networks together."""

    def __init__(self, encoder: Encoder, decoder: Decoder, *, beta: float):
        super().__init__()
        self.encoder, self.decoder, self.beta = encoder, decoder, beta

    def forward(self, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        mu, logvar = self.encoder(x, y)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
        target = (x + 1) / 2  # pixels in [0, 1] for the cross-entropy
        recon = F.binary_cross_entropy_with_logits(self.decoder(z, y), target, reduction="none").flatten(1).sum(1)
        kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(1)
        return recon + self.beta * kl


@register("image/vae")
class ImageVAE(ImageGenerator):
    Params = VaeParams
    model_version = 2  # 2: outputs through the intensity map (base.intensity_map)

    def _levels(self) -> int:
        return self.params.levels

    def _build(self) -> dict[str, nn.Module]:
        p, (c, h, w) = self.params, self.net_shape_
        shared = dict(
            channels=c, height=h, width=w, base=p.width, levels=p.levels, latent_dim=p.latent_dim,
            num_classes=self.num_classes_,
        )
        return {"encoder": Encoder(**shared), "decoder": Decoder(**shared)}

    def _train(self, x: torch.Tensor, y: torch.Tensor | None, progress: Progress) -> None:
        p = self.params
        elbo = NegativeElbo(self.nets_["encoder"], self.nets_["decoder"], beta=p.beta).train()
        opt = torch.optim.Adam(elbo.parameters(), lr=p.lr)
        # private: DP-SGD on encoder and decoder (the ConvTranspose2d per-row norms: generators/private_norms.py)
        private = self._private(elbo, opt, x, y) if self.privacy is not None else None
        model, opt = (private.module, private.optimizer) if private else (elbo, opt)
        batches, budget = self._batches(x, y, private), TrainingBudget.of(p, progress)
        for _ in budget:
            images, labels = next(batches)
            opt.zero_grad(set_to_none=True)
            if private is None:
                loss = model(images, labels).mean()
                loss.backward()
                budget.record(loss=loss)
            else:  # no loss reported: it is computed on real images without noise
                private.loss(model(images, labels)).backward()
            opt.step()
        if private is not None:
            private.close()
            self.privacy_spent_ = private.spent().to_dict()

    def _generate(self, y: torch.Tensor | None, n: int, generator: torch.Generator) -> torch.Tensor:
        z = torch.randn(n, self.params.latent_dim, device=self.device_, generator=generator)
        return torch.sigmoid(self.nets_["decoder"](z, y)) * 2 - 1
