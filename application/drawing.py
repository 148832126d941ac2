"""Drawing a face the detector missed (``indexer.drawing``): the use case
behind the photo page's "Add a face" and ``POST /api/v1/photos/<id>/faces``.
The box is checked against the photo and its faces, the face encoded from
the file as indexed, added in a new generation that this worker serves at
once, and named when a name is given (a confirmed face of that person, a
new person for a new name: one correction, undone like any other)."""

from __future__ import annotations

from dataclasses import dataclass

from application import people, photos
from application.errors import FaceNotFound
from application.index_handle import IndexHandle
from config.settings import Settings
from indexer.drawing import DrawnFace, add_drawn_face, check_box, encode_boxes, remove_drawn_face
from indexer.model import Box, FaceModel
from indexer.people.annotations import AnnotationsDB
from indexer.people.records import Correction


@dataclass(frozen=True)
class Drawn:
    """A drawn face as added, and its naming (None: not named)."""

    face: DrawnFace
    named: Correction | None


def draw_face(index: IndexHandle, annotations: AnnotationsDB, model: FaceModel, settings: Settings,
              photo_id: int, box: Box, name: str | None, actor: str | None) -> Drawn:
    """Add the face at ``box`` (the photo's pixels) of photo ``photo_id``,
    named ``name`` when given. ``PhotoNotFound`` (a video too),
    ``PhotoUnavailable``, ``DrawnBoxError``, ``FaceAlreadyThere``,
    ``NotAdded``, ``IndexBusyError``, and naming's own errors (the face
    is added then, unnamed)."""
    store = index.current().store
    record, rgb = photos.photo_rgb(store, photo_id, max_pixels=settings.indexer.max_image_pixels)
    check_box(box, record.width, record.height, [f.box for f in record.faces])
    face = encode_boxes(model, rgb, [box], settings)[0]
    drawn = add_drawn_face(index.data_dir, record.path, record.content_hash, face, annotations, settings)
    index.check_now()  # this worker serves the new face at once
    named = None
    if name and name.strip():
        store = index.current().store
        known = annotations.person_by_name(name.strip())
        named = (people.create_person(store, annotations, name.strip(), [drawn.face_id], actor) if known is None
                 else people.assign(store, annotations, known.person_id, [drawn.face_id], actor))
    return Drawn(drawn, named)


def take_back(index: IndexHandle, annotations: AnnotationsDB, settings: Settings, face_id: int) -> DrawnFace:
    """Remove a drawn face from the index and forget it (``FaceNotFound``,
    ``NotDrawn``, ``IndexBusyError``)."""
    try:
        taken = remove_drawn_face(index.data_dir, index.current().store, face_id, annotations, settings)
    except LookupError:
        raise FaceNotFound(f"no face with id {face_id} in the index") from None
    index.check_now()
    return taken
