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
from validators import gx

PRIVACY = {"epsilon": 3.0}
# A private fit reads declared domains only (pipeline/core/domains.py); the entity needs none
FERTILITY_DOMAINS = {"year": {"range": [1960, 2011], "step": 1}, "fertility": {"range": [0, 10]}}
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
                          columns={"year": {"range": [1700, 2008], "step": 1}, "sunspots": {"range": [0, 200]}})
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
        modality="timeseries", path="x.csv", time="year", columns={
            "year": {"range": [1935, 1954], "step": 1}, "industry": {"categories": industries},
            "invest": {"range": [0, 1500]}, "value": {"range": [0, 6500]}, "capital": {"range": [0, 2300]}}).columns})
    data = load_source(declared)
    model = _fit("timeseries/vae", data, batch_size=4)
    profile = model.codec_.profile_
    assert profile.column("firm").categories is None, "no real entity name in the model"
    assert (profile.column("invest").min, profile.column("invest").max) == (0, 1500), "the declared range, not the rows'"
    out = pd.concat(model.sample(30, seed=0))
    assert out["invest"].between(0, 1500).all() and set(out["industry"]) <= set(industries)


def test_a_private_fit_takes_the_time_step_from_the_declaration():
    """The time grid's step is a fact of the rows (fertility's most common step of 1): a
    private fit without `step` on the time column is refused, naming it; a declared step
    the rows do not have is refused at load."""
    spec = lambda year: SourceSpec(modality="timeseries", path=ROOT / "data" / "sources" / "fertility.csv",  # noqa: E731
                                   entity="country", time="year", columns=FERTILITY_DOMAINS | {"year": year})
    with pytest.raises(BadInputError, match=r"\(year: step\)"):
        _fit("timeseries/vae", load_source(spec({"range": [1960, 2011]})))
    with pytest.raises(BadInputError, match=r"year.step 2 is not the source's time step \(1\)"):
        load_source(spec({"range": [1960, 2011], "step": 2}))


def _quarters() -> pd.DataFrame:
    """statsmodels' macrodata (US, 1959Q1-2009Q3, 203 quarters) with a timestamp per quarter."""
    m = sm.datasets.macrodata.load_pandas().data
    quarter = pd.PeriodIndex.from_fields(year=m["year"].astype(int), quarter=m["quarter"].astype(int), freq="Q")
    return pd.DataFrame({"quarter": quarter.to_timestamp(), "realgdp": m["realgdp"], "infl": m["infl"]})


def test_a_calendar_step_is_declared_and_the_private_output_steps_by_it():
    """Quarters as a pandas frequency: "QS" lays the rows' own grid (pandas infers QS-OCT,
    the same quarter starts), "MS" does not and is refused; the private model writes
    quarter starts from the declared range's first, and its private contract (declared
    grid only) passes on that output."""
    from validators.contract import build_contract_suite, contract_table, contract_view

    domains = {"quarter": {"range": ["1959-01-01", "2010-01-01"], "step": "QS"}, "realgdp": {"range": [0, 20000]},
               "infl": {"range": [-20, 20]}}
    spec = lambda step: SourceSpec(modality="timeseries", path="macrodata.csv", time="quarter", window=16, stride=16,  # noqa: E731
                                   columns=domains | {"quarter": domains["quarter"] | {"step": step}})
    with pytest.raises(BadInputError, match="quarter.step MS is not the source's time step"):
        load_timeseries(spec("MS"), _quarters())
    data = load_timeseries(spec("QS"), _quarters())
    model = _fit("timeseries/diffusion", data, batch_size=4, privacy={"epsilon": 10.0})
    assert model.codec_.freq_ == {"kind": "datetime", "freq": "QS-JAN"}, "the declared step"
    out = pd.concat(model.sample(6, seed=0), ignore_index=True)
    firsts = out.groupby("window")["quarter"].first()
    assert out["quarter"].dt.month.isin([1, 4, 7, 10]).all() and (out["quarter"].dt.day == 1).all()
    assert firsts.min() >= pd.Timestamp("1959-01-01") and out.groupby("window").size().eq(16).all()
    result = gx.validate(build_contract_suite(data, private=True), contract_table(contract_view(data, True), out))
    assert result["success"], [r["expectation_config"]["kwargs"] for r in result["results"] if not r["success"]]


def test_a_private_contract_and_manifest_schema_hold_declared_facts_only(fertility):
    """Fertility's countries start as late as the 1990s and run 3 to 52 years: a plain
    contract records those starts and lengths, a private one only the declared grid
    (1960-2011, step 1), and the private schema no real country."""
    from pipeline.jobs import parse_job
    from pipeline.publish import _described
    from validators.contract import build_contract_suite

    def facts(suite) -> dict[str, dict]:
        return {e["kwargs"]["column"]: e["kwargs"] for e in gx.suite_to_json(suite)["expectations"]
                if e["kwargs"].get("column") in ("__length", "__start", "__step")}

    real = fertility.frame.groupby("country")["year"].agg(["size", "min"])
    plain, private = facts(build_contract_suite(fertility)), facts(build_contract_suite(fertility, private=True))
    assert (plain["__length"]["min_value"], plain["__start"]["max_value"]) == (real["size"].min(), real["min"].max())
    assert real["size"].min() < 52 and real["min"].max() > 1960, "the rows' facts differ from the declared grid"
    assert (private["__length"]["min_value"], private["__length"]["max_value"]) == (1, 52)
    assert private["__start"]["min_value"] == private["__start"]["max_value"] == 1960
    assert private["__step"]["value_set"] == [1.0]
    job = lambda privacy: parse_job({  # noqa: E731
        "name": "fertility", "source": {"modality": "timeseries", "path": "fertility.csv", "entity": "country",
                                        "time": "year", "columns": FERTILITY_DOMAINS},
        "generator": {"family": "vae", "privacy": privacy}, "output": "out"})
    schemas = {p is not None: {c["name"]: c for c in _described(job(p), fertility)["schema"]["columns"]} for p in (None, PRIVACY)}
    assert set(schemas[False]["country"]["categories"]) == set(real.index), "a plain schema lists the countries"
    assert schemas[True]["country"]["categories"] is None, "a private one does not"
    assert [schemas[True]["year"]["min"], schemas[True]["year"]["max"], schemas[True]["year"]["domain"]["step"]] == \
        [1960, 2011, 1]

