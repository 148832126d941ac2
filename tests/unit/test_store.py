"""The FAISS wrapper against brute-force numpy, and the store's persistence,
consistency checks and repair (the tests taking ``backend``: on FAISS and on
Milvus Lite; tests/processes/test_milvus_store.py has Milvus's own)."""

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from indexer.model import Box
from indexer.store import EmbeddedStore, FileRecord, StoreError, StoreMismatchError
from indexer.store.metadata import NewFace
from indexer.store.vectors import FlatL2Index
from tests.helpers import store_at

DIM = 128


def brute_force(x: np.ndarray, ids: np.ndarray, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    d = ((q[:, None, :].astype(np.float64) - x[None, :, :].astype(np.float64)) ** 2).sum(-1)
    order = np.argsort(d, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(d, order, axis=1), ids[order]


@pytest.fixture
def seeded() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    x = rng.normal(0, 0.1, (500, DIM)).astype(np.float32)
    ids = rng.choice(10_000, size=500, replace=False).astype(np.int64)
    q = rng.normal(0, 0.1, (20, DIM)).astype(np.float32)
    return x, ids, q


def test_search_matches_brute_force(seeded):
    x, ids, q = seeded
    index = FlatL2Index(DIM)
    index.add(ids, x)
    distances, found = index.search(q, 10)
    expected_d, expected_i = brute_force(x, ids, q, 10)
    np.testing.assert_array_equal(found, expected_i)
    np.testing.assert_allclose(distances, expected_d, rtol=1e-4)  # squared L2


def test_remove_then_search_matches_brute_force(seeded):
    x, ids, q = seeded
    index = FlatL2Index(DIM)
    index.add(ids, x)
    gone = ids[::3]
    assert index.remove(gone) == len(gone)
    keep = ~np.isin(ids, gone)
    _, found = index.search(q, 5)
    np.testing.assert_array_equal(found, brute_force(x[keep], ids[keep], q, 5)[1])


def test_prescan_with_exact_rerank_matches_brute_force(seeded):
    x, ids, q = seeded
    index = FlatL2Index(DIM, scan_min_faces=100, min_candidates=0)  # force the prescan path on 500 vectors
    index.add(ids[:400], x[:400])
    distances, found = index.search(q, 10)
    assert index._scan is not None  # the path under test was taken
    expected_d, expected_i = brute_force(x[:400], ids[:400], q, 10)
    np.testing.assert_array_equal(found, expected_i)
    np.testing.assert_allclose(distances, expected_d, rtol=1e-5)  # exact float32, not 8-bit
    # The copy follows later adds (here far outside the range it was built
    # for, so they are clipped) and removes, and stays exact.
    far = x[400:] * 5
    index.add(ids[400:], far)
    index.remove(ids[:50])
    both = np.concatenate([x[50:400], far])
    _, found = index.search(np.concatenate([q, far[:5] + 0.01]), 10)
    np.testing.assert_array_equal(found, brute_force(both, ids[50:], np.concatenate([q, far[:5] + 0.01]), 10)[1])


def test_prescan_falls_back_to_the_full_scan_when_it_cannot_prove_the_result(seeded):
    x, ids, q = seeded
    # 300 faces all at the same distance from the query: no candidate margin
    # can separate the k-th from the rest, so the bound check must fail.
    centre = q[0]
    offsets = np.random.default_rng(3).normal(0, 1, (300, DIM)).astype(np.float32)
    ring = centre + 0.5 * offsets / np.linalg.norm(offsets, axis=1, keepdims=True)
    index = FlatL2Index(DIM, scan_min_faces=100, min_candidates=0)
    index.add(np.arange(300), ring)
    distances, found = index.search(centre, 10)
    assert index.fallbacks == 1
    # All 300 tie up to rounding, so compare distances, not the order of ties.
    expected_d, _ = brute_force(ring, np.arange(300), centre[None, :], 10)
    np.testing.assert_allclose(distances, expected_d, rtol=1e-5)
    assert len(set(found[0])) == 10 and found.min() >= 0


def test_fewer_vectors_than_k_pad_with_minus_one(seeded):
    x, ids, q = seeded
    index = FlatL2Index(DIM)
    index.add(ids[:3], x[:3])
    _, found = index.search(q[:1], 5)
    assert list(found[0][3:]) == [-1, -1]


def test_inputs_are_checked_and_converted(seeded):
    x, ids, _ = seeded
    index = FlatL2Index(DIM)
    index.add(ids[:10], x[:10].astype(np.float64))  # converted to float32
    assert index.ntotal == 10
    with pytest.raises(ValueError):
        index.add(ids[:2], x[:3])
    with pytest.raises(ValueError):
        index.search(np.zeros((1, 64), np.float32), 1)


def test_save_load_round_trip_is_atomic(seeded, tmp_path: Path):
    x, ids, q = seeded
    index = FlatL2Index(DIM)
    index.add(ids, x)
    path = tmp_path / "faces.faiss"
    index.save(path)
    assert [p.name for p in tmp_path.iterdir()] == ["faces.faiss"]  # no temporary file left
    loaded = FlatL2Index.load(path)
    for a, b in zip(index.search(q, 7), loaded.search(q, 7)):
        np.testing.assert_array_equal(a, b)


def record(path: str, content: str = "h") -> FileRecord:
    return FileRecord(path=path, size=1, mtime_ns=1, content_hash=content, width=100, height=80,
                      detection="{}", model="m")


def faces(n: int, seed: int) -> list[NewFace]:
    rng = np.random.default_rng(seed)
    return [NewFace(Box(1, 20 + i, 30, i), rng.normal(0, 0.1, DIM).astype(np.float32), b"jpeg") for i in range(n)]


def test_store_persists_faces_with_metadata(data_dir: Path, backend):
    store = store_at(data_dir)
    assert store.put_file(record("/p/a.jpg"), faces(2, 1)) == (2, 0)
    assert store.put_file(record("/p/b.jpg"), faces(3, 2)) == (3, 0)
    store.checkpoint(detection="sig")
    store.close()

    reader = store_at(data_dir, readonly=True)
    assert reader.count() == 5 and reader.photo_count() == 2 and reader.backend == backend
    manifest = json.loads((data_dir / "manifest.json").read_text())
    assert manifest["faces"] == 5 and manifest["dimension"] == 128 and manifest["backend"] == backend
    assert manifest["index_type"] == reader.index_type == {"faiss": "IDMap2,Flat", "milvus": "Milvus FLAT"}[backend]
    assert manifest["format_version"] == 1 and manifest["detection"] == "sig"
    query = faces(3, 2)[1][1]
    distances, ids = reader.search(query, 1)
    record_b = reader.faces([int(ids[0, 0])])[int(ids[0, 0])]
    assert distances[0, 0] == pytest.approx(0.0, abs=1e-6)
    assert record_b.path == "/p/b.jpg" and record_b.box == Box(1, 21, 30, 1)
    assert reader.thumbnail(int(ids[0, 0])) == b"jpeg"
    assert reader.thumbnail(999) is None
    reader.close()


def test_replacing_and_removing_a_file_updates_both_sides(data_dir: Path, backend):
    store = store_at(data_dir)
    store.put_file(record("/p/a.jpg"), faces(2, 1))
    store.put_file(record("/p/b.jpg"), faces(1, 2))
    old_ids = set(store.db.face_ids_of("/p/a.jpg"))
    assert store.put_file(record("/p/a.jpg", "h2"), faces(1, 3)) == (1, 2)
    new_ids = set(store.db.face_ids_of("/p/a.jpg"))
    assert not old_ids & new_ids  # ids are never reused
    assert store.remove_file("/p/b.jpg") == 1
    store.checkpoint()
    assert store.count() == store.db.face_count() == 1
    _, ids = store.search(faces(1, 3)[0][1], 3)
    assert set(ids[0]) - {-1} == new_ids
    store.close()


def test_mismatch_is_refused_with_a_repair_hint_and_repair_fixes_it(data_dir: Path, backend):
    store = store_at(data_dir)
    store.put_file(record("/p/a.jpg"), faces(4, 1))
    store.checkpoint()
    store.close()
    # A crash after the metadata commit and before the index save:
    with sqlite3.connect(data_dir / "metadata.sqlite3") as conn:
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("DELETE FROM faces WHERE id = (SELECT MIN(id) FROM faces)")
    with pytest.raises(StoreMismatchError, match="facesearch repair"):
        store_at(data_dir, readonly=True)

    repaired = store_at(data_dir, repair=True)
    assert repaired.count() == 3 and repaired.repaired
    repaired.close()
    reader = store_at(data_dir, readonly=True)
    assert reader.count() == 3
    reader.close()


def test_damaged_index_file_is_refused_then_rebuilt(data_dir: Path):
    store = EmbeddedStore.open(data_dir)
    store.put_file(record("/p/a.jpg"), faces(2, 1))
    store.checkpoint()
    store.close()
    index_file = data_dir / "faces.faiss"
    index_file.write_bytes(index_file.read_bytes()[:100])
    with pytest.raises(StoreMismatchError, match="facesearch repair"):
        EmbeddedStore.open(data_dir, readonly=True)
    EmbeddedStore.open(data_dir, repair=True).close()
    assert EmbeddedStore.open(data_dir, readonly=True).count() == 2


def test_missing_index_is_a_clear_error(tmp_path: Path, backend):
    with pytest.raises(StoreError, match="facesearch index"):
        store_at(tmp_path / "nothing", readonly=True)


def test_other_format_version_is_refused(data_dir: Path):
    EmbeddedStore.open(data_dir).checkpoint()
    manifest = data_dir / "manifest.json"
    manifest.write_text(json.dumps({**json.loads(manifest.read_text()), "format_version": 99}))
    with pytest.raises(StoreError, match="--full"):
        EmbeddedStore.open(data_dir, readonly=True)


def test_saved_files_are_private_whatever_the_umask(data_dir: Path):
    import os

    old = os.umask(0o022)
    try:
        store = EmbeddedStore.open(data_dir)
        store.put_file(record("/p/a.jpg"), faces(1, 1))
        store.checkpoint()
        store.close()
    finally:
        os.umask(old)
    for name in ("faces.faiss", "manifest.json", "metadata.sqlite3"):
        assert (data_dir / name).stat().st_mode & 0o777 == 0o600


def test_all_embeddings_gives_ids_photos_and_vectors_in_face_id_order(data_dir: Path, backend):
    store = store_at(data_dir)
    empty_ids, empty_files, empty_x = store.all_embeddings()
    assert len(empty_ids) == len(empty_files) == 0 and empty_x.shape == (0, DIM)
    store.put_file(record("/p/a.jpg"), faces(2, 1))
    store.put_file(record("/p/b.jpg"), faces(3, 2))
    store.put_file(record("/p/a.jpg", "h2"), faces(1, 3))  # replaced: new face ids after b's
    ids, file_ids, x = store.db.all_embeddings(batch=2)  # several batches
    assert ids.dtype == file_ids.dtype == np.int64 and x.dtype == np.float32 and x.shape == (4, DIM)
    assert list(ids) == sorted(ids)
    assert ids.tolist() == sorted(store.db.face_ids_of("/p/b.jpg") + store.db.face_ids_of("/p/a.jpg"))
    assert len(set(file_ids[:3].tolist())) == 1 and file_ids[3] != file_ids[0]
    np.testing.assert_array_equal(x[:3], np.stack([f[1] for f in faces(3, 2)]))
    np.testing.assert_array_equal(x[3], faces(1, 3)[0][1])
    store.close()


@pytest.mark.parametrize("scan_min_faces", [100_000, 100], ids=["float32 scan", "8-bit prescan"])
def test_range_search_matches_brute_force(scan_min_faces: int):
    rng = np.random.default_rng(7)
    x = rng.normal(0, 0.06, (500, 128)).astype(np.float32)
    ids = np.arange(1000, 1500, dtype=np.int64)
    index = FlatL2Index(128, scan_min_faces=scan_min_faces, range_scan_min_faces=scan_min_faces)
    index.add(ids, x)
    queries = x[:5] + rng.normal(0, 0.01, (5, 128)).astype(np.float32)
    radius = 0.9
    lims, D, found = index.range_search(queries, radius**2)
    assert (index._scan is not None) == (scan_min_faces == 100)  # the path under test was taken
    full = ((queries[:, None, :].astype(np.float64) - x[None]) ** 2).sum(-1)
    for row in range(5):
        expected = set(ids[full[row] <= radius**2].tolist())
        got = found[lims[row] : lims[row + 1]]
        assert set(got.tolist()) == expected and len(expected) > 1
        np.testing.assert_allclose(
            np.sort(D[lims[row] : lims[row + 1]]), np.sort(full[row][full[row] <= radius**2]), rtol=1e-4
        )
    empty = FlatL2Index(128, scan_min_faces=scan_min_faces)
    assert empty.range_search(queries, 1.0)[0].tolist() == [0] * 6


def test_prescan_range_search_keeps_faces_just_inside_the_radius():
    """Faces a hair inside and outside the radius, where the 8-bit copy's
    rounding is larger than the gap: the copy may only widen the candidates,
    exact distances decide."""
    rng = np.random.default_rng(11)
    centre = rng.normal(0, 0.05, 128).astype(np.float32)
    directions = rng.normal(0, 1, (400, 128))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    radii = np.where(np.arange(400) % 2 == 0, 0.5 - 1e-4, 0.5 + 1e-4)
    ring = (centre + radii[:, None] * directions).astype(np.float32)
    index = FlatL2Index(128, scan_min_faces=100, range_scan_min_faces=100)
    index.add(np.arange(400), ring)
    lims, D, found = index.range_search(centre, 0.5**2)
    exact = ((ring.astype(np.float64) - centre) ** 2).sum(1)
    assert index._scan is not None and index._scan.error_bound > 1e-3
    assert set(found.tolist()) == set(np.flatnonzero(exact <= 0.25).tolist())
    assert 150 < len(found) < 250


def test_prescan_range_search_with_more_faces_within_reach_than_candidates(monkeypatch: pytest.MonkeyPatch):
    import indexer.store.vectors as vectors

    monkeypatch.setattr(vectors, "RANGE_CANDIDATES", 8)
    rng = np.random.default_rng(5)
    x = rng.normal(0, 0.06, (500, 128)).astype(np.float32)
    index = FlatL2Index(128, scan_min_faces=100, range_scan_min_faces=100)
    index.add(np.arange(500), x)
    far = np.full(128, 0.5, np.float32)  # no face within reach: the candidates suffice
    queries = np.stack([x[0], far])
    lims, D, found = index.range_search(queries, 0.9**2)
    full = ((queries[:, None, :].astype(np.float64) - x[None]) ** 2).sum(-1)
    assert len(found[lims[0] : lims[1]]) > 8 and lims[2] == lims[1]  # more hits than candidates for the first
    for row in range(2):
        assert set(found[lims[row] : lims[row + 1]].tolist()) == set(np.flatnonzero(full[row] <= 0.81).tolist())


def test_prescan_is_exact_for_queries_outside_its_range_and_on_rounding_edges():
    """FAISS's 8-bit distance code truncates a float query to a byte (and
    wraps values outside 0..255): queries are coded by us, with their own
    error in the bound. A component past the copy's range, and a face placed
    exactly at the radius along its own rounding error, stay exact."""
    rng = np.random.default_rng(0)
    x = rng.normal(0, 0.06, (3000, 128)).astype(np.float32)
    ids = np.arange(3000, dtype=np.int64)
    index = FlatL2Index(128, scan_min_faces=100, range_scan_min_faces=100)
    index.add(ids, x)
    index.prepare_search()
    scan = index._scan
    outside = x[0].copy()
    outside[5] = scan.low + 257 * scan.step  # 2 steps past the top of the copy's range
    full = ((x.astype(np.float64) - outside) ** 2).sum(1)
    lims, _, found = index.range_search(outside, 0.9**2)
    assert set(found.tolist()) == set(np.flatnonzero(full <= 0.81).tolist()) and len(found) > 50
    _, nearest = index.search(outside, 10)
    assert nearest[0].tolist() == np.argsort(full, kind="stable")[:10].tolist()

    error = x - (scan.low + scan._codes(x) * scan.step)
    worst = int(np.argmax(np.linalg.norm(error, axis=1)))
    query = (x[worst] + 0.55 * error[worst] / np.linalg.norm(error[worst])).astype(np.float32)
    at = float(((x[worst] - query) ** 2).sum(dtype=np.float32))
    assert worst in set(index.range_search(query, at)[2].tolist())


def test_faces_with_only_a_file_date_are_told_apart(data_dir: Path, backend):
    store = store_at(data_dir)
    mtime_ns = 1_700_000_000_123_000_000
    copied = FileRecord(path="/p/copied.jpg", size=1, mtime_ns=mtime_ns, content_hash="c", width=100, height=80,
                        detection="{}", model="m", taken_at=mtime_ns / 1e9)  # no EXIF: the file's own time
    shot = FileRecord(path="/p/shot.jpg", size=1, mtime_ns=mtime_ns, content_hash="s", width=100, height=80,
                      detection="{}", model="m", taken_at=1_600_000_000.0)  # a capture date
    store.put_file(copied, faces(2, 1))
    store.put_file(shot, faces(1, 2))
    store.checkpoint()
    ids = store.face_ids().tolist()
    assert store.file_dated(ids) == set(ids[:2])
    store.close()
