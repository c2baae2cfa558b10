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


def nearest_apart(x: np.ndarray, positions: np.ndarray, apart: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """For at most `n` rows i of `x`, the distance to the nearest row j whose position is
    at least `apart` from i's (|positions[i] - positions[j]| >= apart); rows with no such
    row are left out. The rows nearer in position than `apart` are at most the largest
    number of positions in any span of 2 * apart - 1, so that many neighbours + 1 hold
    the nearest one that is apart."""
    order = np.sort(positions)
    close = np.searchsorted(order, order + apart) - np.searchsorted(order, order - apart, side="right")
    k = min(len(x), int(close.max()) + 1)
    nn = NearestNeighbors(n_neighbors=k).fit(x)
    rows = np.arange(len(x)) if len(x) <= n else rng.choice(len(x), n, replace=False)
    out = []
    for i in range(0, len(rows), QUERY_CHUNK):
        q = rows[i : i + QUERY_CHUNK]
        d, idx = nn.kneighbors(x[q])
        far = np.abs(positions[idx] - positions[q][:, None]) >= apart
        first = far.argmax(1)
        out.append(d[np.arange(len(q)), first][far.any(1)])
    return np.concatenate(out) if out else np.empty(0)
