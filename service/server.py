"""``facesearch serve``: the app under gunicorn, one index copy per worker.

Workers are processes (``sync`` worker class): a query photo's detection
holds the GIL (HOG: ~170 ms at 640x480), so threads would serialise. Each worker opens the
published index read-only in its own ``create_app`` call (no ``preload_app``:
FAISS and OpenMP state are not shared across a fork), switches to each newly
published generation by itself (``application.index_handle``) and runs FAISS with
``service.threads_per_worker`` OpenMP threads.
"""

from __future__ import annotations

import os
import shlex
import sys
import time
from pathlib import Path

from gunicorn.app.base import BaseApplication

from application.access_store import AccessStore
from config.settings import Settings
from indexer.people.annotations import AnnotationsDB
from indexer.store import open_published
from indexer.store.file_modes import tighten
from service.ui.security import session_secret


class FaceSearchServer(BaseApplication):
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        super().__init__()

    def load_config(self) -> None:
        service = self.settings.service
        self.cfg.set("bind", f"{_bind_host(service.host)}:{service.port}")
        self.cfg.set("workers", worker_count(self.settings))
        self.cfg.set("worker_class", "sync")
        self.cfg.set("timeout", service.timeout_s)
        self.cfg.set("accesslog", None)
        self.cfg.set("errorlog", "-")
        self.cfg.set("loglevel", "warning")
        self.cfg.set("proc_name", "facesearch")

    def load(self):
        """Each worker opens the index itself (seconds at a million faces)
        and says so when it can answer."""
        from service import create_app

        started = time.monotonic()
        app = create_app(self.settings)
        served = app.extensions["facesearch"].index.current()
        print(f"facesearch: worker {os.getpid()} ready in {time.monotonic() - started:.1f} s "
              f"({served.store.count()} faces, search {served.store.search_description})", flush=True)
        return app


def lite_file(settings: Settings) -> str | None:
    """The Milvus Lite file the store uses, or None (FAISS, or a Milvus
    server)."""
    from indexer.store.milvus_lite import is_lite, resolved_uri

    if settings.store.backend != "milvus" or not is_lite(settings.milvus.uri):
        return None
    return resolved_uri(settings.milvus.uri, Path(settings.data_dir).expanduser().resolve())


def worker_count(settings: Settings) -> int:
    """``service.workers`` (0: one per core), but one on Milvus Lite, which
    serves a single process."""
    if lite_file(settings) is not None:
        return 1
    return settings.service.workers or os.cpu_count() or 1


def _bind_host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def run_server(settings: Settings) -> None:
    """Make the data directory private (``file_modes.tighten``), check the
    index opens intact (``open_published`` verifies its checksums: a damaged
    one is refused with its fix) and the annotations can be written (fail
    before forking with a clear message), print where to reach the service,
    then serve until stopped."""
    threads = str(settings.service.threads_per_worker)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = threads
    tighten(Path(settings.data_dir).expanduser().resolve())
    store = open_published(settings.data_dir, settings)
    faces, photos, example = store.count(), store.photo_count(), store.example_path()
    store.close()
    AnnotationsDB.open(settings.data_dir).close()  # writable? (and its tables made once, before the workers)
    AccessStore.in_data_dir(Path(settings.data_dir).expanduser().resolve()).prepare()
    service = settings.service
    url = f"http://{_bind_host(service.host)}:{service.port}"
    where = Path(settings.data_dir).expanduser().resolve()
    generation = "" if store.data_dir == where else f" (generation {store.data_dir.name}; newer ones are picked up)"
    session_secret(where)  # made once before the workers fork (they must sign cookies alike)
    print(f"facesearch: open {url}/ in a browser (search, people, photos, the index), or use the API at {url}/api/v1/",
          flush=True)
    print(f"facesearch: serving {faces} faces from {photos} photos in {where}{generation}", flush=True)
    lite = lite_file(settings)
    if lite is not None:
        print(f"facesearch: one worker: the vectors are in Milvus Lite ({lite}), which one process may open at a "
              "time, so `facesearch index` cannot run while this serves; for both at once and more workers, run a "
              "Milvus server and set milvus.uri = \"http://host:19530\" (docs/scale-out.md)", flush=True)
    print(f"facesearch: listening on {url}  (Ctrl-C stops)", flush=True)
    key = ' -H "X-API-Key: $FACESEARCH_KEY"' if settings.api_keys or settings.read_keys else ""
    print(f"  try: curl{key} -F image=@{shlex.quote(example or 'photo.jpg')} -F k=5 {url}/api/v1/search", flush=True)
    if key:
        print("  (with FACESEARCH_KEY set to one of the configured keys; the pages ask for one at /login)", flush=True)
    sys.argv = sys.argv[:1]  # gunicorn parses sys.argv; our flags are already applied
    FaceSearchServer(settings).run()
