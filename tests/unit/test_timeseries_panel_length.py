"""`sample.length` on a panel: every sampled entity one continuous path of N steps, drawn
window after window by timeseries/diffusion, on real panels (World Bank fertility: 210
countries, 3 to 52 years, starts 1960 to 2006 and gaps; Grunfeld: 11 firms x 20 years,
a static industry).

The seam check runs as for one long series (test_timeseries_long.py), on the same fitted
model both ways: the model's whole windows drawn independently and laid end to end fail
it, far worse than the continued entity paths; the continued paths' increment gap is within
tolerance (each window's first new step goes on from the last given one), and the judge
does not tell pieces across their seams from pieces between them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from generators import get, load_generator
from pipeline.core.errors import EnvironmentFailure, SpecError
from pipeline.core.plan import PATH_CHUNK_STEPS, plan_chunks, sampling_plan
from pipeline.core.spec import SourceSpec, parse_spec
from pipeline.preflight import check_spec
from pipeline.sources import load_source
from pipeline.split import split_source
from tests.conftest import FAST_PARAMS, ROOT
from validators.metrics.seams import SEAM_INCREMENT_TOLERANCE, seam_check


def panel(name: str, entity: str):
    return load_source(SourceSpec(modality="timeseries", path=ROOT / "data" / "sources" / name, entity=entity,
                                  time="year"))


def paths(model, n: int, length: int, seed: int = 1) -> pd.DataFrame:
    return model.sample_chunk(plan_chunks(n, n, seed=seed)[0], length=length)


@pytest.fixture(scope="module")
def fertility():
    data = panel("fertility.csv", "country")
    return data, get("timeseries/diffusion")(device="cpu", **FAST_PARAMS["timeseries/diffusion"]).fit(data)


def test_every_entity_has_the_length_on_its_own_grid_from_a_drawn_start(fertility, tmp_path):
    data, model = fertility
    longest = int(data.frame.groupby("country").size().max())
    out = paths(model, 40, 3 * longest + 5)
    assert list(out.columns) == list(data.frame.columns)
    sizes = out.groupby("country", sort=False).size()
    assert len(sizes) == 40 and (sizes == 3 * longest + 5).all()
    steps = out.groupby("country", sort=False)["year"].diff().dropna()
    assert (steps == 1).all(), "yearly, strictly increasing, no gaps, across every window boundary"
    starts = out.groupby("country", sort=False)["year"].first()
    assert set(starts) <= set(data.frame.groupby("country")["year"].first()), "starts are source entities' starts"
    assert starts.nunique() > 1, "drawn per entity, as plain sampling draws them"
    assert out["fertility"].notna().all()
    model.save(tmp_path / "m")
    pd.testing.assert_frame_equal(paths(load_generator(tmp_path / "m"), 40, 3 * longest + 5), out)


def test_statics_hold_for_the_whole_path_and_conditions_apply():
    data = panel("grunfeld.csv", "firm")
    model = get("timeseries/diffusion")(device="cpu", **FAST_PARAMS["timeseries/diffusion"]).fit(data)
    out = paths(model, 12, 70)
    assert (out.groupby("firm")["industry"].nunique() == 1).all()
    assert set(out["industry"]) <= set(data.frame["industry"])
    oil = model.sample_chunk(plan_chunks(3, 3, seed=2)[0], length=70, conditions={"industry": "oil"})
    assert (oil["industry"] == "oil").all() and (oil.groupby("firm").size() == 70).all()


def test_each_window_after_the_first_continues_the_last_ones_steps(fertility):
    _, model = fertility
    window, overlap, hop = model.path_layout()
    assert window == model.codec_.max_len == 52 and (overlap, hop) == (26, 26)
    calls = []
    real = model._generate_given

    def spy(cond, known, given, generator):
        calls.append((known.clone(), given.clone()))
        return real(cond, known, given, generator)

    model._generate_given = spy
    try:
        paths(model, 3, 120)
    finally:
        del model._generate_given
    assert len(calls) == 1 + -(-(120 - window) // hop)
    assert not calls[0][1].any(), "the first window is drawn freely"
    for known, given in calls[1:]:
        assert given[:, :overlap].all() and not given[:, overlap:].any()
        assert known.shape[0] == 3  # all of a chunk's entities at once


def test_a_panel_length_is_planned_as_entities_of_that_length_in_bounded_chunks():
    parts = sampling_plan(250, seed=0, batch_size=10_000, modality="timeseries", length=10_000, panel=True)
    chunk = PATH_CHUNK_STEPS // 10_000
    assert sum(p.rows for p in parts) == 250 and all(p.length == 10_000 for p in parts)
    assert [c.size for p in parts for c in p.chunks] == [chunk, chunk, 50] and len(parts) == 3
    (one,) = sampling_plan(250, seed=0, batch_size=10_000, modality="timeseries", length=10_000)
    assert one.rows == 1, "a single series stays one series"


def test_the_metrics_cut_a_long_entity_into_pieces_of_the_longest_source_entity(fertility):
    data, model = fertility
    cut = data.as_windows(paths(model, 4, 120))
    sizes = cut.frame.groupby("country").size()
    assert len(sizes) == 4 * (120 // 52) and (sizes == 52).all()
    plain = data.as_windows(pd.concat(model.sample(5, seed=1), ignore_index=True))
    assert plain.frame["country"].nunique() == 5, "entities no longer than the source's are taken as they are"


def job(family: str) -> dict:
    return {"name": "long", "source": {"modality": "timeseries", "path": "g.csv", "entity": "firm", "time": "year"},
            "generator": {"family": family, "params": {}}, "sample": {"rows": 5, "length": 500}}


def test_a_panel_length_parses_and_only_time_series_take_a_length():
    spec = parse_spec(job("diffusion"), generators=["timeseries/diffusion"])
    assert spec.sample.length == 500 and spec.sample.rows == 5
    with pytest.raises(SpecError, match="sample.length: steps per series apply to time series only"):
        parse_spec({"name": "t", "source": {"modality": "tabular", "path": "p.csv"}, "generator": {"family": "copula"},
                    "sample": {"length": 5}}, generators=["tabular/copula"])


@pytest.mark.parametrize("family", ["vae", "gan", "par"])
def test_panel_families_without_a_continuous_path_are_refused_before_the_fit(family, tmp_path):
    (tmp_path / "g.csv").write_text("firm,year,x\na,1,2\na,2,3\n")
    spec = parse_spec({**job(family), "output": str(tmp_path / "out")}, generators=[f"timeseries/{family}"])
    with pytest.raises(SpecError, match=f"sample.length: timeseries/{family} cannot generate continuous series"):
        check_spec(spec.model_copy(update={"source": spec.source.model_copy(update={"path": tmp_path / "g.csv"})}))


def _scaled(frame: pd.DataFrame, source: pd.DataFrame, columns: list[str]) -> np.ndarray:
    return ((frame[columns] - source[columns].mean()) / source[columns].std()).to_numpy(float)


@pytest.fixture(scope="module")
def seams():
    """Default parameters on fertility's training countries (~35 fit CPU s): the seam
    check on each of 3 continued entity paths of 2,400 years, and on its must-fail twin,
    one plan's whole windows drawn independently by the same model and laid end to end
    (features standardised by the source)."""
    data = panel("fertility.csv", "country")
    train, _ = split_source(data, 0.2, seed=0)
    model = get("timeseries/diffusion")(device="cpu").fit(train)
    window, overlap, hop = model.path_layout()
    length, columns = 2400, list(data.features)
    width, max_lag = hop * 2 // 3, overlap * 2 // 3
    continued = [seam_check(_scaled(path, data.frame, columns), model.path_seams(length), width, max_lag)
                 for _, path in paths(model, 3, length).groupby("country", sort=False)]
    c, count = model.codec_, length // window
    rows = np.zeros(count, dtype=int)  # one country's plan for every window
    with torch.no_grad():
        x = model._generate(c.plan_matrix(rows, lengths=np.full(count, c.max_len)), torch.Generator().manual_seed(1))
    laid = c.decode(x.numpy().reshape(1, count * window, -1), rows[:1], 0, lengths=np.array([count * window]))
    return continued, seam_check(_scaled(laid, data.frame, columns), np.arange(window, length, window), width, max_lag)


@pytest.mark.slow
def test_continued_entities_have_far_smaller_seams_than_windows_laid_end_to_end(seams):
    continued, laid = seams
    assert not laid["continuous"], laid
    assert all(k["seam_increment_gap"] < laid["seam_increment_gap"] / 10 for k in continued), (continued, laid)


@pytest.mark.slow
def test_continued_entities_do_not_jump_at_seams(seams):
    """Each window's first new step goes on from the last given one: the seam increment gap
    is within tolerance on every continued path (model_version 4: 6-14; 6: 0.5-0.8; 7: one at 2.06,
    a one-step spike at a seam; 8: 0.6-0.9)."""
    continued, laid = seams
    assert laid["seam_increment_gap"] > SEAM_INCREMENT_TOLERANCE, laid
    assert all(k["seam_increment_gap"] <= SEAM_INCREMENT_TOLERANCE for k in continued), continued


@pytest.mark.slow
def test_seams_of_continued_entities_are_invisible(seams):
    continued, _ = seams
    assert all(k["continuous"] for k in continued), continued


def test_the_disk_check_counts_every_entity_s_length(tmp_path, monkeypatch):
    """rows entities x length steps, in the source's bytes per row: 40 Grunfeld firms of
    10,000 years need ~40x the Parquet of one 10,000-year firm."""
    import shutil

    from pipeline import jobs, preflight

    spec = parse_spec({**job("diffusion"), "output": str(tmp_path / "out")}, generators=["timeseries/diffusion"])
    spec = spec.model_copy(update={"source": spec.source.model_copy(update={"path": ROOT / "data" / "sources" / "grunfeld.csv"})})
    source = load_source(spec.source)
    need = {}
    for rows in (1, 40):
        s = spec.model_copy(update={"sample": spec.sample.model_copy(update={"rows": rows, "length": 10_000})})
        monkeypatch.setattr(preflight, "check_disk", lambda sp, src, records: need.__setitem__(sp.sample.rows, records))
        preflight.check_data(jobs.JobRun(spec=s), source, "")
    assert need[40] == 40 * need[1] and need[1] == 10_000 // 20  # a source firm is 20 rows
    monkeypatch.undo()
    monkeypatch.setattr(shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(10**9, 10**9 - 1000, 1000))
    s = spec.model_copy(update={"sample": spec.sample.model_copy(update={"rows": 40, "length": 10_000})})
    with pytest.raises(EnvironmentFailure, match="need about"):
        preflight.check_data(jobs.JobRun(spec=s), source, "")
