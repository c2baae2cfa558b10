"""The time-series loader on real panels: Grunfeld (static industry), World Bank
fertility (unequal lengths), statsmodels' travel mode choice (categorical feature,
missing values, numeric statics), US macro data cut into windows (timestamps), yearly
sunspots without their YEAR column (a plain ordered series: the rows' order is the time);
and every bad input refused with a one-line error."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError
from statsmodels.datasets import macrodata, modechoice, sunspots

from generators import get
from pipeline.core.errors import SourceError
from pipeline.sources import load_source
from pipeline.sources.timeseries import STEP_COLUMN, WINDOW_COLUMN, load_timeseries
from pipeline.core.spec import SourceSpec
from tests.conftest import FAST_PARAMS

ROOT = Path(__file__).resolve().parents[2]
GRUNFELD = ROOT / "data" / "sources" / "grunfeld.csv"
FERTILITY = ROOT / "data" / "sources" / "fertility.csv"


def spec(path: Path, **kw) -> SourceSpec:
    return SourceSpec(modality="timeseries", path=path, **kw)


def write(frame: pd.DataFrame, tmp_path: Path, name: str = "src.csv") -> Path:
    path = tmp_path / name
    frame.to_csv(path, index=False) if name.endswith(".csv") else frame.to_parquet(path, index=False)
    return path


def travel_modes() -> pd.DataFrame:
    """Each traveller's four modes; chosen as text; terminal time is not applicable to car (NaN)."""
    f = modechoice.load_pandas().data.astype({"individual": int, "mode": int, "psize": int})
    return f.assign(
        choice=np.where(f["choice"] == 1, "chosen", "not chosen"), ttme=f["ttme"].where(f["mode"] != 4)
    )


def quarterly_gdp() -> pd.DataFrame:
    f = macrodata.load_pandas().data
    quarter = pd.PeriodIndex.from_fields(year=f["year"].astype(int), quarter=f["quarter"].astype(int), freq="Q")
    return pd.DataFrame({"date": quarter.to_timestamp(), "realgdp": f["realgdp"], "unemp": f["unemp"]})


def plain_sunspots() -> pd.DataFrame:
    """309 yearly sunspot numbers in time order, the YEAR column dropped: no time column."""
    return sunspots.load_pandas().data.drop(columns="YEAR")


def test_grunfeld_panel_with_a_static_column():
    data = load_source(spec(GRUNFELD, entity="firm", time="year"))
    assert data.modality == "timeseries" and len(data) == 11
    assert data.static == ["industry"] and data.features == ["invest", "value", "capital"]
    assert data.profile.names == list(data.frame.columns) == ["firm", "year", "industry", "invest", "value", "capital"]
    assert data.frame.equals(data.frame.sort_values(["firm", "year"]).reset_index(drop=True))


def test_declared_static_columns_replace_the_rows_split():
    """`source.static` decides the split (a private fit may not read it from the rows):
    [] makes Grunfeld's industry a feature; a declared column that varies is refused."""
    data = load_source(spec(GRUNFELD, entity="firm", time="year", static=[]))
    assert data.static == [] and data.features == ["industry", "invest", "value", "capital"]
    assert load_source(spec(GRUNFELD, entity="firm", time="year", static=["industry"])).static == ["industry"]
    with pytest.raises(SourceError, match="source.static: 'capital' varies within sequence"):
        load_source(spec(GRUNFELD, entity="firm", time="year", static=["capital"]))
    with pytest.raises(ValidationError, match="source.static names a time series' per-sequence columns"):
        SourceSpec(modality="tabular", path=GRUNFELD, static=["industry"])


def test_unequal_lengths_are_kept_and_rows_sorted(tmp_path):
    shuffled = pd.read_csv(FERTILITY).sample(frac=1, random_state=0)
    data = load_source(spec(write(shuffled, tmp_path, "f.parquet"), entity="country", time="year"))
    lengths = data.frame.groupby("country").size()
    assert lengths.min() == 3 and lengths.max() == 52 and len(data) == 210
    assert data.frame.equals(data.frame.sort_values(["country", "year"]).reset_index(drop=True))
    assert data.static == [] and data.features == ["fertility"]


def test_categorical_features_missing_values_and_numeric_statics(tmp_path):
    data = load_source(spec(write(travel_modes(), tmp_path), entity="individual", time="mode"))
    assert data.static == ["hinc", "psize"]
    assert "choice" in data.features and data.profile.column("choice").kind == "categorical"
    assert data.profile.column("ttme").null_fraction == pytest.approx(0.25)


def test_one_long_series_is_cut_into_windows(tmp_path):
    path = write(quarterly_gdp(), tmp_path)
    data = load_source(spec(path, time="date", window=20, stride=10))
    assert data.entity == WINDOW_COLUMN and len(data) == (203 - 20) // 10 + 1
    assert data.frame.groupby(WINDOW_COLUMN).size().eq(20).all()
    assert pd.api.types.is_datetime64_any_dtype(data.frame["date"])
    second = data.frame[data.frame[WINDOW_COLUMN] == 1]["date"]
    assert second.iloc[0] == pd.Timestamp("1961-07-01")  # stride 10 quarters after 1959Q1
    default = load_source(spec(path, time="date", window=50))
    assert len(default) == 4 and not default.frame["date"].duplicated().any()  # stride defaults to the window


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"entity": "company", "time": "year"}, r"source.entity 'company' is not a column .*columns: firm, year, industry"),
        ({"entity": "firm", "time": "date"}, r"source.time 'date' is not a column .*columns: firm, year"),
        ({"time": "year"}, r"needs source.entity .* or source.window"),
    ],
)
def test_bad_column_specs(kw, message):
    with pytest.raises(SourceError, match=message):
        load_source(spec(GRUNFELD, **kw))


