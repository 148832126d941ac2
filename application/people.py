"""Plain functions over people the views and the CLI call: the served
store and the annotations in, response models out. Corrections check their
face ids against the index first (``FacesNotFound`` names the unknown
ones); the writes themselves are ``AnnotationsDB``'s, one transaction each.
Every distance is Euclidean."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

from application.errors import FacesNotFound
from application.schemas import (
    CorrectionModel,
    CorrectionResponse,
    CorrectionsResponse,
    MergedPerson,
    MergeModel,
    PersonFace,
    PersonFacesParams,
    PersonFacesResponse,
    PersonModel,
    RecogniseResponse,
    SourceCounts,
    UndoMergeResponse,
    UndoneResponse,
)
from application.searching import box_model
from config.settings import RecognitionSettings
from indexer.people.annotations import (
    AnnotationsDB,
    Correction,
    CorrectionRecord,
    Merge,
    NameTakenError,
    Person,
    Places,
    UndoReport,
)
from indexer.people.attribution import PersonFace as AttributedFace
from indexer.people.carry_over import carry_over, place_of
from indexer.people.recognition import evenly_spread, recognise_index
from indexer.people.undo import Undone
from indexer.store import FaceStore
from indexer.store.generations import IndexBusyError, IndexLock

# Confirmed faces a person's faces are ordered by distance to, at most.
MAX_REFERENCE_FACES = 512


def check_faces(store: FaceStore, face_ids: list[int]) -> Places:
    """Where each face is (``indexer.people.carry_over``), by id; ``FacesNotFound``
    naming the ids not in the index."""
    ids = sorted(set(int(i) for i in face_ids))
    known = store.faces(ids)
    missing = [i for i in ids if i not in known]
    if missing:
        raise FacesNotFound(missing)
    return {face_id: place_of(record) for face_id, record in known.items()}


def person_model(person: Person) -> PersonModel:
    return PersonModel(
        id=person.person_id, name=person.name, created_at=person.created_at, face_count=person.face_count,
        counts=SourceCounts(**person.counts), clusters=person.clusters, cover_face_id=person.cover_face_id,
        last_merge=merge_model(person.last_merge) if person.last_merge else None,
    )


def merge_model(merge: Merge) -> MergeModel:
    return MergeModel(
        id=merge.merge_id, at=merge.at, actor=merge.actor,
        people=[MergedPerson(id=i, name=n) for i, n in merge.people], faces_moved=merge.faces_moved,
        undone_at=merge.undone_at,
    )


def correction_response(correction: Correction) -> CorrectionResponse:
    return CorrectionResponse(person=person_model(correction.person), face_ids=correction.face_ids,
                              changed=correction.changed)


def create_person(store: FaceStore, annotations: AnnotationsDB, name: str, face_ids: list[int],
                  actor: str | None) -> Correction:
    """A new person whose confirmed faces are ``face_ids``;
    ``FacesNotFound``, ``NameTakenError`` (saying what to do instead)."""
    places = check_faces(store, face_ids)
    try:
        return annotations.create_person(name, sorted(places), actor=actor, places=places)
    except NameTakenError as exc:
        raise NameTakenError(f"{exc}: assign the faces to them, or choose another name") from None


def rename_person(annotations: AnnotationsDB, person_id: int, name: str, actor: str | None) -> Person:
    """``PersonNotFoundError``; ``NameTakenError`` (saying what to do instead)."""
    try:
        return annotations.rename_person(person_id, name, actor=actor)
    except NameTakenError as exc:
        raise NameTakenError(f"{exc}: merge the two people instead") from None


def assign(store: FaceStore, annotations: AnnotationsDB, person_id: int, face_ids: list[int],
           actor: str | None) -> Correction:
    annotations.person(person_id)  # an unknown person is named before unknown faces
    places = check_faces(store, face_ids)
    return annotations.assign(person_id, sorted(places), actor=actor, places=places)


def reject(store: FaceStore, annotations: AnnotationsDB, person_id: int, face_ids: list[int],
           actor: str | None) -> Correction:
    annotations.person(person_id)
    places = check_faces(store, face_ids)
    return annotations.reject(person_id, sorted(places), actor=actor, places=places)


def undo(annotations: AnnotationsDB, rev: int, actor: str | None) -> Undone:
    """Undo correction ``rev`` (``AnnotationsDB.undo``): ``NothingToUndoError``
    when it is unknown, undone already, or a merge before a later one;
    ``NameTakenError`` when a person it brings back lost their name."""
    return annotations.undo(rev, actor=actor)


def correction(annotations: AnnotationsDB, rev: int) -> CorrectionRecord | None:
    """Correction ``rev`` of the journal, as a page says what it did."""
    return annotations.correction(rev)


def corrections_response(annotations: AnnotationsDB, limit: int) -> CorrectionsResponse:
    """The last ``limit`` corrections, newest first."""
    return CorrectionsResponse(corrections=[CorrectionModel.model_validate(record, from_attributes=True)
                                            for record in annotations.corrections(limit)])


def undone_response(undone: Undone) -> UndoneResponse:
    return UndoneResponse(rev=undone.rev, target=undone.target, action=undone.action, person_ids=undone.person_ids,
                          face_ids=undone.face_ids, left_as_they_are=undone.left_as_they_are)


def undo_response(annotations: AnnotationsDB, report: UndoReport) -> UndoMergeResponse:
    return UndoMergeResponse(
        merge_id=report.merge_id, person=person_model(annotations.person(report.person_id)),
        restored=[person_model(annotations.person(p)) for p in report.restored_people],
        faces_restored=report.faces_restored, rejections_restored=report.rejections_restored,
        left_as_they_are=report.left_as_they_are,
    )


@dataclass(frozen=True)
class AttributedSet:
    """A person's faces now (``annotations.person_faces``) that are still in
    the index, with when each was seen (POSIX seconds or None): read once,
    then paged and charted."""

    person: Person
    faces: list[AttributedFace]
    times: dict[int, float | None]


def attributed_set(store: FaceStore, annotations: AnnotationsDB, person_id: int) -> AttributedSet:
    person = annotations.person(person_id)
    attributed = annotations.person_faces(person_id)
    times = store.face_times([f.face_id for f in attributed])
    return AttributedSet(person, [f for f in attributed if f.face_id in times], times)


def person_faces(
    store: FaceStore, annotations: AnnotationsDB, person_id: int, params: PersonFacesParams,
    found: AttributedSet | None = None,
) -> PersonFacesResponse:
    """A page of the faces attributed to the person now (``found``, read
    here when not given), with their source and distance, in the order
    asked for (``PersonFacesParams``). Faces no longer in the index are left
    out; only the page's records are read. Distances are computed for the
    page only when ordering by time, for every face of the person when
    ordering by distance: to at most ``MAX_REFERENCE_FACES`` of their
    confirmed faces, spread over them (a wrong face is far from all of
    them; 10k faces x 512 in ~15 ms, where all of 10k took 0.3 s), and the
    page's own to every confirmed face."""
    found = found or attributed_set(store, annotations, person_id)
    faces = found.faces
    if params.source:
        faces = [f for f in faces if f.source == params.source]
    confirmed = np.array(sorted(f.face_id for f in found.faces if f.source == "confirmed"), dtype=np.int64)
    if params.order in ("nearest", "farthest"):
        reference = evenly_spread(confirmed, MAX_REFERENCE_FACES)  # over the person's confirmed faces, by id
        distances = _distances(store, faces, reference)
        ordered = sorted(zip(faces, distances), key=lambda fd: (math.isnan(fd[1]), fd[1], fd[0].face_id))
        if params.order == "farthest":
            known = [fd for fd in ordered if not math.isnan(fd[1])]
            ordered = known[::-1] + [fd for fd in ordered if math.isnan(fd[1])]
        page = ordered[params.offset : params.offset + params.limit]
        if reference is not confirmed:  # the page's own distances, to every confirmed face
            chosen = [face for face, _ in page]
            page = list(zip(chosen, _distances(store, chosen, confirmed)))
    else:
        sign = -1.0 if params.order == "newest" else 1.0
        times = found.times

        def when(face: AttributedFace) -> tuple[bool, float, float]:
            seen = times[face.face_id]
            # Faces with no time go last either way; ties by face id, newest first for newest.
            return (seen is None, sign * (seen or 0.0), sign * face.face_id)

        chosen = sorted(faces, key=when)[params.offset : params.offset + params.limit]
        page = list(zip(chosen, _distances(store, chosen, confirmed)))
    records = store.faces([face.face_id for face, _ in page])
    listed = []
    for face, distance in page:
        record = records.get(face.face_id)
        if record is None:  # erased between the two reads
            continue
        listed.append(PersonFace(
            face_id=face.face_id, photo_id=record.photo_id, path=record.path, box=box_model(record.box),
            source=face.source, distance=None if math.isnan(distance) else round(float(distance), 6),
            time=record.time, timestamp=record.timestamp,
        ))
    return PersonFacesResponse(
        total=len(faces), counts=SourceCounts(**found.person.counts), limit=params.limit, offset=params.offset,
        order=params.order, faces=listed,
    )


