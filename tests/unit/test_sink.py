"""Parquet sink and run folders: atomic parts, provenance, no half-written output."""

from __future__ import annotations

import json

import pandas as pd
import pyarrow.parquet as pq
import pytest

from generators.base import Generator
from pipeline.core.data import TabularData
from pipeline.core.runfiles import latest_run
from pipeline.runs import RunFolder, set_latest
from pipeline.core.schema import profile_table
from pipeline.core.plan import PART_RECORDS, plan_parts
from pipeline.core.runfiles import read_output
from pipeline.sink import write_part


class Resample(Generator):
    """A real (if trivial) generator: bootstrap rows of the training table; fails on
    request after some chunks so we can watch an interrupted write."""

    modality, family = "tabular", "resample"

    def __init__(self, *, fail_at_chunk: int | None = None, **kw):
        super().__init__(**kw)
        self.fail_at_chunk = fail_at_chunk

    def _fit(self, data, *, progress):
        self.frame_ = data.frame

    def _sample_chunk(self, n, *, seed, conditions, offset):
        if self.fail_at_chunk is not None and offset >= self.fail_at_chunk * n:
            raise OSError("disk full")
        return self.frame_.sample(n, replace=True, random_state=seed).reset_index(drop=True)

    def _export(self):
        return {}, {}

    def _restore(self, state, tensors):
        pass


@pytest.fixture()
def table():
    frame = pd.DataFrame({"x": range(100), "c": ["a", "b"] * 50})
    return TabularData(frame=frame, profile=profile_table(frame))


def test_parts_group_chunks_and_keep_chunk_seeds():
    parts = plan_parts(1_234_567, 10_000, "tabular")
    per_part = PART_RECORDS["tabular"] // 10_000
    assert sum(p.rows for p in parts) == 1_234_567
    assert [p.chunks[0].index for p in parts] == list(range(0, 124, per_part))
    assert [p.chunks[0].offset for p in parts] == [i * 10_000 for i in range(0, 124, per_part)]
    assert parts[-1].chunks[-1].size == 4_567


def test_part_written_with_provenance(table, tmp_path):
    gen = Resample().fit(table)
    part = plan_parts(2500, 1000, "tabular", seed=1)[0]
    path = write_part(gen, part, tmp_path, provenance={"job": "j"})
    meta = pq.ParquetFile(path).schema_arrow.metadata
    assert json.loads(meta[b"synthpipe.job"]) == "j" and json.loads(meta[b"synthpipe.part"]) == 0
    assert json.loads(meta[b"synthpipe.seed"]) == 1
    assert pq.ParquetFile(path).metadata.num_rows == 2500
    assert list(read_output(tmp_path).column_names) == ["x", "c"]


def test_interrupted_part_leaves_nothing_visible(table, tmp_path):
    gen = Resample(fail_at_chunk=2).fit(table)
    part = plan_parts(5000, 1000, "tabular")[0]
    with pytest.raises(OSError, match="disk full"):
        write_part(gen, part, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_finished_part_is_not_rewritten(table, tmp_path):
    gen = Resample().fit(table)
    part = plan_parts(100, 50, "tabular")[0]
    first = write_part(gen, part, tmp_path)
    mtime = first.stat().st_mtime_ns
    write_part(gen, part, tmp_path)
    assert first.stat().st_mtime_ns == mtime


def test_run_folder_is_hidden_until_committed_and_never_overwritten(tmp_path):
    run = RunFolder(tmp_path / "job", "r1").create()
    (run.tmp / "part-00000.parquet").write_bytes(b"x")
    assert [p.name for p in (tmp_path / "job").iterdir()] == [".tmp-r1"]
    final = run.commit()
    assert final.name == "r1" and not run.tmp.exists()
    again = RunFolder(tmp_path / "job", "r1")
    again.tmp.mkdir()
    with pytest.raises(FileExistsError):
        again.commit()


def test_latest_points_at_published_run(tmp_path):
    (tmp_path / "r2").mkdir()
    set_latest(tmp_path, "r2")
    assert latest_run(tmp_path) == tmp_path / "r2"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
