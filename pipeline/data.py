"""In-memory source data, one dataclass per modality, handed from sources to generators
and validators. Tabular and time-series batches are DataFrames in the output contract's
shape; image batches are `ImageData` (uint8 arrays) that the sink encodes to PNG."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union

import numpy as np
import pandas as pd

from pipeline.schema import TableProfile


@dataclass
class TabularData:
    """One table: its rows and the profile (schema) learned from the source."""

    frame: pd.DataFrame
    profile: TableProfile
    modality: str = field(default="tabular", init=False)

    def __len__(self) -> int:
        return len(self.frame)


@dataclass
class TimeSeriesData:
    """Long format, one row per (entity, time step), sorted by both.

    `static` columns are constant within an entity; `features` vary over time."""

    frame: pd.DataFrame
    profile: TableProfile
    entity: str
    time: str
    static: list[str]
    features: list[str]
    modality: str = field(default="timeseries", init=False)

    def __len__(self) -> int:
        """Number of sequences (entities), the unit `rows` counts for time series."""
        return int(self.frame[self.entity].nunique())


@dataclass
class ImageData:
    """Images as uint8 `(N, H, W, C)` with C = 1 (mode "L") or 3 (mode "RGB").

    `labels` holds one class per image when the source has them; `label_name` is the
    label column name used in the output."""

    images: np.ndarray
    labels: np.ndarray | None = None
    label_name: str | None = None
    skipped: list[str] = field(default_factory=list)  # unreadable source files left out (on_bad_image: skip)
    modality: str = field(default="image", init=False)

    @property
    def mode(self) -> str:
        return "L" if self.images.shape[-1] == 1 else "RGB"

    @property
    def size(self) -> tuple[int, int]:
        """(height, width)."""
        return int(self.images.shape[1]), int(self.images.shape[2])

    def __len__(self) -> int:
        return int(self.images.shape[0])


SourceData = Union[TabularData, TimeSeriesData, ImageData]
# What `sample.rows` counts in each modality, in words for people.
RECORD_UNIT = {"tabular": "rows", "timeseries": "sequences", "image": "images"}
Batch = Union[pd.DataFrame, ImageData]
