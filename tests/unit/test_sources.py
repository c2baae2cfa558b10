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
        "bill_depth_mm": "numeric", "flipper_length_mm": "integer", "body_mass_g": "integer",
        "sex": "categorical", "year": "integer",
    }
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
        kinds = {c.name: c.kind for c in profile_table(read_table(path)).columns}
        assert kinds["when"] == "datetime" and kinds["n"] == "integer"
    assert profile_table(read_table(tmp_path / "t.parquet")).column("flag").kind == "boolean"


def test_conform_restores_dtypes(penguins):
    wild = penguins.frame.copy()
    wild["flipper_length_mm"] = wild["flipper_length_mm"] + 0.4  # a generator's float output
    wild["bill_length_mm"] = wild["bill_length_mm"] + 0.0123
    out = conform(wild, penguins.profile)
    assert str(out["flipper_length_mm"].dtype) == "Int64"
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
