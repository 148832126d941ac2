"""k-means through FAISS: seeded, deterministic, several restarts.

Cost (inertia) is the sum of **squared** Euclidean distances from each face
to its centre, the quantity k-means minimises and the seed's elbow plot
showed. FAISS's ``Kmeans`` runs Lloyd's iterations with BLAS; k-means++
seeding; every face is used (no subsampling), so a result depends only on
the faces, k, the seed and the iteration count.
"""

from __future__ import annotations

from dataclasses import dataclass

import faiss
import numpy as np
from scipy.sparse import csr_matrix


@dataclass(frozen=True)
class KMeansResult:
    """``centres`` float32 (k, d); ``labels`` int64 (n,); ``distances``
    float32 (n,) Euclidean to the own centre; ``cost`` sum of squared
    distances."""

    centres: np.ndarray
    labels: np.ndarray
    distances: np.ndarray
    cost: float


def kmeans(
    x: np.ndarray,
    k: int,
    *,
    seed: int = 0,
    restarts: int = 5,
    iterations: int = 30,
    init: np.ndarray | None = None,
) -> KMeansResult:
    """k-means of the rows of ``x``. With ``init`` (k, d) the centres start
    there (one run, no restarts); otherwise ``restarts`` k-means++ runs from
    ``seed`` and the one with the lowest cost is kept."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    n, d = x.shape
    if not 1 <= k <= n:
        raise ValueError(f"k must be between 1 and the number of faces ({n}), got {k}")
    km = faiss.Kmeans(
        d,
        k,
        niter=iterations,
        nredo=1 if init is not None else restarts,
        seed=seed,
        verbose=False,
        min_points_per_centroid=1,  # small k-per-face ratios are normal here: no warning
        max_points_per_centroid=1 << 30,  # never subsample
    )
    km.cp.init_method = faiss.ClusteringInitMethod_KMEANS_PLUS_PLUS
    if init is not None:
        km.train(x, init_centroids=np.ascontiguousarray(init, dtype=np.float32))
    else:
        km.train(x)
    centres = np.ascontiguousarray(km.centroids, dtype=np.float32).reshape(k, d)
    d2, labels = assign(x, centres)
    return KMeansResult(centres, labels, np.sqrt(d2), float(d2.astype(np.float64).sum()))


REFINE_NEIGHBOURS = 10


def refine(
    x: np.ndarray, centres: np.ndarray, neighbours: np.ndarray, *, iterations: int = 30
) -> KMeansResult:
    """Lloyd's iterations from ``centres`` where each face only considers the
    centres of its own cluster and of its ``REFINE_NEIGHBOURS`` nearest
    ``neighbours``' clusters (k-NN rows of indices, -1 = none). The first
    assignment is exact. Used when k comes
    from the data and is large (100k faces give ~13k clusters): a full
    assignment then costs n·k·d per iteration, this one n·(k_nn + 1)·d, and
    a face's nearest centre is almost always among its neighbours'.
    Clusters that lose every face keep their last centre."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    centres = np.array(centres, dtype=np.float32)
    k = len(centres)
    d2, labels = assign(x, centres)
    sq = np.einsum("ij,ij->i", x, x)
    neighbours = neighbours[:, :REFINE_NEIGHBOURS]
    for _ in range(iterations):
        means, counts = group_means(x, labels, k)
        filled = counts > 0
        centres[filled] = means[filled]
        candidates = np.concatenate([labels[:, None], np.where(neighbours >= 0, labels[neighbours], -1)], axis=1)
        candidates = np.where(candidates >= 0, candidates, labels[:, None])
        csq = np.einsum("ij,ij->i", centres, centres)
        best = np.empty(len(x), np.int64)
        for start in range(0, len(x), 8192):
            rows = slice(start, start + 8192)
            cand = candidates[rows]
            dot = np.einsum("id,ikd->ik", x[rows], centres[cand])
            dist2 = sq[rows, None] + csq[cand] - 2 * dot
            pick = np.argmin(dist2, axis=1)
            best[rows] = cand[np.arange(len(cand)), pick]
        if np.array_equal(best, labels):
            break
        labels = best
    d2 = np.maximum(np.einsum("ij,ij->i", x - centres[labels], x - centres[labels]), 0)
    return KMeansResult(centres, labels, np.sqrt(d2), float(d2.astype(np.float64).sum()))


def group_means(x: np.ndarray, labels: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean of the rows of ``x`` in each group ``0..k-1`` (rows labelled -1
    are ignored; an empty group's mean is 0) and each group's row count."""
    rows = np.flatnonzero(labels >= 0)
    if k == 0:
        return np.zeros((0, x.shape[1]), np.float32), np.zeros(0, np.int64)
    onehot = csr_matrix((np.ones(len(rows)), (labels[rows], rows)), shape=(k, len(x)))
    sums = onehot @ x.astype(np.float64)
    counts = np.bincount(labels[rows], minlength=k)
    return (sums / np.maximum(counts, 1)[:, None]).astype(np.float32), counts


def assign(x: np.ndarray, centres: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nearest centre of each row: (squared distances float32, labels int64)."""
    index = faiss.IndexFlatL2(centres.shape[1])
    index.add(np.ascontiguousarray(centres, dtype=np.float32))
    d2, labels = index.search(np.ascontiguousarray(x, dtype=np.float32), 1)
    return np.maximum(d2[:, 0], 0), labels[:, 0].astype(np.int64)


def cost_curve(
    x: np.ndarray, ks: list[int], *, seed: int = 0, restarts: int = 1, iterations: int = 30
) -> list[tuple[int, float]]:
    """``(k, cost)`` for each k (cost in squared Euclidean distance, summed
    over the faces): the curve whose elbow the seed experiment looked for."""
    return [(k, kmeans(x, k, seed=seed, restarts=restarts, iterations=iterations).cost) for k in ks]
