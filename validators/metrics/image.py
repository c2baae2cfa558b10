"""Image fidelity: features of a small CNN trained here on the source images (no
pretrained weights can be downloaded), then a Fréchet distance (torchmetrics, with our
feature module) and precision / recall / density / coverage (prdc) on those features,
plus a pixel-intensity histogram distance.

The CNN learns the labels when the source has them, otherwise which of four
shape-preserving transforms (identity, horizontal flip, vertical flip, 180° rotation)
was applied: either way its features must encode digit strokes, textures and layout,
which is what a generator has to reproduce. Features are standardised with the
training images' statistics, so Fréchet distances are in units of feature variance."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import torch
import torch.nn.functional as F
from prdc import compute_prdc
from torch import nn
from torchmetrics.image.fid import FrechetInceptionDistance

from pipeline.core.data import ImageData
from pipeline.core.seeding import seeded
from validators.metrics.representation import IMAGE_SIDE  # the CNN sees what privacy measures
from pipeline.core.threads import limited_threads

FEATURES = 64  # feature width: FID's covariance needs a few times more images than this
DEAD_FEATURE = 1e-3  # a feature whose real spread is below this share of the median spread is left out
MAX_TRAIN_IMAGES = 5_000  # images the feature CNN is trained on
MAX_FID_IMAGES = 10_000  # images per side in the Fréchet distance
MAX_PRDC_IMAGES = 2_000  # per side; prdc holds an n x n distance matrix, 2000 -> 32 MB
NEAREST_K = 5  # prdc's neighbourhood size, the value its paper recommends
STEPS = 300  # optimiser steps of the feature CNN
BATCH = 64
LEARNING_RATE = 2e-3


# ---- helpers ------------------------------------------------------------------------


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W, C) numpy -> uint8 (N, C, H, W) tensor, what the feature module takes."""
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).contiguous()


def _transformed(x: torch.Tensor, which: torch.Tensor) -> torch.Tensor:
    """Apply transform `which[i]` (0 identity, 1 h-flip, 2 v-flip, 3 rot180) to image i."""
    out = x.clone()
    for code, dims in ((1, [-1]), (2, [-2]), (3, [-2, -1])):
        sel = which == code
        out[sel] = x[sel].flip(dims)
    return out


def _sample(n: int, cap: int, rng: np.random.Generator) -> np.ndarray:
    return np.arange(n) if n <= cap else np.sort(rng.choice(n, cap, replace=False))


# ---- building block: the feature CNN ------------------------------------------------


class FeatureCNN(nn.Module):
    """Three conv layers and global average pooling -> FEATURES numbers per image; a
    linear head for the training task. Takes uint8 (N, C, H, W)."""

    def __init__(self, channels: int, classes: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, 32, 3, padding=1), nn.ReLU(),
            nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2, ceil_mode=True),
            nn.Conv2d(32, FEATURES, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        self.head = nn.Linear(FEATURES, classes)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        x = images.float() / 255.0
        if max(x.shape[-2:]) > IMAGE_SIDE:
            x = F.adaptive_avg_pool2d(x, tuple(min(s, IMAGE_SIDE) for s in x.shape[-2:]))
        return self.body(x)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(images))


class StandardizedFeatures(nn.Module):
    """The trained CNN's features, standardised with fixed training-image statistics:
    the feature module torchmetrics' FrechetInceptionDistance calls."""

    def __init__(self, cnn: FeatureCNN, mean: torch.Tensor, std: torch.Tensor):
        super().__init__()
        self.cnn = cnn
        self.register_buffer("mean", mean)
        self.register_buffer("std", std)
        # Features (nearly) constant on the real images carry nothing about them, and
        # standardising by a ~0 spread turns one synthetic image that wakes such a unit into
        # a z of thousands: on digits 15 of 64 units were dead and one image sent the
        # Fréchet distance to 9,499 with precision 0.97. They are left out (set to 0).
        self.register_buffer("alive", std > DEAD_FEATURE * std.median())
        self.num_features = FEATURES

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return torch.where(self.alive, (self.cnn.features(images) - self.mean) / self.std, 0.0)


