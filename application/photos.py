"""Photos by id: an indexed file with its faces and their people, and a
downscaled JPEG of it for the web pages.

Only files that are in the index are ever read, by the id the index gave
them (no request names a path). A path that is now a FIFO, socket or device
(or a symlink to one) is refused without blocking and without being read
(``indexer.safe_open``). Before serving, the file is checked against what
was indexed, on the open file (no window between check and read):

- a photo: size and modification time, then the content hash of the bytes
  read (blake2b, as indexing computed it), so what is served is exactly
  what was indexed: a file edited since, or a symlink swapped to point at
  another file, is refused;
- a video (too large to hash at every request): size and modification
  time, and the content hash the first time this server process sees that
  file (device, inode, size, mtime and ctime: ctime cannot be set back, so
  any write or swap since makes it hash again); the frame is then read
  through the same open file (``/proc/self/fd``).

A file gone, changed or unreadable is ``PhotoUnavailable`` (the API's 404
with the reason).
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import BinaryIO

import numpy as np

from application.errors import FaceNotFound, PhotoNotFound, PhotoUnavailable
from application.schemas import PhotoFaceModel, PhotoResponse
from application.searching import box_model, person_fields
from indexer.hashing import content_hash, hash_stream
from indexer.images import ImageError, decode_rgb, preview_jpeg, rgb_jpeg
from indexer.people.annotations import AnnotationsDB
from indexer.safe_open import NotRegularFile, open_regular
from indexer.store import FaceRecord, FaceStore, PhotoRecord
from indexer.video import VideoError, open_video

# Videos whose content hash this process has checked: (dev, inode, size,
# mtime_ns, ctime_ns) -> content hash. Bounded: the oldest are forgotten.
_VERIFIED_VIDEOS: OrderedDict[tuple[int, int, int, int, int], str] = OrderedDict()
_VERIFIED_LOCK = threading.Lock()
MAX_VERIFIED_VIDEOS = 256


def photo_response(store: FaceStore, annotations: AnnotationsDB, photo_id: int) -> PhotoResponse:
    record = _record(store, photo_id)
    people = annotations.attributions([f.face_id for f in record.faces])
    return PhotoResponse(
        photo_id=record.photo_id, path=record.path, width=record.width, height=record.height,
        kind="video" if record.kind == "video" else "photo", time=record.taken_at, duration_s=record.duration_s,
        content_hash=record.content_hash, indexed_at=record.indexed_at,
        faces=[
            PhotoFaceModel(face_id=f.face_id, box=box_model(f.box), timestamp=f.timestamp,
                           **person_fields(people.get(f.face_id)))
            for f in record.faces
        ],
    )


def photo_jpeg(store: FaceStore, photo_id: int, *, max_side: int, face_id: int | None = None,
               max_pixels: int = 100_000_000) -> tuple[bytes, str]:
    """(JPEG bytes of at most ``max_side`` pixels on the longest side, the
    file's content hash) of an indexed photo, or of the frame of a video's
    face (``face_id``, default its first face). ``PhotoNotFound``,
    ``PhotoUnavailable``; a ``face_id`` not of this file is ``PhotoNotFound``."""
    record = _record(store, photo_id)
    if face_id is not None and face_id not in {f.face_id for f in record.faces}:
        raise PhotoNotFound(f"photo {photo_id} has no face {face_id}")
    with _open_checked(record) as handle:
        if record.kind == "video":
            face = next((f for f in record.faces if f.face_id == face_id), record.faces[0] if record.faces else None)
            frame = _video_frame(record, handle, face.timestamp if face and face.timestamp is not None else 0.0)
            return rgb_jpeg(frame, max_side), record.content_hash
        data = _read_checked(record, handle)
    try:
        return preview_jpeg(data, max_side, max_pixels=max_pixels), record.content_hash
    except ImageError as exc:
        raise PhotoUnavailable(f"{record.path} cannot be decoded any more ({exc})") from None


def photo_rgb(store: FaceStore, photo_id: int, *, max_pixels: int) -> tuple[PhotoRecord, np.ndarray]:
    """An indexed photo (not a video: ``PhotoNotFound``) and its pixels at
    full resolution, exactly as indexed (``PhotoUnavailable`` otherwise)."""
    record = _record(store, photo_id)
    if record.kind == "video":
        raise PhotoNotFound(f"{record.path} is a video: faces are drawn on photos")
    with _open_checked(record) as handle:
        data = _read_checked(record, handle)
    try:
        return record, decode_rgb(data, max_pixels=max_pixels)
    except ImageError as exc:
        raise PhotoUnavailable(f"{record.path} cannot be decoded any more ({exc})") from None


def face_pixels(store: FaceStore, face_id: int, *, max_pixels: int) -> tuple[FaceRecord, np.ndarray]:
    """An indexed face and the pixels it was found in: its photo at full
    resolution, or its video's frame (``FaceNotFound``, ``PhotoUnavailable``)."""
    face = store.faces([face_id]).get(face_id)
    if face is None or face.photo_id is None:
        raise FaceNotFound(f"no face with id {face_id} in the index")
    record = _record(store, face.photo_id)
    with _open_checked(record) as handle:
        if record.kind == "video":
            return face, _video_frame(record, handle, face.timestamp or 0.0)
        data = _read_checked(record, handle)
    try:
        return face, decode_rgb(data, max_pixels=max_pixels)
    except ImageError as exc:
        raise PhotoUnavailable(f"{record.path} cannot be decoded any more ({exc})") from None


def _read_checked(record: PhotoRecord, handle: BinaryIO) -> bytes:
    data = handle.read()
    if content_hash(data) != record.content_hash:
        raise PhotoUnavailable(f"{record.path} has changed since it was indexed (its content differs): reindex it")
    return data


def _record(store: FaceStore, photo_id: int) -> PhotoRecord:
    record = store.photo(photo_id)
    if record is None:
        raise PhotoNotFound(f"no photo with id {photo_id} in the index")
    return record


def _open_checked(record: PhotoRecord) -> BinaryIO:
    """The indexed file opened read-only, after checking that it is a
    regular file (without blocking on a FIFO) of the indexed size and
    modification time."""
    try:
        handle = open_regular(record.path)
    except FileNotFoundError:
        raise PhotoUnavailable(f"{record.path} is gone from disk since it was indexed") from None
    except NotRegularFile as exc:
        raise PhotoUnavailable(f"{record.path} is not a regular file now ({exc.kind}): not read") from None
    except OSError as exc:
        raise PhotoUnavailable(f"{record.path} cannot be read ({exc.strerror})") from None
    info = os.fstat(handle.fileno())
    if info.st_size != record.size or info.st_mtime_ns != record.mtime_ns:
        handle.close()
        raise PhotoUnavailable(f"{record.path} has changed since it was indexed (size or time): reindex it")
    return handle


def _video_frame(record: PhotoRecord, handle: BinaryIO, seconds: float) -> np.ndarray:
    """The frame at ``seconds`` of the open video ``handle``, once its content is checked."""
    fd = handle.fileno()
    info = os.fstat(fd)
    identity = (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)
    with _VERIFIED_LOCK:
        known = _VERIFIED_VIDEOS.get(identity)
    if known is None:
        handle.seek(0)
        _, known = hash_stream(handle)
        with _VERIFIED_LOCK:
            _VERIFIED_VIDEOS[identity] = known
            while len(_VERIFIED_VIDEOS) > MAX_VERIFIED_VIDEOS:
                _VERIFIED_VIDEOS.popitem(last=False)
    if known != record.content_hash:
        raise PhotoUnavailable(f"{record.path} has changed since it was indexed (its content differs): reindex it")
    by_fd = Path(f"/proc/self/fd/{fd}")
    try:
        with open_video(str(by_fd) if by_fd.exists() else record.path) as video:
            return video.frame_at(seconds)
    except VideoError as exc:
        raise PhotoUnavailable(f"{record.path}: {exc}") from None
