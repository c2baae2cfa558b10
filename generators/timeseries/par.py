"""`timeseries/par`: SDV's PARSynthesizer, the time-series baseline.

PAR (probabilistic auto-regressive) models each entity's static columns with a
GaussianCopula and its features step by step with a GRU, drawing sequence lengths from the
source's range and each sequence's start time from the source's starts. We give it the
entity as sequence key, the time column as sequence index and the static columns as
context, then put its output back in the source's shape: new unique entity ids (unique
across chunks, from `offset`), times on the source's grid when it has one, long format
sorted by (entity, time), the source's dtypes.

Progress: deepecho's PAR only drives its own tqdm bar, so `progress` hears the start and end.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from pydantic import Field

from generators.base import GeneratorParams, resolve_device
from generators.registry import register
from generators.sdv_base import TABLE, SDVGenerator, no_bars, quiet, reseed, sdv_metadata
from generators.timeseries.base import entity_ids
from pipeline.core.data import TimeSeriesData
from pipeline.core.progress import Progress
from pipeline.core.seeding import seeded
from pipeline.core.schema import conform

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


def time_step(frame: pd.DataFrame, entity: str, time: str) -> Any | None:
    """The one step between consecutive times of every entity (a year, a day), or None
    when the source is irregular."""
    steps = frame.groupby(entity, sort=False)[time].diff().dropna().unique()
    return steps[0] if len(steps) == 1 else None


@register("timeseries/par")
class PARGenerator(SDVGenerator):
    """SDV's PARSynthesizer on long-format multi-entity series."""

    modality = "timeseries"
    Params = PARParams

    def _fit(self, data: TimeSeriesData, *, progress: Progress) -> None:
        from sdv.sequential import PARSynthesizer

        self.profile_ = data.profile
        self.entity_, self.time_, self.static_ = data.entity, data.time, list(data.static)
        frame = data.frame[data.profile.names]
        step = time_step(frame, data.entity, data.time)
        # Kept as a number (ns for datetimes) so it round-trips through config.json.
        datetime = data.profile.column(data.time).kind == "datetime"
        self.time_step_ = None if step is None else float(pd.Timedelta(step).value if datetime else step)
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
        if self.time_step_ is not None:
            frame = self._on_grid(frame)
        out = conform(frame, self.profile_)
        return out.sort_values([entity, time], kind="stable").reset_index(drop=True)

    def _on_grid(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Regular sources keep their frequency: each sequence starts where PAR started it
        and advances by the source's step, so no two steps of an entity share a time."""
        entity, time = self.entity_, self.time_
        position = frame.groupby(entity, sort=False).cumcount().to_numpy()
        start = frame.groupby(entity, sort=False)[time].transform("first")
        if self.profile_.column(time).kind == "datetime":
            frame[time] = pd.to_datetime(start) + pd.to_timedelta(position * self.time_step_, unit="ns")
        else:
            if self.profile_.column(time).kind == "integer":
                start = start.round()
            frame[time] = start.to_numpy(dtype=float) + position * self.time_step_
        return frame

    def _export_extra(self) -> dict[str, Any]:
        return {"entity": self.entity_, "time": self.time_, "static": self.static_, "time_step": self.time_step_}

    def _restore_extra(self, state: dict[str, Any]) -> None:
        self.entity_, self.time_, self.static_ = state["entity"], state["time"], state["static"]
        self.time_step_ = state["time_step"]
