"""`timeseries/par`: SDV's PARSynthesizer, the time-series baseline.

PAR (probabilistic auto-regressive) models each entity's static columns with a
GaussianCopula and its features step by step with a GRU, drawing sequence lengths from the
source's range and each sequence's start time from the source's starts. We give it the
entity as sequence key, the time column as sequence index and the static columns as
context, then put its output back in the source's shape: new unique entity ids (unique
across chunks, from `offset`), times on the source's grid (starts snapped to it), long format
sorted by (entity, time), the source's dtypes.

Progress: deepecho's PAR only drives its own tqdm bar, so `progress` hears the start and end.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from pandas.tseries.frequencies import to_offset
from pandas.tseries.offsets import Tick
from pydantic import Field

from generators.base import GeneratorParams, resolve_device
from generators.registry import register
from generators.sdv_base import TABLE, SDVGenerator, no_bars, quiet, reseed, sdv_metadata
from generators.timeseries.codec import entity_ids
from pipeline.core.data import TimeSeriesData
from pipeline.core.progress import Progress
from pipeline.core.seeding import seeded
from pipeline.core.schema import conform
from pipeline.core.timegrid import frequency, regular_times, time_values

class PARParams(GeneratorParams):
    # Passes over all sequences (SDV's default); PAR's GRU is small, so CPU copes.
    epochs: int = Field(128, gt=0)
    # Candidate sequences drawn per entity, the most likely kept: > 1 trades sampling
    # speed for fidelity (SDV's default is 1).
    sample_size: int = Field(1, gt=0)
    # Train on segments of this many steps instead of whole sequences (long sequences
    # train faster); None keeps whole sequences.
    segment_size: int | None = Field(None, gt=1)
    # Clip features to the source's min / max.
    enforce_min_max_values: bool = True


def snap_starts(freq: dict[str, Any], starts: np.ndarray, origin: float) -> np.ndarray:
    """PAR's drawn start times (`time_values` units) moved to the nearest step of the
    grid through the source's first time (a 30-minute source drew 23:00:57); calendar
    frequencies (months, business days) to the boundary at or before each start's day."""
    offset = None if "step" in freq else to_offset(freq["freq"])
    if offset is None or isinstance(offset, Tick):  # a fixed step ("30min" is a Tick)
        step = freq["step"] if offset is None else offset.nanos
        return origin + np.round((starts - origin) / step) * step
    snapped = [offset.rollback(pd.Timestamp(int(s), unit="ns").normalize()) for s in starts]
    return time_values(pd.Series(pd.DatetimeIndex(snapped)))


@register("timeseries/par")
class PARGenerator(SDVGenerator):
    """SDV's PARSynthesizer on long-format multi-entity series."""

    modality = "timeseries"
    Params = PARParams
    model_version = 2  # 2: the source's grid (frequency, first time) replaces the bare step

    def _fit(self, data: TimeSeriesData, *, progress: Progress) -> None:
        from sdv.sequential import PARSynthesizer

        self.profile_ = data.profile
        self.entity_, self.time_, self.static_ = data.entity, data.time, list(data.static)
        frame = data.frame[data.profile.names]
        # The source's grid and its first time (`time_values` units: round-trips through config.json).
        self.freq_ = frequency(frame, data.entity, data.time)
        self.origin_ = float(time_values(frame[data.time]).min())
        metadata = sdv_metadata(
            data.profile,
            sequence_key=data.entity,
            sequence_index=data.time,
            columns={data.entity: {"sdtype": "id"}},
        )
        self.synthesizer_ = PARSynthesizer(
            metadata,
            context_columns=self.static_,
            epochs=self.params.epochs,
            sample_size=self.params.sample_size,
            segment_size=self.params.segment_size,
            enforce_min_max_values=self.params.enforce_min_max_values,
            cuda=self.enable_gpu,
            verbose=False,
        )
        progress(0, self.params.epochs)
        with quiet():
            self.synthesizer_.fit({TABLE: frame})
        progress(self.params.epochs, self.params.epochs)
        self.condition_values_ = {
            c.name: list(c.categories) if c.categories is not None else sorted(frame[c.name].dropna().unique().tolist())
            for c in (data.profile.column(s) for s in self.static_)
            if c.kind in ("categorical", "boolean", "integer")
        }

    def _sample_chunk(self, n: int, *, seed: int, conditions: dict[str, Any] | None, offset: int) -> pd.DataFrame:
        """`n` sequences: the context copula is reseeded through SDV, the GRU through the
        global torch / numpy generators (deepecho has no generator of its own)."""
        reseed(self.synthesizer_._context_synthesizer, seed)
        with seeded(seed, resolve_device(self.device)), quiet():
            if conditions:
                context = pd.DataFrame({k: [v] * n for k, v in self.canonical(conditions).items()})
                with no_bars():
                    frame = self.synthesizer_.sample_sequential_columns(context)[TABLE]
            else:
                frame = self.synthesizer_.sample_sequences(n)[TABLE]
        return self._to_source_shape(frame, offset)

    def _to_source_shape(self, frame: pd.DataFrame, offset: int) -> pd.DataFrame:
        """New entity ids in order of appearance, times on the source grid, sorted, conformed."""
        entity, time = self.entity_, self.time_
        old = frame[entity].unique()
        numeric = self.profile_.column(entity).kind in ("integer", "numeric")
        frame[entity] = frame[entity].map(dict(zip(old, entity_ids(len(old), offset, numeric))))
        frame = self._on_grid(frame)
        out = conform(frame, self.profile_)
        return out.sort_values([entity, time], kind="stable").reset_index(drop=True)

    def _on_grid(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Each sequence starts on the source's grid near where PAR started it and
        advances by the source's step, so no two steps of an entity share a time."""
        entity, time = self.entity_, self.time_
        groups = frame.groupby(entity, sort=False)
        starts = snap_starts(self.freq_, time_values(groups[time].first()), self.origin_)
        times = regular_times(self.freq_, starts, groups.size().to_numpy())
        frame = frame.iloc[np.argsort(groups.ngroup().to_numpy(), kind="stable")].reset_index(drop=True)
        frame[time] = times.to_numpy()
        return frame

    def _export_extra(self) -> dict[str, Any]:
        return {"entity": self.entity_, "time": self.time_, "static": self.static_, "freq": self.freq_,
                "origin": self.origin_}

    def _restore_extra(self, state: dict[str, Any]) -> None:
        self.entity_, self.time_, self.static_ = state["entity"], state["time"], state["static"]
        self.freq_, self.origin_ = state["freq"], state["origin"]
