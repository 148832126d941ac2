"""What every clustering method returns, whatever its algorithm."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class ClusterParams:
    """The parameters of one clustering run; every distance is Euclidean.

    ``k``: clusters for k-means, ``None`` = chosen automatically.
    ``stranger_distance``: a face farther than this from its cluster's centre,
    or with no other face of its cluster this near, is a stranger; ``None`` =
    the configured default.
    ``neighbour_distance``: a face with no other face this near is a
    stranger; ``None`` = ``stranger_distance`` when that is given, else the
    configured default.
    ``threshold``: the longest link the ``threshold`` method may use; ``None``
    = the configured default.
    """

    method: str = "kmeans"
    k: int | None = None
    stranger_distance: float | None = None
    neighbour_distance: float | None = None
    threshold: float | None = None
    seed: int = 0


@dataclass(frozen=True)
class Clustering:
    """The grouping of ``n`` faces (rows of the input, in input order).

    ``labels``: int64 (n,), cluster index ``0..k-1`` (0 = the largest), or -1
    for a stranger. ``nearest``: int64 (n,), the face's own cluster, or for a
    stranger the cluster whose centre is nearest (-1 when there is none).
    ``distances``: float32 (n,), Euclidean distance to the centre of
    ``nearest`` (NaN when there is none). ``centres``: float32 (k, 128), the
    mean of each cluster's members. ``params``: the parameters actually used,
    defaults filled in, plus what the method chose (such as an automatic k).
    """

    method: str
    labels: np.ndarray
    nearest: np.ndarray
    distances: np.ndarray
    centres: np.ndarray
    params: dict = field(default_factory=dict)

    @property
    def k(self) -> int:
        return int(self.centres.shape[0])

    @property
    def stranger_count(self) -> int:
        return int((self.labels < 0).sum())
