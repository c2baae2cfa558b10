"""image/gan: DCGAN (Radford et al., 2016) sized for small images, class-conditional
when the source has labels, trained with the tools that make GANs work on hundreds of
images: differentiable augmentation (Zhao et al., 2020), a spectrally normalised
discriminator (Miyato et al., 2018), the hinge loss, and an exponential moving average
of the generator's weights, which is what samples.

The generator projects noise to a (H/2^L, W/2^L) map and doubles it L times with
strided transposed convolutions, BatchNorm and ReLU; the discriminator mirrors it with
strided convolutions and LeakyReLU. Conditioning follows the projection cGAN (Miyato &
Koyama, 2018): in the discriminator the class embedding's inner product with the
features is added to the logit; in the generator every BatchNorm takes its gain and
bias from the class (conditional BatchNorm, de Vries et al., 2017), so the class moves
the mean of every layer. (Multiplying the noise by a class embedding, tried first,
does not: z * e_y has mean 0 for every class, the class lives only in per-dimension
variances, and 700 steps on digits drew every class alike, 12 % label accuracy.)

Differentiable augmentation: every image the discriminator sees, real or generated,
is randomly translated and has a square cut out, and the generator's gradient flows
through the same transforms. The discriminator then cannot memorise a small training
set, and since generated images are augmented too the generator is not taught to
produce translated, cut images (what plain data augmentation would teach it)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from torch.nn.utils.parametrizations import spectral_norm

from generators.budget import TrainingBudget
from generators.image.base import ImageGenerator, ImageParams, ema_of
from generators.private import PrivateTraining
from generators.registry import register
from pipeline.core.progress import Progress


class GanParams(ImageParams):
    # bench/image.py, one contended core: 190 / 244 fit CPU s on digits28 / patches32 (issue #13 allows 600), FD 9.1x /
    # 13.1x the real-vs-real floor; the 700 steps (plain EMA 0.99) before: 106 / 121 CPU s, FD 24.5x / 53x. With the
    # intensity map (v4, the same fits): FD 9.5x / 9.8x, recall 0.90 / 0.55 (0.90 / 0.71 without), pixel TVD 0.014 /
    # 0.032 (0.154 / 0.161 without; real 0.012 / 0.072)
    DEFAULT_STEPS = 1500
    latent_dim: int = Field(64, gt=0)  # noise size: enough for 8x8-32x32 images
    width: int = Field(24, gt=0)  # channels at full resolution, doubled at each halving; 32 drew 914 32x32 RGB
    # images per CPU s, 24 over 1,000
    levels: int = Field(2, ge=1, le=5)  # halvings: the smallest map is (H/2^levels, W/2^levels)
    betas: tuple[float, float] = (0.5, 0.999)  # Adam betas of the DCGAN paper: a low beta1 damps oscillation
    augment: bool = True  # differentiable translation + cutout; 300 steps on digits28: FD 25 with, 412 without
    translate: float = Field(0.125, ge=0, lt=0.5)  # largest shift, as a share of height / width (the paper's 1/8)
    cutout: float = Field(0.5, ge=0, lt=1)  # side of the cut-out square, as a share of the image (the paper's 1/2)
    # weight of the auxiliary classifier's cross-entropy (AC-GAN, Odena et al., 2017), on a head of the
    # discriminator trained on real images only. digits28, 700 steps: label accuracy 0.29 -> 0.42 (real: 0.97),
    # FD 5.5 -> 8.0 (floor 0.32); 0 is the projection alone
    class_loss: float = Field(1.0, ge=0)
    # generator weight average that samples, warmed up (base.ema_of): a ~200-step horizon, StyleGAN2-ADA's rule
    # (half-life 5 % of the images seen) at ~3,000 steps. digits28, 500 steps: FD 8.4 plain 0.99, 6.0 warmed-up
    # 0.995; 1,000 steps: 4.8 either way
    ema_decay: float = Field(0.995, ge=0, lt=1)


# ---- differentiable augmentation ---------------------------------------------------------------


def diff_augment(x: torch.Tensor, *, translate: float, cutout: float) -> torch.Tensor:
    """Shift each image by a random whole number of pixels (up to `translate` of its size,
    edge pixels filling in) and blank a random square of side `cutout` of its size to 0
    (mid-grey). Both are a resampling and a mask: gradients pass to the pixels kept.
    Randomness from torch's global RNG, seeded by `fit`."""
    n, _, h, w = x.shape
    if translate > 0:
        limit = torch.tensor([w * translate, h * translate], device=x.device).round()
        shift = (torch.rand(n, 2, device=x.device) * 2 - 1).mul(limit).round()  # (dx, dy) pixels
        theta = torch.zeros(n, 2, 3, device=x.device, dtype=x.dtype)
        theta[:, 0, 0] = theta[:, 1, 1] = 1
        theta[:, :, 2] = -2 * shift / torch.tensor([w, h], device=x.device)  # grid units span 2 per image side
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        x = F.grid_sample(x, grid, mode="nearest", padding_mode="border", align_corners=False)
    if cutout > 0:
        ch, cw = max(1, round(h * cutout)), max(1, round(w * cutout))
        cy = torch.randint(0, h + 1 - ch, (n, 1, 1), device=x.device)
        cx = torch.randint(0, w + 1 - cw, (n, 1, 1), device=x.device)
        rows = torch.arange(h, device=x.device)[None, :, None]
        cols = torch.arange(w, device=x.device)[None, None, :]
        inside = (rows >= cy) & (rows < cy + ch) & (cols >= cx) & (cols < cx + cw)
        x = x * (~inside)[:, None].to(x.dtype)
    return x


