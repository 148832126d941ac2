"""The k-nearest-neighbour graph of a set of faces, exact, through FAISS.

Flat L2 search of every face against all the others: the cost is the
all-pairs product, n² · 128 multiply-adds (100k faces: ~20 s on this 2-core
machine, BLAS-bound; a 64-d PCA projection or fewer neighbours saved almost
nothing, measured). It grows as n², so 1M faces would take about half an
hour: an inverted or graph index is the way there (a later issue).
"""

from __future__ import annotations

import faiss
import numpy as np

BLOCK = 16_384


def knn_graph(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """For each row of ``x`` its ``k`` nearest other rows: ``(D, I)``, both
    (n, k), ``D`` in **Euclidean** distance (not squared), ascending; ``I`` -1
    (and ``D`` inf) where there are fewer than ``k`` other rows."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    n = len(x)
    k = max(1, k)
    index = faiss.IndexFlatL2(x.shape[1])
    index.add(x)
    want = min(k + 1, n)
    D = np.full((n, k), np.inf, dtype=np.float32)
    I = np.full((n, k), -1, dtype=np.int64)
    for start in range(0, n, BLOCK):
        rows = np.arange(start, min(n, start + BLOCK))
        d2, nbr = index.search(x[rows], want)
        # Drop the face itself: normally the first hit, but with exact
        # duplicates it may be anywhere among the zero distances; when it is
        # missing altogether, drop the farthest hit instead.
        own = nbr == rows[:, None]
        own[~own.any(axis=1), -1] = True
        d2 = d2[~own].reshape(len(rows), want - 1)
        nbr = nbr[~own].reshape(len(rows), want - 1)
        D[rows, : want - 1] = np.sqrt(np.maximum(d2, 0))
        I[rows, : want - 1] = nbr
    D[I < 0] = np.inf
    return D, I
