"""In-memory source data, one dataclass per modality, handed from sources to generators
and validators. Tabular and time-series batches are DataFrames in the output contract's
shape; image batches are `ImageData` (uint8 arrays) that the sink encodes to PNG.

What differs between modalities is a method of the data class (`take`, `restrict`,
`class_values`, `layout`, `from_table`), so callers never switch on the type."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Iterator, Protocol, Union

import numpy as np
import pandas as pd
import pyarrow as pa

from pipeline.core.errors import BadInputError, ConditionError
from pipeline.core.schema import TableProfile


class RowStream(Protocol):
    """The rows of a table too big for memory, read again on every training pass
    (pipeline/sources/stream.py)."""

    rows: int

    def frames(self, seed: int) -> Iterator[pd.DataFrame]: ...


@dataclass
class TabularData:
    """One table: its rows and the profile (schema) learned from the source. A streamed
    source's `frame` is a uniform row sample and `stream` reads all its rows."""

    frame: pd.DataFrame
    profile: TableProfile
    stream: RowStream | None = None
    modality: str = field(default="tabular", init=False)

    def __len__(self) -> int:
        return len(self.frame)

    @property
    def n_records(self) -> int:
        """Rows of the whole table (more than `len` when `frame` is a sample of a stream)."""
        return self.stream.rows if self.stream is not None else len(self.frame)

    def take(self, idx: np.ndarray) -> "TabularData":
        """Records `idx` (positions), in that order."""
        return self.with_frame(self.frame.iloc[idx].reset_index(drop=True))

    def with_frame(self, frame: pd.DataFrame) -> "TabularData":
        return replace(self, frame=frame)

    def restrict(self, column: str, values: list[Any]) -> "TabularData":
        """Only the records whose `column` is one of `values`."""
        return self.with_frame(self.frame[self.frame[column].isin(values)].reset_index(drop=True))

    def class_values(self, target: str) -> pd.Series:
        """One class per record, for balancing on `target`."""
        if target not in self.frame.columns:
            raise BadInputError(f"--target {target!r} is not a column; columns: {', '.join(self.frame.columns)}")
        if self.profile.column(target).kind not in ("categorical", "boolean", "integer"):
            raise BadInputError(f"--target {target!r} is continuous; balancing needs a class column")
        return self.frame[target]

    def known_values(self, column: str) -> list[Any]:
        """The distinct non-null values of `column`."""
        return self.frame[column].dropna().unique().tolist()

    def conditionable(self) -> dict[str, list[Any]]:
        """Per column a condition may name, the values seen: the class columns."""
        return {c.name: list(c.categories or []) for c in self.profile.of_kind("categorical", "boolean")}

    def record_keys(self) -> np.ndarray:
        """One uint64 per row, equal for identical rows (duplicates stay on one side of a split)."""
        return pd.util.hash_pandas_object(self.frame, index=False).to_numpy()

    def layout(self) -> dict[str, Any]:
        """What a reader needs besides the schema: nothing for a table."""
        return {}

    def from_table(self, table: pa.Table) -> "TabularData":
        """Output records read back from Parquet, shaped like this source."""
        return self.with_frame(table.to_pandas())


def gap_windows(window: int, stride: int) -> int:
    """Windows the split (pipeline.split) drops on each side of a holdout block: a
    training window ends at least one window of time (`window` steps) before a holdout
    window starts, i.e. their start indices differ by at least ceil(2 * window / stride).
    Here, not in the split, because the privacy metrics measure that same separation."""
    return math.ceil(2 * window / stride) - 1


def cut_windows(frame: pd.DataFrame, window: int, stride: int, column: str, *, first: int = 0) -> pd.DataFrame:
    """One series (rows in time order) cut into windows of `window` rows every `stride`
    rows, numbered `first`, `first + 1`, ... in a new first column `column`: the one
    cutter of the source loader and of the metrics on a generated long path."""
    parts = [frame.iloc[start : start + window].assign(**{column: first + i})
             for i, start in enumerate(range(0, len(frame) - window + 1, stride))]
    out = pd.concat(parts, ignore_index=True)
    return out[[column] + [c for c in out.columns if c != column]]


@dataclass(frozen=True)
class GivenPath:
    """What a long path (sample.length) must keep, checked against the source before any
    fit (pipeline/given.py). `history`: the steps just before the path, every feature
    column in time order (a continuation). `covariates`: some feature columns over every
    step of the path (time-varying conditions). `start`: the time of the path's first
    step (`pipeline.core.timegrid.time_values` units), None for the source's first."""

    history: pd.DataFrame | None = None
    covariates: pd.DataFrame | None = None
    start: Any = None


