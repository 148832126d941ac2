"""The work done for one photo, in a worker process: read, hash, decode,
find and encode faces, cut thumbnails. Returns plain picklable data."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import signal
from dataclasses import dataclass, field

import numpy as np

from config.settings import Settings
from indexer.faces import find_faces, thumbnail_jpeg
from indexer.images import ImageError, capture_time, decode_rgb
from indexer.model import Box

_settings: Settings | None = None


@dataclass
class PhotoResult:
    """Outcome for one file. ``error`` set: it could not be used. ``unchanged``
    set: its content hash matched the stored one, nothing was decoded."""

    path: str
    size: int
    mtime_ns: int
    content_hash: str = ""
    width: int = 0
    height: int = 0
    faces: list[tuple[Box, np.ndarray, bytes]] = field(default_factory=list)
    unchanged: bool = False
    error: str | None = None
    taken_at: float | None = None  # POSIX seconds: EXIF capture time, else the file's mtime


def content_hash(data: bytes) -> str:
    """blake2b-256 of the file bytes, hex."""
    return hashlib.blake2b(data, digest_size=32).hexdigest()


def init_worker(settings_json: str) -> None:
    """Pool initializer: one BLAS/OpenMP thread per process (processes give
    the parallelism; more threads only fight), then load the model once.
    In a pool process, SIGINT is ignored: Ctrl-C reaches the whole process
    group, and only the parent decides (stop the pool, or let the run finish
    under ``index --watch``); a worker killed mid-photo would leave the pool
    waiting for its result forever."""
    global _settings
    if multiprocessing.parent_process() is not None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    _settings = Settings.model_validate_json(settings_json)
    from indexer import model

    model.load()


def process_photo(job: tuple[str, int, int, str | None], settings: Settings | None = None) -> PhotoResult:
    """Process ``(path, size, mtime_ns, known_hash)``. Never raises for a bad
    file: the error is returned in the result."""
    settings = settings or _settings
    assert settings is not None, "init_worker was not called"
    path, size, mtime_ns, known_hash = job
    result = PhotoResult(path=path, size=size, mtime_ns=mtime_ns)
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        result.error = f"cannot read: {exc.strerror or exc}"
        return result
    result.size = len(data)
    result.content_hash = content_hash(data)
    if known_hash is not None and result.content_hash == known_hash:
        result.unchanged = True
        return result
    try:
        rgb = decode_rgb(data, max_pixels=settings.indexer.max_image_pixels)
        taken = capture_time(data)
        result.taken_at = taken if taken is not None else mtime_ns / 1e9
        result.height, result.width = rgb.shape[:2]
        for face in find_faces(rgb, settings.detection):
            result.faces.append((face.box, face.embedding, thumbnail_jpeg(rgb, face.box, settings.thumbnails)))
    except ImageError as exc:
        result.error = str(exc)
    except Exception as exc:  # a model failure on one photo must not end the run
        result.error = f"{type(exc).__name__}: {exc}"
    return result
