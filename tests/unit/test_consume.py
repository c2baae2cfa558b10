"""pipeline.consume: run resolution, the quarantine gate, and the pyarrow / pandas /
torch readers, on real run folders built from real data (penguins, digits, Grunfeld)."""

from __future__ import annotations

import math
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest
import torch
from torch.utils.data import DataLoader

from pipeline.consume import load, load_run
from pipeline.core.data import ImageData
from pipeline.core.errors import BadInputError, IntegrityError, QuarantinedError, RunNotFoundError
from pipeline.core.images import images_to_table, table_to_images
from pipeline.core.manifest import Failure, GeneratorRecord, Manifest, SourceRecord, part_records, read_manifest, write_manifest
from pipeline.runs import RunFolder, set_latest
from pipeline.core.schema import profile_table
from pipeline.sink import with_provenance
from pipeline.torch_dataset import IGNORE_INDEX, collate_sequences

ROOT = Path(__file__).resolve().parents[2]
MIA_FAILURE = Failure(suite="privacy", target="membership_inference_auc", check="at most the threshold",
                      observed="0.81", expected="<= 0.6")
SOURCES = ROOT / "data" / "sources"


def write_run(
    root: Path,
    job: str,
    run_id: str,
    tables: list[pa.Table],
    *,
    source: dict,
    schema: dict | None,
    layout: dict | None = None,
    status: str = "published",
    latest: bool = False,
    row_group_size: int | None = None,
) -> Path:
    """A run folder as the flow writes it: parts with provenance, manifest, commit, LATEST."""
    run = RunFolder(root / job, run_id).create()
    for i, table in enumerate(tables):
        table = with_provenance(table, {"job": job, "run_id": run_id, "part": i})
        pq.write_table(table, run.tmp / f"part-{i:05d}.parquet", row_group_size=row_group_size)
    write_manifest(run.tmp, Manifest(
        run_id=run_id,
        status=status,
        job={"name": job, "source": source},
        generator=GeneratorRecord(name=f"{source['modality']}/test", params={}, cache_key="test", reused_fit=False),
        seed=0,
        source=SourceRecord(path=str(source.get("path", "")), fingerprint="sha256:test"),
        rows={"synthetic": sum(t.num_rows for t in tables)},
        schema=schema,
        layout=layout or {},
        metrics={"privacy.exact_copy_rate": 0.0},
        failures=[] if status == "published" else [asdict(MIA_FAILURE)],
        files=part_records(run.tmp),
    ))
    final = run.commit()
    if latest:
        set_latest(root / job, run_id)
    return final


@pytest.fixture()
def penguin_runs(tmp_path, penguins):
    """Job `penguins`: two published runs (LATEST = the newer) and a quarantined one."""
    frame = penguins.frame
    schema = penguins.profile.model_dump(mode="json")
    source = {"modality": "tabular", "path": "data/sources/penguins.csv"}
    halves = [pa.Table.from_pandas(frame.iloc[:200], preserve_index=False),
              pa.Table.from_pandas(frame.iloc[200:], preserve_index=False)]
    write_run(tmp_path, "penguins", "20261101T000000Z-aaaaaa", halves[:1], source=source, schema=schema, latest=True)
    write_run(tmp_path, "penguins", "20261102T000000Z-bbbbbb", halves, source=source, schema=schema,
              latest=True, row_group_size=64)
    write_run(tmp_path, "penguins", "20261103T000000Z-cccccc", halves, source=source, schema=schema,
              status="quarantined")
    return tmp_path


# ---- resolution and the quarantine gate -------------------------------------------------


