"""POST /api/v1/recall: range search against brute force, several probes,
paging, filters, grouping by source (photos and video tracks) and every
bad request."""

import io

import numpy as np
import pytest
from PIL import Image

from config.settings import load_settings
from indexer.indexing import index_paths
from indexer.model import Box
from indexer.store import FileRecord
from indexer.store.metadata import FaceTime, NewFace
from service import create_app
from tests.helpers import PEOPLE_SIZES, assert_error, person_faces, published_store, store_at

pytestmark = pytest.mark.usefixtures("backend")  # every test on FAISS and on Milvus Lite


def embeddings_of(data_dir) -> tuple[np.ndarray, list[str]]:
    store = published_store(data_dir)
    try:
        ids, _, x = store.all_embeddings()
        records = store.faces(ids.tolist())
    finally:
        store.close()
    return x, [records[int(i)].path for i in ids], ids


def recall(client, **body):
    response = client.post("/api/v1/recall", json=body)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def test_one_probe_finds_every_face_within_the_radius(people_client, people_index):
    probe = person_faces("anna", 1, first=50)[0]  # a new photo of anna
    body = recall(people_client, embeddings=[probe.tolist()], max_distance=0.8)
    x, paths, ids = embeddings_of(people_index)
    dist = np.linalg.norm(x - probe, axis=1)
    expected = sorted((float(d), int(i)) for d, i in zip(dist, ids) if d <= 0.8)
    assert body["total"] == len(expected) == PEOPLE_SIZES["anna"]
    assert [m["face_id"] for m in body["matches"]] == [i for _, i in expected]
    np.testing.assert_allclose([m["distance"] for m in body["matches"]], [d for d, _ in expected], rtol=1e-5)
    assert all("/anna/" in m["path"] and m["timestamp"] is None for m in body["matches"])
    assert body["max_distance"] == 0.8 and body["probes"] == 1


def test_several_probes_count_a_face_near_any_with_its_smallest_distance(people_client, people_index):
    anna, ben = person_faces("anna", 1, first=60)[0], person_faces("ben", 1, first=60)[0]
    body = recall(people_client, embeddings=[anna.tolist(), ben.tolist()], max_distance=0.8, limit=1000)
    assert body["total"] == PEOPLE_SIZES["anna"] + PEOPLE_SIZES["ben"]
    x, _, ids = embeddings_of(people_index)
    smallest = np.minimum(np.linalg.norm(x - anna, axis=1), np.linalg.norm(x - ben, axis=1))
    by_id = dict(zip(ids.tolist(), smallest.tolist()))
    for m in body["matches"]:
        assert m["distance"] == pytest.approx(by_id[m["face_id"]], rel=1e-5)
    distances = [m["distance"] for m in body["matches"]]
    assert distances == sorted(distances)
    mean = recall(people_client, embeddings=[anna.tolist(), ben.tolist()], max_distance=0.8, fusion="mean")
    assert mean["probes"] == 2 and mean["total"] >= body["total"]


def test_paging_keeps_the_total(people_client):
    probes = [person_faces(n, 1, first=70)[0].tolist() for n in PEOPLE_SIZES]
    everything = recall(people_client, embeddings=probes, max_distance=0.8, limit=1000)
    pages = [recall(people_client, embeddings=probes, max_distance=0.8, limit=5, offset=o) for o in range(0, 30, 5)]
    assert all(p["total"] == everything["total"] == sum(PEOPLE_SIZES.values()) for p in pages)
    assert [m["face_id"] for p in pages for m in p["matches"]] == [m["face_id"] for m in everything["matches"]]
    assert len(recall(people_client, embeddings=probes, max_distance=0.8)["matches"]) == everything["total"]


def test_path_prefix_filter(people_client):
    probes = [person_faces(n, 1, first=70)[0].tolist() for n in ("anna", "ben")]
    body = recall(people_client, embeddings=probes, max_distance=0.8, path_prefix="/photos/ben/")
    assert body["total"] == PEOPLE_SIZES["ben"] and all(m["path"].startswith("/photos/ben/") for m in body["matches"])


