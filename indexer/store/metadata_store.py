"""The half of a store both backends share: one generation's SQLite
metadata database (photos, faces with their embeddings, thumbnails, the
record of erasures) and its manifest. ``EmbeddedStore`` adds a FAISS file
beside it, ``MilvusStore`` a Milvus collection; SQLite stays the source of
truth, from which either vector side can be rebuilt."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np

from indexer.store.atomic import atomic_write_bytes
from indexer.store.base import FaceFilter, StoreError
from indexer.store.metadata import FaceRecord, FileState, MetadataDB, NewFace, PhotoRecord
from indexer.tracks import iou

MANIFEST_FILE = "manifest.json"
DB_FILE = "metadata.sqlite3"

# A newly found face is an erased one when its box overlaps the erased box
# this much (intersection over union); the same detector on the same file
# gives the same box, a changed detection setting a slightly different one.
ERASED_IOU = 0.5


def _same_time(a: float | None, b: float | None) -> bool:
    return (a is None and b is None) or (a is not None and b is not None and abs(a - b) < 1e-3)


class MetadataStore:
    """The SQLite side of a store in ``data_dir`` (a generation directory)."""

    def __init__(self, data_dir: Path, db: MetadataDB, manifest: dict[str, Any]) -> None:
        self.data_dir = data_dir
        self.db = db
        self.manifest = manifest
        self.repaired: str | None = None  # the problem ``open(repair=True)`` rebuilt for, if any

    @classmethod
    def open_metadata(cls, data_dir: Path | str) -> MetadataStore:
        """A generation's metadata and manifest alone, read-only, whatever
        holds its vectors (what change detection needs)."""
        data_dir = Path(data_dir).expanduser().resolve()
        manifest = read_manifest(data_dir / MANIFEST_FILE) or {}
        return cls(data_dir, open_db(data_dir, readonly=True), manifest)

    # -- reading -----------------------------------------------------------

    def face_ids(self) -> np.ndarray:
        return self.db.face_ids()

    def faces(self, face_ids: list[int]) -> dict[int, FaceRecord]:
        return self.db.faces(face_ids)

    def face_times(self, face_ids: list[int]) -> dict[int, float | None]:
        return self.db.face_times(face_ids)

    def file_dated(self, face_ids: list[int]) -> set[int]:
        return self.db.file_dated(face_ids)

    def thumbnail(self, face_id: int) -> bytes | None:
        return self.db.thumbnail(face_id)

    def photo(self, photo_id: int) -> PhotoRecord | None:
        return self.db.photo(photo_id)

    def faces_with_content(self, content_hashes: list[str]) -> list[FaceRecord]:
        return self.db.faces_with_content(content_hashes)

    def all_embeddings(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(face ids, photo ids, embeddings (n, 128) float32) of every face, by face id."""
        return self.db.all_embeddings()

    def file_states(self) -> dict[str, FileState]:
        return self.db.file_states()

    def photo_count(self) -> int:
        return self.db.file_count()

    def example_path(self) -> str | None:
        return self.db.example_path()

    def matching(self, face_ids: np.ndarray, where: FaceFilter) -> np.ndarray:
        """Which of ``face_ids`` (int64, repeats allowed) are indexed faces
        that ``where`` keeps, checked against their metadata: bool (n,)."""
        records = self.db.faces(np.unique(face_ids).tolist())
        return np.array([f in records and where.keep(records[f]) for f in face_ids.tolist()], dtype=bool)

    # -- writing -----------------------------------------------------------

    def touch_file(self, path: str, size: int, mtime_ns: int) -> None:
        self.db.touch_file(path, size, mtime_ns)

    def _not_erased(self, content_hash: str, faces: list[NewFace]) -> list[NewFace]:
        """``faces`` less those found where a face of the same content was
        erased: boxes overlapping by IoU >= ERASED_IOU (and, in a video, at
        the same timestamp)."""
        places = self.db.erased_places(content_hash) if faces else []
        if not places:
            return faces
        kept = []
        for face in faces:
            at = face.time.timestamp if face.time is not None else None
            if not any(iou(face.box, box) >= ERASED_IOU and _same_time(at, when) for box, when in places):
                kept.append(face)
        return kept

    def purge_deleted(self) -> None:
        """After an erasure: rewrite the metadata database from its live
        content, so that nothing deleted survives in its free pages."""
        self.db.vacuum()

    def _write_manifest(self) -> None:
        atomic_write_bytes(
            self.data_dir / MANIFEST_FILE, (json.dumps(self.manifest, indent=2, sort_keys=True) + "\n").encode()
        )

    def close(self) -> None:
        self.db.close()


def open_db(data_dir: Path, *, readonly: bool) -> MetadataDB:
    """The generation's metadata database; a damaged one is a
    ``StoreError`` that says how to rebuild."""
    try:
        return MetadataDB(data_dir / DB_FILE, readonly=readonly)
    except sqlite3.DatabaseError as exc:
        raise StoreError(
            f"the metadata database in {data_dir} is damaged ({exc}); rebuild the index with "
            "`facesearch index --full --data-dir DATA_DIR PATH...`"
        ) from None


def read_manifest(path: Path) -> dict[str, Any] | None:
    """A generation's manifest (``path`` is the file), None when missing."""
    if not path.exists():
        return None
    try:
        manifest: dict[str, Any] = json.loads(path.read_text())
        return manifest
    except (OSError, ValueError) as exc:
        raise StoreError(f"cannot read {path} ({exc}); run `facesearch repair --data-dir {path.parent}`") from exc

