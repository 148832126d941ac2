"""Erasure: faces of a person, a cluster, or near a probe are deleted from
the index, the metadata, the thumbnails, the stored clusterings and every
generation on disk, and reindexing does not bring them back."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from application.audit import AuditLog
from facesearch.cli import main
from indexer.indexing import index_paths
from indexer.store import generations
from indexer.store.generations import GENERATIONS_DIR, IndexLock
from tests.helpers import PEOPLE_SIZES, client_of, person_faces, published_store

pytestmark = pytest.mark.usefixtures("backend")  # every test on FAISS and on Milvus Lite

TOTAL = sum(PEOPLE_SIZES.values()) + 1


def anna_ids(client) -> list[int]:
    hits = client.post("/api/v1/recall", json={"embeddings": [person_faces("anna", 1)[0].tolist()],
                                               "max_distance": 0.5}).get_json()
    return sorted(m["face_id"] for m in hits["matches"] if "/anna/" in m["path"])


def stored_bytes(data_dir: Path) -> bytes:
    """Every byte of every file in the data directory (all generations, and
    the Milvus Lite file there). Not Lite's empty lock file: closing any
    descriptor of it would drop the POSIX lock that keeps its server up."""
    files = [p for p in sorted(data_dir.rglob("*")) if p.is_file() and not p.name.endswith(".db.lock")]
    return b"".join(p.read_bytes() for p in files)


def name_cluster_of(client, face_id: int, name: str) -> int:
    run = client.post("/api/v1/clusters", json={"k": 4}).get_json()
    cluster = next(c["id"] for c in run["clusters"] if face_id in {m["face_id"] for m in c["members"]})
    assert client.put(f"/api/v1/clusters/{cluster}", json={"name": name}).status_code == 200
    return cluster


def test_erasing_a_person_leaves_nothing_of_their_faces(people_index: Path):
    client = client_of(people_index)
    ids = anna_ids(client)
    assert len(ids) == PEOPLE_SIZES["anna"]
    name_cluster_of(client, ids[0], "Anna Example")
    (person,) = client.get("/api/v1/people").get_json()["people"]
    anna_vectors = [v.astype("<f4").tobytes() for v in person_faces("anna", PEOPLE_SIZES["anna"])]
    thumbnail = client.get(f"/api/v1/faces/{ids[0]}/thumbnail").data
    assert any(v in stored_bytes(people_index) for v in anna_vectors) and thumbnail in stored_bytes(people_index)

    preview = client.post("/api/v1/erasures", json={"person_id": person["id"], "dry_run": True}).get_json()
    assert preview["dry_run"] and preview["faces_erased"] == len(ids) and preview["face_ids"] == ids
    assert client.get("/api/v1/health").get_json()["faces"] == TOTAL  # a dry run changes nothing

    response = client.post("/api/v1/erasures", json={"person_id": person["id"]})
    assert response.status_code == 200, response.get_json()
    report = response.get_json()
    assert report["faces_erased"] == len(ids) and report["face_ids"] == ids and report["person_forgotten"]
    assert report["photos"] == sorted(f"/photos/anna/{i}.jpg" for i in range(len(ids)))
    # the service no longer finds, shows or names them
    assert anna_ids(client) == []
    assert client.get("/api/v1/health").get_json()["faces"] == TOTAL - len(ids)
    for face_id in ids:
        assert client.get(f"/api/v1/faces/{face_id}").status_code == 404
        assert client.get(f"/api/v1/faces/{face_id}/thumbnail").status_code == 404
    run = client.get("/api/v1/clusters").get_json()
    listed = {m["face_id"] for c in run["clusters"] for m in c["members"]} | {s["face_id"] for s in run["strangers"]}
    assert listed.isdisjoint(ids) and len(listed) == TOTAL - len(ids)
    assert client.get("/api/v1/people").get_json()["people"] == []
    # and no file in the data directory holds them any more: one generation, no embedding, thumbnail or name
    assert [p.name for p in (people_index / GENERATIONS_DIR).iterdir()] == [report["generation"]]
    everything = stored_bytes(people_index)
    assert not any(v in everything for v in anna_vectors)
    assert thumbnail not in everything
    assert b"Anna Example" not in everything.replace(b"\n", b"")
    # the other people are untouched
    ben = person_faces("ben", 1)[0].tolist()
    assert client.post("/api/v1/search", json={"embedding": ben, "k": 1}).get_json()["faces"][0]["matches"][0][
        "path"].startswith("/photos/ben/")


def test_erasing_a_cluster_and_single_faces(people_index: Path):
    client = client_of(people_index)
    ids = anna_ids(client)
    cluster = name_cluster_of(client, ids[0], "Anna")
    report = client.post("/api/v1/erasures", json={"cluster_id": cluster}).get_json()
    assert report["face_ids"] == ids and not report["person_forgotten"]
    assert client.get("/api/v1/people").get_json()["people"][0]["face_count"] == 0  # the name stays, unlinked
    ben = client.post("/api/v1/search", json={"embedding": person_faces("ben", 1)[0].tolist(), "k": 1}).get_json()
    ben_id = ben["faces"][0]["matches"][0]["face_id"]
    assert client.delete(f"/api/v1/faces/{ben_id}").get_json()["face_ids"] == [ben_id]
    assert client.get(f"/api/v1/faces/{ben_id}").status_code == 404
    again = client.delete(f"/api/v1/faces/{ben_id}").get_json()  # already gone: nothing to do
    assert again["faces_erased"] == 0
    assert client.post("/api/v1/erasures", json={"cluster_id": 99}).get_json()["error"]["code"] == "cluster_not_found"
    assert client.post("/api/v1/erasures", json={"person_id": 99}).get_json()["error"]["code"] == "person_not_found"


def test_the_old_erasure_paths_say_where_erasure_went(people_index: Path):
    """DELETE /people/<id>/faces erased for good beside a POST that assigns:
    it answers 410 with the way to erase, and erases nothing."""
    client = client_of(people_index)
    name_cluster_of(client, anna_ids(client)[0], "Anna")
    (person,) = client.get("/api/v1/people").get_json()["people"]
    for url, key in [(f"/api/v1/people/{person['id']}/faces", "person_id"), ("/api/v1/clusters/0/faces", "cluster_id")]:
        response = client.delete(url)
        assert response.status_code == 410
        error = response.get_json()["error"]
        assert error["code"] == "moved" and "POST /api/v1/erasures" in error["message"] and key in error["message"]
    assert client.get("/api/v1/health").get_json()["faces"] == TOTAL


def test_erasing_faces_near_a_probe_embedding(people_index: Path):
    client = client_of(people_index)
    ids = anna_ids(client)
    probe = person_faces("anna", 1)[0].tolist()
    report = client.post("/api/v1/erasures", json={"embeddings": [probe], "max_distance": 0.5}).get_json()
    assert report["face_ids"] == ids
    assert client.get("/api/v1/health").get_json()["faces"] == TOTAL - len(ids)
    lines = AuditLog.in_data_dir(people_index).read()
    assert lines[-1]["path"] == "/api/v1/erasures" and lines[-1]["results"] == len(ids)
    assert lines[-1]["face_ids"] == ids and len(lines[-1]["query"]) == 1
    bad = client.post("/api/v1/erasures", json={})
    assert bad.status_code == 422 and bad.get_json()["error"]["code"] == "invalid_request"


def test_erasure_needs_an_admin_key_and_waits_for_no_reindex(people_index: Path):
    client = client_of(people_index, api_keys=["erasure-admin-key"], read_keys=["erasure-read-key-1"])
    assert client.delete("/api/v1/faces/1", headers={"X-API-Key": "erasure-read-key-1"}).status_code == 403
    assert client.post("/api/v1/erasures", json={"face_ids": [1]},
                       headers={"X-API-Key": "erasure-read-key-1"}).status_code == 403
    with IndexLock(people_index, command="facesearch index /photos"):
        busy = client.delete("/api/v1/faces/1", headers={"X-API-Key": "erasure-admin-key"})
    assert busy.status_code == 409 and busy.get_json()["error"]["code"] == "index_busy"
    assert client.get("/api/v1/faces/1", headers={"X-API-Key": "erasure-admin-key"}).status_code == 200
    assert client.delete("/api/v1/faces/1", headers={"X-API-Key": "erasure-admin-key"}).get_json()["faces_erased"] == 1


def faces_of(data_dir: Path) -> dict[str, int]:
    store = published_store(data_dir)
    try:
        ids = store.all_embeddings()[0].tolist()
        counts: dict[str, int] = {}
        for record in store.faces(ids).values():
            counts[Path(record.path).name] = counts.get(Path(record.path).name, 0) + 1
        assert store.count() == len(ids)
        return counts
    finally:
        store.close()


def test_reindexing_does_not_bring_erased_faces_back(fake_model, settings, photos: Path):
    fake_model.faces_per_image = 2
    index_paths([photos], settings, progress=False, model=fake_model)
    index_paths([photos], settings, progress=False, full=True, model=fake_model)  # two generations on disk
    before = faces_of(settings.data_dir)
    target = sorted(photos.rglob("*.jpg"))[0]
    store = published_store(settings.data_dir)
    erased_id = min(i for i, r in store.faces(store.all_embeddings()[0].tolist()).items() if r.path == str(target))
    store.close()
    client = client_of(settings.data_dir, model=fake_model)
    assert client.delete(f"/api/v1/faces/{erased_id}").get_json()["face_ids"] == [erased_id]
    expected = {**before, target.name: 1}
    assert faces_of(settings.data_dir) == expected
    assert len(list((settings.data_dir / GENERATIONS_DIR).iterdir())) == 1

    assert not index_paths([photos], settings, progress=False, model=fake_model).published  # nothing changed
    os.utime(target, ns=(1, 1))  # touched: hashed, same content, not re-encoded
    index_paths([photos], settings, progress=False, model=fake_model)
    assert faces_of(settings.data_dir) == expected
    report = index_paths([photos], settings, progress=False, full=True,
                         model=fake_model)  # re-encoded: the erased face stays out
    assert report.faces_added == sum(expected.values())
    assert faces_of(settings.data_dir) == expected
    assert generations.current_name(settings.data_dir) == report.generation


def test_cli_erase_by_person_with_dry_run_and_confirmation(runner, people_index: Path):
    client = client_of(people_index)
    ids = anna_ids(client)
    name_cluster_of(client, ids[0], "Anna")
    dry = runner.invoke(main, ["erase", "--data-dir", str(people_index), "--person", "anna", "--dry-run", "--json"])
    assert dry.exit_code == 0, dry.output
    assert json.loads(dry.stdout.strip().splitlines()[-1])["face_ids"] == ids
    refused = runner.invoke(main, ["erase", "--data-dir", str(people_index), "--person", "Anna"], input="n\n")
    assert refused.exit_code != 0 and "nothing erased" in refused.output
    assert faces_left(people_index) == TOTAL
    done = runner.invoke(main, ["erase", "--data-dir", str(people_index), "--person", "Anna", "--yes", "--json"])
    assert done.exit_code == 0, done.output
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["face_ids"] == ids and report["person_forgotten"]
    assert faces_left(people_index) == TOTAL - len(ids)
    assert AuditLog.in_data_dir(people_index).read()[-1]["key"] == "cli"
    missing = runner.invoke(main, ["erase", "--data-dir", str(people_index), "--person", "nobody"])
    assert missing.exit_code != 0 and "no person called" in missing.output
    nothing = runner.invoke(main, ["erase", "--data-dir", str(people_index)])
    assert nothing.exit_code != 0 and "say what to erase" in nothing.output


def faces_left(data_dir: Path) -> int:
    store = published_store(data_dir)
    try:
        return store.count()
    finally:
        store.close()


def test_erasure_discards_a_killed_reindex_that_holds_the_faces(fake_model, settings, photos: Path):
    index_paths([photos], settings, progress=False, model=fake_model)
    wip = generations.begin(settings.data_dir, full=False, key={"roots": ["x"]})  # left by a killed run
    assert wip.path.exists()
    client = client_of(settings.data_dir, model=fake_model)
    assert client.delete("/api/v1/faces/1").get_json()["faces_erased"] == 1
    assert not wip.path.exists()
    names = [p.name for p in (settings.data_dir / GENERATIONS_DIR).iterdir()]
    assert names == [generations.current_name(settings.data_dir)]


@pytest.mark.parametrize("body", [{"face_ids": [1], "max_distance": 0}, {"embeddings": [[0.0] * 3]},
                                  {"face_ids": [1], "extra": 1}])
def test_bad_erasure_requests_are_422(people_client, body):
    response = people_client.post("/api/v1/erasures", json=body)
    assert response.status_code == 422 and response.get_json()["error"]["code"] == "invalid_request"
    assert people_client.get("/api/v1/health").get_json()["faces"] == TOTAL
