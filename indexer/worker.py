"""The work done for one file, in a worker process: read, hash, decode,
find and encode faces, cut thumbnails; for a video, on sampled frames, with
the faces linked into tracks (``indexer/tracks.py``). Returns plain
picklable data."""

from __future__ import annotations

import multiprocessing
import os
import signal
from dataclasses import dataclass, field, replace

from config.settings import Settings, VideoSettings
from indexer.faces import find_faces, thumbnail_jpeg
from indexer.hashing import content_hash, file_hash
from indexer.images import ImageError, capture_time, decode_rgb
from indexer.model import FaceModel
from indexer.motion import MotionGate
from indexer.recording_time import recording_start
from indexer.safe_open import read_regular
from indexer.store.metadata import FaceTime, NewFace
from indexer.tracks import Sighting, Track, Tracker
from indexer.video import VideoError, open_video, rgb_of

_settings: Settings | None = None
_model: FaceModel | None = None  # what this worker process finds and encodes faces with


@dataclass
class PhotoResult:
    """Outcome for one file, a photo or a video (``kind``). ``error`` set: it
    could not be used. ``unchanged`` set: its content hash matched the stored
    one, nothing was decoded. ``faces``: what ``FaceStore.put_file`` stores."""

    path: str
    size: int
    mtime_ns: int
    content_hash: str = ""
    width: int = 0  # pixels (a video's frame size)
    height: int = 0
    faces: list[NewFace] = field(default_factory=list)
    unchanged: bool = False
    error: str | None = None
    # POSIX seconds: a photo's EXIF capture time, a video's recording start
    # (MP4/QuickTime header), else the file's mtime.
    taken_at: float | None = None
    kind: str = "photo"
    duration_s: float | None = None  # a video's length, seconds
    frames_searched: int = 0  # a video's sampled frames the detector searched...
    frames_skipped: int = 0  # ...and those motion gating spared (nothing moved)


def init_worker(settings_json: str, model: FaceModel) -> None:
    """Pool initializer: one BLAS/OpenMP thread per process (processes give
    the parallelism; more threads only fight), then load ``model`` once.
    In a pool process, SIGINT is ignored: Ctrl-C reaches the whole process
    group, and only the parent decides (stop the pool, or let the run finish
    under ``index --watch``); a worker killed mid-photo would leave the pool
    waiting for its result forever."""
    if multiprocessing.parent_process() is not None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    prepare(settings_json, model)


def prepare(settings_json: str, model: FaceModel) -> None:
    """Set this process up to process files: the settings, one BLAS/OpenMP
    thread, ``model`` loaded (also what a Dask worker does once,
    ``indexer.distributed``)."""
    global _settings, _model
    # The variables hold for a BLAS loaded from now on (OpenBLAS reads them
    # when it loads); threadpool_limits, called once the model is loaded,
    # sets every one loaded by then: numpy's, FAISS's and, in the fast build
    # (make install FAST=1), dlib's own OpenBLAS, even if it was loaded
    # before this call (the 1-worker path runs it in the main process).
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"
    _settings = Settings.model_validate_json(settings_json)
    _model = model
    model.load([_settings.detection.model])
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)


def process_file(job: tuple[str, int, int, str | None]) -> PhotoResult:
    """Process ``(path, size, mtime_ns, known_hash)`` with the settings and
    the model ``prepare`` was given: as a video when its name ends with one
    of ``indexer.video_extensions``, else as a photo. Never raises for a bad
    file: the error is returned in the result."""
    assert _settings is not None and _model is not None, "prepare was not called"
    if job[0].lower().endswith(tuple(_settings.indexer.video_extensions)):
        return process_video(job, _settings, _model)
    return process_photo(job, _settings, _model)


