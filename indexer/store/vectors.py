"""A thin wrapper over a FAISS index: ``IndexIDMap2`` over ``IndexFlatL2``.

It does not hide FAISS: ``search(x, k)`` returns FAISS's ``(D, I)`` with
**squared** L2 distances in ``D`` and metadata row ids in ``I`` (-1 where
fewer than ``k`` vectors exist). Inputs are converted to C-contiguous float32.

Exact search, made faster for large indexes. A flat scan reads every vector:
at 100k faces that is 51 MB per query, more than the CPU caches hold, and it
runs at memory speed (2.5 ms here). Past ``SCAN_MIN_FACES`` faces, ``search``
scans an in-memory float16 copy instead (half the bytes: 1.1-1.3 ms at 100k),
takes ``2k + 32`` candidates and re-ranks them with their exact float32
distances. float16 changes a squared distance by about 1e-4 relative, far less
than the candidate margin covers, so the result equals the float32 scan's
(``tests/test_store.py`` checks it against brute force). The copy costs 256
bytes per face in memory and is never saved: the file holds float32 only.
"""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np

from indexer.store.atomic import atomic_write_bytes

INDEX_TYPE = "IDMap2,Flat"
# Below this many vectors the float32 vectors fit in the CPU caches and the
# plain scan is as fast as the float16 one (10k faces: 0.08 ms a query).
SCAN_MIN_FACES = 20_000


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

    def __init__(self, dim: int = 128, index: faiss.Index | None = None, scan_min_faces: int = SCAN_MIN_FACES) -> None:
        self.dim = dim
        self.index = index if index is not None else faiss.IndexIDMap2(faiss.IndexFlatL2(dim))
        self.scan_min_faces = scan_min_faces
        self._scan: faiss.Index | None = None  # float16 copy, built by the first large search

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
            if self._scan is not None:
                self._scan.add_with_ids(x, ids)

    def remove(self, ids: np.ndarray) -> int:
        """Remove vectors by id; returns how many were removed."""
        ids = np.ascontiguousarray(np.asarray(ids, dtype=np.int64).reshape(-1))
        if not len(ids):
            return 0
        if self._scan is not None:
            self._scan.remove_ids(ids)
        return int(self.index.remove_ids(ids))

    def search(self, x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """``(D, I)``: squared L2 distances (ascending) and ids, each (n, k)."""
        x = as_float32_matrix(x, self.dim)
        if k <= 0:
            raise ValueError("k must be positive")
        candidates = 2 * k + 32
        if self.ntotal < self.scan_min_faces or candidates * 4 > self.ntotal:
            return self.index.search(x, k)
        self.prepare_search()
        assert self._scan is not None
        _, found = self._scan.search(x, candidates)
        distances = np.full((len(x), k), np.finfo(np.float32).max, dtype=np.float32)
        ids = np.full((len(x), k), -1, dtype=np.int64)
        for row, (query, cand) in enumerate(zip(x, found)):
            cand = cand[cand >= 0]
            exact = ((self.index.reconstruct_batch(cand) - query) ** 2).sum(axis=1, dtype=np.float32)
            order = np.argsort(exact, kind="stable")[:k]
            distances[row, : len(order)] = exact[order]
            ids[row, : len(order)] = cand[order]
        return distances, ids

    def prepare_search(self) -> None:
        """Build the float16 scan copy now (once), if the index is large
        enough to use it; the service calls this at start-up."""
        if self._scan is None and self.ntotal >= self.scan_min_faces:
            scan = faiss.IndexIDMap2(faiss.IndexScalarQuantizer(self.dim, faiss.ScalarQuantizer.QT_fp16))
            ids = faiss.vector_to_array(self.index.id_map).astype(np.int64)
            scan.add_with_ids(self.index.reconstruct_batch(ids), ids)
            self._scan = scan

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
