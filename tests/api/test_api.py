"""Every endpoint and error path through Flask's test client, over
``tests/data`` indexed with the real model."""

import io
import math

import numpy as np
import pytest
from PIL import Image

from config.settings import load_settings
from service import create_app
from tests.helpers import DATA, assert_error, lfw_photo, published_store

pytestmark = pytest.mark.model


def upload(client, data: bytes, filename: str = "q.jpg", **fields):
    return client.post("/api/v1/search", data={"image": (io.BytesIO(data), filename), **fields},
                       content_type="multipart/form-data")




def an_embedding(real_index) -> list[float]:
    store = published_store(real_index)
    ids, x = next(store.db.iter_embeddings())
    return x[0].tolist()


def test_health(client):
    body = client.get("/api/v1/health").get_json()
    assert body["status"] == "ok" and body["faces"] >= 20


def test_search_by_photo_finds_the_same_person_first(client):
    response = upload(client, lfw_photo("Tony_Blair", 2).read_bytes(), k="4")
    assert response.status_code == 200
    faces = response.get_json()["faces"]
    assert len(faces) == 1 and set(faces[0]["box"]) == {"top", "right", "bottom", "left"}
    matches = faces[0]["matches"]
    assert len(matches) == 4
    assert [m["distance"] for m in matches] == sorted(m["distance"] for m in matches)
    assert matches[0]["distance"] < 1e-3 and matches[0]["path"].endswith("Tony_Blair_0002.jpg")
    # The other two photos of the same man come next, before anybody else.
    assert {m["path"].rsplit("/", 1)[-1] for m in matches[1:3]} == {"Tony_Blair_0001.jpg", "Tony_Blair_0003.jpg"}
    assert {"face_id", "distance", "path", "box"} <= set(matches[0])


def test_search_by_group_photo_gives_one_entry_per_face_largest_first(client):
    faces = upload(client, (DATA / "group" / "bbt3.jpg").read_bytes()).get_json()["faces"]
    assert len(faces) >= 4
    areas = [(f["box"]["bottom"] - f["box"]["top"]) * (f["box"]["right"] - f["box"]["left"]) for f in faces]
    assert areas == sorted(areas, reverse=True)
    assert all(f["matches"][0]["distance"] < 1e-3 for f in faces)  # each finds itself


def test_photo_without_a_face_gives_no_faces(client):
    response = upload(client, (DATA / "blank" / "white.png").read_bytes(), filename="white.png")
    assert response.status_code == 200 and response.get_json() == {"faces": []}


def test_max_distance_is_euclidean_and_filters(client):
    data = lfw_photo("Serena_Williams", 1).read_bytes()
    everything = upload(client, data, k="30").get_json()["faces"][0]["matches"]
    near = upload(client, data, k="30", max_distance="0.6").get_json()["faces"][0]["matches"]
    assert near == [m for m in everything if m["distance"] <= 0.6]
    assert {m["path"].rsplit("/", 2)[-2] for m in near} == {"Serena_Williams"}


def test_search_by_embedding(client, real_index):
    vec = an_embedding(real_index)
    response = client.post("/api/v1/search", json={"embedding": vec, "k": 3})
    assert response.status_code == 200
    faces = response.get_json()["faces"]
    assert len(faces) == 1 and faces[0]["box"] is None
    assert len(faces[0]["matches"]) == 3 and faces[0]["matches"][0]["distance"] < 1e-3
    far = np.asarray(vec) + 10.0
    assert client.post("/api/v1/search", json={"embedding": far.tolist(), "max_distance": 0.6}).get_json() == {
        "faces": [{"box": None, "matches": []}]
    }


def test_default_k_and_k_larger_than_the_index(client, real_index):
    vec = an_embedding(real_index)
    assert len(client.post("/api/v1/search", json={"embedding": vec}).get_json()["faces"][0]["matches"]) == 10
    everything = client.post("/api/v1/search", json={"embedding": vec, "k": 1000}).get_json()["faces"][0]["matches"]
    assert len(everything) == client.get("/api/v1/health").get_json()["faces"]


def test_face_and_thumbnail(client):
    match = upload(client, lfw_photo("Colin_Powell", 3).read_bytes(), k="1").get_json()["faces"][0]["matches"][0]
    face = client.get(f"/api/v1/faces/{match['face_id']}").get_json()
    assert face["face_id"] == match["face_id"] and face["path"] == match["path"] and face["box"] == match["box"]
    assert face["image"] == {"width": 250, "height": 250}
    thumb = client.get(f"/api/v1/faces/{match['face_id']}/thumbnail")
    assert thumb.status_code == 200 and thumb.mimetype == "image/jpeg"
    image = Image.open(io.BytesIO(thumb.data))
    assert image.format == "JPEG" and max(image.size) <= 160


