"""A long path keeps the source's levels: timeseries/diffusion's continuations carry the
drift the real histories show at each level (generators/timeseries/drift.py), so a path of
many windows does not walk to the encoder's edge and stay there.

Real data: statsmodels macrodata (US quarterly 1959-2009: inflation, unemployment, real
interest rate), one series cut into 20-quarter windows. Before the calibration
(model_version 6) the 1,200-quarter path of the first test spent 68 % of its steps at the
real rate's training maximum (10.42), from the first windows on, and failed it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import torch

from generators import get, load_generator
from generators.timeseries.drift import DRIFT_EDGES, DriftCorrection
from pipeline.core.plan import plan_chunks
from pipeline.core.spec import SourceSpec
from pipeline.sources import load_source
from pipeline.sources.timeseries import load_timeseries
from pipeline.split import split_source
from tests.conftest import FAST_PARAMS, ROOT

FEATURES = ["infl", "unemp", "realint"]


def macrodata():
    d = sm.datasets.macrodata.load_pandas().data
    frame = pd.DataFrame({"quarter": np.arange(len(d)), **{c: d[c] for c in FEATURES}})
    spec = SourceSpec(modality="timeseries", path="macrodata.csv", time="quarter", window=20, stride=2)
    return load_timeseries(spec, frame)


def test_a_long_path_stays_within_the_source_s_levels():
    """Default parameters (~10 CPU s). Per feature: at most a quarter of a 1,200-quarter
    path within 1 % of the training range's ends, its median inside the training 10-90 %."""
    train, _ = split_source(macrodata(), 0.2, seed=0)
    model = get("timeseries/diffusion")(device="cpu").fit(train)
    path = model.sample_chunk(plan_chunks(1, 1, seed=1)[0], length=1200)
    real = train.frame.drop_duplicates("quarter")
    for c in FEATURES:
        lo, hi = real[c].min(), real[c].max()
        v = path[c].to_numpy(float)
        edge = float(np.mean((v <= lo + 0.01 * (hi - lo)) | (v >= hi - 0.01 * (hi - lo))))
        assert edge <= 0.25, (c, edge)
        assert real[c].quantile(0.1) <= np.median(v) <= real[c].quantile(0.9), (c, np.median(v))


def test_the_correction_adds_its_drift_to_new_steps_only_by_the_last_given_level():
    rate = torch.zeros(2, len(DRIFT_EDGES) + 1)
    rate[0, 0], rate[0, -1] = 0.5, -0.25  # channel 0: up from the lowest bin, down from the highest
    correct = DriftCorrection(rate)
    window = torch.zeros(3, 6, 2)
    window[0, :2, 0], window[1, :2, 0] = -4.0, 4.0
    given = torch.zeros(3, 6, 2)
    given[:2, :2] = 1.0  # two given first steps; the third window is drawn from scratch
    out = correct(window, given)
    assert torch.equal(out[:, :2], window[:, :2]), "given values stay as given"
    assert torch.allclose(out[0, 2:, 0] - window[0, 2:, 0], 0.5 * torch.arange(1.0, 5.0))
    assert torch.allclose(out[1, 2:, 0] - window[1, 2:, 0], -0.25 * torch.arange(1.0, 5.0))
    assert torch.equal(out[2], window[2]) and torch.equal(out[..., 1], window[..., 1])
    given[0, :, 1] = 1.0  # channel 1 a covariate over the whole window: the covariates set the drift
    assert torch.equal(correct(window, given)[0], window[0])


@pytest.mark.parametrize("private", [False, True])
def test_only_a_plain_fit_calibrates_and_the_correction_survives_a_checkpoint(private, tmp_path):
    """A private fit has no correction: it would be a statistic of real data outside DP-SGD."""
    domains = {"year": {"range": [1960, 2011], "step": 1}, "fertility": {"range": [0, 10]}}
    data = load_source(SourceSpec(modality="timeseries", path=ROOT / "data" / "sources" / "fertility.csv",
                                  entity="country", time="year", columns=domains))
    privacy = {"epsilon": 3.0} if private else None
    model = get("timeseries/diffusion")(device="cpu", privacy=privacy,
                                        **{**FAST_PARAMS["timeseries/diffusion"], "epochs": 1}).fit(data)
    assert bool(model.drift_.rate.abs().sum() == 0) == private
    model.save(tmp_path / "m")
    assert torch.equal(load_generator(tmp_path / "m").drift_.rate, model.drift_.rate)
