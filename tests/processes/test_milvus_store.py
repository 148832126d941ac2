"""The Milvus store on Milvus Lite: searches against brute-force numpy and
FAISS, range searches past Milvus's 16,384-hit cap (iterator and distance
bands), filters pushed down into Milvus, generations seen whole during a
reindex, moving an index between backends without re-encoding, and what
Milvus Lite's one-process rule does to `serve` and `index` (real processes).
The tests every backend passes are in test_store, test_recall, test_erasure,
test_generations, test_indexing and test_kill."""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from config.settings import load_settings
from indexer.indexing import index_paths
from indexer.model import Box
from indexer.store import EmbeddedStore, FaceFilter, FileRecord, StoreError, generations
from indexer.store.metadata import NewFace
from indexer.store.milvus import SEARCH_CAP, pushed_down
from tests.helpers import published_store, serving, store_at

pytestmark = [pytest.mark.slow,  # a Milvus Lite server per test
              pytest.mark.skipif(importlib.util.find_spec("pymilvus") is None,
                                 reason="the Milvus client is not installed (make install SCALE=1)")]


@pytest.fixture(autouse=True)
def milvus(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FACESEARCH_STORE__BACKEND", "milvus")


def brute_force_sq(x: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Squared L2 distances (len(q), len(x)), in float64."""
    return ((q[:, None, :].astype(np.float64) - x[None, :, :].astype(np.float64)) ** 2).sum(-1)


def people_like(n: int, seed: int, people: int = 60, spread: float = 0.03) -> np.ndarray:
    """Face-like vectors: people ~1.4 apart, a person's faces ~0.5 apart."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 0.09, (people, 128)).astype(np.float32)
    return (centres[rng.integers(0, people, n)] + rng.normal(0, spread, (n, 128))).astype(np.float32)


def fill(store, x: np.ndarray, paths: list[str] | None = None, times: list[float | None] | None = None) -> list[int]:
    """One photo a vector; returns the face ids, in the order of ``x``."""
    for i, vector in enumerate(x):
        path = paths[i] if paths else f"/p/{i}.jpg"
        record = FileRecord(path=path, size=1, mtime_ns=1, content_hash=f"h{i}", width=9, height=9,
                            detection="{}", model="m", taken_at=times[i] if times else None)
        store.put_file(record, [NewFace(Box(0, 5, 5, 0), vector, b"jpeg")])
    store.checkpoint()
    by_path = {r.path: f for f, r in store.faces(store.face_ids().tolist()).items()}
    return [by_path[paths[i] if paths else f"/p/{i}.jpg"] for i in range(len(x))]


def test_searches_match_brute_force_numpy_and_faiss(tmp_path: Path):
    x = people_like(2_000, seed=1)
    q = np.vstack([x[:10] + 0.01, people_like(10, seed=2)])
    milvus, faiss = store_at(tmp_path / "milvus"), EmbeddedStore.open(tmp_path / "faiss")
    try:
        ids = np.array(fill(milvus, x))
        assert fill(faiss, x) == ids.tolist()  # the same metadata gives the same face ids
        truth = brute_force_sq(x, q)
        d, i = milvus.search(q, 10)
        order = np.argsort(truth, axis=1, kind="stable")[:, :10]
        np.testing.assert_array_equal(i, ids[order])
        np.testing.assert_allclose(d, np.take_along_axis(truth, order, axis=1), atol=1e-5)
        d_faiss, i_faiss = faiss.search(q, 10)
        np.testing.assert_array_equal(i, i_faiss)
        np.testing.assert_allclose(d, d_faiss, atol=1e-5)

        radius_sq = 0.55**2
        lims, d, i = milvus.range_search(q, radius_sq)
        for row in range(len(q)):
            got = dict(zip(i[lims[row]:lims[row + 1]].tolist(), d[lims[row]:lims[row + 1]].tolist()))
            near = np.abs(truth[row] - radius_sq) < 1e-5  # on the boundary: float rounding decides
            want = set(ids[(truth[row] < radius_sq) & ~near].tolist())
            assert want <= set(got) <= want | set(ids[near].tolist()) and len(got) == lims[row + 1] - lims[row]
            for face_id, dist in got.items():
                assert dist == pytest.approx(truth[row][ids.tolist().index(face_id)], abs=1e-5)
        assert milvus.search(q[:1], 5000)[1][0].tolist().count(-1) == 5000 - 2000  # FAISS's padding
        np.testing.assert_array_equal(milvus.vectors_of(ids[:3]), x[:3])
    finally:
        milvus.close()
        faiss.close()


@pytest.fixture(scope="module")
def crowded(tmp_path_factory: pytest.TempPathFactory):
    """A store where 17,500 faces lie within 0.55 of one probe, more than
    one Milvus search returns."""
    os.environ["FACESEARCH_STORE__BACKEND"] = "milvus"
    try:
        store = store_at(tmp_path_factory.mktemp("crowded"))
    finally:
        del os.environ["FACESEARCH_STORE__BACKEND"]
    rng = np.random.default_rng(5)
    probe = rng.normal(0, 0.09, 128).astype(np.float32)
    x = np.vstack([probe + rng.normal(0, 0.02, (17_500, 128)), people_like(500, seed=6)]).astype(np.float32)
    for start in range(0, len(x), 500):  # 500 faces a "photo": quicker to write
        record = FileRecord(path=f"/crowd/{start}.jpg", size=1, mtime_ns=1, content_hash=f"c{start}", width=9,
                            height=9, detection="{}", model="m")
        store.put_file(record, [NewFace(Box(0, 5, 5, 0), v, b"j") for v in x[start:start + 500]])
    store.checkpoint()
    yield store, probe, x
    store.close()


@pytest.mark.parametrize("pages", ["iterator", "bands", "iterator failing"])
def test_a_range_search_past_the_cap_returns_every_hit_once(crowded, pages, monkeypatch, caplog):
    store, probe, x = crowded
    monkeypatch.setattr(store, "settings", store.settings.model_copy(
        update={"range_pages": "bands" if pages == "bands" else "iterator"}))
    if pages == "iterator failing":
        def broken(*args, **kwargs):
            raise RuntimeError("iterator bug")
        monkeypatch.setattr(store.collection.client, "search_iterator", broken)
    radius_sq = 0.55**2
    truth = brute_force_sq(x, probe[None, :])[0]
    lims, d, ids = store.range_search(probe, radius_sq)
    assert len(set(ids.tolist())) == len(ids) == lims[1]  # no duplicates
    assert len(ids) > SEARCH_CAP
    clear = np.abs(truth - radius_sq) > 1e-5
    by_order = store.face_ids()  # face ids in the order of ``x`` (written in order)
    assert set(ids.tolist()) & set(by_order[clear].tolist()) == set(by_order[clear & (truth < radius_sq)].tolist())
    assert np.all(d < radius_sq)
    assert ("paging by distance bands" in caplog.text) == (pages == "iterator failing")


def test_filters_are_pushed_down_and_awkward_paths_checked_in_the_metadata(tmp_path: Path):
    folders = ["/cams/a/", "/cams/ab/", "/cams/o'brien/", "/cams/back\\slash/", "/cams/50%_off/", "/cams/ünï/"]
    paths = [f"{folders[i % len(folders)]}{i}.jpg" for i in range(120)]
    times = [None if i % 7 == 0 else 1_000.0 + i for i in range(120)]
    x = people_like(120, seed=3, people=2)
    store = store_at(tmp_path / "index")
    try:
        fill(store, x, paths, times)
        records = store.faces(store.face_ids().tolist())
        for where in [FaceFilter(path_prefix=f) for f in folders] + [
            FaceFilter(path_prefix="/cams/a"), FaceFilter(time_from=1_010.0, time_to=1_050.0),
            FaceFilter(path_prefix="/cams/ünï/", time_from=1_050.0), FaceFilter(time_to=1_003.0),
        ]:
            _, _, ids = store.range_search(x[:1], 100.0, where)
            assert sorted(ids.tolist()) == sorted(f for f, r in records.items() if where.keep(r)), where
    finally:
        store.close()
    assert pushed_down(FaceFilter(path_prefix="/cams/a/", time_from=1.5)) == (
        'path >= "/cams/a/" and path < "/cams/a0" and time >= 1.5', True)
    assert pushed_down(FaceFilter(path_prefix="/cams/o'brien/"))[1] is False  # checked in the metadata instead
    assert pushed_down(FaceFilter(path_prefix="/cams/back\\slash/"))[1] is False


def test_a_search_during_a_reindex_sees_the_published_generation_whole(fake_model, settings, photos, monkeypatch):
    index_paths([photos], settings, progress=False, model=fake_model)
    old = published_store(settings.data_dir)
    old_ids = set(old.face_ids().tolist())
    everything = np.zeros((1, 128), np.float32)

    def seen(store) -> set[int]:
        _, _, ids = store.range_search(everything, 1e9)
        return set(ids.tolist())

    assert seen(old) == old_ids and old.count() == 15
    source = (photos / "Tony_Blair" / "Tony_Blair_0001.jpg").read_bytes()
    for i in range(4):
        (photos / f"new{i}.jpg").write_bytes(source + bytes([i]))
    (photos / "Colin_Powell" / "Colin_Powell_0001.jpg").unlink()
    (photos / "Serena_Williams" / "Serena_Williams_0001.jpg").rename(photos / "moved.jpg")
    checked = []
    publish = generations.publish

    def check_then_publish(data_dir, wip, **kwargs):
        # The new generation's rows are all written: the published one's
        # readers, old and new, still see exactly their faces.
        fresh = published_store(data_dir)
        for reader in (old, fresh):
            assert seen(reader) == old_ids and reader.count() == 15
            assert {r.path for r in reader.faces(list(old_ids)).values()} == {
                str(p) for p in [*photos.rglob("*.jpg"), photos / "Colin_Powell" / "Colin_Powell_0001.jpg",
                                 photos / "Serena_Williams" / "Serena_Williams_0001.jpg"]
                if not p.name.startswith("new") and p.name != "moved.jpg"}
            assert set(reader.range_search(everything, 1e9, FaceFilter(path_prefix=str(photos / "moved")))[2]) == set()
        fresh.close()
        checked.append(True)
        return publish(data_dir, wip, **kwargs)

    monkeypatch.setattr(generations, "publish", check_then_publish)
    index_paths([photos], settings, progress=False, model=fake_model)
    assert checked
    new = published_store(settings.data_dir)
    try:
        assert new.count() == 18 and len(seen(new)) == 18
        moved = new.range_search(everything, 1e9, FaceFilter(path_prefix=str(photos / "moved")))[2]
        assert len(moved) == 1 and int(moved[0]) in old_ids  # a moved face keeps its id
        assert seen(old) == old_ids  # the previous generation is kept for readers still on it
    finally:
        new.close()
        old.close()


def test_an_index_moves_between_backends_without_re_encoding(fake_model, settings, photos, monkeypatch):
    monkeypatch.delenv("FACESEARCH_STORE__BACKEND")
    faiss_settings = load_settings(data_dir=settings.data_dir, indexer={"workers": 1})
    milvus_settings = faiss_settings.model_copy(update={"store": faiss_settings.store.model_copy(
        update={"backend": "milvus"})})
    index_paths([photos], faiss_settings, progress=False, model=fake_model)
    calls = fake_model.calls
    faiss = published_store(settings.data_dir)
    queries = faiss.vectors_of(faiss.face_ids()[:3]) + 0.01
    want = faiss.search(queries, 5)
    faiss.close()
    with pytest.raises(StoreError, match="store.backend = \"milvus\" once"):
        from indexer.store import open_published
        open_published(settings.data_dir, milvus_settings)

    report = index_paths([photos], milvus_settings, progress=False, model=fake_model)
    assert report.published and report.generation == "g000002" and fake_model.calls == calls
    from indexer.store import open_published

    moved = open_published(settings.data_dir, milvus_settings)
    try:
        got = moved.search(queries, 5)
        np.testing.assert_array_equal(got[1], want[1])
        np.testing.assert_allclose(got[0], want[0], atol=1e-5)
    finally:
        moved.close()
    assert not (settings.data_dir / "generations" / "g000002" / "faces.faiss").exists()
    with pytest.raises(StoreError, match="set store.backend"):
        open_published(settings.data_dir, faiss_settings)

    back = index_paths([photos], faiss_settings, progress=False, model=fake_model)
    assert back.generation == "g000003" and fake_model.calls == calls
    assert open_published(settings.data_dir, faiss_settings).count() == 15


def test_another_index_s_collection_is_refused(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("FACESEARCH_MILVUS__URI", str(tmp_path / "shared.db"))
    first = store_at(tmp_path / "one")
    fill(first, people_like(3, seed=1))
    first.close()
    with pytest.raises(StoreError, match="holds another index's faces"):
        store_at(tmp_path / "two")
    monkeypatch.setenv("FACESEARCH_MILVUS__COLLECTION", "second_index")
    second = store_at(tmp_path / "two")  # its own collection in the same Milvus
    assert second.count() == 0
    second.close()


def test_serving_milvus_lite_is_one_worker_and_indexing_meanwhile_says_what_to_do(fake_model, settings, photos):
    index_paths([photos], settings, progress=False, model=fake_model)
    with serving(settings.data_dir, workers=2) as (base, output):
        import urllib.request

        health = json.loads(urllib.request.urlopen(f"{base}/api/v1/health", timeout=10).read())
        assert health["faces"] == 15
        index = subprocess.run(
            [str(Path(sys.executable).with_name("facesearch")), "index", "--data-dir", str(settings.data_dir),
             str(photos)], capture_output=True, text=True, timeout=120, env=os.environ,
        )
    assert index.returncode == 1
    assert "open in another process" in index.stderr and "http://host:19530" in index.stderr
    assert "Traceback" not in index.stderr
    assert "facesearch: one worker: the vectors are in Milvus Lite" in output[0], output[0]


def test_lite_file_names_milvus_refuses_are_a_clear_error(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("FACESEARCH_MILVUS__URI", str(tmp_path / ("x" * 40 + ".db")))
    with pytest.raises(StoreError, match="at most 36"):
        store_at(tmp_path / "index")


def test_milvus_logs_stay_quiet(tmp_path: Path, caplog):
    caplog.set_level(logging.WARNING)
    store = store_at(tmp_path / "index")
    fill(store, people_like(3, seed=1))
    store.close()
    store = store_at(tmp_path / "index", repair=True)  # reconciles: a query iterator
    store.close()
    assert "mvccTs" not in caplog.text
