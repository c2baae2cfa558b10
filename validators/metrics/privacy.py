"""Privacy metrics: does the synthetic data give away the training records?

The gate rests on attacks; DCR and NNDR are reported beside them as sanity checks (a
distance check alone can pass while an attack succeeds: the "DCR delusion",
arXiv 2505.01524). The holdout is the yardstick throughout: real data the generator
never saw, so a generator that leaks nothing treats it like train.

| metric (privacy.*)                 | what it is                                        | tabular | timeseries          | image |
|------------------------------------|---------------------------------------------------|---------|---------------------|-------|
| membership_auc, _tpr_at_1fpr       | density-ratio attack (membership.py)              | rows    | sequences           | images |
| singling_out/linkability/inference_risk (+ _ci_low/_ci_high) | anonymeter, holdout as control (anonymity.py) | rows | sequences flattened | no: pixels are no attributes |
| column_leak_excess                 | real high-cardinality values reused (leaks.py)    | columns | static + feature columns | no: no columns |
| near_copy_share                    | records closer to train than unseen real data gets (holdout; windows: train a gap apart) | rows | sequences (replayed paths) | images |
| exact_copy_excess, exact_copy_rate | identical encoded records                         | rows    | sequences           | images |
| dcr_share, nndr, nndr_vs_holdout   | distance to closest record, train vs holdout      | rows    | sequences           | images |

Vectors come from `representation.fit_vectors`; record attacks and distances sample at
most the sizes below so 100k records x 20 columns stay within the validation budget
(bench/validation.py)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from pipeline.core.data import ImageData, SourceData, TimeSeriesData, gap_windows
from pipeline.core.threads import limited_threads
from validators.metrics.membership import membership_attack
from validators.metrics.neighbours import nearest, nearest_apart, sample_rows

MAX_QUERIES = 10_000  # synthetic records scored by DCR / NNDR / near copies: standard error of a share < 0.005
MAX_REFERENCE = 50_000  # train / holdout / synthetic records a query is compared against
MAX_ATTACK = 5_000  # members and non-members each in the membership-inference attack: AUC standard error < 0.006
COPY_TOL = 1e-6  # distance below which two encoded records count as the same record
NEAR_QUANTILE = 0.05  # a synthetic record nearer to train than 95 % of holdout records are is a near copy


def row_hashes(x: np.ndarray) -> np.ndarray:
    """One uint64 per row of an encoded array: equal rows, equal hashes."""
    return pd.util.hash_pandas_object(pd.DataFrame(x), index=False).to_numpy()


def exact_copy_rate(train: np.ndarray, records: np.ndarray) -> float:
    """Fraction of `records` identical to some training record (all of train, by hashing)."""
    return _copy_rate(row_hashes(train), records)


def _copy_rate(train_hashes: np.ndarray, records: np.ndarray) -> float:
    return float(np.isin(row_hashes(records), train_hashes).mean())


def dcr_share(train: np.ndarray, holdout: np.ndarray, synthetic: np.ndarray) -> float:
    """Share of synthetic records whose closest real record is in train rather than in the
    holdout, corrected for the sizes of the two sets so that 0.5 means "no preference".

    If synthetic records are exchangeable with real ones, the closest of the
    |T| + |H| real records is in train with probability p0 = |T| / (|T| + |H|). The raw
    share s (ties count half) is mapped piecewise-linearly so that 0 -> 0, p0 -> 0.5,
    1 -> 1. Unlike equal-sized subsamples this uses every reference record, so a
    generator that copies its training data scores ~1, not diluted by the subsampling.
    """
    return _dcr_share(nearest(train, synthetic)[:, 0], nearest(holdout, synthetic)[:, 0], len(train), len(holdout))


def _dcr_share(d_train: np.ndarray, d_hold: np.ndarray, n_train: int, n_hold: int) -> float:
    """`dcr_share` from each synthetic record's distance to its closest train / holdout record."""
    share = float(np.mean((d_train < d_hold) + 0.5 * (d_train == d_hold)))
    p0 = n_train / (n_train + n_hold)
    return 0.5 * share / p0 if share <= p0 else 0.5 + 0.5 * (share - p0) / (1.0 - p0)


def nndr(train: np.ndarray, records: np.ndarray) -> float:
    """Mean nearest-neighbour distance ratio d1 / d2 of `records` to train (0 when d1 = 0).

    Near 0: a record sits right on one training record and far from the rest, the mark
    of memorisation; near 1: it is about as close to several training records."""
    return _nndr(nearest(train, records, k=2))


def _nndr(d: np.ndarray) -> float:
    """`nndr` from the (records, 2) distances to the two nearest training records."""
    ratio = np.divide(d[:, 0], d[:, 1], out=np.zeros(len(d)), where=d[:, 1] > 0)
    return float(np.mean(np.where(d[:, 0] <= COPY_TOL, 0.0, ratio)))


def near_copy_share(d_synthetic: np.ndarray, d_holdout: np.ndarray) -> float:
    """Share of synthetic records closer to their nearest training record than the
    NEAR_QUANTILE of holdout records are to theirs. A record the generator made up is
    no closer to train than unseen real data, so chance is NEAR_QUANTILE (0.05); a
    replayed sequence or a lightly perturbed copy sits far below every holdout distance
    and scores ~1. Catches what the share-based DCR dilutes: a few records, or whole
    sequences, traced from the training data. `d_holdout` may be any real records'
    distances that a made-up record's should match (`apart_distances` for windows)."""
    cut = np.quantile(d_holdout, NEAR_QUANTILE)
    return float(np.mean(d_synthetic < cut))


