"""How many photo searches one client address may have running at once,
across every server worker.

A photo search (search, recall or erasure by photo) decodes an upload and
runs the detector: up to a second or two of a worker, where a search by
embedding takes milliseconds. ``service.photo_searches_per_client`` bounds
what one address may hold, so that a few slow uploads cannot take every
worker while ``/health`` and everyone else wait.

Each address hashes to one of ``BUCKETS`` rows of ``per_client`` slots; a
slot is a byte of ``photo-searches.lock`` in the data directory, held with
a POSIX record lock (``fcntl.lockf``). The kernel releases a dead worker's
locks, so no slot is ever lost to a crash or a killed worker; a slot taken
in this process is also noted in memory, since record locks do not exclude
the threads of one process. Two addresses sharing a bucket (one chance in
``BUCKETS``) share its slots.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import threading
from pathlib import Path

FILE_NAME = "photo-searches.lock"
BUCKETS = 4096


class PhotoSlots:
    def __init__(self, path: Path, per_client: int) -> None:
        self.path = Path(path)
        self.per_client = per_client
        self._fd = -1
        self._pid = 0
        self._held: set[int] = set()
        self._lock = threading.Lock()

    @classmethod
    def in_data_dir(cls, data_dir: Path, per_client: int) -> PhotoSlots:
        return cls(Path(data_dir) / FILE_NAME, per_client)

    def acquire(self, address: str) -> int | None:
        """A free slot of ``address`` (its byte offset), or None when all of
        them are in use. Give it back with ``release``."""
        bucket = int.from_bytes(hashlib.sha256(address.encode()).digest()[:4], "big") % BUCKETS
        with self._lock:
            fd = self._file()
            for offset in range(bucket * self.per_client, (bucket + 1) * self.per_client):
                if offset in self._held:
                    continue
                try:
                    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, offset)
                except OSError:  # another worker holds it
                    continue
                self._held.add(offset)
                return offset
        return None

    def release(self, offset: int) -> None:
        with self._lock:
            if offset in self._held and self._pid == os.getpid():
                fcntl.lockf(self._fd, fcntl.LOCK_UN, 1, offset)
            self._held.discard(offset)

    def _file(self) -> int:
        """This process's descriptor of the lock file (a forked child opens
        its own: record locks belong to processes)."""
        if self._pid != os.getpid():
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            self._pid = os.getpid()
            self._held.clear()
        return self._fd
