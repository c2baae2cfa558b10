"""Plain windows' autocorrelation error and long paths' seams of timeseries/diffusion on
World Bank fertility across seeds (not a test): fit seeds 0 and 1 (split by entity, 20 %
held out, default parameters), per fit the autocorrelation error
(validators/metrics/timeseries.py) of 500 sampled sequences at sample seeds 1-6, and the
seam increment gap and median level of 3 continued 2,400-year paths (the slow test
test_timeseries_panel_length.py's configuration at fit seed 0). One seed's numbers vary by
2-3x (sample seed 1 reads 0.007-0.014, the rest 0.018-0.030), hence the spread.

    PYTHONPATH=<source tree> python bench/timeseries_seeds.py bench/results/timeseries_seeds_vN.json

(run with PYTHONPATH pointing at the tree whose generators are measured: a checkout of an
earlier commit measures that commit's model)."""

import json
import sys
import time

import numpy as np
import pandas as pd
import torch

import generators.timeseries.diffusion as diffusion
from generators import get
from pipeline.core.plan import plan_chunks
from pipeline.core.spec import SourceSpec
from pipeline.sources import load_source
from pipeline.split import split_source
from validators.metrics.seams import seam_check
from validators.metrics.timeseries import autocorrelation_diff

torch.set_num_threads(1)
data = load_source(SourceSpec(modality="timeseries", path="data/sources/fertility.csv", entity="country", time="year"))
train, _ = split_source(data, 0.2, seed=0)
mean, sd = data.frame["fertility"].mean(), data.frame["fertility"].std()
out = {"model_version": diffusion.DiffusionGenerator.model_version, "fits": []}
for fit_seed in (0, 1):
    m = get("timeseries/diffusion")(device="cpu", seed=fit_seed)
    c = time.process_time()
    m.fit(train)
    fit_cpu = time.process_time() - c
    acf = [autocorrelation_diff(train, train.with_frame(pd.concat(m.sample(500, seed=s, batch_size=500), ignore_index=True)))
           for s in range(1, 7)]
    W, O, H = m.path_layout()
    paths = m.sample_chunk(plan_chunks(3, 3, seed=1)[0], length=2400)
    gaps, meds = [], []
    for _, p in paths.groupby("country", sort=False):
        v = p["fertility"].to_numpy(float)
        gaps.append(seam_check(((v - mean) / sd)[:, None], m.path_seams(2400), H * 2 // 3, O * 2 // 3)["seam_increment_gap"])
        meds.append(float(np.median(v)))
    out["fits"].append({"fit_seed": fit_seed, "fit_cpu_s": round(fit_cpu, 1), "autocorr_diff": [round(a, 4) for a in acf],
                        "autocorr_mean": round(float(np.mean(acf)), 4), "seam_gaps": [round(g, 3) for g in gaps],
                        "path_medians": [round(x, 3) for x in meds]})
    print(json.dumps(out["fits"][-1]), flush=True)
json.dump(out, open(sys.argv[1], "w"), indent=2)
