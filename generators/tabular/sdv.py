"""Tabular generators backed by SDV: `tabular/copula` (GaussianCopula, the baseline),
`tabular/gan` (CTGAN) and `tabular/vae` (TVAE).

One base class does the work: SDV metadata from our profile (so integer columns are
numerical and text columns categorical, whatever SDV would detect), fit, seeded sampling,
conditions through SDV's `Condition`, and `conform` back to the source's dtypes. The three
subclasses only declare their parameters and build their SDV synthesizer.

SDV sees positional column names (`c0`, `c1`, ...), mapped back on the way out: ctgan and
rdt pass column names as keyword arguments (`DataFrame.assign(**{name: ...})`) and suffix
them (`name.value`, `name.is_null`), so a user column named `self` crashed CTGAN and TVAE
(COUNT/rwm5yr) and other names could collide with those suffixes.

Progress: neither SDV nor ctgan exposes a per-epoch hook (ctgan only drives its own tqdm
bar), so `progress` is told when fitting starts (0 of `epochs`) and ends.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, Literal

import pandas as pd
from pydantic import Field, model_validator

from generators.base import GeneratorParams
from generators.registry import register
from generators.sdv_base import TABLE, SDVGenerator, no_bars, quiet, reseed, sdv_metadata
from pipeline.core.data import TabularData
from pipeline.core.errors import ConditionError
from pipeline.core.identifiers import fresh_ids
from pipeline.core.progress import Progress
from pipeline.core.schema import conform

# Rejection rounds SDV may spend per batch to meet a condition (its default is 100): a
# rare category under a barely trained GAN needs more.
MAX_TRIES_PER_BATCH = 300


class SDVTabular(SDVGenerator):
    """Shared fit / sample for SDV single-table synthesizers."""

    modality = "tabular"
    model_version = 2  # 2: SDV fits positional column names (sdv_names), not the source's

    @abstractmethod
    def _synthesizer(self, metadata: Any) -> Any:
        """A fresh SDV synthesizer for `metadata`, configured from `self.params`."""

    @property
    def sdv_params(self) -> dict[str, Any]:
        """`self.params` as SDV's keyword arguments: all but the fit seed, which `fit`
        applies through the global generators SDV draws from."""
        return self.params.model_dump(exclude={"seed"})

    @property
    def steps(self) -> int:
        """What `progress` counts while fitting: epochs, or 1 for a one-shot fit."""
        return getattr(self.params, "epochs", 1)

    @property
    def sdv_names(self) -> dict[str, str]:
        """{source column: the name SDV knows it by}: positional, so any source name is safe."""
        return {name: f"c{i}" for i, name in enumerate(self.profile_.names)}

    def _fit(self, data: TabularData, *, progress: Progress) -> None:
        self.profile_ = data.profile
        names = self.sdv_names
        profile = data.profile.model_copy(update={"columns": [c.model_copy(update={"name": names[c.name]})
                                                              for c in data.profile.columns]})
        self.synthesizer_ = self._synthesizer(sdv_metadata(profile))
        progress(0, self.steps)
        with quiet():
            self.synthesizer_.fit({TABLE: data.frame[data.profile.names].rename(columns=names)})
        progress(self.steps, self.steps)
        self.condition_values_ = self.conditionable(data)

    def _sample_chunk(self, n: int, *, seed: int, conditions: dict[str, Any] | None, offset: int) -> pd.DataFrame:
        reseed(self.synthesizer_, seed)
        with quiet():
            frame = self._conditional(n, conditions) if conditions else self.synthesizer_.sample(n)[TABLE]
        frame = frame.rename(columns={v: k for k, v in self.sdv_names.items()})
        for col in self.profile_.of_kind("id"):  # fresh keys in the source's format, never a real one
            frame[col.name] = fresh_ids(col.id_format, offset, len(frame))
        return conform(frame, self.profile_, conditions or ())

    def _conditional(self, n: int, conditions: dict[str, Any]) -> pd.DataFrame:
        """`n` rows with `conditions` by SDV's rejection sampling, repeated until `n` are kept."""
        from sdv.sampling import Condition

        names = self.sdv_names
        values = {names[column]: value for column, value in self.canonical(conditions).items()}
        parts, missing = [], n
        while missing > 0:
            try:
                with no_bars():
                    part = self.synthesizer_.sample_from_conditions(
                        [Condition(num_rows=missing, column_values=values)], max_tries_per_batch=MAX_TRIES_PER_BATCH
                    )[TABLE]
            except ValueError:  # SDV: "Unable to sample any rows for the given conditions"
                raise ConditionError(
                    f"{self.name} produced no rows with {conditions} in {MAX_TRIES_PER_BATCH} tries: "
                    "the model rarely generates that value; train longer or use tabular/copula"
                ) from None
            parts.append(part)
            missing -= len(part)
        return pd.concat(parts, ignore_index=True)


