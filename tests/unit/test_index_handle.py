"""The service switches to each newly published index generation by itself
(``application.index_handle``), and ``GET /api/v1/index`` reports it."""

import threading
from pathlib import Path

import pytest

from application.index_handle import IndexHandle
from config.settings import load_settings
from indexer.indexing import IndexReport
from indexer.store import StoreError
from indexer.store.atomic import atomic_write_bytes
from indexer.store.generations import CURRENT_FILE, GENERATIONS_DIR
from indexer.store.runs import append_run
from service import create_app
from tests.helpers import PEOPLE_SIZES, person_faces, put_person, store_at


def build_generation(data_dir: Path, name: str, people: dict[str, int]) -> Path:
    """A generation directory of one-face photos of ``people`` (as a reindex
    would leave it), not yet published."""
    path = data_dir / GENERATIONS_DIR / name
    store = store_at(path)
    for person, n in people.items():
        put_person(store, person, n)
    store.checkpoint()
    store.close()
    return path


def publish(data_dir: Path, name: str) -> None:
    atomic_write_bytes(data_dir / CURRENT_FILE, f"{name}\n".encode())


def nearest_path(client, person: str) -> str:
    vector = person_faces(person, 1)[0].tolist()
    response = client.post("/api/v1/search", json={"embedding": vector, "k": 1})
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()["faces"][0]["matches"][0]["path"]


@pytest.fixture
def two_generations(data_dir: Path) -> Path:
    """g000001 (published): anna and ben; g000002 (built, not published):
    the same plus eve."""
    build_generation(data_dir, "g000001", {"anna": 3, "ben": 2})
    build_generation(data_dir, "g000002", {"anna": 3, "ben": 2, "eve": 4})
    publish(data_dir, "g000001")
    return data_dir


def app_of(data_dir: Path, **settings):
    app = create_app(load_settings(data_dir=data_dir, service={"reload_check_s": 0}, **settings))
    app.config["TESTING"] = True
    return app


def test_requests_see_a_newly_published_generation(two_generations: Path):
    client = app_of(two_generations).test_client()
    assert client.get("/api/v1/health").get_json()["faces"] == 5
    assert not nearest_path(client, "eve").startswith("/photos/eve/")

    publish(two_generations, "g000002")
    health = client.get("/api/v1/health").get_json()
    assert health["faces"] == 9 and health["warning"] is None
    assert nearest_path(client, "eve").startswith("/photos/eve/")
    assert client.get("/api/v1/index").get_json()["generation"] == "g000002"


def test_current_is_checked_at_most_every_reload_check_s(two_generations: Path):
    now = [100.0]
    handle = IndexHandle.open(
        two_generations, check_every_s=5.0, default_detection=load_settings().detection, clock=lambda: now[0]
    )
    first = handle.current()
    publish(two_generations, "g000002")
    now[0] += 4.9
    assert handle.current() is first
    now[0] += 0.1
    assert handle.current().generation == "g000002" and handle.current().store.count() == 9


def test_a_request_in_flight_keeps_its_generation(two_generations: Path, monkeypatch: pytest.MonkeyPatch):
    app = app_of(two_generations)
    old = app.extensions["facesearch"].index.current().store
    searching, release = threading.Event(), threading.Event()
    search = old.search

    def slow_search(x, k, exact=False):
        searching.set()
        assert release.wait(10)
        return search(x, k, exact=exact)

    monkeypatch.setattr(old, "search", slow_search)
    results = []
    vector = person_faces("anna", 1)[0].tolist()
    in_flight = threading.Thread(
        target=lambda: results.append(app.test_client().post("/api/v1/search", json={"embedding": vector, "k": 9}))
    )
    in_flight.start()
    assert searching.wait(10)

    publish(two_generations, "g000002")  # switched while the search runs
    assert app.test_client().get("/api/v1/health").get_json()["faces"] == 9
    release.set()
    in_flight.join(10)

    response = results[0]
    assert response.status_code == 200, response.get_data(as_text=True)
    matches = response.get_json()["faces"][0]["matches"]
    assert len(matches) == 5  # all of the old generation (k = 9), its metadata still readable
    assert not any(m["path"].startswith("/photos/eve/") for m in matches)


def test_a_request_takes_the_generation_once(two_generations: Path):
    from service.api import served

    app = app_of(two_generations)
    with app.test_request_context("/api/v1/search"):
        first = served()
        publish(two_generations, "g000002")
        assert served() is first and first.generation == "g000001"
    with app.test_request_context("/api/v1/search"):
        assert served().generation == "g000002"


