"""The HTTP views: thin, they parse and validate with the pydantic models,
call the plain functions in ``service.searching`` and serialise the result."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
from flask import Blueprint, Response, current_app, jsonify, request
from pydantic import BaseModel, ValidationError

from config.settings import DetectionSettings, Settings
from indexer.images import ImageError, decode_rgb
from indexer.store import EmbeddedStore
from service.errors import ApiError
from service.openapi import openapi_document
from service.schemas import (
    EmbeddingSearchRequest,
    FaceResponse,
    HealthResponse,
    ImageSize,
    SearchParams,
)
from service.searching import box_model, search_by_embedding, search_by_photo

Request = TypeVar("Request", bound=BaseModel)

bp = Blueprint("api", __name__, url_prefix="/api/v1")

IMAGE_ERROR_STATUS = {
    "empty_image": 400,
    "invalid_image": 400,
    "unsupported_image_format": 415,
    "image_too_large": 413,
}


@dataclass
class ServiceState:
    """What the app holds in ``app.extensions["facesearch"]``."""

    settings: Settings
    store: EmbeddedStore
    # How query photos are searched for faces: as the index's photos were.
    detection: DetectionSettings


def state() -> ServiceState:
    return current_app.extensions["facesearch"]


def ok(model: BaseModel) -> Response:
    """Serialise a response model (pydantic's own JSON encoder, in Rust)."""
    return Response(model.model_dump_json(), mimetype="application/json")


def _json_body(model: type[Request]) -> Request:
    """Parse and validate a JSON body in one pass (pydantic's JSON parser):
    malformed JSON is a 400, a body of the wrong shape a 422."""
    try:
        return model.model_validate_json(request.get_data(cache=False))
    except ValidationError as exc:
        if any(err["type"] == "json_invalid" for err in exc.errors()):
            raise ApiError(400, "invalid_json", "the body is not valid JSON") from None
        raise


@bp.before_request
def require_api_key() -> None:
    keys = state().settings.api_keys
    if not keys or (request.endpoint == "api.health" and request.method == "GET"):
        return
    given = request.headers.get("X-API-Key", "")
    if not any(hmac.compare_digest(given.encode(), key.encode()) for key in keys):
        raise ApiError(401, "unauthorized", "a valid X-API-Key header is required")


@bp.get("/health")
def health() -> Response:
    store = state().store
    return ok(
        HealthResponse(
            status="ok", faces=store.count(), photos=store.photo_count(), model=store.manifest.get("model", ""),
            index_type=store.vectors.index_type,
        )
    )


@bp.post("/search")
def search() -> Response:
    """Who looks like this: a photo upload (``image``) or a JSON embedding.
    Validation errors (pydantic) become 422 in the error handler."""
    st = state()
    content_type = request.mimetype
    if content_type == "multipart/form-data":
        params = SearchParams.model_validate({k: v for k, v in request.form.items() if v != ""})
        k = _checked_k(params.k, st.settings)
        rgb = _uploaded_image(st.settings)
        result = search_by_photo(st.store, rgb, st.detection, k, params.max_distance)
    elif content_type == "application/json":
        req = _json_body(EmbeddingSearchRequest)
        k = _checked_k(req.k, st.settings)
        result = search_by_embedding(st.store, np.asarray(req.embedding, dtype=np.float32), k, req.max_distance)
    else:
        raise ApiError(
            415, "unsupported_media_type",
            "send multipart/form-data with a file field `image`, or application/json with an `embedding`",
        )
    return ok(result)


@bp.get("/faces/<int:face_id>")
def face(face_id: int) -> Response:
    record = state().store.faces([face_id]).get(face_id)
    if record is None:
        raise ApiError(404, "face_not_found", f"no face with id {face_id} in the index")
    return ok(
        FaceResponse(
            face_id=record.face_id, path=record.path, box=box_model(record.box),
            image=ImageSize(width=record.width, height=record.height), content_hash=record.content_hash,
            indexed_at=record.indexed_at,
        )
    )


@bp.get("/faces/<int:face_id>/thumbnail")
def thumbnail(face_id: int) -> Response:
    jpeg = state().store.thumbnail(face_id)
    if jpeg is None:
        raise ApiError(404, "face_not_found", f"no face with id {face_id} in the index")
    response = Response(jpeg, mimetype="image/jpeg")
    response.headers["Cache-Control"] = "private, max-age=3600"
    return response


@bp.get("/openapi.json")
def openapi() -> Response:
    return jsonify(openapi_document())


def _checked_k(k: int | None, settings: Settings) -> int:
    if k is None:
        return settings.search.default_k
    if k > settings.search.max_k:
        raise ApiError(422, "invalid_request", f"k: must be at most {settings.search.max_k}")
    return k


def _uploaded_image(settings: Settings) -> np.ndarray:
    upload = request.files.get("image")
    if upload is None:
        raise ApiError(400, "missing_image", "send the photo as a multipart file field named `image`")
    data = upload.read()
    try:
        return decode_rgb(data, max_pixels=settings.indexer.max_image_pixels)
    except ImageError as exc:
        raise ApiError(IMAGE_ERROR_STATUS.get(exc.code, 400), exc.code, str(exc)) from None
