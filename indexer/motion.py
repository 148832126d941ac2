"""Motion gating for video (``video.motion_gating``): most frames of a
fixed camera show what the last one did. A sampled frame is compared with
the last frame the detector searched, on small grey copies (``WIDTH``
pixels wide, blurred by the reduction itself); when less than
``video.motion_fraction`` of their pixels changed by more than
``LEVELS`` grey levels, and the last search is less than
``video.keyframe_s`` old, the frame is not searched: whatever was found
there is taken as still there. The copy costs ~0.5 ms a 720p frame against
tens for the detector."""

from __future__ import annotations

import numpy as np

from config.settings import VideoSettings
from indexer.video import small_grey

WIDTH = 160  # pixels: the grey copy's width
LEVELS = 12  # grey levels a pixel must change by to count (compression noise stays under)


class MotionGate:
    """Says, frame by frame, whether the detector must search it."""

    def __init__(self, settings: VideoSettings) -> None:
        self.settings = settings
        self.last: np.ndarray | None = None  # the grey copy of the last frame searched
        self.last_at = -np.inf  # when that frame was, seconds into the video
        self.skipped = 0
        self.searched = 0

    def search(self, timestamp: float, bgr: np.ndarray) -> bool:
        """Whether the frame at ``timestamp`` (BGR) must be searched (it
        moved, or the last search is ``keyframe_s`` old); counts both."""
        grey = small_grey(bgr, WIDTH) if self.settings.motion_gating else None
        due = (grey is None or self.last is None or grey.shape != self.last.shape
               or timestamp - self.last_at >= self.settings.keyframe_s
               or float(np.mean(np.abs(grey - self.last) > LEVELS)) >= self.settings.motion_fraction)
        if due:
            self.last, self.last_at = grey, timestamp
            self.searched += 1
        else:
            self.skipped += 1
        return due
