""""Are these the same person?": the questions (``review_pairs``) and the
answers (``answer``), over the served store and the annotations
(``indexer.people.review`` holds the rules). Every distance is Euclidean."""

from __future__ import annotations

import numpy as np

from application.errors import InvalidRequest
from application.schemas import ReviewAnswerResponse, ReviewPair, ReviewPairsResponse, ReviewSide, ReviewSideModel
from config.settings import ReviewSettings
from indexer.people.annotations import AnnotationsDB
from indexer.people.review import Side, Unit, pairs
from indexer.store import FaceStore


def review_pairs(store: FaceStore, annotations: AnnotationsDB, settings: ReviewSettings,
                 limit: int) -> ReviewPairsResponse:
    """Up to ``limit`` pairs of people and unnamed groups that may be one
    person, most likely first (``indexer.people.review``)."""
    known = set(store.face_ids().tolist())
    found = [Unit(u.side, [f for f in u.face_ids if f in known]) for u in annotations.review_units()]
    found = [u for u in found if u.face_ids]
    if len(found) < 2:
        return ReviewPairsResponse(pairs=[])
    everything = np.array(sorted({f for u in found for f in u.face_ids}), dtype=np.int64)
    vectors = store.vectors_of(everything)
    row = {int(f): i for i, f in enumerate(everything.tolist())}
    means = np.stack([vectors[[row[f] for f in u.face_ids]].mean(axis=0) for u in found]).astype(np.float64)
    names = {p.person_id: p.name for p in annotations.people()}
    chosen = pairs(found, means, annotations.different_links(), settings.max_distance, limit)
    return ReviewPairsResponse(pairs=[
        ReviewPair(a=_side(p.a, names, settings), b=_side(p.b, names, settings), distance=round(p.distance, 6))
        for p in chosen
    ])


def _same_photos(store: FaceStore, annotations: AnnotationsDB, into: int, other: int) -> list[int]:
    """The faces of group ``other`` whose photo has a face in group ``into``."""
    kept, joining = annotations.group_members(into), annotations.group_members(other)
    records = store.faces(kept + joining)
    photos = {records[f].photo_id for f in kept if f in records}
    return [f for f in joining if f in records and records[f].photo_id in photos]


def _side(unit: Unit, names: dict[int, str], settings: ReviewSettings) -> ReviewSideModel:
    person = unit.side.person_id
    return ReviewSideModel(person_id=person, cluster_id=unit.side.cluster_id,
                           name=names.get(person) if person is not None else None, faces=len(unit.face_ids),
                           face_ids=unit.face_ids[: settings.faces_shown])


def answer(store: FaceStore, annotations: AnnotationsDB, a: ReviewSide, b: ReviewSide, same: bool,
           actor: str | None) -> ReviewAnswerResponse:
    """"Same person": the two become one (a person and a group: the group is
    named; two people: the one with fewer confirmed faces merged into the
    other; two groups: the second joins the first, but for a face whose
    photo already has one in the first: it becomes a stranger). "Different
    people": remembered. Either way one correction, undoable."""
    first, second = (Side(s.person_id, s.cluster_id) for s in (a, b))
    if first == second:
        raise InvalidRequest("a and b are the same side: ask about two")
    if not same:
        rev = annotations.answer_different(first, second, actor=actor)
        faces = annotations.unit(first).face_ids + annotations.unit(second).face_ids
        return ReviewAnswerResponse(same=False, correction=rev, face_ids=sorted(faces))
    if first.person_id is not None and second.person_id is not None:
        keep, gone = sorted((first.person_id, second.person_id),
                            key=lambda p: (-len(annotations.unit(Side(person_id=p)).face_ids), p))
        merged = annotations.merge(keep, [gone], actor=actor)
        return ReviewAnswerResponse(same=True, correction=merged.rev or 0, person_id=keep, face_ids=merged.face_ids)
    if first.person_id is None and second.person_id is None:
        assert first.cluster_id is not None and second.cluster_id is not None
        rev, moved = annotations.join_groups(first.cluster_id, second.cluster_id, actor=actor,
                                             apart=_same_photos(store, annotations, first.cluster_id,
                                                                second.cluster_id))
        return ReviewAnswerResponse(same=True, correction=rev, face_ids=moved)
    person_id = first.person_id if first.person_id is not None else second.person_id
    cluster = first.cluster_id if first.cluster_id is not None else second.cluster_id
    assert person_id is not None and cluster is not None
    named = annotations.name_cluster_faces(cluster, annotations.person(person_id).name, actor=actor)
    return ReviewAnswerResponse(same=True, correction=named.rev or 0, person_id=person_id, face_ids=named.face_ids)