def test_verify_checks_every_part_and_refuses_a_run_without_checksums(penguin_runs):
    run_dir = penguin_runs / "penguins" / "20261102T000000Z-bbbbbb"
    assert load("penguins", root=penguin_runs, verify=True).run_dir == run_dir
    manifest = read_manifest(run_dir)
    write_manifest(run_dir, manifest.model_copy(update={"files": {}}))  # as an older synthpipe wrote it
    assert load("penguins", root=penguin_runs).run_dir == run_dir  # nothing recorded, nothing to compare
    with pytest.raises(IntegrityError, match="no file checksums"):
        load("penguins", root=penguin_runs, verify=True)



def test_latest_is_the_run_latest_names(penguin_runs):
    data = load("penguins", root=penguin_runs)
    assert data.run_dir.name == "20261102T000000Z-bbbbbb"  # not the newer, quarantined one
    assert data.status == "published" and data.modality == "tabular"


def test_version_picks_a_run_by_id(penguin_runs):
    data = load("penguins", version="20261101T000000Z-aaaaaa", root=penguin_runs)
    assert data.run_dir.name == "20261101T000000Z-aaaaaa"
    assert data.to_pyarrow().count_rows() == 200


def test_quarantined_run_is_refused_unless_allowed(penguin_runs):
    with pytest.raises(QuarantinedError, match="allow_quarantined=True") as err:
        load("penguins", version="20261103T000000Z-cccccc", root=penguin_runs)
    assert "is quarantined: 1 failing expectation(s), first: " + str(MIA_FAILURE) in str(err.value)
    data = load("penguins", version="20261103T000000Z-cccccc", root=penguin_runs, allow_quarantined=True)
    assert data.status == "quarantined" and data.to_pyarrow().count_rows() == 344
    with pytest.raises(QuarantinedError):
        load_run(penguin_runs / "penguins" / "20261103T000000Z-cccccc")


def test_unknown_job_and_run_list_what_exists(penguin_runs):
    with pytest.raises(RunNotFoundError, match="jobs there: penguins"):
        load("churn", root=penguin_runs)
    with pytest.raises(RunNotFoundError) as err:
        load("penguins", version="20990101T000000Z-ffffff", root=penguin_runs)
    assert "20261101T000000Z-aaaaaa (published)" in str(err.value)
    assert "20261103T000000Z-cccccc (quarantined)" in str(err.value)
    with pytest.raises(BadInputError, match="not a plain name"):
        load("penguins", version="../penguins", root=penguin_runs)


def test_job_without_a_published_run_says_how_to_read_one(tmp_path, penguins):
    frame = pa.Table.from_pandas(penguins.frame, preserve_index=False)
    write_run(tmp_path, "bad", "20261103T000000Z-cccccc", [frame], source={"modality": "tabular"},
              schema=penguins.profile.model_dump(mode="json"), status="quarantined")
    with pytest.raises(RunNotFoundError, match=r"no published run.*cccccc \(quarantined\).*version=<run id>"):
        load("bad", root=tmp_path)


def test_load_run_accepts_a_run_or_a_job_folder(penguin_runs):
    assert load_run(penguin_runs / "penguins" / "20261101T000000Z-aaaaaa").to_pandas().shape == (200, 8)
    assert load_run(penguin_runs / "penguins").run_dir.name == "20261102T000000Z-bbbbbb"
    with pytest.raises(RunNotFoundError):
        load_run(penguin_runs)


# ---- pyarrow and pandas ---------------------------------------------------------------------


def test_manifest_travels_and_readers_return_the_data(penguin_runs, penguins):
    data = load("penguins", root=penguin_runs)
    assert data.manifest["rows"]["synthetic"] == 344
    assert data.manifest["metrics"] == {"privacy.exact_copy_rate": 0.0}
    assert data.profile.names == penguins.profile.names
    table = data.to_pyarrow()
    assert isinstance(table, pads.Dataset) and len(table.files) == 2
    assert table.count_rows() == 344
    assert sum(1 for _ in table.to_batches(batch_size=64)) >= 6  # streams in row groups
    pd.testing.assert_frame_equal(data.to_pandas().fillna(np.nan), penguins.frame)  # Arrow nulls read as None
    assert list(data.to_pandas(columns=["species"]).columns) == ["species"]


