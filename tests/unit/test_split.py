"""pipeline.split on real data: one long series (statsmodels sunspots, co2) cut into
overlapping windows is split into blocks of time that no training window reaches;
duplicated penguin rows never straddle the split."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from pipeline.core.data import TabularData, TimeSeriesData
from pipeline.core.errors import SourceError
from pipeline.core.schema import profile_table
from pipeline.core.spec import SourceSpec
from pipeline.sources import load_source
from pipeline.split import gap_windows, split_source
from validators.metrics.privacy import dcr_share
from validators.metrics.representation import fit_vectors
from validators.thresholds import DCR_SANITY


def _series(tmp_path, frame: pd.DataFrame, time: str, window: int, stride: int | None) -> TimeSeriesData:
    path = tmp_path / "series.csv"
    frame.to_csv(path, index=False)
    return load_source(SourceSpec(modality="timeseries", path=path, time=time, window=window, stride=stride))


@pytest.fixture(scope="module")
def sunspots() -> pd.DataFrame:
    """309 yearly sunspot counts, 1700-2008."""
    return sm.datasets.sunspots.load_pandas().data


@pytest.fixture(scope="module")
def co2() -> pd.DataFrame:
    """Weekly Mauna Loa CO2, 1958-2001 (gaps dropped): a trending series."""
    data = sm.datasets.co2.load_pandas().data.dropna()
    return pd.DataFrame({"week": np.arange(len(data)), "co2": data["co2"].to_numpy()})


def _steps(data: TimeSeriesData) -> np.ndarray:
    return np.sort(data.frame[data.time].unique())


def _closest_steps(train: TimeSeriesData, holdout: TimeSeriesData) -> float:
    a, b = _steps(train), _steps(holdout)
    return float(np.min(np.abs(a[:, None] - b[None, :])))


@pytest.mark.parametrize("window, stride", [(24, 1), (24, 6), (12, None)])
def test_long_series_holdout_is_blocks_of_time_a_window_away_from_training(tmp_path, sunspots, window, stride):
    data = _series(tmp_path, sunspots, "YEAR", window, stride)
    assert data.windows == (window, stride or window)
    train, holdout = split_source(data, 0.2, seed=0)
    # no training step within one window of years of a holdout step: no window overlaps
    assert _closest_steps(train, holdout) > window
    assert len(holdout) == round(0.2 * len(data))
    assert len(train) >= len(data) - len(holdout) - 2 * gap_windows(window, stride or window) * 4
    assert set(train.entities()).isdisjoint(holdout.entities())


def test_long_series_holdout_spreads_over_several_blocks(tmp_path, co2):
    data = _series(tmp_path, co2, "week", 52, 13)
    train, holdout = split_source(data, 0.2, seed=3)
    held = holdout.entities()
    blocks = 1 + int(np.sum(np.diff(held) > 1))
    assert blocks >= 2  # not all at the end of a trending series
    assert _closest_steps(train, holdout) > 52
    # training covers both sides of a block: the holdout is not just the last stretch of time
    assert _steps(train).min() < _steps(holdout).min() or _steps(train).max() > _steps(holdout).max()


def _replay(path: TimeSeriesData, train: TimeSeriesData) -> TimeSeriesData:
    """The real path re-cut at another phase, only windows made of training steps: what a
    generator that memorised the training part of the series puts out."""
    steps = set(train.frame[train.time])
    inside = path.frame.groupby(path.entity)[path.time].apply(lambda s: set(s) <= steps)
    return path.take(np.flatnonzero(inside.to_numpy()))


def test_replayed_training_path_fails_dcr_only_under_the_honest_split(tmp_path, co2):
    """The bug this split fixes: with random overlapping windows (stride 6, window 24) a
    replay of the training path looks unseen, because holdout windows share 18 of 24
    steps with training ones; with blocks of time it sits on train, far from the holdout."""
    data = _series(tmp_path, co2, "week", 24, 6)
    shifted = _series(tmp_path, co2.iloc[3:], "week", 24, 6)  # windows between the source's
    train, holdout = split_source(data, 0.2, seed=0)
    honest = dcr_share(*fit_vectors(train, holdout, _replay(shifted, train)))
    order = np.random.default_rng(0).permutation(len(data))
    rtrain, rhold = data.take(np.sort(order[len(holdout):])), data.take(np.sort(order[: len(holdout)]))
    naive = dcr_share(*fit_vectors(rtrain, rhold, _replay(shifted, rtrain)))
    assert honest > DCR_SANITY  # fails privacy: measured 0.93
    assert naive < 0.6  # what a random window split let through: measured 0.54


def test_too_short_a_series_for_the_gaps_is_refused(tmp_path, sunspots):
    data = _series(tmp_path, sunspots.iloc[:60], "YEAR", 24, 1)
    with pytest.raises(SourceError, match="remain for training"):
        split_source(data, 0.3, seed=0)


def test_duplicated_rows_stay_on_one_side(penguins):
    rng = np.random.default_rng(0)
    extra = penguins.frame.iloc[rng.choice(len(penguins), 80)]  # some rows twice or more
    frame = pd.concat([penguins.frame, extra], ignore_index=True)
    data = TabularData(frame=frame, profile=profile_table(frame))
    assert len(np.unique(data.record_keys())) < len(data)
    for seed in range(5):
        train, holdout = split_source(data, 0.2, seed=seed)
        assert len(train) + len(holdout) == len(data)
        assert abs(len(holdout) - 0.2 * len(data)) <= 4  # a group may push it past by a few rows
        assert np.isin(holdout.record_keys(), train.record_keys()).sum() == 0
        # an exact copy of a duplicated record is only ever a copy of training data
        copies = train.frame.drop_duplicates()
        assert not copies.merge(holdout.frame.drop_duplicates(), how="inner").shape[0]


def test_images_with_identical_pixels_stay_on_one_side(image_source):
    from pipeline.core.data import ImageData

    images = np.concatenate([image_source.images, image_source.images[:40]])
    data = ImageData(images=images, labels=np.concatenate([image_source.labels, image_source.labels[:40]]))
    train, holdout = split_source(data, 0.25, seed=0)
    assert not np.isin(holdout.record_keys(), train.record_keys()).any()
    assert len(train) + len(holdout) == len(data)
