"""The contract suite alone on a wide table (issue 16): 300 columns x 10,000 rows of
`bench.wide_report.wide_table`, suite built from the source, run once on the synthetic
draw. Prints and writes CPU seconds (time.process_time) and the expectation count.

Run: python bench/wide_contract.py [--columns 300 --rows 10000]
Writes bench/results/wide_contract.json."""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

from bench.wide_report import wide_table
from pipeline.core.data import TabularData
from pipeline.core.schema import profile_table
from validators import gx
from validators.contract import build_contract_suite, contract_table

RESULTS = Path(__file__).parent / "results" / "wide_contract.json"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--columns", type=int, default=300)
    parser.add_argument("--rows", type=int, default=10_000)
    args = parser.parse_args()
    real = wide_table(args.columns, args.rows, seed=0)
    source = TabularData(frame=real, profile=profile_table(real))
    synthetic = wide_table(args.columns, int(0.8 * args.rows), seed=1)
    gx.new_suite("warm-up", [])  # GX's import and context are not the contract's cost
    t0 = time.process_time()
    suite = build_contract_suite(source)
    t1 = time.process_time()
    result = gx.validate(suite, contract_table(source, synthetic))
    t2 = time.process_time()
    out = {
        "columns": args.columns, "rows": args.rows, "expectations": len(suite.expectations),
        "success": result["success"], "failing": result["statistics"]["unsuccessful_expectations"],
        "build_cpu_s": round(t1 - t0, 1), "validate_cpu_s": round(t2 - t1, 1),
        "machine": f"{platform.machine()} {os.cpu_count()} cpus",
    }
    print(json.dumps(out, indent=2))
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
