"""Clock times of day written as text ("15:20", "9:05", "07:30:15"): the one home of how
they are recognised, read as seconds of the day and written back in the source's format.

Stat2Data/Hawks' `CaptureTime` holds 308 distinct clock times in 908 rows. Taken for a
category, each time is a class of its own: the model cannot learn that 11:35 lies between
11:30 and 11:40, and the judge told synthetic from real rows at AUC 0.90. Read as seconds
of the day, a time column is a number on the source's grid (pipeline/core/profiling.py
gives it the `time` kind), and decoding writes it back as text the source could hold.

A column is a clock column only when every value that is not blank is a 24-hour time in
one format (hours padded to two digits or not, seconds or not; a rare "9.12" is read as
9:12) and its blank cells (text
of spaces only, Hawks has " ") are all the same text: anything else stays a category, so
the output can always be written back in the source's exact form."""

from __future__ import annotations

import re
from typing import Iterable

import numpy as np
import pandas as pd
from pydantic import BaseModel

# "9.12" is read as 9:12 too (Hawks has one such typo among 907 times) but written "9:12".
CLOCK = re.compile(r"^(\d{1,2})([:.])([0-5]\d)(?:[:.]([0-5]\d))?$")
# A column is read as clock times only with at least this many distinct times: two or
# three "HH:MM" labels (shift names, a schedule) are better kept as categories.
MIN_CLOCK_VALUES = 10
# At most this share of the distinct times may be written "H.MM": more, and the column
# is more likely decimal numbers than a typo among clock times.
MAX_DOT_SHARE = 0.01
SECONDS_PER_DAY = 86_400


class ClockFormat(BaseModel):
    """How a column writes its times: "9:05" (padded False) or "09:05" (padded True),
    with ":SS" or not, and the blank text it holds for a missing time (None: nulls only)."""

    padded: bool = False
    seconds: bool = False
    blank: str | None = None


def seconds_of_day(values: pd.Series | Iterable) -> np.ndarray:
    """Clock text -> seconds since midnight as float64; NaN for nulls, blanks and any text
    that is not a 24-hour clock time."""
    text = pd.Series(values, dtype=object).astype(str).str.strip()
    parts = text.str.extract(CLOCK.pattern).drop(columns=1).astype(float)
    hours, minutes, secs = parts[0], parts[2], parts[3].fillna(0.0)
    out = (hours * 3600 + minutes * 60 + secs).where(hours < 24)
    return out.to_numpy(dtype="float64", na_value=np.nan)


def learn_format(values: Iterable) -> ClockFormat | None:
    """The one format every distinct value of a text column is written in, else None
    (mixed padding, seconds on some values only, two different blanks, non-time text)."""
    times, blanks = [], set()
    for v in values:
        if not isinstance(v, str):
            return None
        if not v.strip():
            blanks.add(v)
            continue
        match = CLOCK.match(v)
        if match is None or int(match.group(1)) > 23:
            return None
        times.append(match)
    if len(times) < MIN_CLOCK_VALUES or len(blanks) > 1:
        return None
    if len({m.group(4) is None for m in times}) > 1 or sum(m.group(2) == "." for m in times) > MAX_DOT_SHARE * len(times):
        return None
    short = {len(m.group(1)) == 1 for m in times if int(m.group(1)) < 10}  # hours 0-9: "9" or "09"
    if len(short) > 1:
        return None
    return ClockFormat(padded=short == {False}, seconds=times[0].group(4) is not None,
                       blank=next(iter(blanks), None))


def write(seconds: np.ndarray, fmt: ClockFormat) -> pd.Series:
    """Seconds since midnight -> the column's clock text (object dtype); NaN becomes the
    column's blank text, or None when the source had nulls only."""
    x = np.asarray(seconds, dtype="float64")
    missing = np.isnan(x)
    whole = np.where(missing, 0, np.round(x)).astype("int64") % SECONDS_PER_DAY
    hours, rest = np.divmod(whole, 3600)
    minutes, secs = np.divmod(rest, 60)
    hour_text = [f"{h:02d}" if fmt.padded else str(h) for h in hours]
    text = [f"{h}:{m:02d}" + (f":{s:02d}" if fmt.seconds else "") for h, m, s in zip(hour_text, minutes, secs)]
    out = pd.Series(text, dtype=object)
    out[missing] = fmt.blank
    return out
