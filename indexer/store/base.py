"""The store interface the indexer and the service use. The embedded default
is FAISS + SQLite (``EmbeddedStore``); a server-backed store (Milvus, for
collections that outgrow one machine) is meant to implement the same
protocol."""

from __future__ import annotations

from typing import Protocol

import numpy as np

from indexer.model import Box
from indexer.store.metadata import FaceRecord, FileRecord, FileState, PhotoRecord


class StoreError(RuntimeError):
    """The store cannot be used as it is; the message says how to repair it."""


class FaceStore(Protocol):
    def count(self) -> int:
        """Number of indexed faces."""

    def search(self, x: np.ndarray, k: int, exact: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """``(D, I)`` for float32 queries ``x`` (n, 128): **squared** L2
        distances ascending and face ids, (n, k) each, id -1 past the end.
        A store may answer approximately (a large collection's ANN index)
        unless ``exact``."""

    def range_search(self, x: np.ndarray, radius_sq: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(lims, D, I)``: every face within **squared** L2 ``radius_sq`` of
        each query; query i's hits are ``D[lims[i]:lims[i+1]]``,
        ``I[lims[i]:lims[i+1]]``, unordered."""

    def face_ids(self) -> np.ndarray:
        """Every indexed face id, int64 ascending."""

    def vectors_of(self, face_ids: np.ndarray) -> np.ndarray:
        """The embeddings of indexed faces, float32 (n, 128)."""

    def faces(self, face_ids: list[int]) -> dict[int, FaceRecord]:
        """Metadata of the given faces; unknown ids are left out."""

    def face_times(self, face_ids: list[int]) -> dict[int, float | None]:
        """When each of the given faces was seen (POSIX seconds, None when
        unknown); unknown ids are left out."""

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

    def put_file(self, record: FileRecord, faces: list[tuple[Box, np.ndarray, bytes]]) -> tuple[int, int]:
        """Replace a photo's faces; returns (faces added, faces removed)."""

    def touch_file(self, path: str, size: int, mtime_ns: int) -> None:
        """Record new stat data for a file whose content is unchanged."""

    def move_file(self, old_path: str, new_path: str, size: int, mtime_ns: int) -> int:
        """Re-path a photo whose content moved, keeping its face ids; returns
        its number of faces."""

    def remove_file(self, path: str) -> int:
        """Forget a photo; returns the number of faces removed."""

    def erase_faces(self, face_ids: list[int]) -> list[tuple[int, str]]:
        """Delete faces for good (vectors, metadata, thumbnails) and remember
        where they were so that ``put_file`` of the same content leaves them
        out; returns (face id, path) of those that were indexed."""

    def checkpoint(self, **manifest_extra: object) -> None:
        """Make every write so far durable (a killed run resumes from here)."""

    def seal(self, **manifest_extra: object) -> None:
        """The final checkpoint before the store is published."""

    def close(self) -> None: ...
