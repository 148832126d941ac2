"""The approximate index for top-k searches: built per generation for
exactly its faces, re-ranked by exact distances, retrained as the collection
grows, dropped where the settings or the size say exact, and never holding an
erased face."""

from __future__ import annotations

import io
import json
from pathlib import Path

import faiss
import numpy as np
import pytest

from config.settings import IndexSettings, load_settings
from indexer.erasure import erase_faces
from indexer.indexing import index_paths
from indexer.people.annotations import AnnotationsDB
from indexer.store import EmbeddedStore
from indexer.store.ann import ANN_FILE, AnnIndex, AnnPlan, refresh
from indexer.store.generations import current_dir
from indexer.store.vectors import FlatL2Index
from service import create_app
from tests.helpers import forget_checksums

DIM = 128


def clustered(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` vectors around n/5 centres (people seen several times), ids from 1000."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 0.07, (max(1, n // 5), DIM))
    x = centres[rng.integers(0, len(centres), n)] + rng.normal(0, 0.02, (n, DIM))
    return x.astype(np.float32), np.arange(1000, 1000 + n, dtype=np.int64)


def brute_force(x: np.ndarray, ids: np.ndarray, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    d = ((q[:, None, :].astype(np.float64) - x[None]) ** 2).sum(-1)
    order = np.argsort(d, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(d, order, axis=1), ids[order]


def test_reading_every_list_gives_the_exact_result(tmp_path: Path):
    x, ids = clustered(3000)
    entry = refresh(tmp_path, ids, x, AnnPlan(min_faces=1, lists=20), None)
    assert entry == {"factory": "IVF20,PQ64x4fs", "faces": 3000, "trained_faces": 3000}
    index = FlatL2Index(DIM)
    index.add(ids, x)
    index.use_ann(AnnIndex.load(tmp_path, nprobe=20), candidates=500)
    q = x[::100] + 0.01
    distances, found = index.search(q, 10)
    expected_d, expected_i = brute_force(x, ids, q, 10)
    np.testing.assert_array_equal(found, expected_i)
    np.testing.assert_allclose(distances, expected_d, rtol=1e-5)  # re-ranked by exact float32 distances
    assert index.search_description == "approximate: IVF20,PQ64x4fs nprobe 20, 500 candidates re-ranked exactly"


def test_few_lists_read_returns_true_distances_of_real_neighbours(tmp_path: Path):
    x, ids = clustered(3000, seed=1)
    refresh(tmp_path, ids, x, AnnPlan(min_faces=1, lists=40), None)
    index = FlatL2Index(DIM)
    index.add(ids, x)
    index.use_ann(AnnIndex.load(tmp_path, nprobe=2), candidates=30)
    q = x[::50]
    distances, found = index.search(q, 10)
    exact_d, exact_i = brute_force(x, ids, q, 10)
    by_id = dict(zip(ids.tolist(), x))
    for row in range(len(q)):
        assert list(distances[row]) == sorted(distances[row])
        true = [((by_id[i] - q[row]) ** 2).sum() for i in found[row]]
        np.testing.assert_allclose(distances[row], true, rtol=1e-5)
    recall = np.mean([len(set(found[r]) & set(exact_i[r])) / 10 for r in range(len(q))])
    assert 0.5 < recall < 1.0  # two lists of 40 miss some
    assert found[:, 0].tolist() == ids[::50].tolist()  # each query's own face comes first
    _, forced = index.search(q, 10, exact=True)  # a request may still ask for every face
    np.testing.assert_array_equal(forced, exact_i)


def test_fewer_faces_than_k_pad_like_faiss(tmp_path: Path):
    x, ids = clustered(20)
    assert refresh(tmp_path, ids[:15], x[:15], AnnPlan(min_faces=1), None) is None  # too few to train
    refresh(tmp_path, ids, x, AnnPlan(min_faces=1), None)
    index = FlatL2Index(DIM)
    index.add(ids, x)
    index.use_ann(AnnIndex.load(tmp_path, nprobe=8), candidates=10)
    distances, found = index.search(x[0], 23)
    assert sorted(found[0, :20].tolist()) == ids.tolist() and found[0, 20:].tolist() == [-1, -1, -1]
    assert (distances[0, 20:] == np.finfo(np.float32).max).all()


def test_an_index_of_other_faces_is_refused_and_changes_drop_it(tmp_path: Path):
    x, ids = clustered(500)
    refresh(tmp_path, ids[:-1], x[:-1], AnnPlan(min_faces=1), None)
    index = FlatL2Index(DIM)
    index.add(ids, x)
    with pytest.raises(ValueError, match="other faces"):
        index.use_ann(AnnIndex.load(tmp_path, nprobe=4), candidates=10)
    refresh(tmp_path, ids, x, AnnPlan(min_faces=1), None)
    index.use_ann(AnnIndex.load(tmp_path, nprobe=4), candidates=10)
    index.remove(ids[:1])
    assert index.ann is None and index.search_description == "exact"
    _, found = index.search(x[0], 1)
    assert found[0, 0] != ids[0]


def centres_of(path: Path) -> np.ndarray:
    index = faiss.read_index(str(path / ANN_FILE))  # kept: the IVF view below does not own it
    ivf = faiss.extract_index_ivf(index)
    return ivf.quantizer.reconstruct_n(0, ivf.nlist)


def test_lists_are_kept_while_the_collection_grows_little_and_trained_again_past_the_factor(tmp_path: Path):
    x, ids = clustered(4000, seed=2)
    plan = AnnPlan(min_faces=1000, lists=16, retrain_growth=2.0)
    first = refresh(tmp_path, ids[:1500], x[:1500], plan, None)
    assert first["trained_faces"] == 1500
    centres = centres_of(tmp_path)
    grown = refresh(tmp_path, ids[:2800], x[:2800], plan, first)  # x1.9: same centres, every face in
    assert grown == {"factory": "IVF16,PQ64x4fs", "faces": 2800, "trained_faces": 1500}
    np.testing.assert_array_equal(centres_of(tmp_path), centres)
    assert np.array_equal(AnnIndex.load(tmp_path, 1).ids(), ids[:2800])
    retrained = refresh(tmp_path, ids, x, plan, grown)  # x2.7 of the trained size
    assert retrained["trained_faces"] == 4000
    assert not np.array_equal(centres_of(tmp_path), centres)
    # Explicit lists above what the faces can train are clamped, and then
    # still kept from one generation to the next.
    many = AnnPlan(min_faces=1, lists=1000)
    clamped = refresh(tmp_path, ids, x, many, retrained)
    assert clamped == {"factory": "IVF62,PQ64x4fs", "faces": 4000, "trained_faces": 4000}
    assert refresh(tmp_path, ids[:3900], x[:3900], many, clamped)["trained_faces"] == 4000
    assert refresh(tmp_path, ids[:900], x[:900], plan, retrained) is None  # below min_faces: removed
    assert not (tmp_path / ANN_FILE).exists()


def test_settings_give_the_plan():
    assert AnnPlan.from_settings(IndexSettings(search="exact")) is None
    assert AnnPlan.from_settings(IndexSettings(search="approximate")).min_faces == 1
    auto = AnnPlan.from_settings(IndexSettings(search="auto", approximate_from_faces=5000, lists=64))
    assert (auto.min_faces, auto.lists) == (5000, 64)
    assert AnnPlan(min_faces=1).trainable_lists(1_000_000) == 4000
    kept = AnnPlan.same_as({"factory": "IVF62,PQ64x4fs", "faces": 4000, "trained_faces": 4000})
    assert (kept.lists, kept.retrain, kept.min_faces) == (62, True, 1) and AnnPlan.same_as(None) is None
    assert AnnPlan(min_faces=1, lists=100).trainable_lists(3200) == 50  # 64 faces a list at least


def codebook_pieces_of(generation: Path, vector: np.ndarray) -> int:
    """How many of the approximate index's trained values (list centres,
    PQ codebook entries) are pieces of ``vector`` exactly."""
    index = faiss.read_index(str(generation / ANN_FILE))
    ivf = faiss.downcast_index(faiss.extract_index_ivf(index))
    centres = ivf.quantizer.reconstruct_n(0, ivf.nlist)
    pq = ivf.pq
    books = faiss.vector_to_array(pq.centroids).reshape(pq.M, pq.ksub, pq.dsub)
    pieces = vector.reshape(pq.M, pq.dsub)
    in_books = sum(bool((books[m] == pieces[m]).all(axis=1).any()) for m in range(pq.M))
    return in_books + int((centres == vector).all(axis=1).sum())


def generation_manifest(data_dir: Path) -> dict:
    return json.loads((current_dir(data_dir) / "manifest.json").read_text())


def test_indexing_builds_it_the_service_uses_it_and_erasure_rebuilds_it(fake_model, data_dir: Path, photos: Path):
    fake_model.faces_per_image = 2
    approximate = load_settings(data_dir=data_dir, indexer={"workers": 1}, index={"search": "approximate"})
    index_paths([photos], approximate, progress=False, model=fake_model)
    manifest = generation_manifest(data_dir)
    assert manifest["ann"]["faces"] == manifest["faces"] == 30
    app = create_app(approximate, model=fake_model)
    client = app.test_client()
    assert client.get("/api/v1/index").get_json()["search"].startswith("approximate: IVF")
    store = EmbeddedStore.open_published(data_dir)
    ids, x = store.vectors.ids_and_vectors()
    body = client.post("/api/v1/search", json={"embedding": x[3].tolist(), "k": 30}).get_json()
    expected_d, expected_i = brute_force(x, ids, x[3:4], 30)
    assert [m["face_id"] for m in body["faces"][0]["matches"]] == expected_i[0].tolist()
    forced = client.post("/api/v1/search", json={"embedding": x[3].tolist(), "k": 30, "exact": True}).get_json()
    assert [m["face_id"] for m in forced["faces"][0]["matches"]] == expected_i[0].tolist()
    np.testing.assert_allclose([m["distance"] for m in forced["faces"][0]["matches"]],
                               [m["distance"] for m in body["faces"][0]["matches"]], atol=1e-5)
    photo = (photos / "Colin_Powell" / "Colin_Powell_0001.jpg").read_bytes()
    by_photo = [client.post("/api/v1/search", data={"image": (io.BytesIO(photo), "q.jpg"), **extra})
                for extra in ({}, {"exact": "true"})]
    assert [r.status_code for r in by_photo] == [200, 200]
    found = [[[m["face_id"] for m in face["matches"]] for face in r.get_json()["faces"]] for r in by_photo]
    assert found[0] == found[1] and len(found[0]) == 2 and found[0][0][0] != found[0][1][0]
    store.close()

    # 30 faces, 16 centres per 2-d codebook: trained with a face, the
    # codebooks hold pieces of it as they are.
    assert codebook_pieces_of(current_dir(data_dir), x[3]) > 0
    erase_faces(data_dir, [int(ids[3])], AnnotationsDB.open(data_dir))  # keeps the kind, for the other faces
    ann = AnnIndex.load(current_dir(data_dir), nprobe=1)
    assert ann is not None and int(ids[3]) not in ann.ids() and len(ann.ids()) == 29
    assert generation_manifest(data_dir)["ann"] == {"factory": "IVF1,PQ64x4fs", "faces": 29, "trained_faces": 29}
    assert codebook_pieces_of(current_dir(data_dir), x[3]) == 0  # trained again without it

    # Back to exact: a run with no photo to change still publishes a
    # generation, without the approximate index; then nothing to do.
    exact = load_settings(data_dir=data_dir, indexer={"workers": 1}, index={"search": "exact"})
    assert index_paths([photos], exact, progress=False, model=fake_model).published
    assert not (current_dir(data_dir) / ANN_FILE).exists() and generation_manifest(data_dir)["ann"] is None
    assert not index_paths([photos], exact, progress=False, model=fake_model).published
    assert create_app(approximate, model=fake_model).test_client().get("/api/v1/index").get_json()["search"] == "exact"


def test_a_collection_too_small_for_it_is_not_published_again_and_again(fake_model, data_dir: Path, photos: Path):
    approximate = load_settings(data_dir=data_dir, indexer={"workers": 1}, index={"search": "approximate"})
    assert index_paths([photos], approximate, progress=False, model=fake_model).published  # 15 faces: too few to train
    assert generation_manifest(data_dir)["ann"] is None
    assert not index_paths([photos], approximate, progress=False, model=fake_model).published


def test_auto_builds_it_only_from_the_configured_size(fake_model, data_dir: Path, photos: Path):
    fake_model.faces_per_image = 2
    small = load_settings(data_dir=data_dir, indexer={"workers": 1}, index={"approximate_from_faces": 31})
    index_paths([photos], small, progress=False, model=fake_model)
    assert generation_manifest(data_dir)["ann"] is None
    thirty = load_settings(data_dir=data_dir, indexer={"workers": 1}, index={"approximate_from_faces": 30})
    assert index_paths([photos], thirty, progress=False, model=fake_model).published
    assert generation_manifest(data_dir)["ann"]["faces"] == 30


def test_a_damaged_file_leaves_search_exact(fake_model, data_dir: Path, photos: Path, caplog):
    fake_model.faces_per_image = 2
    settings = load_settings(data_dir=data_dir, indexer={"workers": 1}, index={"search": "approximate"})
    index_paths([photos], settings, progress=False, model=fake_model)
    (current_dir(data_dir) / ANN_FILE).write_bytes(b"not a faiss index")
    forget_checksums(current_dir(data_dir))  # published before checksums (else refused: tests/unit/test_integrity.py)
    client = create_app(settings, model=fake_model).test_client()
    assert client.get("/api/v1/index").get_json()["search"] == "exact"
    assert "approximate index cannot be used" in caplog.text


def test_the_index_command_says_when_search_is_approximate(fake_model, runner, data_dir: Path, photos: Path,
                                                            monkeypatch: pytest.MonkeyPatch):
    from facesearch.cli import main

    fake_model.faces_per_image = 2
    command = ["index", "--data-dir", str(data_dir), "--workers", "1", str(photos)]
    exact = runner.invoke(main, command)
    assert exact.exit_code == 0 and "approximate" not in exact.output
    monkeypatch.setenv("FACESEARCH_INDEX__SEARCH", "approximate")
    first = runner.invoke(main, command)  # no photo changed: published for the approximate index
    assert first.exit_code == 0, first.output
    assert "top-k search is approximate: IVF1,PQ64x4fs over 30 faces (lists trained at 30 faces" in first.output
    again = runner.invoke(main, [*command[:-1], "--json", command[-1]])  # nothing to do: still said
    summary = json.loads(again.stdout.strip().splitlines()[-1])
    assert not summary["published"] and summary["approximate_index"]["faces"] == 30
