"""A thin wrapper over a FAISS index: ``IndexIDMap2`` over ``IndexFlatL2``.

It does not hide FAISS: ``search(x, k)`` returns FAISS's ``(D, I)`` with
**squared** L2 distances in ``D`` and metadata row ids in ``I`` (-1 where
fewer than ``k`` vectors exist). Inputs are converted to C-contiguous float32.

Exact search, made faster for large indexes. A flat scan reads every float32
vector: at 100k faces that is 51 MB per query, more than the CPU caches hold
(2.0-2.5 ms here). Past ``SCAN_MIN_FACES`` faces, ``search`` first scans an
in-memory 8-bit copy (``BytePrescan``: 128 bytes a face, 0.55 ms at 100k),
takes ``max(2k + 32, MIN_CANDIDATES)`` candidates, re-ranks them by their
exact float32 distances, and checks with the prescan's proven error bound
(the copy's rounding plus the query's) that no face outside the candidates
can be nearer than the k-th; when that check fails (many faces tied near
the k-th distance, as in collections of a million) it tries again with 8
times the candidates, and only then falls back to the float32 scan. So the
result is always the float32 scan's. ``range_search`` uses the copy the same
way: candidates within the radius plus the bound, then exact distances. The
copy is never saved.

A large collection's top-k searches may instead be answered by an
approximate index (``use_ann``, ``indexer.store.ann``), re-ranked exactly;
range searches never are.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import faiss
import numpy as np

from indexer.store.ann import AnnIndex
from indexer.store.atomic import atomic_write_bytes
from indexer.store.prescan import ROUNDING_SLACK, BytePrescan

INDEX_TYPE = "IDMap2,Flat"
# Below this many vectors the float32 vectors fit in the CPU caches and the
# plain scan is as fast as the prescan (10k faces: 0.08 ms a query).
SCAN_MIN_FACES = 20_000
# A prescan whose candidates cannot prove the result is retried with this
# many times more candidates before the full float32 scan.
WIDEN = 8
# Candidates a top-k prescan takes at least: with fewer, the error bound
# (the copy's and the query's own rounding, ~0.02 for dlib embeddings)
# rarely proves the result at 1M faces (52: 21% of queries; 256: 98.5%, for
# 0.4 ms more than 52's 5.6 ms) and the query is scanned again.
MIN_CANDIDATES = 256
# Range searches use the prescan from this many faces: below, the float32
# range scan is faster than the prescan's 2048-nearest selection (30k faces:
# 0.3 vs 1.0 ms; 1M: 25 vs 8.5 ms).
RANGE_SCAN_MIN_FACES = 100_000
# A range search takes this many candidates from the prescan; a query with
# more faces within reach (1 in 8 at the default radius in a million LFW-like
# faces: people seen hundreds of times) is answered by the float32 scan.
RANGE_CANDIDATES = 2048


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

    def __init__(
        self,
        dim: int = 128,
        index: faiss.Index | None = None,
        scan_min_faces: int = SCAN_MIN_FACES,
        range_scan_min_faces: int = RANGE_SCAN_MIN_FACES,
        min_candidates: int = MIN_CANDIDATES,
    ) -> None:
        self.dim = dim
        # An IndexIDMap2 as faiss's numpy wrappers extend it (remove_ids of an
        # id array, id_map), which its SWIG stubs do not describe.
        self.index: Any = index if index is not None else faiss.IndexIDMap2(faiss.IndexFlatL2(dim))
        self.scan_min_faces = scan_min_faces
        self.range_scan_min_faces = max(scan_min_faces, range_scan_min_faces)
        self.min_candidates = min_candidates
        self.fallbacks = 0  # prescanned queries that needed the full scan
        self._scan: BytePrescan | None = None  # built by prepare_search()
        self.ann: AnnIndex | None = None  # set by use_ann(): approximate top-k searches
        self.ann_candidates = 0

    @property
    def ntotal(self) -> int:
        return int(self.index.ntotal)

    def add(self, ids: np.ndarray, x: np.ndarray) -> None:
        x = as_float32_matrix(x, self.dim)
        ids = np.ascontiguousarray(np.asarray(ids, dtype=np.int64).reshape(-1))
        if len(ids) != len(x):
            raise ValueError(f"{len(ids)} ids for {len(x)} vectors")
        if len(x):
            self.ann = None  # it would miss the new faces
            self.index.add_with_ids(x, ids)
            if self._scan is not None:
                self._scan.add(ids, x)

    def remove(self, ids: np.ndarray) -> int:
        """Remove vectors by id; returns how many were removed."""
        ids = np.ascontiguousarray(np.asarray(ids, dtype=np.int64).reshape(-1))
        if not len(ids):
            return 0
        self.ann = None  # it would still offer the removed faces
        if self._scan is not None:
            self._scan.remove(ids)
        return int(self.index.remove_ids(ids))

    def search(self, x: np.ndarray, k: int, exact: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """``(D, I)``: squared L2 distances (ascending) and ids, each (n, k).
        Exact, unless an approximate index is in use (``use_ann``) and not
        ``exact``."""
        x = as_float32_matrix(x, self.dim)
        if k <= 0:
            raise ValueError("k must be positive")
        if self.ann is not None and not exact:
            return self._approximate_search(x, k)
        candidates = max(2 * k + 32, self.min_candidates)
        if self.ntotal < self.scan_min_faces or candidates * 4 > self.ntotal:
            searched: tuple[np.ndarray, np.ndarray] = self.index.search(x, k)
            return searched
        self.prepare_search()
        assert self._scan is not None
        approx, found, bounds = self._scan.candidates(x, candidates)
        distances = np.empty((len(x), k), dtype=np.float32)
        ids = np.empty((len(x), k), dtype=np.int64)
        for row, query in enumerate(x):
            result = self._reranked(query, approx[row], found[row], bounds[row], k)
            if result is None and candidates * WIDEN * 4 <= self.ntotal:
                # Many faces tied near the k-th distance (large collections):
                # a wider candidate set usually still proves the result.
                wide_approx, wide_found, wide_bound = self._scan.candidates(query[None, :], candidates * WIDEN)
                result = self._reranked(query, wide_approx[0], wide_found[0], wide_bound[0], k)
            if result is None:
                self.fallbacks += 1
                result = self.index.search(query[None, :], k)
                result = (result[0][0], result[1][0])
            distances[row], ids[row] = result
        return distances, ids

    def use_ann(self, ann: AnnIndex | None, candidates: int) -> None:
        """Answer top-k searches from ``ann`` (it must hold exactly this
        index's faces): its ``max(candidates, 2k)`` candidates re-ranked by
        exact float32 distances. Approximate: a face the approximate index
        does not offer is missed. None goes back to exact search."""
        if ann is not None:
            own = np.sort(faiss.vector_to_array(self.index.id_map).astype(np.int64))
            if not np.array_equal(ann.ids(), own):
                raise ValueError(f"the approximate index holds other faces ({ann.ntotal}) than the index ({len(own)})")
        self.ann = ann
        self.ann_candidates = int(candidates)

    @property
    def search_description(self) -> str:
        """How top-k searches are answered, in words."""
        if self.ann is None:
            return "exact"
        return f"approximate: {self.ann.description}, {self.ann_candidates} candidates re-ranked exactly"

    def _approximate_search(self, x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        assert self.ann is not None
        found = self.ann.candidates(x, min(max(self.ann_candidates, 2 * k), self.ntotal))
        distances = np.full((len(x), k), np.finfo(np.float32).max, dtype=np.float32)  # FAISS's padding
        ids = np.full((len(x), k), -1, dtype=np.int64)
        for row, query in enumerate(x):
            cand = found[row][found[row] >= 0]
            if len(cand) < k and len(cand) < self.ntotal:
                # Too few faces in the lists read (a query far from every
                # list centre): the exact search answers instead.
                result = self.index.search(query[None, :], k)
                distances[row], ids[row] = result[0][0], result[1][0]
                continue
            exact = self._squared_distances(cand, query)
            order = np.argsort(exact, kind="stable")[:k]
            distances[row, : len(order)], ids[row, : len(order)] = exact[order], cand[order]
        return distances, ids

    def _squared_distances(self, ids: np.ndarray, query: np.ndarray) -> np.ndarray:
        """Exact float32 squared L2 distances from ``query`` to the stored vectors of ``ids``."""
        distances: np.ndarray = ((self.index.reconstruct_batch(ids) - query) ** 2).sum(axis=1, dtype=np.float32)
        return distances

    def _reranked(
        self, query: np.ndarray, approx: np.ndarray, found: np.ndarray, bound: float, k: int
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """The exact k nearest among the candidates ``found`` (approximate
        distances ``approx``, ascending), or None when the prescan's error
        ``bound`` for this query cannot prove that no face outside them is
        nearer."""
        cand = found[found >= 0]
        exact = self._squared_distances(cand, query)
        order = np.argsort(exact, kind="stable")[:k]
        # Any face left out is at least approx[-1] - bound away (less the
        # allowance for float32 rounding).
        kth = float(np.sqrt(exact[order[-1]]))
        left_out_from = (float(approx[-1]) - bound) * (1 - ROUNDING_SLACK)
        if len(order) == k and kth <= left_out_from:
            return exact[order], cand[order]
        return None

    def reconstruct(self, ids: np.ndarray) -> np.ndarray:
        """The stored vectors of ``ids`` (all must be present), float32 (n, d)."""
        ids = np.ascontiguousarray(np.asarray(ids, dtype=np.int64).reshape(-1))
        if not len(ids):
            return np.zeros((0, self.dim), np.float32)
        vectors: np.ndarray = self.index.reconstruct_batch(ids)
        return vectors

    def range_search(self, x: np.ndarray, radius_sq: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """FAISS's range search: every vector within **squared** L2 distance
        ``radius_sq`` of each query. Returns ``(lims, D, I)``: the hits of
        query ``i`` are ``D[lims[i]:lims[i+1]]`` (squared distances, in no
        particular order) and ``I[lims[i]:lims[i+1]]`` (ids). Exact.

        Past ``RANGE_SCAN_MIN_FACES`` faces the 8-bit copy finds the candidates:
        every face whose approximate distance is within the radius plus the
        prescan's error bound (no face within the radius can be further), then
        each candidate's exact float32 distance decides (4x less memory read
        than the float32 scan; ``benchmarks/ann.py``). A query with more than
        ``RANGE_CANDIDATES`` faces within reach goes to the float32 scan."""
        x = as_float32_matrix(x, self.dim)
        if radius_sq < 0:
            raise ValueError("radius_sq must not be negative")
        if self.ntotal == 0:
            return np.zeros(len(x) + 1, np.int64), np.zeros(0, np.float32), np.zeros(0, np.int64)
        if self.ntotal < self.range_scan_min_faces:
            lims, distances, ids = self.index.range_search(x, float(radius_sq))
            return lims.astype(np.int64), distances, ids.astype(np.int64)
        self.prepare_search()
        assert self._scan is not None
        lims = np.zeros(len(x) + 1, np.int64)
        kept_d, kept_i = [], []
        candidates = self._scan.within(x, float(np.sqrt(radius_sq)), RANGE_CANDIDATES)
        for row, (query, cand) in enumerate(zip(x, candidates)):
            if cand is None:  # more faces within reach than candidates: the float32 scan
                _, found_d, found_i = self.index.range_search(query[None, :], float(radius_sq))
                found_i = found_i.astype(np.int64)
            else:
                exact = self._squared_distances(cand, query)
                keep = exact <= radius_sq
                found_d, found_i = exact[keep], cand[keep]
            kept_d.append(found_d)
            kept_i.append(found_i)
            lims[row + 1] = lims[row] + len(found_i)
        return lims, np.concatenate(kept_d), np.concatenate(kept_i)

    def ids_and_vectors(self) -> tuple[np.ndarray, np.ndarray]:
        """Every stored id (int64, in insertion order) and its vector (float32 (n, d))."""
        ids = faiss.vector_to_array(self.index.id_map).astype(np.int64)
        return ids, (self.index.reconstruct_batch(ids) if len(ids) else np.zeros((0, self.dim), np.float32))

    def prepare_search(self) -> None:
        """Build the 8-bit prescan copy now (once), if the index is large
        enough to use it; the service calls this at start-up."""
        if self._scan is None and self.ntotal >= self.scan_min_faces:
            ids, x = self.ids_and_vectors()
            scan = BytePrescan(self.dim, x)
            scan.add(ids, x)
            self._scan = scan

    def save(self, path: Path) -> None:
        """Write atomically (temporary file, fsync, rename)."""
        atomic_write_bytes(Path(path), faiss.serialize_index(self.index).tobytes())

    @classmethod
    def load(cls, path: Path) -> FlatL2Index:
        data = np.fromfile(path, dtype=np.uint8)
        index = faiss.deserialize_index(data)
        return cls(dim=index.d, index=index)
