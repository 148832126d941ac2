"""Face and photo metadata in SQLite: the source of truth of the store.

Each face row keeps its embedding (128 float32, 512 bytes), so the FAISS
index can always be rebuilt from this database without re-encoding a photo.
Face ids are never reused (AUTOINCREMENT): an id that was removed stays unknown.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from indexer.model import EMBEDDING_DIM, Box

SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    path         TEXT NOT NULL UNIQUE,       -- absolute path
    size         INTEGER NOT NULL,           -- bytes
    mtime_ns     INTEGER NOT NULL,
    content_hash TEXT NOT NULL,              -- blake2b-256 hex of the file bytes
    width        INTEGER NOT NULL,           -- pixels, upright (after EXIF rotation)
    height       INTEGER NOT NULL,
    face_count   INTEGER NOT NULL,
    detection    TEXT NOT NULL,              -- JSON of the detection settings used
    model        TEXT NOT NULL,              -- embedding model name
    indexed_at   TEXT NOT NULL               -- ISO 8601, UTC
);
CREATE TABLE IF NOT EXISTS faces (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    file_id    INTEGER NOT NULL REFERENCES files(id) ON DELETE CASCADE,
    top        INTEGER NOT NULL,             -- box, original-image pixels
    right      INTEGER NOT NULL,
    bottom     INTEGER NOT NULL,
    left       INTEGER NOT NULL,
    embedding  BLOB NOT NULL,                -- 128 little-endian float32
    indexed_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS faces_file_id ON faces(file_id);
CREATE TABLE IF NOT EXISTS thumbnails (
    face_id INTEGER PRIMARY KEY REFERENCES faces(id) ON DELETE CASCADE,
    jpeg    BLOB NOT NULL
);
"""


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class FileState:
    """What the store knows of one photo file, for change detection."""

    path: str
    size: int
    mtime_ns: int
    content_hash: str
    face_count: int


@dataclass(frozen=True)
class FileRecord:
    """A photo to (re)write with its faces."""

    path: str
    size: int
    mtime_ns: int
    content_hash: str
    width: int
    height: int
    detection: str
    model: str


@dataclass(frozen=True)
class FaceRecord:
    """One indexed face as the API reports it."""

    face_id: int
    path: str
    box: Box
    width: int
    height: int
    content_hash: str
    indexed_at: str


