"""The index a server worker serves, switched to each newly published
generation without a restart (``indexer/store/generations.py``)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from config.settings import DetectionSettings, IndexSettings, Settings
from indexer.indexing import detection_from_signature
from indexer.store import FaceStore, StoreError, open_published
from indexer.store.generations import current_name

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServedIndex:
    """One opened generation: its read-only store, its name (None for a data
    directory of the first layout) and the detection settings its photos were
    indexed with (query photos are searched for faces the same way)."""

    store: FaceStore
    generation: str | None
    detection: DetectionSettings


class IndexHandle:
    """Holds the served generation and swaps in a newly published one.

    ``current()`` reads ``DATA_DIR/CURRENT`` (a few bytes) at most every
    ``check_every_s`` seconds; when it names another generation, that one is
    opened read-only, its search structures prepared, and it replaces the
    served one in a single reference assignment. A request takes
    ``current()`` once and uses that ``ServedIndex`` to its end, so a swap
    during the request changes nothing for it.

    The replaced store is never closed here: a request on another thread
    (threaded servers, the Flask test client) may still be using it. CPython
    frees it, closing its SQLite connection and releasing the FAISS memory,
    as soon as the last request holding it returns; a worker holds two
    generations in memory only for that long. (Under gunicorn's sync workers
    nothing else is ever in flight, so the old store goes at the swap.)

    A generation that cannot be opened (damaged, or ``CURRENT`` unreadable)
    is logged, the served one is kept, ``warning`` says so, and the next
    check tries again.
    """

    def __init__(
        self,
        data_dir: Path,
        served: ServedIndex,
        *,
        check_every_s: float,
        default_detection: DetectionSettings,
        settings: Settings | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.data_dir = data_dir
        self.check_every_s = check_every_s
        self.default_detection = default_detection
        self.settings = settings
        self._clock = clock
        self._served = served
        self._next_check = clock() + check_every_s
        self._lock = threading.Lock()
        self._warning: str | None = None
        self._logged_warning: str | None = None  # the last failure logged (each is logged once)

    @classmethod
    def open(
        cls,
        data_dir: Path | str,
        *,
        check_every_s: float,
        default_detection: DetectionSettings,
        settings: Settings | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> IndexHandle:
        """Open the published index of ``data_dir``; ``StoreError`` (with
        what to do) when there is none or it cannot be read.
        ``default_detection``: for an index whose manifest does not record
        its detection settings. ``settings``: the store backend, and whether
        and how top-k searches use a FAISS generation's approximate index
        (``index``); the defaults without."""
        data_dir = Path(data_dir).expanduser().resolve()
        served = _load(data_dir, default_detection, settings)
        return cls(data_dir, served, check_every_s=check_every_s, default_detection=default_detection,
                   settings=settings, clock=clock)

    @property
    def warning(self) -> str | None:
        """Why a newer generation is not served, or None."""
        return self._warning

    def current(self) -> ServedIndex:
        """The generation to serve, switched first when a check is due and
        another generation was published. Never raises: while another thread
        checks, or when the new generation fails to open, the served one is
        returned."""
        if self._clock() >= self._next_check and self._lock.acquire(blocking=False):
            try:
                if self._clock() >= self._next_check:
                    self._next_check = self._clock() + self.check_every_s
                    self._check()
            finally:
                self._lock.release()
        return self._served

    def check_now(self) -> None:
        """Switch to the published generation now if it changed (after this
        process published one itself), waiting for a check in progress."""
        with self._lock:
            self._next_check = self._clock() + self.check_every_s
            self._check()

    def _check(self) -> None:
        try:
            name = current_name(self.data_dir)
        except (StoreError, OSError, ValueError) as exc:  # CURRENT unreadable
            self._failed_to_switch("the published generation", exc)
            return
        if name == self._served.generation:
            return
        try:
            served = _load(self.data_dir, self.default_detection, self.settings)
        except Exception as exc:  # whatever is wrong with the new generation must not stop the service
            self._failed_to_switch(f"generation {name}", exc)
            return
        old = self._served.generation
        self._served = served
        self._warning = self._logged_warning = None
        log.info("now serving generation %s (%d faces; was %s)", served.generation, served.store.count(), old)

    def _failed_to_switch(self, what: str, exc: Exception) -> None:
        """Keep the served generation and say why; logged once per cause,
        retried at every check."""
        served = self._served.generation
        self._warning = (
            f"still serving {f'generation {served}' if served else 'the index of the first layout'}: "
            f"{what} cannot be opened ({exc})"
        )
        if self._warning != self._logged_warning:
            log.error("%s; retrying every %g s", self._warning, self.check_every_s)
            self._logged_warning = self._warning


def _load(data_dir: Path, default_detection: DetectionSettings, settings: Settings | None) -> ServedIndex:
    """Open the published generation of ``data_dir`` read-only, ready to
    search (``FaceStore.prepare_search``)."""
    store = open_published(data_dir, settings)
    try:
        store.prepare_search(settings.index if settings is not None else IndexSettings())
    except BaseException:
        store.close()
        raise
    detection = detection_from_signature(store.manifest.get("detection")) or default_detection
    generation = None if store.data_dir == data_dir else store.data_dir.name
    return ServedIndex(store=store, generation=generation, detection=detection)
