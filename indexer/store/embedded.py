"""The embedded store: a FAISS index file, a SQLite metadata database and a
JSON manifest in one data directory.

Layout of ``DATA_DIR``::

    manifest.json      format version, model, dimension, index type, counts
    faces.faiss        FAISS IndexIDMap2(IndexFlatL2), ids = faces.id
    metadata.sqlite3   photos, faces (with embeddings), thumbnails, runs
    faces.ann.faiss    optional approximate index for top-k searches, built
                       when the generation is sealed (``indexer.store.ann``)

SQLite is the source of truth. A checkpoint commits SQLite, then writes the
FAISS file and the manifest atomically. If a crash falls between the two, the
counts disagree on the next open: readers refuse to start and say to run
``facesearch repair``, which rebuilds the FAISS file from the stored
embeddings (no photo is re-encoded); the indexer repairs by itself.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np

from config.settings import IndexSettings
from indexer.model import EMBEDDING_DIM, MODEL_NAME
from indexer.store.ann import ANN_FILE, AnnIndex, AnnPlan
from indexer.store.ann import refresh as refresh_ann
from indexer.store.base import FaceFilter, FaceStore, StoreError, StoreMismatchError
from indexer.store.generations import current_dir
from indexer.store.metadata import FileRecord, MetadataDB, NewFace, utc_now
from indexer.store.metadata_store import DB_FILE, MANIFEST_FILE, MetadataStore, read_manifest
from indexer.store.vectors import FlatL2Index

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
INDEX_FILE = "faces.faiss"


class EmbeddedStore(MetadataStore, FaceStore):
    """FAISS + SQLite store in ``data_dir``. Open with ``EmbeddedStore.open``."""

    backend = "faiss"

    def __init__(self, data_dir: Path, vectors: FlatL2Index, db: MetadataDB, manifest: dict[str, Any]) -> None:
        super().__init__(data_dir, db, manifest)
        self.vectors = vectors
        # Face ids removed but not yet out of FAISS: ``remove_ids`` scans the
        # whole index (1M faces: 48 ms a call, 48 s for 1% of the photos
        # removed one by one), so removals are applied together (``_settle``).
        self._removed: list[int] = []
        # What ``seal`` builds (``plan_search``); None there: no approximate
        # index. Unplanned, the generation keeps the kind it had.
        self._ann_plan: AnnPlan | None = None
        self._ann_planned = False

    # -- opening -----------------------------------------------------------

    @classmethod
    def open(cls, data_dir: Path | str, *, readonly: bool = False, repair: bool = False) -> EmbeddedStore:
        """Open (or, when writable, create) the store in ``data_dir``; see
        ``_open``. A damaged metadata database is a ``StoreError`` that says
        how to rebuild."""
        try:
            return cls._open(data_dir, readonly=readonly, repair=repair)
        except sqlite3.DatabaseError as exc:
            raise StoreError(
                f"the metadata database in {data_dir} is damaged ({exc}); it cannot be repaired from the FAISS "
                f"file: rebuild the index with `facesearch index --full --data-dir DATA_DIR PATH...`"
            ) from None

    @classmethod
    def _open(cls, data_dir: Path | str, *, readonly: bool = False, repair: bool = False) -> EmbeddedStore:
        """Open (or, when writable, create) the store in ``data_dir``.

        Read-only opens need an existing, consistent store and raise
        ``StoreError`` otherwise. Writable opens with ``repair=True`` rebuild
        the FAISS file from the metadata when the two disagree.
        """
        data_dir = Path(data_dir).expanduser().resolve()
        manifest_path = data_dir / MANIFEST_FILE
        index_path = data_dir / INDEX_FILE
        db_path = data_dir / DB_FILE
        if readonly and not db_path.exists():
            raise StoreError(
                f"no index in {data_dir}: run `facesearch index --data-dir {data_dir} PATH...` first"
            )
        try:
            manifest = read_manifest(manifest_path)
        except StoreError:
            if not repair:
                raise
            manifest = None
        if manifest is not None and manifest.get("backend", "faiss") != "faiss" and not repair:
            raise StoreError(
                f"the index in {data_dir} keeps its vectors in {manifest.get('backend')}, not in FAISS: set "
                f"store.backend = \"{manifest.get('backend')}\" (FACESEARCH_STORE__BACKEND), or run "
                "`facesearch index` with store.backend = \"faiss\" to move the vectors back"
            )
        if manifest is not None and manifest.get("format_version") != FORMAT_VERSION:
            raise StoreError(
                f"{manifest_path} has format version {manifest.get('format_version')}, this facesearch "
                f"reads version {FORMAT_VERSION}: rebuild with `facesearch index --full --data-dir {data_dir} PATH...`"
            )
        db = MetadataDB(db_path, readonly=readonly)
        try:
            if index_path.exists():
                try:
                    vectors = FlatL2Index.load(index_path)
                except Exception as exc:  # FAISS raises RuntimeError on a damaged file
                    if not repair:
                        raise StoreMismatchError(
                            f"cannot read the FAISS index {index_path} ({exc}); rebuild it from the metadata "
                            f"with `facesearch repair --data-dir {data_dir}`"
                        ) from exc
                    vectors = FlatL2Index(EMBEDDING_DIM)
            else:
                vectors = FlatL2Index(EMBEDDING_DIM)
            store = cls(data_dir, vectors, db, manifest or {})
            problem = store.consistency_problem()
            if problem:
                if not repair:
                    raise StoreMismatchError(
                        f"the index in {data_dir} is inconsistent: {problem}. Rebuild the FAISS index from the "
                        f"metadata (no photo is re-encoded) with `facesearch repair --data-dir {data_dir}`"
                    )
                log.warning("repairing %s: %s", data_dir, problem)
                store.rebuild_index()
                store.repaired = problem
            return store
        except BaseException:
            db.close()
            raise

    @classmethod
    def open_published(cls, data_dir: Path | str) -> EmbeddedStore:
        """Open the published generation of ``data_dir`` read-only
        (``generations.current_dir``)."""
        data_dir = Path(data_dir).expanduser().resolve()
        path = current_dir(data_dir)
        if path is None:
            raise StoreError(f"no index in {data_dir}: run `facesearch index --data-dir {data_dir} PATH...` first")
        return cls.open(path, readonly=True)

    def consistency_problem(self) -> str | None:
        """A sentence describing how FAISS, SQLite and the manifest disagree, or None."""
        faiss_count = self.vectors.ntotal
        db_count = self.db.face_count()
        if faiss_count != db_count:
            return f"the FAISS index holds {faiss_count} faces but the metadata holds {db_count}"
        if self.manifest and self.manifest.get("faces") != db_count:
            return f"the manifest says {self.manifest.get('faces')} faces but the metadata holds {db_count}"
        if not self.manifest and db_count:
            return "the manifest is missing"
        if self.manifest.get("backend", "faiss") != "faiss":
            return f"the vectors were kept in {self.manifest.get('backend')}"
        return None

    def rebuild_index(self) -> int:
        """Rebuild the FAISS index from the embeddings in SQLite and save it."""
        vectors = FlatL2Index(EMBEDDING_DIM)
        for ids, x in self.db.iter_embeddings():
            vectors.add(ids, x)
        self.vectors = vectors
        self._removed = []  # the metadata no longer holds them
        self._save()
        return vectors.ntotal

    # -- reading -----------------------------------------------------------

    def count(self) -> int:
        self._settle()
        return self.vectors.ntotal

    def search(self, x: np.ndarray, k: int, exact: bool = False) -> tuple[np.ndarray, np.ndarray]:
        self._settle()
        return self.vectors.search(x, k, exact=exact)

    def range_search(
        self, x: np.ndarray, radius_sq: float, where: FaceFilter | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """FAISS's range search; ``where`` is checked against the metadata
        of the hits."""
        self._settle()
        lims, d, ids = self.vectors.range_search(x, radius_sq)
        if not where or not len(ids):
            return lims, d, ids
        keep = self.matching(ids, where)
        kept_before = np.concatenate([[0], np.cumsum(keep)])  # hits kept before each position
        return kept_before[lims].astype(lims.dtype), d[keep], ids[keep]

    def vectors_of(self, face_ids: np.ndarray) -> np.ndarray:
        self._settle()
        return self.vectors.reconstruct(face_ids)

    @property
    def index_type(self) -> str:
        return self.vectors.index_type

    @property
    def search_description(self) -> str:
        """How top-k searches are answered, in words."""
        return self.vectors.search_description

    def prepare_search(self, index_settings: IndexSettings) -> None:
        """Before serving: build the 8-bit copy, and use the generation's
        approximate index where it has one and ``index_settings.search`` is
        not "exact". One that cannot be used is logged and left out: search
        stays exact."""
        self.vectors.prepare_search()
        if index_settings.search != "exact":
            try:
                ann = AnnIndex.load(self.data_dir, index_settings.nprobe)
                self.vectors.use_ann(ann, index_settings.candidates)
            except Exception as exc:  # a damaged or stale file only costs speed
                log.warning("searching %s exactly: its approximate index cannot be used (%s)", self.data_dir, exc)

    # -- writing -----------------------------------------------------------

    def put_file(self, record: FileRecord, faces: list[NewFace]) -> tuple[int, int]:
        """Write a photo and its faces, leaving out faces erased before from
        a file of the same content (``erase_faces``)."""
        faces = self._not_erased(record.content_hash, faces)
        new_ids, removed = self.db.put_file(record, faces)
        self._removed += removed
        if faces:
            self.vectors.add(np.asarray(new_ids, dtype=np.int64), np.stack([f[1] for f in faces]))
        return len(new_ids), len(removed)

    def add_faces(self, path: str, content_hash: str, faces: list[NewFace]) -> list[int]:
        faces = self._not_erased(content_hash, faces)
        new_ids = self.db.add_faces(path, content_hash, faces)
        if new_ids:
            self.vectors.add(np.asarray(new_ids, dtype=np.int64), np.stack([f[1] for f in faces]))
        return new_ids

    def move_file(self, old_path: str, new_path: str, size: int, mtime_ns: int) -> int:
        return self.db.move_file(old_path, new_path, size, mtime_ns)

    def remove_file(self, path: str) -> int:
        removed = self.db.remove_file(path)
        self._removed += removed
        return len(removed)

    def erase_faces(self, face_ids: list[int], *, remember: bool = True) -> list[tuple[int, str]]:
        erased = self.db.erase_faces(face_ids, remember=remember)
        self._removed += [face_id for face_id, _ in erased]
        return erased

    def checkpoint(self, **manifest_extra: object) -> None:
        self.db.commit()
        self.manifest.update(manifest_extra)
        self._save()

    def plan_search(self, index_settings: IndexSettings) -> None:
        """Have ``seal`` build the approximate index ``index_settings``
        ask for (``AnnPlan.from_settings``), or remove it."""
        self._ann_plan, self._ann_planned = AnnPlan.from_settings(index_settings), True

    def seal(self, **manifest_extra: object) -> None:
        """The last checkpoint of a generation before it is published: its
        database becomes one self-contained file, and its approximate index
        (``indexer.store.ann``) is built for exactly its faces, or removed:
        as ``plan_search`` said, else of the kind the generation had (an
        erasure, a repair)."""
        self.db.commit()
        self._settle()
        previous = self.manifest.get("ann")
        plan = self._ann_plan if self._ann_planned else AnnPlan.same_as(previous)
        entry = None
        if plan is not None or previous is not None or (self.data_dir / ANN_FILE).exists():
            ids, x = self.vectors.ids_and_vectors()
            entry = refresh_ann(self.data_dir, ids, x, plan, previous)
        self.manifest["ann"] = entry
        self.checkpoint(**manifest_extra)
        self.db.seal()

    def _settle(self) -> None:
        """Apply the buffered removals (face ids are never given again, so
        adds in between cannot clash)."""
        if self._removed:
            self.vectors.remove(np.asarray(self._removed, dtype=np.int64))
            self._removed = []

    def _save(self) -> None:
        self._settle()
        self.vectors.save(self.data_dir / INDEX_FILE)
        self.manifest.update(
            format_version=FORMAT_VERSION,
            model=MODEL_NAME,
            dimension=EMBEDDING_DIM,
            index_type=self.vectors.index_type,
            metric="L2",
            faces=self.vectors.ntotal,
            photos=self.db.file_count(),
            updated_at=utc_now(),
            backend="faiss",
        )
        self.manifest.pop("milvus", None)
        self._write_manifest()
