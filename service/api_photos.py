"""The photo endpoints (read scope): an indexed photo or video with its
faces and their people, and a downscaled JPEG of it (``application.photos``)."""

from __future__ import annotations

from flask import Response

from application import photos
from application.schemas import PhotoImageParams, PhotoResponse
from service.api import api, ok, query_args, revalidated_image
from service.context import served, state
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
