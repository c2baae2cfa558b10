"""One-step spikes at the seams of long fertility paths (not a test; issue #12): the
configuration of the slow seam tests (test_timeseries_panel_length.py: default
parameters, fertility split by entity, 20 % held out, fit seed 0), then
- the seam increment gap of the tests' 3 continued 2,400-year paths (plan seed 1);
- over `ENTITIES` more paths (plan seed 2), in the encoder's Gaussian units, the share of
  first new steps after a seam that move more than `SPIKE` from the last given step,
  against the same share over every other step of the paths and over the real training
  sequences' one-step changes, and the largest such jump.

    PYTHONPATH=<source tree> python bench/timeseries_seam_spike.py bench/results/timeseries_seam_spike_vN.json
"""

import json
import sys
import time

import numpy as np
import torch

import generators.timeseries.diffusion as diffusion
from generators import get
from pipeline.core.plan import plan_chunks
from pipeline.core.spec import SourceSpec
from pipeline.sources import load_source
from pipeline.split import split_source
from validators.metrics.seams import seam_check

SPIKE = 0.5  # encoded units: a one-step change the real series make in 0.1 % of steps
LENGTH, ENTITIES = 2400, 40


def shares(jumps: np.ndarray) -> dict:
    """Share of |jumps| over SPIKE, the 99.9 % quantile and the largest."""
    a = np.abs(jumps)
    return {"n": int(a.size), "share_over": round(float((a > SPIKE).mean()), 5),
            "q999": round(float(np.quantile(a, 0.999)), 3), "max": round(float(a.max()), 3)}


def encoded_paths(model) -> np.ndarray:
    """(ENTITIES, LENGTH) the paths of plan seed 2 in the encoder's units, as decoded."""
    seen, decode = [], model.codec_.decode
    model.codec_.decode = lambda x, *a, **k: (seen.append(x), decode(x, *a, **k))[1]
    try:
        model.sample_chunk(plan_chunks(ENTITIES, ENTITIES, seed=2)[0], length=LENGTH)
    finally:
        del model.codec_.decode
    return seen[0][..., 0]


def main(out_path: str) -> None:
    torch.set_num_threads(1)
    data = load_source(SourceSpec(modality="timeseries", path="data/sources/fertility.csv", entity="country", time="year"))
    train, _ = split_source(data, 0.2, seed=0)
    model = get("timeseries/diffusion")(device="cpu")
    cpu = time.process_time()
    model.fit(train)
    fit_cpu = time.process_time() - cpu
    window, overlap, hop = model.path_layout()
    mean, sd = data.frame["fertility"].mean(), data.frame["fertility"].std()
    seams = model.path_seams(LENGTH)
    cpu = time.process_time()
    gaps = [seam_check(((p["fertility"].to_numpy(float) - mean) / sd)[:, None], seams, hop * 2 // 3,
                       overlap * 2 // 3)["seam_increment_gap"]
            for _, p in model.sample_chunk(plan_chunks(3, 3, seed=1)[0], length=LENGTH).groupby("country", sort=False)]
    paths_cpu = time.process_time() - cpu
    encoded = encoded_paths(model)
    step = np.diff(encoded, axis=1)  # step[:, t - 1] = x[t] - x[t - 1]
    at = np.isin(np.arange(1, LENGTH), seams)
    b = model.codec_.encode(train)
    x, m = b.x[..., 0].numpy(), b.mask.numpy().astype(bool)
    real = np.diff(x, axis=1)[m[:, 1:] & m[:, :-1]]
    report = {"model_version": diffusion.DiffusionGenerator.model_version, "fit_cpu_s": round(fit_cpu, 1),
              "three_paths_cpu_s": round(paths_cpu, 1), "seam_increment_gaps": [round(g, 3) for g in gaps],
              "first_new_step": shares(step[:, at]), "other_steps": shares(step[:, ~at]), "real_steps": shares(real)}
    print(json.dumps(report), flush=True)
    json.dump(report, open(out_path, "w"), indent=2)


if __name__ == "__main__":
    main(sys.argv[1])
