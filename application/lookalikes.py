"""Who looks like whom: a person's nearest *other* people (``GET
/api/v1/people/<id>/lookalikes``, the "Looks like" page), and the
strangers and people seen once arranged in rows of faces that look alike
(the likeness rows page).

**Distance between two people** (Euclidean, over their confirmed faces):
the mean of the ``PAIRS`` nearest pairs, at most one pair per face of the
other person (each of their faces at its distance to this person's
nearest face). Why not the nearest pair alone: one odd photo (a blurred
face, a mislabelled one) would decide; why not the centres' distance: two
people alike in some photos (same glasses, same angle) would be averaged
away, and a person photographed over decades has a wide spread. Three
pairs need three photos to agree. A person with fewer faces is compared
with the pairs there are.

**Likeness rows**: the faces nobody is named for that the last grouping
flagged as strangers, and the faces of people named once, grouped by
average linkage with a looser cut (``LIKENESS_DISTANCE``) than identity
(0.5-0.6): rows of different people who look alike, the blog post's
"similar looking people on each row". Faces with no lookalike that near
are left out of the rows (counted).
"""

from __future__ import annotations

from dataclasses import dataclass

import faiss
import numpy as np

from indexer.people.annotations import AnnotationsDB
from indexer.people.recognition import evenly_spread, indexed_confirmed
from indexer.store import FaceStore

PAIRS = 3  # nearest pairs averaged into a distance between two people
MAX_PERSON_FACES = 1000  # a person's faces compared at most (evenly spread over their face ids)
LIKENESS_DISTANCE = 0.65  # average-link cut for likeness rows: looser than identity
MAX_LIKENESS_FACES = 2000  # faces arranged in rows at most (the strangers seen last)


@dataclass(frozen=True)
class Lookalike:
    """Another person, their distance to the person (Euclidean: the mean of
    the ``PAIRS`` nearest pairs), and the nearest pair of faces (the
    person's, theirs) with its distance."""

    person_id: int
    name: str
    distance: float
    face_id: int  # the person's face in the nearest pair
    other_face_id: int  # theirs
    pair_distance: float


@dataclass(frozen=True)
class LikenessRow:
    """Faces of different people (or nobody yet) that look alike; ``spread``:
    the mean Euclidean distance between them."""

    face_ids: list[int]
    spread: float


def lookalikes(store: FaceStore, annotations: AnnotationsDB, person_id: int, limit: int = 10) -> list[Lookalike]:
    """The ``limit`` people nearest ``person_id`` (``PersonNotFoundError``),
    nearest first; never the person themself. Over confirmed faces in the
    index; a person with none has no lookalikes."""
    person = annotations.person(person_id)
    ids, people = indexed_confirmed(annotations.recognition_input().confirmed, store.face_ids())
    mine = evenly_spread(ids[people == person.person_id], MAX_PERSON_FACES)
    other_ids, owners = ids[people != person.person_id], people[people != person.person_id]
    if not len(mine) or not len(other_ids):
        return []
    nearest_mine = np.empty(len(other_ids), dtype=np.int64)
    nearest_d = np.empty(len(other_ids), dtype=np.float64)
    a = np.ascontiguousarray(store.vectors_of(mine), dtype=np.float32)
    for lo in range(0, len(other_ids), 4096):
        b = np.ascontiguousarray(store.vectors_of(other_ids[lo : lo + 4096]), dtype=np.float32)
        d = np.sqrt(np.maximum(faiss.pairwise_distances(b, a), 0.0))  # squared L2 -> Euclidean
        nearest_mine[lo : lo + len(b)] = mine[d.argmin(axis=1)]
        nearest_d[lo : lo + len(b)] = d.min(axis=1)
    order = np.lexsort((nearest_d, owners))
    others, starts = np.unique(owners[order], return_index=True)
    ends = np.append(starts[1:], len(order))
    found = []
    for q, lo, hi in zip(others.tolist(), starts, ends):
        rows = order[lo : min(hi, lo + PAIRS)]
        found.append((float(nearest_d[rows].mean()), q, int(rows[0])))
    found.sort()
    out = []
    for distance, q, row in found[:limit]:
        out.append(Lookalike(q, annotations.person(q).name, round(distance, 4), int(nearest_mine[row]),
                             int(other_ids[row]), round(float(nearest_d[row]), 4)))
    return out


def likeness_rows(store: FaceStore, annotations: AnnotationsDB, *, cut: float = LIKENESS_DISTANCE,
                  max_faces: int = MAX_LIKENESS_FACES) -> tuple[list[LikenessRow], int]:
    """(rows, faces left alone): the last grouping's strangers nobody is
    named for and the faces of people named once, grouped by average
    linkage cut at ``cut`` (Euclidean); rows of two or more, tightest
    first. At most ``max_faces`` faces (the newest)."""
    from scipy.cluster.hierarchy import fcluster, linkage

    known = store.face_ids()
    run = annotations.last_run()
    strangers = [] if run is None else run.face_ids[run.clusters < 0].tolist()
    named = annotations.attributions(strangers)
    candidates = {f for f in strangers if f not in named}
    confirmed = np.array(annotations.recognition_input().confirmed, dtype=np.int64).reshape(-1, 2)
    people, count = np.unique(confirmed[:, 1], return_counts=True)
    candidates |= set(confirmed[np.isin(confirmed[:, 1], people[count == 1]), 0].tolist())  # people named once
    pool = np.array(sorted(candidates), dtype=np.int64)
    ids = pool[np.isin(pool, known)][-max_faces:].tolist()
    if len(ids) < 2:
        return [], len(ids)
    x = store.vectors_of(np.array(ids, dtype=np.int64)).astype(np.float64)
    labels = fcluster(linkage(x, method="average", metric="euclidean"), t=cut, criterion="distance")
    rows = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        if len(members) < 2:
            continue
        d = np.linalg.norm(x[members, None] - x[None, members], axis=2)
        spread = float(d.sum() / (len(members) * (len(members) - 1)))
        rows.append(LikenessRow([ids[i] for i in members], round(spread, 4)))
    rows.sort(key=lambda r: (r.spread, r.face_ids[0]))
    return rows, len(ids) - sum(len(r.face_ids) for r in rows)
