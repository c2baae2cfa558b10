"""DP-SGD (generator.privacy) for the time-series generators, on the real fertility panel
(210 countries) and Grunfeld (static industry): the spent ε never exceeds the target,
the same seed gives the same private model, budgets that cannot train and overlapping
windows are refused, and a private model's plans (length, start, statics) come from the
profile, never from a real entity."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import torch

from generators import get, load_generator
from generators.timeseries.codec import SequenceCodec
from pipeline.core.errors import BadInputError
from pipeline.core.spec import SourceSpec
from pipeline.sources import load_source
from pipeline.sources.timeseries import load_timeseries
from tests.conftest import FAST_PARAMS, ROOT

PRIVACY = {"epsilon": 3.0}
# A private fit reads declared domains only (pipeline/core/domains.py); the entity needs none
FERTILITY_DOMAINS = {"year": {"range": [1960, 2011]}, "fertility": {"range": [0, 10]}}
PRIVATE = ["timeseries/diffusion", "timeseries/vae"]
BATCH = 32


@pytest.fixture(scope="module")
def fertility():
    spec = SourceSpec(modality="timeseries", path=ROOT / "data" / "sources" / "fertility.csv", entity="country",
                      time="year", columns=FERTILITY_DOMAINS)
    return load_source(spec)


def _fit(name: str, data, *, seed: int = 0, privacy: dict | None = PRIVACY, **params):
    return get(name)(device="cpu", privacy=privacy, **(FAST_PARAMS[name] | {"batch_size": BATCH, "seed": seed} | params)).fit(data)


@pytest.fixture(scope="module", params=PRIVATE)
def private(request, fertility):
    return request.param, _fit(request.param, fertility)


def test_spent_epsilon_never_exceeds_the_target(private, fertility):
    name, model = private
    spent = model.privacy_spent_
    assert 0 < spent["epsilon"] <= spent["target_epsilon"] == PRIVACY["epsilon"]
    n = len(fertility)  # one sequence, one row
    batches = math.ceil(n / BATCH)
    assert spent["delta"] == pytest.approx(1 / (10 * n)) and spent["sample_rate"] == pytest.approx(1 / batches)
    assert spent["steps"] == FAST_PARAMS[name]["epochs"] * batches, "as many steps as the epochs would take"


def test_same_seed_same_private_model_and_it_survives_save(private, fertility, tmp_path):
    name, model = private
    again, other = _fit(name, fertility), _fit(name, fertility, seed=1)
    weights = model.model_.state_dict()
    assert all(torch.equal(weights[k], v) for k, v in again.model_.state_dict().items())
    assert not all(torch.equal(weights[k], v) for k, v in other.model_.state_dict().items()), "the seed matters"
    model.save(tmp_path / "m")
    loaded = load_generator(tmp_path / "m")
    assert loaded.privacy_spent_ == model.privacy_spent_
    assert next(loaded.sample(20, seed=3)).equals(next(model.sample(20, seed=3)))


@pytest.mark.parametrize("name", PRIVATE)
def test_a_budget_that_cannot_train_says_so(name, fertility):
    with pytest.raises(BadInputError, match="cannot train this model"):
        _fit(name, fertility, privacy={"epsilon": 0.01})


def test_timegan_refuses_privacy_and_names_the_ones_that_train_privately():
    with pytest.raises(BadInputError, match="use timeseries/diffusion, timeseries/vae"):
        get("timeseries/gan")(privacy=PRIVACY)


def test_overlapping_windows_are_refused_in_a_private_fit():
    """Windows every 2 steps of 24: one year is in 12 training sequences."""
    frame = sm.datasets.sunspots.load_pandas().data.rename(columns={"YEAR": "year", "SUNACTIVITY": "sunspots"})
    frame["year"] = frame["year"].astype(int)
    spec = SourceSpec(modality="timeseries", path="sunspots.csv", time="year", window=24, stride=2)
    with pytest.raises(BadInputError, match="set source.stride equal to source.window"):
        _fit("timeseries/diffusion", load_timeseries(spec, frame.copy()))
    declared = SourceSpec(modality="timeseries", path="sunspots.csv", time="year", window=24, stride=24,
                          columns={"year": {"range": [1700, 2008]}, "sunspots": {"range": [0, 200]}})
    apart = load_timeseries(declared, frame.copy())  # 12 windows, no overlap
    model = _fit("timeseries/diffusion", apart, batch_size=4, privacy={"epsilon": 10.0})
    assert model.privacy_spent_["epsilon"] <= 10.0 and model.codec_.max_len == 24


def _plans(codec: SequenceCodec) -> pd.DataFrame:
    return pd.concat([codec.static_frame_, pd.DataFrame({"length": codec.lengths_, "start": codec.starts_})], axis=1)


def test_private_plans_come_from_the_profile_not_from_entities(timeseries_source):
    """Grunfeld's two halves of firms under one profile: private codecs hold the same
    plans (so no firm's plan shows in them), plain ones each half's own firms."""
    data = timeseries_source
    halves = [data.take(np.arange(i, len(data), 2)) for i in (0, 1)]
    private = [_plans(SequenceCodec().fit(h, private=True, seed=0)) for h in halves]
    plain = [_plans(SequenceCodec().fit(h)) for h in halves]
    assert private[0].equals(private[1])
    assert not plain[0].equals(plain[1])
    year = data.profile.column("year")
    assert (private[0]["length"] == year.max - year.min + 1).all() and (private[0]["start"] == year.min).all()
    assert set(private[0]["industry"]) == set(data.profile.column("industry").categories)


def test_a_private_models_sampled_plans_are_no_real_entitys(private, fertility):
    """Fertility has 18 countries with short records (3 to 22 years, starting late): a
    plain model copies those plans, a private one draws every country over the
    profile's whole range."""
    name, model = private
    real = fertility.frame.groupby("country")["year"].agg(["size", "min"])
    short = set(map(tuple, real[real["size"] < 52].to_numpy()))
    sampled = lambda m: set(map(tuple, pd.concat(m.sample(300, seed=1)).groupby("country")["year"].agg(["size", "min"]).to_numpy()))  # noqa: E731
    assert sampled(model) == {(52, 1960)}
    assert sampled(_fit(name, fertility, privacy=None)) & short, "a plain model does copy short plans"


def test_a_private_fit_needs_every_column_declared_but_the_entity():
    """Grunfeld undeclared: refused before any step, every column named but `firm`,
    whose values the output never takes; declared, the model keeps no real firm name."""
    spec = SourceSpec(modality="timeseries", path=ROOT / "data" / "sources" / "grunfeld.csv", entity="firm", time="year")
    with pytest.raises(BadInputError, match="declare these columns") as refused:
        _fit("timeseries/vae", load_source(spec))
    named = str(refused.value)
    assert all(f"{c}:" in named for c in ("year", "industry", "invest", "value", "capital")) and "firm:" not in named
    industries = ["automotive", "electrical", "matches", "office machines", "oil", "rubber", "steel"]
    declared = spec.model_copy(update={"columns": SourceSpec(
        modality="timeseries", path="x.csv", columns={
            "year": {"range": [1935, 1954]}, "industry": {"categories": industries},
            "invest": {"range": [0, 1500]}, "value": {"range": [0, 6500]}, "capital": {"range": [0, 2300]}}).columns})
    data = load_source(declared)
    model = _fit("timeseries/vae", data, batch_size=4)
    profile = model.codec_.profile_
    assert profile.column("firm").categories is None, "no real entity name in the model"
    assert (profile.column("invest").min, profile.column("invest").max) == (0, 1500), "the declared range, not the rows'"
    out = pd.concat(model.sample(30, seed=0))
    assert out["invest"].between(0, 1500).all() and set(out["industry"]) <= set(industries)
