"""``cluster_faces``: run a method over embeddings and shape its outcome.

Two methods, one result (``Clustering``):

* ``kmeans``: k-means (``kmeans.py``). With ``k`` given: k-means++ restarts,
  the lowest cost kept. With ``k`` null: k is the number of groups of two or
  more faces that the density method finds, and k-means starts from their
  centres (the elbow of the cost curve, which the seed experiment used, finds
  no elbow once people seen once are mixed in: ``benchmarks/clustering.py``).
  Then stranger flagging: a face farther than ``stranger_distance`` from its
  centre, or with no other face within ``neighbour_distance``, is a
  stranger, and so are the faces of a cluster left with fewer than
  ``min_cluster_size`` faces. Defaults 0.5 and 0.45, chosen on LFW's family
  scenario (``benchmarks/clustering.py``): a request's ``stranger_distance``
  sets both rules unless it also gives ``neighbour_distance``.
* ``threshold``: HDBSCAN over the k-NN graph (``density.py``); needs no k;
  the faces it leaves alone are the strangers, and so are faces with no
  other face within ``neighbour_distance`` (HDBSCAN hands such outliers to a
  cluster they hang on to from afar; on LFW the rule kept pairwise F at 0.974
  and raised BCubed F from 0.920 to 0.928). ``threshold`` (when set) is the
  longest Euclidean link it may use; a ``stranger_distance`` given with the
  request also flags members that far from their centre.

For both, faces that may not share a cluster never do
(``constraints.py``): two faces of one photo, and the two sides of a
"different people" answer; the face nearer the centre stays, the other goes
to the nearest cluster within ``stranger_distance`` that it may join, else
becomes a stranger.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from config.settings import ClusteringSettings
from indexer.clustering.constraints import CannotLink, photo_constraints, separate
from indexer.clustering.density import density_labels
from indexer.clustering.kmeans import assign, group_means, kmeans, refine
from indexer.clustering.kmeans import cost_curve as _cost_curve
from indexer.clustering.neighbours import knn_graph
from indexer.clustering.result import Clustering, ClusterParams

METHODS = ("kmeans", "threshold")


def validate(params: ClusterParams, n: int) -> None:
    """Raise ``ValueError`` with a message a user can act on."""
    if params.method not in METHODS:
        raise ValueError(f"unknown method {params.method!r}: use one of {', '.join(METHODS)}")
    if params.k is not None:
        if params.k <= 0:
            raise ValueError(f"k must be a positive number of clusters, got {params.k}")
        if params.k > n:
            raise ValueError(f"k ({params.k}) is larger than the number of indexed faces ({n})")
    for name in ("stranger_distance", "neighbour_distance", "threshold"):
        value = getattr(params, name)
        if value is not None and not (np.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a positive Euclidean distance, got {value}")


def cluster_faces(
    x: np.ndarray, photo_ids: np.ndarray, params: ClusterParams, settings: ClusteringSettings,
    links: Sequence[CannotLink] = (),
    displaced_reach: float | None = None,
) -> Clustering:
    """Group the faces ``x`` (n, 128) float32, whose photos are ``photo_ids``
    (n,), with ``params`` (unset values from ``settings``); ``links``: more
    faces (rows of ``x``) that may not share a cluster. ``displaced_reach``:
    how far from its new centre a face a constraint displaces may go (None:
    ``stranger_distance``; 0: it always becomes a stranger, the rule before
    the constraints moved faces; ``benchmarks.group_photos`` compares them)."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    photo_ids = np.asarray(photo_ids, dtype=np.int64)
    n = len(x)
    validate(params, n)
    stranger_distance = params.stranger_distance or settings.stranger_distance
    constraints = [*photo_constraints(photo_ids), *links]

    def shape(labels: np.ndarray, strangers: np.ndarray) -> Clustering:
        reach = stranger_distance if displaced_reach is None else displaced_reach
        return _shape(x, labels, strangers, constraints, reach, settings.min_cluster_size, params.method, used)

    # The "no other face this near" rule: the request's stranger_distance
    # when it gives one (one distance for both rules), else its own default.
    neighbour_distance = params.neighbour_distance or params.stranger_distance or settings.neighbour_distance
    used: dict = {"method": params.method, "seed": params.seed}
    if n == 0:
        return shape(np.zeros(0, np.int64), np.zeros(0, bool))
    D, I = knn_graph(x, min(settings.neighbours, max(1, n - 1)))
    nearest_other = D[:, 0]  # Euclidean, inf for a lone face
    threshold = params.threshold or settings.threshold or None

    def density() -> np.ndarray:
        return density_labels(
            D,
            I,
            min_cluster_size=settings.min_cluster_size,
            min_samples=settings.min_samples,
            max_distance=threshold,
            x=x,
            max_radius=settings.max_cluster_radius,
            counted=nearest_other <= neighbour_distance,
        )

    if params.method == "threshold":
        labels = density()
        used.update(threshold=threshold, min_cluster_size=settings.min_cluster_size,
                    neighbour_distance=neighbour_distance)
        # HDBSCAN also labels the faces that hang on to a cluster from afar:
        # with no other face near, they are strangers all the same.
        far = nearest_other > neighbour_distance
        if params.stranger_distance is not None:
            used["stranger_distance"] = stranger_distance
            far |= _distance_to_centres(x, labels) > stranger_distance
        return shape(labels, far)

    used.update(
        stranger_distance=stranger_distance,
        neighbour_distance=neighbour_distance,
        restarts=settings.kmeans_restarts,
    )
    if params.k is None:
        groups = density()
        sizes = np.bincount(groups[groups >= 0]) if (groups >= 0).any() else np.zeros(0, np.int64)
        keep = np.flatnonzero(sizes >= settings.min_cluster_size)
        keep = keep[np.argsort(-sizes[keep], kind="stable")]
        k = len(keep)
        used.update(k_requested=None, k_chosen=k,
                    k_rule="groups of min_cluster_size+ faces found by the threshold method")
        if k == 0:
            return shape(np.full(n, -1, np.int64), np.ones(n, bool))
        renumber = np.full(len(sizes), -1, np.int64)
        renumber[keep] = np.arange(k)
        start = _means(x, np.where(groups >= 0, renumber[np.maximum(groups, 0)], -1), k)
        result = refine(x, start, I, iterations=settings.kmeans_iterations)
    else:
        used.update(k_requested=params.k)
        result = kmeans(
            x,
            params.k,
            seed=params.seed,
            restarts=settings.kmeans_restarts,
            iterations=settings.kmeans_iterations,
        )
    far = (result.distances > stranger_distance) | (nearest_other > neighbour_distance)
    labels = np.where(far, -1, result.labels)
    small = np.bincount(labels[labels >= 0], minlength=result.centres.shape[0]) < settings.min_cluster_size
    far |= (labels >= 0) & small[np.maximum(labels, 0)]
    return shape(result.labels, far)


