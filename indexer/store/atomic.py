"""Crash-safe file replacement: write a temporary file beside the target,
fsync it, rename it over the target, fsync the directory. A reader sees the
old file or the new one, never a half-written one. The file is 0600
(``mkstemp``'s mode, kept by the rename) and a missing folder 0700
(``indexer.store.file_modes``): what is written is face data or describes
it."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from indexer.store.file_modes import private_dir


def atomic_write_bytes(path: Path, data: bytes | memoryview) -> None:
    path = Path(path)
    private_dir(path.parent)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    fsync_dir(path.parent)


def fsync_dir(directory: Path) -> None:
    """Make a rename in ``directory`` durable (no-op where unsupported)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
