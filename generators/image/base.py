"""What the three image generators share: padding any size to what the network takes
and cropping back, pixels to tensors and back, the batch stream a training budget
draws from, mixed precision on CUDA, class labels (conditioning,
`conditions={"label": 3}`), seeded sampling in micro-batches, snapping outputs to the
source's pixel values when it uses only a few (digits: 17 grey levels), mapping output
intensities onto the source's (`intensity_map`), checkpoint state, and what a private
fit (`generator.privacy`, DP-SGD: generators/private.py) must not read from the images:
no snapping, no intensity map, and the class list declared in `params.classes` with
uniform class shares. A family implements `_build`, `_train` and `_generate`."""

from __future__ import annotations

import contextlib
from abc import abstractmethod
from typing import Any, Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import ConfigDict, Field
from torch import nn
from torch.optim.swa_utils import AveragedModel

from generators.base import Generator, GeneratorParams, resolve_device
from generators.budget import BudgetParams
from generators.private import PrivateTraining
from pipeline.core.seeding import seeded
from pipeline.core.data import ImageData
from pipeline.core.errors import BadInputError
from pipeline.core.progress import Progress


# Convolution weights (and so activations) in channels-last layout: oneDNN's CPU kernels run these small
# nets 1.3-1.7x faster at sampling on it (one core, batch 500, 32x32 RGB: VAE decoder 1,550 -> 2,660 images/s,
# UNet 720 -> 910 calls/s) and train 5-10 % faster; on CUDA it is the layout tensor cores want.
LAYOUT = torch.channels_last


class ImageParams(BudgetParams, GeneratorParams):
    """Training settings every image family has (`steps` / `time_budget_s`: generators.budget)."""

    model_config = ConfigDict(extra="forbid")

    batch_size: int = Field(64, gt=0)  # images per optimiser step
    lr: float = Field(2e-4, gt=0)  # Adam learning rate
    sample_batch: int = Field(500, gt=0)  # images per forward pass when sampling: bounds memory, not output
    max_levels: int = Field(32, ge=0, le=256)  # source using <= this many pixel values (digits: 17): outputs snap to them
    # images drawn after training to fit the intensity map (`intensity_map`); 0: none. 500 digits28 images are
    # 392k pixels a channel, ~800 per quantile
    calibration_images: int = Field(500, ge=0)
    one_thread: bool = True  # CPU: one intra-op thread; these small nets ran 5-15x slower on two contended cores
    # the classes a labelled source may have, e.g. [0, 1, ..., 9]. Read from the labels when absent; a private fit
    # needs them declared (which classes occur is training data) and samples them in equal shares
    classes: list[int | str] | None = None


def ema_of(net: nn.Module, decay: float) -> AveragedModel:
    """An exponential moving average of `net`'s weights and buffers whose decay warms up:
    update n uses min(decay, (1 + n) / (10 + n)). Early on the average follows the net, so a
    short fit never samples its initial weights (a plain 0.999 over 600 steps still held them),
    and a long one averages over its last ~1 / (1 - decay) steps."""

    @torch.no_grad()
    def update(averaged: list[torch.Tensor], current: list[torch.Tensor], n: torch.Tensor) -> None:
        if not torch.is_floating_point(averaged[0]):  # e.g. BatchNorm's step counter: follow the net
            torch._foreach_copy_(averaged, current)
            return
        torch._foreach_lerp_(averaged, current, 1 - min(decay, (1 + float(n)) / (10 + float(n))))

    return AveragedModel(net, multi_avg_fn=update, use_buffers=True)


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W, C) -> float (N, C, H, W) in [-1, 1]."""
    return torch.from_numpy(images).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """Inverse of `to_tensor`, clipping to the pixel range."""
    return x.clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def snap_table(images: np.ndarray, max_levels: int) -> list[int]:
    """A 256-entry lookup mapping every uint8 value to the nearest value the source uses,
    or [] when the source uses more than `max_levels` values."""
    levels = np.unique(images)
    if len(levels) > max_levels:
        return []
    return levels[np.abs(np.arange(256)[:, None] - levels[None, :].astype(int)).argmin(1)].tolist()


QUANTILES = 512  # points of the intensity map: 1/512 of the pixels per step, finer than a 256-bin histogram


def intensity_map(generated: torch.Tensor, images: np.ndarray) -> list[list[list[float]]]:
    """Per channel, [generated quantiles, source quantiles] at QUANTILES evenly spaced
    probabilities: the monotone map that gives generated pixels the source's intensity
    distribution (histogram matching). `generated`: float (N, C, H, W) in [-1, 1];
    `images`: the uint8 (N, H, W, C) source. A network's smooth output (tanh, sigmoid)
    almost never lands on a level exactly, while real images have whole areas at one
    (digits28: 34 % of pixels at 0, 2.6 % at 255), so without it the histograms differ
    where the pictures agree. The source's quantiles are read off its 256-bin counts."""
    probs = (torch.arange(QUANTILES, dtype=torch.float64) + 0.5) / QUANTILES
    out = []
    for c in range(generated.shape[1]):
        values = generated[:, c].flatten().float().sort().values.cpu()
        source = values[(probs * len(values)).long().clamp(max=len(values) - 1)]
        pmf = np.bincount(images[..., c].ravel(), minlength=256) / images[..., c].size
        cdf = np.cumsum(pmf)
        level = np.searchsorted(cdf, probs.numpy(), side="left").clip(max=255)
        # level v spread evenly over [v - 0.5, v + 0.5), which rounding sends back to v: integer quantiles would
        # send a whole 1/QUANTILES step to a level holding barely more than that (digits28: 0.004 against 0.002)
        target = level - 0.5 + (probs.numpy() - (cdf - pmf)[level]) / pmf[level]
        out.append([source.tolist(), (target / 127.5 - 1).tolist()])
    return out


