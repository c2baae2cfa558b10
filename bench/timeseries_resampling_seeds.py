"""Sunspots long paths with and without continuation resampling (not a test; issue #12):
timeseries/diffusion at default parameters on statsmodels sunspots as bench/timeseries.py
--long cuts it (windows of 24 at stride 2, last 20 % of time held out), fitted with
`resamplings: 1` (model_version 7's sampler) and 3 (the default since model_version 8), then per fit 4,000-step
paths at sample seeds 1-3: the judge on the path's pieces against the training windows
(floor 0.069 in bench/results/timeseries_long.json) and the seam check. One 10,000-step
path's seam judge reads 0.075 (v7) / 0.097 (v8) against its margin 0.08: this is its spread.

    PYTHONPATH=<source tree> python bench/timeseries_resampling_seeds.py bench/results/timeseries_resampling_seeds.json
"""

import json
import sys
import time

import torch

import timeseries as bench
from generators import get
from pipeline.core.plan import plan_chunks
from pipeline.core.spec import SourceSpec
from pipeline.sources.timeseries import load_timeseries
from pipeline.split import split_source
from validators.metrics.representation import TabularEncoder
from validators.metrics.seams import seam_check
from validators.metrics.timeseries import discriminative_score

LENGTH = 4000


def main(out_path: str) -> None:
    torch.set_num_threads(1)
    frame, time_col, columns, win, stride = bench.long_series()["sunspots"]
    spec = SourceSpec(modality="timeseries", path="sunspots.csv", time=time_col, window=win, stride=stride)
    train, _ = split_source(load_timeseries(spec, frame.copy()), 0.2, seed=0)
    encoder = TabularEncoder(train.profile, train.features).fit(train.frame)
    real = bench.sequences(train, encoder)
    scale = lambda f: ((f[columns] - frame[columns].mean()) / frame[columns].std()).to_numpy(float)  # noqa: E731
    report = {"length": LENGTH, "runs": []}
    for resamplings in (1, 3):
        model = get("timeseries/diffusion")(device="cpu", resamplings=resamplings).fit(train)
        _, overlap, hop = model.path_layout()
        for seed in (1, 2, 3):
            cpu = time.process_time()
            path = model.sample_chunk(plan_chunks(1, 1, seed=seed)[0], length=LENGTH)
            run = {"resamplings": resamplings, "seed": seed, "path_cpu_s": round(time.process_time() - cpu, 1),
                   "path_pieces_discriminative": round(discriminative_score(real, bench.sequences(train.as_windows(path), encoder), seed=0), 4),
                   **seam_check(scale(path), model.path_seams(LENGTH), hop * 2 // 3, overlap * 2 // 3)}
            report["runs"].append(run)
            print(json.dumps(run), flush=True)
    json.dump(report, open(out_path, "w"), indent=2)


if __name__ == "__main__":
    main(sys.argv[1])
