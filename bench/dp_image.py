"""Differential privacy benchmark for images (not a test): an image generator trained
with DP-SGD at ε ∈ {1, 3, 10} and without DP (ε = ∞), the same steps, batch size and
declared classes, on scikit-learn's digits (data/sources/digits.parquet) upscaled to
16x16 by the source loader (BENCH.md), split 80 / 20 (seed 0). Per setting: fit CPU
seconds (and the ratio to the non-private fit in the same run), the spent ε and noise
multiplier, and validators' own metrics (the gate's): Fréchet distance on the
validators' feature CNN, precision / recall, and the image membership attack's TPR at
1 % FPR and AUC (holdout images the non-members).

    python bench/dp_image.py [--families image/vae] [--steps 400] [--batch-size 128] [--epsilons 1 3]

Rows are written as they finish; a run keeps the rows of an earlier one with the same
data, steps and batch size for the (family, ε) it does not re-run, so a long bench may
be finished in parts (the CPU-time ratios then span runs: the JSON says which run).

The ε = ∞ fit declares the classes too, so it samples them in equal shares like the
private ones; it still snaps to the source's grey levels (a private fit does not).
Prints a table and writes bench/results/dp_image.json."""

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

import torch  # noqa: E402

from generators import get  # noqa: E402
from pipeline.core.spec import SourceSpec  # noqa: E402
from pipeline.sources import load_source  # noqa: E402
from pipeline.split import split_source  # noqa: E402

EPSILONS = (1.0, 3.0, 10.0, math.inf)
SHOWN = ("fidelity.frechet_distance", "fidelity.precision", "fidelity.recall",
         "privacy.membership_tpr_at_1fpr", "privacy.membership_auc")


RESULTS = ROOT / "bench" / "results" / "dp_image.json"


def bench_family(name: str, source, train, holdout, *, steps: int, batch_size: int, epsilons,
                 done) -> list[dict]:
    from validators.metrics import compute_metrics

    classes = sorted(set(source.labels.tolist()))  # declared: the digits are 0-9 by definition, not by the data
    rows = []
    for eps in epsilons:
        privacy = None if math.isinf(eps) else {"epsilon": eps}
        generator = get(name)(device="cpu", privacy=privacy, steps=steps, batch_size=batch_size, classes=classes)
        start = time.process_time()
        generator.fit(train)
        fit_cpu = time.process_time() - start
        synthetic = next(generator.sample(len(holdout), seed=2, batch_size=len(holdout)))
        metrics = compute_metrics(source, train, holdout, synthetic, seed=0)
        spent = generator.privacy_spent_ or {}
        row = {"generator": name, "target_epsilon": eps, "epsilon": spent.get("epsilon", math.inf),
               "noise_multiplier": spent.get("noise_multiplier", 0.0), "steps": steps, "batch_size": batch_size,
               "fit_cpu_s": round(fit_cpu, 2), "run": time.strftime("%Y-%m-%dT%H:%M", time.gmtime()),
               **{m: metrics.get(m) for m in SHOWN}}
        rows.append(row)
        done(row)
        print(f"{name:16s} eps={eps:<5g} spent={row['epsilon']:.3g} sigma={row['noise_multiplier']:.3g} "
              f"fit {fit_cpu:6.1f} CPU s  " + "  ".join(f"{m.split('.')[1]}={metrics.get(m, float('nan')):.3f}"
                                                     for m in SHOWN), flush=True)
    return rows


def with_ratios(rows: list[dict]) -> list[dict]:
    """Each row's fit CPU time over its family's non-private fit (None without one)."""
    for r in rows:
        plain = [p["fit_cpu_s"] for p in rows if p["generator"] == r["generator"] and math.isinf(p["target_epsilon"])]
        r["fit_cpu_ratio_to_non_dp"] = round(r["fit_cpu_s"] / plain[0], 2) if plain else None
    return sorted(rows, key=lambda r: (r["generator"], r["target_epsilon"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", nargs="+", default=["image/vae"])
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--size", type=int, default=16, help="side the digits are resized to")
    parser.add_argument("--epsilons", nargs="+", type=float, default=list(EPSILONS))
    args = parser.parse_args()
    warnings.simplefilter("ignore", UserWarning)  # Opacus' notes on hooks and secure RNG
    torch.set_num_threads(1)
    source = load_source(SourceSpec(modality="image", path=ROOT / "data" / "sources" / "digits.parquet",
                                    size=(args.size, args.size)))
    train, holdout = split_source(source, 0.2, seed=0)
    floor = compute_floor(source, train, holdout)
    header = {"data": f"digits {args.size}x{args.size}", "steps": args.steps, "batch_size": args.batch_size,
              "train_images": len(train), "holdout_images": len(holdout), "real_vs_real_fd": floor}
    old = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    same = all(old.get(k) == header[k] for k in ("data", "steps", "batch_size"))
    rows = [r for r in old.get("rows", []) if same]

    def done(row: dict) -> None:
        rows[:] = [r for r in rows if (r["generator"], r["target_epsilon"]) != (row["generator"],
                                                                               row["target_epsilon"])] + [row]
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(header | {"rows": with_ratios(rows)}, indent=2, default=str))

    for family in args.families:
        bench_family(family, source, train, holdout, steps=args.steps, batch_size=args.batch_size,
                     epsilons=args.epsilons, done=done)
    rows = with_ratios(rows)
    print(f"\nreal-vs-real FD floor {floor:.3f}; {len(train)} training images {args.size}x{args.size}, "
          f"{args.steps} steps of {args.batch_size}")
    print(f"{'generator':<16}{'ε':>5}{'spent':>7}{'σ':>7}{'fit CPU s':>10}{'× plain':>8}{'FD':>8}{'prec':>6}"
          f"{'recall':>7}{'TPR@1%':>8}{'MIA AUC':>8}")
    for r in rows:
        print(f"{r['generator']:<16}{r['target_epsilon']:>5g}{r['epsilon']:>7.3g}{r['noise_multiplier']:>7.3g}"
              f"{r['fit_cpu_s']:>10.1f}{r['fit_cpu_ratio_to_non_dp'] or float('nan'):>8.2f}"
              f"{r['fidelity.frechet_distance']:>8.2f}{r['fidelity.precision']:>6.2f}{r['fidelity.recall']:>7.2f}"
              f"{r['privacy.membership_tpr_at_1fpr']:>8.3f}{r['privacy.membership_auc']:>8.3f}")
    print(f"wrote {RESULTS}")


def compute_floor(source, train, holdout) -> float:
    """The real-vs-real Fréchet distance: the holdout itself scored as the synthetic set."""
    from validators.metrics.image import image_fidelity

    return image_fidelity(train, holdout, holdout, seed=0)["fidelity.frechet_distance"]


if __name__ == "__main__":
    main()
