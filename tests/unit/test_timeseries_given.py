"""Continuation (`--continue FILE --steps N`) and time-varying covariates
(`sample.conditions: {column: FILE | source}`) on real data: statsmodels sunspots (one
feature) and quarterly US growth rates from statsmodels macrodata (three features).

Both are one model (timeseries/diffusion's per-channel known flags): a history's last
steps, or whole columns, are given clean. What is checked before any fit is proven on
each refusal (exit-2 errors, no model); the slow test proves on a real fit that the
generated columns follow a given covariate path, and fail to without it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import torch

from generators import get, load_generator
from pipeline.core.data import GivenPath
from pipeline.core.errors import ConditionError, SpecError
from pipeline.core.plan import plan_chunks
from pipeline.core.spec import JobSpec, SourceSpec, parse_spec
from pipeline.given import load_given, path_length
from pipeline.sources.timeseries import load_timeseries
from pipeline.split import split_source
from tests.conftest import FAST_PARAMS

MACRO_WINDOW = 16


def sunspots_frame() -> pd.DataFrame:
    frame = sm.datasets.sunspots.load_pandas().data.rename(columns={"YEAR": "year", "SUNACTIVITY": "sunspots"})
    frame["year"] = frame["year"].astype(int)
    return frame


def macro_frame() -> pd.DataFrame:
    """Quarterly growth (100 x log difference) of real GDP, consumption and investment."""
    m = sm.datasets.macrodata.load_pandas().data
    d = (np.log(m[["realgdp", "realcons", "realinv"]]).diff().dropna() * 100).round(3).reset_index(drop=True)
    d.insert(0, "quarter", np.arange(len(d)))
    return d


def macro(stride: int = 1):
    spec = SourceSpec(modality="timeseries", path="macro.csv", time="quarter", window=MACRO_WINDOW, stride=stride)
    return load_timeseries(spec, macro_frame())


def sunspots():
    spec = SourceSpec(modality="timeseries", path="sunspots.csv", time="year", window=24, stride=2)
    return load_timeseries(spec, sunspots_frame())


def job(tmp_path, source: dict, **sample) -> JobSpec:
    spec = {"name": "given", "source": {"modality": "timeseries", **source}, "output": str(tmp_path / "out"),
            "generator": {"family": "diffusion"}, "sample": {"rows": 10, **sample}}
    return parse_spec(spec, generators=["timeseries/diffusion"])


def draw(model, length: int, given: GivenPath | None, seed: int = 1) -> pd.DataFrame:
    return model.sample_chunk(plan_chunks(1, 1, seed=seed)[0], length=length, given=given)


@pytest.fixture(scope="module")
def spots():
    data = sunspots()
    train, _ = split_source(data, 0.2, seed=0)
    return data, get("timeseries/diffusion")(device="cpu", **FAST_PARAMS["timeseries/diffusion"]).fit(train)


@pytest.fixture(scope="module")
def growth():
    data = macro()
    train, _ = split_source(data, 0.2, seed=0)
    return data, get("timeseries/diffusion")(device="cpu", **FAST_PARAMS["timeseries/diffusion"]).fit(train)


# ---- continuation ---------------------------------------------------------------------


def test_a_continuation_is_the_next_steps_after_the_history(spots, tmp_path):
    data, model = spots
    history_file = tmp_path / "history.csv"
    sunspots_frame().iloc[200:240].to_csv(history_file, index=False)
    spec = job(tmp_path, {"path": "s.csv", "time": "year", "window": 24, "stride": 2}, history=str(history_file),
               length=48)
    given = load_given(spec, data)
    assert given.start == 1940 and len(given.history) == 40 and path_length(spec, given) == 48
    out = draw(model, 48, given)
    assert list(out.columns) == ["window", "year", "sunspots"]
    assert out["year"].tolist() == list(range(1940, 1988)) and out["sunspots"].notna().all()
    model.save(tmp_path / "m")
    pd.testing.assert_frame_equal(draw(load_generator(tmp_path / "m"), 48, given), out)


def test_a_series_without_a_time_column_continues_after_its_last_step(tmp_path):
    """Rows' order is the time: the history is read as the rows right after the source."""
    frame = sunspots_frame().drop(columns="year")
    data = load_timeseries(SourceSpec(modality="timeseries", path="s.csv", window=24, stride=2), frame.copy())
    frame.iloc[200:240].to_csv(tmp_path / "h.csv", index=False)
    spec = job(tmp_path, {"path": "s.csv", "window": 24, "stride": 2}, history=str(tmp_path / "h.csv"), length=5)
    given = load_given(spec, data)
    last = int(data.frame["step"].max())
    assert given.history["step"].tolist() == list(range(last + 1, last + 41)) and given.start == last + 41


