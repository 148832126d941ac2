"""The real dlib model on real photos (tests/data)."""

import io
from itertools import combinations

import numpy as np
import pytest
from PIL import Image

from config.settings import DetectionSettings, load_settings
from indexer.faces import detect_boxes, find_faces
from indexer.images import decode_rgb
from indexer.indexing import index_paths
from indexer.model import Box
from tests.helpers import DATA, LFW_PEOPLE, lfw_photo, published_store

pytestmark = pytest.mark.model


def central_embedding(real_model, path) -> np.ndarray:
    """The face nearest the centre: LFW's labelled person."""
    rgb = decode_rgb(path.read_bytes())
    faces = find_faces(real_model, rgb, DetectionSettings())
    h, w = rgb.shape[:2]
    face = min(faces, key=lambda f: (abs((f.box.top + f.box.bottom) / 2 - h / 2)
                                     + abs((f.box.left + f.box.right) / 2 - w / 2)))
    return face.embedding


@pytest.fixture(scope="module")
def embeddings(real_model) -> dict[tuple[str, int], np.ndarray]:
    return {(p, n): central_embedding(real_model, lfw_photo(p, n)) for p in LFW_PEOPLE for n in (1, 2, 3)}


def test_embeddings_are_128_float32(embeddings):
    for vec in embeddings.values():
        assert vec.shape == (128,) and vec.dtype == np.float32 and np.isfinite(vec).all()


def test_same_person_is_nearer_than_different_people(embeddings):
    same = [np.linalg.norm(embeddings[a] - embeddings[b]) for a, b in combinations(embeddings, 2) if a[0] == b[0]]
    diff = [np.linalg.norm(embeddings[a] - embeddings[b]) for a, b in combinations(embeddings, 2) if a[0] != b[0]]
    assert max(same) < 0.6 < min(diff)  # dlib's own threshold separates them all here
    assert max(same) < min(diff)


def test_group_photo_yields_several_faces_largest_first(real_model):
    rgb = decode_rgb((DATA / "group" / "bbt3.jpg").read_bytes())
    faces = find_faces(real_model, rgb, DetectionSettings())
    assert len(faces) >= 4
    areas = [f.box.area for f in faces]
    assert areas == sorted(areas, reverse=True)


def test_blank_image_yields_no_face(real_model):
    assert find_faces(real_model, decode_rgb((DATA / "blank" / "white.png").read_bytes()), DetectionSettings()) == []


def test_downscaled_detection_maps_boxes_back_to_original_pixels(real_model):
    small = Image.open(lfw_photo("Serena_Williams", 1)).convert("RGB")
    big = np.asarray(small.resize((1000, 1000), Image.Resampling.BICUBIC))
    direct = detect_boxes(real_model, np.asarray(small), DetectionSettings())
    downscaled = detect_boxes(real_model, big, DetectionSettings(max_side=250))
    assert len(direct) == len(downscaled) == 1
    # Found on a 250 px copy, reported in the 1000 px photo's pixels.
    assert np.allclose(np.array(downscaled[0]), 4 * np.array(direct[0]), atol=4)
    # Encoding uses the full-resolution photo: the embedding stays the same person.
    full = find_faces(real_model, big, DetectionSettings(max_side=250))[0].embedding
    assert np.linalg.norm(full - central_embedding(real_model, lfw_photo("Serena_Williams", 1))) < 0.3


def test_minimum_face_size_drops_small_faces(real_model):
    rgb = decode_rgb(lfw_photo("Tony_Blair", 1).read_bytes())
    assert detect_boxes(real_model, rgb, DetectionSettings(min_face_size=400)) == []


def test_rotated_phone_photo_is_found_upright(real_model, tmp_path):
    upright = Image.open(lfw_photo("Vladimir_Putin", 2)).convert("RGB")
    exif = Image.Exif()
    exif[0x0112] = 8  # stored rotated 90 degrees; the viewer must rotate it back
    stored = io.BytesIO()
    upright.transpose(Image.Transpose.ROTATE_270).save(stored, format="JPEG", exif=exif, quality=95)
    faces = find_faces(real_model, decode_rgb(stored.getvalue()), DetectionSettings())
    assert len(faces) == 1
    assert np.linalg.norm(faces[0].embedding - central_embedding(real_model, lfw_photo("Vladimir_Putin", 2))) < 0.2


def test_worker_processes_give_the_same_index_as_one_process(real_model, real_index, tmp_path):
    one = tmp_path / "one"
    index_paths([DATA / "lfw" / "Colin_Powell"], load_settings(data_dir=one, indexer={"workers": 1}), progress=False,
                model=real_model)
    two = published_store(real_index)
    single = published_store(one)
    ids, x = next(single.db.iter_embeddings())
    records = single.faces(list(ids))
    for face_id, vec in zip(ids, x):
        distances, found = two.search(vec, 1)
        assert distances[0, 0] < 1e-8
        assert two.faces([int(found[0, 0])])[int(found[0, 0])].path == records[int(face_id)].path


def test_cnn_detector_finds_the_face(real_model):
    rgb = decode_rgb(lfw_photo("Tony_Blair", 1).read_bytes())
    faces = find_faces(real_model, rgb, DetectionSettings(model="cnn", upsample=0))
    assert faces and faces[0].box.height > 60  # the labelled face, near the centre
    assert np.linalg.norm(faces[0].embedding - central_embedding(real_model, lfw_photo("Tony_Blair", 1))) < 0.3


def test_a_big_jpeg_decoded_at_reduced_scale_finds_the_same_faces(real_model, real_index):
    """A 33 MP JPEG of the group photo: the service decodes it at 1/2
    (``service.max_decoded_pixels``); each face finds the same nearest face
    as the photo decoded whole, at nearly the same distance, boxed in the
    same pixels of the photo."""
    from application.searching import decode_query, search_by_photo
    from config.settings import ServiceSettings
    from indexer.images import ScaledPhoto
    from indexer.tracks import iou

    group = Image.open(DATA / "group" / "bbt3.jpg").convert("RGB")
    big = io.BytesIO()
    group.resize((group.width * 12, group.height * 12), Image.Resampling.LANCZOS).save(big, format="JPEG", quality=90)
    detection = DetectionSettings()
    reduced = decode_query(big.getvalue(), ServiceSettings(), detection)
    assert reduced.scale == 2 and (reduced.width, reduced.height) == (group.width * 12, group.height * 12)
    rgb = decode_rgb(big.getvalue())
    whole = ScaledPhoto(rgb, 1, rgb.shape[1], rgb.shape[0])
    store = published_store(real_index)
    try:
        by_whole, by_reduced = (search_by_photo(real_model, store, photo, detection, 3, None).faces
                                for photo in (whole, reduced))
    finally:
        store.close()
    assert len(by_whole) == len(by_reduced) >= 4

    def box(face) -> Box:
        return Box(face.box.top, face.box.right, face.box.bottom, face.box.left)

    for face in by_whole:
        other = max(by_reduced, key=lambda f: iou(box(face), box(f)))
        assert iou(box(face), box(other)) > 0.8
        assert other.matches[0].face_id == face.matches[0].face_id
        assert abs(other.matches[0].distance - face.matches[0].distance) < 0.05
