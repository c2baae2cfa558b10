"""image/gan: DCGAN (Radford et al., 2016) sized for small images, class-conditional
when the source has labels.

The generator projects noise (plus a class embedding) to a (H/2^L, W/2^L) map and
doubles it L times with strided transposed convolutions, BatchNorm and ReLU; the
discriminator mirrors it with strided convolutions and LeakyReLU. Conditioning in the
discriminator is a projection (Miyato & Koyama, 2018): the class embedding's inner
product with the features is added to the logit, which trains more stably than
concatenating one-hot maps. Loss: the non-saturating GAN loss."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from generators.image.base import ImageGenerator, ImageParams, batches
from generators.registry import register
from pipeline.core.progress import Progress


class GanParams(ImageParams):
    latent_dim: int = Field(64, gt=0)  # noise size: enough for 8x8-32x32 images
    width: int = Field(32, gt=0)  # channels at full resolution, doubled at each halving: small enough for CPU
    levels: int = Field(2, ge=1, le=5)  # halvings: the smallest map is (H/2^levels, W/2^levels)
    betas: tuple[float, float] = (0.5, 0.999)  # Adam betas of the DCGAN paper: a low beta1 damps oscillation


class DCGenerator(nn.Module):
    def __init__(
        self, *, channels: int, height: int, width: int, latent_dim: int, base: int, levels: int, num_classes: int
    ):
        super().__init__()
        self.top = base * 2**levels
        self.h0, self.w0 = height // 2**levels, width // 2**levels
        self.embed = nn.Embedding(num_classes, latent_dim) if num_classes else None
        self.project = nn.Sequential(
            nn.Linear(latent_dim, self.top * self.h0 * self.w0), nn.BatchNorm1d(self.top * self.h0 * self.w0), nn.ReLU()
        )
        ups = []
        for i in range(levels, 0, -1):
            c_in, c_out = base * 2**i, base * 2 ** (i - 1)
            ups += [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]
        self.ups = nn.Sequential(*ups)
        self.out = nn.Sequential(nn.Conv2d(base, channels, 3, padding=1), nn.Tanh())

    def forward(self, z: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        if self.embed is not None:
            z = z * self.embed(y)  # multiplicative class embedding, as in the projection-cGAN generators
        h = self.project(z).view(-1, self.top, self.h0, self.w0)
        return self.out(self.ups(h))


class DCDiscriminator(nn.Module):
    def __init__(self, *, channels: int, base: int, levels: int, num_classes: int):
        super().__init__()
        layers, c_in = [], channels
        for i in range(levels):
            c_out = base * 2 ** (i + 1)
            layers += [nn.Conv2d(c_in, c_out, 4, 2, 1, bias=i == 0)]
            layers += [nn.BatchNorm2d(c_out)] if i else []  # DCGAN: no BatchNorm on the input layer
            layers += [nn.LeakyReLU(0.2)]
            c_in = c_out
        self.features = nn.Sequential(*layers)
        self.logit = nn.Linear(c_in, 1)
        self.embed = nn.Embedding(num_classes, c_in) if num_classes else None

    def forward(self, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        h = self.features(x).sum(dim=(2, 3))  # global sum pooling keeps any input size
        out = self.logit(h).squeeze(1)
        if self.embed is not None:
            out = out + (self.embed(y) * h).sum(1)
        return out


@register("image/gan")
class ImageGAN(ImageGenerator):
    Params = GanParams

    def _levels(self) -> int:
        return self.params.levels

    def _build(self) -> dict[str, nn.Module]:
        p, (c, h, w) = self.params, self.shape_
        return {
            "generator": DCGenerator(
                channels=c, height=h, width=w, latent_dim=p.latent_dim, base=p.width, levels=p.levels,
                num_classes=self.num_classes_,
            ),
            "discriminator": DCDiscriminator(channels=c, base=p.width, levels=p.levels, num_classes=self.num_classes_),
        }

    def _train(self, x: torch.Tensor, y: torch.Tensor | None, progress: Progress) -> None:
        p, g, d = self.params, self.nets_["generator"], self.nets_["discriminator"]
        opt_g = torch.optim.Adam(g.parameters(), lr=p.lr, betas=p.betas)
        opt_d = torch.optim.Adam(d.parameters(), lr=p.lr, betas=p.betas)
        g.train()
        d.train()
        for epoch in range(p.epochs):
            total_d = total_g = 0.0
            steps = 0
            for idx in batches(len(x), p.batch_size):
                if len(idx) < 2:  # BatchNorm needs two samples
                    continue
                real, labels = x[idx], None if y is None else y[idx]
                fake = g(torch.randn(len(idx), p.latent_dim, device=x.device), labels)
                loss_d = F.softplus(-d(real, labels)).mean() + F.softplus(d(fake.detach(), labels)).mean()
                opt_d.zero_grad(set_to_none=True)
                loss_d.backward()
                opt_d.step()
                loss_g = F.softplus(-d(fake, labels)).mean()  # non-saturating: -log D(G(z))
                opt_g.zero_grad(set_to_none=True)
                loss_g.backward()
                opt_g.step()
                total_d, total_g, steps = total_d + loss_d.item(), total_g + loss_g.item(), steps + 1
            progress(epoch + 1, p.epochs, loss=total_g / max(steps, 1), loss_d=total_d / max(steps, 1))

    def _generate(self, y: torch.Tensor | None, n: int, generator: torch.Generator) -> torch.Tensor:
        z = torch.randn(n, self.params.latent_dim, device=self.device_, generator=generator)
        return self.nets_["generator"](z, y)
