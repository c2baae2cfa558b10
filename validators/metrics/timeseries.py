"""Time-series fidelity: do synthetic sequences move like the real ones?

Real = the training split. Sequences are the per-entity step vectors of
`representation.TabularEncoder` (features standardised / one-hot, fitted on train).
The two learned scores follow TimeGAN's evaluation with the fixes PITFALLS asks for: a
judge with hidden size >= 16, and scores read against a real-vs-real floor (the
predictive score as a ratio to train-on-real)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from scipy.stats import ks_2samp
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from pipeline.core.data import TimeSeriesData
from pipeline.core.seeding import seeded
from validators.metrics.representation import NUMERIC_KINDS, TabularEncoder, numeric_values
from validators.metrics.tabular import column_similarity
from pipeline.core.threads import limited_threads

MAX_SEQUENCES = 1_000  # sequences per side for the two learned scores
MAX_STEPS = 24  # learned scores see a random window of at most this many steps (cost is linear in it)
HIDDEN = 24  # GRU width: >= 16 (PITFALLS: hidden = features / 2 cannot tell noise from data)
STEPS = 200  # optimiser steps, fixed so a small dataset is trained as hard as a large one
BATCH = 32
LEARNING_RATE = 1e-2
MAX_LAG = 5  # autocorrelation lags 1..MAX_LAG


# ---- helpers: sequences -------------------------------------------------------------


def sequences(data: TimeSeriesData, encoder: TabularEncoder) -> list[np.ndarray]:
    """One (steps, dims) float32 array per entity, in time order."""
    frame = data.frame.sort_values([data.entity, data.time], kind="stable")
    encoded = encoder.transform(frame)
    ids = frame[data.entity].to_numpy()
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    return np.split(encoded, starts[1:])


def _pad(seqs: list[np.ndarray], rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Zero-padded (N, T, D) tensor and lengths; long sequences cropped to MAX_STEPS."""
    crops = []
    for s in seqs:
        start = rng.integers(0, len(s) - MAX_STEPS + 1) if len(s) > MAX_STEPS else 0
        crops.append(s[start : start + MAX_STEPS])
    lengths = torch.tensor([len(c) for c in crops])
    x = torch.zeros(len(crops), int(lengths.max()), crops[0].shape[1])
    for i, c in enumerate(crops):
        x[i, : len(c)] = torch.from_numpy(c)
    return x, lengths


def _pick(seqs: list[np.ndarray], n: int, rng: np.random.Generator) -> list[np.ndarray]:
    return seqs if len(seqs) <= n else [seqs[i] for i in rng.choice(len(seqs), n, replace=False)]


# ---- building block: a small recurrent net ------------------------------------------


class SequenceNet(nn.Module):
    """GRU over padded sequences, then a linear head: on the last valid step (`per_step`
    False, a judge) or on every step (`per_step` True, a next-step predictor)."""

    def __init__(self, dims: int, out: int, hidden: int = HIDDEN):
        super().__init__()
        self.gru = nn.GRU(dims, hidden, batch_first=True)
        self.head = nn.Linear(hidden, out)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor, per_step: bool = False) -> torch.Tensor:
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        steps, last = self.gru(packed)
        if not per_step:
            return self.head(last[-1])
        return self.head(pad_packed_sequence(steps, batch_first=True, total_length=x.shape[1])[0])


def _fit(net: nn.Module, loss_of, n: int, seed: int) -> None:
    """STEPS Adam steps on random mini-batches of indices 0..n-1; `loss_of(idx)` is the loss."""
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(net.parameters(), lr=LEARNING_RATE)
    net.train()
    for _ in range(STEPS):
        idx = torch.randint(0, n, (min(BATCH, n),), generator=gen)
        opt.zero_grad()
        loss_of(idx).backward()
        opt.step()
    net.eval()


# ---- scores -------------------------------------------------------------------------


