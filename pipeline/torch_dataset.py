"""PyTorch datasets over a run's Parquet parts, one per modality, and the encoding of
columns into tensors. `SyntheticDataset.torch()` (pipeline.consume) builds them from what
the run's manifest says; nothing here reads a manifest.

Streaming, not map-style: each dataset is an `IterableDataset` that reads one unit of
work at a time (a row group; for time series a part file, so no sequence is cut), so
memory holds one row group whatever the run's size. DataLoader workers split the
units between them. A map-style dataset would need every row in memory (or a random
read per row), and shuffling within units loses nothing here: synthetic records are
independent draws, so the order across units carries no information. `shuffle=True`
permutes units and the records inside each, from torch's RNG: a new order every epoch,
reproducible under `torch.manual_seed`. `batch_size=N` yields whole batches (cut within a
unit, so a unit's last batch may be smaller): use `DataLoader(dataset, batch_size=None)`;
tabular rows then skip per-row Python work (1M penguin rows on two busy cores: 316k
rows/s batched, 58k one at a time).

Encoding (the same for every run of a job, because it comes from the source profile
stored in the manifest, so training and serving agree):
- numeric and integer columns: float; datetimes: days since 1970-01-01 (UTC);
- categorical columns: the index of the value in the profile's `categories` list
  (`categorical="codes"`), or one 0/1 column per category, named `column=value`
  (`"onehot"`); booleans: 0 / 1 in both modes (False, True is the profile's order);
- a null feature becomes `fill_value` (NaN by default); in one-hot mode a null category
  is all zeros; a value outside the profile's categories is refused (the run broke its
  contract);
- a categorical / boolean target is an int64 class index (`target_classes` lists the
  classes), a null one is -100, the index `nn.CrossEntropyLoss` ignores; a numeric
  target is float32 (null: NaN);
- images: float32 (C, H, W) in [0, 1]; the label is an int64 index into `classes`, the
  class list the generator was fitted on (`model/config.json`'s condition values),
  else the source's sorted classes (the manifest's `layout`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import pandas as pd
import pyarrow.compute as pc
import pyarrow.parquet as pq
import torch
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import IterableDataset, default_collate, get_worker_info

from pipeline.core.clock import seconds_of_day
from pipeline.core.errors import BadInputError
from pipeline.core.runfiles import RunData
from pipeline.core.schema import ColumnProfile

CATEGORICAL_MODES = ("codes", "onehot")
IGNORE_INDEX = -100  # nn.CrossEntropyLoss's default ignore_index: rows with a null class target are skipped
EPOCH = pd.Timestamp("1970-01-01")
DAY_NS = 86_400 * 10**9


# ---- encoding -------------------------------------------------------------------------


def category_codes(series: pd.Series, column: ColumnProfile) -> np.ndarray:
    """Index of each value in the profile's category list; -1 for nulls."""
    categories = column.categories or []
    codes = np.asarray(pd.Categorical(series, categories=categories).codes, dtype=np.int64)
    unseen = (codes == -1) & series.notna().to_numpy()
    if unseen.any():
        value = series[unseen].iloc[0]
        raise BadInputError(
            f"column {column.name!r} holds {value!r}, which is not one of the source's categories "
            f"{categories[:10]}: the run breaks its contract; re-run the job or read it with to_pandas()"
        )
    return codes


def float_features(series: pd.Series, column: ColumnProfile) -> np.ndarray:
    """A column as the float64 features training code gets: NaN for nulls, datetimes as
    days since the epoch, clock times as seconds of the day (blanks NaN; metrics use their
    own encoding, validators.metrics.representation)."""
    if column.kind == "time":
        return seconds_of_day(series)
    if column.kind == "datetime":
        s = pd.to_datetime(series)
        if s.dt.tz is not None:
            s = s.dt.tz_convert("UTC").dt.tz_localize(None)
        return ((s - EPOCH) / pd.Timedelta(DAY_NS, "ns")).to_numpy(dtype="float64", na_value=np.nan)
    return pd.to_numeric(series).to_numpy(dtype="float64", na_value=np.nan)


