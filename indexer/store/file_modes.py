"""Who may read the data directory: its owner alone.

The index holds biometric data (face embeddings, face thumbnails, where each
face was seen), so everything facesearch writes in the data directory is
created 0600 and every folder 0700, whatever the umask. Our own writers pass
these modes explicitly (``private_dir``, ``create_private_file``,
``copy_private``; ``atomic_write_bytes`` writes 0600); third-party writers
(SQLite's -wal/-shm/-journal files take the mode of their database, Milvus
Lite's server process, gunicorn) follow the process umask, which the
``facesearch`` command sets to ``PROCESS_UMASK`` at start.

A data directory made by an older version (0644 files in 0755 folders) is
tightened by ``tighten`` when a writer opens it (an index run, a repair, an
erasure, ``serve`` at start-up): a walk over a few dozen entries (0.4 ms
for 40 here). Only entries this process owns are changed (another user's
file is left as it is: chmod would fail anyway), and symbolic links are not
followed.
"""

from __future__ import annotations

import logging
import os
import shutil
import stat
from pathlib import Path

log = logging.getLogger(__name__)

FILE_MODE = 0o600
DIR_MODE = 0o700
PROCESS_UMASK = 0o077


def private_dir(path: Path) -> Path:
    """Create ``path`` (and missing parents) 0700 when missing; an existing
    folder is left as it is. Parents outside the data directory get the same
    mode; the umask can only narrow it."""
    path = Path(path)
    try:
        path.mkdir(mode=DIR_MODE, exist_ok=True)
    except FileNotFoundError:
        private_dir(path.parent)
        path.mkdir(mode=DIR_MODE, exist_ok=True)
    return path


def create_private_file(path: Path) -> None:
    """Create ``path`` empty and 0600 if it is missing (an existing file
    keeps its content and mode): done before SQLite or Milvus Lite opens a
    database file, which they would otherwise create with the umask's mode."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, FILE_MODE))


def copy_private(source: Path, target: Path) -> None:
    """``shutil.copyfile`` into a new 0600 file (``copyfile`` truncates an
    existing file and keeps its mode)."""
    Path(target).unlink(missing_ok=True)
    create_private_file(target)
    shutil.copyfile(source, target)


def tighten(data_dir: Path) -> None:
    """Make the folders under ``data_dir`` (itself included) 0700 and its
    files 0600 where this process owns them."""
    data_dir = Path(data_dir)
    _chmod(data_dir, DIR_MODE)
    for root, folders, files in os.walk(data_dir):
        for name in folders:
            _chmod(Path(root) / name, DIR_MODE)
        for name in files:
            _chmod(Path(root) / name, FILE_MODE)


def _chmod(path: Path, mode: int) -> None:
    """Set ``mode`` on a folder or a regular file this process owns. Links,
    sockets and the entries of others are skipped."""
    try:
        info = path.lstat()
    except FileNotFoundError:  # removed meanwhile (a generation being deleted)
        return
    kind = stat.S_IFMT(info.st_mode)
    if kind not in (stat.S_IFDIR, stat.S_IFREG) or info.st_uid != os.geteuid() or stat.S_IMODE(info.st_mode) == mode:
        return
    try:
        os.chmod(path, mode)  # not a link: checked above
    except OSError as exc:  # a read-only mount: whoever writes there fails with a clearer message
        log.warning("cannot make %s private (%s)", path, exc)
