"""``dask worker --preload tests/dask_fake_worker.py``: the worker runs the
fake model of tests/helpers.py (slowed down by ``FAKE_DELAY_S`` a photo),
and a photo whose name contains "poison" kills the worker process, for
tests/processes/test_distributed.py."""

import os
import time

from indexer import model, worker
from tests.helpers import FakeModel

fake = FakeModel()
delay = float(os.environ.get("FAKE_DELAY_S", "0"))
# Dask may run a preload file twice in one process: keep the real function.
real_process_photo = worker.__dict__.setdefault("real_process_photo", worker.process_photo)


def slow_boxes(rgb, **kwargs):
    time.sleep(delay)
    return fake.face_boxes(rgb, **kwargs)


def process_photo(job, settings):
    if "poison" in os.path.basename(job[0]):
        os._exit(1)
    return real_process_photo(job, settings)


model.face_boxes = slow_boxes
model.face_embeddings = fake.face_embeddings
model.load = lambda: None
worker.process_photo = process_photo
