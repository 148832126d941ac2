"""Indexing on a Dask cluster of real processes on this machine (a
``dask scheduler`` and ``dask worker`` processes, as an operator starts
them): the same index as a local run, a worker killed mid-run, a file that
kills every worker, a scheduler that is unreachable or lost."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from config.settings import load_settings
from facesearch.cli import main
from indexer import distributed
from indexer.distributed import DistributedError, batches, mapped
from indexer.indexing import index_paths
from indexer.store.generations import current_name
from tests.helpers import DATA, FakeModel, published_store

pytestmark = [pytest.mark.slow,  # real scheduler and worker processes
              pytest.mark.skipif(importlib.util.find_spec("distributed") is None,
                                 reason="Dask distributed is not installed (make install SCALE=1)")]

ROOT = Path(__file__).resolve().parents[2]
DASK = str(Path(sys.executable).with_name("dask"))


@contextmanager
def cluster(tmp_path: Path, workers: int, *, fake: bool = False, env: dict | None = None):
    """A scheduler and ``workers`` worker processes (each under its nanny,
    one thread); yields (address, the worker processes' Popen)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    info = tmp_path / "scheduler.json"
    scheduler = subprocess.Popen([DASK, "scheduler", "--scheduler-file", str(info), "--port", "0", "--no-dashboard"],
                                 cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    procs = [scheduler]
    try:
        deadline = time.monotonic() + 30
        while not info.exists():
            assert time.monotonic() < deadline and scheduler.poll() is None, "the scheduler did not start"
            time.sleep(0.1)
        time.sleep(0.2)  # written whole
        address = json.loads(info.read_text())["address"]
        preload = ["--preload", str(ROOT / "tests" / "processes" / "dask_fake_worker.py")] if fake else []
        for _ in range(workers):
            procs.append(subprocess.Popen(
                [DASK, "worker", address, "--nthreads", "1", "--no-dashboard", *preload],
                cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        from distributed import Client

        with Client(address, timeout=30) as client:
            client.wait_for_workers(workers, timeout=60)
        yield address, scheduler
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


def faces_by_place(data_dir: Path) -> dict[tuple, np.ndarray]:
    """Every face of the published index by (path, box) -> embedding."""
    store = published_store(data_dir)
    try:
        ids, _, x = store.all_embeddings()
        records = store.faces(ids.tolist())
        return {(records[i].path, records[i].box): v for i, v in zip(ids.tolist(), x)}
    finally:
        store.close()


def test_a_dask_cluster_gives_the_same_index_as_a_local_run(real_model, tmp_path: Path, real_index: Path):
    data_dir = tmp_path / "index"
    with cluster(tmp_path, 2) as (address, _):
        settings = load_settings(data_dir=data_dir, indexer={"scheduler": address})
        report = index_paths([DATA], settings, progress=False, model=real_model)
    assert report.errors == [] and report.scheduler == address and report.workers == 2
    local, remote = faces_by_place(real_index), faces_by_place(data_dir)
    assert local.keys() == remote.keys() and len(remote) == report.faces_total > 0
    for place, vector in local.items():
        np.testing.assert_allclose(remote[place], vector, atol=1e-5)


def local_fake_index(fake_model, tmp_path: Path, photos: Path) -> dict[tuple, np.ndarray]:
    data_dir = tmp_path / "local"
    index_paths([photos], load_settings(data_dir=data_dir, indexer={"workers": 1}), progress=False, model=fake_model)
    return faces_by_place(data_dir)


def test_a_worker_killed_mid_run_loses_nothing(fake_model, tmp_path: Path, photos: Path):
    data_dir = tmp_path / "index"
    with cluster(tmp_path, 2, fake=True) as (address, _):
        from distributed import Client

        with Client(address) as client:
            pids = list(client.run(os.getpid).values())
        done = []

        def kill_one_worker(result) -> None:
            done.append(result.path)
            if len(done) == 3:
                os.kill(pids[0], signal.SIGKILL)  # the worker process; its nanny starts another

        # Four files out at a time, in tasks of two: each worker is busy with one when the kill comes.
        settings = load_settings(data_dir=data_dir, indexer={"scheduler": address, "in_flight": 4})
        report = index_paths([photos], settings, progress=False, on_result=kill_one_worker,
                             model=FakeModel(delay_s=0.3))
    assert report.errors == [] and report.images_indexed == 15
    assert len(done) == len(set(done)) == 15
    assert faces_by_place(data_dir).keys() == local_fake_index(fake_model, tmp_path, photos).keys()


def test_a_file_that_kills_every_worker_is_reported_not_retried_for_ever(fake_model, tmp_path: Path, photos: Path):
    shutil.copy(photos / "Tony_Blair" / "Tony_Blair_0001.jpg", photos / "poison.jpg")
    data_dir = tmp_path / "index"
    env = {"DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "2"}  # dies 3 times; default 3
    with cluster(tmp_path, 2, fake=True, env=env) as (address, _):
        settings = load_settings(data_dir=data_dir, indexer={"scheduler": address})
        report = index_paths([photos], settings, progress=False, model=fake_model)
    assert [e["path"] for e in report.errors] == [str(photos / "poison.jpg")]
    assert "stopped the Dask workers" in report.errors[0]["error"]
    assert report.images_indexed == 15 and report.published


def test_a_lost_scheduler_fails_the_run_and_the_next_resumes(fake_model, settings, tmp_path: Path, photos: Path):
    index_paths([photos], settings, progress=False, model=fake_model)
    before = faces_by_place(settings.data_dir)
    for i in range(10):
        shutil.copy(photos / "Tony_Blair" / "Tony_Blair_0001.jpg", photos / f"new{i}.jpg")
        with open(photos / f"new{i}.jpg", "ab") as extra:
            extra.write(bytes([i]))
    with cluster(tmp_path, 1, fake=True) as (address, scheduler):
        done = []

        def stop_scheduler(result) -> None:
            done.append(result)
            if len(done) == 2:
                scheduler.kill()

        remote = settings.model_copy(update={"indexer": settings.indexer.model_copy(update={"scheduler": address,
                                                                                         "checkpoint_every": 1})})
        with pytest.raises(DistributedError, match="lost the Dask scheduler"):
            index_paths([photos], remote, progress=False, on_result=stop_scheduler, model=FakeModel(delay_s=0.3))
    assert current_name(settings.data_dir) == "g000001" and faces_by_place(settings.data_dir).keys() == before.keys()
    report = index_paths([photos], settings, progress=False, model=fake_model)  # locally now: resumes the checkpoints
    assert report.images_indexed < 10 and len(faces_by_place(settings.data_dir)) == 25


def test_an_unreachable_scheduler_is_a_clear_error(runner, tmp_path: Path, monkeypatch):
    monkeypatch.setattr(distributed, "CONNECT_TIMEOUT_S", 1)
    result = runner.invoke(main, ["index", "--data-dir", str(tmp_path / "index"), "--scheduler",
                                  "tcp://127.0.0.1:9", str(DATA / "lfw")])
    assert result.exit_code == 1
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in result.output and "dask scheduler" in result.output


def test_paths_are_mapped_for_workers_that_mount_the_files_elsewhere():
    path_map = ["/mnt/photos=/data/photos", "/srv=/other"]
    assert mapped("/mnt/photos/a/b.jpg", path_map) == "/data/photos/a/b.jpg"
    assert mapped("/mnt/photos2/b.jpg", path_map) == "/mnt/photos2/b.jpg"  # a whole path component only
    assert mapped("/srv/x.jpg", path_map) == "/other/x.jpg"
    with pytest.raises(ValueError, match="FROM=TO"):
        load_settings(indexer={"path_map": ["nothing"]})


def test_files_go_out_in_batches_and_a_video_alone():
    jobs = [(f"/p/{i}.jpg", 1, 1, None) for i in range(5)] + [("/p/cam.MP4", 1, 1, None), ("/p/9.jpg", 1, 1, None)]
    assert [[j[0] for j in b] for b in batches(jobs, 2, [".mp4"])] == [
        ["/p/0.jpg", "/p/1.jpg"], ["/p/2.jpg", "/p/3.jpg"], ["/p/cam.MP4"], ["/p/4.jpg", "/p/9.jpg"]]