def process_photo(job: tuple[str, int, int, str | None], settings: Settings, model: FaceModel) -> PhotoResult:
    """Process a photo: hash its bytes, then (if they changed) decode it and
    find, encode and cut out its faces."""
    path, size, mtime_ns, known_hash = job
    result = PhotoResult(path=path, size=size, mtime_ns=mtime_ns)
    try:
        data = read_regular(path)  # a FIFO or device swapped in since the scan: refused, never read
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
        for face in find_faces(model, rgb, settings.detection):
            result.faces.append(NewFace(face.box, face.embedding, thumbnail_jpeg(rgb, face.box, settings.thumbnails)))
    except ImageError as exc:
        result.error = str(exc)
    except Exception as exc:  # a model failure on one photo must not end the run
        result.error = f"{type(exc).__name__}: {exc}"
    return result


def process_video(job: tuple[str, int, int, str | None], settings: Settings, model: FaceModel) -> PhotoResult:
    """Process a video: hash it (streamed), then (if it changed) sample its
    frames at ``video.sample_fps``, find and encode the faces of each, link
    them into tracks and keep ``video.faces_per_track`` faces per track, each
    with its own timestamp and its track's time range; thumbnails are cut
    from the frame. Videos longer than ``video.max_duration_s`` are errors."""
    path, size, mtime_ns, known_hash = job
    result = PhotoResult(path=path, size=size, mtime_ns=mtime_ns, kind="video")
    try:
        result.size, result.content_hash = file_hash(path)
    except OSError as exc:
        result.error = f"cannot read: {exc.strerror or exc}"
        return result
    if known_hash is not None and result.content_hash == known_hash:
        result.unchanged = True
        return result
    try:
        tracker = Tracker(settings.video)
        gate = MotionGate(settings.video)
        sampled = 0
        sightings: list[Sighting] = []
        with open_video(path) as reader:
            _check_length(reader.info.duration_s, settings.video)
            for timestamp, bgr in reader.sampled_bgr(settings.video.sample_fps):
                _check_length(timestamp, settings.video)
                if gate.search(timestamp, bgr):
                    rgb = rgb_of(bgr)  # only a frame searched is converted
                    sightings = [
                        Sighting(timestamp, face.box, face.embedding,
                                 thumbnail_jpeg(rgb, face.box, settings.thumbnails))
                        for face in find_faces(model, rgb, settings.detection, second_pass=False)
                    ]
                else:  # nothing moved: whoever was there still is, at this time
                    sightings = [replace(s, timestamp=timestamp) for s in sightings]
                tracker.add_frame(timestamp, sightings)
                result.height, result.width = bgr.shape[:2]
                sampled += 1
            result.duration_s = reader.duration_s
        if not sampled:
            raise VideoError("no frame could be decoded")
        result.faces = track_faces(tracker.finish())
        result.frames_searched, result.frames_skipped = gate.searched, gate.skipped
        start = recording_start(path)
        result.taken_at = start if start is not None else mtime_ns / 1e9
    except VideoError as exc:
        result.error = str(exc)
    except Exception as exc:  # a decoder or model failure on one video must not end the run
        result.error = f"{type(exc).__name__}: {exc}"
    return result


def track_faces(tracks: list[Track]) -> list[NewFace]:
    """The faces to store for ``tracks``: their representatives, each with
    its own timestamp and its track's number and time range, by time."""
    timed = sorted(((s, FaceTime(s.timestamp, track.number, track.start, track.end))
                    for track in tracks for s in track.representatives()),
                   key=lambda pair: (pair[1].timestamp, pair[1].track))
    return [NewFace(s.box, s.embedding, s.jpeg, at) for s, at in timed]


def _check_length(seconds: float | None, video: VideoSettings) -> None:
    """Refuse a video longer than ``video.max_duration_s`` (0: no limit)."""
    if video.max_duration_s and seconds is not None and seconds > video.max_duration_s:
        raise VideoError(
            f"the video is longer than video.max_duration_s ({video.max_duration_s:g} s): not indexed; "
            "raise that setting to index it"
        )
