"""Image benchmark (not a test): each image generator at its defaults on two real sets,
as BENCH.md describes them:

- digits28: scikit-learn's handwritten digits (data/sources/digits.parquet) resized to
  28x28 by the source loader (`source.size`, what a user would set), 10 classes;
- patches32: 32x32 RGB patches cut at a stride of 16 from the two photos of
  `sklearn.datasets.load_sample_images()`, labelled by photo.

Each is split 80 / 20 (seed 0). Per family: fit CPU seconds (time.process_time; the
generators train on one thread), sampling images per CPU second, and validators'
Fréchet distance and precision / recall on as many synthetic images as holdout images,
beside two yardsticks measured the same way in the same run: the real-vs-real floor
(the holdout itself as "synthetic") and independent-pixel noise (every pixel drawn from
its own marginal over the training images, so pixel statistics are right and structure
is absent). Each family's samples are scored again without its intensity map (the same
fit: generators/image/base.py `intensity_map`), and the pixel-histogram TVD is shown.
Label accuracy: the share of synthetic images a logistic regression trained on the real
training pixels assigns to the label they were drawn for (its accuracy on
the real holdout is the ceiling). A PNG grid of samples per family and set, and one of
real images, lands in bench/results/.

    python bench/image.py [--only image/gan] [--data digits28] [--set steps=500] [--tag NAME]

Prints a table and writes bench/results/image[-TAG].json."""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402
from sklearn.datasets import load_sample_images  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402

from generators import families, get  # noqa: E402
from pipeline.core.data import ImageData  # noqa: E402
from pipeline.core.spec import SourceSpec  # noqa: E402
from pipeline.sources import load_source  # noqa: E402
from pipeline.split import split_source  # noqa: E402
from validators.metrics.image import image_fidelity  # noqa: E402

RESULTS = ROOT / "bench" / "results"
SAMPLE_RATE_IMAGES = 2000  # images drawn to time sampling
PATCH, STRIDE = 32, 16
GRID = 8  # grid side, images


def digits28() -> ImageData:
    return load_source(SourceSpec(modality="image", path=ROOT / "data" / "sources" / "digits.parquet", size=(28, 28)))


def patches32() -> ImageData:
    photos = load_sample_images()
    images, labels = [], []
    for name, photo in zip(photos.filenames, photos.images):
        h, w, _ = photo.shape
        for top in range(0, h - PATCH + 1, STRIDE):
            for left in range(0, w - PATCH + 1, STRIDE):
                images.append(photo[top : top + PATCH, left : left + PATCH])
                labels.append(Path(name).stem)
    return ImageData(images=np.stack(images).astype(np.uint8), labels=np.asarray(labels), label_name="photo")


DATASETS = {"digits28": digits28, "patches32": patches32}


def pixel_noise(train: ImageData, n: int, seed: int = 0) -> ImageData:
    """Every pixel (and channel) drawn independently from its own values over the training images."""
    rng = np.random.default_rng(seed)
    flat = train.images.reshape(len(train), -1)
    picks = rng.integers(0, len(train), (n, flat.shape[1]))
    return ImageData(images=flat[picks, np.arange(flat.shape[1])].reshape(n, *train.images.shape[1:]))


def save_grid(images: np.ndarray, path: Path, scale: int = 3) -> None:
    """GRID x GRID images spread evenly over `images` (a split keeps the source's order)."""
    images = images[np.linspace(0, len(images) - 1, min(len(images), GRID * GRID)).astype(int)]
    n = len(images)
    h, w, c = images.shape[1:]
    grid = np.zeros((GRID * (h + 1), GRID * (w + 1), c), dtype=np.uint8)
    for i in range(n):
        r, k = divmod(i, GRID)
        grid[r * (h + 1) : r * (h + 1) + h, k * (w + 1) : k * (w + 1) + w] = images[i]
    picture = Image.fromarray(grid[..., 0] if c == 1 else grid)
    picture.resize((picture.width * scale, picture.height * scale), Image.NEAREST).save(path)


def _pixels(data: ImageData) -> np.ndarray:
    return data.images.reshape(len(data), -1) / 255.0


def _fidelity(train: ImageData, holdout: ImageData, synthetic: ImageData) -> dict:
    m = image_fidelity(train, holdout, synthetic, seed=0)
    return {k: m[f"fidelity.{k}"] for k in ("frechet_distance", "precision", "recall", "pixel_histogram_tvd")}


