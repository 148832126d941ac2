"""The store interface the indexer and the service use. The embedded default
is FAISS + SQLite (``EmbeddedStore``); ``MilvusStore`` keeps the vectors in
a Milvus collection instead (``store.backend = "milvus"``). Open either
through ``indexer.store.backends``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from config.settings import IndexSettings
from indexer.store.errors import StoreError
from indexer.store.metadata import FaceRecord, FileRecord, FileState, NewFace, PhotoRecord

__all__ = ["FaceFilter", "FaceStore", "StoreError", "StoreMismatchError"]


class StoreMismatchError(StoreError):
    """The vectors and the metadata disagree (``facesearch repair`` mends it)."""


@dataclass(frozen=True)
class FaceFilter:
    """Which faces a range search may return: ``path_prefix``, of files
    whose path starts with it (a camera's folder); ``time_from``/``time_to``,
    seen in that range (POSIX seconds, inclusive; a face of unknown time is
    left out by either)."""

    path_prefix: str | None = None
    time_from: float | None = None
    time_to: float | None = None

    def __bool__(self) -> bool:
        return self.path_prefix is not None or self.time_from is not None or self.time_to is not None

    def keep(self, record: FaceRecord) -> bool:
        if self.path_prefix is not None and not record.path.startswith(self.path_prefix):
            return False
        if self.time_from is not None or self.time_to is not None:
            seen = record.time
            if seen is None:
                return False
            if self.time_from is not None and seen < self.time_from:
                return False
            if self.time_to is not None and seen > self.time_to:
                return False
        return True


class FaceStore(Protocol):
    """One generation of an index: its metadata in SQLite and its vectors
    in FAISS (``EmbeddedStore``) or Milvus (``MilvusStore``)."""

    backend: str  # "faiss" or "milvus"
    data_dir: Path  # the generation's directory
    manifest: dict[str, Any]  # what checkpoints recorded: model, detection, faces, updated_at, ann, ...
    repaired: str | None  # what a writable open with ``repair`` rebuilt, if anything

    def count(self) -> int:
        """Number of indexed faces."""

    def search(self, x: np.ndarray, k: int, exact: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """``(D, I)`` for float32 queries ``x`` (n, 128): **squared** L2
        distances ascending and face ids, (n, k) each, id -1 past the end.
        A store may answer approximately (a large collection's ANN index)
        unless ``exact``."""

    def range_search(
        self, x: np.ndarray, radius_sq: float, where: FaceFilter | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(lims, D, I)``: every face within **squared** L2 ``radius_sq``
        (exclusive) of each query and matching ``where``; query i's hits are
        ``D[lims[i]:lims[i+1]]``, ``I[lims[i]:lims[i+1]]``, unordered."""

    def face_ids(self) -> np.ndarray:
        """Every indexed face id, int64 ascending."""

    def vectors_of(self, face_ids: np.ndarray) -> np.ndarray:
        """The embeddings of indexed faces, float32 (n, 128)."""

    def faces(self, face_ids: list[int]) -> dict[int, FaceRecord]:
        """Metadata of the given faces; unknown ids are left out."""

    def face_times(self, face_ids: list[int]) -> dict[int, float | None]:
        """When each of the given faces was seen (POSIX seconds, None when
        unknown); unknown ids are left out."""

    def file_dated(self, face_ids: list[int]) -> set[int]:
        """The given faces whose time is only their file's modification
        time (a photo with no capture date)."""

    def faces_with_content(self, content_hashes: list[str]) -> list[FaceRecord]:
        """Every face of the indexed files with these content hashes."""

    def photo(self, photo_id: int) -> PhotoRecord | None:
        """One indexed file with its faces, or None for an unknown id."""

    def thumbnail(self, face_id: int) -> bytes | None:
        """JPEG bytes of the face crop, or None for an unknown id."""

    def all_embeddings(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every face as (face ids int64 (n,), photo ids int64 (n,),
        embeddings float32 (n, 128)), in face-id order."""

    def file_states(self) -> dict[str, FileState]:
        """Every indexed photo by path, for change detection."""

    def photo_count(self) -> int:
        """Number of indexed photos and recordings."""

    def example_path(self) -> str | None:
        """The path of one indexed photo with a face (for hints)."""

    @property
    def index_type(self) -> str:
        """What holds the vectors, in a few words ("IDMap2,Flat", "Milvus FLAT")."""

    @property
    def search_description(self) -> str:
        """How top-k searches are answered, in words."""

    def prepare_search(self, index_settings: IndexSettings) -> None:
        """Get ready to serve searches (load what a search needs)."""

    def put_file(self, record: FileRecord, faces: list[NewFace]) -> tuple[int, int]:
        """Replace a file's faces; returns (faces added, faces removed).
        Faces where a face of the same content was erased are left out."""

    def add_faces(self, path: str, content_hash: str, faces: list[NewFace]) -> list[int]:
        """Add faces to the indexed photo at ``path`` (of content
        ``content_hash``), keeping its others and their ids (a face drawn
        by hand); returns the new ids. Faces where a face of the same
        content was erased are left out, as by ``put_file``; so is every
        face of an unknown path."""

    def touch_file(self, path: str, size: int, mtime_ns: int) -> None:
        """Record new stat data for a file whose content is unchanged."""

    def move_file(self, old_path: str, new_path: str, size: int, mtime_ns: int) -> int:
        """Re-path a photo whose content moved, keeping its face ids; returns
        its number of faces."""

    def remove_file(self, path: str) -> int:
        """Forget a photo; returns the number of faces removed."""

    def erase_faces(self, face_ids: list[int], *, remember: bool = True) -> list[tuple[int, str]]:
        """Delete faces for good (vectors, metadata, thumbnails) and, with
        ``remember``, where they were so that ``put_file`` of the same
        content leaves them out; returns (face id, path) of those that were
        indexed."""

    def checkpoint(self, **manifest_extra: object) -> None:
        """Make every write so far durable (a killed run resumes from here)."""

    def plan_search(self, index_settings: IndexSettings) -> None:
        """Have ``seal`` build the search structures ``index_settings``
        ask for (FAISS: an approximate index past
        ``index.approximate_from_faces``; Milvus builds its own index in the
        collection: nothing to do). Without it, a generation keeps the
        kind it had (an erasure, a repair)."""

    def seal(self, **manifest_extra: object) -> None:
        """The final checkpoint before the store is published."""

    def rebuild_index(self) -> int:
        """Rebuild the vectors from the metadata's embeddings; returns the
        number of faces."""

    def purge_deleted(self) -> None:
        """After an erasure: leave no byte of deleted faces where it can."""

    def close(self) -> None: ...