def test_duplicate_pairs_are_named(tmp_path):
    frame = pd.read_csv(GRUNFELD)
    path = write(pd.concat([frame, frame.iloc[[5]]]), tmp_path)
    with pytest.raises(SourceError, match=r"duplicate \(firm, year\) pair \('American Steel', 1940\)"):
        load_source(spec(path, entity="firm", time="year"))


def test_time_that_cannot_be_sorted(tmp_path):
    frame = pd.read_csv(GRUNFELD).assign(year=lambda f: np.where(f["year"] < 1945, "early", "late"))
    with pytest.raises(SourceError, match=r"time column 'year' is not sortable"):
        load_source(spec(write(frame, tmp_path), entity="firm", time="year"))


def test_an_entity_with_a_single_step(tmp_path):
    frame = pd.read_csv(GRUNFELD)
    frame = frame[(frame["firm"] != "IBM") | (frame["year"] == 1935)]
    with pytest.raises(SourceError, match=r"entity 'IBM' has 1 step\(s\).*at least 2 steps"):
        load_source(spec(write(frame, tmp_path), entity="firm", time="year"))


def test_window_larger_than_the_series(tmp_path):
    with pytest.raises(SourceError, match=r"source.window is 300 steps but the series has only 203"):
        load_source(spec(write(quarterly_gdp(), tmp_path), time="date", window=300))


def test_missing_time_values_are_refused(tmp_path):
    frame = pd.read_csv(GRUNFELD).astype({"year": float})
    frame.loc[3, "year"] = np.nan
    with pytest.raises(SourceError, match=r"time column 'year' has 1 missing value"):
        load_source(spec(write(frame, tmp_path), entity="firm", time="year"))


def test_a_plain_ordered_series_gets_integer_steps(tmp_path):
    series = plain_sunspots()
    data = load_source(spec(write(series, tmp_path), window=24, stride=12))
    assert data.time == STEP_COLUMN and data.entity == WINDOW_COLUMN
    assert list(data.frame.columns) == [WINDOW_COLUMN, STEP_COLUMN, "SUNACTIVITY"] and data.features == ["SUNACTIVITY"]
    assert data.profile.column(STEP_COLUMN).kind == "integer" and len(data) == (309 - 24) // 12 + 1
    second = data.frame[data.frame[WINDOW_COLUMN] == 1]
    assert second[STEP_COLUMN].tolist() == list(range(12, 36))  # the rows' order: window 1 starts at row 12
    assert second["SUNACTIVITY"].tolist() == series["SUNACTIVITY"].iloc[12:36].tolist()


def test_a_panel_without_time_is_in_file_order_per_entity(tmp_path):
    frame = pd.read_csv(GRUNFELD).drop(columns="year")
    data = load_source(spec(write(frame, tmp_path), entity="firm"))
    assert data.time == STEP_COLUMN and list(data.frame.columns)[:2] == ["firm", STEP_COLUMN]
    for firm, rows in data.frame.groupby("firm"):
        assert rows[STEP_COLUMN].tolist() == list(range(20))
        assert rows["invest"].tolist() == frame.loc[frame["firm"] == firm, "invest"].tolist()


def test_synthetic_plain_series_carry_integer_steps_at_stride_one(tmp_path):
    data = load_source(spec(write(plain_sunspots(), tmp_path), window=24, stride=12))
    model = get("timeseries/vae")(device="cpu", **FAST_PARAMS["timeseries/vae"]).fit(data)
    out = next(model.sample(8, seed=0))
    assert list(out.columns) == [WINDOW_COLUMN, STEP_COLUMN, "SUNACTIVITY"]
    assert pd.api.types.is_integer_dtype(out[STEP_COLUMN])
    starts = set(data.frame.groupby(WINDOW_COLUMN)[STEP_COLUMN].first())
    for _, rows in out.groupby(WINDOW_COLUMN):
        assert rows[STEP_COLUMN].diff().dropna().eq(1).all() and len(rows) == 24
        assert rows[STEP_COLUMN].iloc[0] in starts


def test_a_source_with_its_own_step_column_names_it(tmp_path):
    path = write(plain_sunspots().assign(step=1.5), tmp_path)
    with pytest.raises(SourceError, match=r"already has a column 'step': name it as source.time, or rename it"):
        load_source(spec(path, window=24))


@pytest.mark.parametrize(
    ("kw", "message"),
    [({"window": 5}, r"source.window cuts a single series; drop it when source.entity names the sequences"),
     ({"stride": 5}, r"source.stride cuts one long series .*: drop stride \(or entity\)")],
)
def test_windows_with_entity_are_refused_by_the_spec(kw, message):
    with pytest.raises(ValidationError, match=message):
        spec(GRUNFELD, entity="firm", time="year", **kw)


def _weekly_co2() -> pd.DataFrame:
    import statsmodels.api as sm

    return sm.datasets.co2.load_pandas().data.rename_axis("week").reset_index()


def test_missing_values_in_a_series_cut_into_windows_load_as_missing():
    frame = _weekly_co2()  # statsmodels' Mauna Loa CO2: 59 of 2284 weeks missing
    data = load_timeseries(SourceSpec(modality="timeseries", path="co2.csv", time="week", window=52), frame)
    assert len(data) == 43 and data.frame["co2"].isna().sum() > 0  # modelled by the encoder's missing channel


def test_interior_gaps_of_a_series_cut_into_windows_are_refused_with_the_share():
    frame = _weekly_co2().dropna()  # dropping the missing weeks leaves gaps in the grid
    with pytest.raises(SourceError, match=r"source.time 'week' steps irregularly: \d+ of 2224 steps \(\d\.\d%\)"):
        load_timeseries(SourceSpec(modality="timeseries", path="co2.csv", time="week", window=52), frame)