def split_conditions(conditions: dict[str, Any] | None, features: list[str]) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """(static conditions, covariate conditions): a condition on a time-varying feature
    column names a path to follow (pipeline/given.py), any other one a static value."""
    static = {c: v for c, v in (conditions or {}).items() if c not in features}
    return static or None, {c: v for c, v in (conditions or {}).items() if c in features}


@dataclass
class TimeSeriesData:
    """Long format, one row per (entity, time step), sorted by both.

    `static` columns are constant within an entity; `features` vary over time.
    `windows` is (window, stride) in steps when the entities are windows cut from one
    long series (entity i starts at step i * stride): windows overlap in time, so the
    split must hold out blocks of time, not random windows."""

    frame: pd.DataFrame
    profile: TableProfile
    entity: str
    time: str
    static: list[str]
    features: list[str]
    windows: tuple[int, int] | None = None
    modality: str = field(default="timeseries", init=False)

    def __len__(self) -> int:
        """Number of sequences (entities), the unit `rows` counts for time series."""
        return int(self.frame[self.entity].nunique())

    def entities(self) -> np.ndarray:
        """Entity keys in the frame's order."""
        return self.frame[self.entity].drop_duplicates().to_numpy()

    def take(self, idx: np.ndarray) -> "TimeSeriesData":
        """Whole sequences of the entities at positions `idx`."""
        return self.with_frame(self.frame[self.frame[self.entity].isin(self.entities()[idx])].reset_index(drop=True))

    def with_frame(self, frame: pd.DataFrame) -> "TimeSeriesData":
        return replace(self, frame=frame, static=list(self.static), features=list(self.features))

    def restrict(self, column: str, values: list[Any]) -> "TimeSeriesData":
        return self.with_frame(self.frame[self.frame[column].isin(values)].reset_index(drop=True))

    def class_values(self, target: str) -> pd.Series:
        """One class per entity: balancing needs a static column."""
        if target not in self.static:
            raise BadInputError(
                f"--target {target!r} is not a static column of this time series; static columns: "
                f"{', '.join(self.static) or 'none'} (a class must be constant within an entity)"
            )
        return self.frame.drop_duplicates(self.entity)[target]

    def known_values(self, column: str) -> list[Any]:
        return self.frame[column].dropna().unique().tolist()

    def conditionable(self) -> dict[str, list[Any]]:
        """Per static column, the values seen: generators condition whole sequences on them."""
        return {c: self.known_values(c) for c in self.static}

    def layout(self) -> dict[str, Any]:
        """Sequence keys: what a reader needs to cut the long format into sequences."""
        return {"entity": self.entity, "time": self.time, "static": list(self.static),
                "features": list(self.features)}

    def from_table(self, table: pa.Table) -> "TimeSeriesData":
        return self.with_frame(table.to_pandas())

    def without(self, columns: list[str]) -> "TimeSeriesData":
        """These data without feature `columns` (covariates a run was given: they are the
        user's values, so the privacy metrics leave them out)."""
        keep = [c for c in self.frame.columns if c not in columns]
        profile = self.profile.model_copy(update={"columns": [c for c in self.profile.columns if c.name not in columns]})
        return replace(self, frame=self.frame[keep], profile=profile, static=list(self.static),
                       features=[c for c in self.features if c not in columns])

    def series(self) -> pd.DataFrame:
        """The one long series these windows were cut from (windows only): each window's
        first `stride` rows, then the last window whole, without the window column.
        Steps a holdout split left out are missing, so call it on the whole source."""
        if self.windows is None:
            raise BadInputError("series(): the source is a panel, not one series cut into windows")
        pos = self.frame.groupby(self.entity, sort=False).cumcount()
        last = self.frame[self.entity] == self.frame[self.entity].iloc[-1]
        out = self.frame[(pos < self.windows[1]) | last].drop_duplicates(self.time).sort_values(self.time, kind="stable")
        return out.drop(columns=self.entity).reset_index(drop=True)

    def as_windows(self, frame: pd.DataFrame) -> "TimeSeriesData":
        """`frame` shaped like this source's sequences: a generated long path (entities
        longer than the window, `sample.length`) is cut into windows the way the source
        was, so metrics compare windows with windows; a panel's entities longer than its
        longest one (`sample.length`) into consecutive pieces of that longest length;
        anything else is taken as it is."""
        longest = self.windows[0] if self.windows else int(self.frame.groupby(self.entity).size().max())
        if frame.empty or frame.groupby(self.entity).size().max() <= longest:
            return self.with_frame(frame)
        window, stride = self.windows or (longest, longest)
        parts, first = [], 0
        for _, path in frame.groupby(self.entity, sort=False):
            parts.append(cut_windows(path.drop(columns=self.entity).reset_index(drop=True), window, stride,
                                     self.entity, first=first))
            first += len(parts[-1]) // window
        return self.with_frame(pd.concat(parts, ignore_index=True)[list(frame.columns)])


