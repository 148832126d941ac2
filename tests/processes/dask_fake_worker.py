"""``dask worker --preload tests/processes/dask_fake_worker.py``: a photo
whose name contains "poison" kills the worker process, for
tests/processes/test_distributed.py (the fake model itself comes with each
task, from the coordinator, as the real one does)."""

import os

import tests.helpers  # noqa: F401  (what the tasks' FakeModel is unpickled from)
from indexer import worker

# Dask may run a preload file twice in one process: keep the real function.
real_process_photo = worker.__dict__.setdefault("real_process_photo", worker.process_photo)


def process_photo(job, settings, model):
    if "poison" in os.path.basename(job[0]):
        os._exit(1)
    return real_process_photo(job, settings, model)


worker.process_photo = process_photo
