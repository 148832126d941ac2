"""Who a face or a group probably is, offered on the pages as a one-click
name: a stranger "This is Tim Henman", a group "Name them Jennifer
Aniston". The same rule as recognition (``indexer.people.recognition``,
``[recognition]``: the nearest confirmed face near enough and nobody
else's nearly as near; precision 0.999 on unseen LFW people), against
every confirmed face, never offering a person a face was said not to be.
A group is offered the person most of its faces are recognised as, when
that is at least half of them."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from config.settings import RecognitionSettings
from indexer.people.annotations import AnnotationsDB
from indexer.people.recognition import suggest
from indexer.store import FaceStore


@dataclass(frozen=True)
class Hint:
    """A person a face (or ``faces`` of a group's) are recognised as."""

    person_id: int
    name: str
    faces: int = 1


def face_hints(store: FaceStore, annotations: AnnotationsDB, face_ids: list[int],
               rule: RecognitionSettings) -> dict[int, Hint]:
    """The person each of ``face_ids`` is recognised as, where one is."""
    snapshot = annotations.recognition_input()
    if not face_ids or not snapshot.confirmed:
        return {}
    confirmed = np.array(snapshot.confirmed, dtype=np.int64)
    ids = np.asarray(face_ids, dtype=np.int64)
    found = suggest(store.vectors_of(ids), store.vectors_of(confirmed[:, 0]), confirmed[:, 1], rule,
                    rejected=snapshot.rejections, face_ids=ids)
    names = {p.person_id: p.name for p in annotations.people()}
    return {face_id: Hint(int(person), names[int(person)])
            for face_id, person in zip(face_ids, found.person.tolist()) if person >= 0 and int(person) in names}


def group_hint(store: FaceStore, annotations: AnnotationsDB, face_ids: list[int],
               rule: RecognitionSettings) -> Hint | None:
    """The person at least half of a group's ``face_ids`` are recognised as."""
    hints = face_hints(store, annotations, face_ids, rule)
    if not hints:
        return None
    (person_id, count), = Counter(h.person_id for h in hints.values()).most_common(1)
    if 2 * count < len(face_ids):
        return None
    name = next(h.name for h in hints.values() if h.person_id == person_id)
    return Hint(person_id, name, count)
