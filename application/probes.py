"""Probes: the faces a search by photo starts from. A probe photo's
largest face is its probe (recall, erasure by photo, the sightings page,
``facesearch erase --probe``); embeddings sent as probes are checked the
same way. Bounded by ``recall.max_probes`` per request."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from application.errors import InvalidRequest, NoFaceFound
from application.searching import decode_query
from config.settings import DetectionSettings, Settings
from indexer.faces import find_faces, thumbnail_jpeg
from indexer.images import ImageError
from indexer.model import EMBEDDING_DIM, FaceModel


def probes_of_photos(model: FaceModel, photos: Sequence[tuple[str, bytes]], settings: Settings,
                     detection: DetectionSettings) -> np.ndarray:
    """The largest face of each ``(name, bytes)`` photo, found and encoded
    by ``model``, (p, 128) float32.
    ``InvalidRequest`` past ``recall.max_probes``; ``ImageError`` (the
    photo's number said) for a photo that cannot be used; ``NoFaceFound``
    for one that shows no face."""
    _check_count(len(photos), settings, "probe photos")
    probes = []
    for number, (name, data) in enumerate(photos, start=1):
        try:
            probes.append(probe_of_photo(model, data, settings, detection))
        except ImageError as exc:
            raise ImageError(f"probe {number}: {exc}", code=exc.code) from None
        except NoFaceFound:
            raise NoFaceFound(f"probe {number} ({(name or 'upload')[:100]}) shows no face") from None
    return np.stack(probes).astype(np.float32) if probes else np.zeros((0, EMBEDDING_DIM), np.float32)


def probe_of_photo(model: FaceModel, data: bytes, settings: Settings, detection: DetectionSettings) -> np.ndarray:
    """The largest face of one photo, (128,) float32: ``ImageError`` for a
    photo that cannot be used, ``NoFaceFound`` for one with no face (the
    caller names the photo in its message)."""
    return probe_face_of_photo(model, data, settings, detection)[0]


def probe_face_of_photo(model: FaceModel, data: bytes, settings: Settings,
                        detection: DetectionSettings) -> tuple[np.ndarray, bytes]:
    """``probe_of_photo``, with a small JPEG of the face to show the person
    asking what was searched (made here, kept nowhere)."""
    photo = decode_query(data, settings.service, detection)
    faces = find_faces(model, photo.rgb, detection, max_faces=1)  # only the largest face is a probe
    if not faces:
        raise NoFaceFound("no face")
    return faces[0].embedding, thumbnail_jpeg(photo.rgb, faces[0].box, settings.thumbnails)


def probes_of_embeddings(embeddings: Sequence[Sequence[float]], settings: Settings) -> np.ndarray:
    """Embeddings sent as probes, (p, 128) float32; ``InvalidRequest`` past
    ``recall.max_probes``."""
    _check_count(len(embeddings), settings, "embeddings")
    return np.asarray(embeddings, dtype=np.float32).reshape(-1, EMBEDDING_DIM)


def _check_count(count: int, settings: Settings, what: str) -> None:
    if count > settings.recall.max_probes:
        raise InvalidRequest(f"at most {settings.recall.max_probes} {what} per request (recall.max_probes)")
