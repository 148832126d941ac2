"""A face drawn by hand on a photo: encoded like the indexer's own, added
beside the photo's other faces (their ids kept), named there, kept across
reindexing (``--full`` included) with its name, taken back on request, and
never brought back once erased."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from config.settings import load_settings
from indexer.indexing import index_paths
from tests.helpers import DATA, assert_error, client_of, fake_vector, photo_id_of, published_store

pytestmark = pytest.mark.usefixtures("backend")  # every test on FAISS and on Milvus Lite

# The fake detector finds one face filling each photo; the drawn box is a
# corner of it (IoU 0.08: another face).
BOX = {"top": 10, "right": 80, "bottom": 80, "left": 10}


@pytest.fixture
def album(tmp_path: Path, fake_model) -> tuple[Path, Path]:
    """Two LFW photos indexed with the fake model: (photos, data dir)."""
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("Tony_Blair_0001.jpg", "Tony_Blair_0002.jpg"):
        (photos / name).write_bytes((DATA / "lfw" / "Tony_Blair" / name).read_bytes())
    data_dir = tmp_path / "index"
    index_paths([photos], load_settings(data_dir=data_dir, indexer={"workers": 1}), progress=False,
                model=fake_model)
    return photos, data_dir


def reindex(photos: Path, data_dir: Path, fake_model, *, full: bool) -> None:
    report = index_paths([photos], load_settings(data_dir=data_dir, indexer={"workers": 1}), full=full,
                         progress=False, model=fake_model)
    assert report.errors == []


def first_photo(client, photos: Path) -> dict:
    """The first photo, as the API gives it (its id changes when --full re-encodes it)."""
    data_dir = Path(client.application.extensions["facesearch"].settings.data_dir)
    photo_id = photo_id_of(data_dir, (photos / "Tony_Blair_0001.jpg").resolve())
    return client.get(f"/api/v1/photos/{photo_id}").get_json()


def drawn_vector() -> np.ndarray:
    """What the fake encoder makes of the drawn box's pixels."""
    rgb = np.asarray(Image.open(DATA / "lfw" / "Tony_Blair" / "Tony_Blair_0001.jpg").convert("RGB"))
    return fake_vector(np.ascontiguousarray(rgb[10:80, 10:80]).tobytes())


def test_a_drawn_face_is_encoded_named_and_kept_across_reindexing(album, fake_model):
    photos, data_dir = album
    client = client_of(data_dir, model=fake_model)
    photo = first_photo(client, photos)
    (found,) = photo["faces"]

    response = client.post(f"/api/v1/photos/{photo['photo_id']}/faces", json={"box": BOX, "name": "Zoe"})
    assert response.status_code == 201, response.get_json()
    drawn = response.get_json()
    assert drawn["box"] == BOX and drawn["person"]["name"] == "Zoe" and drawn["rev"] is not None
    after = client.get(f"/api/v1/photos/{photo['photo_id']}").get_json()
    assert [f["face_id"] for f in after["faces"]] == [found["face_id"], drawn["face_id"]]  # the other keeps its id
    assert after["faces"][1]["person"] == "Zoe" and after["faces"][1]["person_source"] == "confirmed"
    # Encoded from the file at the box, as the indexer encodes: a search by it finds it first.
    hits = client.post("/api/v1/search", json={"embedding": drawn_vector().tolist(), "k": 1}).get_json()["faces"][0]
    assert hits["matches"][0]["face_id"] == drawn["face_id"] and hits["matches"][0]["distance"] < 1e-3

    reindex(photos, data_dir, fake_model, full=False)  # unchanged: the face and its id stay
    assert drawn["face_id"] in {f["face_id"] for f in client.get(f"/api/v1/photos/{photo['photo_id']}")
                                .get_json()["faces"]}
    reindex(photos, data_dir, fake_model, full=True)  # every face re-encoded with a new id: the drawn one too
    client = client_of(data_dir, model=fake_model)
    again = first_photo(client, photos)
    boxes = {tuple(f["box"].values()): f for f in again["faces"]}
    kept = boxes[tuple(BOX.values())]
    assert kept["face_id"] != drawn["face_id"] and kept["person"] == "Zoe"
    assert len(again["faces"]) == 2