def apply_intensity_map(x: torch.Tensor, table: list[list[list[float]]]) -> torch.Tensor:
    """`x` (N, C, H, W) through each channel's piecewise-linear map from `intensity_map`.
    A value several generated quantiles share (an atom, e.g. outputs clamped at -1) goes
    to the source quantile at the middle of their ranks, so an atom is not all sent to
    its top end."""
    out = torch.empty_like(x)
    for c, (source, target) in enumerate(table):
        src = torch.tensor(source, device=x.device, dtype=x.dtype)
        dst = torch.tensor(target, device=x.device, dtype=x.dtype)
        v = x[:, c].contiguous()
        lo, hi = torch.searchsorted(src, v), torch.searchsorted(src, v, right=True)
        below, above = src[(lo - 1).clamp(min=0)], src[lo.clamp(max=len(src) - 1)]
        between = (lo - 1) + (v - below) / (above - below).clamp(min=1e-12)
        rank = torch.where(hi > lo, (lo + hi - 1) / 2, between).clamp(0, len(src) - 1)
        low = rank.floor().long()
        high = (low + 1).clamp(max=len(src) - 1)
        out[:, c] = torch.lerp(dst[low], dst[high], rank - low)
    return out


LOOKUP = 65536  # steps of the sampled intensity map: 1/65536 of the generated range, well under a grey level


def intensity_lookup(table: list[list[list[float]]], device: torch.device) -> tuple[torch.Tensor, float, float]:
    """(map sampled on LOOKUP + 1 points per channel, range start, range end): `apply_lookup`
    through it costs a gather and a lerp, where `apply_intensity_map`'s two searches over
    the quantiles halved the GAN's sampling speed on 32x32 RGB (1,260 -> 612 images per CPU s)."""
    lo, hi = min(source[0] for source, _ in table), max(source[-1] for source, _ in table)
    grid = torch.linspace(lo, hi, LOOKUP + 1, device=device)
    points = grid.view(1, 1, 1, -1).expand(1, len(table), 1, -1).contiguous()
    return apply_intensity_map(points, table).view(len(table), -1), lo, hi


def apply_lookup(x: torch.Tensor, lookup: tuple[torch.Tensor, float, float]) -> torch.Tensor:
    """`x` (N, C, H, W) through `intensity_lookup`'s sampled map, interpolating between its points."""
    table, lo, hi = lookup
    position = (x.clamp(lo, hi) - lo) * (LOOKUP / max(hi - lo, 1e-12))
    low = position.floor().long().clamp(max=LOOKUP - 1)
    channel = torch.arange(x.shape[1], device=x.device).view(1, -1, 1, 1)
    return torch.lerp(table[channel, low], table[channel, low + 1], position - low)


def batch_stream(n: int, batch_size: int, device: torch.device) -> Iterator[torch.Tensor]:
    """Endless shuffled index batches, epoch after epoch (torch's global RNG, seeded by
    `fit`). Every batch has min(batch_size, n) images: an epoch's smaller remainder is
    dropped, so each optimiser step sees as many images (and BatchNorm never one)."""
    size = min(batch_size, n)
    while True:
        for idx in torch.randperm(n, device=device).split(size):
            if len(idx) == size:
                yield idx


def padding(size: int, multiple: int) -> tuple[int, int]:
    """(before, after): edge pixels added to reach the next multiple, split evenly."""
    extra = -size % multiple
    return extra // 2, extra - extra // 2