def bench_one(name: str, data: str, train: ImageData, holdout: ImageData, overrides: dict, judge, tag: str) -> dict:
    generator = get(name)(device="cpu", **overrides)
    wall, cpu = time.perf_counter(), time.process_time()
    generator.fit(train, progress=lambda done, total, **m: print(f"  {name} {done}/{total} {m}", end="\r"))
    fit_cpu_s, fit_wall_s = time.process_time() - cpu, time.perf_counter() - wall
    print()
    cpu = time.process_time()
    drawn = sum(len(b) for b in generator.sample(SAMPLE_RATE_IMAGES, seed=1, batch_size=1000))
    images_per_cpu_s = drawn / (time.process_time() - cpu)
    synthetic = next(generator.sample(len(holdout), seed=2, batch_size=len(holdout)))
    save_grid(synthetic.images, RESULTS / f"image-{data}-{name.split('/')[1]}{tag}.png")
    unmapped = copy.copy(generator)  # the same fit without its intensity map (generators/image/base.py)
    unmapped.intensity_map_ = []
    raw = next(unmapped.sample(len(holdout), seed=2, batch_size=len(holdout)))
    return {
        "generator": name,
        "data": data,
        "params": generator.params.model_dump(mode="json"),
        "fit_cpu_s": fit_cpu_s,
        "fit_wall_s": fit_wall_s,
        "sample_images_per_cpu_s": images_per_cpu_s,
        "label_accuracy": float((judge.predict(_pixels(synthetic)) == synthetic.labels).mean()),
        **_fidelity(train, holdout, synthetic),
        "without_intensity_map": {"label_accuracy": float((judge.predict(_pixels(raw)) == raw.labels).mean()),
                                  **_fidelity(train, holdout, raw)},
    }


def _line(data: str, what: str, m: dict, floor: float, *, accuracy=float("nan"), fit=float("nan"),
          rate=float("nan")) -> None:
    fd = m["frechet_distance"]
    print(f"{data:<10}{what:<17}{fit:>10.1f}{rate:>10.0f}{fd:>9.3f}{fd / floor:>9.1f}{m['precision']:>6.2f}"
          f"{m['recall']:>7.2f}{m['pixel_histogram_tvd']:>7.3f}{accuracy:>10.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", help="generator name(s) to run, e.g. image/diffusion")
    parser.add_argument("--data", action="append", choices=sorted(DATASETS), help="dataset(s) (default: both)")
    parser.add_argument("--set", action="append", default=[], help="param=value (JSON) for every generator")
    parser.add_argument("--tag", default="", help="suffix of the result files")
    args = parser.parse_args()
    overrides = {k: json.loads(v) for k, v in (item.split("=", 1) for item in args.set)}
    tag = f"-{args.tag}" if args.tag else ""
    torch.set_num_threads(1)
    RESULTS.mkdir(parents=True, exist_ok=True)

    rows, yardsticks = [], {}
    for data in args.data or list(DATASETS):
        train, holdout = split_source(DATASETS[data](), 0.2, seed=0)
        save_grid(holdout.images, RESULTS / f"image-{data}-real.png")
        judge = LogisticRegression(max_iter=2000).fit(_pixels(train), train.labels)
        yardsticks[data] = {
            "train_images": len(train), "holdout_images": len(holdout), "size": list(train.images.shape[1:]),
            "real_holdout_label_accuracy": float((judge.predict(_pixels(holdout)) == holdout.labels).mean()),
            "real_vs_real": _fidelity(train, holdout, holdout),
            "pixel_noise": _fidelity(train, holdout, pixel_noise(train, len(holdout))),
        }
        for name in args.only or [f"image/{f}" for f in families("image")]:
            rows.append(bench_one(name, data, train, holdout, overrides, judge, tag))

    print(f"\n{'data':<10}{'generator':<17}{'fit CPU s':>10}{'img/CPU s':>10}{'FD':>9}{'FD/floor':>9}"
          f"{'prec':>6}{'recall':>7}{'TVD':>7}{'label acc':>10}")
    for data, y in yardsticks.items():
        floor = y["real_vs_real"]["frechet_distance"]
        _line(data, "real_vs_real", y["real_vs_real"], floor, accuracy=y["real_holdout_label_accuracy"])
        _line(data, "pixel_noise", y["pixel_noise"], floor)
        for r in (r for r in rows if r["data"] == data):
            _line(data, r["generator"], r, floor, accuracy=r["label_accuracy"], fit=r["fit_cpu_s"],
                  rate=r["sample_images_per_cpu_s"])
            raw = r["without_intensity_map"]
            _line(data, "  without map", raw, floor, accuracy=raw["label_accuracy"])
    out = RESULTS / f"image{tag}.json"
    out.write_text(json.dumps({"overrides": overrides, "yardsticks": yardsticks, "results": rows}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
