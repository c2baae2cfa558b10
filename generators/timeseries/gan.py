"""`timeseries/gan`: TimeGAN (Yoon, Jarrett & van der Schaar, NeurIPS 2019) in torch.

Five recurrent networks. An embedder / recovery pair maps features to a latent
sequence and back; a generator turns noise into latent sequences; a supervisor
predicts the next latent step, so the generator learns the step-to-step dynamics
from real data and not from the adversarial signal alone; a discriminator tells real
from generated latent sequences. Training follows the paper's three phases:

1. autoencoder: embedder + recovery on reconstruction,
2. supervised: the supervisor on next-step prediction of real embeddings,
3. joint: generator + supervisor (adversarial + supervised + moment losses),
   embedder + recovery (reconstruction + supervised), and the discriminator, which
   is only updated while it is not already winning (loss above a threshold).

Every network also sees the entity's plan (static encoding, length, start) at every
step, so sampling with `conditions` on a static column conditions the sequence too.
Padded steps are masked out of every loss.

No private fit (`generator.privacy` is refused, exit 2): not only the discriminator
sees real sequences here. The embedder and recovery train on them directly, the
supervisor on their embeddings, and the generator's moment loss compares a batch's
mean and spread with the real batch's, a term of every row at once that per-row
clipping cannot bound. A DP TimeGAN needs DP-SGD on three optimisers sharing one
budget and those losses rebuilt, on recurrent layers whose DP-SGD step costs 4.3-5.4x a
plain one with Opacus (bench/dp_recurrent.py); timeseries/diffusion and timeseries/vae
train privately.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from generators.registry import register
from generators.timeseries.base import SequenceGenerator, SequenceParams, masked_mse, minibatches
from generators.timeseries.codec import SequenceBatch
from pipeline.core.progress import Progress


class TimeGANParams(SequenceParams):
    epochs: int = Field(150, gt=0)  # joint epochs; each costs ~5 passes of five GRUs, so fewer than the others
    hidden: int = Field(24, gt=0)  # GRU width of every network (the paper's 24)
    layers: int = Field(2, ge=2)  # GRU depth (paper: 3; 2 halves the CPU time); the supervisor gets one fewer
    pretrain_epochs: int = Field(50, gt=0)  # epochs of phase 1 and again of phase 2, before joint training
    gamma: float = Field(1.0, ge=0)  # weight of the adversarial loss on unsupervised latents (paper: 1)
    d_threshold: float = Field(0.15, ge=0)  # train the discriminator only while its loss is above this (paper)


# ---- building blocks ------------------------------------------------------------------


def with_plan(x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
    """Append the per-entity plan to every step."""
    return torch.cat([x, cond.unsqueeze(1).expand(-1, x.shape[1], -1)], dim=-1)


class Recurrent(nn.Module):
    """GRU -> linear per step, optionally squashed to (0, 1) as the paper's latents are."""

    def __init__(self, inp: int, hidden: int, out: int, layers: int, squash: bool) -> None:
        super().__init__()
        self.rnn = nn.GRU(inp, hidden, num_layers=layers, batch_first=True)
        self.proj = nn.Linear(hidden, out)
        self.squash = squash

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        h, _ = self.rnn(with_plan(x, cond))
        y = self.proj(h)
        return torch.sigmoid(y) if self.squash else y


def masked_bce(logits: torch.Tensor, target: float, mask: torch.Tensor) -> torch.Tensor:
    labels = torch.full_like(mask, target)
    return F.binary_cross_entropy_with_logits(logits.squeeze(-1), labels, weight=mask, reduction="sum") / mask.sum()


