"""Link the faces found on a video's sampled frames into tracks (one person's
continuous appearance) and keep a few representative faces of each, so that
someone standing in front of a camera for a minute is 3 faces, not 120.

A face continues a track when its box overlaps the track's last box (IoU at
least ``track_iou``) and its embedding is within ``track_distance``
(Euclidean) of the track's last embedding; the track's last sighting, not
its first, is the reference, so slow changes (turning the head, walking
nearer) keep it going. Faces and tracks are paired greedily, nearest
embeddings first, each face and each track at most once per frame. A track
not seen for more than ``max_gap_s`` seconds (and at least one sample
interval) ends; a face that continues no track starts one.

Representatives (``faces_per_track`` = n): the first and the last sighting
(the entry and exit poses, which differ most from each other, and the two
ends of the time range) and the n - 2 sightings with the largest box in
between (nearest the camera: the most pixels, the most reliable embedding);
n = 1 keeps the largest only. This is computed as the frames come, holding
at most max(n, 3) sightings per track whatever its length.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field

import numpy as np

from config.settings import VideoSettings
from indexer.model import Box

# Slack on time comparisons, seconds: frame times are float sums.
TIME_EPSILON = 1e-3


@dataclass(frozen=True, eq=False)
class Sighting:
    """One face on one sampled frame: its time (seconds into the video), box
    (frame pixels), 128-d embedding and thumbnail JPEG (cut from the frame)."""

    timestamp: float
    box: Box
    embedding: np.ndarray
    jpeg: bytes

    def rank(self) -> tuple[int, float]:
        """Larger box first, then earlier (heap order: the smallest is dropped)."""
        return (self.box.area, -self.timestamp)


@dataclass
class Track:
    """One person's continuous appearance. ``number`` counts tracks within
    the video from 0 in the order they start."""

    number: int
    first: Sighting
    last: Sighting
    keep: int  # faces_per_track
    sightings: int = 1
    # The largest sightings strictly between first and last, as a min-heap
    # of (rank, tie-breaker, sighting).
    _middle: list[tuple[tuple[int, float], int, Sighting]] = field(default_factory=list)

    @property
    def start(self) -> float:
        """Seconds into the video of the first sighting."""
        return self.first.timestamp

    @property
    def end(self) -> float:
        """Seconds into the video of the last sighting."""
        return self.last.timestamp

    def add(self, sighting: Sighting) -> None:
        """Continue the track with a later sighting."""
        capacity = 1 if self.keep == 1 else self.keep - 2
        if self.sightings > 1 and capacity:  # the old last one is now in the middle
            heapq.heappush(self._middle, (self.last.rank(), self.sightings, self.last))
            if len(self._middle) > capacity:
                heapq.heappop(self._middle)
        self.last = sighting
        self.sightings += 1

    def representatives(self) -> list[Sighting]:
        """At most ``keep`` sightings, in time order (see the module doc)."""
        middle = [item[2] for item in self._middle]
        ends = [self.first] if self.sightings == 1 else [self.first, self.last]
        if self.keep == 1:
            return [max(ends + middle, key=Sighting.rank)]
        return sorted(ends + middle, key=lambda s: s.timestamp)


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes (0 when they do not touch)."""
    height = min(a.bottom, b.bottom) - max(a.top, b.top)
    width = min(a.right, b.right) - max(a.left, b.left)
    if height <= 0 or width <= 0:
        return 0.0
    inter = height * width
    return inter / (a.area + b.area - inter)


class Tracker:
    """Feed it the faces of each sampled frame in time order
    (``add_frame``), then ``finish`` for the tracks."""

    def __init__(self, settings: VideoSettings) -> None:
        self.settings = settings
        # A track survives at least until the next sample, whatever max_gap_s.
        self.max_gap_s = max(settings.max_gap_s, 1.0 / settings.sample_fps) + TIME_EPSILON
        self._open: list[Track] = []
        self._closed: list[Track] = []
        self._count = 0

    def add_frame(self, timestamp: float, sightings: list[Sighting]) -> None:
        """The faces found on the frame at ``timestamp`` (seconds)."""
        still_open: list[Track] = []
        for track in self._open:
            (still_open if timestamp - track.end <= self.max_gap_s else self._closed).append(track)
        self._open = still_open
        pairs = []
        for t, track in enumerate(self._open):
            for s, sighting in enumerate(sightings):
                if iou(track.last.box, sighting.box) < self.settings.track_iou:
                    continue
                distance = float(np.linalg.norm(track.last.embedding - sighting.embedding))
                if distance <= self.settings.track_distance:
                    pairs.append((distance, t, s))
        used_tracks: set[int] = set()
        used_sightings: set[int] = set()
        for _, t, s in sorted(pairs):
            if t in used_tracks or s in used_sightings:
                continue
            used_tracks.add(t)
            used_sightings.add(s)
            self._open[t].add(sightings[s])
        for s, sighting in enumerate(sightings):
            if s not in used_sightings:
                self._open.append(Track(self._count, sighting, sighting, self.settings.faces_per_track))
                self._count += 1

    def finish(self) -> list[Track]:
        """Every track, in the order they started."""
        tracks = sorted(self._closed + self._open, key=lambda t: t.number)
        self._open, self._closed = [], []
        return tracks