def test_boxes_that_cannot_be_a_new_face_are_refused(album, fake_model):
    photos, data_dir = album
    client = client_of(data_dir, model=fake_model)
    photo = first_photo(client, photos)
    url = f"/api/v1/photos/{photo['photo_id']}/faces"
    assert_error(client.post(url, json={"box": {"top": 0, "right": 900, "bottom": 50, "left": 0}}), 422)
    assert_error(client.post(url, json={"box": {"top": 0, "right": 5, "bottom": 5, "left": 0}}), 422)
    assert_error(client.post(url, json={"box": photo["faces"][0]["box"]}), 409, "face_exists")
    assert_error(client.post(url, json={"box": BOX, "extra": 1}), 422)
    assert_error(client.post("/api/v1/photos/999999/faces", json={"box": BOX}), 404, "photo_not_found")
    assert client.post(url, json={"box": BOX}).status_code == 201
    assert_error(client.post(url, json={"box": BOX}), 409, "face_exists")  # drawn already


def test_a_drawn_face_taken_back_or_erased(album, fake_model):
    photos, data_dir = album
    client = client_of(data_dir, model=fake_model)
    photo = first_photo(client, photos)
    url = f"/api/v1/photos/{photo['photo_id']}/faces"
    found = photo["faces"][0]["face_id"]
    assert_error(client.delete(f"{url}/{found}"), 409, "face_not_drawn")

    face_id = client.post(url, json={"box": BOX}).get_json()["face_id"]
    assert client.delete(f"{url}/{face_id}").status_code == 204
    assert [f["face_id"] for f in client.get(f"/api/v1/photos/{photo['photo_id']}").get_json()["faces"]] == [found]
    reindex(photos, data_dir, fake_model, full=True)
    client = client_of(data_dir, model=fake_model)
    photo = first_photo(client, photos)
    assert len(photo["faces"]) == 1  # taken back: forgotten
    url = f"/api/v1/photos/{photo['photo_id']}/faces"

    face_id = client.post(url, json={"box": BOX}).get_json()["face_id"]  # drawing it again is allowed
    assert client.post("/api/v1/erasures", json={"face_ids": [face_id]}).status_code == 200
    reindex(photos, data_dir, fake_model, full=True)
    client = client_of(data_dir, model=fake_model)
    photo = first_photo(client, photos)
    assert len(photo["faces"]) == 1  # erased: never back
    assert_error(client.post(f"/api/v1/photos/{photo['photo_id']}/faces", json={"box": BOX}), 409,
                 "face_not_added")
    store = published_store(data_dir)
    try:
        assert store.count() == 2
    finally:
        store.close()


def test_drawing_needs_an_administrator_key(album, fake_model):
    photos, data_dir = album
    client = client_of(data_dir, model=fake_model, api_keys=["admin-key-0000001"], read_keys=["read-key-00000001"])
    photo = client.get("/api/v1/health", headers={"X-API-Key": "read-key-00000001"})
    assert photo.status_code == 200
    response = client.post("/api/v1/photos/1/faces", json={"box": BOX}, headers={"X-API-Key": "read-key-00000001"})
    assert_error(response, 403)


def test_a_drawn_face_the_detector_finds_later_is_not_added_twice(album, fake_model):
    photos, data_dir = album
    client = client_of(data_dir, model=fake_model)
    photo = first_photo(client, photos)
    left_half = {"top": 0, "right": 120, "bottom": 250, "left": 0}  # IoU 0.48 with the face filling the photo
    assert client.post(f"/api/v1/photos/{photo['photo_id']}/faces",
                       json={"box": left_half, "name": "Zoe"}).status_code == 201
    fake_model.faces_per_image = 2  # a better detector: the two halves of each photo
    reindex(photos, data_dir, fake_model, full=True)
    photo = first_photo(client_of(data_dir, model=fake_model), photos)
    assert [(f["box"]["left"], f["box"]["right"], f["person"]) for f in photo["faces"]] == [
        (0, 125, "Zoe"), (125, 250, None)]  # found now: the name went to the found face
