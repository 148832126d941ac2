"""Face and photo metadata in SQLite: the source of truth of the store.

Each face row keeps its embedding (128 float32, 512 bytes), so the FAISS
index can always be rebuilt from this database without re-encoding a photo.
Face ids are never reused (AUTOINCREMENT): an id that was removed stays unknown.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

import numpy as np

from indexer.model import EMBEDDING_DIM, Box
from indexer.store.file_modes import create_private_file, private_dir
from indexer.store.sqlite_db import Layout, Step, adopt, check_version, columns_of, inserted_id, migrate

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
    indexed_at   TEXT NOT NULL,              -- ISO 8601, UTC
    kind         TEXT NOT NULL DEFAULT 'photo',  -- 'photo' or 'video'
    taken_at     REAL,                       -- POSIX s: EXIF capture time (as UTC), a video's start, else mtime
    duration_s   REAL                        -- a video's length, seconds
);
CREATE TABLE IF NOT EXISTS faces (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    file_id    INTEGER NOT NULL REFERENCES files(id) ON DELETE CASCADE,
    top        INTEGER NOT NULL,             -- box, original-image pixels
    right      INTEGER NOT NULL,
    bottom     INTEGER NOT NULL,
    left       INTEGER NOT NULL,
    embedding  BLOB NOT NULL,                -- 128 little-endian float32
    indexed_at TEXT NOT NULL,
    timestamp  REAL,                         -- seconds into the video (NULL for a photo)
    track      INTEGER,                      -- a video face's track, numbered within the file
    track_start REAL,                        -- seconds: the track's first and last sighting
    track_end  REAL
);
CREATE INDEX IF NOT EXISTS faces_file_id ON faces(file_id);
CREATE INDEX IF NOT EXISTS files_content_hash ON files(content_hash);
CREATE TABLE IF NOT EXISTS thumbnails (
    face_id INTEGER PRIMARY KEY REFERENCES faces(id) ON DELETE CASCADE,
    jpeg    BLOB NOT NULL
);
-- Faces erased on request (indexer/erasure.py): where they were, never what
-- they were, so that reindexing the same file does not bring them back.
CREATE TABLE IF NOT EXISTS erasures (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    content_hash TEXT NOT NULL,              -- of the file the face was in
    top          INTEGER NOT NULL,           -- box, original-image pixels
    right        INTEGER NOT NULL,
    bottom       INTEGER NOT NULL,
    left         INTEGER NOT NULL,
    timestamp    REAL,                       -- seconds into a video (NULL for a photo)
    erased_at    TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS erasures_content_hash ON erasures(content_hash);
"""

ERASURE_COLUMNS = "content_hash, top, right, bottom, left, timestamp, erased_at"
# One erasure record, as ERASURE_COLUMNS reads it.
ErasureRow = tuple[str, int, int, int, int, float | None, str]
# One row of ``MetadataDB.vector_rows``: face id, embedding bytes, path, time seen, kind.
VectorRow = tuple[int, bytes, str, float | None, str | None]


# Columns added to SCHEMA's tables by releases before versions: step 1 adds
# those an unversioned database lacks, and a read-only open of one reads NULL
# for them. A later change is a new step of LAYOUT, not an entry here.
ADDED_COLUMNS = {
    "files": [("kind", "TEXT NOT NULL DEFAULT 'photo'"), ("taken_at", "REAL"), ("duration_s", "REAL")],
    "faces": [("timestamp", "REAL"), ("track", "INTEGER"), ("track_start", "REAL"), ("track_end", "REAL")],
}

# Each generation's metadata.sqlite3 (indexer.store.sqlite_db). Step 1 adopts
# every layout of the releases before versions: the first one (files, faces,
# thumbnails, and a `runs` table since unused, left as it is), then the
# columns of ADDED_COLUMNS, the erasures, the index on content hashes.
LAYOUT = Layout("metadata database", (
    Step(1, adopt(SCHEMA, ADDED_COLUMNS)),
))


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


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
    taken_at: float | None = None  # POSIX seconds
    kind: str = "photo"
    duration_s: float | None = None


@dataclass(frozen=True)
class FaceTime:
    """Where a face of a video is: seconds into it, and its track."""

    timestamp: float
    track: int
    track_start: float
    track_end: float