def discriminative_score(real: list[np.ndarray], synthetic: list[np.ndarray], *, seed: int = 0) -> float:
    """|accuracy - 0.5| of a GRU judge telling real from synthetic sequences, two-fold
    cross-validated on a balanced sample. 0 = indistinguishable, 0.5 = always told apart.
    Folds are stratified (each class split in half on its own): with random folds a judge
    that learns nothing and predicts one class scores the folds' class imbalance."""
    rng = np.random.default_rng(seed)
    n = min(len(real), len(synthetic), MAX_SEQUENCES)
    x, lengths = _pad(_pick(real, n, rng) + _pick(synthetic, n, rng), rng)
    y = torch.cat([torch.ones(n), torch.zeros(n)])
    folds = torch.from_numpy(np.concatenate([rng.permutation(n) % 2, rng.permutation(n) % 2]))
    correct = 0
    for fold in (0, 1):
        with seeded(seed + fold):  # initialisation and training; the caller's RNG state comes back
            fit_idx, test_idx = torch.nonzero(folds != fold)[:, 0], torch.nonzero(folds == fold)[:, 0]
            net = SequenceNet(x.shape[2], 1)
            bce = nn.BCEWithLogitsLoss()
            _fit(net, lambda i: bce(net(x[fit_idx[i]], lengths[fit_idx[i]])[:, 0], y[fit_idx[i]]), len(fit_idx), seed + fold)
            with torch.no_grad():
                pred = net(x[test_idx], lengths[test_idx])[:, 0] > 0
            correct += int((pred == y[test_idx].bool()).sum())
    return abs(correct / (2 * n) - 0.5)