def test_a_damaged_generation_keeps_the_served_one_and_warns(two_generations: Path):
    client = app_of(two_generations).test_client()
    (two_generations / GENERATIONS_DIR / "g000002" / "faces.faiss").write_bytes(b"garbage")
    publish(two_generations, "g000002")

    for _ in range(2):  # retried at every check, still served meanwhile
        health = client.get("/api/v1/health").get_json()
        assert health["faces"] == 5
        assert "g000002" in health["warning"] and "g000001" in health["warning"]
    assert nearest_path(client, "anna").startswith("/photos/anna/")

    build_generation(two_generations, "g000003", {"anna": 3, "ben": 2, "eve": 4})
    publish(two_generations, "g000003")  # the next reindex repairs it
    health = client.get("/api/v1/health").get_json()
    assert health["faces"] == 9 and health["warning"] is None


def test_an_unreadable_current_file_keeps_the_served_generation(two_generations: Path):
    client = app_of(two_generations).test_client()
    (two_generations / CURRENT_FILE).write_text("garbage\n")
    health = client.get("/api/v1/health").get_json()
    assert health["faces"] == 5 and "CURRENT" in health["warning"]


def test_a_first_layout_directory_is_served_then_its_first_generation(people_index: Path):
    client = app_of(people_index).test_client()
    faces = sum(PEOPLE_SIZES.values()) + 1
    assert client.get("/api/v1/index").get_json()["generation"] is None

    build_generation(people_index, "g000001", {**PEOPLE_SIZES, "stranger": 1, "eve": 4})
    publish(people_index, "g000001")
    body = client.get("/api/v1/index").get_json()
    assert (body["generation"], body["faces"]) == ("g000001", faces + 4)


def test_no_published_index_fails_at_start(data_dir: Path):
    with pytest.raises(StoreError, match="facesearch index"):
        app_of(data_dir)


def run_record(**overrides) -> dict:
    """A line of runs.jsonl as ``index_paths`` writes it."""
    report = IndexReport(images_seen=12, images_indexed=3, images_removed=1, images_moved=2, faces_added=4,
                         faces_removed=1, faces_total=9, photos_total=9, duration_s=1.5, generation="g000002",
                         published=True)
    return {"started_at": "2024-05-01T10:00:00+00:00", "finished_at": "2024-05-01T10:00:02+00:00",
            **report.to_dict(), **overrides}


def test_index_endpoint_reports_the_generation_and_the_last_run(two_generations: Path):
    client = app_of(two_generations).test_client()
    body = client.get("/api/v1/index").get_json()
    manifest = store_at(two_generations / GENERATIONS_DIR / "g000001", readonly=True).manifest
    assert body == {
        "faces": 5, "photos": 5, "generation": "g000001", "published_at": manifest["updated_at"],
        "model": manifest["model"], "detector": None, "index_type": manifest["index_type"], "search": "exact",
        "last_run": None,
    }

    errors = [{"path": f"/photos/bad/{i}.jpg", "error": "cannot decode the image"} for i in range(7)]
    append_run(two_generations, run_record(generation="g000001", published=False))
    append_run(two_generations, run_record(errors=errors))
    publish(two_generations, "g000002")
    body = client.get("/api/v1/index").get_json()
    assert (body["generation"], body["faces"], body["photos"]) == ("g000002", 9, 9)
    assert body["last_run"] == {
        "started_at": "2024-05-01T10:00:00+00:00", "finished_at": "2024-05-01T10:00:02+00:00", "duration_s": 1.5,
        "published": True, "generation": "g000002", "images_seen": 12, "images_indexed": 3, "images_removed": 1,
        "images_moved": 2, "faces_added": 4, "faces_removed": 1, "errors": 7, "error_samples": errors[:5],
    }


def test_index_endpoint_needs_the_api_key_and_is_documented(two_generations: Path):
    client = app_of(two_generations, api_keys=["cluster-admin-key-1"]).test_client()
    assert client.get("/api/v1/index").status_code == 401
    assert client.get("/api/v1/index", headers={"X-API-Key": "cluster-admin-key-1"}).status_code == 200
    doc = client.get("/api/v1/openapi.json", headers={"X-API-Key": "cluster-admin-key-1"}).get_json()
    assert doc["paths"]["/api/v1/index"]["get"]["security"] == [{"apiKey": []}]
    assert set(doc["components"]["schemas"]["IndexResponse"]["properties"]) == {
        "faces", "photos", "generation", "published_at", "model", "detector", "index_type", "search", "last_run",
    }
