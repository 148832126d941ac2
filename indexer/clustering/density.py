"""Density-based clustering (HDBSCAN) over a k-nearest-neighbour graph.

HDBSCAN (Campello, Moulavi and Sander, 2013) needs no number of clusters and
no distance threshold: it builds the single-linkage tree of the *mutual
reachability* distance ``max(core(a), core(b), d(a, b))`` (``core`` = the
distance to the ``min_samples``-th neighbour), condenses it so that a split
only counts when both sides keep ``min_cluster_size`` faces, and keeps the
clusters that persist the longest (excess of mass). Faces in no kept cluster
are noise: for faces, the people seen once.

On LFW DevTrain (9,479 faces, 4,018 people, most of them seen once) it scored
pairwise F 0.97 where average linkage peaks at 0.96 only in a 0.05-wide band
of its threshold (``benchmarks/clustering.py``).

Two changes for faces, both measured there: distances under
``DENSITY_FLOOR`` count as the floor, and a cluster wider than
``max_radius`` (RMS distance to its mean) cannot be selected. Plain HDBSCAN
sometimes prefers one giant cluster that sheds people seen once as it
shrinks (min_samples 3 or min_cluster_size 5 on LFW: pairwise F 0.01); one
person is never that wide.

Scaling: the minimum spanning tree is taken over the exact k-NN graph
(``neighbours`` per face) instead of all pairs, so memory and time grow as
n·k after the k-NN search; with the default k it matched the all-pairs tree
on LFW. Where the graph falls apart into pieces, the pieces join at the
largest listed neighbour distance.
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import coo_matrix, csr_matrix
from scipy.sparse.csgraph import minimum_spanning_tree

# Euclidean distance under which two faces are simply the same person: the
# density scale stops there. Without a floor one near-duplicate pair (LFW has
# pairs 0.07 apart) is "infinitely dense", outweighs every real cluster, and
# the largest people dissolve into noise. On LFW DevTrain pairwise F stays
# within 0.972-0.977 for floors from 0.1 to 0.35 and collapses at 0.4 (same
# person pairs have a median distance of 0.44).
DENSITY_FLOOR = 0.2


def mutual_reachability_mst(
    D: np.ndarray, I: np.ndarray, min_samples: int, max_distance: float | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Edges ``(a, b, weight)`` of the minimum spanning forest of the k-NN
    graph ``(D, I)`` (Euclidean) under mutual reachability, sorted by weight.
    ``min_samples`` counts the face itself (1 = plain single linkage).
    Edges longer than ``max_distance`` (Euclidean) are left out."""
    n = len(D)
    if n == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    # A face's core distance: to its (min_samples - 1)-th neighbour.
    core = np.zeros(n) if min_samples <= 1 else D[:, min(min_samples - 2, D.shape[1] - 1)].astype(np.float64)
    src = np.repeat(np.arange(n), D.shape[1])
    dst = I.ravel()
    d = D.ravel().astype(np.float64)
    keep = (dst >= 0) & np.isfinite(d)
    src, dst, d = src[keep], dst[keep], d[keep]
    w = np.maximum(d, np.maximum(core[src], core[dst]))
    if max_distance is not None:
        ok = w <= max_distance
        src, dst, w = src[ok], dst[ok], w[ok]
    # scipy drops explicit zeros: lift them to a tiny positive weight.
    w = np.maximum(w, 1e-12)
    graph = coo_matrix((w, (src, dst)), shape=(n, n)).tocsr()
    graph = graph.minimum(graph.T) if graph.nnz else graph
    tree = minimum_spanning_tree(graph).tocoo()
    order = np.argsort(tree.data, kind="stable")
    return tree.row[order].astype(np.int64), tree.col[order].astype(np.int64), tree.data[order]


def single_linkage(
    n: int, a: np.ndarray, b: np.ndarray, w: np.ndarray, join_height: float
) -> tuple[np.ndarray, np.ndarray]:
    """The binary merge tree of a sorted spanning forest: ``children`` (m, 2)
    and ``heights`` (m,), node ``n + i`` being merge ``i`` (leaves are
    ``0..n-1``). Trees of the forest are joined last, at ``join_height``
    (at least the highest edge)."""
    parent = np.arange(2 * n, dtype=np.int64)

    def find(i: int) -> int:
        root = i
        while parent[root] != root:
            root = parent[root]
        while parent[i] != root:
            parent[i], i = root, parent[i]
        return root

    children: list[tuple[int, int]] = []
    heights: list[float] = []
    node = n
    for u, v, h in zip(a.tolist(), b.tolist(), w.tolist()):
        ru, rv = find(u), find(v)
        if ru == rv:
            continue
        parent[ru] = parent[rv] = node
        children.append((ru, rv))
        heights.append(h)
        node += 1
    roots = sorted({find(i) for i in range(n)})
    while len(roots) > 1:
        ru, rv = roots.pop(0), roots.pop(0)
        parent[ru] = parent[rv] = node
        children.append((ru, rv))
        heights.append(max(join_height, heights[-1] if heights else 0.0))
        roots.append(node)
        node += 1
    return np.asarray(children, dtype=np.int64).reshape(-1, 2), np.asarray(heights, dtype=np.float64)