def test_part_with_an_all_null_column_reads_with_the_others(tmp_path, penguins):
    """The 11 penguins of unknown sex as their own part: `sex` is typed null there."""
    frame = penguins.frame
    unknown = frame[frame.sex.isna()]
    parts = [pa.Table.from_pandas(unknown, preserve_index=False),
             pa.Table.from_pandas(frame[frame.sex.notna()], preserve_index=False)]
    assert parts[0].schema.field("sex").type == pa.null()
    write_run(tmp_path, "p", "r1", parts, source={"modality": "tabular"},
              schema=penguins.profile.model_dump(mode="json"), latest=True)
    data = load("p", root=tmp_path)
    assert data.to_pyarrow().schema.field("sex").type == pa.string()
    out = data.to_pandas()
    assert len(out) == 344 and out["sex"].isna().sum() == len(unknown) == 11
    sex = torch.stack(_all(data.torch(features=["sex"])))[:, 0]
    assert torch.isnan(sex[:11]).all() and not torch.isnan(sex[11:]).any()


# ---- torch: tabular -----------------------------------------------------------------------


def _all(dataset) -> list:
    return list(iter(dataset))


def test_tabular_rows_codes_follow_the_profile(penguin_runs, penguins):
    rows = load("penguins", root=penguin_runs).torch(target="species")
    frame, profile = penguins.frame, penguins.profile
    assert rows.feature_names == [n for n in profile.names if n != "species"]
    assert rows.categories["island"] == profile.column("island").categories
    assert rows.target_classes == ["Adelie", "Chinstrap", "Gentoo"]
    items = _all(rows)
    assert len(items) == len(rows) == 344
    x = torch.stack([i[0] for i in items])
    y = torch.stack([i[1] for i in items])
    assert x.dtype == torch.float32 and x.shape == (344, 7) and y.dtype == torch.int64
    island = profile.column("island").categories
    assert x[:, 0].tolist() == [island.index(v) for v in frame["island"]]
    assert y.tolist() == [rows.target_classes.index(v) for v in frame["species"]]
    mass = frame["body_mass_g"].to_numpy(dtype=float, na_value=np.nan)
    np.testing.assert_allclose(x[:, 4].numpy(), mass, equal_nan=True)
    assert torch.isnan(x[:, 4]).sum() == 2  # the source's two missing masses
    sex = x[:, 5]
    assert torch.isnan(sex).sum() == frame["sex"].isna().sum()
    assert set(sex[~torch.isnan(sex)].tolist()) == {0.0, 1.0}  # female, male in profile order


def test_tabular_onehot_fill_and_null_class_target(penguin_runs, penguins):
    rows = load("penguins", root=penguin_runs).torch(target="sex", categorical="onehot", fill_value=-1.0)
    assert rows.feature_names[:3] == ["species=Adelie", "species=Chinstrap", "species=Gentoo"]
    items = _all(rows)
    x = torch.stack([i[0] for i in items])
    y = torch.stack([i[1] for i in items])
    assert x.shape == (344, len(rows.feature_names)) and not torch.isnan(x).any()
    assert torch.all(x[:, :3].sum(1) == 1)
    mass = rows.feature_names.index("body_mass_g")
    assert (x[:, mass] == -1.0).sum() == 2
    assert (y == IGNORE_INDEX).sum() == penguins.frame["sex"].isna().sum()  # skipped by CrossEntropyLoss


def test_tabular_value_outside_the_profile_is_refused(tmp_path, penguins):
    """A run whose data holds a category its source never had broke its contract."""
    frame = penguins.frame
    narrow = profile_table(frame[frame.species != "Chinstrap"])
    write_run(tmp_path, "p", "r1", [pa.Table.from_pandas(frame, preserve_index=False)],
              source={"modality": "tabular"}, schema=narrow.model_dump(mode="json"), latest=True)
    with pytest.raises(BadInputError, match="'Chinstrap', which is not one of the source's categories"):
        _all(load("p", root=tmp_path).torch())


