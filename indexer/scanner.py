"""Walk folders for photo files and read their stat data (no file is opened)."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from indexer.safe_open import NotRegularFile, file_kind


@dataclass(frozen=True)
class ScannedFile:
    path: str  # absolute, symlinks in directories resolved by the walk root only
    size: int  # bytes
    mtime_ns: int


# Called with (path, reason) for a photo or video name that is not a regular file.
OnSkipped = Callable[[str, str], None]


def scan(roots: Iterable[Path], extensions: Iterable[str], exclude: Iterable[Path] = (),
         on_skipped: OnSkipped | None = None) -> Iterator[ScannedFile]:
    """Every file under ``roots`` (files or folders, recursively, sorted) whose
    name ends with one of ``extensions`` (case-insensitive). Hidden folders
    (``.name``) and the ``exclude`` folders (the data dir) are skipped;
    symlinked folders are not followed (no loops). A file given directly as a
    root is always included. Only regular files (or symlinks to them) are
    taken: a FIFO, socket or device of such a name (or a symlink to one) is
    passed to ``on_skipped`` with the reason ("not a regular file (a
    FIFO)") and never opened."""
    suffixes = tuple(e.lower() for e in extensions)
    excluded = {os.path.realpath(p) for p in exclude}
    seen: set[str] = set()
    skipped = on_skipped or (lambda path, reason: None)
    for root in roots:
        root_path = os.path.realpath(root)
        if not os.path.isdir(root_path):
            entry = _stat(root_path, skipped)
            if entry and entry.path not in seen:
                seen.add(entry.path)
                yield entry
            continue
        for dirpath, dirnames, filenames in os.walk(root_path):
            dirnames[:] = sorted(
                d for d in dirnames if not d.startswith(".") and os.path.join(dirpath, d) not in excluded
            )
            for name in sorted(filenames):
                if not name.lower().endswith(suffixes) or name.startswith("."):
                    continue
                entry = _stat(os.path.join(dirpath, name), skipped)
                if entry and entry.path not in seen:
                    seen.add(entry.path)
                    yield entry


def _stat(path: str, skipped: OnSkipped) -> ScannedFile | None:
    try:
        st = os.stat(path)
    except OSError:
        return None  # vanished between listing and stat, or a dangling link
    if not stat.S_ISREG(st.st_mode):
        skipped(path, str(NotRegularFile(file_kind(st.st_mode))))
        return None
    return ScannedFile(path=path, size=st.st_size, mtime_ns=st.st_mtime_ns)


def is_under(path: str, roots: Iterable[str]) -> bool:
    """Whether ``path`` is one of ``roots`` or inside one of them."""
    return any(path == root or path.startswith(root.rstrip(os.sep) + os.sep) for root in roots)
