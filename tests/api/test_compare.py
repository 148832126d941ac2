"""``GET /api/v1/faces/<a>/compare/<b>`` (JSON and ``.png``) over the real
index of tests/data: the stored distance, maps over both chips that agree
with it, and the errors."""

from __future__ import annotations

import io
import shutil

import numpy as np
from PIL import Image

from config.settings import load_settings
from indexer.indexing import index_paths
from tests.helpers import DATA, FakeModel, assert_error, client_of


def face_of(client, name: str) -> int:
    for face_id in range(1, 200):
        response = client.get(f"/api/v1/faces/{face_id}")
        if response.status_code == 200 and response.get_json()["path"].endswith(name):
            return face_id
    raise AssertionError(name)


def test_compare_two_faces(client):
    a, b = face_of(client, "Tony_Blair_0001.jpg"), face_of(client, "Tony_Blair_0002.jpg")
    body = client.get(f"/api/v1/faces/{a}/compare/{b}").get_json()
    assert (body["face_a"], body["face_b"], body["grid"]) == (a, b, 10)
    # The distance is the stored embeddings'; the chips cut again from the files encode the same.
    assert body["distance"] < 0.6 and abs(body["chip_distance"] - body["distance"]) < 1e-3
    for side in ("map_a", "map_b"):
        cells = np.array(body[side])
        assert cells.shape == (10, 10) and np.abs(cells).max() > 0.005
    assert body["alike"] and all(c["change"] > 0 for c in body["alike"])
    assert all(c["change"] < 0 for c in body["different"])
    assert body["alike"][0]["change"] == max(max(max(r) for r in body["map_a"]), max(max(r) for r in body["map_b"]))
    # Compared the other way round, the maps swap sides.
    back = client.get(f"/api/v1/faces/{b}/compare/{a}").get_json()
    assert np.allclose(back["map_a"], body["map_b"], atol=1e-3) and back["distance"] == body["distance"]


def test_compare_picture(client):
    a, b = face_of(client, "Colin_Powell_0001.jpg"), face_of(client, "Serena_Williams_0001.jpg")
    response = client.get(f"/api/v1/faces/{a}/compare/{b}.png")
    assert response.status_code == 200 and response.mimetype == "image/png"
    with Image.open(io.BytesIO(response.data)) as picture:
        assert picture.width > 600 and picture.height > 300


def test_compare_errors(client):
    a = face_of(client, "Colin_Powell_0001.jpg")
    assert_error(client.get(f"/api/v1/faces/{a}/compare/99999"), 404, "face_not_found")
    assert_error(client.get(f"/api/v1/faces/99999/compare/{a}.png"), 404, "face_not_found")


def test_compare_a_file_changed_since_indexing(tmp_path):
    """With the fake model: a pair compares; once one photo changes on
    disk, 404 ``photo_unavailable``, never the new pixels."""
    photos = tmp_path / "photos"
    shutil.copytree(DATA / "lfw" / "Tony_Blair", photos)
    data_dir = tmp_path / "index"
    model = FakeModel()
    index_paths([photos], load_settings(data_dir=data_dir, indexer={"workers": 1}), progress=False, model=model)
    client = client_of(data_dir, model=model)
    first, second = face_of(client, "Tony_Blair_0001.jpg"), face_of(client, "Tony_Blair_0002.jpg")
    assert client.get(f"/api/v1/faces/{first}/compare/{second}").status_code == 200
    (photos / "Tony_Blair_0001.jpg").write_bytes((photos / "Tony_Blair_0003.jpg").read_bytes())
    assert_error(client.get(f"/api/v1/faces/{first}/compare/{second}"), 404, "photo_unavailable")
    assert_error(client.get(f"/api/v1/faces/{second}/compare/{first}.png"), 404, "photo_unavailable")
