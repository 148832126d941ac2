"""The photo endpoints: an indexed photo or video with its faces and their
people, and a downscaled JPEG of it (read scope, ``application.photos``);
a face drawn by hand added or taken back (admin, ``application.drawing``)."""

from __future__ import annotations

from flask import Response

from application import drawing, people, photos
from application.errors import FaceNotFound
from application.schemas import DrawFaceRequest, DrawnFaceResponse, PhotoImageParams, PhotoResponse
from application.searching import box_model
from indexer.model import Box
from service.api import api, json_body, ok, query_args, revalidated_image
from service.context import actor, audited, served, state
from service.operations import JPEG


@api.get("/photos/<int:photo_id>", operation_id="getPhoto", scope="read", response=PhotoResponse,
         summary="An indexed photo or video with every face and its person")
def get_photo(photo_id: int) -> Response:
    return ok(photos.photo_response(served().store, state().annotations, photo_id))


@api.get("/photos/<int:photo_id>/image", operation_id="getPhotoImage", scope="read", response=JPEG,
         query=PhotoImageParams, revalidated=True,
         summary="The photo as a downscaled JPEG (a video: a face's frame); 404 when the file is gone or changed "
         "since it was indexed")
def photo_image(photo_id: int) -> Response:
    """The photo (a video: the frame of ``face_id``, else of its first face)
    as a JPEG of at most ``max_side`` pixels; 404 when the file is gone or
    changed since it was indexed."""
    params = PhotoImageParams.model_validate(query_args())
    jpeg, content = photos.photo_jpeg(served().store, photo_id, max_side=params.max_side, face_id=params.face_id,
                                      max_pixels=state().settings.indexer.max_image_pixels)
    return revalidated_image(jpeg, f"{content[:32]}-{params.max_side}-{params.face_id or 0}")


@api.post("/photos/<int:photo_id>/faces", operation_id="drawFace", scope="admin", response=DrawnFaceResponse,
          status=201, json=DrawFaceRequest, errors=(400, 404, 409, 422),
          summary="Add a face the detector missed, drawn by hand (kept across reindexing), optionally named")
def draw_face(photo_id: int) -> Response:
    """The face inside ``box`` is encoded and added to the photo (its other
    faces keep their ids); 409 when it is a face found already, or a face
    erased there."""
    req = json_body(DrawFaceRequest)
    st = state()
    box = Box(top=req.box.top, right=req.box.right, bottom=req.box.bottom, left=req.box.left)
    drawn = drawing.draw_face(st.index, st.annotations, st.model, st.settings, photo_id, box, req.name, actor())
    audited(params={"photo_id": photo_id, "action": "draw"}, face_ids=[drawn.face.face_id], results=1)
    response = ok(DrawnFaceResponse(
        face_id=drawn.face.face_id, photo_id=photo_id, box=box_model(drawn.face.box),
        person=people.correction_response(drawn.named).person if drawn.named else None,
        rev=drawn.named.rev if drawn.named else None,
    ))
    response.status_code = 201
    return response


@api.delete("/photos/<int:photo_id>/faces/<int:face_id>", operation_id="takeBackDrawnFace", scope="admin",
            status=204, errors=(404, 409),
            summary="Take back a face drawn by hand (409 for a face the detector found: erase it instead)")
def take_back_drawn_face(photo_id: int, face_id: int) -> Response:
    st = state()
    record = served().store.faces([face_id]).get(face_id)
    if record is None or record.photo_id != photo_id:
        raise FaceNotFound(f"photo {photo_id} has no face {face_id}")
    drawing.take_back(st.index, st.annotations, st.settings, face_id)
    audited(params={"photo_id": photo_id, "action": "take_back"}, face_ids=[face_id], results=1)
    return Response(status=204)