def train_feature_cnn(real: ImageData, *, seed: int = 0) -> StandardizedFeatures:
    """Fit the feature CNN on (at most MAX_TRAIN_IMAGES of) the real images for STEPS steps:
    on their labels when they have them, otherwise on the transform-prediction task."""
    rng = np.random.default_rng(seed)
    keep = _sample(len(real), MAX_TRAIN_IMAGES, rng)
    x = to_tensor(real.images[keep])
    labelled = real.labels is not None and len(np.unique(real.labels[keep])) > 1
    if labelled:
        _, codes = np.unique(real.labels[keep].astype(str), return_inverse=True)
        y, classes = torch.from_numpy(codes).long(), int(codes.max()) + 1
    else:
        y, classes = None, 4
    gen = torch.Generator().manual_seed(seed)
    with seeded(seed):  # weight initialisation; the caller's RNG state comes back
        cnn = FeatureCNN(x.shape[1], classes)
    opt = torch.optim.Adam(cnn.parameters(), lr=LEARNING_RATE)
    for _ in range(STEPS):
        idx = torch.randint(0, len(x), (min(BATCH, len(x)),), generator=gen)
        batch = x[idx]
        if y is None:
            target = torch.randint(0, 4, (len(idx),), generator=gen)
            batch = _transformed(batch, target)
        else:
            target = y[idx]
        opt.zero_grad()
        F.cross_entropy(cnn(batch), target).backward()
        opt.step()
    cnn.eval()
    with torch.no_grad():
        feats = torch.cat([cnn.features(b) for b in x.split(1024)])
    return StandardizedFeatures(cnn, feats.mean(0), feats.std(0).clamp(min=1e-6))


# ---- metrics ------------------------------------------------------------------------


def frechet_distance(extractor: StandardizedFeatures, real: np.ndarray, synthetic: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to the real and synthetic features
    (torchmetrics' FID with our extractor). 0 = same mean and covariance."""
    fid = FrechetInceptionDistance(feature=extractor, input_img_size=tuple(to_tensor(real[:1]).shape[1:]))
    for images, is_real in ((real, True), (synthetic, False)):
        for chunk in to_tensor(images).split(1024):
            fid.update(chunk, real=is_real)
    return float(fid.compute())


def features(extractor: StandardizedFeatures, images: np.ndarray) -> np.ndarray:
    return torch.cat([extractor(c) for c in to_tensor(images).split(1024)]).numpy()


def pixel_histogram_tvd(real: np.ndarray, synthetic: np.ndarray) -> float:
    """Total variation distance between the 256-bin intensity histograms, averaged over
    channels. 0 = same intensity distribution (blind to where the pixels are)."""
    tvd = []
    for c in range(real.shape[-1]):
        p = np.bincount(real[..., c].ravel(), minlength=256) / real[..., c].size
        q = np.bincount(synthetic[..., c].ravel(), minlength=256) / synthetic[..., c].size
        tvd.append(0.5 * np.abs(p - q).sum())
    return float(np.mean(tvd))


def label_tvd(real: np.ndarray, synthetic: np.ndarray) -> float:
    """Total variation distance between the label frequencies."""
    r, s = np.unique(real.astype(str), return_counts=True), np.unique(synthetic.astype(str), return_counts=True)
    p, q = dict(zip(r[0], r[1] / r[1].sum())), dict(zip(s[0], s[1] / s[1].sum()))
    return float(0.5 * sum(abs(p.get(k, 0.0) - q.get(k, 0.0)) for k in set(p) | set(q)))


@limited_threads()
def image_fidelity(train: ImageData, holdout: ImageData, synthetic: ImageData, *, seed: int = 0) -> dict[str, float]:
    """Every image fidelity metric, real = train. Samples: the CNN trains on
    MAX_TRAIN_IMAGES, the Fréchet distance uses MAX_FID_IMAGES per side, PRDC
    MAX_PRDC_IMAGES per side; histograms use every image."""
    del holdout  # the holdout is the privacy yardstick; fidelity compares with train
    rng = np.random.default_rng(seed)
    extractor = train_feature_cnn(train, seed=seed)
    real_fid = train.images[_sample(len(train), MAX_FID_IMAGES, rng)]
    syn_fid = synthetic.images[_sample(len(synthetic), MAX_FID_IMAGES, rng)]
    real_pr = features(extractor, train.images[_sample(len(train), MAX_PRDC_IMAGES, rng)])
    syn_pr = features(extractor, synthetic.images[_sample(len(synthetic), MAX_PRDC_IMAGES, rng)])
    with contextlib.redirect_stdout(io.StringIO()):  # prdc prints the sample sizes
        prdc = compute_prdc(real_features=real_pr, fake_features=syn_pr, nearest_k=NEAREST_K)
    out = {
        "fidelity.frechet_distance": frechet_distance(extractor, real_fid, syn_fid),
        "fidelity.precision": prdc["precision"],
        "fidelity.recall": prdc["recall"],
        "fidelity.density": prdc["density"],
        "fidelity.coverage": prdc["coverage"],
        "fidelity.pixel_histogram_tvd": pixel_histogram_tvd(train.images, synthetic.images),
    }
    if train.labels is not None and synthetic.labels is not None:
        out["fidelity.label_tvd"] = label_tvd(train.labels, synthetic.labels)
    return out