def cost_curve(x: np.ndarray, ks: list[int], settings: ClusteringSettings, seed: int = 0) -> list[tuple[int, float]]:
    """k-means cost (sum of squared Euclidean distances) for each k in ``ks``."""
    n = len(x)
    for k in ks:
        validate(ClusterParams(k=k), n)
    return _cost_curve(
        x, ks, seed=seed, restarts=min(settings.kmeans_restarts, 3), iterations=settings.kmeans_iterations
    )


def _distance_to_centres(x: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Euclidean distance of each face to the mean of its cluster (0 for -1)."""
    out = np.zeros(len(x), np.float32)
    members = labels >= 0
    if members.any():
        k = int(labels.max()) + 1
        centres = _means(x, labels, k)
        out[members] = np.linalg.norm(x[members] - centres[labels[members]], axis=1)
    return out


def _means(x: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    return group_means(x, labels, k)[0]


def _shape(
    x: np.ndarray,
    labels: np.ndarray,
    strangers: np.ndarray,
    constraints: list[CannotLink],
    reach: float,
    min_group: int,
    method: str,
    used: dict,
) -> Clustering:
    """Turn raw labels and a stranger mask into a ``Clustering``: strangers
    out, the cannot-link ``constraints`` held (a face moved at most ``reach``
    from its new centre), clusters numbered by size (largest first, ties by
    first face), centres = members' means."""
    n = len(x)
    labels = np.where(strangers, -1, labels).astype(np.int64)
    if n and (labels >= 0).any():
        k = int(labels.max()) + 1
        labels = separate(x, labels, _means(x, labels, k), constraints, reach, min_group)
    # Renumber: largest cluster first; empty clusters disappear.
    members = labels >= 0
    old, first, sizes = np.unique(labels[members], return_index=True, return_counts=True)
    if len(old):
        order = np.lexsort((first, -sizes))
        new_of = np.full(int(old.max()) + 1, -1, np.int64)
        new_of[old[order]] = np.arange(len(old))
        labels = np.where(members, new_of[np.maximum(labels, 0)], -1)
    k = len(old)
    centres = _means(x, labels, k) if k else np.zeros((0, x.shape[1]), np.float32)
    nearest = labels.copy()
    distances = np.full(n, np.nan, np.float32)
    if k:
        distances[members] = np.linalg.norm(x[members] - centres[labels[members]], axis=1)
        if (~members).any():
            d2, near = assign(x[~members], centres)
            nearest[~members] = near
            distances[~members] = np.sqrt(d2)
    used = {**used, "k": k}
    return Clustering(method=method, labels=labels, nearest=nearest, distances=distances, centres=centres, params=used)
