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
    # year (3 values) is a one-hot span: a small numeric support is modelled as classes
    assert encoder.n_continuous == len(penguins.profile.of_kind("numeric", "integer", "datetime")) - 1
    starts = [start for start, _ in encoder.spans]
    assert starts[0] == encoder.n_continuous and encoder.spans[-1][1] == encoder.dim
    for (_, stop), (start, _) in zip(encoder.spans, encoder.spans[1:]):
        assert stop == start  # spans tile the discrete part
    for start, stop in encoder.spans:
        assert np.all(matrix[:, start:stop].sum(axis=1) == 1)  # exactly one hot
    sex = encoder.column_layout("sex")  # 2 categories + missing
    assert sex.has_missing and sex.span[1] - sex.span[0] == 3
    year = encoder.column_layout("year")
    assert year.value is None and year.span[1] - year.span[0] == 3  # 2007-2009, no nulls: no missing class
    assert encoder.column_layout("bill_depth_mm").span is not None  # continuous with nulls: [observed, missing]
    assert np.abs(matrix[:, : encoder.n_continuous]).max() < 5.3  # quantile-normal range


def test_ties_at_the_extremes_are_spread_not_clipped():
    """A third of a column's rows are its minimum, 0: dequantised over the column's grid
    step (3), they cover a band of the Gaussian instead of all sitting at its -5.2 clip."""
    counts = np.random.default_rng(0).poisson(0.7, 2000) * 3
    frame = pd.DataFrame({"n": np.concatenate([counts, np.arange(0, 3000, 3)]).astype("int64")})
    profile = profile_table(frame)
    assert profile.column("n").support is None and profile.column("n").step == 3.0
    z = TableEncoder().fit(frame, profile).transform(frame)[:, 0]
    assert (np.abs(z) > 5).sum() <= 2
    assert 0.8 < z.std() < 1.2


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
    year = encoder.column_layout("year").span[0]  # a discrete numeric column: values or text
    assert encoder.category_index("year", 2008) == encoder.category_index("year", "2008") == year + 1
    with pytest.raises(ConditionError, match="numeric"):
        encoder.category_index("bill_length_mm", 40.0)


def test_bad_input_is_refused(penguins, encoder):
    unseen = penguins.frame.head(5).assign(island="Atlantis")
    with pytest.raises(BadInputError, match="'Atlantis'"):
        encoder.transform(unseen)
    gap = penguins.frame.head(5).assign(year=np.nan)
    with pytest.raises(BadInputError, match="'year' has nulls"):
        encoder.transform(gap)
    with pytest.raises(BadInputError, match="lacks profiled column"):
        TableEncoder().fit(penguins.frame.drop(columns="sex"), penguins.profile)