class MetadataDB:
    """SQLite database of photos and faces. Writes happen in one open
    transaction until ``commit()``; readers (the service) see the last commit
    (WAL mode, so they never block the indexer)."""

    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        self.path = Path(path)
        self.readonly = readonly
        self._lock = threading.RLock()
        if readonly:
            uri = f"file:{self.path}?mode=ro"
            self.conn = sqlite3.connect(uri, uri=True, check_same_thread=False)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level="DEFERRED")
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=FULL")
            self.conn.executescript(SCHEMA)
            self.conn.commit()
        self.conn.execute("PRAGMA foreign_keys=ON")

    # -- reading -----------------------------------------------------------

    def face_count(self) -> int:
        with self._lock:
            return int(self.conn.execute("SELECT COUNT(*) FROM faces").fetchone()[0])

    def file_count(self) -> int:
        with self._lock:
            return int(self.conn.execute("SELECT COUNT(*) FROM files").fetchone()[0])

    def file_states(self) -> dict[str, FileState]:
        """Every known file, by path."""
        with self._lock:
            rows = self.conn.execute(
                "SELECT path, size, mtime_ns, content_hash, face_count FROM files"
            ).fetchall()
        return {r[0]: FileState(*r) for r in rows}

    def faces(self, face_ids: Iterable[int]) -> dict[int, FaceRecord]:
        """Records of the given face ids that exist (unknown ids are left out)."""
        ids = sorted({int(i) for i in face_ids if int(i) >= 0})
        out: dict[int, FaceRecord] = {}
        with self._lock:
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                marks = ",".join("?" * len(chunk))
                rows = self.conn.execute(
                    "SELECT faces.id, files.path, faces.top, faces.right, faces.bottom, faces.left, "
                    "files.width, files.height, files.content_hash, faces.indexed_at "
                    f"FROM faces JOIN files ON files.id = faces.file_id WHERE faces.id IN ({marks})",
                    chunk,
                ).fetchall()
                for r in rows:
                    out[r[0]] = FaceRecord(r[0], r[1], Box(r[2], r[3], r[4], r[5]), r[6], r[7], r[8], r[9])
        return out

    def example_path(self) -> str | None:
        """The path of one indexed photo with a face (for the CLI's hints)."""
        with self._lock:
            row = self.conn.execute("SELECT path FROM files WHERE face_count > 0 ORDER BY id LIMIT 1").fetchone()
        return None if row is None else row[0]

    def thumbnail(self, face_id: int) -> bytes | None:
        with self._lock:
            row = self.conn.execute("SELECT jpeg FROM thumbnails WHERE face_id = ?", (int(face_id),)).fetchone()
        return None if row is None else bytes(row[0])

    def iter_embeddings(self, batch: int = 10_000) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """All (ids int64, embeddings float32 (n, 128)) in id order, in batches."""
        last = -1
        while True:
            with self._lock:
                rows = self.conn.execute(
                    "SELECT id, embedding FROM faces WHERE id > ? ORDER BY id LIMIT ?", (last, batch)
                ).fetchall()
            if not rows:
                return
            ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
            x = np.frombuffer(b"".join(r[1] for r in rows), dtype="<f4").reshape(len(rows), -1)
            yield ids, np.ascontiguousarray(x, dtype=np.float32)
            last = int(ids[-1])

    def all_embeddings(self, batch: int = 10_000) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every face as (face ids int64 (n,), photo file ids int64 (n,),
        embeddings float32 (n, 128)), in face-id order, from one snapshot (a
        single query, so a concurrent indexer commit cannot be half seen)."""
        ids: list[np.ndarray] = []
        file_ids: list[np.ndarray] = []
        vectors: list[np.ndarray] = []
        with self._lock:
            cursor = self.conn.execute("SELECT id, file_id, embedding FROM faces ORDER BY id")
            while rows := cursor.fetchmany(batch):
                ids.append(np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows)))
                file_ids.append(np.fromiter((r[1] for r in rows), dtype=np.int64, count=len(rows)))
                vectors.append(np.frombuffer(b"".join(r[2] for r in rows), dtype="<f4").reshape(len(rows), -1))
        if not ids:
            return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, EMBEDDING_DIM), np.float32)
        return np.concatenate(ids), np.concatenate(file_ids), np.concatenate(vectors).astype(np.float32, copy=False)

    # -- writing (indexer only) -------------------------------------------

    def face_ids_of(self, path: str) -> list[int]:
        with self._lock:
            rows = self.conn.execute(
                "SELECT faces.id FROM faces JOIN files ON files.id = faces.file_id WHERE files.path = ?", (path,)
            ).fetchall()
        return [r[0] for r in rows]

    def put_file(
        self, record: FileRecord, faces: list[tuple[Box, np.ndarray, bytes]]
    ) -> tuple[list[int], list[int]]:
        """Write a photo and its faces, replacing whatever was stored for its
        path. Returns (new face ids, removed face ids)."""
        now = utc_now()
        with self._lock:
            removed = self.face_ids_of(record.path)
            self.conn.execute("DELETE FROM files WHERE path = ?", (record.path,))
            cur = self.conn.execute(
                "INSERT INTO files (path, size, mtime_ns, content_hash, width, height, face_count, "
                "detection, model, indexed_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (
                    record.path, record.size, record.mtime_ns, record.content_hash, record.width,
                    record.height, len(faces), record.detection, record.model, now,
                ),
            )
            file_id = cur.lastrowid
            new_ids: list[int] = []
            for box, embedding, jpeg in faces:
                vec = np.ascontiguousarray(embedding, dtype="<f4").tobytes()
                cur = self.conn.execute(
                    "INSERT INTO faces (file_id, top, right, bottom, left, embedding, indexed_at) "
                    "VALUES (?,?,?,?,?,?,?)",
                    (file_id, box.top, box.right, box.bottom, box.left, vec, now),
                )
                face_id = int(cur.lastrowid)
                new_ids.append(face_id)
                self.conn.execute("INSERT INTO thumbnails (face_id, jpeg) VALUES (?, ?)", (face_id, jpeg))
        return new_ids, removed

    def touch_file(self, path: str, size: int, mtime_ns: int) -> None:
        """Record a new size/mtime for a file whose content did not change."""
        with self._lock:
            self.conn.execute("UPDATE files SET size = ?, mtime_ns = ? WHERE path = ?", (size, mtime_ns, path))

    def move_file(self, old_path: str, new_path: str, size: int, mtime_ns: int) -> int:
        """Give a photo a new path (it was moved or renamed: same content),
        keeping its faces and their ids. Returns its number of faces."""
        with self._lock:
            self.conn.execute(
                "UPDATE files SET path = ?, size = ?, mtime_ns = ? WHERE path = ?", (new_path, size, mtime_ns, old_path)
            )
            row = self.conn.execute("SELECT face_count FROM files WHERE path = ?", (new_path,)).fetchone()
        return int(row[0]) if row else 0

    def seal(self) -> None:
        """Commit, fold the write-ahead log into the database and leave WAL
        mode: a published generation is one self-contained file."""
        with self._lock:
            self.conn.commit()
            self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self.conn.execute("PRAGMA journal_mode=DELETE")

    def remove_file(self, path: str) -> list[int]:
        """Forget a photo and its faces; returns the removed face ids."""
        with self._lock:
            removed = self.face_ids_of(path)
            self.conn.execute("DELETE FROM files WHERE path = ?", (path,))
        return removed

    def clear(self) -> None:
        with self._lock:
            self.conn.execute("DELETE FROM files")

    def commit(self) -> None:
        with self._lock:
            self.conn.commit()

    def rollback(self) -> None:
        with self._lock:
            self.conn.rollback()

    def close(self) -> None:
        with self._lock:
            self.conn.close()
