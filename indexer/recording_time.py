"""When a video was recorded, from its container, without decoding it: the
creation time of an MP4/QuickTime movie header (``moov/mvhd``), which phones
and cameras set. Other containers (AVI, Matroska/WebM) are not read: the
caller falls back to the file's mtime."""

from __future__ import annotations

import struct
from typing import BinaryIO

from indexer.safe_open import open_regular

# Seconds from the QuickTime epoch (1904-01-01 UTC) to the POSIX one.
QUICKTIME_EPOCH_OFFSET = 2_082_844_800
MP4_SUFFIXES = (".mp4", ".mov", ".m4v", ".3gp")
# Top-level boxes looked at before giving up (a valid file has a handful).
MAX_BOXES = 64


def recording_start(path: str) -> float | None:
    """POSIX seconds the recording started, as its container says, or None
    (not an MP4/QuickTime file, no movie header, or the time left unset: 0).
    Reads a few box headers; seeks over the media data."""
    if not path.lower().endswith(MP4_SUFFIXES):
        return None
    try:
        with open_regular(path) as handle:
            moov = _find_box(handle, b"moov", end=None)
            if moov is None:
                return None
            mvhd = _find_box(handle, b"mvhd", end=moov)
            if mvhd is None:
                return None
            header = handle.read(12)
    except OSError:
        return None
    if len(header) < 8:
        return None
    version = header[0]
    if version == 1:
        if len(header) < 12:
            return None
        created = struct.unpack(">Q", header[4:12])[0]
    else:
        created = struct.unpack(">I", header[4:8])[0]
    if created <= QUICKTIME_EPOCH_OFFSET:  # unset (0) or before 1970: not a real recording time
        return None
    return float(created - QUICKTIME_EPOCH_OFFSET)


def _find_box(handle: BinaryIO, kind: bytes, end: int | None) -> int | None:
    """Walk the boxes from the handle's position up to ``end`` (a byte
    offset; None: the end of the file) for one of type ``kind``. On success
    the handle is left at the start of its body and its end offset returned."""
    for _ in range(MAX_BOXES):
        start = handle.tell()
        if end is not None and start + 8 > end:
            return None
        header = handle.read(8)
        if len(header) < 8:
            return None
        size, box_type = struct.unpack(">I4s", header)
        header_size = 8
        if size == 1:  # a 64-bit size follows
            large = handle.read(8)
            if len(large) < 8:
                return None
            size = struct.unpack(">Q", large)[0]
            header_size = 16
        elif size == 0:  # the box runs to the end of its parent
            box_end = end if end is not None else handle.seek(0, 2)
            size = box_end - start
            handle.seek(start + header_size)
        if size < header_size:
            return None
        if box_type == kind:
            return start + size
        handle.seek(start + size)
    return None
