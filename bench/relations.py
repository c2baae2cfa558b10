"""Which exact relations does the detection classifier exploit? (issue 11; not a test)

    python bench/relations.py nycflights13/flights openintro/loans_full_schema [--no-drop]
                              [--samples DIR]

Per table, a default fit of tabular/diffusion on the train split of bench/tabular.py
(its loader, subsample and split), its samples kept in DIR/<table>.pkl (default
/tmp/synthpipe-relations) and reused, so the judge can be rerun on the same rows, the
fit on the profile of the code that made it. It prints and writes to
bench/results/relations-<table>.json:
- the detection AUC of bench/tabular.py (validators/metrics/tabular.py `detection_auc`);
- the AUC with one column left out of both sides (a column the judge leans on drops it;
  `--no-drop` skips these);
- the AUC after repairing one relation in the synthetic rows (RELATIONS below: the
  relation the table's data has, computed on the synthetic side from its inputs).
The repairs are this measurement's, written per table; the pipeline's own relations
are found by its profile (pipeline/core/constraints.py)."""

from __future__ import annotations

import json
import pickle
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from validators.metrics.tabular import detection_auc  # noqa: E402


def _minutes(hhmm: pd.Series) -> pd.Series:
    return (hhmm // 100) * 60 + hhmm % 100


def _hhmm(minutes: pd.Series) -> pd.Series:
    m = minutes % 1440
    m = m.where(m != 0, 1440)  # the source writes midnight 2400
    return (m // 60) * 100 + m % 60


def _clock(time: str, sched: str, delay: str):
    def fix(f: pd.DataFrame, real: pd.DataFrame) -> pd.DataFrame:
        return f.assign(**{time: _hhmm(_minutes(f[sched]) + f[delay]).astype(f[time].dtype)})
    return fix


def _time_hour(f: pd.DataFrame, real: pd.DataFrame) -> pd.DataFrame:
    naive = pd.to_datetime(dict(year=f.year, month=f.month, day=f.day, hour=f.hour), errors="coerce")
    local = naive.dt.tz_localize("America/New_York", ambiguous="NaT", nonexistent="NaT").dt.tz_convert("UTC")
    return f.assign(time_hour=local.dt.tz_localize(None).astype(f.time_hour.dtype) if f.time_hour.dt.tz is None
                    else local.astype(f.time_hour.dtype))


def _fixed(by: list[str], column: str):
    """`column` set to its most common value for the row's `by` values in the real rows."""
    def fix(f: pd.DataFrame, real: pd.DataFrame) -> pd.DataFrame:
        mode = real.dropna(subset=by + [column]).groupby(by, observed=True)[column].agg(lambda s: s.mode()[0])
        keys = pd.MultiIndex.from_frame(f[by]) if len(by) > 1 else pd.Index(f[by[0]])
        found = pd.Series(mode.reindex(keys).to_numpy(), index=f.index)
        return f.assign(**{column: found.where(found.notna(), f[column]).astype(f[column].dtype)})
    return fix


RELATIONS = {
    "nycflights13/flights": {
        "dep_time = sched_dep_time + dep_delay (clock)": _clock("dep_time", "sched_dep_time", "dep_delay"),
        "arr_time = sched_arr_time + arr_delay (clock)": _clock("arr_time", "sched_arr_time", "arr_delay"),
        "sched_dep_time = 100 hour + minute": lambda f, real: f.assign(sched_dep_time=(100 * f.hour + f.minute).astype(f.sched_dep_time.dtype)),
        "time_hour = local(year, month, day, hour)": _time_hour,
        "(origin, dest) fixes distance": _fixed(["origin", "dest"], "distance"),
        "tailnum fixes carrier": _fixed(["tailnum"], "carrier"),
        "(carrier, flight) fixes origin": _fixed(["carrier", "flight"], "origin"),
    },
    "openintro/loans_full_schema": {
        "paid_total = paid_principal + paid_interest + paid_late_fees":
            lambda f, real: f.assign(paid_total=(f.paid_principal + f.paid_interest + f.paid_late_fees).round(2)),
        "grade = sub_grade[0]": lambda f, real: f.assign(grade=f.sub_grade.astype(str).str[0].astype(f.grade.dtype)),
        "installment = amortised(loan_amount, interest_rate, term)": lambda f, real: f.assign(
            installment=(f.loan_amount * (r := f.interest_rate / 1200) / (1 - (1 + r) ** -f.term)).round(2)),
        "interest_rate fixes sub_grade and grade": lambda f, real: _fixed(["interest_rate"], "grade")(
            _fixed(["interest_rate"], "sub_grade")(f, real), real),
    },
}


def samples(table: str, folder: Path) -> dict:
    """{source, train, synthetic} of one default fit, made once and kept in `folder`."""
    import tempfile

    from bench.tabular import OURS, SAMPLE_ROWS, fit_and_sample, load_table
    from pipeline.split import split_source

    path = folder / (table.replace("/", "-") + ".pkl")
    if path.exists():
        return pickle.loads(path.read_bytes())
    with tempfile.TemporaryDirectory() as tmp:
        source, _ = load_table(table, Path(tmp))
    train, _ = split_source(source, 0.4, seed=0)
    frame, timing = fit_and_sample(OURS, train, max(len(train), SAMPLE_ROWS))
    data = {"table": table, "source": source, "train": train, "synthetic": frame, "timing": timing}
    folder.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(data))
    return data


def measure(data: dict) -> dict:
    source, train, table = data["source"], data["train"], data["table"]
    real = train.frame
    synthetic = data["synthetic"].iloc[: len(real)].reset_index(drop=True)
    profile = source.profile
    cpu = time.process_time()
    out = {"table": table, "rows": len(real), "proposed": [c.text for c in profile.proposed_constraints],
           "auc": detection_auc(real, synthetic, profile, seed=0)}
    print(f"{table}: AUC {out['auc']:.3f}; proposed {out['proposed']}", flush=True)
    fixed = synthetic
    out["repaired"] = {}
    for name, fix in RELATIONS.get(table, {}).items():
        out["repaired"][name] = detection_auc(real, fix(synthetic, real), profile, seed=0)
        fixed = fix(fixed, real)
        print(f"  repaired {name}: {out['repaired'][name]:.3f}", flush=True)
    if RELATIONS.get(table):
        out["repaired_all"] = detection_auc(real, fixed, profile, seed=0)
        print(f"  all repaired: {out['repaired_all']:.3f}", flush=True)
    out["dropped"] = {}
    for c in ([] if "--no-drop" in sys.argv else profile.names):
        keep = [n for n in profile.names if n != c]
        sub = profile.model_copy(update={"columns": [col for col in profile.columns if col.name != c]})
        out["dropped"][c] = detection_auc(real[keep], synthetic[keep], sub, seed=0)
    for c, auc in sorted(out["dropped"].items(), key=lambda kv: kv[1])[:10]:
        print(f"  without {c}: {auc:.3f}", flush=True)
    out["cpu_s"] = time.process_time() - cpu
    dest = ROOT / "bench" / "results" / f"relations-{table.replace('/', '-')}.json"
    dest.write_text(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    import torch

    torch.set_num_threads(1)
    args = sys.argv[1:]
    folder = Path(args[args.index("--samples") + 1]) if "--samples" in args else Path("/tmp/synthpipe-relations")
    for table in (a for i, a in enumerate(args) if not a.startswith("--") and (i == 0 or args[i - 1] != "--samples")):
        measure(samples(table, folder))