def test_tabular_bad_arguments(penguin_runs):
    data = load("penguins", root=penguin_runs)
    with pytest.raises(BadInputError, match="not a column"):
        data.torch(target="beak")
    with pytest.raises(BadInputError, match="also listed in features"):
        data.torch(target="species", features=["species", "island"])
    with pytest.raises(BadInputError, match="allowed: codes, onehot"):
        data.torch(categorical="ordinal")
    with pytest.raises(BadInputError, match="time-series"):
        data.torch(static=["island"])


def test_batched_rows_match_single_rows(penguin_runs):
    data = load("penguins", root=penguin_runs)
    single = _all(data.torch(target="species"))
    batched = data.torch(target="species", batch_size=50)
    batches = list(DataLoader(batched, batch_size=None))
    assert len(batched) == len(batches) == 12  # row groups 64, 64, 64, 8 | 64, 64, 16: batches cut per group
    rows = torch.stack([x for x, _ in single]).nan_to_num(-1)
    assert torch.equal(torch.cat([x for x, _ in batches]).nan_to_num(-1), rows)
    assert torch.equal(torch.cat([y for _, y in batches]), torch.stack([y for _, y in single]))
    with pytest.raises(BadInputError, match="batch_size=0"):
        data.torch(batch_size=0)


def test_shuffle_reorders_each_epoch_and_workers_split_the_rows(penguin_runs):
    rows = load("penguins", root=penguin_runs).torch(features=["bill_length_mm", "year"], shuffle=True)
    torch.manual_seed(0)
    first, second = torch.stack(_all(rows)), torch.stack(_all(rows))
    assert not torch.equal(first, second)
    key = lambda t: sorted(map(tuple, t.nan_to_num(-1).tolist()))  # noqa: E731
    assert key(first) == key(second)
    # spawn: a forked worker inherits the session's Prefect / GX threads and can die at start-up
    loaded = torch.cat(list(DataLoader(rows, batch_size=50, num_workers=2, multiprocessing_context="spawn")))
    assert loaded.shape == (344, 2) and key(loaded) == key(first)  # every row exactly once


# ---- torch: images ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def digits() -> ImageData:
    table = pq.read_table(SOURCES / "digits.parquet").slice(0, 120)
    return table_to_images(table, label="label")


def test_images_decode_to_chw_in_unit_range_with_class_index(tmp_path, digits):
    parts = [images_to_table(ImageData(digits.images[:70], digits.labels[:70], "label")),
             images_to_table(ImageData(digits.images[70:], digits.labels[70:], "label"))]
    write_run(tmp_path, "digits", "r1", parts, source={"modality": "image", "label": "label"}, schema=None,
              layout=digits.layout(), latest=True, row_group_size=32)
    images = load("digits", root=tmp_path).torch()
    assert images.classes == list(range(10))  # no model/ folder: the source's classes, from the layout
    items = _all(images)
    assert len(items) == len(images) == 120
    x = torch.stack([i[0] for i in items])
    y = torch.stack([i[1] for i in items])
    assert x.shape == (120, 1, 8, 8) and x.dtype == torch.float32
    assert 0.0 <= x.min() and x.max() <= 1.0
    expected = torch.from_numpy(digits.images).permute(0, 3, 1, 2).float() / 255
    assert torch.allclose(x, expected)
    assert y.dtype == torch.int64 and y.tolist() == digits.labels.tolist()
    batches = list(DataLoader(load("digits", root=tmp_path).torch(batch_size=32), batch_size=None))
    assert [len(b[1]) for b in batches] == [32, 32, 6, 32, 18]  # row groups of 32 in parts of 70 and 50
    assert torch.allclose(torch.cat([b[0] for b in batches]), expected)
    with pytest.raises(BadInputError, match="not images"):
        load("digits", root=tmp_path).torch(features=["label"])