class ImageGenerator(Generator):
    """Template for image/gan, image/vae and image/diffusion."""

    modality = "image"
    Params = ImageParams
    supports_privacy = True  # DP-SGD on what sees the images; what ε covers: README, "Differential privacy"

    # ---- what a family implements -----------------------------------------------------

    @abstractmethod
    def _levels(self) -> int:
        """How many times the network halves the image: inputs are padded to a multiple of 2**levels."""

    @abstractmethod
    def _build(self) -> dict[str, nn.Module]:
        """The networks for `self.net_shape_` and `self.num_classes_`, by checkpoint name."""

    @abstractmethod
    def _train(self, x: torch.Tensor, y: torch.Tensor | None, progress: Progress) -> None:
        """Fit `self.nets_` to images `x` in [-1, 1] on the device, labels `y` (class indices)."""

    @abstractmethod
    def _generate(self, y: torch.Tensor | None, n: int, generator: torch.Generator) -> torch.Tensor:
        """`n` images in [-1, 1] of `net_shape_`, of classes `y` when conditional, drawn with
        `generator` only."""

    # ---- shared -------------------------------------------------------------------------

    def _pad(self, x: torch.Tensor) -> torch.Tensor:
        """Source-size images -> the network's size, repeating edge pixels. Edge, not
        reflect: it works for any amount and mirrors no stroke into the border."""
        (top, bottom), (left, right) = self._margins()
        return F.pad(x, (left, right, top, bottom), mode="replicate") if top + bottom + left + right else x

    def _crop(self, x: torch.Tensor) -> torch.Tensor:
        """Inverse of `_pad`: the network's output cut back to the source's size."""
        (top, _), (left, _) = self._margins()
        return x[..., top : top + self.shape_[1], left : left + self.shape_[2]]

    def _margins(self) -> tuple[tuple[int, int], tuple[int, int]]:
        multiple = 2 ** self._levels()
        return padding(self.shape_[1], multiple), padding(self.shape_[2], multiple)

    @property
    def net_shape_(self) -> list[int]:
        """(C, H, W) the networks see: the source's size padded to a multiple of 2**levels."""
        (top, bottom), (left, right) = self._margins()
        return [self.shape_[0], self.shape_[1] + top + bottom, self.shape_[2] + left + right]

    def _precision(self) -> contextlib.AbstractContextManager:
        """bfloat16 autocast on CUDA (mixed precision: no loss scaling needed, unlike float16);
        CPU stays float32, where small convolutions gain nothing from it."""
        if self.device_.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _fit(self, data: ImageData, *, progress: Progress) -> None:
        if len(data) < 2:
            raise BadInputError(f"{self.name} needs at least 2 images to train, got {len(data)}")
        self.device_ = resolve_device(self.device)
        self.shape_ = [data.images.shape[3], *data.size]
        self.label_name_ = None
        self.condition_values_ = {}
        self.classes_: list[Any] = []
        self.class_probs_: list[float] = []
        private = self.privacy is not None
        # snapping and the intensity map read the source's pixel values: a private fit does neither
        self.pixel_table_ = [] if private else snap_table(data.images, self.params.max_levels)
        self._use_intensity_map([])
        y = None
        if data.labels is not None:
            self.classes_, index, self.class_probs_ = self._classes(data.labels)
            self.label_name_ = data.label_name or "label"
            self.condition_values_ = {self.label_name_: self.classes_}
            y = torch.from_numpy(index.astype(np.int64)).to(self.device_)
        with seeded(self.params.seed, self.device_):
            self.nets_ = {name: net.to(self.device_, memory_format=LAYOUT) for name, net in self._build().items()}
            with self._precision():
                self._train(self._pad(to_tensor(data.images).to(self.device_)), y, progress)
        for net in self.nets_.values():
            net.eval()
        if not private and self.params.calibration_images:
            generated, _ = self._draw(self.params.calibration_images, seed=self.params.seed, conditions=None)
            self._use_intensity_map(intensity_map(torch.cat(generated), data.images))

    def _use_intensity_map(self, table: list[list[list[float]]]) -> None:
        """Keep `table` (what is saved) and its sampled form (what sampling applies)."""
        self.intensity_map_ = table
        self.intensity_lookup_ = intensity_lookup(table, self.device_) if table else None

    def _classes(self, labels: np.ndarray) -> tuple[list[Any], np.ndarray, list[float]]:
        """(classes, each image's class index, class shares for sampling): the declared
        `params.classes` in equal shares, else the labels' own classes and shares, which a
        private fit may not read (a class seen once would be named in the model)."""
        declared = self.params.classes
        if declared is None:
            if self.privacy is not None:
                raise BadInputError(
                    f"generator.privacy: {self.name} would read the class list from the training labels; declare "
                    "generator.params.classes (e.g. [0, 1, 2]), or drop generator.privacy")
            classes, index, counts = np.unique(labels, return_inverse=True, return_counts=True)
            return classes.tolist(), index, (counts / counts.sum()).tolist()
        names = [str(c) for c in declared]
        if len(set(names)) != len(names):
            raise BadInputError(f"generator.params.classes {declared} names a class twice; list each once")
        position = {name: i for i, name in enumerate(names)}
        text = np.asarray(labels).astype(str)
        unknown = sorted(set(text.tolist()) - set(names))
        if unknown:
            raise BadInputError(f"generator.params.classes {declared} lacks labels {unknown[:5]} of the source; "
                                "declare every class the labels use")
        index = np.asarray([position[t] for t in text], dtype=np.int64)
        return list(declared), index, [1 / len(names)] * len(names)

    def _private(self, model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor,
                 y: torch.Tensor | None) -> PrivateTraining:
        """DP-SGD over the images (with their labels: one record is an image and its
        label) for the budget's steps; its batches are (images, labels or None)."""
        p = self.params
        return PrivateTraining(model, optimizer, x if y is None else (x, y), privacy=self.privacy,
                               batch_size=p.batch_size, steps=p.step_limit(), seed=p.seed)

    def _batches(self, x: torch.Tensor, y: torch.Tensor | None,
                 private: PrivateTraining | None) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
        """(images, labels or None) per step: `batch_stream`'s shuffled batches, or a private
        fit's Poisson-sampled ones."""
        if private is None:
            for idx in batch_stream(len(x), self.params.batch_size, x.device):
                yield x[idx], None if y is None else y[idx]
        for batch in private.batches() if private is not None else ():
            yield batch if isinstance(batch, tuple) else (batch, None)

    @property
    def single_cpu_thread(self) -> bool:  # the base class's thread policy, set per job
        return self.params.one_thread

    @property
    def num_classes_(self) -> int:
        return len(self.classes_)

    def _draw(self, n: int, *, seed: int, conditions: dict[str, Any] | None,
              finish: Callable[[torch.Tensor], Any] = lambda x: x) -> tuple[list[Any], torch.Tensor | None]:
        """(`finish` of each micro-batch of float images (N, C, H, W) at the source's size,
        as the networks give them; their class indices or None), all drawn from `seed`.
        `finish` (e.g. to uint8) runs per micro-batch, so a chunk's floats are never all held."""
        generator = torch.Generator(device=self.device_).manual_seed(seed)
        index = self._draw_labels(n, conditions, generator)
        parts = []
        with torch.inference_mode(), self._precision():
            for start in range(0, n, self.params.sample_batch):
                size = min(self.params.sample_batch, n - start)
                y = None if index is None else index[start : start + size]
                parts.append(finish(self._crop(self._generate(y, size, generator).float())))
        return parts, index

    def _sample_chunk(self, n: int, *, seed: int, conditions: dict[str, Any] | None, offset: int) -> ImageData:
        mapped = (lambda x: apply_lookup(x, self.intensity_lookup_)) if self.intensity_map_ else (lambda x: x)
        parts, index = self._draw(n, seed=seed, conditions=conditions, finish=lambda x: to_uint8(mapped(x)))
        images = np.concatenate(parts)
        if self.pixel_table_:
            images = np.asarray(self.pixel_table_, dtype=np.uint8)[images]
        labels = None if index is None else np.asarray(self.classes_)[index.cpu().numpy()]
        return ImageData(images=images, labels=labels, label_name=self.label_name_)

    def _draw_labels(
        self, n: int, conditions: dict[str, Any] | None, generator: torch.Generator
    ) -> torch.Tensor | None:
        """Class indices: the asked class, or drawn in the source's class proportions."""
        if not self.classes_:
            return None
        if conditions:
            wanted = str(conditions[self.label_name_])
            cls = next(i for i, c in enumerate(self.classes_) if str(c) == wanted)
            return torch.full((n,), cls, dtype=torch.long, device=self.device_)
        probs = torch.tensor(self.class_probs_, device=self.device_)
        return torch.multinomial(probs, n, replacement=True, generator=generator)

    def _export(self) -> tuple[dict[str, Any], dict[str, Any]]:
        state = {
            "shape": self.shape_,
            "label_name": self.label_name_,
            "classes": self.classes_,
            "class_probs": self.class_probs_,
            "pixel_table": self.pixel_table_,
            "intensity_map": self.intensity_map_,
        }
        return state, {name: net.state_dict() for name, net in self.nets_.items()}

    def _restore(self, state: dict[str, Any], tensors: dict[str, Any]) -> None:
        self.device_ = resolve_device(self.device)
        self.shape_ = state["shape"]
        self.label_name_ = state["label_name"]
        self.classes_ = state["classes"]
        self.class_probs_ = state["class_probs"]
        self.pixel_table_ = state["pixel_table"]
        self._use_intensity_map(state["intensity_map"])
        self.nets_ = self._build()
        for name, net in self.nets_.items():
            net.load_state_dict(tensors[name])
            net.to(self.device_, memory_format=LAYOUT).eval()
