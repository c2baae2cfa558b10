"""The template every native time-series generator fills in: `SequenceGenerator` fits a
`SequenceCodec` (codec.py: plans, entity scales, source <-> tensors) and a torch
module, and draws either independent sequences from plans or one long path window
after window (`sample.length`). The TimeGAN, TimeVAE and diffusion modules fill it in:
`_build` a torch module, `_train` it on `SequenceBatch`, `_generate` features from plans.
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import replace
from typing import Any, Iterator

import numpy as np
import pandas as pd
import torch
from pydantic import Field
from torch import nn

from generators.base import Generator, GeneratorParams, resolve_device
from generators.timeseries.codec import SequenceBatch, SequenceCodec
from pipeline.core.seeding import torch_generator
from pipeline.core.data import GivenPath, TimeSeriesData
from pipeline.core.domains import private_profile
from pipeline.core.errors import BadInputError
from pipeline.core.progress import Progress
from pipeline.core.timegrid import regular_times, time_values

PATH_OVERLAP = 0.5  # share of a window fixed to the previous one when drawing a long path: context for the rest


class SequenceParams(GeneratorParams):
    """Hyper-parameters every native time-series generator has."""

    epochs: int = Field(300, gt=0)  # passes over all sequences; a few hundred suit sources of a few hundred entities
    batch_size: int = Field(64, gt=0)  # sequences per step; small sources get several steps per epoch
    lr: float = Field(1e-3, gt=0)  # Adam learning rate, the usual default for these model sizes
    # Panels: each entity's continuous features normalised by its own mean and std, which
    # the plan carries (see codec.py's docstring); ignored for windows cut from one series
    # (one scale). Opt-in: on Produc it brings the large states back, but the privacy gate's
    # membership attack then scores 0.77-0.81 (0.53 off) against a 10-state holdout.
    entity_scale: bool = False



# ---- helpers --------------------------------------------------------------------------


def path_layout(window: int) -> tuple[int, int, int]:
    """(window, overlap, hop) of a long path: window k covers steps k * hop .. k * hop +
    window, its first `overlap` steps given (the previous window's, or a history's last)."""
    overlap = min(window - 1, max(1, round(window * PATH_OVERLAP)))
    return window, overlap, window - overlap


def minibatches(n: int, batch_size: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
    """Shuffled index batches of one epoch, drawn from `generator` (reproducible)."""
    yield from torch.randperm(n, generator=generator, device=generator.device).split(batch_size)


def masked_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error over existing steps only: padding never teaches anything.
    `mask` is per step (N, T) or per value (N, T, F)."""
    m = (mask if mask.dim() == pred.dim() else mask.unsqueeze(-1)).expand_as(pred)
    return ((pred - target) ** 2 * m).sum() / m.sum().clamp(min=1)



# ---- the generator template -----------------------------------------------------------


