"""Wide tables end to end: 300 columns x 10,000 rows fitted by `tabular/diffusion` at its
default training budget, sampled, then timed through `validate_run` (contract +
fidelity + privacy suites) and `write_report`, and the contract suite alone (its build
and its GX run, the part that grows with the column count). Targets: validation and
report well under 3 min on 2 cores (issue 16); fit, sample, validation and report
together <= 3 min (issue 11: a step budget costs the same whatever the row count, and
the network's width grows with the encoded row only up to MAX_HIDDEN, 256, so past that
only its input and output layers grow with columns).

The table is real data made wide: penguins' 4 measurements, 3 categories and year,
replicated 37 times with noise (measurements jittered by 10 % of their sd, 5 % of
categories redrawn), 296 + 4 = 300 columns, rows resampled to 10,000. Train / holdout
from `split_source`; the synthetic table has as many rows as train.

Run: python bench/wide_report.py [--columns 300 --rows 10000]
Writes bench/results/wide_report.json."""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from generators import get
from pipeline.core.data import TabularData
from pipeline.core.schema import profile_table
from pipeline.sources import read_table
from pipeline.split import split_source
from validators import gx
from validators.contract import build_contract_suite, contract_table
from validators.gate import validate_run
from validators.report import write_report

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).parent / "results" / "wide_report.json"


def wide_table(columns: int, rows: int, seed: int) -> pd.DataFrame:
    base = read_table(ROOT / "data" / "sources" / "penguins.csv")
    rng = np.random.default_rng(seed)
    picked = base.iloc[rng.choice(len(base), rows)].reset_index(drop=True)
    out: dict[str, pd.Series] = {}
    copy = 0
    while len(out) < columns:
        for name in base.columns:
            if len(out) >= columns:
                break
            col = picked[name]
            if pd.api.types.is_float_dtype(col):
                col = col + rng.normal(0, 0.1 * base[name].std(), rows)
            elif not pd.api.types.is_numeric_dtype(col):
                redraw = rng.random(rows) < 0.05
                col = col.where(~redraw, rng.choice(base[name].dropna().unique(), rows))
            out[f"{name}_{copy}"] = col
        copy += 1
    return pd.DataFrame(out)


def contract_cpu_seconds(source: TabularData, synthetic: pd.DataFrame) -> dict[str, float]:
    """CPU seconds to build the contract suite from `source` and to run it on `synthetic`."""
    gx.new_suite("warm-up", [])  # GX's import and context are not the contract's cost
    t0 = time.process_time()
    suite = build_contract_suite(source)
    t1 = time.process_time()
    gx.validate(suite, contract_table(source, synthetic))
    t2 = time.process_time()
    return {"contract_expectations": len(suite.expectations), "contract_build_cpu_s": round(t1 - t0, 1),
            "contract_validate_cpu_s": round(t2 - t1, 1)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--columns", type=int, default=300)
    parser.add_argument("--rows", type=int, default=10_000)
    args = parser.parse_args()
    real = wide_table(args.columns, args.rows, seed=0)
    source = TabularData(frame=real, profile=profile_table(real))
    train, holdout = split_source(source, 0.2, seed=0)
    torch.set_num_threads(1)
    generator = get("tabular/diffusion")(device="cpu")
    t0 = time.perf_counter(), time.process_time()
    generator.fit(train)
    t1 = time.perf_counter(), time.process_time()
    synthetic = pd.concat(generator.sample(len(train), seed=1), ignore_index=True)
    t2 = time.perf_counter(), time.process_time()
    fit = {"encoded_dim": generator.encoder_.dim, "steps": generator.params.step_limit(),
           "fit_wall_s": round(t1[0] - t0[0], 1), "fit_cpu_s": round(t1[1] - t0[1], 1),
           "sample_rows": len(synthetic), "sample_wall_s": round(t2[0] - t1[0], 1),
           "sample_cpu_s": round(t2[1] - t1[1], 1)}
    print(json.dumps(fit), flush=True)
    contract = contract_cpu_seconds(source, synthetic)
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "run"
        run_dir.mkdir()
        pq.write_table(pa.Table.from_pandas(synthetic, preserve_index=False), run_dir / "part-00000.parquet")
        t0 = time.perf_counter(), time.process_time()
        outcome = validate_run(run_dir, source=source, train=train, holdout=holdout)
        t1 = time.perf_counter(), time.process_time()
        report = write_report(run_dir, source=source, outcome=outcome, train=train, holdout=holdout)
        t2 = time.perf_counter(), time.process_time()
        size = report.stat().st_size
    result = {
        "columns": args.columns, "rows": args.rows, "status": str(outcome.status),
        "failures": [f"{f.suite} {f.target}: {f.check} (observed {f.observed})" for f in outcome.failures],
        "validate_wall_s": round(t1[0] - t0[0], 1), "validate_cpu_s": round(t1[1] - t0[1], 1),
        "report_wall_s": round(t2[0] - t1[0], 1), "report_cpu_s": round(t2[1] - t1[1], 1),
        "report_bytes": size, **fit, **contract, "machine": f"{platform.machine()} {os.cpu_count()} cpus",
    }
    result["end_to_end_wall_s"] = round(sum(result[k] for k in ("fit_wall_s", "sample_wall_s", "validate_wall_s",
                                                                "report_wall_s")), 1)
    result["end_to_end_cpu_s"] = round(sum(result[k] for k in ("fit_cpu_s", "sample_cpu_s", "validate_cpu_s",
                                                               "report_cpu_s")), 1)
    print(json.dumps(result, indent=2))
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