def test_given_values_stay_fixed_per_channel(growth):
    """The sampler keeps exactly the given values, channel by channel, and draws the rest."""
    _, model = growth
    c = model.codec_
    window = c.max_len
    known = torch.randn(2, window, c.n_features)
    given = torch.zeros(2, window, c.n_features)
    given[:, :, 0] = 1.0  # the first column over every step
    given[:, :5] = 1.0  # and every column over the first 5 steps
    out = model._generate_given(c.plan_matrix(np.array([0, 1])), known, given, torch.Generator().manual_seed(0))
    fixed = given.bool()
    assert torch.equal(out[fixed], known[fixed]) and not torch.equal(out[~fixed], known[~fixed])


def test_training_masks_give_prefixes_and_whole_columns(growth):
    _, model = growth
    diffusion = model.model_
    mask = diffusion.training_mask(torch.Size((400, MACRO_WINDOW, model.codec_.n_features)),
                                   torch.Generator().manual_seed(0))
    whole_columns = mask.all(dim=1)  # (sequences, channels) given over every step
    prefix = mask[:, : diffusion.context].all(dim=(1, 2))
    assert 0.3 < prefix.float().mean() < 0.7, "about half the sequences continue a given start"
    assert 0.2 < whole_columns.any(dim=1).float().mean() < 0.5, "about a quarter give whole columns"
    assert (mask.sum(dim=(1, 2)) == 0).float().mean() > 0.15, "some are drawn with nothing given"


@pytest.mark.slow
def test_a_continuation_forecasts_better_than_the_model_without_history_and_naive():
    """Default parameters (~10 CPU s). From 20 origins in the holdout blocks, the next 12
    years given the 24 before: the continued path is nearer the real years than the same
    model's path without the history and than the last value repeated (measured: mean
    absolute error 27 against 48 and 47 sunspots)."""
    data = sunspots()
    train, holdout = split_source(data, 0.2, seed=0)
    model = get("timeseries/diffusion")(device="cpu").fit(train)
    frame = sunspots_frame()
    years = sorted(set(holdout.frame["year"]))[::4]
    errors = {"continued": [], "without_history": [], "naive": []}
    for i, year in enumerate(y for y in years if frame["year"].min() + 24 <= y <= frame["year"].max() - 12):
        o = int(np.flatnonzero(frame["year"] == year)[0])
        history, truth = frame.iloc[o - 24 : o], frame["sunspots"].iloc[o : o + 12].to_numpy()
        start = float(year)
        errors["continued"].append(np.abs(draw(model, 12, GivenPath(history=history, start=start), i)["sunspots"] - truth).mean())
        errors["without_history"].append(np.abs(draw(model, 12, GivenPath(start=start), i)["sunspots"] - truth).mean())
        errors["naive"].append(np.abs(history["sunspots"].iloc[-1] - truth).mean())
    mae = {k: float(np.mean(v)) for k, v in errors.items()}
    assert len(errors["continued"]) >= 15
    assert mae["continued"] < 0.8 * mae["without_history"] and mae["continued"] < 0.8 * mae["naive"], mae


# ---- covariates ------------------------------------------------------------------------


def test_a_covariate_path_is_carried_as_given_and_the_rest_generated(growth, tmp_path):
    data, model = growth
    path = tmp_path / "gdp.csv"
    frame = macro_frame()
    frame[["quarter", "realgdp"]].iloc[50:110].to_csv(path, index=False)
    spec = job(tmp_path, {"path": "m.csv", "time": "quarter", "window": MACRO_WINDOW, "stride": 1},
               conditions={"realgdp": str(path)})
    given = load_given(spec, data)
    assert path_length(spec, given) == 60 and given.start == 50
    out = draw(model, 60, given)
    assert out["quarter"].tolist() == list(range(50, 110))
    np.testing.assert_array_equal(out["realgdp"].to_numpy(), frame["realgdp"].iloc[50:110].to_numpy())
    assert not np.array_equal(out["realcons"].to_numpy(), frame["realcons"].iloc[50:110].to_numpy())
    own = load_given(job(tmp_path, {"path": "m.csv", "time": "quarter", "window": MACRO_WINDOW, "stride": 1},
                         conditions={"realgdp": "source"}, length=30), data)
    assert len(own.covariates) == 30 and own.start == 0
    np.testing.assert_array_equal(own.covariates["realgdp"], frame["realgdp"].iloc[:30])


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason="issue #12: fails since timeseries/diffusion model_version 5 (43891dd, bisected): "
                   "given real GDP growth, generated consumption growth correlates 0.13-0.16 with it (real 0.66)")
def test_generated_columns_follow_a_given_covariate_and_not_without_it():
    """Default parameters (~10 CPU s). Given the real GDP growth path, generated
    consumption and investment growth correlate with it nearly as the real ones do
    (0.66, 0.82); drawn without it, they do not."""
    data = macro()
    train, _ = split_source(data, 0.2, seed=0)
    model = get("timeseries/diffusion")(device="cpu").fit(train)
    series = data.series()
    corr = lambda f, col: np.corrcoef(f[col], series["realgdp"])[0, 1]  # noqa: E731
    for col in ("realcons", "realinv"):
        given = np.mean([corr(draw(model, len(series), GivenPath(covariates=series[["realgdp"]]), s), col) for s in (1, 2)])
        free = np.mean([corr(draw(model, len(series), GivenPath(), s), col) for s in (1, 2)])
        real = corr(series, col)
        assert abs(given - real) < 0.3, (col, given, real)
        assert given - free > 0.3, (col, given, free)


