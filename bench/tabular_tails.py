"""Tails of `tabular/diffusion` (not a test): per numeric column, the spread and the extreme
quantiles of synthetic rows against real ones, with the real-vs-real noise floor.

    python bench/tabular_tails.py [--tables AER/CPS1988 ...] [--steps 3000] [--rows 20000]

Protocol: each table is loaded and split as bench/tabular.py does (train 60 % / test 20 % /
holdout 20 %, seed 0); `tabular/diffusion` fits train at its defaults (or `--steps`) and
draws `--rows` rows (many, so the synthetic side adds little noise). Per numeric or integer
column, three comparisons of the same statistics:
- `syn/holdout`: the issue's measure, synthetic against the held-out real rows;
- `train/holdout`: the noise floor, real against real: a bound below it cannot be measured;
- `syn/train`: the model's own error (the calibration targets train's marginals), its
  noise floor only the synthetic sample's.
Statistics: std ratio, and the 1 %, 5 %, 95 %, 99 % quantiles as ratios, or, where the real
column crosses 0 or the real quantile is 0, as differences in units of the real std.
`err` is |ratio - 1| or |difference|: the 5 % target reads err <= 0.05.

Prints a per-table summary (worst and median err per comparison) and writes every number
to bench/results/tabular_tails.json. One torch thread, CPU seconds."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

from bench.tabular import TABLES, load_table  # noqa: E402
from generators import get  # noqa: E402
from pipeline.split import split_source  # noqa: E402
from validators.metrics.representation import numeric_values  # noqa: E402

MEASURED = ("AER/CreditCard", "Stat2Data/Hawks", "AER/HMDA", "ISLR/Wage", "AER/CPS1988", "COUNT/rwm5yr")
LEVELS = (0.01, 0.05, 0.95, 0.99)
STATS = ("std",) + tuple(f"q{round(q * 100):02d}" for q in LEVELS)
RESULTS = ROOT / "bench" / "results" / "tabular_tails.json"


def column_stats(real: np.ndarray, other: np.ndarray) -> dict[str, tuple[float, float]]:
    """{stat: (value, err)}: the std ratio and quantile ratios (or std-unit differences)."""
    sd = np.std(real)
    out = {"std": (float(np.std(other) / sd),) * 2}
    crosses = real.min() < 0 < real.max()
    for q, name in zip(LEVELS, STATS[1:]):
        qr, qo = np.quantile(real, q), np.quantile(other, q)
        if crosses or qr == 0:
            out[name] = (float((qo - qr) / sd), float(abs(qo - qr) / sd))
        else:
            out[name] = (float(qo / qr), float(abs(qo / qr - 1)))
    out["std"] = (out["std"][0], abs(out["std"][0] - 1))
    return out


def table_tails(train: pd.DataFrame, holdout: pd.DataFrame, synthetic: pd.DataFrame, profile) -> dict:
    """{column: {comparison: {stat: (value, err)}}} over the numeric and integer columns."""
    out = {}
    for col in profile.of_kind("numeric", "integer"):
        tr, ho, sy = (numeric_values(f[col.name]) for f in (train, holdout, synthetic))
        tr, ho, sy = (v[~np.isnan(v)] for v in (tr, ho, sy))
        if len(ho) < 2 or np.std(ho) == 0 or np.std(tr) == 0 or len(sy) < 2:
            continue
        out[col.name] = {"syn/holdout": column_stats(ho, sy), "train/holdout": column_stats(ho, tr),
                         "syn/train": column_stats(tr, sy)}
    return out


def summary(tails: dict) -> dict[str, dict[str, float]]:
    """Per comparison: the worst and the median err over every (column, stat), and the share within 5 %."""
    out = {}
    for comp in ("syn/holdout", "train/holdout", "syn/train"):
        errs = [(tails[c][comp][s][1], f"{c}.{s}") for c in tails for s in STATS]
        if errs:
            worst = max(errs)
            out[comp] = {"median": float(np.median([e for e, _ in errs])), "worst": worst[0], "worst_at": worst[1],
                         "within_5pct": float(np.mean([e <= 0.05 for e, _ in errs]))}
    return out


def run_table(table: str, steps: int | None, rows: int, workdir: Path) -> dict:
    source, _ = load_table(table, workdir)
    train, rest = split_source(source, 0.4, seed=0)
    _, holdout = split_source(rest, 0.5, seed=0)
    params = {} if steps is None else {"steps": steps}
    generator = get("tabular/diffusion")(device="cpu", **params)
    cpu = time.process_time()
    generator.fit(train)
    fit_cpu = time.process_time() - cpu
    synthetic = pd.concat(generator.sample(max(rows, len(train.frame)), seed=1), ignore_index=True)
    tails = table_tails(train.frame, holdout.frame, synthetic, source.profile)
    return {"rows": {"train": len(train.frame), "holdout": len(holdout.frame), "synthetic": len(synthetic)},
            "fit_cpu_s": fit_cpu, "cpu_s": time.process_time() - cpu, "tails": tails, "summary": summary(tails)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", nargs="+", default=list(MEASURED), choices=list(TABLES))
    parser.add_argument("--steps", type=int, default=None, help="training steps (default: the generator's)")
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    torch.set_num_threads(1)
    results = {"date": dt.date.today().isoformat(), "steps": args.steps, "tables": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for table in args.tables:
            entry = run_table(table, args.steps, args.rows, Path(tmp))
            results["tables"][table] = entry
            s = entry["summary"]
            print(f"{table} ({entry['rows']['train']:,} train, {entry['cpu_s']:.0f} CPU s): " + "; ".join(
                f"{comp} median {v['median']:.3f} worst {v['worst']:.3f} ({v['worst_at']}) "
                f"within 5 % {v['within_5pct']:.0%}" for comp, v in s.items()), flush=True)
    args.out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
