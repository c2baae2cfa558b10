"""Differential privacy benchmark for time series (not a test): `timeseries/diffusion`
and `timeseries/vae` trained with DP-SGD at ε ∈ {1, 3, 10} and without DP (ε = ∞), the
same epochs and batch size, on the World Bank fertility panel (data/sources/fertility.csv,
210 countries), split by entity as bench/timeseries.py does (holdout 20 %, seed 0).
Per setting: fit CPU seconds and the ratio to the non-private fit in the same run, the
spent ε, noise multiplier and steps, the discriminative score beside its real-vs-real
floor, the predictive ratio, and the membership attack's TPR at 1 % FPR and AUC (the
gate's own metrics, validators/metrics; one sequence is one record, as for ε).

    python bench/dp_timeseries.py [--epochs N] [--only timeseries/vae] [--sample 500] [--out STEM]

Each family runs its default epochs unless `--epochs` overrides them; a private fit
takes as many DP-SGD steps as those epochs would (epochs x ceil(sequences / batch)).
One torch thread. Prints a table, writes bench/results/dp_timeseries.json (or STEM.json)."""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import pandas as pd  # noqa: E402
import torch  # noqa: E402

from bench.timeseries import HOLDOUT, SAMPLE_SEED, SOURCE, SPLIT_SEED, real_floor  # noqa: E402
from generators import get  # noqa: E402
from pipeline.sources import load_source  # noqa: E402
from pipeline.split import split_source  # noqa: E402

GENERATORS = ("timeseries/diffusion", "timeseries/vae")
# What a user declares for a private fit (pipeline/core/domains.py): the panel's years, rates of 0-10 children
DECLARED = {"year": {"range": [1960, 2011], "step": 1}, "fertility": {"range": [0, 10]}}
EPSILONS = (1.0, 3.0, 10.0, math.inf)
SHOWN = ("fidelity.discriminative_score", "fidelity.predictive_ratio", "privacy.membership_tpr_at_1fpr",
         "privacy.membership_auc")


def bench_generator(name: str, source, train, holdout, epochs: int | None, n_sample: int) -> list[dict]:
    from validators.metrics import compute_metrics

    rows = []
    for eps in EPSILONS:
        privacy = None if math.isinf(eps) else {"epsilon": eps}
        generator = get(name)(device="cpu", privacy=privacy, **({"epochs": epochs} if epochs else {}))
        start = time.process_time()
        generator.fit(train)
        fit_cpu = time.process_time() - start
        frame = pd.concat(generator.sample(n_sample, seed=SAMPLE_SEED, batch_size=n_sample), ignore_index=True)
        metrics = compute_metrics(source, train, holdout, train.with_frame(frame), seed=0)
        spent = generator.privacy_spent_ or {}
        p = generator.params
        row = {"generator": name, "target_epsilon": eps, "epsilon": spent.get("epsilon", math.inf),
               "noise_multiplier": spent.get("noise_multiplier", 0.0), "epochs": p.epochs, "batch_size": p.batch_size,
               "steps": p.epochs * -(-len(train) // p.batch_size), "fit_cpu_s": round(fit_cpu, 2),
               **{m: metrics.get(m) for m in SHOWN}}
        rows.append(row)
        print(f"{name:21s} eps={eps:<4g} spent={row['epsilon']:.3g} sigma={row['noise_multiplier']:6.3g} "
              f"steps={row['steps']} fit {fit_cpu:6.1f} CPU s  "
              + "  ".join(f"{m.split('.')[1]}={metrics.get(m, float('nan')):.3f}" for m in SHOWN), flush=True)
    base = next(r["fit_cpu_s"] for r in rows if math.isinf(r["target_epsilon"]))
    for r in rows:
        r["fit_cpu_ratio_to_non_dp"] = round(r["fit_cpu_s"] / base, 2)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, help="override every generator's epochs (default: its own default)")
    parser.add_argument("--only", nargs="+", default=list(GENERATORS), choices=list(GENERATORS))
    parser.add_argument("--sample", type=int, default=500, help="sequences sampled per setting (default 500)")
    parser.add_argument("--out", default="dp_timeseries", help="results file stem under bench/results (default dp_timeseries)")
    args = parser.parse_args()
    warnings.simplefilter("ignore", UserWarning)  # Opacus' notes on hooks and RDP orders
    torch.set_num_threads(1)
    total = time.process_time()
    source = load_source(SOURCE.model_validate({**SOURCE.model_dump(), "columns": DECLARED}))
    train, holdout = split_source(source, HOLDOUT, seed=SPLIT_SEED)
    floor = real_floor(train, holdout)
    print(f"fertility: {len(train)} train / {len(holdout)} holdout sequences; "
          f"real-vs-real discriminative floor {floor:.3f}", flush=True)
    rows = [r for name in args.only for r in bench_generator(name, source, train, holdout, args.epochs, args.sample)]
    print("\n| generator | target ε | spent ε | σ | steps | fit CPU s (× non-DP) | discriminative | predictive ratio "
          "| membership TPR @1 % FPR | membership AUC |\n|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['generator']} | {r['target_epsilon']:g} | {r['epsilon']:.2f} | {r['noise_multiplier']:.2f} | "
              f"{r['steps']} | {r['fit_cpu_s']:.1f} ({r['fit_cpu_ratio_to_non_dp']:.2f}) | "
              + " | ".join(f"{r[m]:.3f}" for m in SHOWN) + " |")
    out = ROOT / "bench" / "results" / f"{args.out}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    report = {"dataset": "World Bank fertility, data/sources/fertility.csv, split by entity (holdout 0.2, seed 0)",
              "train_sequences": len(train), "holdout_sequences": len(holdout), "sampled": args.sample,
              "discriminative_floor_real_vs_real": round(floor, 4), "rows": rows,
              "total_cpu_s": round(time.process_time() - total, 1)}
    out.write_text(json.dumps(report, indent=2, default=str))
    print(f"total {report['total_cpu_s']} CPU s; wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