def condensed_labels(
    n: int,
    children: np.ndarray,
    heights: np.ndarray,
    min_cluster_size: int,
    floor: float = 0.0,
    x: np.ndarray | None = None,
    max_radius: float | None = None,
    counted: np.ndarray | None = None,
) -> np.ndarray:
    """HDBSCAN's condensed tree and excess-of-mass selection over a merge
    tree: labels (n,) int64, clusters numbered 0.. in order of discovery,
    -1 = noise. The root (everything together) is never a cluster. With
    ``x`` and ``max_radius``, a cluster whose faces are on average (root mean
    square) farther than ``max_radius`` from their mean cannot be selected:
    its descendants are considered instead. ``counted`` (bool, n) limits that
    measure to some faces (lone outliers would widen any cluster they hang
    on to)."""
    m = len(children)
    if n == 0:
        return np.zeros(0, np.int64)
    if m == 0:
        return np.full(n, -1, np.int64)
    size = np.ones(n + m, dtype=np.int64)
    for i, (u, v) in enumerate(children):
        size[n + i] = size[u] + size[v]
    # Density level of each merge; distances under ``floor`` count as the floor.
    lam = 1.0 / np.maximum(heights, max(floor, 1e-12))

    # Top-down: which condensed cluster each node belongs to (or fell out of).
    owner = np.full(n + m, -1, dtype=np.int64)
    fallen = np.zeros(n + m, dtype=bool)
    cluster_parent = [-1]
    birth = [0.0]
    stability = [0.0]
    owner[n + m - 1] = 0
    for node in range(n + m - 1, n - 1, -1):
        c = owner[node]
        u, v = children[node - n]
        if fallen[node]:
            owner[u] = owner[v] = c
            fallen[u] = fallen[v] = True
            continue
        level = lam[node - n]
        big_u, big_v = size[u] >= min_cluster_size, size[v] >= min_cluster_size
        if big_u and big_v:
            stability[c] += (level - birth[c]) * (size[u] + size[v])
            for child in (u, v):
                cluster_parent.append(c)
                birth.append(level)
                stability.append(0.0)
                owner[child] = len(birth) - 1
        else:
            for child, big in ((u, big_u), (v, big_v)):
                owner[child] = c
                if not big:
                    stability[c] += (level - birth[c]) * size[child]
                    fallen[child] = True
    point_cluster = owner[:n].copy()

    # Bottom-up excess of mass: keep a cluster when it is at least as stable
    # as the best selection among its descendants (and stable at all: pieces
    # joined at one level make zero-stability clusters that must not win).
    k = len(birth)
    parent = np.asarray(cluster_parent)
    too_wide = np.zeros(k, bool)
    if x is not None and max_radius:
        rows = np.arange(n) if counted is None else np.flatnonzero(counted)
        too_wide = _too_wide(x[rows], point_cluster[rows], parent, max_radius)
    best = np.asarray(stability, dtype=np.float64).copy()
    below = np.zeros(k)
    chosen = np.zeros(k, dtype=bool)
    for c in range(k - 1, 0, -1):
        if best[c] >= below[c] and best[c] > 0 and not too_wide[c]:
            chosen[c] = True
        else:
            best[c] = below[c]
        below[parent[c]] += best[c]
    # Top-down: a chosen cluster with a chosen ancestor is not selected.
    selected = np.zeros(k, dtype=bool)
    covered = np.zeros(k, dtype=bool)
    for c in range(1, k):
        covered[c] = covered[parent[c]] or selected[parent[c]]
        selected[c] = chosen[c] and not covered[c]
    # Each point takes the selected cluster on its way to the root.
    label_of = np.full(k, -1, dtype=np.int64)
    numbers = np.cumsum(selected) - 1
    for c in range(1, k):
        if selected[c]:
            label_of[c] = numbers[c]
        elif covered[c]:
            label_of[c] = label_of[parent[c]]
    return label_of[point_cluster]


def _too_wide(x: np.ndarray, point_cluster: np.ndarray, parent: np.ndarray, max_radius: float) -> np.ndarray:
    """Per condensed cluster: is the RMS distance of its faces (all of its
    subtree) to their mean above ``max_radius``?"""
    k = len(parent)
    count = np.bincount(point_cluster, minlength=k).astype(np.float64)
    sq = np.bincount(point_cluster, weights=np.einsum("ij,ij->i", x, x).astype(np.float64), minlength=k)
    onehot = csr_matrix((np.ones(len(x)), (point_cluster, np.arange(len(x)))), shape=(k, len(x)))
    sums = onehot @ x.astype(np.float64)
    for c in range(k - 1, 0, -1):  # children come after their parents
        count[parent[c]] += count[c]
        sq[parent[c]] += sq[c]
        sums[parent[c]] += sums[c]
    mean_sq = sq / np.maximum(count, 1)
    radius2 = mean_sq - np.einsum("ij,ij->i", sums, sums) / np.maximum(count, 1) ** 2
    return radius2 > max_radius**2


def density_labels(
    D: np.ndarray,
    I: np.ndarray,
    *,
    min_cluster_size: int = 2,
    min_samples: int = 2,
    max_distance: float | None = None,
    floor: float = DENSITY_FLOOR,
    x: np.ndarray | None = None,
    max_radius: float | None = None,
    counted: np.ndarray | None = None,
) -> np.ndarray:
    """HDBSCAN labels (n,) int64 from a k-NN graph (``knn_graph``); -1 =
    noise. ``max_distance`` (Euclidean): faces are never linked across a
    longer mutual-reachability edge (``None``: no limit). ``x`` (the
    embeddings), ``max_radius`` and ``counted``: see ``condensed_labels``."""
    n = len(D)
    a, b, w = mutual_reachability_mst(D, I, min_samples, max_distance)
    # Faces the k-NN graph does not connect are at least as far apart as the
    # farthest listed neighbour (or the cap): join the pieces there, not at
    # infinity, or whole pieces would look infinitely stable.
    finite = D[np.isfinite(D)]
    join = max_distance if max_distance is not None else (float(finite.max()) if finite.size else 1.0)
    children, heights = single_linkage(n, a, b, w, join)
    return condensed_labels(n, children, heights, max(2, min_cluster_size), floor, x, max_radius, counted)
