"""Opening a store by ``store.backend``: "faiss" (``EmbeddedStore``, the
default) or "milvus" (``MilvusStore``), and what a backend does after a
generation is published. Everything outside ``indexer.store`` opens stores
through here, so that every command and endpoint works the same on both."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from config.settings import Settings
from indexer.store.base import FaceStore, StoreError
from indexer.store.checksums import require_intact
from indexer.store.embedded import EmbeddedStore
from indexer.store.generations import current_dir

log = logging.getLogger(__name__)


def open_store(path: Path | str, settings: Settings | None = None, *, readonly: bool = False,
               repair: bool = False) -> FaceStore:
    """Open (or, when writable, create) the store of one generation
    directory with ``settings``' backend (FAISS without settings)."""
    if settings is None or settings.store.backend == "faiss":
        return EmbeddedStore.open(path, readonly=readonly, repair=repair)
    from indexer.store.milvus import MilvusStore

    return MilvusStore.open(path, settings.milvus, readonly=readonly, repair=repair)


def open_published(data_dir: Path | str, settings: Settings | None = None) -> FaceStore:
    """The published generation of ``data_dir``, read-only, once verified
    against the checksums in its manifest (``checksums.require_intact``: a
    few ``stat`` calls when its files are unchanged since they were last
    hashed; ``DamagedIndexError`` naming the damaged files and the fix)."""
    data_dir = Path(data_dir).expanduser().resolve()
    path = current_dir(data_dir)
    if path is None:
        raise StoreError(f"no index in {data_dir}: run `facesearch index --data-dir {data_dir} PATH...` first")
    require_intact(path, data_dir)
    return open_store(path, settings, readonly=True)


def after_publish(data_dir: Path | str, settings: Settings | None, *, erasure: bool = False) -> None:
    """Once a generation is published (and old ones deleted): Milvus deletes
    the rows no generation left on disk can see, and after an ``erasure``
    has their bytes rewritten away. A failure only leaves rows no search
    sees, which a later publish deletes: logged, or raised after an erasure
    (whose faces' rows must go now)."""
    if settings is None or settings.store.backend != "milvus":
        return
    from indexer.store.milvus import collect_garbage

    try:
        collect_garbage(settings.milvus, Path(data_dir).expanduser().resolve(), purge=erasure)
    except StoreError as exc:
        if erasure:
            raise
        log.warning("old Milvus rows are left for the next publish: %s", exc)


@contextmanager
def connection_held(data_dir: Path | str, settings: Settings | None) -> Iterator[None]:
    """Keep the backend's connection open across the stores a command opens
    one after another (an index run opens three): with Milvus Lite each
    connection otherwise starts and stops its server (~0.5 s)."""
    if settings is None or settings.store.backend != "milvus":
        yield
        return
    from indexer.store.milvus_lite import hold

    with hold(settings.milvus, Path(data_dir).expanduser().resolve()):
        yield
