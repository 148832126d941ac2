"""Faces drawn by hand: a box drawn on a photo around a face the detector
missed is encoded like any other face (dlib's landmarks and chip inside the
box, the same 128-d embedding) and added to the index beside the photo's
other faces, whose ids stay as they are.

What is kept is the place, never the face: the file's content hash and the
box (``AnnotationsDB.drawn``). Every index run that encodes a file of that
content again (it changed back, ``--full``, a new detector) encodes its
drawn boxes too, unless the detector now finds a face there (IoU >=
``SAME_FACE_IOU``); so a drawn face survives reindexing and the people
named on it follow it (``indexer.people.carry_over``). An erased drawn face
does not come back: its place is an erased place like any other.

Adding or taking back one face writes a new generation (``indexer.amend``),
under the index lock: refused while a reindex runs (``IndexBusyError``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from config.settings import Settings
from indexer.amend import amend
from indexer.faces import thumbnail_jpeg
from indexer.hashing import content_hash
from indexer.images import ImageError, decode_rgb
from indexer.model import Box, FaceModel
from indexer.people.annotations import AnnotationsDB
from indexer.safe_open import read_regular
from indexer.store import FaceStore
from indexer.store.backends import connection_held
from indexer.store.generations import IndexLock
from indexer.store.metadata import NewFace
from indexer.tracks import iou

log = logging.getLogger(__name__)

SAME_FACE_IOU = 0.5  # a drawn box overlapping a found face this much is that face
MIN_SIDE_PX = 12  # smaller, dlib's landmarks have nothing to go on


class DrawnBoxError(ValueError):
    """A box that cannot be a face of this photo (outside it, too small)."""


class FaceAlreadyThere(ValueError):
    """The drawn box is a face the index has already."""


class NotAdded(ValueError):
    """The face was not added: a face erased from this photo was there, or
    the photo changed since it was shown."""


class NotDrawn(ValueError):
    """Taking back a face that was not drawn (found by the detector)."""


@dataclass(frozen=True)
class DrawnFace:
    """A drawn face as added: its new id, and where it is."""

    face_id: int
    path: str
    content_hash: str
    box: Box


def check_box(box: Box, width: int, height: int, found: list[Box]) -> None:
    """``DrawnBoxError`` unless ``box`` lies in a ``width`` x ``height``
    photo and is at least ``MIN_SIDE_PX`` a side; ``FaceAlreadyThere`` when
    it is one of the ``found`` faces."""
    if not (0 <= box.left < box.right <= width and 0 <= box.top < box.bottom <= height):
        raise DrawnBoxError(f"the box must lie inside the photo ({width} x {height} pixels)")
    if box.width < MIN_SIDE_PX or box.height < MIN_SIDE_PX:
        raise DrawnBoxError(f"the box is too small: draw it at least {MIN_SIDE_PX} pixels a side around the face")
    for number, other in enumerate(found, start=1):
        if iou(box, other) >= SAME_FACE_IOU:
            raise FaceAlreadyThere(f"that is face {number} of this photo, found already")


def encode_boxes(model: FaceModel, rgb: np.ndarray, boxes: list[Box], settings: Settings) -> list[NewFace]:
    """The faces at ``boxes`` of ``rgb`` (the file's full-resolution
    pixels), encoded and cut out as the indexer does its own."""
    if not boxes:
        return []
    embeddings = model.encoder.embeddings(rgb, boxes, jitters=settings.detection.jitters)
    return [NewFace(box, embeddings[i], thumbnail_jpeg(rgb, box, settings.thumbnails)) for i, box in enumerate(boxes)]


def redrawn(path: str, content: str, found: list[Box], drawn: list[tuple[int, int, int, int]],
            model: FaceModel, settings: Settings) -> list[NewFace]:
    """At indexing, a file of content ``content`` encoded again: its drawn
    boxes the detector did not find (``found``), encoded from the file
    (read again; none when it changed meanwhile: the next run has it)."""
    boxes = [Box(*b) for b in drawn if not any(iou(Box(*b), f) >= SAME_FACE_IOU for f in found)]
    if not boxes:
        return []
    try:
        data = read_regular(path)
        if content_hash(data) != content:
            return []
        return encode_boxes(model, decode_rgb(data, max_pixels=settings.indexer.max_image_pixels), boxes, settings)
    except (OSError, ImageError) as exc:  # gone or broken since the worker read it: the next run has it
        log.warning("the faces drawn on %s are left for the next run: %s", path, exc)
        return []


def add_drawn_face(data_dir: Path, path: str, content: str, face: NewFace, annotations: AnnotationsDB,
                   settings: Settings) -> DrawnFace:
    """Add ``face`` (encoded by ``encode_boxes``) to the indexed photo at
    ``path`` of content ``content``, in a new published generation, and
    remember its place. ``NotAdded``, ``IndexBusyError``."""
    box = (face.box.top, face.box.right, face.box.bottom, face.box.left)
    added: list[int] = []

    def change(store: FaceStore) -> bool:
        added.extend(store.add_faces(path, content, [face]))
        return bool(added)

    with IndexLock(data_dir, command="facesearch draw"), connection_held(data_dir, settings):
        annotations.add_drawn(content, box)  # first: a crash after publishing still leaves it remembered
        try:
            amend(data_dir, settings, change)
        finally:
            if not added:
                annotations.forget_drawn(content, box)
    if not added:
        raise NotAdded("the face was not added: a face erased from this photo was there, "
                       "or the photo changed since (reload the page)")
    return DrawnFace(added[0], path, content, face.box)


def remove_drawn_face(data_dir: Path, store: FaceStore, face_id: int, annotations: AnnotationsDB,
                      settings: Settings) -> DrawnFace:
    """Take back a drawn face (of ``store``, the published generation): it
    leaves the index and the annotations, and its place is forgotten
    (drawing it again is allowed: it is not an erasure). ``NotDrawn``,
    ``IndexBusyError``; an unknown face: ``LookupError``."""
    record = store.faces([face_id]).get(face_id)
    if record is None:
        raise LookupError(face_id)
    box = (record.box.top, record.box.right, record.box.bottom, record.box.left)
    if box not in annotations.drawn().get(record.content_hash, []):
        raise NotDrawn(f"face {face_id} was found by the detector, not drawn: erase it instead")
    with IndexLock(data_dir, command="facesearch draw"), connection_held(data_dir, settings):
        amend(data_dir, settings, lambda s: bool(s.erase_faces([face_id], remember=False)), erasure=True)
        annotations.forget_drawn(record.content_hash, box)
        annotations.forget_faces([face_id])
    return DrawnFace(face_id, record.path, record.content_hash, record.box)
