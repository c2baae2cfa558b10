"""Tabular Parquet sources bigger than memory: profiled, sampled and trained on from
streamed record batches, never held whole.

One pass over the source's record batches (`load_streamed`) learns the profile (the
same rule as in memory, `pipeline.core.profiling.TableSketch`) and keeps a uniform
row sample of about SAMPLE_ROWS rows, chosen by a hash of each row's values (stable:
the same source gives the same sample). The sample is what validation metrics, the
encoder's quantile maps and the disk check see; the generator's training reads every
training row again through `ParquetRows.frames`: row groups in a seeded random order,
mixed in a shuffle buffer of SHUFFLE_ROWS rows, the holdout left out by its hash
(`pipeline.split.in_holdout`), so no second copy of the data is written. Memory is
the sample plus one buffer, whatever the row count."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds

from pipeline.core.data import TabularData
from pipeline.core.errors import SourceError
from pipeline.core.pii import detect
from pipeline.core.profiling import TableSketch
from pipeline.core.schema import TableProfile
from pipeline.core.spec import SourceSpec
from pipeline.sources.arrow import plain_schema
from pipeline.sources.dataset import open_dataset
from pipeline.split import in_holdout, in_share, row_keys

STREAM_ROWS = 2_000_000  # Parquet sources with more rows than this stream unless source.stream says otherwise
SAMPLE_ROWS = 200_000  # rows kept in memory: metrics, the encoder's quantiles, the disk check
SAMPLE_SALT = 0x5A3D_1E6B  # the sample's hash salt: independent of every split seed
SHUFFLE_ROWS = 65_536  # rows mixed at a time when training (a few row groups)
READ_ROWS = 65_536  # rows per record batch read for the profile pass


def parquet_dataset(spec: SourceSpec) -> ds.Dataset | None:
    """The source as a pyarrow dataset when it is one Parquet file or a folder of them."""
    if spec.sql is not None or spec.path is None or spec.modality != "tabular":
        return None
    path = Path(spec.path)
    if path.is_dir():
        return open_dataset(path)
    if path.suffix.lower() in (".parquet", ".pq"):
        return ds.dataset(str(path), format="parquet")
    return None


def streams(spec: SourceSpec) -> bool:
    """Whether this source is fitted from streamed batches: `source.stream` when set,
    else Parquet sources of more than STREAM_ROWS rows (counted from file metadata)."""
    if spec.stream is False:
        return False
    try:
        dataset = parquet_dataset(spec)
        rows = dataset.count_rows() if dataset is not None and not spec.stream else None
    except (pa.ArrowInvalid, OSError) as err:
        if spec.stream:
            raise SourceError(f"cannot read the Parquet source {spec.location}: it is corrupt or not Parquet "
                              f"({err})") from None
        return False  # not streamed: the in-memory reader says what is wrong with the file
    if dataset is None:
        if spec.stream:
            raise SourceError("source.stream: only tabular Parquet sources (a file or a folder of files) are "
                              "fitted from streamed batches; drop source.stream for this source")
        return False
    return bool(spec.stream) or rows > STREAM_ROWS


def _frame(batch: pa.RecordBatch | pa.Table, plain: bool) -> pd.DataFrame:
    """A batch as pandas as its loader reads it: a dataset's columns with plain types
    (pipeline.sources.arrow), a Parquet file's as they are (pipeline.sources.tabular)."""
    return (batch.cast(plain_schema(batch.schema)) if plain else batch).to_pandas()


def as_profiled(frame: pd.DataFrame, profile: TableProfile) -> pd.DataFrame:
    """A batch with the profile's dtypes: an integer batch of a column with nulls elsewhere
    becomes float64, as the whole column would be in memory."""
    for col in profile.columns:
        if str(frame[col.name].dtype) != col.dtype:
            frame[col.name] = frame[col.name].astype(col.dtype)
    return frame


