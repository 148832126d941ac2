"""Index generations: published snapshots of the embedded store, switched
atomically, plus the lock that lets one reindex run at a time.

Layout of ``DATA_DIR``::

    CURRENT                      name of the published generation, one line
    generations/g000042/         manifest.json, faces.faiss, metadata.sqlite3
                                 (and faces.ann.faiss, see indexer.store.ann):
                                 never written again once published; the
                                 manifest holds their checksums
                                 (indexer.store.checksums)
    generations/g000043.wip/     the next generation, being built by a reindex
                                 (left by a killed one: resumed or discarded)
    index.lock                   held (flock) by the running reindex; says who
    runs.jsonl                   one JSON line per finished reindex run
    annotations.sqlite3          names and clusterings (in no generation)
    verified.json                stat of each file at its last full hash
                                 (indexer.store.verified_record)

A reindex verifies the published generation against its checksums, copies
it into a work-in-progress one, brings that up to date, seals it (one
self-contained SQLite file), records the checksums of its files and
publishes it by replacing ``CURRENT`` (write a temporary file, fsync,
rename, fsync the directory). Killed at any moment, it leaves the published
generation untouched: readers only ever open what ``CURRENT`` names. The
next run resumes the work in progress when it was started from the same
generation for the same folders and settings (every checkpoint of it is
durable), else starts a fresh one. The current and the previous generation
are kept (a server worker may still be reading the previous one); older
ones are deleted after a publish.

A data directory of the first layout (the store files directly in it) is
read as it is and moved into ``generations/`` by the next reindex.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import socket
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from indexer.store.atomic import atomic_write_bytes, fsync_dir
from indexer.store.base import StoreError
from indexer.store.checksums import require_intact, seal_manifest
from indexer.store.file_modes import DIR_MODE, FILE_MODE, copy_private, private_dir
from indexer.store.metadata import MetadataDB
from indexer.store.metadata_store import DB_FILE, MANIFEST_FILE
from indexer.store.verified_record import VerifiedRecord

log = logging.getLogger(__name__)

CURRENT_FILE = "CURRENT"
GENERATIONS_DIR = "generations"
LOCK_FILE = "index.lock"
WIP_SUFFIX = ".wip"
WIP_INFO = "wip.json"
LEGACY_FILES = (MANIFEST_FILE, "faces.faiss", DB_FILE)
T = TypeVar("T")


class IndexBusyError(StoreError):
    """Another reindex holds the data directory's lock."""


def generation_name(number: int) -> str:
    return f"g{number:06d}"


def generation_number(name: str) -> int:
    """The number of a generation directory name (``g000042`` or
    ``g000042.wip``), -1 when it is not one."""
    stem = name.removesuffix(WIP_SUFFIX)
    if len(stem) == 7 and stem[0] == "g" and stem[1:].isdigit():
        return int(stem[1:])
    return -1


def current_name(data_dir: Path) -> str | None:
    """The published generation's name, or None (nothing published yet, or a
    directory of the first layout)."""
    try:
        name = (Path(data_dir) / CURRENT_FILE).read_text().strip()
    except FileNotFoundError:
        return None
    if generation_number(name) < 0 or name.endswith(WIP_SUFFIX):
        raise StoreError(f"{Path(data_dir) / CURRENT_FILE} names no generation ({name!r})")
    return name


def current_dir(data_dir: Path) -> Path | None:
    """The directory of the published store: the generation ``CURRENT``
    names, else ``data_dir`` itself when it holds a store of the first
    layout, else None."""
    data_dir = Path(data_dir)
    name = current_name(data_dir)
    if name is not None:
        path = data_dir / GENERATIONS_DIR / name
        if not path.is_dir():
            raise StoreError(
                f"{data_dir / CURRENT_FILE} names generation {name}, which is missing from {path.parent}: "
                f"rebuild with `facesearch index --full --data-dir {data_dir} PATH...`"
            )
        return path
    if any((data_dir / f).exists() for f in LEGACY_FILES):
        return data_dir
    return None


@dataclass(frozen=True)
class WorkInProgress:
    """A generation being built. ``resumed``: left by a killed run and taken
    up again (it already holds part of the work)."""

    path: Path
    base: str | None
    resumed: bool


def resumable(data_dir: Path, *, full: bool, key: dict[str, Any]) -> bool:
    """Whether a killed run left work that a run with ``full`` and ``key``
    would resume (see ``begin``)."""
    wanted = {"base": current_name(Path(data_dir)), "full": full, **key}
    generations = Path(data_dir) / GENERATIONS_DIR
    return generations.is_dir() and any(_wip_info(w) == wanted for w in generations.glob("*" + WIP_SUFFIX))


