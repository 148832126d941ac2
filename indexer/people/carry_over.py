"""Faces keep their people when re-encoding gives them new ids.

Face ids are never reused: ``facesearch index --full`` re-encodes every
photo and gives every face a new id, and so does a photo whose bytes
changed. What people said about a face (confirmed, rejected, a merge's
record) refers to its id, so it would be lost. Each face a person corrected
has its place recorded in the annotations (the file's content hash, the box
and a video's timestamp, never the face itself; ``AnnotationsDB.places``);
after each index run, a corrected face gone from the index moves to the
face now found at the same place: same content hash, same timestamp, box
overlapping by at least ``SAME_PLACE_IOU`` (the same detector on the same
file gives the same box; other detection settings, a slightly different
one). A face whose file changed content has no such successor: its
corrections go with it (it is a new photo), as before.
"""

from __future__ import annotations

from indexer.model import Box
from indexer.people.annotations import AnnotationsDB
from indexer.store import FaceStore
from indexer.tracks import iou

SAME_PLACE_IOU = 0.5


def place_of(record) -> tuple[str, tuple[int, int, int, int], float | None]:
    """A face record's place, as the annotations keep it."""
    box = record.box
    return record.content_hash, (box.top, box.right, box.bottom, box.left), record.timestamp


def carry_over(store: FaceStore, annotations: AnnotationsDB) -> int:
    """Move the corrections of faces gone from ``store`` (the published
    index) to their successors at the same place, drop what is left of
    faces gone (``AnnotationsDB.prune_faces``), then record the places of
    corrected faces that have none yet. Returns the faces moved."""
    corrected = annotations.corrected_faces()
    known = set(store.face_ids().tolist())
    if not corrected:
        annotations.prune_faces(known)
        return 0
    gone = annotations.places(sorted(corrected - known))
    moves: dict[int, int] = {}
    if gone:
        candidates: dict[str, list] = {}
        for record in store.faces_with_content(sorted({content for content, _, _ in gone.values()})):
            candidates.setdefault(record.content_hash, []).append(record)
        taken = corrected & known
        for old, (content, box, timestamp) in sorted(gone.items()):
            was = Box(*box)
            best, best_overlap = None, SAME_PLACE_IOU
            for record in candidates.get(content, []):
                same_time = (timestamp is None) == (record.timestamp is None) and (
                    timestamp is None or abs(timestamp - record.timestamp) < 1e-3)
                overlap = iou(was, record.box)
                if same_time and record.face_id not in taken and overlap >= best_overlap:
                    best, best_overlap = record.face_id, overlap
            if best is not None:
                moves[old] = best
                taken.add(best)
        annotations.move_face_ids(moves)
    annotations.prune_faces(known)
    present = sorted(((corrected - set(moves)) & known) | set(moves.values()))
    recorded = annotations.places(present)
    missing = [f for f in present if f not in recorded]
    if missing:
        annotations.remember_places({f: place_of(r) for f, r in store.faces(missing).items()})
    return len(moves)