@dataclass(frozen=True)
class ParquetRows:
    """The rows of a Parquet source to train on, read again on every pass: the whole
    source, or one side of a hash split (`holdout` share, `seed`)."""

    dataset: ds.Dataset
    profile: TableProfile
    rows: int  # rows on this side (a split's count is estimated from the sample, not counted)
    plain: bool = True  # a dataset folder's batches take plain types (`_frame`)
    holdout: float = 0.0
    seed: int = 0
    side: str = "all"  # "all" | "train" | "holdout"

    def side_of(self, side: str, holdout: float, seed: int, rows: int) -> "ParquetRows":
        """One side of the hash split (`pipeline.split.in_holdout`) of these rows."""
        return replace(self, holdout=holdout, seed=seed, side=side, rows=rows)

    def _pieces(self, rng: np.random.Generator) -> list:
        """Every row group of every file, in a random order."""
        pieces = _row_groups(self.dataset)
        return [pieces[i] for i in rng.permutation(len(pieces))]

    def frames(self, seed: int, *, buffer_rows: int = SHUFFLE_ROWS) -> Iterator[pd.DataFrame]:
        """One pass over this side's rows in shuffled frames of about `buffer_rows` rows:
        row groups in an order drawn from `seed`, then rows shuffled within the buffer."""
        rng = np.random.default_rng(seed)
        buffer: list[pd.DataFrame] = []
        held = 0
        for piece in self._pieces(rng):
            frame = as_profiled(_frame(piece.to_table(schema=self.dataset.schema), self.plain), self.profile)
            if self.side != "all":
                out = in_holdout(row_keys(frame), self.holdout, self.seed)
                frame = frame[out if self.side == "holdout" else ~out]
            buffer.append(frame)
            held += len(frame)
            if held >= buffer_rows:
                yield self._mixed(buffer, rng)
                buffer, held = [], 0
        if held:
            yield self._mixed(buffer, rng)

    @staticmethod
    def _mixed(buffer: list[pd.DataFrame], rng: np.random.Generator) -> pd.DataFrame:
        frame = pd.concat(buffer, ignore_index=True)
        return frame.iloc[rng.permutation(len(frame))].reset_index(drop=True)


def _no_pii(frame: pd.DataFrame, spec: SourceSpec) -> None:
    """Pseudonymising PII columns needs their whole value set: not done on streamed sources yet."""
    found = [c for c in frame.columns if c not in spec.columns and frame[c].dtype == object and detect(frame[c])]
    if found:
        raise SourceError(f"column(s) {', '.join(map(repr, found))} of {spec.location} look like personal data "
                          "(e-mails, names, phone numbers), which streamed sources cannot pseudonymise yet: drop "
                          "them, declare them in source.columns, or set source.stream: false")


def _row_groups(dataset: ds.Dataset) -> list:
    """Every row group of every file, in file order (the in-memory table's row order)."""
    return [rg for frag in dataset.get_fragments() for rg in frag.split_by_row_group()]


def _batches_in_order(dataset: ds.Dataset) -> Iterator[pa.RecordBatch]:
    """The dataset's rows in order, one row group read at a time. Not `Dataset.to_batches`:
    its scanner read ahead of a slow consumer (the profile) and held ~700 MB of a 5 M-row
    dataset at once, even with its readahead options at their lowest."""
    for piece in _row_groups(dataset):
        yield from piece.to_table(schema=dataset.schema).to_batches(max_chunksize=READ_ROWS)


def load_streamed(spec: SourceSpec) -> TabularData:
    """The source's profile and a hash-chosen row sample, from one pass over its batches;
    the returned data's `stream` reads every row again for training."""
    dataset = parquet_dataset(spec)
    plain = Path(spec.path).is_dir()
    total = dataset.count_rows()
    rate = min(1.0, SAMPLE_ROWS / max(total, 1))
    sketch = TableSketch(kinds=spec.columns, detect_ids=True, constraints=spec.constraints)
    sample: list[pd.DataFrame] = []
    try:
        for batch in _batches_in_order(dataset):
            frame = _frame(batch, plain)
            if not sample:
                _no_pii(frame, spec)
            sketch.add(frame)
            sample.append(frame[in_share(row_keys(frame), rate, SAMPLE_SALT)])
    except (pa.ArrowInvalid, OSError) as err:
        raise SourceError(f"cannot read the Parquet source {spec.location}: {err}") from None
    profile = sketch.profile()
    frame = as_profiled(pd.concat(sample, ignore_index=True), profile)
    return TabularData(frame=frame, profile=profile, stream=ParquetRows(dataset, profile, rows=profile.n_rows, plain=plain))