def begin(data_dir: Path, *, full: bool, key: dict[str, Any], rebuilds: frozenset[str] = frozenset(),
          reserved_face_id: int = 0) -> WorkInProgress:
    """The next generation to build, as a copy of the published one (empty
    with ``full``, which copies nothing and so works on a damaged index).
    The published generation is verified against its checksums first
    (``DamagedIndexError`` naming the fix otherwise), except for the files
    in ``rebuilds``, which the caller rebuilds from the metadata (a repair):
    damaged, they are not copied. ``key`` (the folders and settings of the
    run) must match for a killed run's work to be resumed. Call under
    ``IndexLock``."""
    data_dir = Path(data_dir)
    generations = private_dir(data_dir / GENERATIONS_DIR)
    base = current_name(data_dir)
    wanted = {"base": base, "full": full, **key}
    for wip in sorted(generations.glob("*" + WIP_SUFFIX)):
        if _wip_info(wip) == wanted:
            log.info("resuming the unfinished generation %s (based on %s)", wip.name, base)
            return WorkInProgress(wip, base, resumed=True)
        log.info("discarding the unfinished generation %s (another base, folders or settings)", wip.name)
        shutil.rmtree(wip, ignore_errors=True)
    source = current_dir(data_dir)
    damaged: frozenset[str] = frozenset()
    if source is not None and not full:
        damaged = require_intact(source, data_dir, tolerate=rebuilds).damaged_names
    numbers = [generation_number(p.name) for p in generations.iterdir()]
    wip = generations / (generation_name(max(numbers, default=0) + 1) + WIP_SUFFIX)
    wip.mkdir(mode=DIR_MODE)
    try:
        if source is not None:
            if full:
                _continue_ids(data_dir, wip, reserved_face_id)
            else:
                _copy_store(source, wip, skip=damaged)
        atomic_write_bytes(wip / WIP_INFO, json.dumps(wanted, sort_keys=True).encode())
    except BaseException:  # a full disk, say: no partial copy is left to fill it
        shutil.rmtree(wip, ignore_errors=True)
        raise
    return WorkInProgress(wip, base, resumed=False)


def publish(data_dir: Path, wip: WorkInProgress, *, keep_previous: bool = True) -> str:
    """Make ``wip`` (sealed, closed) the published generation; returns its
    name. The checksums of its files go into its manifest first
    (``checksums.seal_manifest``; the hashes also go into the verified
    record, so that opening it costs no hashing). The switch is the atomic
    replacement of ``CURRENT``. The one it replaces is kept for server
    workers still reading it, unless ``keep_previous`` is false (an erasure:
    no copy of the faces may stay)."""
    data_dir = Path(data_dir)
    if current_name(data_dir) != wip.base:
        raise StoreError(f"generation {current_name(data_dir)} was published while {wip.path.name} was built")
    (wip.path / WIP_INFO).unlink()
    hashed = seal_manifest(wip.path)
    for path in wip.path.iterdir():
        _fsync_file(path)
    final = wip.path.with_name(wip.path.name.removesuffix(WIP_SUFFIX))
    os.rename(wip.path, final)  # the files keep their inode and ctime: the hashes stay valid
    fsync_dir(final.parent)
    atomic_write_bytes(data_dir / CURRENT_FILE, (final.name + "\n").encode())
    _remove_legacy(data_dir)
    _remove_old(final.parent, keep={final.name, wip.base} if keep_previous else {final.name})
    VerifiedRecord(data_dir).remember(
        {f"{GENERATIONS_DIR}/{final.name}/{name}": result for name, result in hashed.items()})
    return final.name


def discard(wip: WorkInProgress) -> None:
    shutil.rmtree(wip.path, ignore_errors=True)


def _wip_info(wip: Path) -> dict[str, Any] | None:
    try:
        info: dict[str, Any] = json.loads((wip / WIP_INFO).read_text())
        return info
    except (OSError, ValueError):
        return None


def _copy_store(source: Path, target: Path, skip: frozenset[str] = frozenset()) -> None:
    """Copy a store's files (0600) but those in ``skip``; the metadata
    database whole and consistent, as it is (``MetadataDB.copy_to``: the
    writer that opens the copy brings its layout up to date)."""
    for name in (MANIFEST_FILE, "faces.faiss", "faces.ann.faiss"):
        if (source / name).exists() and name not in skip:
            copy_private(source / name, target / name)
    if (source / DB_FILE).exists():
        db = MetadataDB(source / DB_FILE, readonly=True)
        try:
            db.copy_to(target / DB_FILE)
        finally:
            db.close()


