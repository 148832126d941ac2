"""Photos by id: the photo with its faces and people, and its downscaled
JPEG, served only while the file on disk is what was indexed (a file
edited, replaced with the same size and time, deleted, or a symlink swapped
is refused); a video gives the frame of a face."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from config.settings import load_settings
from indexer.images import preview_jpeg
from indexer.indexing import index_paths
from indexer.video import open_video
from tests.helpers import A_GAP_B, assert_error, client_of, photo_id_of, published_store, write_video


@pytest.fixture
def indexed(fake_model, photos: Path, data_dir: Path) -> Path:
    index_paths([photos], load_settings(data_dir=data_dir, indexer={"workers": 1}), model=fake_model)
    return photos


def jpeg_of(response) -> Image.Image:
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "image/jpeg"
    image = Image.open(io.BytesIO(response.data))
    assert image.format == "JPEG"
    return image


def test_a_photo_with_its_faces_and_people(fake_model, indexed, data_dir):
    client = client_of(data_dir, model=fake_model)
    path = (indexed / "Tony_Blair" / "Tony_Blair_0001.jpg").resolve()
    photo_id = photo_id_of(data_dir, path)
    face_id = client.get(f"/api/v1/photos/{photo_id}").get_json()["faces"][0]["face_id"]
    assert client.get(f"/api/v1/faces/{face_id}").get_json()["photo_id"] == photo_id
    client.post("/api/v1/people", json={"name": "Tony", "face_ids": [face_id]})
    body = client.get(f"/api/v1/photos/{photo_id}").get_json()
    assert body["photo_id"] == photo_id and body["path"] == str(path) and body["kind"] == "photo"
    assert (body["width"], body["height"]) == (250, 250) and len(body["content_hash"]) == 64
    [face] = body["faces"]
    assert face["face_id"] == face_id and face["person"] == "Tony" and face["person_source"] == "confirmed"
    assert set(face["box"]) == {"top", "right", "bottom", "left"} and face["timestamp"] is None
    assert_error(client.get("/api/v1/photos/9999"), 404, "photo_not_found")


def test_the_image_is_downscaled_and_cached(fake_model, indexed, data_dir):
    client = client_of(data_dir, model=fake_model)
    photo_id = photo_id_of(data_dir, (indexed / "Tony_Blair" / "Tony_Blair_0001.jpg").resolve())
    full = jpeg_of(client.get(f"/api/v1/photos/{photo_id}/image"))
    assert full.size == (250, 250)  # never enlarged past the photo
    small = client.get(f"/api/v1/photos/{photo_id}/image?max_side=100")
    assert max(jpeg_of(small).size) == 100 and small.headers["Cache-Control"].startswith("private")
    again = client.get(f"/api/v1/photos/{photo_id}/image?max_side=100",
                       headers={"If-None-Match": small.headers["ETag"]})
    assert again.status_code == 304
    assert_error(client.get(f"/api/v1/photos/{photo_id}/image?max_side=5"), 422, "invalid_request")
    assert_error(client.get(f"/api/v1/photos/{photo_id}/image?face_id=9999"), 404, "photo_not_found")


def test_a_changed_file_is_not_served(fake_model, indexed, data_dir):
    client = client_of(data_dir, model=fake_model)
    path = (indexed / "Tony_Blair" / "Tony_Blair_0001.jpg").resolve()
    photo_id = photo_id_of(data_dir, path)
    url = f"/api/v1/photos/{photo_id}/image"
    original, stat = path.read_bytes(), path.stat()
    # Edited: another size.
    path.write_bytes(original + b"\0")
    assert "changed" in assert_error(client.get(url), 404, "photo_unavailable")["message"]
    # Replaced by other bytes of the same size, its time set back: the content hash tells.
    other = bytearray(original)
    other[-3] ^= 0xFF
    path.write_bytes(bytes(other))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert path.stat().st_size == stat.st_size and path.stat().st_mtime_ns == stat.st_mtime_ns
    assert "content differs" in assert_error(client.get(url), 404, "photo_unavailable")["message"]
    # Put back as it was: served again.
    path.write_bytes(original)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    jpeg_of(client.get(url))
    path.unlink()
    assert "gone" in assert_error(client.get(url), 404, "photo_unavailable")["message"]
    assert client.get(f"/api/v1/photos/{photo_id}").status_code == 200  # the index still knows it


def test_a_swapped_symlink_is_not_served(fake_model, photos, tmp_path, data_dir):
    """An indexed path that is a symlink, pointed elsewhere after indexing,
    to a file of the same size and time."""
    links = tmp_path / "links"
    links.mkdir()
    blair = photos / "Tony_Blair" / "Tony_Blair_0001.jpg"
    link = links / "face.jpg"
    link.symlink_to(blair)
    index_paths([links], load_settings(data_dir=data_dir, indexer={"workers": 1}), model=fake_model)
    client = client_of(data_dir, model=fake_model)
    url = f"/api/v1/photos/{photo_id_of(data_dir, link.absolute())}/image"
    jpeg_of(client.get(url))
    impostor = tmp_path / "impostor.jpg"
    data = bytearray(blair.read_bytes())
    data[-3] ^= 0xFF
    impostor.write_bytes(bytes(data))
    stat = blair.stat()
    os.utime(impostor, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    link.unlink()
    link.symlink_to(impostor)
    assert_error(client.get(url), 404, "photo_unavailable")


def test_a_video_gives_the_frame_of_a_face(fake_model, tmp_path, data_dir):
    video = write_video(tmp_path / "cams" / "door.mkv", A_GAP_B)
    index_paths([video.parent], load_settings(data_dir=data_dir, indexer={"workers": 1}), model=fake_model)
    client = client_of(data_dir, model=fake_model)
    store = published_store(data_dir)
    ids = store.face_ids().tolist()
    records = store.faces(ids)
    store.close()
    photo_id = records[ids[0]].photo_id
    body = client.get(f"/api/v1/photos/{photo_id}").get_json()
    assert body["kind"] == "video" and body["duration_s"] == pytest.approx(7.0, abs=0.2)
    face = max(body["faces"], key=lambda f: f["timestamp"])
    frame = jpeg_of(client.get(f"/api/v1/photos/{photo_id}/image?face_id={face['face_id']}"))
    with open_video(str(video)) as reader:
        expected = reader.frame_at(face["timestamp"])
    assert frame.size == (expected.shape[1], expected.shape[0])
    # The JPEG is the face's frame (the photo pasted in the middle), not an empty one.
    got = np.asarray(frame.convert("RGB"), dtype=np.float32)
    assert np.abs(got - expected).mean() < 6 and np.abs(got - 40).mean() > 20
    jpeg_of(client.get(f"/api/v1/photos/{photo_id}/image"))  # its first face's frame
    # Changed after indexing: refused, even though this worker checked it before.
    with video.open("ab") as handle:
        handle.write(b"\0")
    assert_error(client.get(f"/api/v1/photos/{photo_id}/image"), 404, "photo_unavailable")


def test_frame_at_is_the_sampled_frame(tmp_path):
    video = write_video(tmp_path / "v.mkv", A_GAP_B)
    with open_video(str(video)) as reader:
        sampled = list(reader.sampled_frames(2.0))
    for seconds, rgb in sampled[::3]:
        with open_video(str(video)) as reader:
            assert np.array_equal(reader.frame_at(seconds), rgb), seconds


def test_previews_are_upright(tmp_path):
    wide = Image.new("RGB", (300, 100), (10, 200, 30))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees to display
    out = io.BytesIO()
    wide.save(out, format="JPEG", exif=exif)
    preview = Image.open(io.BytesIO(preview_jpeg(out.getvalue(), 60)))
    assert preview.size == (20, 60)