@pytest.mark.parametrize("url", ["/api/v1/faces/999999", "/api/v1/faces/999999/thumbnail"])
def test_unknown_face_is_404(client, url):
    assert_error(client.get(url), 404, "face_not_found")


def test_unknown_route_and_wrong_method(client):
    assert_error(client.get("/api/v1/nothing"), 404, "not_found")
    error = client.get("/api/v1/search")
    assert_error(error, 405, "method_not_allowed")
    assert "POST" in error.headers["Allow"]


@pytest.mark.parametrize(
    "data, filename, status, code",
    [
        (b"", "empty.jpg", 400, "empty_image"),
        (b"just some text", "notes.txt", 415, "unsupported_image_format"),
        (lfw_photo("Tony_Blair", 1).read_bytes()[:800], "cut.jpg", 400, "invalid_image"),
    ],
)
def test_bad_uploads(client, data, filename, status, code):
    assert_error(upload(client, data, filename), status, code)


def test_missing_image_field(client):
    response = client.post("/api/v1/search", data={"k": "3"}, content_type="multipart/form-data")
    assert_error(response, 400, "missing_image")


@pytest.mark.parametrize("k", ["0", "-1", "abc", "1.5", "1001"])
def test_bad_k_in_a_form(client, k):
    assert_error(upload(client, lfw_photo("Tony_Blair", 1).read_bytes(), k=k), 422, "invalid_request")


@pytest.mark.parametrize(
    "body",
    [
        {"embedding": [0.1] * 127},
        {"embedding": [0.1] * 129},
        {"embedding": ["x"] * 128},
        {"embedding": [0.1] * 127 + [math.nan]},
        {"embedding": [0.1] * 128, "k": 0},
        {"embedding": [0.1] * 128, "max_distance": -0.5},
        {"embedding": [0.1] * 128, "surprise": 1},
        {"k": 3},
        [0.1, 0.2],
    ],
)
def test_bad_json_bodies_are_422(client, body):
    assert_error(client.post("/api/v1/search", json=body), 422, "invalid_request")


def test_nan_literal_and_malformed_json(client):
    nan_body = "{\"embedding\": [" + ", ".join(["NaN"] * 128) + "]}"
    assert_error(client.post("/api/v1/search", data=nan_body, content_type="application/json"), 422)
    assert_error(client.post("/api/v1/search", data="{oops", content_type="application/json"), 400, "invalid_json")


def test_other_content_types_are_415(client):
    assert_error(client.post("/api/v1/search", data=b"raw", content_type="image/jpeg"), 415, "unsupported_media_type")


def test_oversized_upload_is_413(real_index):
    app = create_app(load_settings(data_dir=real_index, service={"max_upload_mb": 0.01}))
    error = assert_error(upload(app.test_client(), b"\xff" * 20_000), 413, "payload_too_large")
    assert "10,485 bytes" in error["message"]


def test_unexpected_failure_is_a_json_500(app, monkeypatch):
    import service.api

    def explode(*_args, **_kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(service.api, "search_by_embedding", explode)
    error = assert_error(app.test_client().post("/api/v1/search", json={"embedding": [0.0] * 128}),
                         500, "internal_error")
    assert "boom" not in error["message"]


def test_api_keys_guard_everything_but_health(real_index):
    app = create_app(load_settings(data_dir=real_index, api_keys=["secret-key-0000001", "secret-key-0000002"]))
    client = app.test_client()
    assert client.get("/api/v1/health").status_code == 200
    assert_error(client.get("/api/v1/faces/1"), 401, "unauthorized")
    assert_error(client.get("/api/v1/faces/1", headers={"X-API-Key": "wrong"}), 401, "unauthorized")
    assert client.get("/api/v1/faces/1", headers={"X-API-Key": "secret-key-0000002"}).status_code == 200


def test_openapi_document_describes_the_endpoints(client):
    doc = client.get("/api/v1/openapi.json").get_json()
    assert doc["openapi"].startswith("3.")
    for path in ["/api/v1/health", "/api/v1/search", "/api/v1/faces/{face_id}", "/api/v1/faces/{face_id}/thumbnail"]:
        assert path in doc["paths"]
    schemas = doc["components"]["schemas"]
    refs = []

    def collect(node):
        if isinstance(node, dict):
            refs.extend(v for k, v in node.items() if k == "$ref")
            for v in node.values():
                collect(v)
        elif isinstance(node, list):
            for v in node:
                collect(v)

    collect(doc)
    assert refs and all(ref.rsplit("/", 1)[-1] in schemas for ref in refs)
    assert schemas["EmbeddingSearchRequest"]["properties"]["embedding"]["minItems"] == 128