@pytest.fixture
def camera_index(data_dir):
    """Anna in two photos taken at known times and in one recording with two
    tracks (seconds 2-5 and 20-24 of a recording started at T0)."""
    t0 = 1_700_000_000.0
    vectors = person_faces("anna", 6)
    jpeg = io.BytesIO()
    Image.new("RGB", (8, 8)).save(jpeg, format="JPEG")
    store = store_at(data_dir)
    for i, taken in enumerate((t0 - 3600, t0 + 3600)):
        store.put_file(FileRecord(f"/cams/photos/{i}.jpg", 1, 1, f"p{i}", 100, 100, "{}", "fake", taken_at=taken),
                       [NewFace(Box(1, 5, 5, 1), vectors[i], jpeg.getvalue())])
    video_faces = [
        NewFace(Box(1, 5, 5, 1), vectors[2], jpeg.getvalue(), FaceTime(2.0, 0, 2.0, 5.0)),
        NewFace(Box(1, 5, 5, 1), vectors[3], jpeg.getvalue(), FaceTime(5.0, 0, 2.0, 5.0)),
        NewFace(Box(1, 5, 5, 1), vectors[4], jpeg.getvalue(), FaceTime(21.0, 1, 20.0, 24.0)),
    ]
    store.put_file(FileRecord("/cams/door/rec.mp4", 1, 1, "v", 640, 360, "{}", "fake", taken_at=t0, kind="video",
                              duration_s=30.0), video_faces)
    store.checkpoint()
    store.close()
    client = create_app(load_settings(data_dir=data_dir)).test_client()
    return client, t0, vectors[5]


def test_time_filter_uses_capture_time_and_video_offsets(camera_index):
    client, t0, probe = camera_index
    everything = recall(client, embeddings=[probe.tolist()], max_distance=0.8)
    assert everything["total"] == 5
    video = [m for m in everything["matches"] if m["timestamp"] is not None]
    assert sorted(m["time"] for m in video) == [t0 + 2, t0 + 5, t0 + 21]
    window = recall(client, embeddings=[probe.tolist()], max_distance=0.8, time_from=t0, time_to=t0 + 10)
    assert sorted(m["timestamp"] for m in window["matches"]) == [2.0, 5.0]
    later = recall(client, embeddings=[probe.tolist()], max_distance=0.8, time_from=t0 + 10)
    assert {m["path"] for m in later["matches"]} == {"/cams/door/rec.mp4", "/cams/photos/1.jpg"}
    assert later["total"] == 2


def test_group_by_source_gives_one_entry_per_file_with_video_time_ranges(camera_index):
    client, t0, probe = camera_index
    body = recall(client, embeddings=[probe.tolist()], max_distance=0.8, group_by="source")
    assert body["total"] == 3 and body["matches"] == []
    by_path = {s["path"]: s for s in body["sources"]}
    video = by_path["/cams/door/rec.mp4"]
    assert video["kind"] == "video" and video["hits"] == 3 and video["time_ranges"] == [[2.0, 5.0], [20.0, 24.0]]
    assert by_path["/cams/photos/0.jpg"]["hits"] == 1 and by_path["/cams/photos/0.jpg"]["time_ranges"] is None
    bests = [s["best_distance"] for s in body["sources"]]
    assert bests == sorted(bests)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"embeddings": []}, "invalid_request"),
        ({"embeddings": [[0.1] * 127]}, "invalid_request"),
        ({"embeddings": [[float("nan")] + [0.0] * 127]}, "invalid_request"),
        ({"embeddings": [[0.0] * 128] * 11}, "invalid_request"),
        ({"embeddings": [[0.0] * 128], "max_distance": -1}, "invalid_request"),
        ({"embeddings": [[0.0] * 128], "max_distance": 0}, "invalid_request"),
        ({"embeddings": [[0.0] * 128], "limit": 0}, "invalid_request"),
        ({"embeddings": [[0.0] * 128], "limit": 5000}, "invalid_request"),
        ({"embeddings": [[0.0] * 128], "offset": -1}, "invalid_request"),
        ({"embeddings": [[0.0] * 128], "group_by": "camera"}, "invalid_request"),
        ({"embeddings": [[0.0] * 128], "time_from": 10, "time_to": 5}, "invalid_request"),
        ({"embeddings": [[0.0] * 128], "surprise": 1}, "invalid_request"),
    ],
)
def test_bad_recall_requests_are_422(people_client, body, code):
    assert_error(people_client.post("/api/v1/recall", json=body), 422, code)