@dataclass(frozen=True)
class Encoding:
    """How a list of profiled columns becomes float32 features."""

    columns: tuple[ColumnProfile, ...]
    categorical: str = "codes"
    fill_value: float = math.nan

    def __post_init__(self) -> None:
        if self.categorical not in CATEGORICAL_MODES:
            raise BadInputError(f"categorical={self.categorical!r}; allowed: {', '.join(CATEGORICAL_MODES)}")

    @property
    def feature_names(self) -> list[str]:
        names = []
        for c in self.columns:
            if c.kind == "categorical" and self.categorical == "onehot":
                names.extend(f"{c.name}={v}" for v in c.categories or [])
            else:
                names.append(c.name)
        return names

    @property
    def categories(self) -> dict[str, list[Any]]:
        """Column -> its categories; a value's code is its index in the list."""
        return {c.name: list(c.categories or []) for c in self.columns if c.kind in ("categorical", "boolean")}

    def encode(self, frame: pd.DataFrame) -> np.ndarray:
        """(rows, len(feature_names)) float32."""
        blocks = [self._column(frame[c.name], c) for c in self.columns]
        return np.concatenate(blocks, axis=1) if blocks else np.zeros((len(frame), 0), dtype=np.float32)

    def _column(self, series: pd.Series, column: ColumnProfile) -> np.ndarray:
        if column.kind in ("categorical", "boolean"):
            codes = category_codes(series, column)
            if column.kind == "categorical" and self.categorical == "onehot":
                block = np.zeros((len(codes), len(column.categories or [])), dtype=np.float32)
                present = np.flatnonzero(codes >= 0)
                block[present, codes[present]] = 1.0
                return block
            values = np.where(codes >= 0, codes, self.fill_value)
        else:
            values = float_features(series, column)
            values = np.where(np.isnan(values), self.fill_value, values)
        return values.astype(np.float32)[:, None]


def encode_target(series: pd.Series, column: ColumnProfile) -> torch.Tensor:
    """Class index (int64, null -> IGNORE_INDEX) for categories, float32 for numbers."""
    if column.kind in ("categorical", "boolean"):
        codes = category_codes(series, column)
        return torch.from_numpy(np.where(codes >= 0, codes, IGNORE_INDEX))
    return torch.from_numpy(float_features(series, column).astype(np.float32))


def _classes(target: ColumnProfile | None) -> list[Any] | None:
    return list(target.categories or []) if target is not None and target.kind in ("categorical", "boolean") else None


# ---- streaming base -------------------------------------------------------------------


class _Streaming(IterableDataset):
    """Units of work over the part files, split across workers, optionally shuffled,
    yielded one record or `batch_size` records at a time."""

    def __init__(self, data: RunData, *, shuffle: bool, batch_size: int | None) -> None:
        if batch_size is not None and batch_size < 1:
            raise BadInputError(f"batch_size={batch_size}: give a positive number of records, or None")
        self.data, self.shuffle, self.batch_size = data, shuffle, batch_size
        self.files = list(data.files)

    def _units(self) -> list[Any]:
        """(part file, row group) pairs."""
        return [(f, g) for f in self.files for g in range(self.data.row_group_count(f))]

    def _unit_size(self, unit: Any) -> int:
        path, group = unit
        return pq.ParquetFile(path).metadata.row_group(group).num_rows

    def _order(self, n: int) -> list[int]:
        if not self.shuffle:
            return list(range(n))
        return torch.randperm(n).tolist()  # torch's RNG: per-epoch, per-worker seeds in a DataLoader

    def _my_units(self) -> list[Any]:
        units = self._units()
        worker = get_worker_info()
        if worker is not None:
            units = units[worker.id :: worker.num_workers]
        return [units[i] for i in self._order(len(units))]

    def _emit(self, n: int, item: Callable[[Any], Any], collate: Callable[[list], Any] | None = None) -> Iterator[Any]:
        """Records 0..n-1 of a unit in order (shuffled or not): `item(i)` one at a time, or
        batches, `collate([item(i), ...])`, or `item(index tensor)` when collate is None."""
        order = self._order(n)
        if self.batch_size is None:
            yield from (item(i) for i in order)
            return
        for start in range(0, n, self.batch_size):
            chunk = order[start : start + self.batch_size]
            yield item(torch.tensor(chunk)) if collate is None else collate([item(i) for i in chunk])

    def __len__(self) -> int:
        """Records, or batches when `batch_size` is set (what a DataLoader iterates)."""
        sizes = [self._unit_size(u) for u in self._units()]
        return sum(sizes) if self.batch_size is None else sum(math.ceil(n / self.batch_size) for n in sizes)


