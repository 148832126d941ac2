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
ever: its batch is first sent again file by file, each file alone among
the suspects, so that a file that only ran beside the culprit is not
blamed. A lost scheduler fails
the run (``DistributedError``); the next run resumes from the last
checkpoint, as after ``kill -9``. At most ``indexer.in_flight`` files are
out at a time (back-pressure: results are written as they come, and the
scheduler never holds a whole archive).
"""

from __future__ import annotations

import logging
import uuid
import warnings
from collections.abc import Iterator

from config.settings import Settings
from indexer.model import FaceModel
from indexer.worker import PhotoResult, prepare, process_file

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 10
BATCH_FILES = 8  # files a task
IN_FLIGHT_PER_THREAD = 2  # batches out per worker thread


class DistributedError(RuntimeError):
    """The Dask cluster cannot be used (unreachable, no workers, lost)."""


# -- on the workers ------------------------------------------------------------

_ready_for: str | None = None  # the settings this worker process was set up with


def process_remote(settings_json: str, model: FaceModel, batch: list[tuple[str, int, int, str | None]],
                   path_map: list[str]) -> tuple[str, list[PhotoResult]]:
    """A batch of files on a Dask worker: set the process up once (one BLAS
    thread, ``model`` loaded), read each file where this machine sees it,
    and return (this worker's address, the results under the coordinator's
    paths)."""
    global _ready_for
    if _ready_for != settings_json:
        prepare(settings_json, model)
        _ready_for = settings_json
    results = []
    for path, size, mtime_ns, known_hash in batch:
        result = process_file((mapped(path, path_map), size, mtime_ns, known_hash))
        result.path = path
        results.append(result)
    return _worker_address(), results


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


def batches(jobs: list[tuple[str, int, int, str | None]], size: int,
            video_extensions: list[str]) -> Iterator[list[tuple[str, int, int, str | None]]]:
    """``jobs`` in batches of ``size`` files, a video alone (it is long)."""
    batch: list[tuple[str, int, int, str | None]] = []
    for job in jobs:
        if job[0].lower().endswith(tuple(video_extensions)):
            yield [job]
            continue
        batch.append(job)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def dask_results(jobs: list[tuple[str, int, int, str | None]], settings: Settings, model: FaceModel,
                 workers_seen: set[str]) -> Iterator[PhotoResult]:
    """Process ``jobs`` on the cluster of ``settings.indexer.scheduler`` in
    batches of ``BATCH_FILES`` (a task costs the scheduler and this process
    about a millisecond: per photo, that would be a third of the work),
    yielding results as batches finish (any order), at most
    ``indexer.in_flight`` files out at a time. A batch that killed its
    workers (``KilledWorker``: the scheduler gave up on it) is sent again
    one file at a time, each alone among the suspects (``quarantine``), so
    that only the file that does it is reported: a file whose task merely
    ran beside the culprit when it killed the worker is not. ``workers_seen``
    collects the addresses of the workers that processed some."""
    from distributed import as_completed
    from distributed.client import FutureCancelledError
    from distributed.scheduler import KilledWorker

    address = settings.indexer.scheduler
    client = connect(address)
    try:
        threads = sum(client.nthreads().values())
        in_flight = settings.indexer.in_flight or IN_FLIGHT_PER_THREAD * BATCH_FILES * max(1, threads)
        settings_json = settings.model_dump_json()
        run = uuid.uuid4().hex[:8]
        size = min(BATCH_FILES, max(1, in_flight // max(1, threads)))  # a small in_flight: still a task a thread
        waiting = batches(jobs, size, settings.indexer.video_extensions)
        # The files of batches that killed workers, each to be sent alone,
        # and the one of them out now (at most one: in quarantine).
        suspects: list[list[tuple[str, int, int, str | None]]] = []
        quarantine: set[str] = set()
        futures = as_completed(loop=client.loop)
        out: dict[str, list] = {}
        numbers = iter(range(10**12))

        def submit(batch: list, *, suspect: bool = False) -> None:
            future = client.submit(process_remote, settings_json, model, batch, settings.indexer.path_map,
                                   key=f"facesearch-{run}-{next(numbers)}", pure=False)
            out[future.key] = batch
            futures.add(future)
            if suspect:
                quarantine.add(future.key)

        def fill() -> None:
            if suspects and not quarantine:
                submit(suspects.pop(), suspect=True)
            while sum(len(b) for b in out.values()) < in_flight:
                batch = next(waiting, None)
                if batch is None:
                    return
                submit(batch)

        fill()
        for future in futures:
            batch = out.pop(future.key)
            try:
                worker, results = future.result()
                workers_seen.add(worker)
            except KilledWorker:
                if future.key in quarantine:  # alone among the suspects: this file does it
                    results = [_failed(batch[0], "processing it stopped the Dask workers that tried "
                                                 "(killed or crashed)")]
                else:
                    suspects.extend([job] for job in batch)
                    results = []
            except (FutureCancelledError, OSError, TimeoutError) as exc:
                raise DistributedError(
                    f"lost the Dask scheduler at {address} ({type(exc).__name__}: {exc}); nothing is lost: "
                    "the next run resumes from the last checkpoint"
                ) from None
            except Exception as exc:  # the task itself failed on the worker (not a bad file: those are results)
                results = [_failed(job, f"the Dask worker failed on it ({type(exc).__name__}: {exc})")
                           for job in batch]
            quarantine.discard(future.key)
            future.release()
            fill()
            yield from results
    finally:
        client.close()


def _failed(job: tuple[str, int, int, str | None], error: str) -> PhotoResult:
    return PhotoResult(path=job[0], size=job[1], mtime_ns=job[2], error=error)
