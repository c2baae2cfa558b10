"""Image benchmark (not a test): each image generator on scikit-learn's handwritten
digits (data/sources/digits.parquet, 8x8 grey, 10 classes), fitted on an 80% split:
fit seconds per epoch, sampling images/s, the fidelity and privacy metrics of
validators/ (Fréchet distance, precision / recall, ...) on as many synthetic images as
training images, and the share of synthetic images a logistic regression trained on
the real training images assigns to the label they were drawn for (class fidelity;
the same classifier's accuracy on the real holdout is the ceiling).

    python bench/image.py [--epochs N] [--only image/diffusion]

Prints a table and writes bench/results/image.json."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402

from generators import families, get  # noqa: E402
from pipeline.core.data import ImageData  # noqa: E402
from pipeline.sources import load_source  # noqa: E402
from pipeline.core.spec import SourceSpec  # noqa: E402
from pipeline.split import split_source  # noqa: E402

SOURCE = ROOT / "data" / "sources" / "digits.parquet"
SAMPLE_RATE_IMAGES = 2000  # images drawn to time sampling


def _pixels(data: ImageData) -> np.ndarray:
    return data.images.reshape(len(data), -1) / 255.0


def _metrics(source: ImageData, train: ImageData, holdout: ImageData, synthetic: ImageData) -> dict:
    """validators' metrics, or why they are missing."""
    try:
        from validators.metrics import compute_metrics

        return compute_metrics(source, train, holdout, synthetic, seed=0)
    except ModuleNotFoundError as err:  # validators.metrics.image not landed yet
        return {"unavailable": str(err)}


def bench_one(name: str, source: ImageData, train: ImageData, holdout: ImageData, epochs: int | None, judge) -> dict:
    params = {"epochs": epochs} if epochs else {}
    generator = get(name)(device="cpu", **params)
    t = time.perf_counter()
    generator.fit(train, progress=lambda done, total, **m: print(f"  {name} {done}/{total} loss {m['loss']:.4f}", end="\r"))
    fit_s = time.perf_counter() - t
    print()
    t = time.perf_counter()
    drawn = sum(len(b) for b in generator.sample(SAMPLE_RATE_IMAGES, seed=1, batch_size=1000))
    images_per_s = drawn / (time.perf_counter() - t)
    synthetic = next(generator.sample(len(train), seed=2, batch_size=len(train)))
    return {
        "generator": name,
        "params": generator.params.model_dump(mode="json"),
        "fit_s": fit_s,
        "fit_s_per_epoch": fit_s / generator.params.epochs,
        "sample_images_per_s": images_per_s,
        "label_accuracy": float((judge.predict(_pixels(synthetic)) == synthetic.labels).mean()),
        "metrics": _metrics(source, train, holdout, synthetic),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=None, help="epochs for every generator (default: their own)")
    parser.add_argument("--only", action="append", help="generator name(s) to run, e.g. image/diffusion")
    args = parser.parse_args()

    source = load_source(SourceSpec(modality="image", path=SOURCE))
    train, holdout = split_source(source, 0.2, seed=0)
    judge = LogisticRegression(max_iter=2000).fit(_pixels(train), train.labels)
    ceiling = float((judge.predict(_pixels(holdout)) == holdout.labels).mean())
    names = args.only or [f"image/{f}" for f in families("image")]
    results = [bench_one(name, source, train, holdout, args.epochs, judge) for name in names]

    print(f"\ndigits: {len(train)} train / {len(holdout)} holdout images; real-holdout label accuracy {ceiling:.3f}")
    print(f"{'generator':<17}{'s/epoch':>9}{'img/s':>9}{'label acc':>11}  metrics")
    for r in results:
        shown = {k.split(".", 1)[-1]: round(v, 4) if isinstance(v, float) else v for k, v in r["metrics"].items()}
        speed = f"{r['fit_s_per_epoch']:>9.2f}{r['sample_images_per_s']:>9.0f}"
        print(f"{r['generator']:<17}{speed}{r['label_accuracy']:>11.3f}  {shown}")
    out = ROOT / "bench" / "results" / "image.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"source": str(SOURCE.relative_to(ROOT)), "real_holdout_label_accuracy": ceiling,
                               "results": results}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
