"""Face storage: vectors (FAISS) plus metadata (SQLite) behind one interface."""

from indexer.store.backends import after_publish, open_published, open_store
from indexer.store.base import FaceFilter, FaceStore, StoreError, StoreMismatchError
from indexer.store.embedded import EmbeddedStore
from indexer.store.metadata import FaceRecord, FileRecord, FileState, NewFace, PhotoFace, PhotoRecord

__all__ = [
    "EmbeddedStore",
    "FaceFilter",
    "FaceRecord",
    "FaceStore",
    "FileRecord",
    "FileState",
    "NewFace",
    "PhotoFace",
    "PhotoRecord",
    "StoreError",
    "StoreMismatchError",
    "after_publish",
    "open_published",
    "open_store",
]
