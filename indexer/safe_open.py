"""Open a photo or video for reading only when it is a regular file.

A FIFO where a photo should be (made there, a symlink pointed at one, or a
regular file swapped for one after the scan) blocks a plain ``open()``
until something writes to it: a server worker or an indexing worker hangs.
A device streams without end; a socket cannot be opened at all. Every read
of a photo or video, by the indexer and by the service, goes through
``open_regular``:

1. ``stat`` first (following symlinks): anything but a regular file is
   refused without being opened (opening some devices has effects of its
   own: a tape rewinds, a terminal becomes the controlling one);
2. then ``open`` with ``O_NONBLOCK`` (a FIFO swapped in after the ``stat``
   opens at once instead of waiting for a writer) and ``O_NOCTTY``,
   ``fstat`` on the open file (no window between check and read), and
   ``O_NONBLOCK`` cleared for reading.

A regular file costs two extra system calls (the ``stat``, the ``fcntl``
pair), some microseconds.
"""

from __future__ import annotations

import fcntl
import os
import stat
from typing import BinaryIO

OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC


class NotRegularFile(OSError):
    """The path is (or points to) a FIFO, socket, device or folder: never
    opened for reading. ``str()`` says what it is: "not a regular file (a
    FIFO)"."""

    def __init__(self, kind: str) -> None:
        super().__init__(f"not a regular file ({kind})")
        self.kind = kind


def file_kind(mode: int) -> str:
    """What a file of ``st_mode`` ``mode`` is, in words ("a FIFO")."""
    for test, kind in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISDIR, "a folder")):
        if test(mode):
            return kind
    return "of an unknown kind"


def open_regular(path: str) -> BinaryIO:
    """The regular file at ``path`` (symlinks followed), open for binary
    reading. ``NotRegularFile`` for anything else, without blocking and
    without reading it; ``OSError`` when it cannot be opened."""
    _require_regular(os.stat(path).st_mode)
    fd = os.open(path, OPEN_FLAGS)
    try:
        _require_regular(os.fstat(fd).st_mode)
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular(path: str) -> bytes:
    """The bytes of the regular file at ``path``; errors as ``open_regular``."""
    with open_regular(path) as handle:
        return handle.read()


def _require_regular(mode: int) -> None:
    if not stat.S_ISREG(mode):
        raise NotRegularFile(file_kind(mode))
