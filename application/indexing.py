"""The index's own use cases, run by the command line: bring the index up
to date with folders (once, or on an interval), repair it, verify it, and
open it for reading. They live in the indexer's pipeline
(``indexer.indexing``, ``indexer.watch``, ``indexer.store``); the adapters
reach them, and the store they open, through here."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from application.integrity import IntegrityReport, check_data_dir
from config.settings import DetectionSettings, Settings
from indexer.distributed import DistributedError
from indexer.indexing import IndexReport, detection_from_signature, index_paths, repair_index
from indexer.people.annotations import AnnotationsDB
from indexer.store import FaceStore, StoreError, open_published
from indexer.store.generations import current_name
from indexer.store.metadata import utc_now
from indexer.watch import parse_interval, stop_on_signals, watch

__all__ = [
    "AnnotationsDB", "DistributedError", "FaceStore", "IndexReport", "IntegrityReport", "OpenIndex", "StoreError",
    "check_data_dir", "index_paths", "opened_index", "parse_interval", "repair_index", "stop_on_signals", "utc_now",
    "watch",
]


@dataclass
class OpenIndex:
    """The published generation of a data directory, read-only, with its
    annotations (people, clusterings)."""

    root: Path
    store: FaceStore
    annotations: AnnotationsDB
    generation: str | None

    @property
    def detection(self) -> DetectionSettings | None:
        """The detection settings the index was built with (None: unknown)."""
        return detection_from_signature(self.store.manifest.get("detection"))


@contextmanager
def opened_index(settings: Settings) -> Iterator[OpenIndex]:
    """The data directory's published index and annotations, closed at the
    end; ``StoreError`` (with the fix) when there is none or it is damaged."""
    root = Path(settings.data_dir).expanduser().resolve()
    store = open_published(root, settings)
    try:
        annotations = AnnotationsDB.open(root)
    except BaseException:
        store.close()
        raise
    try:
        yield OpenIndex(root, store, annotations, current_name(root))
    finally:
        annotations.close()
        store.close()