def moments(x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-feature mean and standard deviation over existing steps."""
    m = mask.unsqueeze(-1)
    n = m.sum()
    mean = (x * m).sum((0, 1)) / n
    var = (((x - mean) ** 2) * m).sum((0, 1)) / n
    return mean, (var + 1e-6).sqrt()


# ---- model ----------------------------------------------------------------------------


class TimeGAN(nn.Module):
    def __init__(self, features: int, cond: int, hidden: int, layers: int) -> None:
        super().__init__()
        self.noise_dim = features  # the paper draws noise with the data's width
        self.embedder = Recurrent(features + cond, hidden, hidden, layers, squash=True)
        self.recovery = Recurrent(hidden + cond, hidden, features, layers, squash=False)
        self.generator = Recurrent(self.noise_dim + cond, hidden, hidden, layers, squash=True)
        self.supervisor = Recurrent(hidden + cond, hidden, hidden, layers - 1, squash=True)
        self.discriminator = Recurrent(hidden + cond, hidden, 1, layers, squash=False)

    def fake(self, z: torch.Tensor, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(generator latents, supervised latents) from noise."""
        e_hat = self.generator(z, cond)
        return e_hat, self.supervisor(e_hat, cond)

    def reconstruction_loss(self, b: SequenceBatch) -> torch.Tensor:
        return 10 * masked_mse(self.recovery(self.embedder(b.x, b.cond), b.cond), b.x, b.mask).sqrt()

    def supervised_loss(self, h: torch.Tensor, b: SequenceBatch) -> torch.Tensor:
        """Next-step prediction of real latents: the supervisor learns the dynamics."""
        return masked_mse(self.supervisor(h, b.cond)[:, :-1], h[:, 1:], b.mask[:, 1:])

    def generator_loss(self, b: SequenceBatch, z: torch.Tensor, gamma: float) -> torch.Tensor:
        e_hat, h_hat = self.fake(z, b.cond)
        x_hat = self.recovery(h_hat, b.cond)
        adversarial = masked_bce(self.discriminator(h_hat, b.cond), 1.0, b.mask) + gamma * masked_bce(
            self.discriminator(e_hat, b.cond), 1.0, b.mask
        )
        supervised = self.supervised_loss(self.embedder(b.x, b.cond), b)
        (mean_hat, std_hat), (mean, std) = moments(x_hat, b.mask), moments(b.x, b.mask)
        moment = (std_hat - std).abs().mean() + (mean_hat - mean).abs().mean()
        return adversarial + 100 * supervised.sqrt() + 100 * moment

    def embedder_loss(self, b: SequenceBatch) -> torch.Tensor:
        h = self.embedder(b.x, b.cond)
        return self.reconstruction_loss(b) + 0.1 * self.supervised_loss(h, b)

    def discriminator_loss(self, b: SequenceBatch, z: torch.Tensor, gamma: float) -> torch.Tensor:
        with torch.no_grad():
            h = self.embedder(b.x, b.cond)
            e_hat, h_hat = self.fake(z, b.cond)
        return (
            masked_bce(self.discriminator(h, b.cond), 1.0, b.mask)
            + masked_bce(self.discriminator(h_hat, b.cond), 0.0, b.mask)
            + gamma * masked_bce(self.discriminator(e_hat, b.cond), 0.0, b.mask)
        )


def _step(opt: torch.optim.Optimizer, loss: torch.Tensor) -> float:
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return float(loss.detach())


# ---- generator plugin -----------------------------------------------------------------


@register("timeseries/gan")
class TimeGANGenerator(SequenceGenerator):
    """TimeGAN over the source's sequences, padded to the longest."""

    Params = TimeGANParams
    model_version = 3  # 2: entity scales in the plan (more conditioning channels); 3: the shared codec models categoricals over 255 classes as a rank channel

    def _build(self) -> TimeGAN:
        return TimeGAN(self.codec_.n_features, self.codec_.n_cond, self.params.hidden, self.params.layers)

    def _noise(self, b: SequenceBatch, generator: torch.Generator) -> torch.Tensor:
        shape = (b.x.shape[0], b.x.shape[1], self.model_.noise_dim)
        return torch.rand(shape, generator=generator, device=generator.device)

    def _train(self, seqs: SequenceBatch, progress: Progress, generator: torch.Generator) -> None:
        m, p = self.model_, self.params
        adam = lambda *nets: torch.optim.Adam([w for net in nets for w in net.parameters()], lr=p.lr)  # noqa: E731
        opt_ae, opt_sup = adam(m.embedder, m.recovery), adam(m.supervisor)
        opt_gen, opt_disc = adam(m.generator, m.supervisor), adam(m.discriminator)
        total, done = 2 * p.pretrain_epochs + p.epochs, 0
        for phase in ("autoencoder", "supervised"):
            for _ in range(p.pretrain_epochs):
                for idx in minibatches(len(seqs), p.batch_size, generator):
                    b = seqs[idx]
                    if phase == "autoencoder":
                        loss = _step(opt_ae, m.reconstruction_loss(b))
                    else:
                        loss = _step(opt_sup, m.supervised_loss(m.embedder(b.x, b.cond).detach(), b))
                done += 1
                progress(done, total, loss=loss)
        for _ in range(p.epochs):
            for idx in minibatches(len(seqs), p.batch_size, generator):
                b = seqs[idx]
                for _ in range(2):  # the paper trains generator and embedder twice per discriminator step
                    g_loss = _step(opt_gen, m.generator_loss(b, self._noise(b, generator), p.gamma))
                    _step(opt_ae, m.embedder_loss(b))
                d_loss = m.discriminator_loss(b, self._noise(b, generator), p.gamma)
                if d_loss.item() > p.d_threshold:
                    _step(opt_disc, d_loss)
            done += 1
            progress(done, total, loss=g_loss, d_loss=d_loss.item())

    def _generate(self, cond: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        z = torch.rand((cond.shape[0], self.codec_.max_len, self.model_.noise_dim), generator=generator, device=generator.device)
        _, h_hat = self.model_.fake(z, cond)
        return self.model_.recovery(h_hat, cond)