def predictive_mae(fit_on: list[np.ndarray], test_on: list[np.ndarray], *, seed: int = 0) -> float:
    """Mean absolute error (standardised units) of a GRU trained on `fit_on` to predict each
    next step from the steps before it, measured on `test_on`. Sequences of one step
    carry no next step and are left out."""
    rng = np.random.default_rng(seed)
    fit_on, test_on = [s for s in fit_on if len(s) > 1], [s for s in test_on if len(s) > 1]
    if not fit_on or not test_on:
        return float("nan")
    x, lengths = _pad(_pick(fit_on, MAX_SEQUENCES, rng), rng)
    xt, lengths_t = _pad(_pick(test_on, MAX_SEQUENCES, rng), rng)

    def masked_error(net: SequenceNet, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        pred = net(x[:, :-1], (lengths - 1).clamp(min=1), per_step=True)
        mask = (torch.arange(x.shape[1] - 1)[None, :] < (lengths - 1)[:, None]).unsqueeze(-1)
        return ((pred - x[:, 1:]).abs() * mask).sum() / (mask.sum() * x.shape[2])

    with seeded(seed):  # initialisation and training; the caller's RNG state comes back
        net = SequenceNet(x.shape[2], x.shape[2])
        _fit(net, lambda i: masked_error(net, x[i], lengths[i]), len(x), seed)
    with torch.no_grad():
        return float(masked_error(net, xt, lengths_t))


def mean_autocorrelation(data: TimeSeriesData, max_lag: int = MAX_LAG) -> np.ndarray:
    """(numeric features, lags 1..max_lag) autocorrelation, averaged over entities long
    and varied enough to have one (NaN where none is)."""
    cols = [c.name for c in data.profile.of_kind(*NUMERIC_KINDS) if c.name in data.features]
    frame = data.frame.sort_values([data.entity, data.time], kind="stable")
    out = np.full((len(cols), max_lag), np.nan)
    for j, col in enumerate(cols):
        sums, counts = np.zeros(max_lag), np.zeros(max_lag)
        for _, values in frame.groupby(data.entity, sort=False)[col]:
            x = numeric_values(values)
            x = x[~np.isnan(x)] - np.nanmean(x) if np.isfinite(x).any() else x[:0]
            denom = float(x @ x)
            if denom <= 0:
                continue
            for k in range(1, min(max_lag, len(x) - 1) + 1):
                sums[k - 1] += float(x[:-k] @ x[k:]) / denom
                counts[k - 1] += 1
        out[j] = np.divide(sums, counts, out=np.full(max_lag, np.nan), where=counts > 0)
    return out


def autocorrelation_diff(real: TimeSeriesData, synthetic: TimeSeriesData) -> float:
    """Mean absolute difference of the per-feature autocorrelations at lags 1..MAX_LAG."""
    diff = np.abs(mean_autocorrelation(real) - mean_autocorrelation(synthetic))
    return float(np.nanmean(diff)) if np.isfinite(diff).any() else float("nan")


def cross_correlation_diff(real: TimeSeriesData, synthetic: TimeSeriesData) -> float:
    """Mean absolute difference of the within-entity correlation between numeric features
    (each entity's mean removed), at lag 0 and lag 1 (feature a now vs feature b one step
    later). NaN with fewer than two numeric features."""
    cols = [c.name for c in real.profile.of_kind(*NUMERIC_KINDS) if c.name in real.features]
    if len(cols) < 2:
        return float("nan")

    def lagged(data: TimeSeriesData) -> np.ndarray:
        frame = data.frame.sort_values([data.entity, data.time], kind="stable")
        ids = frame[data.entity].to_numpy()
        now = pd.DataFrame({c: numeric_values(frame[c]) for c in cols})
        both = pd.concat([now, now.groupby(ids, sort=False).shift(-1).add_suffix("+1")], axis=1)
        # within-entity: remove each entity's level, so co-movement is measured, not firm size
        both = (both - both.groupby(ids, sort=False).transform("mean")).corr().to_numpy()
        k = len(cols)
        return np.r_[both[:k, :k][np.triu_indices(k, 1)], both[:k, k:].ravel()]

    diff = np.abs(lagged(real) - lagged(synthetic))
    return float(np.nanmean(diff)) if np.isfinite(diff).any() else float("nan")


def length_distance(real: TimeSeriesData, synthetic: TimeSeriesData) -> float:
    """Kolmogorov-Smirnov statistic between the sequence-length distributions (0 = same)."""
    a = real.frame.groupby(real.entity).size().to_numpy()
    b = synthetic.frame.groupby(synthetic.entity).size().to_numpy()
    return float(ks_2samp(a, b).statistic)


@limited_threads()
def timeseries_fidelity(
    train: TimeSeriesData, holdout: TimeSeriesData, synthetic: TimeSeriesData, *, seed: int = 0
) -> dict[str, float]:
    """Every time-series fidelity metric, real = train; the predictive score is tested on
    the holdout, and also reported against a GRU trained on real data (ratio 1 = as good).
    Marginals compare pooled feature values and one row per entity for static columns."""
    encoder = TabularEncoder(train.profile, train.features).fit(train.frame)
    real, syn, hold = (sequences(d, encoder) for d in (train, synthetic, holdout))
    tstr, trtr = predictive_mae(syn, hold, seed=seed), predictive_mae(real, hold, seed=seed)
    similarity = column_similarity(train.frame, synthetic.frame, train.profile.model_copy(update={
        "columns": [c for c in train.profile.columns if c.name in train.features]}))
    if train.static:
        statics = train.profile.model_copy(update={"columns": [c for c in train.profile.columns if c.name in train.static]})
        firsts = [d.frame.groupby(d.entity, sort=False).head(1) for d in (train, synthetic)]
        similarity.update(column_similarity(*firsts, statics))
    return {
        "fidelity.discriminative_score": discriminative_score(real, syn, seed=seed),
        "fidelity.predictive_mae": tstr,
        "fidelity.predictive_ratio": tstr / trtr if trtr > 0 else float("nan"),
        "fidelity.autocorrelation_diff": autocorrelation_diff(train, synthetic),
        "fidelity.cross_correlation_diff": cross_correlation_diff(train, synthetic),
        "fidelity.length_distance": length_distance(train, synthetic),
        "fidelity.column_similarity_mean": float(np.mean(list(similarity.values()))) if similarity else float("nan"),
        "fidelity.column_similarity_min": min(similarity.values()) if similarity else float("nan"),
    }
