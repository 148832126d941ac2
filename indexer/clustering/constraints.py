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
             reach: float, min_group: int = 2) -> np.ndarray:
    """``labels`` (-1: a stranger) with every constraint held (see the module
    docstring); ``centres`` (k, d) of the clusters; ``reach``: the farthest
    (Euclidean) a displaced face may be from the centre it moves to. Faces
    left with nowhere to go split the cluster they were displaced from
    (``split``) when they and the members nearer them make a group of
    ``min_group`` or more: two look-alikes merged into one group, told apart
    by the photos that show both."""
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
    homeless: dict[int, list[int]] = {}  # cluster -> the rows it displaced that found no other
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
        if placed < 0:
            homeless.setdefault(int(labels[row]), []).append(row)
        labels[row] = placed
        if placed >= 0:
            for number, side in ties:
                owner[(number, placed)] = side
    if reach > 0:  # (0: the rule before, the displaced faces all strangers)
        for cluster, rows_out in homeless.items():
            labels = split(x, labels, cluster, rows_out, of_row, min_group)
    return labels


def split(x: np.ndarray, labels: np.ndarray, cluster: int, displaced: list[int],
          of_row: dict[int, list[tuple[int, int]]], min_group: int, iterations: int = 5) -> np.ndarray:
    """Split ``cluster`` in two around the faces it ``displaced``: 2-means
    over its members and them, seeded by the mean of the members and the
    mean of the displaced, the displaced held on their side and the members
    that conflict with them on the other. Kept when the new side has
    ``min_group`` faces or more and holds no constraint broken; the new
    cluster is numbered after the others."""
    members = np.flatnonzero(labels == cluster)
    rows = np.concatenate([members, np.asarray(displaced, dtype=np.int64)])
    held_new = np.isin(rows, displaced)
    ties = {(number, side) for r in displaced for number, side in of_row.get(r, [])}
    held_old = np.array([any((n, s) not in ties and any(n == m for m, _ in ties) for n, s in of_row.get(int(r), []))
                         for r in rows.tolist()], dtype=bool) & ~held_new
    a, b = x[members].mean(axis=0), x[displaced].mean(axis=0)
    new = held_new.copy()
    for _ in range(iterations):
        closer = np.linalg.norm(x[rows] - b, axis=1) < np.linalg.norm(x[rows] - a, axis=1)
        new = (closer | held_new) & ~held_old
        if new.all() or not new.any():
            return labels
        a, b = x[rows[~new]].mean(axis=0), x[rows[new]].mean(axis=0)
    if new.sum() < min_group or _broken(rows[new], of_row) or _broken(rows[~new], of_row):
        return labels
    out = labels.copy()
    out[rows[new]] = int(labels.max()) + 1
    out[rows[~new]] = cluster
    return out


def _broken(rows: np.ndarray, of_row: dict[int, list[tuple[int, int]]]) -> bool:
    """Whether ``rows`` hold two sides of one constraint."""
    seen: dict[int, int] = {}
    for r in rows.tolist():
        for number, side in of_row.get(int(r), []):
            if seen.setdefault(number, side) != side:
                return True
    return False