class NewFace(NamedTuple):
    """A face to store (``FaceStore.put_file``): its box in the file's
    pixels, its 128-d float32 embedding, its thumbnail JPEG, and for a
    video's face, when it was seen."""

    box: Box
    embedding: np.ndarray
    jpeg: bytes
    time: FaceTime | None = None


@dataclass(frozen=True)
class FaceRecord:
    """One indexed face as the API reports it. Times: POSIX seconds
    (``taken_at``, of the file) and seconds into a video (the others)."""

    face_id: int
    path: str
    box: Box
    width: int
    height: int
    content_hash: str
    indexed_at: str
    kind: str = "photo"
    taken_at: float | None = None
    timestamp: float | None = None
    track_start: float | None = None
    track_end: float | None = None
    photo_id: int | None = None  # the file's id (``files.id``): a changed file gets a new one

    @property
    def time(self) -> float | None:
        """When the face was seen, POSIX seconds: the file's time plus the
        offset into a video."""
        if self.taken_at is None:
            return None
        return self.taken_at + (self.timestamp or 0.0)


@dataclass(frozen=True)
class PhotoFace:
    """One face of a photo (``timestamp``: seconds into a video)."""

    face_id: int
    box: Box
    timestamp: float | None = None


@dataclass(frozen=True)
class PhotoRecord:
    """One indexed file (photo or video) with its faces, in face-id order.
    ``size``, ``mtime_ns`` and ``content_hash`` are as indexed: serving the
    file checks them again. ``taken_at``: POSIX seconds."""

    photo_id: int
    path: str
    size: int
    mtime_ns: int
    content_hash: str
    width: int
    height: int
    kind: str
    taken_at: float | None
    duration_s: float | None
    indexed_at: str
    faces: list[PhotoFace]


@dataclass(frozen=True)
class VectorRows:
    """A batch of ``MetadataDB.vector_rows``: ids int64 (n,), embeddings
    float32 (n, 128), and per face its file's path, the time it was seen
    (POSIX seconds, NaN when unknown) and the file's kind."""

    ids: np.ndarray
    x: np.ndarray
    paths: list[str]
    times: list[float]
    kinds: list[str]

    @classmethod
    def of(cls, rows: list[VectorRow]) -> VectorRows:
        return cls(
            ids=np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows)),
            x=np.frombuffer(b"".join(r[1] for r in rows), dtype="<f4").reshape(len(rows), -1).astype(np.float32),
            paths=[r[2] for r in rows],
            times=[float("nan") if r[3] is None else float(r[3]) for r in rows],
            kinds=[r[4] or "photo" for r in rows],
        )


