"""`sample.length`: one long series drawn window after window by timeseries/diffusion,
on real data (statsmodels sunspots, 309 yearly values cut into 24-year windows).

The seam check is proven both ways on the same fitted model: the continued path passes
it; the same model's windows drawn independently and concatenated fail it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from generators import get, load_generator
from pipeline.core.errors import SpecError
from pipeline.core.plan import plan_chunks, sampling_plan
from pipeline.core.spec import SourceSpec, parse_spec
from pipeline.preflight import check_spec
from pipeline.sources.timeseries import load_timeseries
from pipeline.split import split_source
from tests.conftest import FAST_PARAMS
from validators.metrics.seams import seam_check

WINDOW, STRIDE = 24, 2


def sunspots():
    frame = sm.datasets.sunspots.load_pandas().data.rename(columns={"YEAR": "year", "SUNACTIVITY": "sunspots"})
    frame["year"] = frame["year"].astype(int)
    spec = SourceSpec(modality="timeseries", path="sunspots.csv", time="year", window=WINDOW, stride=STRIDE)
    return frame, load_timeseries(spec, frame.copy())


def long_path(model, length: int, seed: int = 1) -> pd.DataFrame:
    return model.sample_chunk(plan_chunks(1, 1, seed=seed)[0], length=length)


@pytest.fixture(scope="module")
def fitted():
    _, data = sunspots()
    train, _ = split_source(data, 0.2, seed=0)
    return train, get("timeseries/diffusion")(device="cpu", **FAST_PARAMS["timeseries/diffusion"]).fit(train)


def test_one_series_of_the_requested_length_on_the_source_grid(fitted, tmp_path):
    train, model = fitted
    path = long_path(model, 100)
    assert list(path.columns) == list(train.frame.columns)
    assert path["window"].nunique() == 1 and len(path) == 100
    first = int(train.frame["year"].min())
    assert path["year"].tolist() == list(range(first, first + 100))  # yearly, from the training windows' start
    assert path["sunspots"].notna().all()
    model.save(tmp_path / "m")
    pd.testing.assert_frame_equal(long_path(load_generator(tmp_path / "m"), 100), path)


def test_each_window_continues_the_steps_it_was_given(fitted):
    _, model = fitted
    window, overlap, hop = model.path_layout()
    assert (window, overlap, hop) == (WINDOW, WINDOW // 2, WINDOW // 2)
    np.testing.assert_array_equal(model.path_seams(60), [24, 36, 48])
    import torch

    known = torch.randn(2, window, 1)
    given = (torch.arange(window) < overlap).float()[None, :, None].expand(2, -1, 1)
    cond = model.codec_.plan_matrix(np.array([0, 1]))
    out = model._generate_given(cond, known, given, torch.Generator().manual_seed(0))
    assert torch.equal(out[:, :overlap], known[:, :overlap])
    assert not torch.equal(out[:, overlap:2 * overlap], known[:, :overlap])


def test_the_metrics_see_a_long_path_as_the_source_s_windows(fitted):
    train, model = fitted
    cut = train.as_windows(long_path(model, 60))
    sizes = cut.frame.groupby("window").size()
    assert len(sizes) == (60 - WINDOW) // STRIDE + 1 and (sizes == WINDOW).all()
    assert cut.frame.loc[cut.frame["window"] == 1, "year"].iloc[0] == cut.frame["year"].iloc[0] + STRIDE


def test_a_long_series_is_one_part_of_one_sequence():
    (part,) = sampling_plan(5, seed=3, batch_size=2, modality="timeseries", length=10_000)
    assert part.length == 10_000 and part.rows == 1


def job(family: str, **source) -> dict:
    return {"name": "long", "source": {"modality": "timeseries", "path": "s.csv", "time": "year", **source},
            "generator": {"family": family, "params": {}}, "sample": {"length": 500}}


@pytest.mark.parametrize("family", ["vae", "gan", "par"])
def test_families_without_a_continuous_path_are_refused_before_the_fit(family, tmp_path):
    (tmp_path / "s.csv").write_text("year,x\n1,2\n2,3\n")
    spec = parse_spec({**job(family, window=2), "output": str(tmp_path / "out")}, generators=[f"timeseries/{family}"])
    with pytest.raises(SpecError, match=f"sample.length: timeseries/{family} cannot generate continuous series"):
        check_spec(spec.model_copy(update={"source": spec.source.model_copy(update={"path": tmp_path / "s.csv"})}))


def test_a_length_on_a_panel_is_entities_of_that_length():  # tests/unit/test_timeseries_panel_length.py
    spec = parse_spec(job("diffusion", entity="station"), generators=["timeseries/diffusion"])
    assert spec.sample.length == 500 and spec.source.entity == "station"


@pytest.mark.slow
def test_seams_of_a_continued_path_are_invisible_and_of_concatenated_windows_are_not():
    """Default parameters (200 epochs, ~20 CPU s). Checked on the encoder's scale of the
    real series; the same fitted model draws both paths."""
    frame, data = sunspots()
    train, _ = split_source(data, 0.2, seed=0)
    model = get("timeseries/diffusion")(device="cpu").fit(train)
    length = 2400
    mean, sd = frame["sunspots"].mean(), frame["sunspots"].std()
    continued = (long_path(model, length)[["sunspots"]].to_numpy(float) - mean) / sd
    windows = pd.concat(model.sample(length // WINDOW, seed=1, batch_size=length), ignore_index=True)
    concatenated = (windows[["sunspots"]].to_numpy(float) - mean) / sd
    width, max_lag = model.path_layout()[2] * 2 // 3, model.path_layout()[1] * 2 // 3
    good = seam_check(continued, model.path_seams(length), width, max_lag)
    bad = seam_check(concatenated, np.arange(WINDOW, length, WINDOW), width, max_lag)
    assert good["continuous"], good
    assert not bad["continuous"], bad