def apart_distances(train: TimeSeriesData, vectors: np.ndarray, *, seed: int = 0) -> np.ndarray | None:
    """Windows of one long series: each training window's distance to the nearest
    training window as far from it in time as the split keeps the holdout (more than
    `gap_windows` windows), the yardstick of near copies instead of the holdout's.

    The holdout is a few blocks of time; on a trending series its windows are far from
    train because their period is, not because the generator left them alone. On
    AER/USMacroG (windows of 8 quarters) the holdout block's distances to train were
    8.2-13.3 while a real block between two training stretches was 4.8-9.3 away: that
    real, unseen block, and a model fitted on it, scored near_copy_share 1.0. Training
    windows a gap apart are real records at the holdout's separation from every training
    period alike. None for other data (or when no two training windows are that far apart)."""
    if train.windows is None:
        return None
    rng = np.random.default_rng(seed)
    rows = np.arange(len(vectors)) if len(vectors) <= MAX_REFERENCE else rng.choice(len(vectors), MAX_REFERENCE, replace=False)
    positions = np.sort(train.entities()).astype(np.int64)[rows]  # vectors are in entity order (SeriesEncoder)
    d = nearest_apart(vectors[rows], positions, gap_windows(*train.windows) + 1, MAX_QUERIES, rng)
    return d if len(d) else None


@limited_threads()
def privacy_metrics(train: np.ndarray, holdout: np.ndarray, synthetic: np.ndarray, *, seed: int = 0,
                    near_reference: np.ndarray | None = None) -> dict[str, float]:
    """The record-level metrics on encoded records (rows = records), every modality.
    DCR / NNDR / near copies score at most MAX_QUERIES synthetic records against at most
    MAX_REFERENCE train and holdout records; the attack uses MAX_ATTACK members and as
    many non-members against at most MAX_REFERENCE synthetic and holdout records; exact
    copies are checked against all of train. Near copies are judged against
    `near_reference` (unseen real records' distances to train) when given, else the holdout's."""
    rng = np.random.default_rng(seed)
    queries = sample_rows(synthetic, MAX_QUERIES, rng)
    train_ref, hold_ref = sample_rows(train, MAX_REFERENCE, rng), sample_rows(holdout, MAX_REFERENCE, rng)
    train_hashes = row_hashes(train)  # hashed once for both copy rates
    copies, natural = _copy_rate(train_hashes, synthetic), _copy_rate(train_hashes, holdout)
    # the queries' two nearest training records serve NNDR, and the first of them DCR and near copies
    d_train = nearest(train_ref, queries, k=2)
    d_hold_train = nearest(train_ref, sample_rows(holdout, MAX_QUERIES, rng), k=2)
    syn_nndr, hold_nndr = _nndr(d_train), _nndr(d_hold_train)
    attack = membership_attack(train_ref, hold_ref, sample_rows(synthetic, MAX_REFERENCE, rng), n_attack=MAX_ATTACK,
                               rng=rng)
    return {
        "privacy.exact_copy_rate": copies,
        "privacy.exact_copy_excess": max(0.0, copies - natural),
        "privacy.dcr_share": _dcr_share(d_train[:, 0], nearest(hold_ref, queries)[:, 0], len(train_ref), len(hold_ref)),
        "privacy.nndr": syn_nndr,
        "privacy.nndr_vs_holdout": syn_nndr / hold_nndr if hold_nndr > 0 else float("nan"),
        "privacy.near_copy_share": near_copy_share(d_train[:, 0], d_hold_train[:, 0] if near_reference is None
                                                   else near_reference),
        **attack,
    }


def _without(data: SourceData, columns: list[str]) -> SourceData:
    """`data` without `columns`. High-cardinality columns are left out of the record
    vectors: one-hot over unique IDs puts every unseen record at the same spot and drowns
    the other columns (distances then say "closer to the holdout" for fresh IDs); their
    reuse is judged exactly by the column-leak check instead."""
    if not columns:
        return data
    drop = set(columns)
    profile = data.profile.model_copy(update={"columns": [c for c in data.profile.columns if c.name not in drop]})
    changes = {"frame": data.frame.drop(columns=list(drop)), "profile": profile}
    if isinstance(data, TimeSeriesData):
        changes |= {"static": [c for c in data.static if c not in drop], "features": [c for c in data.features if c not in drop]}
    return replace(data, **changes)


def all_privacy_metrics(
    source: SourceData, train: SourceData, holdout: SourceData, synthetic: SourceData, *, seed: int = 0
) -> dict[str, float]:
    """Every privacy metric that applies to the modality (table in the module docstring):
    record-level metrics on encoded vectors, then, for tables and series, the column
    leaks and anonymeter's attacks on the records themselves."""
    from validators.metrics.representation import fit_vectors

    if isinstance(source, ImageData):
        return privacy_metrics(*fit_vectors(train, holdout, synthetic), seed=seed)
    from validators.metrics.anonymity import anonymeter_risks
    from validators.metrics.leaks import column_leak_excess, high_cardinality_columns

    leaky = high_cardinality_columns(source)
    vectors = fit_vectors(*(_without(d, leaky) for d in (train, holdout, synthetic)))
    reference = apart_distances(train, vectors[0], seed=seed) if isinstance(train, TimeSeriesData) else None
    metrics = privacy_metrics(*vectors, seed=seed, near_reference=reference)
    metrics["privacy.column_leak_excess"] = column_leak_excess(source, train, holdout, synthetic)
    metrics.update(anonymeter_risks(source, train, holdout, synthetic, seed=seed))
    return metrics