# ---- torch: time series ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def grunfeld(timeseries_source):
    """Grunfeld's 11 firms x 20 years: static `industry`, features invest, value, capital."""
    return timeseries_source.frame.copy()


@pytest.fixture(scope="module")
def grunfeld_layout(timeseries_source) -> dict:
    return timeseries_source.layout()


def test_sequences_per_entity_with_static_target(tmp_path, grunfeld, grunfeld_layout):
    profile = profile_table(grunfeld)
    firms = grunfeld["firm"].unique()
    parts = [pa.Table.from_pandas(grunfeld[grunfeld.firm.isin(firms[:6])], preserve_index=False),
             pa.Table.from_pandas(grunfeld[grunfeld.firm.isin(firms[6:])], preserve_index=False)]
    # row groups of 45 rows cut firms (20 steps each) across row groups
    write_run(tmp_path, "grunfeld", "r1", parts, source={"modality": "timeseries", "entity": "firm", "time": "year"},
              schema=profile.model_dump(mode="json"), layout=grunfeld_layout, latest=True, row_group_size=45)
    sequences = load("grunfeld", root=tmp_path).torch(target="industry")
    assert sequences.feature_names == ["invest", "value", "capital"]
    assert sequences.static_names == []  # the target is the only static column
    industries = profile.column("industry").categories
    assert sequences.target_classes == industries and len(industries) == 7
    items = _all(sequences)
    assert len(items) == len(sequences) == 11
    for (x, static, y), firm in zip(items, firms):
        rows = grunfeld[grunfeld.firm == firm]
        assert x.shape == (20, 3) and x.dtype == torch.float32 and static.shape == (0,)
        np.testing.assert_allclose(x.numpy(), rows[["invest", "value", "capital"]].to_numpy(), rtol=1e-6)
        assert y.item() == industries.index(rows["industry"].iloc[0])
    x, lengths, static, y = collate_sequences(items[:4])
    assert x.shape == (4, 20, 3) and lengths.tolist() == [20] * 4 and y.shape == (4,)
    batched = load("grunfeld", root=tmp_path).torch(target="industry", batch_size=4)
    batches = list(DataLoader(batched, batch_size=None))
    assert len(batched) == len(batches) == 4  # 6 firms in part 0, 5 in part 1: 4 + 2, 4 + 1
    assert torch.equal(batches[0][0], x) and torch.equal(batches[0][3], y)
    with pytest.raises(BadInputError, match="must be a static column"):
        load("grunfeld", root=tmp_path).torch(target="invest")


def test_sequences_of_uneven_length_pad_and_keep_statics(tmp_path, grunfeld, grunfeld_layout):
    uneven = grunfeld[~((grunfeld.firm == grunfeld.firm.iloc[0]) & (grunfeld.year > 1944))]
    write_run(tmp_path, "g", "r1", [pa.Table.from_pandas(uneven, preserve_index=False)],
              source={"modality": "timeseries", "entity": "firm", "time": "year"},
              schema=profile_table(uneven).model_dump(mode="json"), layout=grunfeld_layout, latest=True)
    sequences = load("g", root=tmp_path).torch(categorical="onehot")
    assert sequences.static_names == [f"industry={v}" for v in sorted(grunfeld["industry"].unique())]
    items = _all(sequences)
    assert [len(x) for x, _ in items][:2] == [10, 20]
    x, lengths, static, *rest = collate_sequences(items)
    assert rest == [] and x.shape == (11, 20, 3) and lengths[0] == 10
    assert torch.all(x[0, 10:] == 0) and torch.all(static.sum(1) == 1)
    firms = uneven.groupby("firm", sort=True)["industry"].first()
    assert static.argmax(1).tolist() == [sorted(firms.unique()).index(v) for v in firms]
    assert not math.isnan(float(x[0, :10].sum()))
