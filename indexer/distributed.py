"""Detection and encoding on a Dask cluster (``indexer.scheduler`` or
``facesearch index --scheduler tcp://host:8786``): this process scans and
plans as for a local run and stays the store's only writer; each file is a
Dask task that a worker runs with ``process_remote`` (the same
``indexer.worker`` code as a local worker process, its model loaded once per
worker process and kept), and the results come back here.

Faults: a worker that dies mid-task has its tasks run again elsewhere by the
scheduler; a file that has killed ``distributed.scheduler.allowed-failures``
workers (the scheduler's setting, 3 by default) comes back as
``KilledWorker`` and is reported as an unreadable file, not retried for
ever. A lost scheduler fails the run (``DistributedError``); the next run
resumes from the last checkpoint, as after ``kill -9``. At most
``indexer.in_flight`` files are out at a time (back-pressure: results are
written as they come, and the scheduler never holds a whole archive).
"""

from __future__ import annotations

import logging
import uuid
import warnings
from collections.abc import Iterator

from config.settings import Settings
from indexer.worker import PhotoResult, prepare, process_file

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 10
IN_FLIGHT_PER_THREAD = 4


class DistributedError(RuntimeError):
    """The Dask cluster cannot be used (unreachable, no workers, lost)."""


# -- on the workers ------------------------------------------------------------

_ready_for: str | None = None  # the settings this worker process was set up with


def process_remote(settings_json: str, job: tuple[str, int, int, str | None],
                   path_map: list[str]) -> tuple[str, PhotoResult]:
    """One file on a Dask worker: set the process up once (one BLAS thread,
    the model loaded), read the file where this machine sees it, and return
    (this worker's address, the result under the coordinator's path)."""
    global _ready_for
    if _ready_for != settings_json:
        prepare(settings_json)
        _ready_for = settings_json
    path = job[0]
    result = process_file((mapped(path, path_map), *job[1:]))
    result.path = path
    return _worker_address(), result


def mapped(path: str, path_map: list[str]) -> str:
    """``path`` under the first ``FROM=TO`` of ``path_map`` whose FROM it
    starts with (a whole path component), else as it is."""
    for entry in path_map:
        source, _, target = entry.partition("=")
        source = source.rstrip("/")
        if path == source or path.startswith(source + "/"):
            return target.rstrip("/") + path[len(source):]
    return path


def _worker_address() -> str:
    from distributed import get_worker

    try:
        return get_worker().address
    except ValueError:  # not on a worker (called directly)
        return "local"


# -- on the coordinator --------------------------------------------------------


def connect(address: str):
    """A ``distributed.Client`` of the scheduler at ``address`` with at
    least one worker; ``DistributedError`` naming what is wrong otherwise."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from distributed import Client
    except ImportError:
        raise DistributedError(
            "--scheduler needs Dask distributed: install it with `make install SCALE=1`"
        ) from None
    try:
        client = Client(address, timeout=CONNECT_TIMEOUT_S, set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise DistributedError(
            f"cannot reach the Dask scheduler at {address} ({exc}): start one with `dask scheduler` "
            "and workers with `dask worker ADDRESS` (docs/scale-out.md)"
        ) from None
    try:
        client.wait_for_workers(1, timeout=CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError):
        client.close()
        raise DistributedError(
            f"the Dask scheduler at {address} has no worker: start some with `dask worker {address}` "
            "on machines that have facesearch installed and can read the photos"
        ) from None
    return client


def dask_results(jobs: list[tuple[str, int, int, str | None]], settings: Settings,
                 workers_seen: set[str]) -> Iterator[PhotoResult]:
    """Process ``jobs`` on the cluster of ``settings.indexer.scheduler``,
    yielding results as they finish (any order), at most
    ``indexer.in_flight`` files out at a time. ``workers_seen`` collects
    the addresses of the workers that processed some."""
    from distributed import as_completed
    from distributed.client import FutureCancelledError
    from distributed.scheduler import KilledWorker

    address = settings.indexer.scheduler
    client = connect(address)
    try:
        threads = sum(client.nthreads().values())
        bound = settings.indexer.in_flight or IN_FLIGHT_PER_THREAD * max(1, threads)
        settings_json = settings.model_dump_json()
        run = uuid.uuid4().hex[:8]
        pending = iter(enumerate(jobs))
        futures = as_completed(loop=client.loop)
        by_future = {}

        def submit_next() -> None:
            for number, job in pending:
                future = client.submit(process_remote, settings_json, job, settings.indexer.path_map,
                                       key=f"facesearch-{run}-{number}", pure=False)
                by_future[future.key] = job
                futures.add(future)
                return

        for _ in range(bound):
            submit_next()
        for future in futures:
            job = by_future.pop(future.key)
            try:
                worker, result = future.result()
                workers_seen.add(worker)
            except KilledWorker:
                result = PhotoResult(path=job[0], size=job[1], mtime_ns=job[2],
                                     error="processing it stopped the Dask workers that tried (killed or crashed)")
            except (FutureCancelledError, OSError, TimeoutError) as exc:
                raise DistributedError(
                    f"lost the Dask scheduler at {address} ({type(exc).__name__}: {exc}); nothing is lost: "
                    "the next run resumes from the last checkpoint"
                ) from None
            except Exception as exc:  # the task itself failed on the worker (not a bad file: those are results)
                result = PhotoResult(path=job[0], size=job[1], mtime_ns=job[2],
                                     error=f"the Dask worker failed on it ({type(exc).__name__}: {exc})")
            future.release()
            submit_next()
            yield result
    finally:
        client.close()
