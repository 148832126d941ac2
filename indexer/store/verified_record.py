"""``DATA_DIR/verified.json``: what each generation file hashed to when it
was last hashed in full, and its stat then, so that opening a generation
costs a few ``stat`` calls instead of hashing gigabytes.

Each entry, keyed by the file's path under the data directory
(``generations/g000042/faces.faiss``), holds the file's SHA-256 and its
(size, mtime_ns, ctime_ns, inode, device) at the time. A file whose stat is
unchanged is taken to hold the same bytes: any write through the file
system changes its mtime and ctime, and ctime cannot be set back by a user
(``touch`` sets mtime only). What a stat does not see is bit rot below the
file system (a failing disk, a bad controller) and writes to the block
device itself: ``facesearch verify`` hashes every file in full and finds
those. The record is no security boundary: whoever can rewrite it can
rewrite the index too; it guards against damage, not an attacker.

The record is a cache: lost, unreadable or unwritable, every file is
hashed in full at the next open, and it is rewritten (best effort). It is
written by whoever hashed a file in full: the publishing writer, a reader
that found a stat changed, ``facesearch verify``; each merges its entries
into the record as it is on disk just before writing, so two writers at the
same instant may still drop each other's entries (the last rename wins):
that only costs a full hash later. Entries of generations no longer on disk are dropped at
each write. 0600, like every file of the data directory.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from indexer.store.atomic import atomic_write_bytes

log = logging.getLogger(__name__)

RECORD_FILE = "verified.json"


def stat_key(info: os.stat_result) -> list[int]:
    """What must be unchanged for a file to be taken as unchanged."""
    return [info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino, info.st_dev]


@dataclass(frozen=True)
class Hashed:
    """A file hashed in full: its SHA-256 and its stat before hashing."""

    sha256: str
    stat: list[int]


class VerifiedRecord:
    """The record of one data directory, read once at construction."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self.path = self.data_dir / RECORD_FILE
        self._entries = self._read()

    def digest(self, relative: str, info: os.stat_result) -> str | None:
        """The SHA-256 the file at ``relative`` (under the data directory)
        had when last hashed, if its stat ``info`` is unchanged since."""
        entry = self._entries.get(relative)
        if isinstance(entry, dict) and entry.get("stat") == stat_key(info):
            digest = entry.get("sha256")
            return digest if isinstance(digest, str) else None
        return None

    def remember(self, hashed: dict[str, Hashed]) -> None:
        """Add ``hashed`` (relative path -> result) and write the record;
        a failure to write is logged, never raised (it is a cache)."""
        if not hashed:
            return
        entries = {**self._read(), **{rel: {"sha256": h.sha256, "stat": h.stat} for rel, h in hashed.items()}}
        entries = {rel: entry for rel, entry in entries.items() if (self.data_dir / rel).parent.is_dir()}
        try:
            atomic_write_bytes(self.path, json.dumps(entries, indent=1, sort_keys=True).encode() + b"\n")
        except OSError as exc:
            log.info("cannot write %s (%s): files will be hashed in full at the next open", self.path, exc)
            return
        self._entries = entries

    def _read(self) -> dict[str, Any]:
        try:
            entries = json.loads(self.path.read_bytes())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.info("ignoring %s (%s): files are hashed in full", self.path, exc)
            return {}
        return entries if isinstance(entries, dict) else {}
