"""The native time-series generators (TimeGAN, TimeVAE, diffusion), each trained for a
few steps on real panels: long format in the source's schema, per-entity ordering,
the source's time frequency, starts and lengths, static columns constant and real,
conditions, determinism and checkpoints."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from generators import get, load_generator
from pipeline.core.errors import ConditionError
from pipeline.core.plan import plan_chunks
from pipeline.core.schema import conform
from pipeline.sources import load_source
from pipeline.core.spec import SourceSpec
from tests.conftest import FAST_PARAMS
from tests.unit.test_timeseries_source import FERTILITY, quarterly_gdp, travel_modes, write

FAMILIES = ["timeseries/gan", "timeseries/vae", "timeseries/diffusion"]


def make(name: str, **extra):
    return get(name)(device="cpu", **{**FAST_PARAMS[name], **extra})


@pytest.fixture(scope="module", params=FAMILIES)
def fitted(request, timeseries_source):
    calls = []
    model = make(request.param).fit(timeseries_source, progress=lambda done, total, **m: calls.append((done, total, m)))
    return model, calls


def lengths(frame: pd.DataFrame, entity: str) -> pd.Series:
    return frame.groupby(entity, sort=False).size()


def test_long_format_in_the_source_schema(fitted, timeseries_source):
    model, _ = fitted
    src = timeseries_source
    out = pd.concat(model.sample(25, seed=1, batch_size=10), ignore_index=True)
    assert list(out.columns) == src.profile.names
    assert out.dtypes.to_dict() == conform(src.frame, src.profile).dtypes.to_dict()
    assert out["firm"].nunique() == 25  # ids unique across the three chunks
    assert not set(out["firm"]) & set(src.frame["firm"])
    assert out.equals(out.sort_values(["firm", "year"]).reset_index(drop=True))
    assert np.isfinite(out[src.features].to_numpy()).all()


def test_time_follows_the_source_frequency_starts_and_lengths(fitted, timeseries_source):
    model, _ = fitted
    out = next(model.sample(12, seed=2))
    per = out.groupby("firm")["year"]
    assert per.diff().dropna().eq(1).all()
    assert set(per.min()) <= set(timeseries_source.frame.groupby("firm")["year"].min())
    assert lengths(out, "firm").eq(20).all()


def test_static_columns_are_constant_and_real(fitted, timeseries_source):
    model, _ = fitted
    out = next(model.sample(30, seed=3))
    assert out.groupby("firm")["industry"].nunique().eq(1).all()
    assert set(out["industry"]) <= set(timeseries_source.frame["industry"])


def test_conditions_on_a_static_column(fitted):
    model, _ = fitted
    out = next(model.sample(8, seed=4, conditions={"industry": "steel"}))
    assert out["industry"].eq("steel").all() and out["firm"].nunique() == 8
    with pytest.raises(ConditionError, match="never seen"):
        next(model.sample(2, seed=0, conditions={"industry": "shipping"}))
    with pytest.raises(ConditionError, match="cannot condition .* on 'invest'"):
        next(model.sample(2, seed=0, conditions={"invest": 1.0}))


def test_same_seed_same_sequences_and_checkpoint_round_trip(fitted, tmp_path):
    model, _ = fitted
    a = next(model.sample(6, seed=9))
    pd.testing.assert_frame_equal(a, next(model.sample(6, seed=9)))
    assert not a.equals(next(model.sample(6, seed=10)))
    model.save(tmp_path / "m")
    pd.testing.assert_frame_equal(a, next(load_generator(tmp_path / "m").sample(6, seed=9)))


def test_progress_reports_every_epoch_with_a_finite_loss(fitted):
    model, calls = fitted
    done, total, metrics = calls[-1]
    assert done == total == len(calls) and math.isfinite(metrics["loss"])


@pytest.mark.parametrize("batch_size", [4, 7])
def test_a_chunk_holds_the_entities_of_its_plan_offset_whatever_the_batch_size(fitted, batch_size):
    """Which records a chunk holds comes from the plan alone: its ids are offset ..
    offset + size - 1, so any batch size numbers a request's sequences the same way."""
    model, _ = fitted
    for chunk in plan_chunks(11, batch_size, seed=5):
        ids = model.sample_chunk(chunk)["firm"].unique().tolist()
        assert ids == [f"synthetic-{i:09d}" for i in range(chunk.offset, chunk.offset + chunk.size)]


@pytest.mark.parametrize("name", FAMILIES)
def test_unequal_lengths_come_from_the_source(name, tmp_path):
    frame = pd.read_csv(FERTILITY)
    n = frame.groupby("country").size()
    keep = list(n[n < 52].index) + list(n[n == 52].index[:20])  # every short country and 20 full ones
    src = load_source(
        SourceSpec(modality="timeseries", path=write(frame[frame.country.isin(keep)], tmp_path), entity="country", time="year")
    )
    out = next(make(name).fit(src).sample(200, seed=0))
    got, real = lengths(out, "country"), lengths(src.frame, "country")
    assert set(got) <= set(real) and got.min() < 52 and got.max() == 52
    firsts = out.groupby("country")["year"].min()
    assert set(firsts) <= set(src.frame.groupby("country")["year"].min())


@pytest.mark.parametrize("name", FAMILIES)
def test_categorical_features_missing_values_and_numeric_statics(name, tmp_path):
    modes = travel_modes()
    src = load_source(
        SourceSpec(
            modality="timeseries", path=write(modes[modes.individual <= 60], tmp_path), entity="individual", time="mode"
        )
    )
    model = make(name).fit(src)
    out = next(model.sample(20, seed=1, conditions={"psize": 2}))
    assert out["psize"].eq(2).all() and out.groupby("individual")["hinc"].nunique().eq(1).all()
    assert set(out["choice"]) <= {"chosen", "not chosen"}
    assert out.dtypes.to_dict() == conform(src.frame, src.profile).dtypes.to_dict()
    assert out["individual"].dtype == src.frame["individual"].dtype  # integer ids stay integers
    assert out.groupby("individual")["mode"].apply(list).map([1, 2, 3, 4].__eq__).all()


def test_timestamps_keep_the_source_frequency(tmp_path):
    src = load_source(
        SourceSpec(modality="timeseries", path=write(quarterly_gdp(), tmp_path), time="date", window=12, stride=6)
    )
    out = next(make("timeseries/vae").fit(src).sample(10, seed=0))
    assert pd.api.types.is_datetime64_any_dtype(out["date"])
    for _, dates in out.groupby("window")["date"]:
        assert pd.infer_freq(pd.DatetimeIndex(dates)) == pd.infer_freq(pd.DatetimeIndex(src.frame["date"][:12]))
    assert set(out.groupby("window")["date"].min()) <= set(src.frame.groupby("window")["date"].min())