def _continue_ids(data_dir: Path, target: Path, reserved_face_id: int) -> None:
    """Start an empty store whose ids continue from every id used before: a
    face id is never given to another face, even by ``--full`` (names and
    stored clusterings refer to faces by id). The sequences are read from
    every generation still on disk (the published one may be the damaged
    one ``--full`` is rebuilding), and ``reserved_face_id``: the highest
    face id something outside the store refers to (the annotations: the
    caller reads it, ``indexer.people.annotations.highest_annotated_face``).
    The record of erased faces is carried over."""
    highest: dict[str, int] = {}
    sources = [current_dir(data_dir)] + sorted((data_dir / GENERATIONS_DIR).glob("g??????"))
    for source in sources:
        for name, seq in (_read_metadata(source, MetadataDB.id_sequences) or {}).items():
            highest[name] = max(highest.get(name, 0), seq)
    if reserved_face_id:
        highest["faces"] = max(highest.get("faces", 0), reserved_face_id)
    # Erased faces stay erased through a rebuild.
    erasures = _read_metadata(sources[0], MetadataDB.erasure_rows) or []
    fresh = MetadataDB(target / DB_FILE)
    try:
        fresh.continue_ids(highest)
        fresh.add_erasure_rows(erasures)
        fresh.commit()
    finally:
        fresh.close()


def _read_metadata(generation: Path | None, read: Callable[[MetadataDB], T]) -> T | None:
    """What ``read`` takes from a generation's metadata database, opened
    read-only; None when there is none or it is damaged (logged: ``--full``
    reads what it can of the index it rebuilds)."""
    if generation is None or not (generation / DB_FILE).is_file():
        return None
    try:
        db = MetadataDB(generation / DB_FILE, readonly=True)
        try:
            return read(db)
        finally:
            db.close()
    except sqlite3.DatabaseError as exc:
        log.warning("cannot read %s (%s)", generation / DB_FILE, exc)
        return None


def _fsync_file(path: Path) -> None:
    if path.is_file():
        with open(path, "rb") as handle:
            os.fsync(handle.fileno())


def _remove_legacy(data_dir: Path) -> None:
    """Remove the store files of the first layout once their content lives
    on in a published generation."""
    for name in (*LEGACY_FILES, f"{DB_FILE}-wal", f"{DB_FILE}-shm"):
        (data_dir / name).unlink(missing_ok=True)


def _remove_old(generations: Path, keep: set[str | None]) -> None:
    """Delete every published generation but ``keep`` (the new one and the
    one it replaced, which server workers may still be reading), including
    one a killed run renamed but never published."""
    for path in generations.iterdir():
        if generation_number(path.name) >= 0 and not path.name.endswith(WIP_SUFFIX) and path.name not in keep:
            shutil.rmtree(path, ignore_errors=True)


class IndexLock:
    """Exclusive lock on a data directory for one reindex: ``flock`` on
    ``index.lock``, so the kernel releases it when its holder dies, even by
    ``kill -9`` (a stale lock file is simply taken over). The file says who
    holds it, for the message the next run prints."""

    def __init__(self, data_dir: Path, command: str = "facesearch index") -> None:
        self.path = Path(data_dir) / LOCK_FILE
        self.command = command
        self._fd: int | None = None
        self._info: dict[str, object] = {}

    def __enter__(self) -> IndexLock:
        private_dir(self.path.parent)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, FILE_MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise IndexBusyError(
                f"another reindex is running on {self.path.parent}: {holder}. "
                "Wait for it to finish (only one may run at a time)."
            ) from None
        previous = _read_holder(fd)
        if previous != "unknown":
            log.info("taking over the lock left by a run that did not finish (%s)", previous)
        info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "command": self.command,
        }
        self._fd, self._info = fd, info
        self._write(info)
        return self

    def progress(self, done: int, total: int) -> None:
        """Say how far the run is (files done of ``total``), for
        ``running_index``."""
        if self._fd is not None:
            self._write({**self._info, "done": int(done), "total": int(total)})

    def _write(self, info: dict[str, object]) -> None:
        assert self._fd is not None
        body = json.dumps(info).encode()
        os.pwrite(self._fd, body, 0)
        os.ftruncate(self._fd, len(body))

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def running_index(data_dir: Path) -> dict[str, Any] | None:
    """The reindex running on ``data_dir`` (what its lock file says: pid,
    started_at, command, done and total files once it knows them), or None.
    Read without taking the lock (a run starting meanwhile must not find it
    held): a run writes the file once it holds the lock and empties it when
    it ends; one killed leaves it, its process gone."""
    try:
        info = json.loads((Path(data_dir) / LOCK_FILE).read_bytes() or b"null")
    except (FileNotFoundError, ValueError):
        return None
    if not isinstance(info, dict) or not isinstance(info.get("pid"), int):
        return None
    if info.get("host") == socket.gethostname() and not _alive(info["pid"]):
        return None  # killed: the kernel released its lock
    return info


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _read_holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0) or b"null")
    except ValueError:
        return "unknown"
    if not isinstance(info, dict):
        return "unknown"
    return f"pid {info.get('pid')} on {info.get('host')}, started {info.get('started_at')} ({info.get('command')})"