# ---- the networks ------------------------------------------------------------------------------


class ClassBatchNorm(nn.Module):
    """BatchNorm whose gain and bias are looked up by class (plain BatchNorm without
    classes). Gains start at 1 and biases at 0: at initialisation it is plain BatchNorm."""

    def __init__(self, channels: int, num_classes: int, *, dims: int):
        super().__init__()
        norm = nn.BatchNorm2d if dims == 2 else nn.BatchNorm1d
        self.norm = norm(channels, affine=not num_classes)
        self.gain = nn.Embedding(num_classes, channels) if num_classes else None
        self.bias = nn.Embedding(num_classes, channels) if num_classes else None
        if num_classes:
            nn.init.ones_(self.gain.weight)
            nn.init.zeros_(self.bias.weight)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        h = self.norm(x)
        if self.gain is None:
            return h
        shape = (len(y), -1) + (1,) * (x.ndim - 2)
        return h * self.gain(y).view(shape) + self.bias(y).view(shape)


class DCGenerator(nn.Module):
    def __init__(
        self, *, channels: int, height: int, width: int, latent_dim: int, base: int, levels: int, num_classes: int
    ):
        super().__init__()
        self.top = base * 2**levels
        self.h0, self.w0 = height // 2**levels, width // 2**levels
        self.project = nn.Linear(latent_dim, self.top * self.h0 * self.w0)
        self.project_norm = ClassBatchNorm(self.top * self.h0 * self.w0, num_classes, dims=1)
        self.ups = nn.ModuleList()
        self.up_norms = nn.ModuleList()
        for i in range(levels, 0, -1):
            c_in, c_out = base * 2**i, base * 2 ** (i - 1)
            self.ups.append(nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False))
            self.up_norms.append(ClassBatchNorm(c_out, num_classes, dims=2))
        self.out = nn.Sequential(nn.Conv2d(base, channels, 3, padding=1), nn.Tanh())

    def forward(self, z: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        h = F.relu(self.project_norm(self.project(z), y)).view(-1, self.top, self.h0, self.w0)
        for up, norm in zip(self.ups, self.up_norms):
            h = F.relu(norm(up(h), y))
        return self.out(h)


class DCDiscriminator(nn.Module):
    """`spectral`: spectral norm on every layer but the class head. A private fit trains
    without it: torch's parametrisation keeps power-iteration buffers, which Opacus
    refuses (per-row gradients of a layer with buffers), and DP-SGD's clipping already
    bounds each step."""

    def __init__(self, *, channels: int, base: int, levels: int, num_classes: int, spectral: bool = True):
        super().__init__()
        norm = spectral_norm if spectral else (lambda layer: layer)
        layers, c_in = [], channels
        for i in range(levels):
            c_out = base * 2 ** (i + 1)
            # spectral norm bounds each layer's Lipschitz constant; it replaces DCGAN's BatchNorm
            layers += [norm(nn.Conv2d(c_in, c_out, 4, 2, 1)), nn.LeakyReLU(0.2)]
            c_in = c_out
        self.features = nn.Sequential(*layers)
        self.logit = norm(nn.Linear(c_in, 1))
        self.embed = norm(nn.Embedding(num_classes, c_in)) if num_classes else None
        self.classify = nn.Linear(c_in, num_classes) if num_classes else None  # the auxiliary classifier's head

    def forward(self, x: torch.Tensor, y: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(real-vs-fake logit, class logits or None) from one pass over the features."""
        h = self.features(x).sum(dim=(2, 3))  # global sum pooling keeps any input size
        out = self.logit(h).squeeze(1)
        if self.embed is None:
            return out, None
        return out + (self.embed(y) * h).sum(1), self.classify(h)


@register("image/gan")
class ImageGAN(ImageGenerator):
    Params = GanParams
    # 2: class-conditional BatchNorm in the generator (was: noise times a class embedding); 3: warmed-up EMA;
    # 4: outputs through the intensity map (base.intensity_map)
    model_version = 4

    def _levels(self) -> int:
        return self.params.levels

    def _build(self) -> dict[str, nn.Module]:
        p, (c, h, w) = self.params, self.net_shape_
        return {
            "generator": DCGenerator(
                channels=c, height=h, width=w, latent_dim=p.latent_dim, base=p.width, levels=p.levels,
                num_classes=self.num_classes_,
            ),
            "discriminator": DCDiscriminator(channels=c, base=p.width, levels=p.levels, num_classes=self.num_classes_,
                                             spectral=self.privacy is None),
        }

    def _train(self, x: torch.Tensor, y: torch.Tensor | None, progress: Progress) -> None:
        p, g, d = self.params, self.nets_["generator"], self.nets_["discriminator"]
        ema = ema_of(g, p.ema_decay)
        opt_g = torch.optim.Adam(g.parameters(), lr=p.lr, betas=p.betas)
        opt_d = torch.optim.Adam(d.parameters(), lr=p.lr, betas=p.betas)
        augment = (lambda v: diff_augment(v, translate=p.translate, cutout=p.cutout)) if p.augment else (lambda v: v)
        g.train()
        d.train()
        private = self._private(d, opt_d, x, y) if self.privacy is not None else None
        batches, budget = self._batches(x, y, private), TrainingBudget.of(p, progress)
        for _ in budget:
            real, labels = next(batches)
            if private is None:
                fake = g(torch.randn(len(real), p.latent_dim, device=x.device), labels)
                loss_d = self._discriminator_loss(d, augment(real), augment(fake.detach()), labels)
                opt_d.zero_grad(set_to_none=True)
                loss_d.backward()
                opt_d.step()
            else:  # its loss, computed on real images without noise, is not reported
                labels, fake = self._private_discriminator_step(private, augment, real, labels, g)
            fake_logit, fake_classes = d(augment(fake), labels)
            loss_g = -fake_logit.mean()  # hinge loss, generator side
            if fake_classes is not None:  # ... and the generator is asked to draw what it reads as the label
                loss_g = loss_g + p.class_loss * F.cross_entropy(fake_classes, labels)
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            opt_g.step()
            ema.update_parameters(g)
            if private is None:
                budget.record(loss=loss_g, loss_d=loss_d)
            else:
                private.module.enable_hooks()  # off since the discriminator step: the generator's pass is no row's
        if private is not None:
            private.close()
            self.privacy_spent_ = private.spent().to_dict()
        g.load_state_dict(ema.module.state_dict())  # sample (and save) the averaged weights

    def _discriminator_loss(self, d: nn.Module, real: torch.Tensor, fake: torch.Tensor,
                            labels: torch.Tensor | None) -> torch.Tensor:
        real_logit, real_classes = d(real, labels)
        fake_logit, _ = d(fake, labels)
        loss_d = F.relu(1 - real_logit).mean() + F.relu(1 + fake_logit).mean()
        if real_classes is not None:  # the head learns the classes from real images only
            loss_d = loss_d + self.params.class_loss * F.cross_entropy(real_classes, labels)
        return loss_d

    def _private_discriminator_step(self, private: PrivateTraining, augment, real: torch.Tensor,
                                    labels: torch.Tensor | None, g: nn.Module) -> tuple[torch.Tensor | None, torch.Tensor]:
        """One DP-SGD step of the discriminator, the one network that sees the images, on a
        Poisson batch of real images and `batch_size` generated ones in one pass; each row's
        hinge (and class) loss is clipped, fakes too. The fakes' number and classes (drawn
        uniformly) do not depend on which real images the batch holds, so adding or removing
        one image changes the summed gradient by at most the clipping norm. Returns the
        fakes' (labels, images) for the generator's step, and leaves the discriminator's
        per-row hooks off for it: that step is post-processing."""
        p, n = self.params, len(real)
        fake_labels = None if labels is None else torch.randint(
            0, self.num_classes_, (p.batch_size,), device=real.device)
        fake = g(torch.randn(p.batch_size, p.latent_dim, device=real.device), fake_labels)
        both = None if labels is None else torch.cat([labels, fake_labels])
        logit, classes = private.module(augment(torch.cat([real, fake.detach()])), both)
        per_row = torch.cat([F.relu(1 - logit[:n]), F.relu(1 + logit[n:])])
        if classes is not None:  # the head learns the classes from real images only
            per_row = per_row + p.class_loss * torch.cat([
                F.cross_entropy(classes[:n], labels, reduction="none"), torch.zeros(p.batch_size, device=real.device)])
        private.optimizer.zero_grad(set_to_none=True)
        private.loss(per_row).backward()
        private.optimizer.step()
        private.module.disable_hooks()
        return fake_labels, fake

    def _generate(self, y: torch.Tensor | None, n: int, generator: torch.Generator) -> torch.Tensor:
        z = torch.randn(n, self.params.latent_dim, device=self.device_, generator=generator)
        return self.nets_["generator"](z, y)
