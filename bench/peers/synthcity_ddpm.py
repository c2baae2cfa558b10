"""Fit synthcity's TabDDPM (`ddpm`) at its defaults and sample from it, as a peer of
bench/tabular.py. Runs under the separate synthcity venv (it pins its own torch), so it
imports nothing of synthpipe: Parquet in, Parquet and a JSON of timings out.

    /work/synthcity-venv/bin/python bench/peers/synthcity_ddpm.py TRAIN.parquet OUT.parquet ROWS STATS.json

Timings are this process's own CPU and wall seconds (fit, then sampling ROWS rows)."""

from __future__ import annotations

import json
import sys
import time
from importlib.metadata import version


def defaults(cls: type) -> dict:
    """The plugin's keyword defaults it ran with (plain values only)."""
    import inspect

    return {k: p.default for k, p in inspect.signature(cls.__init__).parameters.items()
            if isinstance(p.default, (int, float, str, bool))}


def main(train_path: str, out_path: str, rows: int, stats_path: str) -> None:
    import pandas as pd
    import torch

    torch.set_num_threads(1)  # the same single CPU thread as the generators it is compared with
    from synthcity.plugins import Plugins

    frame = pd.read_parquet(train_path)
    plugin = Plugins().get("ddpm")
    cpu, wall = time.process_time(), time.perf_counter()
    plugin.fit(frame)
    fit_cpu, fit_wall = time.process_time() - cpu, time.perf_counter() - wall
    cpu, wall = time.process_time(), time.perf_counter()
    synthetic = plugin.generate(count=rows).dataframe()
    sample_cpu, sample_wall = time.process_time() - cpu, time.perf_counter() - wall
    synthetic.to_parquet(out_path, index=False)
    stats = {"fit_cpu_s": fit_cpu, "fit_wall_s": fit_wall, "sample_cpu_s": sample_cpu, "sample_wall_s": sample_wall,
             "rows": len(synthetic), "synthcity": version("synthcity"), "torch": torch.__version__,
             "params": defaults(type(plugin))}
    with open(stats_path, "w") as f:
        json.dump(stats, f, indent=2, default=str)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4])
