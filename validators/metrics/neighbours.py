"""Nearest-neighbour distances in chunks, shared by the distance metrics and the attacks.

scikit-learn's `NearestNeighbors` queried `QUERY_CHUNK` rows at a time: memory stays
O(chunk x reference), never records x records."""

from __future__ import annotations

import numpy as np
from sklearn.neighbors import NearestNeighbors

QUERY_CHUNK = 4096  # query rows per kneighbors call: bounds the distance block in memory


def sample_rows(x: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """At most `n` rows of `x`, drawn without replacement."""
    return x if len(x) <= n else x[rng.choice(len(x), n, replace=False)]


def nearest(reference: np.ndarray, queries: np.ndarray, k: int = 1) -> np.ndarray:
    """(len(queries), k) Euclidean distances to the k nearest reference rows, ascending."""
    nn = NearestNeighbors(n_neighbors=k).fit(reference)
    blocks = [nn.kneighbors(queries[i : i + QUERY_CHUNK])[0] for i in range(0, len(queries), QUERY_CHUNK)]
    return np.concatenate(blocks) if blocks else np.empty((0, k))
