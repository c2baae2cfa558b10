"""Tabular sources: CSV / Parquet, kinds inferred, fingerprints, clear errors."""

import numpy as np
import pandas as pd
import pytest

from pipeline.core.errors import SourceError
from pipeline.core.schema import conform, profile_table
from pipeline.sources import fingerprint, read_table


def test_penguins_kinds(penguins):
    kinds = {c.name: c.kind for c in penguins.profile.columns}
    assert kinds == {
        "species": "categorical", "island": "categorical", "bill_length_mm": "numeric",
        "bill_depth_mm": "numeric", "flipper_length_mm": "numeric", "body_mass_g": "numeric",
        "sex": "categorical", "year": "integer",
    }
    # whole numbers with gaps are read from CSV as float64: they stay float64, on a grid of 1 (25 g)
    flipper, mass = penguins.profile.column("flipper_length_mm"), penguins.profile.column("body_mass_g")
    assert (flipper.dtype, flipper.decimals, flipper.step) == ("float64", 0, 1.0)
    assert mass.step == 25.0
    assert penguins.profile.column("year").support == [2007.0, 2008.0, 2009.0]
    bill = penguins.profile.column("bill_length_mm")
    assert bill.decimals == 1 and 0 < bill.null_fraction < 0.01
    assert penguins.profile.column("species").categories == ["Adelie", "Chinstrap", "Gentoo"]


def test_boolean_datetime_and_parquet_roundtrip(tmp_path):
    frame = pd.DataFrame({
        "flag": [True, False, True, None],
        "when": pd.to_datetime(["2024-01-01", "2024-02-01", None, "2024-03-05"]),
        "n": [1, 2, 3, 4],
    })
    frame.to_parquet(tmp_path / "t.parquet")
    frame.to_csv(tmp_path / "t.csv", index=False)
    for path in (tmp_path / "t.parquet", tmp_path / "t.csv"):
        table = read_table(path)
        kinds = {c.name: c.kind for c in profile_table(table).columns}
        assert kinds == {"flag": "boolean", "when": "datetime", "n": "integer"}
        assert str(table["flag"].dtype) == ("object" if path.suffix == ".parquet" else "boolean")  # CSV: nullable


def test_conform_restores_dtypes(penguins):
    wild = penguins.frame.copy()
    wild["flipper_length_mm"] = wild["flipper_length_mm"] + 0.4  # a generator's float output
    wild["bill_length_mm"] = wild["bill_length_mm"] + 0.0123
    out = conform(wild, penguins.profile)
    assert out.dtypes.to_dict() == penguins.frame.dtypes.to_dict()
    assert (out["flipper_length_mm"].dropna() % 1 == 0).all() and (out["body_mass_g"].dropna() % 25 == 0).all()
    assert np.allclose(out["bill_length_mm"].dropna() * 10, (out["bill_length_mm"].dropna() * 10).round())


def test_fingerprint_changes_with_content(tmp_path):
    a = tmp_path / "a.csv"
    a.write_text("x\n1\n")
    first = fingerprint(a)
    assert first.startswith("sha256:") and fingerprint(a) == first
    a.write_text("x\n2\n")
    assert fingerprint(a) != first


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("empty.csv", "", "is empty"),
        ("header.csv", "a,b\n", r"empty \(0 rows\)"),
        ("nulls.csv", "a,b\n1,\n2,\n", "'b' are entirely null"),
        ("bad.parquet", "PAR1 this is not parquet", "corrupt or not Parquet"),
        ("data.json", "{}", "unsupported source format"),
    ],
)
def test_bad_sources(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(SourceError, match=message):
        profile_table(read_table(path))


def test_missing_source(tmp_path):
    with pytest.raises(SourceError, match="source not found"):
        read_table(tmp_path / "nope.csv")