# ---- tabular --------------------------------------------------------------------------


def _take(t: torch.Tensor, i: int | torch.Tensor) -> torch.Tensor:
    """Row `i`, or rows at index tensor `i` (index_select: advanced indexing `t[i]` is
    ~1000x slower on a busy 2-core CPU, its thread pool stalls)."""
    return t[i] if isinstance(i, int) else t.index_select(0, i)


class TabularRows(_Streaming):
    """One row at a time: `x` float32 (features,), or `(x, y)` with a target."""

    def __init__(
        self,
        data: RunData,
        encoding: Encoding,
        target: ColumnProfile | None = None,
        *,
        shuffle: bool = False,
        batch_size: int | None = None,
    ) -> None:
        super().__init__(data, shuffle=shuffle, batch_size=batch_size)
        self.encoding, self.target = encoding, target

    @property
    def feature_names(self) -> list[str]:
        return self.encoding.feature_names

    @property
    def categories(self) -> dict[str, list[Any]]:
        """Column -> categories, a value's code being its index (the profile's order)."""
        return self.encoding.categories

    @property
    def target_classes(self) -> list[Any] | None:
        """A categorical target's classes: y is the index in this list."""
        return _classes(self.target)

    def __iter__(self) -> Iterator[torch.Tensor | tuple[torch.Tensor, torch.Tensor]]:
        columns = [c.name for c in self.encoding.columns] + ([self.target.name] if self.target else [])
        for path, group in self._my_units():
            frame = self.data.read_row_group(path, group, columns=columns).to_pandas()
            x = torch.from_numpy(self.encoding.encode(frame))
            y = encode_target(frame[self.target.name], self.target) if self.target else None
            yield from self._emit(len(frame), lambda i: _take(x, i) if y is None else (_take(x, i), _take(y, i)))


# ---- images ---------------------------------------------------------------------------


class ImageRows(_Streaming):
    """One image at a time: float32 (C, H, W) in [0, 1], or `(image, class index)`."""

    def __init__(
        self,
        data: RunData,
        label: str | None,
        classes: list[Any] | None,
        *,
        shuffle: bool = False,
        batch_size: int | None = None,
    ) -> None:
        super().__init__(data, shuffle=shuffle, batch_size=batch_size)
        self.label, self.classes = label, classes
        self._index = {v: i for i, v in enumerate(classes or [])}

    def _class(self, value: Any) -> int:
        if value not in self._index:
            raise BadInputError(
                f"label {value!r} is not one of the classes {self.classes[:10]}: the run breaks its contract"
            )
        return self._index[value]

    def __iter__(self) -> Iterator[torch.Tensor | tuple[torch.Tensor, torch.Tensor]]:
        from pipeline.core.images import IMAGE_COLUMN, decode_png

        columns = [IMAGE_COLUMN] + ([self.label] if self.label else [])
        for path, group in self._my_units():
            table = self.data.read_row_group(path, group, columns=columns)
            pngs = table.column(IMAGE_COLUMN).combine_chunks().field("bytes").to_pylist()
            labels = table.column(self.label).to_pylist() if self.label else None

            def item(i: int) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
                x = torch.tensor(decode_png(pngs[i]), dtype=torch.float32).permute(2, 0, 1).div_(255.0)
                return x if labels is None else (x, torch.tensor(self._class(labels[i])))

            yield from self._emit(len(pngs), item, default_collate)


# ---- time series ----------------------------------------------------------------------


