"""Why long fertility paths drift (not a test): timeseries/diffusion (default parameters,
fertility split by entity, 20 % held out) continues real training histories (26 steps
ending every third step of every complete country) and its mean change over the next
steps is set beside the real one, per bin of the history's last value in the encoder's
Gaussian units; then the continuation of flat histories at fixed levels. A model whose
drift does not depend on the level as the real one does walks a long path to an edge.

    PYTHONPATH=<source tree> python bench/timeseries_drift_probe.py bench/results/timeseries_drift_probe_vN.json
"""

import json
import sys

import numpy as np
import torch

import generators.timeseries.diffusion as diffusion
from generators import get
from pipeline.core.spec import SourceSpec
from pipeline.sources import load_source
from pipeline.split import split_source

BINS = [-6, -2.5, -1.5, -0.75, 0, 0.75, 1.5, 2.5, 6]
torch.set_num_threads(1)
data = load_source(SourceSpec(modality="timeseries", path="data/sources/fertility.csv", entity="country", time="year"))
train, _ = split_source(data, 0.2, seed=0)
m = get("timeseries/diffusion")(device="cpu").fit(train)
c, (W, O, H) = m.codec_, m.path_layout()
b = c.encode(train)
known, given, rows, anchor, real, steps = [], [], [], [], [], []
for i in range(len(b)):
    L = int(b.mask[i].sum())
    if not b.mask[i][:L].all():
        continue
    for s in range(0, L - O - 1, 3):
        k = torch.zeros(W, c.n_features)
        k[: min(W, L - s)] = b.x[i, s : min(s + W, L)]
        g = torch.zeros(W, c.n_features)
        g[:O] = 1
        known.append(k), given.append(g), rows.append(i)
        nxt = b.x[i, s + O : min(s + W, L), 0]
        anchor.append(b.x[i, s + O - 1, 0].item()), real.append(nxt.mean().item() - anchor[-1]), steps.append(len(nxt))
cond = c.plan_matrix(np.array(rows), lengths=np.full(len(rows), c.max_len))
out = m._generate_given(cond, torch.stack(known), torch.stack(given), torch.Generator().manual_seed(0))
anchor, real = np.array(anchor), np.array(real)
model = np.array([out[j, O : O + steps[j], 0].mean().item() - anchor[j] for j in range(len(rows))])
idx = np.digitize(anchor, BINS)
report = {"model_version": diffusion.DiffusionGenerator.model_version, "histories": len(rows), "bins": []}
for k in range(1, len(BINS)):
    s = idx == k
    if s.any():
        report["bins"].append({"level": [BINS[k - 1], BINS[k]], "histories": int(s.sum()),
                               "real_mean_change": round(float(real[s].mean()), 3),
                               "model_mean_change": round(float(model[s].mean()), 3)})
report["flat_history"] = {}
for level in (-5.2, -3.0, 3.0, 5.2):
    k = torch.full((8, W, c.n_features), level)
    g = torch.zeros_like(k)
    g[:, :O] = 1
    report["flat_history"][str(level)] = round(m._generate_given(cond[:8], k, g, torch.Generator().manual_seed(0))[:, O:, 0].mean().item(), 3)
print(json.dumps(report, indent=1))
json.dump(report, open(sys.argv[1], "w"), indent=2)
