"""Plain search functions the views call: arrays and a store in, response
models out. Distances leave here as Euclidean (FAISS gives squared ones).
Query photos are decoded here too (``decode_query``), the same way for every
endpoint and page."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from application.errors import InvalidRequest
from application.schemas import BoxModel, Match, QueryFace, SearchResponse
from config.settings import DetectionSettings, SearchSettings, ServiceSettings
from indexer.faces import detect_boxes, find_faces, map_box
from indexer.images import ScaledPhoto, decode_within
from indexer.model import Box, FaceModel
from indexer.people.attribution import Attribution
from indexer.store import FaceStore

# face ids -> the person of each face that has one, with its source
# (``AnnotationsDB.attributions``)
PeopleLookup = Callable[[list[int]], dict[int, Attribution]]


def decode_query(data: bytes, service: ServiceSettings, detection: DetectionSettings) -> ScaledPhoto:
    """An uploaded query photo (search, recall and erasure probes, the
    pages' uploads), decoding at most ``service.max_decoded_pixels`` pixels:
    a JPEG of more at the least reduction (1/2, 1/4, 1/8) that brings it
    within, never below ``detection.max_side`` on its longest side (the size
    detection works at); other formats are refused past it, and every photo
    past ``service.max_query_pixels`` in its header (``ImageError``
    "image_too_large", before any pixel is decoded). A photo within the
    limit is decoded whole, as the indexer decodes it: a search by an
    indexed photo finds it at distance 0 (``indexer.images.decode_within``)."""
    return decode_within(data, max_pixels=service.max_query_pixels, min_side=detection.max_side,
                         max_decoded_pixels=service.max_decoded_pixels)


def person_fields(attribution: Attribution | None) -> dict[str, Any]:
    """The ``person``, ``person_id`` and ``person_source`` of a face in a response."""
    if attribution is None:
        return {"person": None, "person_id": None, "person_source": None}
    return {"person": attribution.name, "person_id": attribution.person_id, "person_source": attribution.source}


def box_model(box: Box) -> BoxModel:
    return BoxModel.model_construct(top=box.top, right=box.right, bottom=box.bottom, left=box.left)


def nearest_faces(
    store: FaceStore,
    x: np.ndarray,
    k: int,
    max_distance: float | None = None,
    people: PeopleLookup | None = None,
    exact: bool = False,
) -> list[list[Match]]:
    """For each row of ``x`` (n, 128), up to ``k`` indexed faces by ascending
    Euclidean distance, at most ``max_distance`` away when given, each with
    its person from ``people`` (null without). Faces whose metadata
    has gone (removed since the index was loaded) are skipped. ``exact``:
    compare with every face even where the store searches approximately."""
    x = np.ascontiguousarray(x, dtype=np.float32).reshape(-1, 128)
    if store.count() == 0 or len(x) == 0:
        return [[] for _ in range(len(x))]
    distances_sq, ids = store.search(x, min(k, store.count()), exact=exact)
    distances = np.sqrt(np.maximum(distances_sq, 0.0))
    found = [int(i) for i in ids.ravel() if i >= 0]
    records = store.faces(found)
    names = people(found) if people is not None else {}
    results: list[list[Match]] = []
    for row_d, row_i in zip(distances, ids):
        matches = []
        for dist, face_id in zip(row_d.tolist(), row_i.tolist()):  # Python floats: a huge max_distance stays one
            if face_id < 0 or (max_distance is not None and dist > max_distance):
                continue
            record = records.get(int(face_id))
            if record is None:
                continue
            # model_construct: these values come from the store, already typed;
            # validating ten of them per query costs more than the SQL lookup.
            matches.append(
                Match.model_construct(
                    face_id=int(face_id), distance=float(dist), path=record.path, box=box_model(record.box),
                    photo_id=record.photo_id, **person_fields(names.get(int(face_id))),
                )
            )
        results.append(matches)
    return results


def checked_k(k: int | None, settings: SearchSettings) -> int:
    """The k a search asked for, else the default; ``InvalidRequest`` past
    ``search.max_k``."""
    if k is None:
        return settings.default_k
    if k > settings.max_k:
        raise InvalidRequest(f"k: must be at most {settings.max_k} (search.max_k)")
    return k


def search_by_embedding(
    store: FaceStore,
    embedding: np.ndarray,
    k: int,
    max_distance: float | None,
    people: PeopleLookup | None = None,
    exact: bool = False,
) -> SearchResponse:
    matches = nearest_faces(store, embedding.reshape(1, -1), k, max_distance, people, exact)[0]
    return SearchResponse(faces=[QueryFace(box=None, matches=matches)])


def search_by_photo(
    model: FaceModel,
    store: FaceStore,
    photo: ScaledPhoto,
    detection: DetectionSettings,
    k: int,
    max_distance: float | None,
    people: PeopleLookup | None = None,
    max_faces: int | None = None,
    exact: bool = False,
) -> SearchResponse:
    """Find every face of the query photo with ``model`` (the indexer's own
    detection settings) and search each one, largest face first; with ``max_faces``
    only that many of the largest (``faces_found`` then counts them all).
    Boxes are in the photo's own pixels, whatever scale it was decoded at."""
    boxes = detect_boxes(model, photo.rgb, detection)
    faces = find_faces(model, photo.rgb, detection, max_faces=max_faces, boxes=boxes)
    if not faces:
        return SearchResponse(faces=[])
    per_face = nearest_faces(store, np.stack([f.embedding for f in faces]), k, max_distance, people, exact)
    return SearchResponse(
        faces=[QueryFace(box=box_model(map_box(f.box, photo.scale, photo.width, photo.height)), matches=m)
               for f, m in zip(faces, per_face)],
        faces_found=len(boxes) if len(boxes) > len(faces) else None,
    )
