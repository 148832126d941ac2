"""Walk folders for photo files and read their stat data (no file is opened)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator


@dataclass(frozen=True)
class ScannedFile:
    path: str  # absolute, symlinks in directories resolved by the walk root only
    size: int  # bytes
    mtime_ns: int


def scan(roots: Iterable[Path], extensions: Iterable[str], exclude: Iterable[Path] = ()) -> Iterator[ScannedFile]:
    """Every file under ``roots`` (files or folders, recursively, sorted) whose
    name ends with one of ``extensions`` (case-insensitive). Hidden folders
    (``.name``) and the ``exclude`` folders (the data dir) are skipped;
    symlinked folders are not followed (no loops). A file given directly as a
    root is always included."""
    suffixes = tuple(e.lower() for e in extensions)
    excluded = {os.path.realpath(p) for p in exclude}
    seen: set[str] = set()
    for root in roots:
        root_path = os.path.realpath(root)
        if os.path.isfile(root_path):
            entry = _stat(root_path)
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
                entry = _stat(os.path.join(dirpath, name))
                if entry and entry.path not in seen:
                    seen.add(entry.path)
                    yield entry


def _stat(path: str) -> ScannedFile | None:
    try:
        st = os.stat(path)
    except OSError:
        return None  # vanished between listing and stat, or a dangling link
    if not os.path.isfile(path):
        return None
    return ScannedFile(path=path, size=st.st_size, mtime_ns=st.st_mtime_ns)


def is_under(path: str, roots: Iterable[str]) -> bool:
    """Whether ``path`` is one of ``roots`` or inside one of them."""
    for root in roots:
        if path == root or path.startswith(root.rstrip(os.sep) + os.sep):
            return True
    return False