class MetadataDB:
    """SQLite database of photos and faces. Writes happen in one open
    transaction until ``commit()``; readers (the service) see the last commit
    (WAL mode, so they never block the indexer).

    A writable open brings the file to the last version of ``LAYOUT``. A
    read-only open writes nothing (a published generation keeps its
    checksums): it refuses a file of a newer version and reads an older one
    as it is, with NULL for the columns it lacks (``_col``); the next index
    run's copy of it is brought up to date."""

    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        self.path = Path(path)
        self.readonly = readonly
        self._lock = threading.RLock()
        if readonly:
            uri = f"file:{self.path}?mode=ro"
            self.conn = sqlite3.connect(uri, uri=True, check_same_thread=False)
        else:
            private_dir(self.path.parent)
            create_private_file(self.path)  # 0600: SQLite's -wal and -shm files take its mode
            self.conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level="DEFERRED")
        try:
            if readonly:
                check_version(self.conn, LAYOUT, self.path)
            else:
                self.conn.execute("PRAGMA journal_mode=WAL")
                self.conn.execute("PRAGMA synchronous=FULL")
                migrate(self.conn, LAYOUT, self.path)
            self.conn.execute("PRAGMA foreign_keys=ON")
            self._columns = {table: columns_of(self.conn, table) for table in ADDED_COLUMNS}
        except BaseException:
            self.conn.close()
            raise

    def _col(self, table: str, name: str) -> str:
        """``table.name``, or NULL for a column an older database lacks."""
        return f"{table}.{name}" if name in self._columns[table] else "NULL"

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

    def face_ids(self) -> np.ndarray:
        """Every face id, int64 ascending."""
        with self._lock:
            rows = self.conn.execute("SELECT id FROM faces ORDER BY id").fetchall()
        return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))

    def face_times(self, face_ids: Iterable[int]) -> dict[int, float | None]:
        """When each face that exists was seen (``FaceRecord.time``, POSIX
        seconds, None when unknown): what ordering by time and a timeline
        need, a fraction of the cost of whole records (10,000 faces in ~5 ms)."""
        ids = sorted({int(i) for i in face_ids if int(i) >= 0})
        out: dict[int, float | None] = {}
        seen = f"{self._col('files', 'taken_at')} + COALESCE({self._col('faces', 'timestamp')}, 0)"
        with self._lock:
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                marks = ",".join("?" * len(chunk))
                out.update(self.conn.execute(
                    f"SELECT faces.id, {seen} FROM faces JOIN files ON files.id = faces.file_id "
                    f"WHERE faces.id IN ({marks})", chunk,
                ).fetchall())
        return out

    def file_dated(self, face_ids: Iterable[int]) -> set[int]:
        """The faces, of those given, whose time is only their file's
        modification time: a photo with no capture date (its ``taken_at``
        was set from the mtime, to the millisecond)."""
        ids = sorted({int(i) for i in face_ids if int(i) >= 0})
        out: set[int] = set()
        with self._lock:
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                marks = ",".join("?" * len(chunk))
                out.update(f for (f,) in self.conn.execute(
                    f"SELECT faces.id FROM faces JOIN files ON files.id = faces.file_id WHERE faces.id IN ({marks}) "
                    f"AND {self._col('files', 'taken_at')} IS NOT NULL "
                    f"AND ABS({self._col('files', 'taken_at')} - files.mtime_ns / 1e9) < 0.001", chunk,
                ))
        return out

    def faces(self, face_ids: Iterable[int]) -> dict[int, FaceRecord]:
        """Records of the given face ids that exist (unknown ids are left out)."""
        ids = sorted({int(i) for i in face_ids if int(i) >= 0})
        out: dict[int, FaceRecord] = {}
        with self._lock:
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                marks = ",".join("?" * len(chunk))
                extra = ", ".join(
                    self._col(t, c) for t, c in (("files", "kind"), ("files", "taken_at"), ("faces", "timestamp"),
                                                 ("faces", "track_start"), ("faces", "track_end"))
                )
                rows = self.conn.execute(
                    "SELECT faces.id, files.path, faces.top, faces.right, faces.bottom, faces.left, "
                    f"files.width, files.height, files.content_hash, faces.indexed_at, {extra}, files.id "
                    f"FROM faces JOIN files ON files.id = faces.file_id WHERE faces.id IN ({marks})",
                    chunk,
                ).fetchall()
                for r in rows:
                    out[r[0]] = FaceRecord(
                        r[0], r[1], Box(r[2], r[3], r[4], r[5]), r[6], r[7], r[8], r[9],
                        kind=r[10] or "photo", taken_at=r[11], timestamp=r[12], track_start=r[13], track_end=r[14],
                        photo_id=r[15],
                    )
        return out

    def faces_with_content(self, content_hashes: Iterable[str]) -> list[FaceRecord]:
        """Every face of the files with these content hashes."""
        hashes = sorted(set(content_hashes))
        ids: list[int] = []
        with self._lock:
            for start in range(0, len(hashes), 500):
                chunk = hashes[start : start + 500]
                marks = ",".join("?" * len(chunk))
                ids += [r[0] for r in self.conn.execute(
                    f"SELECT faces.id FROM faces JOIN files ON files.id = faces.file_id "
                    f"WHERE files.content_hash IN ({marks})", chunk
                )]
        return list(self.faces(ids).values())

    def photo(self, photo_id: int) -> PhotoRecord | None:
        """One file by id, with its faces; None when unknown."""
        columns = ", ".join(self._col("files", c) for c in ("kind", "taken_at", "duration_s"))
        with self._lock:
            row = self.conn.execute(
                f"SELECT id, path, size, mtime_ns, content_hash, width, height, {columns}, indexed_at "
                "FROM files WHERE id = ?",
                (int(photo_id),),
            ).fetchone()
            if row is None:
                return None
            faces = self.conn.execute(
                f"SELECT id, top, right, bottom, left, {self._col('faces', 'timestamp')} FROM faces "
                "WHERE file_id = ? ORDER BY id",
                (int(photo_id),),
            ).fetchall()
        return PhotoRecord(
            row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7] or "photo", row[8], row[9], row[10],
            [PhotoFace(f[0], Box(f[1], f[2], f[3], f[4]), f[5]) for f in faces],
        )

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

    def vector_rows(
        self, face_ids: Iterable[int] | None = None, batch: int = 10_000, *, embeddings: bool = True
    ) -> Iterator[VectorRows]:
        """The faces a vector store outside SQLite keeps beside each vector
        (``indexer.store.milvus``): id, embedding, file path, time seen
        (``FaceRecord.time``, NaN when unknown) and file kind, in id order, in
        batches; all faces, or the given ones. Without ``embeddings`` the
        ``x`` of each batch is empty (n, 0)."""
        seen = f"{self._col('files', 'taken_at')} + COALESCE({self._col('faces', 'timestamp')}, 0)"
        vector = "faces.embedding" if embeddings else "x''"
        select = (f"SELECT faces.id, {vector}, files.path, {seen}, {self._col('files', 'kind')} "
                  "FROM faces JOIN files ON files.id = faces.file_id")
        if face_ids is None:
            last = -1
            while True:
                with self._lock:
                    rows = self.conn.execute(f"{select} WHERE faces.id > ? ORDER BY faces.id LIMIT ?",
                                             (last, batch)).fetchall()
                if not rows:
                    return
                yield VectorRows.of(rows)
                last = int(rows[-1][0])
        ids = sorted({int(i) for i in face_ids})
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            with self._lock:
                rows = self.conn.execute(
                    f"{select} WHERE faces.id IN ({','.join('?' * len(chunk))}) ORDER BY faces.id", chunk
                ).fetchall()
            if rows:
                yield VectorRows.of(rows)

    # -- writing (indexer only) -------------------------------------------

    def face_ids_of(self, path: str) -> list[int]:
        with self._lock:
            rows = self.conn.execute(
                "SELECT faces.id FROM faces JOIN files ON files.id = faces.file_id WHERE files.path = ?", (path,)
            ).fetchall()
        return [r[0] for r in rows]

    def put_file(self, record: FileRecord, faces: list[NewFace]) -> tuple[list[int], list[int]]:
        """Write a photo (or video) and its faces, replacing whatever was
        stored for its path. Returns (new face ids, removed face ids)."""
        now = utc_now()
        with self._lock:
            removed = self.face_ids_of(record.path)
            self.conn.execute("DELETE FROM files WHERE path = ?", (record.path,))
            cur = self.conn.execute(
                "INSERT INTO files (path, size, mtime_ns, content_hash, width, height, face_count, "
                "detection, model, indexed_at, kind, taken_at, duration_s) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    record.path, record.size, record.mtime_ns, record.content_hash, record.width,
                    record.height, len(faces), record.detection, record.model, now, record.kind,
                    record.taken_at, record.duration_s,
                ),
            )
            new_ids = self._insert_faces(inserted_id(cur), faces, now)
        return new_ids, removed

    def add_faces(self, path: str, content_hash: str, faces: list[NewFace]) -> list[int]:
        """Add faces to an indexed file, its other faces kept as they are
        (a face drawn by hand); returns their new ids, none when no file of
        that path has that content (any more)."""
        with self._lock:
            row = self.conn.execute("SELECT id FROM files WHERE path = ? AND content_hash = ?",
                                    (path, content_hash)).fetchone()
            if row is None:
                return []
            new_ids = self._insert_faces(int(row[0]), faces, utc_now())
            self.conn.execute("UPDATE files SET face_count = face_count + ? WHERE id = ?", (len(new_ids), row[0]))
        return new_ids

    def _insert_faces(self, file_id: int, faces: list[NewFace], now: str) -> list[int]:
        new_ids: list[int] = []
        for box, embedding, jpeg, at in faces:
            vec = np.ascontiguousarray(embedding, dtype="<f4").tobytes()
            cur = self.conn.execute(
                "INSERT INTO faces (file_id, top, right, bottom, left, embedding, indexed_at, timestamp, track, "
                "track_start, track_end) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (
                    file_id, box.top, box.right, box.bottom, box.left, vec, now,
                    at and at.timestamp, at and at.track, at and at.track_start, at and at.track_end,
                ),
            )
            face_id = inserted_id(cur)
            new_ids.append(face_id)
            self.conn.execute("INSERT INTO thumbnails (face_id, jpeg) VALUES (?, ?)", (face_id, jpeg))
        return new_ids

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

    def erase_faces(self, face_ids: Iterable[int], *, remember: bool = True) -> list[tuple[int, str]]:
        """Delete faces (rows, embeddings, thumbnails) for good and, with
        ``remember``, record where they were (``erasures``: reindexing
        leaves them out; not for a drawn face taken back, which only its
        drawing brought); their files stay indexed with fewer faces.
        Deleted content is overwritten in the database pages
        (``secure_delete``); ``vacuum`` after sealing rewrites the file.
        Returns (face id, path) of the faces that were there."""
        ids = sorted({int(i) for i in face_ids})
        now = utc_now()
        erased: list[tuple[int, str]] = []
        with self._lock:
            self.conn.execute("PRAGMA secure_delete=ON")
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                marks = ",".join("?" * len(chunk))
                rows = self.conn.execute(
                    "SELECT faces.id, files.path, files.id, files.content_hash, faces.top, faces.right, "
                    f"faces.bottom, faces.left, {self._col('faces', 'timestamp')} FROM faces "
                    f"JOIN files ON files.id = faces.file_id WHERE faces.id IN ({marks})",
                    chunk,
                ).fetchall()
                if remember:
                    self.conn.executemany(
                        f"INSERT INTO erasures ({ERASURE_COLUMNS}) VALUES (?,?,?,?,?,?,?)",
                        [(r[3], r[4], r[5], r[6], r[7], r[8], now) for r in rows],
                    )
                self.conn.execute(f"DELETE FROM thumbnails WHERE face_id IN ({marks})", chunk)
                self.conn.execute(f"DELETE FROM faces WHERE id IN ({marks})", chunk)
                for file_id in {r[2] for r in rows}:
                    self.conn.execute(
                        "UPDATE files SET face_count = (SELECT COUNT(*) FROM faces WHERE file_id = ?) WHERE id = ?",
                        (file_id, file_id),
                    )
                erased.extend((int(r[0]), str(r[1])) for r in rows)
        return erased

    def erased_places(self, content_hash: str) -> list[tuple[Box, float | None]]:
        """Where faces of a file with this content were erased: (box, video timestamp)."""
        with self._lock:
            rows = self.conn.execute(
                "SELECT top, right, bottom, left, timestamp FROM erasures WHERE content_hash = ?", (content_hash,)
            ).fetchall()
        return [(Box(r[0], r[1], r[2], r[3]), r[4]) for r in rows]

    def erasure_rows(self) -> list[ErasureRow]:
        """Every erasure record, to carry into a rebuilt store (``index
        --full``); none in a database older than erasures."""
        with self._lock:
            if not columns_of(self.conn, "erasures"):
                return []
            return self.conn.execute(f"SELECT {ERASURE_COLUMNS} FROM erasures ORDER BY id").fetchall()

    def add_erasure_rows(self, rows: list[ErasureRow]) -> None:
        with self._lock:
            self.conn.executemany(f"INSERT INTO erasures ({ERASURE_COLUMNS}) VALUES (?,?,?,?,?,?,?)", rows)

    def id_sequences(self) -> dict[str, int]:
        """The highest id each table (faces, files, erasures) ever gave, even
        to a row since deleted (SQLite's ``sqlite_sequence``)."""
        with self._lock:
            return {name: int(seq) for name, seq in self.conn.execute("SELECT name, seq FROM sqlite_sequence")}

    def continue_ids(self, sequences: Mapping[str, int]) -> None:
        """Make the ids of an empty database continue past ``sequences``
        (``id_sequences`` of the databases it replaces), in the open
        transaction: ``index --full`` never gives a face the id of another."""
        with self._lock:
            self.conn.executemany("INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)", sequences.items())

    def copy_to(self, path: Path) -> None:
        """Copy the database into a new 0600 file ``path``, whole and
        consistent even in WAL mode, with its layout version and id
        sequences (SQLite's backup API: page by page, nothing rewritten)."""
        create_private_file(path)
        target = sqlite3.connect(path)
        try:
            with self._lock:
                self.conn.backup(target)
        finally:
            target.close()

    def vacuum(self) -> None:
        """Rewrite the database file from its live content only (after an
        erasure: nothing deleted survives in free pages)."""
        with self._lock:
            self.conn.commit()
            self.conn.execute("VACUUM")

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

    def commit(self) -> None:
        with self._lock:
            self.conn.commit()

    def rollback(self) -> None:
        with self._lock:
            self.conn.rollback()

    def close(self) -> None:
        with self._lock:
            self.conn.close()
