"""Plain clustering functions the views and the CLI call: a store and the
annotations in, response models and PNG bytes out. Every distance is
Euclidean; the k-means cost is a sum of *squared* Euclidean distances."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

import faiss
import numpy as np

from application import pictures
from application.errors import InvalidRequest
from application.lookalikes import likeness_rows
from application.schemas import (
    ClusterMember,
    ClusterModel,
    ClusterRequest,
    ClustersResponse,
    CostParams,
    CostPoint,
    CostResponse,
    Stranger,
)
from config.settings import ClusteringSettings
from indexer.clustering import ClusterParams, cluster_faces, cost_curve
from indexer.clustering.constraints import CannotLink
from indexer.people.annotations import AnnotationsDB, NoClusteringError, RunInfo, StoredRun
from indexer.people.review import Link
from indexer.store import FaceStore

MAX_COST_POINTS = 50
# Bound on one cost curve's work: faces x centres summed over its k values
# (each k-means iteration computes that many 128-d distances). 2e8 is about
# 10-20 s on a 2-core machine; a larger curve is refused with advice.
MAX_COST_WORK = 200_000_000


def cluster_params(request: ClusterRequest, settings: ClusteringSettings) -> ClusterParams:
    """The request's parameters, with the configured method and seed when not given."""
    return ClusterParams(
        method=request.method or settings.method,
        k=request.k,
        stranger_distance=request.stranger_distance,
        neighbour_distance=request.neighbour_distance,
        threshold=request.threshold,
        seed=settings.seed if request.seed is None else request.seed,
    )


