"""Privacy metrics on record vectors (see `representation.py`): does the synthetic data
give away the training records?

Four views, because each alone can be fooled (PITFALLS): exact copies, where synthetic
records sit between train and holdout (DCR share), how uniquely close they are to one
training record (NNDR), and a membership-inference attack that uses the synthetic data
to tell training records from holdout records. The holdout is the yardstick: it is real
data the generator never saw, so a generator that leaks nothing treats it like train.

Nearest neighbours use scikit-learn's `NearestNeighbors` queried in chunks: memory stays
O(chunk x reference), never records x records."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score
from sklearn.neighbors import NearestNeighbors

from pipeline.core.threads import limited_threads

QUERY_CHUNK = 4096  # query rows per kneighbors call: bounds the distance block in memory
MAX_QUERIES = 10_000  # synthetic records scored by DCR / NNDR: standard error of a share < 0.005
MAX_REFERENCE = 50_000  # train / holdout / synthetic records a query is compared against
MAX_ATTACK = 5_000  # members and non-members each in the membership-inference attack
COPY_TOL = 1e-6  # distance below which two encoded records count as the same record


def sample_rows(x: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """At most `n` rows of `x`, drawn without replacement."""
    return x if len(x) <= n else x[rng.choice(len(x), n, replace=False)]


def nearest(reference: np.ndarray, queries: np.ndarray, k: int = 1) -> np.ndarray:
    """(len(queries), k) Euclidean distances to the k nearest reference rows, ascending."""
    nn = NearestNeighbors(n_neighbors=k).fit(reference)
    blocks = [nn.kneighbors(queries[i : i + QUERY_CHUNK])[0] for i in range(0, len(queries), QUERY_CHUNK)]
    return np.concatenate(blocks) if blocks else np.empty((0, k))


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


def membership_auc(members: np.ndarray, non_members: np.ndarray, synthetic: np.ndarray) -> float:
    """ROC AUC of the attack "a record closer to the synthetic data is a training member".

    0.5: the synthetic data tells an attacker nothing about who was trained on; 1.0:
    every training record has a synthetic twin."""
    d = nearest(synthetic, np.concatenate([members, non_members]))[:, 0]
    labels = np.r_[np.ones(len(members)), np.zeros(len(non_members))]
    return float(roc_auc_score(labels, -d))


@limited_threads()
def privacy_metrics(train: np.ndarray, holdout: np.ndarray, synthetic: np.ndarray, *, seed: int = 0) -> dict[str, float]:
    """All privacy metrics on encoded records (rows = records). Samples: DCR / NNDR score at
    most MAX_QUERIES synthetic records against at most MAX_REFERENCE train and holdout
    records; the attack uses MAX_ATTACK members and as many non-members against at most
    MAX_REFERENCE synthetic records; exact copies are checked against all of train."""
    rng = np.random.default_rng(seed)
    queries = sample_rows(synthetic, MAX_QUERIES, rng)
    train_ref, hold_ref = sample_rows(train, MAX_REFERENCE, rng), sample_rows(holdout, MAX_REFERENCE, rng)
    n_attack = min(len(train), len(holdout), MAX_ATTACK)
    members, non_members = sample_rows(train, n_attack, rng), sample_rows(holdout, n_attack, rng)
    train_hashes = row_hashes(train)  # hashed once for both copy rates
    copies, natural = _copy_rate(train_hashes, synthetic), _copy_rate(train_hashes, holdout)
    # the queries' two nearest training records serve NNDR, and the first of them DCR
    d_train = nearest(train_ref, queries, k=2)
    syn_nndr, hold_nndr = _nndr(d_train), nndr(train_ref, sample_rows(holdout, MAX_QUERIES, rng))
    return {
        "privacy.exact_copy_rate": copies,
        "privacy.exact_copy_excess": max(0.0, copies - natural),
        "privacy.dcr_share": _dcr_share(d_train[:, 0], nearest(hold_ref, queries)[:, 0], len(train_ref), len(hold_ref)),
        "privacy.nndr": syn_nndr,
        "privacy.nndr_vs_holdout": syn_nndr / hold_nndr if hold_nndr > 0 else float("nan"),
        "privacy.membership_auc": membership_auc(members, non_members, sample_rows(synthetic, MAX_REFERENCE, rng)),
    }