class SequenceGenerator(Generator):
    """A native time-series generator: the codec turns data into `SequenceBatch` and back;
    a subclass builds one torch module (`_build`), trains it (`_train`) and draws
    features for a batch of plans (`_generate`)."""

    Params = SequenceParams

    def _fit(self, data: TimeSeriesData, *, progress: Progress) -> None:
        if self.privacy is not None and data.windows and data.windows[1] < data.windows[0]:
            raise BadInputError(
                f"generator.privacy: windows of {data.windows[0]} steps every {data.windows[1]} overlap, so one time "
                "step is in several training sequences and ε would not bound it; set source.stride equal to "
                "source.window for a private fit (or drop generator.privacy)")
        if self.privacy is not None:  # declared domains only (pipeline/core/domains.py); the entity ids are new
            data = replace(data, profile=private_profile(data.profile, regenerated=(data.entity,), time=data.time))
        self.codec_ = SequenceCodec().fit(data, entity_scale=self.params.entity_scale,
                                          private=self.privacy is not None, seed=self.params.seed)
        self.device_ = resolve_device(self.device)
        self.model_ = self._build().to(self.device_)  # initialised under fit's seed
        generator = torch_generator(self.params.seed, self.device_)
        self.model_.train()
        self._train(self.codec_.encode(data).to(self.device_), progress, generator)
        self.model_.eval()
        self.condition_values_ = self.codec_.condition_values()

    def _sample_chunk(self, n: int, *, seed: int, conditions: dict[str, Any] | None, offset: int) -> pd.DataFrame:
        rng = np.random.default_rng(seed)
        rows = self.codec_.draw(n, rng, conditions)
        scales = self.codec_.draw_scales(n, rng)
        generator = torch_generator(seed, self.device_)
        with torch.no_grad():
            x = self._generate(self.codec_.plan_matrix(rows, scales).to(self.device_), generator)
        return self.codec_.decode(x.float().cpu().numpy(), rows, offset, scales=scales)

    def _sample_path(self, n: int, length: int, *, seed: int, conditions: dict[str, Any] | None, offset: int,
                     given: GivenPath | None = None) -> pd.DataFrame:
        """A panel: `n` entities of `length` steps each (`_sample_entity_paths`). One series
        cut into windows: one series of `length` steps (`n` is 1), drawn window after
        window: every window after the first has its first `overlap` steps fixed to the
        previous window's last ones and only the rest generated, given them
        (`_generate_given`), so no seam is drawn. `given` fixes more values the same way:
        a history's last `overlap` steps lead the first window (a continuation; they are
        not output), covariate columns are fixed over the whole path. Window k is planned
        as the source window starting nearest its time: static values and the start
        channel follow the source's timeline. The time index starts at `given.start`,
        else at the source's first step."""
        c = self.codec_
        if c.stride_ is None:
            if given is not None:
                raise BadInputError("a history or a covariate path needs a single series cut into windows, not a panel")
            return self._sample_entity_paths(n, length, seed=seed, conditions=conditions, offset=offset)
        if n != 1:
            raise BadInputError(f"sample.length on a single series draws one series, not {n}")
        window, overlap, hop = self.path_layout()
        given = given or GivenPath()
        lead = 0 if given.history is None else min(overlap, len(given.history))
        total = lead + length
        count, span = self._path_windows(total)
        values, fixed = np.zeros((span, c.n_features), "float32"), np.zeros((span, c.n_features), "float32")
        if lead:
            values[:lead], fixed[:lead] = c.known_values(given.history.iloc[-lead:])
        if given.covariates is not None:
            cov_values, cov_fixed = c.known_values(given.covariates.iloc[:length])
            values[lead:total], fixed[lead:total] = cov_values, cov_fixed
        first = int(np.argmin(c.starts_))
        start = c.starts_[first] if given.start is None else given.start
        times = time_values(regular_times(c.freq_, np.array([start]), np.array([span])))  # of path steps lead, lead + 1, ...
        rows = c.nearest_windows(times[np.maximum(np.arange(count) * hop - lead, 0)].astype("float64"))
        if conditions:
            rows[:] = c.draw(1, np.random.default_rng(seed), conditions)[0]
        generator = torch_generator(seed, self.device_)
        cond = c.plan_matrix(rows).to(self.device_)[None]
        path = self._continued(cond, torch.from_numpy(values)[None], torch.from_numpy(fixed)[None], generator)
        row = rows[0] if conditions else first
        out = c.decode(path[:, lead:total].float().cpu().numpy(), np.array([row]), offset,
                       lengths=np.array([length]), starts=np.array([start]))
        for name in [] if given.covariates is None else given.covariates.columns:  # as given, not as the encoder clips them
            out[name] = given.covariates[name].iloc[:length].to_numpy().astype(out[name].dtype)
        return out

    def _sample_entity_paths(self, n: int, length: int, *, seed: int, conditions: dict[str, Any] | None,
                             offset: int) -> pd.DataFrame:
        """`n` panel entities of `length` steps each, every one a continuous path drawn
        window after window as one long series is (`_continued`; a window is the source's
        longest entity). Each is planned as `_sample_chunk` plans an entity (a source
        entity's static values and start, a fresh scale: the same draws), with the
        longest length, so every window is whole: the same plan conditions every window of
        a path and its statics hold for all of it. The time index runs from the plan's
        start at the source's step, `length` steps, with no gaps."""
        c = self.codec_
        rng = np.random.default_rng(seed)
        rows = c.draw(n, rng, conditions)
        scales = c.draw_scales(n, rng)
        count, span = self._path_windows(length)
        cond = c.plan_matrix(rows, scales, lengths=np.full(n, c.max_len)).to(self.device_)
        empty = torch.zeros((n, span, c.n_features))
        path = self._continued(cond[:, None].expand(-1, count, -1), empty, empty.clone(),
                               torch_generator(seed, self.device_))
        return c.decode(path[:, :length].float().cpu().numpy(), rows, offset, lengths=np.full(n, length),
                        starts=c.starts_[rows], scales=scales)

    def _path_windows(self, steps: int) -> tuple[int, int]:
        """(windows, steps they cover) of a path of `steps` steps: `path_layout`'s windows,
        the last one whole (its steps past `steps` are dropped)."""
        window, _, hop = self.path_layout()
        count = 1 + -(-max(steps - window, 0) // hop)
        return count, window + (count - 1) * hop

    def _continued(self, cond: torch.Tensor, values: torch.Tensor, fixed: torch.Tensor,
                   generator: torch.Generator) -> torch.Tensor:
        """`n` paths (n, steps, n_features) drawn window after window from plans `cond`
        (n, windows, n_cond): window k keeps the `values` where `fixed` is 1.0 and, after
        the first, its first `overlap` steps from the window before."""
        window, overlap, hop = self.path_layout()
        path, fixed = values.to(self.device_), fixed.to(self.device_)
        with torch.no_grad():
            for k in range(cond.shape[1]):
                part = slice(k * hop, k * hop + window)
                mask = fixed[:, part].clone()
                if k:
                    mask[:, :overlap] = 1.0
                path[:, part] = self._generate_given(cond[:, k], path[:, part], mask, generator)
        return path

    def _train_private(self, optimizer: torch.optim.Optimizer, seqs: SequenceBatch, progress: Progress,
                       generator: torch.Generator) -> None:
        """DP-SGD (generators/private.py) on whole sequences, one sequence one row: as
        many steps as `epochs` passes of `batch_size` would take, each a Poisson sample of
        (features, mask, plan); `self.model_(x, mask, cond, generator)` returns one loss
        per sequence. No loss is reported: it is computed on real sequences without noise."""
        from generators.private import PrivateTraining

        p = self.params
        steps = p.epochs * -(-len(seqs) // p.batch_size)
        private = PrivateTraining(self.model_, optimizer, (seqs.x, seqs.mask, seqs.cond), privacy=self.privacy,
                                  batch_size=p.batch_size, steps=steps, seed=p.seed)
        batches = private.batches()
        for step in range(1, steps + 1):
            private.optimizer.zero_grad(set_to_none=True)
            private.loss(private.module(*next(batches), generator)).backward()
            private.optimizer.step()
            progress(step, steps)
        private.close()
        self.privacy_spent_ = private.spent().to_dict()


    def path_layout(self) -> tuple[int, int, int]:
        """(window, overlap, hop) of a long path from this model's windows."""
        return path_layout(self.codec_.max_len)

    def path_seams(self, length: int) -> np.ndarray:
        """Steps of a `length`-step path where one window's new steps follow the last's:
        window + k * hop, the first step each window generated after the fixed ones."""
        window, _, hop = self.path_layout()
        return np.arange(window, length, hop)

    def _generate_given(self, cond: torch.Tensor, known: torch.Tensor, given: torch.Tensor,
                        generator: torch.Generator) -> torch.Tensor:
        """Features (n, max_len, n_features) equal to `known` where `given` (same shape) is
        1.0; a family that can (`continuous_path = True`) overrides it."""
        raise NotImplementedError

    def _export(self) -> tuple[dict[str, Any], dict[str, Any]]:
        meta, tensors = self.codec_.state()
        return {"codec": meta}, {"codec": tensors, "model": self.model_.state_dict()}

    def _restore(self, state: dict[str, Any], tensors: dict[str, Any]) -> None:
        self.codec_ = SequenceCodec.from_state(state["codec"], tensors["codec"])
        self.device_ = resolve_device(self.device)
        self.model_ = self._build()
        self.model_.load_state_dict(tensors["model"])
        self.model_.to(self.device_).eval()

    @abstractmethod
    def _build(self) -> nn.Module:
        """The model for `self.codec_`'s shapes (n_features, n_cond, max_len) and `self.params`."""

    @abstractmethod
    def _train(self, seqs: SequenceBatch, progress: Progress, generator: torch.Generator) -> None:
        """Fit `self.model_` on `seqs`; report `progress(epoch, total, loss=...)`."""

    @abstractmethod
    def _generate(self, cond: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Features (n, max_len, n_features) for plans `cond` (n, n_cond), random only through `generator`."""
