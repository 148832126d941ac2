"""The erasure use case: which faces a request names (by id, every face of
a person or of a cluster of the last clustering, every face near probe
faces) and erasing them for good, or, with ``dry_run``, saying what would
be erased (``indexer.erasure``). The API, the pages and ``facesearch erase``
all go through here."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from application.recall import faces_within
from config.settings import Settings
from indexer.erasure import ErasureReport, erase_faces, preview_erasure
from indexer.model import EMBEDDING_DIM
from indexer.people.annotations import AnnotationsDB
from indexer.store import FaceStore


@dataclass
class ErasureTarget:
    """What to erase: any of these, together. ``probes`` (p, 128): every
    face within ``max_distance`` (Euclidean; default
    ``erasure.max_distance``) of one."""

    face_ids: list[int] = field(default_factory=list)
    person_id: int | None = None
    cluster_id: int | None = None
    probes: np.ndarray = field(default_factory=lambda: np.zeros((0, EMBEDDING_DIM), np.float32))
    max_distance: float | None = None

    def radius(self, settings: Settings) -> float:
        return self.max_distance or settings.erasure.max_distance

    def described(self, settings: Settings) -> dict[str, int | float]:
        """The target in a few numbers, for the audit log."""
        described = {"face_ids": len(self.face_ids), "person_id": self.person_id, "cluster_id": self.cluster_id,
                     "probes": len(self.probes), "max_distance": self.radius(settings) if len(self.probes) else None}
        return {k: v for k, v in described.items() if v is not None}


def faces_named(store: FaceStore, annotations: AnnotationsDB, target: ErasureTarget, settings: Settings) -> list[int]:
    """Every face id ``target`` names, sorted. ``PersonNotFoundError``,
    ``NoClusteringError``, ``ClusterNotFoundError``, ``TooManyHits``."""
    ids = set(target.face_ids)
    if target.person_id is not None:
        ids.update(annotations.faces_of_person(target.person_id))
    if target.cluster_id is not None:
        ids.update(annotations.faces_of_cluster(target.cluster_id))
    if len(target.probes):
        ids.update(faces_within(store, target.probes, target.radius(settings), settings.recall.max_hits))
    return sorted(ids)


def erase(data_dir: Path, store: FaceStore, annotations: AnnotationsDB, target: ErasureTarget, settings: Settings,
          *, dry_run: bool, generation: str | None) -> ErasureReport:
    """Erase what ``target`` names from the index of ``data_dir`` (``store``
    is its published generation ``generation``), and the person too when it
    names one; with ``dry_run``, only say what would go. ``IndexBusyError``
    while a reindex runs."""
    face_ids = faces_named(store, annotations, target, settings)
    if dry_run:
        return preview_erasure(store, face_ids, generation)
    return erase_faces(data_dir, face_ids, annotations, person_id=target.person_id, settings=settings)
