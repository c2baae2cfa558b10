"""Parquet dataset folders as sources: hive partitions become typed columns, flat
folders read in path order, time series from a partitioned panel, the order-free
fingerprint over the data files, and one-line errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.core.errors import SourceError
from pipeline.core.spec import SourceSpec
from pipeline.sources import load_source, read_table, source_fingerprint
from tests.conftest import PENGUINS, ROOT

GRUNFELD = ROOT / "data" / "sources" / "grunfeld.csv"


def write_partitioned(frame: pd.DataFrame, folder: Path, keys: list[str], *, reverse: bool = False) -> Path:
    """Hive layout (`year=2007/island=Biscoe/part-0.parquet`), one file per group; the
    files are created in reverse order when asked, as another writer might."""
    groups = list(frame.groupby(keys, sort=True))
    for values, group in reversed(groups) if reverse else groups:
        values = values if isinstance(values, tuple) else (values,)
        leaf = folder.joinpath(*(f"{k}={v}" for k, v in zip(keys, values)))
        leaf.mkdir(parents=True)
        pq.write_table(pa.Table.from_pandas(group.drop(columns=keys), preserve_index=False), leaf / "part-0.parquet")
    return folder


def tabular(path: Path) -> SourceSpec:
    return SourceSpec(modality="tabular", path=path)


def rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows in a canonical order with missing values as None, for comparing contents."""
    frame = frame.sort_values(list(frame.columns), kind="stable", na_position="last").reset_index(drop=True)
    return frame.astype(object).where(frame.notna(), None)


@pytest.fixture(scope="module")
def csv_frame() -> pd.DataFrame:
    return read_table(PENGUINS)


def test_hive_partitions_become_typed_columns(tmp_path, csv_frame, penguins):
    folder = write_partitioned(csv_frame, tmp_path / "ds", ["year", "island"])
    (folder / "_SUCCESS").write_text("")  # what Spark leaves: not data
    (folder / ".part.parquet.crc").write_text("x")
    data = load_source(tabular(folder))
    assert list(data.frame.columns) == [c for c in csv_frame.columns if c not in ("year", "island")] + ["year", "island"]
    assert data.frame["year"].dtype == np.int64 and data.frame["island"].dtype == object
    pd.testing.assert_frame_equal(rows(data.frame[csv_frame.columns]), rows(csv_frame))
    kinds = {c.name: c.kind for c in data.profile.columns}
    assert kinds == {c.name: c.kind for c in penguins.profile.columns}


def test_a_flat_folder_reads_its_files_in_path_order(tmp_path, csv_frame):
    folder = tmp_path / "flat"
    folder.mkdir()
    for i, part in enumerate(np.array_split(np.arange(len(csv_frame)), 3)):
        pq.write_table(pa.Table.from_pandas(csv_frame.iloc[part], preserve_index=False), folder / f"part-{i}.parquet")
    (folder / "README.txt").write_text("not a Parquet file")
    data = load_source(tabular(folder))
    pd.testing.assert_frame_equal(rows(data.frame), rows(csv_frame))
    assert data.frame["bill_length_mm"].tolist()[:5] == pytest.approx(csv_frame["bill_length_mm"].tolist()[:5],
                                                                       nan_ok=True)


def test_a_partitioned_panel_is_a_time_series_source(tmp_path):
    folder = write_partitioned(pd.read_csv(GRUNFELD), tmp_path / "panel", ["firm"])
    from_csv = load_source(SourceSpec(modality="timeseries", path=GRUNFELD, entity="firm", time="year"))
    data = load_source(SourceSpec(modality="timeseries", path=folder, entity="firm", time="year"))
    assert (data.entity, data.static, data.features) == (from_csv.entity, from_csv.static, from_csv.features)
    columns = list(from_csv.frame.columns)
    pd.testing.assert_frame_equal(rows(data.frame[columns]), rows(from_csv.frame))


def test_fingerprint_is_order_free_and_follows_names_and_content(tmp_path, csv_frame):
    a = write_partitioned(csv_frame, tmp_path / "a", ["year"])
    b = write_partitioned(csv_frame, tmp_path / "b", ["year"], reverse=True)
    first = source_fingerprint(tabular(a))
    assert first.startswith("sha256:") and source_fingerprint(tabular(b)) == first
    (a / "_SUCCESS").write_text("")
    assert source_fingerprint(tabular(a)) == first, "files the dataset skips do not count"

    (b / "year=2009").rename(b / "year=2010")  # same bytes, another partition value
    assert source_fingerprint(tabular(b)) != first
    shutil.rmtree(b)

    part = next((a / "year=2008").glob("*.parquet"))
    table = pq.read_table(part)
    pq.write_table(table.set_column(0, "species", pa.array(["Gentoo"] * table.num_rows)), part)
    assert source_fingerprint(tabular(a)) != first


def _write(folder: Path, name: str, frame: pd.DataFrame) -> None:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path)


@pytest.mark.parametrize(
    "make, fragment",
    [
        (lambda d: (d / "notes.txt").write_text("x"), "holds no Parquet file"),
        (lambda d: (_write(d, "a.parquet", pd.DataFrame({"x": [1, 2]})),
                    _write(d, "b.parquet", pd.DataFrame({"x": ["one", "two"]}))), "disagree on a column's type"),
        (lambda d: _write(d, "year=2020/a.parquet", pd.DataFrame({"year": [2020], "x": [1.0]})),
         "'year' of"),
        (lambda d: (d / "a.parquet").write_bytes(b"PAR1 not really"), "corrupt or not Parquet"),
        (lambda d: _write(d, "a.parquet", pd.DataFrame({"x": pd.Series([], dtype=float)})), "has no rows"),
    ],
)
def test_bad_folders_are_one_line_source_errors(tmp_path, make, fragment):
    folder = tmp_path / "ds"
    folder.mkdir()
    make(folder)
    with pytest.raises(SourceError) as err:
        load_source(tabular(folder))
    assert fragment in str(err.value) and "\n" not in str(err.value)