@contextmanager
def all_cores() -> Iterator[None]:
    """FAISS on every core for the duration. A server worker keeps one
    OpenMP thread for searches (many run at once); a clustering run is rare,
    long, and mostly one big k-NN search (100k faces: ~20 s on 2 cores)."""
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(os.cpu_count() or 1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def run_clustering(
    store: FaceStore, annotations: AnnotationsDB, params: ClusterParams, settings: ClusteringSettings,
    actor: str | None = None,
) -> StoredRun:
    """Cluster every indexed face (faces of one photo never share a cluster,
    nor the sides of a "different people" answer), store the run and return
    it as stored. Parameters the index does not allow (a k above its number
    of faces...) raise ``InvalidRequest``; an empty index gives an empty run
    with k = 0."""
    face_ids, photo_ids, x = _embeddings(store, settings)
    start = time.perf_counter()
    links = cannot_links(face_ids, annotations.different_links())
    links += photo_links(face_ids, photo_ids, annotations.confirmed())
    with all_cores():
        try:
            result = cluster_faces(x, photo_ids, params, settings, links=links)
        except ValueError as exc:  # the methods' own checks of their parameters
            raise InvalidRequest(str(exc)) from None
    return annotations.store_run(
        method=result.method, k=result.k, params=result.params, duration_s=time.perf_counter() - start,
        face_ids=face_ids, clusters=result.labels, nearest=result.nearest, distances=result.distances,
        actor=actor,
    )


def cannot_links(face_ids: np.ndarray, answered: list[Link]) -> list[CannotLink]:
    """The "different people" answers as constraints on the rows of
    ``face_ids`` (faces gone from the index left out)."""
    row_of = {int(f): i for i, f in enumerate(face_ids.tolist())}
    out = []
    for link in answered:
        rows = [[row_of[f] for f in sorted(side) if f in row_of] for side in link.faces]
        if rows[0] and rows[1]:
            out.append(CannotLink(np.array(rows[0] + rows[1], dtype=np.int64),
                                  np.array([0] * len(rows[0]) + [1] * len(rows[1]), dtype=np.int64)))
    return out


def photo_links(face_ids: np.ndarray, photo_ids: np.ndarray, confirmed: dict[int, int]) -> list[CannotLink]:
    """Per named person, their confirmed faces apart from the other faces of
    the photos they are in: no group holds both, so that no group of theirs
    gives them a second face of a photo (a group is a person's when it holds
    their confirmed faces)."""
    person = np.array([confirmed.get(int(f), -1) for f in face_ids.tolist()], dtype=np.int64)
    named = np.flatnonzero(person >= 0)
    in_their_photos: dict[int, list[int]] = {}  # photo -> its faces, for the photos with a confirmed face
    for row in np.flatnonzero(np.isin(photo_ids, photo_ids[named])).tolist():
        in_their_photos.setdefault(int(photo_ids[row]), []).append(row)
    own: dict[int, list[int]] = {}
    for row in named.tolist():
        own.setdefault(int(person[row]), []).append(row)
    out = []
    for p, rows in sorted(own.items()):
        beside = sorted({r for row in rows for r in in_their_photos[int(photo_ids[row])] if person[r] != p})
        if beside:
            out.append(CannotLink(np.array(rows + beside, dtype=np.int64),
                                  np.array([0] * len(rows) + [1] * len(beside), dtype=np.int64)))
    return out


def _embeddings(store: FaceStore, settings: ClusteringSettings) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every face's (id, photo id, embedding); ``InvalidRequest`` when there are
    more than ``settings.max_faces`` (checked before loading them)."""
    faces = store.count()
    if faces > settings.max_faces:
        raise InvalidRequest(
            f"the index holds {faces:,} faces, more than clustering.max_faces ({settings.max_faces:,}); "
            "raise that setting if the machine has the memory (512 bytes a face, plus the method's own)"
        )
    return store.all_embeddings()


def last_run(annotations: AnnotationsDB) -> StoredRun:
    """The last stored clustering; ``NoClusteringError`` before the first."""
    run = annotations.last_run()
    if run is None:
        raise NoClusteringError("no clustering has been run yet: POST /api/v1/clusters (or `facesearch cluster`) first")
    return run


def groups(run: StoredRun) -> tuple[list[np.ndarray], np.ndarray]:
    """Row indices of ``run`` per cluster (0..k-1) and of the strangers,
    each nearest its centre first."""
    order = np.lexsort((run.distances, run.clusters))  # by cluster, then distance (NaN last)
    bounds = np.searchsorted(run.clusters[order], np.arange(-1, run.info.k + 1))
    clusters = [order[bounds[c + 1] : bounds[c + 2]] for c in range(run.info.k)]
    return clusters, order[bounds[0] : bounds[1]]


def clusters_response(store: FaceStore, annotations: AnnotationsDB, run: StoredRun) -> ClustersResponse:
    """The run as the API returns it, with each face's path and each
    cluster's person. Faces removed from the index since the run are left
    out (``size`` counts the members listed)."""
    records = store.faces(run.face_ids.tolist())
    people = annotations.cluster_people(run.info.run_id)
    paths = {face_id: record.path for face_id, record in records.items()}
    members, strangers = groups(run)
    clusters = []
    for cluster_id, rows in enumerate(members):
        listed = [
            ClusterMember.model_construct(face_id=face_id, path=paths[face_id], distance=distance)
            for face_id, distance in zip(run.face_ids[rows].tolist(), run.distances[rows].tolist())
            if face_id in paths
        ]
        person = people.get(cluster_id)
        clusters.append(
            ClusterModel.model_construct(
                id=cluster_id, size=len(listed), name=person.name if person else None,
                person_id=person.person_id if person else None, members=listed,
            )
        )
    stranger_list = [
        Stranger.model_construct(
            face_id=face_id, path=paths[face_id], distance=None if math.isnan(distance) else distance,
            nearest_cluster=None if nearest < 0 else nearest,
        )
        for face_id, distance, nearest in zip(
            run.face_ids[strangers].tolist(), run.distances[strangers].tolist(), run.nearest[strangers].tolist()
        )
        if face_id in paths
    ]
    info = run.info
    return ClustersResponse(
        run_id=info.run_id, created_at=info.created_at, method=info.method, k=info.k, faces=info.face_count,
        duration_s=round(info.duration_s, 3), params=info.params, clusters=clusters, strangers=stranger_list,
    )


def contact_sheet_png(
    store: FaceStore, annotations: AnnotationsDB, run: StoredRun, *, max_per_row: int = 12, max_clusters: int = 50,
    likeness: bool = False,
) -> bytes:
    """A PNG of the run: one row per cluster (largest first, at most
    ``max_clusters``) of up to ``max_per_row`` thumbnails nearest the centre
    first, labelled with the cluster id, person and size; then the strangers;
    with ``likeness``, then the strangers and people named once in rows of
    lookalikes (``application.lookalikes.likeness_rows``). The picture says
    what it left out."""
    people = annotations.cluster_people(run.info.run_id)
    members, strangers = groups(run)
    rows: list[pictures.SheetRow] = []
    for cluster_id, indices in enumerate(members[:max_clusters]):
        person = people.get(cluster_id)
        label = f"cluster {cluster_id}" + (f" - {person.name}" if person else "") + f" - {_faces(len(indices))}"
        rows.append(_sheet_row(label, run.face_ids[indices], max_per_row))
    if len(strangers):
        rows.append(_sheet_row(f"strangers - {_faces(len(strangers))}", run.face_ids[strangers], max_per_row))
    notes = []
    if likeness:
        alike, alone = likeness_rows(store, annotations)
        for number, row in enumerate(alike, start=1):
            rows.append(_sheet_row(f"look alike {number} - {_faces(len(row.face_ids))}, {row.spread:.2f} apart",
                                   np.array(row.face_ids), max_per_row))
        notes.append(f"look-alike rows: strangers and people named once; {_faces(alone)} look like nobody else")
    if len(members) > max_clusters:
        hidden = sum(len(m) for m in members[max_clusters:])
        notes.append(f"{len(members) - max_clusters} smaller clusters ({_faces(hidden)}) not shown: raise max_clusters")
    if any(len(m) > max_per_row for m in [*members[:max_clusters], strangers]):
        notes.append(f"rows show at most {max_per_row} faces each, nearest the centre first: raise max_per_row")
    if not rows:
        notes.append("no faces were clustered")
    info = run.info
    title = f"clustering {info.run_id} ({info.created_at}): {info.method}, k = {info.k}, {_faces(info.face_count)}"
    return pictures.contact_sheet(title, rows, store.thumbnail, max_per_row=max_per_row, notes=notes)


def _sheet_row(label: str, face_ids: np.ndarray, max_per_row: int) -> pictures.SheetRow:
    """A row of the first ``max_per_row`` faces, its label saying when there were more."""
    if len(face_ids) > max_per_row:
        label = f"{label} ({max_per_row} shown)"
    return pictures.SheetRow(label, face_ids[:max_per_row].tolist())


def _faces(n: int) -> str:
    return f"{n} face" if n == 1 else f"{n} faces"


def cost_ks(faces: int, k_min: int = 1, k_max: int | None = None, step: int | None = None) -> list[int]:
    """The k values of a cost curve: ``k_min`` to ``k_max`` (default ``k_min``
    + 49, capped at ``faces``) every ``step`` (default the smallest step that
    gives at most ``MAX_COST_POINTS`` values). ``InvalidRequest`` for a bad range."""
    if faces == 0 and k_max is None:
        return []
    if k_max is None:
        k_max = min(faces, k_min + MAX_COST_POINTS - 1)
    if k_max > faces:
        raise InvalidRequest(f"k_max={k_max} is more than the number of indexed faces ({faces})")
    if k_min > k_max:
        raise InvalidRequest(f"k_min={k_min} is more than k_max={k_max}")
    if step is None:
        step = math.ceil((k_max - k_min + 1) / MAX_COST_POINTS)
    ks = list(range(k_min, k_max + 1, step))
    if len(ks) > MAX_COST_POINTS:
        raise InvalidRequest(
            f"{len(ks)} values of k from {k_min} to {k_max} every {step}: at most {MAX_COST_POINTS}, raise step"
        )
    return ks


def cost_response(
    store: FaceStore, settings: ClusteringSettings, query: CostParams, last_run: RunInfo | None
) -> CostResponse:
    """The k-means cost (sum of squared Euclidean distances to the centres)
    of every indexed face for each k of the query's range (see ``cost_ks``);
    ``chosen_k`` from ``last_run``. ``InvalidRequest`` for a bad range."""
    _, _, x = _embeddings(store, settings)
    ks = cost_ks(len(x), query.k_min, query.k_max, query.step)
    work = len(x) * sum(ks)
    if work > MAX_COST_WORK:
        raise InvalidRequest(
            f"a cost curve over {len(x):,} faces for k = {ks[0]}..{ks[-1]} is too much work ({work:,} face-centre "
            f"distances per iteration, at most {MAX_COST_WORK:,}): lower k_max or raise step"
        )
    seed = settings.seed if query.seed is None else query.seed
    with all_cores():
        points = cost_curve(x, ks, settings, seed=seed) if ks else []
    return CostResponse(
        faces=len(x), points=[CostPoint(k=k, cost=cost) for k, cost in points], chosen_k=automatic_k(last_run)
    )


def automatic_k(run: RunInfo | None) -> int | None:
    """The k that ``run`` chose automatically (k-means without a given k), else None."""
    if run is None or run.method != "kmeans":
        return None
    return run.params.get("k_chosen")


def cost_chart_png(response: CostResponse) -> bytes:
    return pictures.cost_chart([(p.k, p.cost) for p in response.points], response.chosen_k)
