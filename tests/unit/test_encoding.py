"""TableEncoder on real tables: exact round trips, known categories only, persistence."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import torch

from generators.tabular.encoding import TableEncoder
from pipeline.core.errors import BadInputError, ConditionError
from pipeline.core.schema import conform, profile_table


@pytest.fixture(scope="module")
def encoder(penguins) -> TableEncoder:
    return TableEncoder().fit(penguins.frame, penguins.profile)


@pytest.fixture(scope="module")
def co2() -> pd.DataFrame:
    """Weekly Mauna Loa CO2 (statsmodels): a datetime column and a numeric one with gaps."""
    data = sm.datasets.co2.load_pandas().data
    return data.rename_axis("week").reset_index()


def test_round_trip_gives_back_the_source(penguins, encoder):
    back = encoder.inverse_transform(encoder.transform(penguins.frame))
    pd.testing.assert_frame_equal(back, conform(penguins.frame, penguins.profile))


def test_layout_puts_continuous_first_then_one_hot_spans(penguins, encoder):
    matrix = encoder.transform(penguins.frame)
    assert matrix.dtype == np.float32 and matrix.shape == (len(penguins), encoder.dim)
    assert encoder.n_continuous == len(penguins.profile.of_kind("numeric", "integer", "datetime"))
    starts = [start for start, _ in encoder.spans]
    assert starts[0] == encoder.n_continuous and encoder.spans[-1][1] == encoder.dim
    for (_, stop), (start, _) in zip(encoder.spans, encoder.spans[1:]):
        assert stop == start  # spans tile the discrete part
    for start, stop in encoder.spans:
        assert np.all(matrix[:, start:stop].sum(axis=1) == 1)  # exactly one hot
    sex = encoder.column_layout("sex")  # 2 categories + missing
    assert sex.has_missing and sex.span[1] - sex.span[0] == 3
    assert encoder.column_layout("year").span is None  # no nulls, no missing channel
    assert np.abs(matrix[:, : encoder.n_continuous]).max() < 5.3  # quantile-normal range


def test_ties_at_the_extremes_are_spread_not_clipped(penguins, encoder):
    """A third of the penguins are from 2007, the minimum year: dequantised, they cover a
    band of the Gaussian instead of all sitting at its -5.2 clip."""
    year = encoder.transform(penguins.frame)[:, encoder.column_layout("year").value]
    assert (np.abs(year) > 5).sum() <= 2
    assert 0.8 < year.std() < 1.2


def test_nulls_come_back_where_they_were(penguins, encoder):
    back = encoder.inverse_transform(encoder.transform(penguins.frame))
    pd.testing.assert_frame_equal(back.isna(), penguins.frame.isna())


def test_any_matrix_decodes_to_known_categories_and_in_range_integers(penguins, encoder):
    noise = np.random.default_rng(0).normal(size=(2000, encoder.dim)) * 3
    out = encoder.inverse_transform(noise)
    assert list(out.columns) == penguins.profile.names
    assert out.dtypes.to_dict() == conform(penguins.frame, penguins.profile).dtypes.to_dict()
    for col in penguins.profile.of_kind("categorical"):
        assert set(out[col.name].dropna()) <= set(col.categories)
    for col in penguins.profile.of_kind("integer"):
        values = out[col.name].dropna().astype(float)
        assert values.between(col.min, col.max).all() and (values % 1 == 0).all()
    bill = out["bill_length_mm"].dropna()
    assert np.allclose(bill, bill.round(1))  # the source's one decimal
    assert out["species"].notna().all()  # no nulls where the source had none


def test_datetimes_round_trip_at_their_resolution(co2):
    profile = profile_table(co2)
    enc = TableEncoder().fit(co2, profile)
    assert enc.time_steps_ == {"week": 86_400 * 10**9}  # weekly dates: day resolution
    back = enc.inverse_transform(enc.transform(co2))
    pd.testing.assert_frame_equal(back, co2)
    decoded = enc.inverse_transform(np.random.default_rng(1).normal(size=(500, enc.dim)))
    weeks = decoded["week"]
    assert weeks.dtype == co2["week"].dtype and (weeks == weeks.dt.normalize()).all()
    assert weeks.between(co2["week"].min(), co2["week"].max()).all()


def test_state_restores_exactly_through_json_and_weights_only(penguins, encoder):
    meta, tensors = encoder.state()
    buffer = io.BytesIO()
    torch.save(tensors, buffer)
    buffer.seek(0)
    restored = TableEncoder.from_state(json.loads(json.dumps(meta)), torch.load(buffer, weights_only=True))
    matrix = encoder.transform(penguins.frame)
    assert np.array_equal(restored.transform(penguins.frame), matrix)
    noise = np.random.default_rng(2).normal(size=(300, encoder.dim))
    pd.testing.assert_frame_equal(restored.inverse_transform(noise), encoder.inverse_transform(noise))
    assert restored.layout == encoder.layout


def test_category_index_accepts_values_and_their_string_form(encoder):
    start = encoder.column_layout("species").span[0]
    assert encoder.category_index("species", "Gentoo") == start + 2
    with pytest.raises(ConditionError, match="never seen"):
        encoder.category_index("species", "Emperor")
    with pytest.raises(ConditionError, match="integer"):
        encoder.category_index("year", 2007)


def test_bad_input_is_refused(penguins, encoder):
    unseen = penguins.frame.head(5).assign(island="Atlantis")
    with pytest.raises(BadInputError, match="'Atlantis'"):
        encoder.transform(unseen)
    gap = penguins.frame.head(5).assign(year=np.nan)
    with pytest.raises(BadInputError, match="'year' has nulls"):
        encoder.transform(gap)
    with pytest.raises(BadInputError, match="lacks profiled column"):
        TableEncoder().fit(penguins.frame.drop(columns="sex"), penguins.profile)
