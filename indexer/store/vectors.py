"""A thin wrapper over a FAISS index: ``IndexIDMap2`` over ``IndexFlatL2``.

It does not hide FAISS: ``search(x, k)`` returns FAISS's ``(D, I)`` with
**squared** L2 distances in ``D`` and metadata row ids in ``I`` (-1 where
fewer than ``k`` vectors exist). Inputs are converted to C-contiguous float32.
"""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np

from indexer.store.atomic import atomic_write_bytes

INDEX_TYPE = "IDMap2,Flat"


def as_float32_matrix(x: np.ndarray, dim: int) -> np.ndarray:
    """``x`` as a C-contiguous float32 (n, dim) array; a single vector becomes (1, dim)."""
    x = np.ascontiguousarray(np.asarray(x, dtype=np.float32))
    if x.ndim == 1:
        x = x.reshape(1, -1)
    if x.ndim != 2 or x.shape[1] != dim:
        raise ValueError(f"expected vectors of dimension {dim}, got shape {x.shape}")
    return x


class FlatL2Index:
    """Exact L2 search over vectors with caller-chosen int64 ids."""

    index_type = INDEX_TYPE

    def __init__(self, dim: int = 128, index: faiss.Index | None = None) -> None:
        self.dim = dim
        self.index = index if index is not None else faiss.IndexIDMap2(faiss.IndexFlatL2(dim))

    @property
    def ntotal(self) -> int:
        return int(self.index.ntotal)

    def add(self, ids: np.ndarray, x: np.ndarray) -> None:
        x = as_float32_matrix(x, self.dim)
        ids = np.ascontiguousarray(np.asarray(ids, dtype=np.int64).reshape(-1))
        if len(ids) != len(x):
            raise ValueError(f"{len(ids)} ids for {len(x)} vectors")
        if len(x):
            self.index.add_with_ids(x, ids)

    def remove(self, ids: np.ndarray) -> int:
        """Remove vectors by id; returns how many were removed."""
        ids = np.ascontiguousarray(np.asarray(ids, dtype=np.int64).reshape(-1))
        if not len(ids):
            return 0
        return int(self.index.remove_ids(ids))

    def search(self, x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """``(D, I)``: squared L2 distances (ascending) and ids, each (n, k)."""
        x = as_float32_matrix(x, self.dim)
        if k <= 0:
            raise ValueError("k must be positive")
        return self.index.search(x, k)

    def reconstruct(self, face_id: int) -> np.ndarray:
        return self.index.reconstruct(int(face_id))

    def save(self, path: Path) -> None:
        """Write atomically (temporary file, fsync, rename)."""
        atomic_write_bytes(Path(path), faiss.serialize_index(self.index).tobytes())

    @classmethod
    def load(cls, path: Path) -> "FlatL2Index":
        data = np.fromfile(path, dtype=np.uint8)
        index = faiss.deserialize_index(data)
        return cls(dim=index.d, index=index)