def test_too_many_hits_is_refused_with_advice(people_index):
    settings = load_settings(data_dir=people_index, recall={"max_hits": 3})
    client = create_app(settings).test_client()
    probe = person_faces("anna", 1, first=50)[0]
    error = assert_error(client.post("/api/v1/recall", json={"embeddings": [probe.tolist()], "max_distance": 0.8}),
                         422, "too_many_results")
    assert "max_distance" in error["message"]


def test_recall_by_probe_photos(fake_model, settings, photos):
    index_paths([photos], settings, progress=False, model=fake_model)
    client = create_app(settings, model=fake_model).test_client()
    probe = photos / "Tony_Blair" / "Tony_Blair_0001.jpg"
    with open(probe, "rb") as one, open(photos / "Colin_Powell" / "Colin_Powell_0001.jpg", "rb") as two:
        response = client.post("/api/v1/recall", data={"image": [one, two], "max_distance": "0.01"},
                               content_type="multipart/form-data")
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert body["probes"] == 2 and body["total"] == 2  # the fake model: each photo finds itself at distance 0
    assert {m["path"] for m in body["matches"]} == {str(probe), str(photos / "Colin_Powell" / "Colin_Powell_0001.jpg")}


def test_bad_probe_photos(fake_model, settings, photos):
    index_paths([photos], settings, progress=False, model=fake_model)
    client = create_app(settings, model=fake_model).test_client()
    blank = io.BytesIO()
    Image.new("RGB", (64, 64), "white").save(blank, format="PNG")
    blank.seek(0)
    error = assert_error(client.post("/api/v1/recall", data={"image": (blank, "white.png")},
                                     content_type="multipart/form-data"), 422, "no_face")
    assert "probe 1" in error["message"]
    assert_error(client.post("/api/v1/recall", data={"image": (io.BytesIO(b"not an image"), "x.jpg")},
                             content_type="multipart/form-data"), 415)
    assert_error(client.post("/api/v1/recall", data={"max_distance": "0.5"}, content_type="multipart/form-data"),
                 400, "missing_image")
    assert_error(client.post("/api/v1/recall", data=b"x", content_type="text/plain"), 415, "unsupported_media_type")


def test_query_expansion_searches_the_mean_of_the_near_faces_too(people_client, people_index):
    probe = person_faces("anna", 1, first=50)[0]
    x, paths, ids = embeddings_of(people_index)
    anna = np.array(["/anna/" in p for p in paths])
    mean = np.vstack([probe[None], x[anna]]).mean(axis=0)
    radius = float(np.sort(np.linalg.norm(x[anna] - probe, axis=1))[2]) + 1e-4  # only 3 of anna's faces
    plain = recall(people_client, embeddings=[probe.tolist()], max_distance=radius)
    expanded = recall(people_client, embeddings=[probe.tolist()], max_distance=radius, expand=True)
    from_mean = np.linalg.norm(x - mean, axis=1) <= radius
    assert plain["total"] == 3
    expected = set(ids[(np.linalg.norm(x - probe, axis=1) <= radius) | from_mean].tolist())
    assert {m["face_id"] for m in expanded["matches"]} == expected and len(expected) > 3
