"""Hive-partitioned outputs (output.partition_by): the sink writes one file per folder
and part, the one reader (pipeline.core.runfiles.RunData) gives back the flat output's
rows with the source's dtypes, pyarrow and DuckDB read the folder as one dataset, an
interrupted part is never half in the data, and columns that cannot partition are
refused with the reason."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pyarrow.dataset as pads
import pytest

from pipeline.core.data import TabularData
from pipeline.core.errors import SpecError
from pipeline.core.partitions import DATA_DIR, MAX_PARTITIONS, check_partition_columns
from pipeline.core.plan import plan_parts
from pipeline.core.runfiles import RunData, output_chunks, read_output
from pipeline.core.schema import profile_table
from pipeline.sink import write_part
from tests.unit.test_sink import Resample


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(list(frame.columns), na_position="last", kind="stable").reset_index(drop=True)


def _write(gen, tmp_path, name, partition_by=None, rows=900):
    out = tmp_path / name
    out.mkdir()
    for part in plan_parts(rows, 100, "tabular", seed=5, records_per_file=300):
        write_part(gen, part, out, partition_by=partition_by)
    return out


def test_partitioned_parts_read_back_as_the_flat_output(penguins, tmp_path):
    gen = Resample().fit(penguins)
    flat = _write(gen, tmp_path, "flat")
    hive = _write(gen, tmp_path, "hive", ["year", "sex"])
    files = RunData(hive).files
    assert {f.relative_to(hive / DATA_DIR).parts[:2] for f in files} >= {("year=2008", "sex=female"),
                                                                          ("year=2009", "sex=__HIVE_DEFAULT_PARTITION__")}
    assert not list(hive.glob("*.parquet")) and not list(hive.glob(".*")), "no flat part, no stage left"
    assert sorted({f.name for f in files}) == ["part-00000.parquet", "part-00001.parquet", "part-00002.parquet"]

    ours = read_output(hive).to_pandas()
    assert list(ours.columns) == penguins.profile.names
    assert ours.dtypes.to_dict() == read_output(flat).to_pandas().dtypes.to_dict()  # year int64, not int32
    pd.testing.assert_frame_equal(_sorted(ours), _sorted(read_output(flat).to_pandas()))
    chunks = pd.concat(output_chunks(hive, rows=70), ignore_index=True)
    pd.testing.assert_frame_equal(_sorted(chunks), _sorted(ours))
    assert RunData(hive).count_rows() == 900 and set(RunData(hive).parts()) == {0, 1, 2}

    # Readers that know nothing of synthpipe: pyarrow and DuckDB, pointed at data/.
    arrow = pads.dataset(hive / DATA_DIR, format="parquet", partitioning="hive").to_table().to_pandas()
    duck = duckdb.sql(f"select * from read_parquet('{hive / DATA_DIR}/**/*.parquet', hive_partitioning=true)").df()
    for frame in (arrow, duck):
        frame = frame[penguins.profile.names].astype({"year": "int64"})
        pd.testing.assert_frame_equal(_sorted(frame), _sorted(ours), check_dtype=False)


def test_folder_values_escaped_and_typed(tmp_path):
    """Values with '/', '=', '%', quotes and accents, a null, a boolean and a categorical
    dtype: folders a Hive reader decodes, columns back with their own dtypes."""
    frame = pd.DataFrame({
        "city": ["São Paulo", "a/b", "x=y", "50%", 'say "hi"', None] * 20,
        "flag": [True, False] * 60,
        "kind": pd.Categorical(["u", "v", "w"] * 40),
        "value": np.arange(120, dtype=float),
    })
    gen = Resample().fit(TabularData(frame=frame, profile=profile_table(frame)))
    flat = _write(gen, tmp_path, "flat", rows=400)
    hive = _write(gen, tmp_path, "hive", ["city", "flag", "kind"], rows=400)
    expected = read_output(flat).to_pandas()
    ours = read_output(hive).to_pandas()
    assert ours.dtypes.to_dict() == expected.dtypes.to_dict()
    key = ["value", "city", "flag"]
    pd.testing.assert_frame_equal(ours.sort_values(key).reset_index(drop=True).astype({"kind": str}),
                                  expected.sort_values(key).reset_index(drop=True).astype({"kind": str}))
    duck = duckdb.sql(f"select * from read_parquet('{hive / DATA_DIR}/**/*.parquet', hive_partitioning=true)").df()
    assert sorted(duck["city"].dropna().unique()) == sorted(frame["city"].dropna().unique())
    assert duck["city"].isna().sum() == expected["city"].isna().sum()


def test_interrupted_partitioned_part_is_never_half_in_the_data(penguins, tmp_path):
    part = plan_parts(300, 100, "tabular", seed=5)[0]
    with pytest.raises(OSError, match="disk full"):
        write_part(Resample(fail_at_chunk=2).fit(penguins), part, tmp_path, partition_by=["year"])
    assert list(tmp_path.iterdir()) == [], "the stage is removed, no file reached data/"

    gen = Resample().fit(penguins)
    write_part(gen, part, tmp_path, partition_by=["year"])
    done = {f: f.stat().st_mtime_ns for f in RunData(tmp_path).files}
    write_part(gen, part, tmp_path, partition_by=["year"])  # finished: kept as is
    assert {f: f.stat().st_mtime_ns for f in RunData(tmp_path).files} == done

    # Complete but not yet moved (killed between the rename to .ready and the moves): finished on resume.
    (tmp_path / ".part-00000.parquet.ready").mkdir()
    for f in list(done):
        target = tmp_path / ".part-00000.parquet.ready" / f.relative_to(tmp_path / DATA_DIR)
        target.parent.mkdir(parents=True, exist_ok=True)
        f.rename(target)
    write_part(gen, part, tmp_path, partition_by=["year"])
    assert sorted(RunData(tmp_path).files) == sorted(done) and not (tmp_path / ".part-00000.parquet.ready").exists()


def test_columns_that_cannot_partition_are_refused(penguins):
    profile = penguins.profile
    check_partition_columns(["year", "species", "island", "sex"], profile)  # 3 x 3 x 3 x 3 folders
    for names, reason in [
        (["yaer"], "'yaer' not a column of the output"),
        (["bill_length_mm"], "'bill_length_mm' is numeric with unbounded values"),
        (profile.names, "names every column"),
    ]:
        with pytest.raises(SpecError, match=reason):
            check_partition_columns(names, profile)
    codes = pd.DataFrame({"zip": np.arange(6000) % (MAX_PARTITIONS + 500), "x": np.zeros(6000)})
    with pytest.raises(SpecError, match=r"up to 1,500 folders \(at most 1,000"):
        check_partition_columns(["zip"], profile_table(codes))
    ids = pd.DataFrame({"order_id": np.arange(100) + 7000, "x": np.zeros(100)})
    with pytest.raises(SpecError, match="'order_id' is id"):
        check_partition_columns(["order_id"], profile_table(ids, detect_ids=True))
