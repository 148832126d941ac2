"""A reindex killed with SIGKILL at several points: the published generation
stays intact and consistent, and the next run finishes the job with no face
lost or duplicated. The child process runs the real CLI with the fake model
(``tests/processes/kill_runner.py``)."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from indexer.indexing import index_paths
from indexer.store.generations import GENERATIONS_DIR, current_name
from indexer.store.runs import last_run
from tests.helpers import published_store

ROOT = Path(__file__).resolve().parents[2]


def child(data_dir: Path, photos: Path, env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.processes.kill_runner", "index", "--data-dir", str(data_dir), "--workers", "1",
         str(photos)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "FACESEARCH_INDEXER__CHECKPOINT_EVERY": "3", **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def published_state(data_dir: Path) -> dict[str, int]:
    """Faces per path of the published generation, after checking that its
    FAISS index and metadata agree and that no face is listed twice."""
    store = published_store(data_dir)
    try:
        ids, _, _ = store.all_embeddings()
        assert len(set(ids.tolist())) == len(ids) == store.count()
        records = store.faces(ids.tolist())
    finally:
        store.close()
    out: dict[str, int] = {}
    for record in records.values():
        out[record.path] = out.get(record.path, 0) + 1
    return out


@pytest.fixture
def changed_photos(fake_model, settings, photos: Path):
    """An index of the 15 test photos, then changes to the folder: 12 new
    photos, one deleted, one moved. Returns (the expected final state, the
    state published before the changes)."""
    index_paths([photos], settings, progress=False, model=fake_model)
    before = published_state(settings.data_dir)
    source = (photos / "Tony_Blair" / "Tony_Blair_0001.jpg").read_bytes()
    for i in range(12):
        (photos / f"new{i:02d}.jpg").write_bytes(source + bytes([i]))
    (photos / "Colin_Powell" / "Colin_Powell_0001.jpg").unlink()
    shutil.move(photos / "Serena_Williams" / "Serena_Williams_0001.jpg", photos / "moved.jpg")
    expected = {str(p): 1 for p in photos.rglob("*.jpg")}
    return expected, before


pytestmark = [pytest.mark.usefixtures("backend"), pytest.mark.slow]  # runs killed in child processes

STORE_CLASSES = {"faiss": "indexer.store.embedded:EmbeddedStore", "milvus": "indexer.store.milvus:MilvusStore"}

POINTS = [
    ("STORE.checkpoint", 2),  # mid-run, between checkpoints
    ("STORE.seal", 1),  # all encoded, not sealed
    ("indexer.store.generations:publish", 1),  # sealed, not published
    ("indexer.store.generations:atomic_write_bytes", 2),  # renamed, CURRENT not yet replaced (call 1: begin)
    ("indexer.store.generations:_remove_old", 1),  # published, old generations not cleaned
    ("indexer.indexing:append_run", 1),  # published, the run not logged
]


@pytest.mark.parametrize(("point", "call"), POINTS, ids=[p.rsplit(":", 1)[-1] for p, _ in POINTS])
def test_kill_at_a_point_of_the_run(fake_model, changed_photos, settings, photos, point, call, backend):
    expected, before = changed_photos
    point = point.replace("STORE", STORE_CLASSES[backend])
    proc = child(settings.data_dir, photos, {"KILL_AT": point, "KILL_AT_CALL": str(call)})
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    # Whatever was published is whole: the old state or the new one, never a mix.
    assert published_state(settings.data_dir) in (before, expected)
    report = index_paths([photos], settings, progress=False, model=fake_model)
    assert published_state(settings.data_dir) == expected
    assert report.faces_total == len(expected)
    assert not list((settings.data_dir / GENERATIONS_DIR).glob("*.wip"))


@pytest.mark.parametrize("after_s", [0.3, 0.8, 1.3])
def test_kill_from_outside_while_encoding(fake_model, changed_photos, settings, photos, after_s):
    expected, before = changed_photos
    proc = child(settings.data_dir, photos, {"FAKE_DELAY_S": "0.1"})
    time.sleep(after_s)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    assert published_state(settings.data_dir) in (before, expected)
    index_paths([photos], settings, progress=False, model=fake_model)
    assert published_state(settings.data_dir) == expected


def test_a_run_killed_twice_still_finishes(fake_model, changed_photos, settings, photos, backend):
    expected, _ = changed_photos
    for call in (1, 2):
        proc = child(settings.data_dir, photos, {
            "KILL_AT": STORE_CLASSES[backend] + ".checkpoint", "KILL_AT_CALL": str(call + 1)})
        proc.communicate(timeout=60)
        assert proc.returncode == -signal.SIGKILL
    report = index_paths([photos], settings, progress=False, model=fake_model)
    assert report.images_indexed < 12  # the killed runs' checkpoints were resumed
    assert published_state(settings.data_dir) == expected
    assert last_run(settings.data_dir)["generation"] == current_name(settings.data_dir)


def test_a_child_run_completes_normally(changed_photos, settings, photos):
    expected, _ = changed_photos
    proc = child(settings.data_dir, photos, {})
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err.decode()
    assert published_state(settings.data_dir) == expected
