"""Reindexing from the index page: the folders of the last run indexed
again in the server's own process (a thread; the worker pool is the
indexer's), the run's progress read from the reindex lock by any server
worker (``indexer.store.generations.running_index``). The new generation is
served once published, as any reindex's."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from application.errors import InvalidRequest
from config.settings import Settings
from indexer.indexing import index_paths
from indexer.model import FaceModel
from indexer.store import runs
from indexer.store.generations import IndexBusyError, running_index

log = logging.getLogger(__name__)


def progress(data_dir: Path) -> dict[str, Any] | None:
    """The reindex running on ``data_dir`` (started_at, command, done and
    total files once known), or None."""
    return running_index(data_dir)


def last_roots(data_dir: Path) -> list[str]:
    """The folders the last run that recorded them indexed."""
    for record in runs.recent_runs(data_dir, 50):  # newest first
        if record.get("roots"):
            return [str(r) for r in record["roots"]]
    return []


def start(data_dir: Path, settings: Settings, model: FaceModel) -> list[str]:
    """Reindex the folders of the last run, in a thread of this process;
    returns them. ``IndexBusyError`` when a reindex runs; ``InvalidRequest``
    when no run recorded its folders (an index made before they were)."""
    if running_index(data_dir) is not None:
        raise IndexBusyError("a reindex is running already: its progress is on this page")
    roots = last_roots(data_dir)
    missing = [r for r in roots if not Path(r).is_dir()]
    if not roots:
        raise InvalidRequest("no run recorded its folders yet: index them once with `facesearch index FOLDER...`")
    if missing:
        raise InvalidRequest(f"{', '.join(missing)} no longer exists (unmounted?): nothing was started")

    def run() -> None:
        try:
            report = index_paths([Path(r) for r in roots], settings, model=model, progress=False)
            log.info("reindex from the index page: %d indexed, %d removed", report.images_indexed,
                     report.images_removed)
        except IndexBusyError as exc:
            log.warning("reindex from the index page not run: %s", exc)
        except Exception:  # a bug: logged, the server goes on
            log.exception("reindex from the index page failed")

    threading.Thread(target=run, name="facesearch-reindex", daemon=True).start()
    return roots
