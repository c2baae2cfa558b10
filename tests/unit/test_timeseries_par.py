"""`timeseries/par` (SDV PAR) on the Grunfeld investment panel (data/sources): 11 firms x
20 years, a few epochs. Long format, ids, ordering, lengths, determinism, checkpoints,
conditions on a static column."""

from __future__ import annotations

import pandas as pd
import pytest

from generators import get, load_generator
from pipeline.core.data import TimeSeriesData
from pipeline.core.errors import ConditionError
from pipeline.core.plan import plan_chunks
from pipeline.core.schema import conform


@pytest.fixture(scope="module")
def panel(timeseries_source) -> TimeSeriesData:
    """data/sources/grunfeld.csv through the real loader: `industry` is static."""
    assert timeseries_source.static == ["industry"]
    return timeseries_source


@pytest.fixture(scope="module")
def par(panel):
    return get("timeseries/par")(device="cpu", epochs=2).fit(panel)


def test_long_format_in_the_source_schema(par, panel):
    out = next(par.sample(6, seed=1))
    assert list(out.columns) == panel.profile.names
    assert out.dtypes.to_dict() == conform(panel.frame, panel.profile).dtypes.to_dict()
    assert out["firm"].nunique() == 6
    assert not set(out["firm"]) & set(panel.frame["firm"])  # no synthetic firm claims a real one
    assert out.equals(out.sort_values(["firm", "year"]).reset_index(drop=True))
    assert set(out["industry"]) <= set(panel.frame["industry"])
    assert (out.groupby("firm")["industry"].nunique() == 1).all()  # static stays static


def test_lengths_and_times_follow_the_source(par, panel):
    out = next(par.sample(6, seed=1))
    source_lengths = panel.frame.groupby("firm").size()
    lengths = out.groupby("firm").size()
    assert lengths.between(source_lengths.min(), source_lengths.max()).all()
    steps = out.groupby("firm")["year"].diff().dropna()
    assert (steps == 1).all()  # the source's yearly grid: no repeated or skipped year
    starts = out.groupby("firm")["year"].first()
    assert starts.between(panel.frame["year"].min(), panel.frame["year"].max()).all()


def test_entity_ids_unique_across_chunks_and_set_by_the_plan_offset(par):
    chunks = list(par.sample(5, seed=3, batch_size=2))
    ids = [sorted(set(c["firm"])) for c in chunks]
    assert [len(i) for i in ids] == [2, 2, 1]
    assert len(set().union(*ids)) == 5
    for chunk, got in zip(plan_chunks(5, 2, seed=3), ids):  # from the plan, not from batch_size
        assert got == [f"synthetic-{i:09d}" for i in range(chunk.offset, chunk.offset + chunk.size)]


def test_same_seed_same_output(par):
    a = next(par.sample(3, seed=9))
    pd.testing.assert_frame_equal(a, next(par.sample(3, seed=9)))
    assert not a.equals(next(par.sample(3, seed=10)))


def test_save_load_round_trip(par, tmp_path):
    par.save(tmp_path / "model")
    loaded = load_generator(tmp_path / "model")
    assert loaded.condition_values_ == par.condition_values_
    pd.testing.assert_frame_equal(next(loaded.sample(3, seed=4)), next(par.sample(3, seed=4)))


def test_conditions_on_a_static_column(par):
    out = next(par.sample(3, seed=2, conditions={"industry": "steel"}))
    assert out["firm"].nunique() == 3
    assert set(out["industry"]) == {"steel"}


def test_bad_conditions_are_refused(par):
    with pytest.raises(ConditionError, match="never seen"):
        next(par.sample(2, seed=0, conditions={"industry": "aerospace"}))
    with pytest.raises(ConditionError, match="cannot condition"):
        next(par.sample(2, seed=0, conditions={"invest": 100.0}))


def test_timestamps_stay_on_the_sources_grid():
    """A half-hourly panel whose entities start at different times (World Bank fertility,
    its years as 30-minute steps from 00:15): PAR draws start times off the grid (23:00:57
    once; 96 % of these steps before the fix); every output time is whole steps from the
    source's first, 30 minutes apart within a country."""
    from pipeline.core.data import TimeSeriesData
    from pipeline.core.schema import profile_table
    from tests.conftest import ROOT

    frame = pd.read_csv(ROOT / "data" / "sources" / "fertility.csv")
    frame = frame.assign(year=pd.Timestamp("2020-01-01 00:15") + pd.to_timedelta((frame["year"] - 1960) * 30, unit="min"))
    data = TimeSeriesData(frame=frame, profile=profile_table(frame), entity="country", time="year", static=[],
                          features=["fertility"])
    assert data.frame.groupby("country")["year"].first().nunique() > 3, "starts differ: PAR has to draw them"
    out = next(get("timeseries/par")(device="cpu", epochs=2).fit(data).sample(20, seed=5))
    offsets = (out["year"] - frame["year"].min()) / pd.Timedelta(minutes=30)
    assert (offsets == offsets.round()).all()
    assert (out.groupby("country")["year"].diff().dropna() == pd.Timedelta(minutes=30)).all()
