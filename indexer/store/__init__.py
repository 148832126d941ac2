"""Face storage: vectors (FAISS) plus metadata (SQLite) behind one interface."""

from indexer.store.base import FaceStore, StoreError
from indexer.store.embedded import EmbeddedStore, StoreMismatchError
from indexer.store.metadata import FaceRecord, FileRecord, FileState, PhotoFace, PhotoRecord

__all__ = [
    "EmbeddedStore",
    "FaceRecord",
    "FaceStore",
    "FileRecord",
    "FileState",
    "PhotoFace",
    "PhotoRecord",
    "StoreError",
    "StoreMismatchError",
]