# ---- refused before any fit ------------------------------------------------------------


SPOTS = {"path": "s.csv", "time": "year", "window": 24, "stride": 2}
MACRO = {"path": "m.csv", "time": "quarter", "window": MACRO_WINDOW, "stride": 1}


def _history(tmp_path, frame: pd.DataFrame) -> str:
    path = tmp_path / "h.csv"
    frame.to_csv(path, index=False)
    return str(path)


@pytest.mark.parametrize("make, fragment", [
    (lambda f: f.iloc[200:240].drop(columns="sunspots"), "missing sunspots"),
    (lambda f: f.iloc[200:240].assign(extra=1), "not in the source extra"),
    (lambda f: f.iloc[200:240:2], "does not step at the source's frequency"),
    (lambda f: f.iloc[200:205], "continuing needs at least 12"),
    (lambda f: f.iloc[200:240].assign(sunspots=1e6), "the source never has"),  # a discrete support
    (lambda f: f.iloc[200:240].assign(sunspots=np.nan), "missing values"),
    (lambda f: f.iloc[200:240].assign(year=f["year"].iloc[200:240] + 0.5), "does not step"),
])
def test_a_bad_history_is_refused_with_its_reason(spots, tmp_path, make, fragment):
    data, _ = spots
    spec = job(tmp_path, SPOTS, history=_history(tmp_path, make(sunspots_frame())), length=10)
    with pytest.raises(SpecError, match=fragment):
        load_given(spec, data)


def test_history_file_must_exist_and_needs_steps(spots, tmp_path):
    data, _ = spots
    with pytest.raises(SpecError, match="file not found"):
        load_given(job(tmp_path, SPOTS, history=str(tmp_path / "nope.csv"), length=5), data)
    with pytest.raises(SpecError, match="a continuation needs the steps"):
        job(tmp_path, SPOTS, history=str(tmp_path / "nope.csv"))


@pytest.mark.parametrize("conditions, length, fragment", [
    ({"realgdp": 1.5}, None, "varies over time: give a CSV or Parquet file"),
    ({"realgdp": "{gdp}"}, 500, "covariate path has 60 steps"),
    ({"realgdp": "{gdp}", "realcons": "{short}"}, None, "different lengths"),
    ({"realgdp": "{off}"}, None, "off the source's precision"),
    ({"realgdp": "{big}"}, None, "outside the source's range"),
    ({"realgdp": "{gdp}"}, None, None),  # the same path, well formed: accepted
    ({"realgdp": "{cons}"}, None, "has no column 'realgdp'"),
])
def test_a_bad_covariate_is_refused_with_its_reason(tmp_path, conditions, length, fragment):
    """Windows without overlap: the profile then has no discrete support (each value seen
    once), so the range and precision checks are the ones that speak."""
    data = macro(stride=MACRO_WINDOW)
    frame = macro_frame()
    files = {"gdp": frame[["quarter", "realgdp"]].iloc[50:110], "short": frame[["realcons"]].iloc[:20],
             "off": frame[["realgdp"]].iloc[:30] + 0.0001, "big": frame[["realgdp"]].iloc[:30] * 100, "cons": frame[["realcons"]].iloc[:30]}
    for name, f in files.items():
        f.to_csv(tmp_path / f"{name}.csv", index=False)
    conditions = {k: v.format(**{n: str(tmp_path / f"{n}.csv") for n in files}) if isinstance(v, str) else v
                  for k, v in conditions.items()}
    spec = job(tmp_path, {**MACRO, "stride": MACRO_WINDOW}, conditions=conditions, **({"length": length} if length else {}))
    if fragment is None:
        assert len(load_given(spec, data).covariates) == 60
        return
    with pytest.raises(SpecError, match=fragment):
        load_given(spec, data)


def test_paths_need_one_series_cut_into_windows_and_not_both(tmp_path):
    panel = pd.DataFrame({"id": np.repeat([1, 2, 3], 5), "t": np.tile(np.arange(5), 3), "x": np.arange(15.0),
                          "y": np.arange(15.0) % 4})
    data = load_timeseries(SourceSpec(modality="timeseries", path="p.csv", entity="id", time="t"), panel)
    with pytest.raises(ConditionError, match="cannot condition on 'x'.*only in a single series cut into windows"):
        load_given(job(tmp_path, {"path": "p.csv", "entity": "id", "time": "t"}, conditions={"x": "source"}), data)
    with pytest.raises(SpecError, match="not supported yet"):
        load_given(job(tmp_path, MACRO, conditions={"realgdp": "source"}, history=_history(tmp_path, macro_frame()),
                       length=4), macro())


def test_a_job_without_history_or_covariates_has_no_given_path(growth, tmp_path):
    data, _ = growth
    assert load_given(job(tmp_path, MACRO), data) is None
