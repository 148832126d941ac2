"""Cannot-link constraints inside a clustering: faces that may not share a
cluster. A ``CannotLink`` is a set of rows of the input, each on a side;
no cluster may hold rows of two sides of one constraint. Two kinds:

* the faces of one photo (each face its own side): one person is never
  twice in a photo, and siblings side by side are the look-alikes most
  often merged;
* the two sides of a "different people" answer (``/review``): the faces of
  one person or group on one side, of the other on the other.

``separate`` enforces them after the clustering: rows in a constraint are
placed nearest their own centre first; a row whose cluster already holds
another side of one of its constraints goes to the nearest other cluster
within ``reach`` of it that holds none, else becomes a stranger. The
displaced face of a photo usually belongs to another group (the sibling
beside), which a plain "keep the nearer face, drop the other" loses."""

from __future__ import annotations

from dataclasses import dataclass

import faiss
import numpy as np

CHOICES = 8  # nearest clusters a displaced face may go to


@dataclass(frozen=True)
class CannotLink:
    """``rows`` (int64) of the input and the ``sides`` (int64, same length)
    they are on: rows of different sides never share a cluster."""

    rows: np.ndarray
    sides: np.ndarray


def photo_constraints(photo_ids: np.ndarray) -> list[CannotLink]:
    """One constraint per photo with several faces: each face its own side."""
    photo_ids = np.asarray(photo_ids, dtype=np.int64)
    order = np.argsort(photo_ids, kind="stable")
    _, starts, counts = np.unique(photo_ids[order], return_index=True, return_counts=True)
    return [CannotLink(order[s : s + c], np.arange(c, dtype=np.int64))
            for s, c in zip(starts.tolist(), counts.tolist()) if c > 1]


def separate(x: np.ndarray, labels: np.ndarray, centres: np.ndarray, constraints: list[CannotLink],
             reach: float) -> np.ndarray:
    """``labels`` (-1: a stranger) with every constraint held (see the module
    docstring); ``centres`` (k, d) of the clusters; ``reach``: the farthest
    (Euclidean) a displaced face may be from the centre it moves to."""
    labels = np.asarray(labels, dtype=np.int64).copy()
    k = len(centres)
    if not constraints or k == 0:
        return labels
    of_row: dict[int, list[tuple[int, int]]] = {}
    for number, constraint in enumerate(constraints):
        for row, side in zip(constraint.rows.tolist(), constraint.sides.tolist()):
            if labels[row] >= 0:
                of_row.setdefault(row, []).append((number, side))
    if not of_row:
        return labels
    rows = np.fromiter(of_row, dtype=np.int64)
    own = np.linalg.norm(x[rows] - centres[labels[rows]], axis=1)
    index = faiss.IndexFlatL2(centres.shape[1])
    index.add(np.ascontiguousarray(centres, dtype=np.float32))
    near_sq, near = index.search(np.ascontiguousarray(x[rows], dtype=np.float32), min(CHOICES, k))
    owner: dict[tuple[int, int], int] = {}  # (constraint, cluster) -> the side it holds
    for i in np.argsort(own, kind="stable").tolist():
        row = int(rows[i])
        ties = of_row[row]
        choices = [int(labels[row])] + [int(c) for c, d_sq in zip(near[i].tolist(), near_sq[i].tolist())
                                        if c != labels[row] and c >= 0 and d_sq <= reach**2]
        placed = -1
        for cluster in choices:
            if all(owner.get((number, cluster), side) == side for number, side in ties):
                placed = cluster
                break
        labels[row] = placed
        if placed >= 0:
            for number, side in ties:
                owner[(number, placed)] = side
    return labels