class _Params(GeneratorParams):
    # Clip numeric columns to the source's min / max: no impossible values in the output.
    enforce_min_max_values: bool = True


class CopulaParams(_Params):
    # Marginal fitted to every numeric column. "beta" (SDV's default) is bounded and
    # handles skew; "gaussian_kde" follows multi-modal columns best but samples slowly.
    default_distribution: Literal["norm", "beta", "truncnorm", "uniform", "gamma", "gaussian_kde"] = "beta"


class CTGANParams(_Params):
    # The CTGAN paper's and SDV's default; it needs that many to learn, on CPU it is slow.
    epochs: int = Field(300, gt=0)
    # Rows per step; must be a multiple of `pac`. 500 = SDV's default.
    batch_size: int = Field(500, gt=0)
    # Size of the noise vector fed to the generator.
    embedding_dim: int = Field(128, gt=0)
    # Residual layer widths of the generator and the discriminator (paper: 256, 256).
    generator_dim: tuple[int, ...] = (256, 256)
    discriminator_dim: tuple[int, ...] = (256, 256)
    # Adam learning rates, as in the paper.
    generator_lr: float = Field(2e-4, gt=0)
    discriminator_lr: float = Field(2e-4, gt=0)
    # Discriminator updates per generator update (the paper uses 1; WGAN uses 5).
    discriminator_steps: int = Field(1, gt=0)
    # Samples the discriminator judges together (PacGAN), against mode collapse.
    pac: int = Field(10, gt=0)

    @model_validator(mode="after")
    def _batch_fits_pac(self) -> "CTGANParams":
        if self.batch_size % self.pac:
            raise ValueError(f"batch_size ({self.batch_size}) must be a multiple of pac ({self.pac})")
        return self


class TVAEParams(_Params):
    # SDV's default; TVAE converges faster than CTGAN per epoch but still needs hundreds.
    epochs: int = Field(300, gt=0)
    # Rows per step (SDV's default).
    batch_size: int = Field(500, gt=0)
    # Latent size and the encoder / decoder layer widths (the TVAE paper's defaults).
    embedding_dim: int = Field(128, gt=0)
    compress_dims: tuple[int, ...] = (128, 128)
    decompress_dims: tuple[int, ...] = (128, 128)
    # Weight decay of Adam.
    l2scale: float = Field(1e-5, ge=0)
    # Weight of the reconstruction loss against the KL term.
    loss_factor: float = Field(2.0, gt=0)


@register("tabular/copula")
class CopulaGenerator(SDVTabular):
    """SDV's GaussianCopula: per-column marginals joined by a Gaussian copula. Fast, the baseline."""

    Params = CopulaParams

    def _synthesizer(self, metadata: Any) -> Any:
        from sdv.single_table import GaussianCopulaSynthesizer

        return GaussianCopulaSynthesizer(metadata, **self.sdv_params)


@register("tabular/gan")
class CTGANGenerator(SDVTabular):
    """SDV's CTGAN: a conditional GAN with mode-specific normalisation of numeric columns."""

    Params = CTGANParams

    def _synthesizer(self, metadata: Any) -> Any:
        from sdv.single_table import CTGANSynthesizer

        return CTGANSynthesizer(metadata, enable_gpu=self.enable_gpu, **self.sdv_params)


@register("tabular/vae")
class TVAEGenerator(SDVTabular):
    """SDV's TVAE: a variational autoencoder over the same encoding as CTGAN."""

    Params = TVAEParams

    def _synthesizer(self, metadata: Any) -> Any:
        from sdv.single_table import TVAESynthesizer

        return TVAESynthesizer(metadata, enable_gpu=self.enable_gpu, **self.sdv_params)
