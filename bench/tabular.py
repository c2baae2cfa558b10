"""Tabular benchmark (not a test): for each tabular generator on a real table, fit
seconds, sampling rows/s, peak memory while streaming 1,000,000 rows to Parquet, and
the fidelity / privacy metrics of validators/. Speeds are also given as ratios to
SDV's GaussianCopula measured in the same run (these machines are noisy).

    python bench/tabular.py [--epochs N] [--rows-memory 1000000] [--only tabular/diffusion]

Prints a table and writes bench/results/tabular.json."""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from generators import families, get, load_generator  # noqa: E402
from pipeline.core.plan import plan_parts  # noqa: E402
from pipeline.sink import write_part  # noqa: E402
from pipeline.sources import load_source  # noqa: E402
from pipeline.core.spec import SourceSpec  # noqa: E402
from pipeline.split import split_source  # noqa: E402

SOURCE = ROOT / "data" / "sources" / "penguins.csv"
BATCH = 10_000


def _rss_mb() -> float:
    """Peak resident memory of this process (Linux VmHWM). Not ru_maxrss: it survives
    exec, so a spawned child would report its parent's peak."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status (Linux only)")


def _stream_to_parquet(model_dir: str, rows: int, out: mp.Queue) -> None:
    """In a fresh process: load the model, stream `rows` to Parquet, report peak RSS."""
    generator = load_generator(model_dir)
    before = _rss_mb()
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        for part in plan_parts(rows, BATCH, "tabular"):
            write_part(generator, part, Path(tmp))
        seconds = time.perf_counter() - t
    out.put({"rss_before_mb": before, "peak_rss_mb": _rss_mb(), "seconds": seconds})


def bench_one(name: str, train, holdout, source, epochs: int | None, rows_memory: int, workdir: Path) -> dict:
    from validators.metrics import compute_metrics

    params = {"epochs": epochs} if epochs and "epochs" in get(name).Params.model_fields else {}
    generator = get(name)(device="cpu", **params)
    t = time.perf_counter()
    generator.fit(train)
    fit_s = time.perf_counter() - t

    t = time.perf_counter()
    sampled = sum(len(b) for b in generator.sample(100_000, seed=1, batch_size=BATCH))
    sample_rate = sampled / (time.perf_counter() - t)

    model_dir = workdir / name.replace("/", "-")
    generator.save(model_dir)
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_stream_to_parquet, args=(str(model_dir), rows_memory, queue))
    proc.start()
    memory = queue.get()
    proc.join()

    synthetic = type(train)(frame=next(generator.sample(len(train), seed=2, batch_size=len(train))), profile=train.profile)
    metrics = compute_metrics(source, train, holdout, synthetic, target="species")
    return {"generator": name, "params": params, "fit_s": fit_s, "sample_rows_per_s": sample_rate,
            "memory_rows": rows_memory, **memory, "metrics": metrics}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=None, help="epochs for generators that train (default: their own)")
    parser.add_argument("--rows-memory", type=int, default=1_000_000)
    parser.add_argument("--only", nargs="*", default=None)
    args = parser.parse_args()

    source = load_source(SourceSpec(modality="tabular", path=SOURCE))
    train, holdout = split_source(source, 0.2, seed=0)
    names = args.only or [f"tabular/{f}" for f in families("tabular")]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            r = bench_one(name, train, holdout, source, args.epochs, args.rows_memory, Path(tmp))
            results.append(r)
            print(f"{name:<20} fit {r['fit_s']:7.1f} s  sample {r['sample_rows_per_s']:>10,.0f} rows/s  "
                  f"peak RSS {r['peak_rss_mb']:6.0f} MB (before sampling {r['rss_before_mb']:.0f} MB) "
                  f"for {r['memory_rows']:,} rows in {r['seconds']:.1f} s", flush=True)
    baseline = next((r for r in results if r["generator"] == "tabular/copula"), None)
    if baseline:
        for r in results:
            r["sample_speed_vs_copula"] = r["sample_rows_per_s"] / baseline["sample_rows_per_s"]
            r["fit_time_vs_copula"] = r["fit_s"] / baseline["fit_s"]
    print("\nmetric".ljust(34) + "".join(r["generator"].split("/")[1].rjust(12) for r in results))
    for metric in sorted({m for r in results for m in r["metrics"]}):
        print(metric.ljust(33) + "".join(f"{r['metrics'].get(metric, float('nan')):12.3f}" for r in results))
    out = ROOT / "bench" / "results" / "tabular.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"source": str(SOURCE.relative_to(ROOT)), "rows_train": len(train), "results": results}, indent=2))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