@dataclass
class ImageData:
    """Images as uint8 `(N, H, W, C)` with C = 1 (mode "L") or 3 (mode "RGB").

    `labels` holds one class per image when the source has them; `label_name` is the
    label column name used in the output; `classes`, when set, the declared label set
    (a private fit's `params.classes`) that layout and contract list in place of the
    labels the images have."""

    images: np.ndarray
    labels: np.ndarray | None = None
    label_name: str | None = None
    classes: list[Any] | None = None
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

    def take(self, idx: np.ndarray) -> "ImageData":
        labels = None if self.labels is None else self.labels[idx]
        return ImageData(images=self.images[idx], labels=labels, label_name=self.label_name, classes=self.classes)

    def restrict(self, column: str, values: list[Any]) -> "ImageData":
        """Only the images whose label is one of `values` (`column` names the label)."""
        return self.take(np.flatnonzero(np.isin(self.labels, values)))

    def class_values(self, target: str) -> pd.Series:
        if self.labels is None or target not in (self.label_name, "label"):
            raise BadInputError(
                f"--target {target!r}: images can only be balanced on their label"
                + (f" ({self.label_name!r})" if self.labels is not None else ", and this source has none")
            )
        return pd.Series(self.labels)

    def known_values(self, column: str) -> list[Any]:
        return [] if self.labels is None else list(dict.fromkeys(self.labels.tolist()))

    def conditionable(self) -> dict[str, list[Any]]:
        """The label and its classes, when the source has labels."""
        return {} if self.labels is None else {self.label_name or "label": self.known_values("label")}

    def record_keys(self) -> np.ndarray:
        """One uint64 per image, equal for identical pixels."""
        return pd.util.hash_pandas_object(pd.DataFrame(self.images.reshape(len(self), -1)), index=False).to_numpy()

    def label_set(self) -> list[Any] | None:
        """The classes an output may hold: the declared `classes`, else the labels the images have."""
        if self.labels is None:
            return None
        if self.classes is not None:
            return list(self.classes)
        return sorted({v.item() if hasattr(v, "item") else v for v in self.labels})

    def layout(self) -> dict[str, Any]:
        """Size, mode and classes: what a reader needs to decode and label the images."""
        return {"height": self.size[0], "width": self.size[1], "mode": self.mode,
                "label": self.label_name, "classes": self.label_set()}

    def from_table(self, table: pa.Table) -> "ImageData":
        from pipeline.core.images import table_to_images

        return table_to_images(table)


SourceData = Union[TabularData, TimeSeriesData, ImageData]
Batch = Union[pd.DataFrame, ImageData]
# What `sample.rows` counts in each modality, in words for people.
RECORD_UNIT = {"tabular": "rows", "timeseries": "sequences", "image": "images"}


def check_conditions(conditions: dict[str, Any] | None, allowed: dict[str, list[Any]], *, who: str = "") -> None:
    """Refuse a condition on a column outside `allowed` ({column: values seen}) or on a
    value never seen: the one rule, used by the pre-fit checks and by every generator."""
    for column, value in (conditions or {}).items():
        if column not in allowed:
            raise ConditionError(f"cannot condition {who + ' ' if who else ''}on {column!r}; conditionable "
                                 f"columns: {', '.join(allowed) or 'none'}")
        seen = allowed[column]
        if value not in seen and str(value) not in map(str, seen):
            raise ConditionError(f"condition {column}={value!r} was never seen in the source; seen values: "
                                 + ", ".join(map(repr, seen[:20])))


def batch_to_table(batch: Batch) -> pa.Table:
    """The output contract's Arrow form of one sampled batch."""
    if isinstance(batch, ImageData):
        from pipeline.core.images import images_to_table

        return images_to_table(batch)
    return pa.Table.from_pandas(batch, preserve_index=False)