class Sequences(_Streaming):
    """One entity at a time: `(x, static)`, x float32 (steps, features) in time order,
    static float32 (static columns,), or `(x, static, y)` with a static target.
    Units are whole part files: the sink never splits an entity across parts, and rows
    of an entity that straddle two row groups are joined before they are yielded."""

    def __init__(
        self,
        data: RunData,
        *,
        entity: str,
        features: Encoding,
        static: Encoding,
        target: ColumnProfile | None = None,
        shuffle: bool = False,
        batch_size: int | None = None,
    ) -> None:
        super().__init__(data, shuffle=shuffle, batch_size=batch_size)
        self.entity, self.features, self.static, self.target = entity, features, static, target

    @property
    def feature_names(self) -> list[str]:
        return self.features.feature_names

    @property
    def static_names(self) -> list[str]:
        return self.static.feature_names

    @property
    def categories(self) -> dict[str, list[Any]]:
        return {**self.features.categories, **self.static.categories}

    @property
    def target_classes(self) -> list[Any] | None:
        return _classes(self.target)

    def _units(self) -> list[Path]:
        return list(self.files)

    def _unit_size(self, unit: Path) -> int:
        """Entities in a part file (reads the entity column only)."""
        return len(pc.unique(pq.read_table(unit, columns=[self.entity]).column(self.entity)))

    def _columns(self) -> list[str]:
        names = [self.entity] + [c.name for c in self.features.columns + self.static.columns]
        return list(dict.fromkeys(names + ([self.target.name] if self.target else [])))

    def __iter__(self) -> Iterator[tuple[torch.Tensor, ...]]:
        for path in self._my_units():
            if self.batch_size is None:
                yield from self._read(path)
                continue
            batch: list[tuple[torch.Tensor, ...]] = []  # batches run across row groups, not across files
            for item in self._read(path):
                batch.append(item)
                if len(batch) == self.batch_size:
                    yield collate_sequences(batch)
                    batch = []
            if batch:
                yield collate_sequences(batch)

    def _read(self, path: Path) -> Iterator[tuple[torch.Tensor, ...]]:
        """The entities of one part file, a row group at a time."""
        pending = None
        for group in range(self.data.row_group_count(path)):
            frame = self.data.read_row_group(path, group, columns=self._columns()).to_pandas()
            if pending is not None:
                frame = pd.concat([pending, frame], ignore_index=True)
            starts = self._starts(frame)
            pending = frame.iloc[starts[-1] :].reset_index(drop=True)  # may continue in the next row group
            yield from self._entities(frame.iloc[: starts[-1]].reset_index(drop=True))
        if pending is not None:
            yield from self._entities(pending)

    def _starts(self, frame: pd.DataFrame) -> np.ndarray:
        ids = frame[self.entity].to_numpy()
        return np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])

    def _entities(self, frame: pd.DataFrame) -> Iterator[tuple[torch.Tensor, ...]]:
        if frame.empty:
            return
        starts = self._starts(frame)
        ends = np.r_[starts[1:], len(frame)]
        firsts = frame.iloc[starts]
        x = torch.from_numpy(self.features.encode(frame))
        s = torch.from_numpy(self.static.encode(firsts))
        y = encode_target(firsts[self.target.name].reset_index(drop=True), self.target) if self.target else None
        for i in self._order(len(starts)):
            yield (x[starts[i] : ends[i]], s[i]) if y is None else (x[starts[i] : ends[i]], s[i], y[i])


def collate_sequences(batch: list[tuple[torch.Tensor, ...]]) -> tuple[torch.Tensor, ...]:
    """DataLoader `collate_fn` for `Sequences`: `(x, lengths, static[, y])` with x padded
    with zeros to (batch, longest, features); pass `lengths` to `pack_padded_sequence`."""
    xs = [item[0] for item in batch]
    out = (pad_sequence(xs, batch_first=True), torch.tensor([len(x) for x in xs]), torch.stack([b[1] for b in batch]))
    return out + (torch.stack([b[2] for b in batch]),) if len(batch[0]) == 3 else out
