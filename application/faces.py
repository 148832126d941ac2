"""One indexed face: what the index knows of it, and its thumbnail."""

from __future__ import annotations

from application.errors import FaceNotFound
from application.schemas import FaceResponse, ImageSize
from application.searching import PeopleLookup, box_model, person_fields
from indexer.store import FaceStore


def face_response(store: FaceStore, people: PeopleLookup, face_id: int) -> FaceResponse:
    """The face's file, box, photo and person; ``FaceNotFound``."""
    record = store.faces([face_id]).get(face_id)
    if record is None:
        raise FaceNotFound(f"no face with id {face_id} in the index")
    return FaceResponse(
        face_id=record.face_id, photo_id=record.photo_id, path=record.path, box=box_model(record.box),
        image=ImageSize(width=record.width, height=record.height), content_hash=record.content_hash,
        indexed_at=record.indexed_at, kind="video" if record.kind == "video" else "photo",
        timestamp=record.timestamp, **person_fields(people([face_id]).get(face_id)),
    )


def face_thumbnail(store: FaceStore, face_id: int) -> bytes:
    """The JPEG crop stored with the face; ``FaceNotFound``."""
    jpeg = store.thumbnail(face_id)
    if jpeg is None:
        raise FaceNotFound(f"no face with id {face_id} in the index")
    return jpeg
