"""The one seam to OpenCV: open a video file and read frames from it,
sampled at a given rate, as BGR or RGB arrays, and the small grey copies
the motion gate compares (``indexer.motion``).

Nothing else in facesearch imports ``cv2``, and this module imports it only
when a video is opened, so photo-only runs never load it. Frames are decoded
one at a time (``grab``) and only the sampled ones are converted to pixels
(``retrieve``): a video is never read into memory. OpenCV is handed the
file already opened and checked to be a regular file (``indexer.safe_open``),
by its ``/proc/self/fd`` path: FFmpeg never opens a FIFO swapped in at the
path (it would wait for a writer for ever).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Protocol

import numpy as np

from indexer.safe_open import open_regular

# When a stream declares no frame rate and reports no position either, its
# frames are taken to be this many per second.
FALLBACK_FPS = 25.0
# Declared frame rates outside (0, MAX_FPS] are taken as unknown.
MAX_FPS = 1000.0


class VideoError(Exception):
    """The file cannot be read as a video."""


class Capture(Protocol):
    """What sampling needs of a ``cv2.VideoCapture``."""

    def grab(self) -> bool: ...

    def retrieve(self) -> tuple[bool, np.ndarray | None]: ...

    def get(self, prop_id: int) -> float: ...

    def set(self, prop_id: int, value: float) -> bool: ...

    def read(self) -> tuple[bool, np.ndarray | None]: ...

    def release(self) -> None: ...


@dataclass(frozen=True)
class VideoInfo:
    """What the container declares. ``fps`` (frames per second) and
    ``frame_count`` are None when the stream does not say (or says nonsense)."""

    width: int  # pixels
    height: int
    fps: float | None
    frame_count: int | None

    @property
    def duration_s(self) -> float | None:
        """Declared length, seconds (None when unknown)."""
        if self.fps is None or self.frame_count is None:
            return None
        return self.frame_count / self.fps


def _cv2() -> ModuleType:
    """Import OpenCV, its and FFmpeg's logging silenced unless the user set
    them (``OPENCV_LOG_LEVEL``, ``OPENCV_FFMPEG_LOGLEVEL``): a damaged file
    is reported once, as an indexing error, not as decoder chatter."""
    os.environ.setdefault("OPENCV_LOG_LEVEL", "SILENT")
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET
    import cv2

    return cv2


def open_video(path: str) -> VideoReader:
    """Open ``path`` with OpenCV (FFmpeg). Raises ``VideoError`` when it is
    not a regular file (a FIFO, a device: ``indexer.safe_open``), cannot be
    opened, or is not a video OpenCV can read. Close the reader (a context
    manager) after."""
    cv2 = _cv2()
    try:
        with open_regular(path) as handle:
            # FFmpeg opens its own descriptor of the same file here: ours
            # can close after. Where /proc is missing, the path (checked
            # just before) is all there is.
            by_fd = f"/proc/self/fd/{handle.fileno()}"
            capture = cv2.VideoCapture(by_fd if os.path.exists(by_fd) else path)
    except OSError as exc:
        raise VideoError(f"cannot open it: {exc.strerror or exc}") from None
    if not capture.isOpened():
        capture.release()
        raise VideoError("cannot open it as a video (not a video, damaged, or a codec OpenCV cannot read)")
    return VideoReader(capture, cv2)


class VideoReader:
    """An open video: what its container declares (``info``) and its frames,
    sampled. ``capture`` is a ``cv2.VideoCapture`` (or anything with its
    ``grab``/``retrieve``/``get``/``release``); ``cv2`` gives the property ids."""

    def __init__(self, capture: Capture, cv2: ModuleType) -> None:
        self._capture = capture
        self._pos_msec = cv2.CAP_PROP_POS_MSEC
        self._pos_frames = cv2.CAP_PROP_POS_FRAMES
        fps = capture.get(cv2.CAP_PROP_FPS)
        count = capture.get(cv2.CAP_PROP_FRAME_COUNT)
        self.info = VideoInfo(
            width=int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
            height=int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)),
            fps=fps if math.isfinite(fps) and 0 < fps <= MAX_FPS else None,
            frame_count=int(count) if math.isfinite(count) and count > 0 else None,
        )
        self.frames_read = 0  # frames decoded so far
        self.last_time_s = 0.0  # timestamp of the last frame decoded, seconds

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self._capture.release()

    @property
    def duration_s(self) -> float:
        """Length of what was read, seconds: the frames decoded over the
        frame rate, else the last frame's time plus one frame."""
        if self.info.fps is not None:
            return self.frames_read / self.info.fps
        return self.last_time_s + 1.0 / FALLBACK_FPS if self.frames_read else 0.0

    def sampled_frames(self, sample_fps: float) -> Iterator[tuple[float, np.ndarray]]:
        """``sampled_bgr`` with each frame as RGB (a copy)."""
        for timestamp, bgr in self.sampled_bgr(sample_fps):
            yield timestamp, rgb_of(bgr)

    def sampled_bgr(self, sample_fps: float) -> Iterator[tuple[float, np.ndarray]]:
        """``(timestamp in seconds, BGR uint8 array (H, W, 3), OpenCV's own)`` of about
        ``sample_fps`` frames per second of video (one every ``1 / sample_fps``
        seconds, the first frame included), in order.

        Every frame is grabbed (decoded: inter-frame codecs need it); only
        the sampled ones are retrieved (converted to pixels). A frame's time
        is its index over the declared frame rate; a stream without one gives
        its position after each grab, and when that does not advance either,
        ``FALLBACK_FPS`` is assumed. A frame is sampled when it is within half
        a frame of the next grid time, so that rounding never skips one. Ends
        at the end of the stream or at the first frame that cannot be read (a
        truncated file gives what it has)."""
        fps = self.info.fps
        half_frame = 0.5 / fps if fps is not None else 0.0
        next_sample = 0.0
        while self._capture.grab():
            self.last_time_s = self._frame_time(self.frames_read)
            self.frames_read += 1
            if self.last_time_s + half_frame < next_sample:
                continue
            ok, bgr = self._capture.retrieve()
            if not ok or bgr is None:
                continue  # this frame cannot be converted: the next one stands in for it
            next_sample = (math.floor((self.last_time_s + half_frame) * sample_fps) + 1) / sample_fps
            yield self.last_time_s, bgr

    def frame_at(self, seconds: float) -> np.ndarray:
        """The frame at ``seconds`` into the video (as ``sampled_frames``
        timed it: its index over the frame rate), RGB uint8 (H, W, 3).
        Seeks (to the frame index when the rate is known, else to the time)
        instead of decoding everything before it. ``VideoError`` when there is
        no such frame."""
        if self.info.fps is not None:
            self._capture.set(self._pos_frames, float(round(seconds * self.info.fps)))
        else:
            self._capture.set(self._pos_msec, float(seconds) * 1000.0)
        ok, bgr = self._capture.read()
        if not ok or bgr is None:
            raise VideoError(f"no frame at {seconds:.3f} s")
        return np.ascontiguousarray(bgr[:, :, ::-1])

    def _frame_time(self, index: int) -> float:
        """Seconds into the video of the frame just grabbed, the ``index``-th."""
        if self.info.fps is not None:
            return index / self.info.fps
        position = self._capture.get(self._pos_msec) / 1000.0
        if not math.isfinite(position) or position < 0:
            position = 0.0
        if index == 0 or position > self.last_time_s:
            return position
        return self.last_time_s + 1.0 / FALLBACK_FPS


def rgb_of(bgr: np.ndarray) -> np.ndarray:
    """An OpenCV BGR frame as a contiguous RGB copy (``cvtColor``: ~10x
    faster than numpy's copy of the reversed channels, ~5 ms at 720p)."""
    cv2 = _cv2()
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def small_grey(bgr: np.ndarray, width: int) -> np.ndarray:
    """A BGR frame as a grey copy ``width`` pixels wide (reduced first,
    then made grey: ~0.5 ms at 720p), int16 for differences."""
    cv2 = _cv2()
    height, frame_width = bgr.shape[:2]
    size = (width, max(1, round(height * width / max(frame_width, 1))))
    small = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(small, cv2.COLOR_BGR2GRAY).astype(np.int16)