def _distances(store: FaceStore, faces: list[AttributedFace], confirmed: np.ndarray) -> list[float]:
    """Per face: a suggestion's stored distance; for the others, the
    Euclidean distance to the nearest of ``confirmed`` other than itself
    (NaN when there is none)."""
    out = [float("nan")] * len(faces)
    todo = [i for i, f in enumerate(faces) if f.source != "suggested"]
    for i, f in enumerate(faces):
        if f.source == "suggested" and f.distance is not None:
            out[i] = f.distance
    if not todo or not len(confirmed):
        return out
    c = store.vectors_of(confirmed)
    ids = np.array([faces[i].face_id for i in todo], dtype=np.int64)
    x = store.vectors_of(ids)
    for lo in range(0, len(ids), 1024):
        d_sq = faiss.pairwise_distances(x[lo : lo + 1024], c)
        d_sq[ids[lo : lo + 1024, None] == confirmed[None, :]] = np.inf  # not itself
        nearest = np.sqrt(np.maximum(d_sq.min(axis=1), 0.0))
        for j, value in enumerate(nearest.tolist()):
            out[todo[lo + j]] = value if math.isfinite(value) else float("nan")
    return out


def recognise(data_dir: Path, store: FaceStore, annotations: AnnotationsDB, settings: RecognitionSettings,
              *, everything: bool = False) -> RecogniseResponse:
    """Recognition now (``indexer.people.recognition``) over ``store``, the
    published index, after what is left of faces gone from it is dropped
    (``carry_over``), under the index lock (``IndexBusyError`` while a
    reindex runs: it recognises at its end)."""
    try:
        with IndexLock(Path(data_dir), command="facesearch recognise"):
            carry_over(store, annotations)
            report = recognise_index(store, annotations, settings, everything=everything)
    except IndexBusyError as exc:
        raise IndexBusyError(f"{exc} The reindex recognises new faces when it ends.") from None
    return RecogniseResponse(**report.to_dict())
