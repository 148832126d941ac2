"""Erasure: delete faces from the index for good.

A face is biometric data; erasing one (every face of a person, of a cluster,
or near a probe photo) must leave no copy the service or its files could
give back. ``erase_faces``:

1. takes the index lock (so no reindex runs meanwhile; ``IndexBusyError``
   otherwise) and starts a new generation as a copy of the published one,
   verified against its checksums first (``DamagedIndexError`` naming the
   fix: a damaged index is repaired or rebuilt before anything is erased
   from it); unfinished work left by a killed reindex is discarded, since
   it holds the faces too;
2. deletes the faces' rows, embeddings and thumbnails, with SQLite's
   ``secure_delete`` (deleted content is overwritten), removes their vectors
   from the FAISS index, and records where they were (content hash of the
   file, box, video timestamp: never the face itself), so that reindexing the
   unchanged file, even with ``--full``, does not bring them back;
3. seals the generation, rewrites its database (``VACUUM``), publishes it
   and deletes every other generation, including the previous one that is
   otherwise kept for server workers still reading it;
4. removes the faces from the stored clustering runs and labels (and, when
   erasing a named person, the person).

The photos themselves are the user's files and are not touched. Server
workers switch to the new generation within ``service.reload_check_s``; the
one that ran the erasure switches at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from config.settings import Settings
from indexer.amend import amend
from indexer.people.annotations import AnnotationsDB
from indexer.store import FaceStore, generations
from indexer.store.backends import connection_held
from indexer.store.file_modes import tighten
from indexer.store.generations import IndexLock


@dataclass
class ErasureReport:
    """What an erasure did (or, with ``dry_run``, would do)."""

    dry_run: bool
    faces_erased: int = 0
    face_ids: list[int] = field(default_factory=list)
    photos: list[str] = field(default_factory=list)  # files the faces were in, sorted
    labels_removed: int = 0
    clustering_rows_removed: int = 0
    person_forgotten: bool = False
    generation: str | None = None  # the published generation afterwards


def preview_erasure(store: FaceStore, face_ids: list[int], generation: str | None) -> ErasureReport:
    """What ``erase_faces`` would erase from ``store`` (the published
    generation ``generation``, already open): a dry run, nothing changed."""
    records = store.faces(sorted({int(i) for i in face_ids}))
    return ErasureReport(
        dry_run=True, faces_erased=len(records), face_ids=sorted(records),
        photos=sorted({r.path for r in records.values()}), generation=generation,
    )


def erase_faces(
    data_dir: Path | str,
    face_ids: list[int],
    annotations: AnnotationsDB,
    *,
    person_id: int | None = None,
    settings: Settings | None = None,
) -> ErasureReport:
    """Erase the given faces (ids not in the index are ignored, but still
    removed from the annotations); with ``person_id`` also forget that
    person. ``settings``: the store backend (FAISS without)."""
    data_dir = Path(data_dir).expanduser().resolve()
    ids = sorted({int(i) for i in face_ids})
    report = ErasureReport(dry_run=False)
    tighten(data_dir)
    with IndexLock(data_dir, command="facesearch erase"), connection_held(data_dir, settings):
        erased: list[tuple[int, str]] = []

        def change(store: FaceStore) -> bool:
            erased.extend(store.erase_faces(ids))
            return bool(erased)

        if ids:
            amend(data_dir, settings, change, erasure=True)
        report.labels_removed, report.clustering_rows_removed = annotations.forget_faces(ids, person_id=person_id)
    report.person_forgotten = person_id is not None
    report.face_ids = sorted(face_id for face_id, _ in erased)
    report.faces_erased = len(erased)
    report.photos = sorted({path for _, path in erased})
    report.generation = generations.current_name(data_dir)
    return report
